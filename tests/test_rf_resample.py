"""Issue 16: exact geometry at any resampling ratio, border truth, global heads.

The resampling index rules are checked against PyTorch itself: the input cells each output cell
of ``F.interpolate`` depends on are the non-zero entries of its float64 Jacobian, for sizes whose
ratio is not an integer, in every mode, align_corners both ways.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from anchorfit.rf import GraphBuilder, analyze
from anchorfit.rf.graph import Resample

RATIOS = [(38, 75), (31, 61), (16, 31), (10, 25), (25, 10), (7, 3), (5, 12), (75, 38)]
MODES = [("nearest", False), ("nearest-exact", False), ("bilinear", False), ("bilinear", True),
         ("bicubic", False), ("bicubic", True), ("area", False)]


def _torch_reads(n: int, out: int, mode: str, align: bool) -> list[tuple[int, int]]:
    """First and last input cell each output cell depends on, from PyTorch's Jacobian (1-D)."""
    x = torch.zeros(1, 1, n, dtype=torch.float64)
    kwargs = {"align_corners": align} if mode in ("bilinear", "bicubic") else {}
    torch_mode = "linear" if mode == "bilinear" else mode

    def f(v: torch.Tensor) -> torch.Tensor:
        if mode == "bicubic":
            return F.interpolate(v.view(1, 1, 1, n), size=(1, out), mode="bicubic",
                                 **kwargs).view(out)
        return F.interpolate(v.view(1, 1, n), size=out, mode=torch_mode, **kwargs).view(out)

    jac = torch.autograd.functional.jacobian(f, x.view(n))
    reads = []
    for o in range(out):
        cells = torch.nonzero(jac[o]).flatten()
        reads.append((int(cells[0]), int(cells[-1])))
    return reads


@pytest.mark.parametrize("mode, align", MODES, ids=[f"{m}-{'ac' if a else 'hp'}" for m, a in MODES])
@pytest.mark.parametrize("n, out", RATIOS, ids=[f"{n}to{o}" for n, o in RATIOS])
def test_resample_reads_follow_pytorch_index_rule(n, out, mode, align):
    b = GraphBuilder()
    b.add(Resample(mode, None, (1, out), align), [b.input()], name="up")  # type: ignore[arg-type]
    node = analyze(b.build(), (1, n))["up"]
    assert node.x.size == out
    want = _torch_reads(n, out, mode, align)
    assert [node.x.read(o) for o in range(out)] == want
    # the Distill interval of a cell that reads no padding is its read interval
    for o in range(out):
        lo, hi = node.x.start(o), node.x.end(o)
        if 0 <= lo and hi < n:
            assert (lo, hi) == want[o], o


def test_nearest_to_a_size_close_to_x2_is_x2_on_every_cell():
    """FPN at 600 px: 38 -> 75 picks floor(o/2) on every real cell: stride 1/2, period 2."""
    b = GraphBuilder()
    b.add(Resample("nearest", None, (75, 75)), [b.input()], name="up")
    node = analyze(b.build(), 38)["up"]
    assert node.y.period == 2 and node.stride == (0.5, 0.5) and node.y.shift == 1
    assert not node.y.table


class _Irregular(nn.Module):
    """A 31-cell path upsampled to 75 (ratio 31/75 repeats nowhere on the map) beside a
    stride-1 path: the merge has no common period."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(1, 1, 15, 2)
        self.lateral = nn.Conv2d(1, 1, 3, 1, 1)
        self.after = nn.Conv2d(1, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(self.down(x), size=x.shape[-2:], mode="nearest")
        return self.after(self.lateral(x) + top)


def test_irregular_merge_is_an_explicit_table_not_an_error():
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    torch.manual_seed(0)
    traced = trace_module(_Irregular(), (75, 75), in_channels=1)
    merged = next(rf for rf in traced.analysis if rf.op == "add")
    assert merged.y.table and merged.y.period == 75 and len(merged.y.centers()) == 75
    assert merged.stride_conflict and not merged.aligned
    out = traced.graph.outputs[0]
    rf = traced.analysis[out]
    assert rf.y.table and rf.feature_size == (75, 75)
    cells = [(o, o) for o in range(75)] + [(0, 74), (74, 0)]
    (check,) = verify(traced, traced.analysis, [out], in_channels=1, cells=lambda *_: cells)
    assert check.agree is True, check.detail
    # every inside cell's Distill interval is what it reads
    for o in range(75):
        lo, hi = rf.y.start(o), rf.y.end(o)
        if lo >= 0 and hi <= 74:
            assert check.cells[o].rows == (lo, hi), o


class _FPNLike(nn.Module):
    """P5 upsampled to P4's size and added to a lateral conv, then a 3x3 smoothing conv."""

    def __init__(self) -> None:
        super().__init__()
        self.c4 = nn.Conv2d(1, 1, 3, 2, 1)
        self.c5 = nn.Conv2d(1, 1, 3, 2, 1)
        self.lat = nn.Conv2d(1, 1, 1)
        self.smooth = nn.Conv2d(1, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c4 = self.c4(x)
        c5 = self.c5(c4)
        top = F.interpolate(c5, size=c4.shape[-2:], mode="nearest")
        return self.smooth(self.lat(c4) + top)


@pytest.mark.parametrize("size", [(75, 61), (37, 45), (50, 50)])
def test_fpn_merge_at_odd_sizes_agrees_with_the_probe_on_every_cell(size):
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    torch.manual_seed(0)
    traced = trace_module(_FPNLike(), size, in_channels=1)
    out = traced.graph.outputs[0]
    rf = traced.analysis[out]
    cells = [(i, j) for i in range(rf.y.size) for j in range(rf.x.size) if i == j or i == 0
             or j == rf.x.size - 1]
    (check,) = verify(traced, traced.analysis, [out], in_channels=1,
                      cells=lambda *_: cells)
    assert check.agree is True, check.detail


def test_last_row_never_read_is_reported(run_cli, tmp_path):
    """A 3x3 stride-2 valid conv on 512 never reads row 511: the last cell reads [506, 510]."""
    path = tmp_path / "net.py"
    path.write_text("import torch.nn as nn\n"
                    "def make():\n"
                    "    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 0), nn.Conv2d(4, 4, 3, 1, 1))\n")
    code, out, err = run_cli("rf", f"{path}:make", "--input", "512", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    layer = doc["layers"][0]
    assert (layer["rf"], layer["padding"]) == ([7, 7], [2, 2])  # Distill r and P unchanged
    assert layer["reads"] == [[0, 510], [0, 510]]
    assert layer["cell_reads"] == {"first": [[0, 4], [0, 4]], "last": [[506, 510], [506, 510]]}
    assert any("no cell reads input row 511 (last 1), column 511 (last 1)" in n
               for n in doc["notes"])
    code, out, err = run_cli("rf", f"{path}:make", "--input", "512", "--verify")
    assert code == 0 and "agrees" in out, err


def test_padding_only_path_adds_no_columns():
    """A merged path that reads only padding rows at a border cell reads no columns there."""
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, 1, 1)
            self.b = nn.Conv2d(1, 1, (1, 9), 1, (0, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shifted = F.pad(self.b(x), (0, 0, 2, 0))[..., :-2, :]  # rows 0-1: padding only
            return self.a(x) + shifted

    traced = trace_module(Net(), (16, 16), in_channels=1)
    out = traced.analysis[traced.graph.outputs[0]]
    assert out.read_interval(0, 0) == ((0, 1), (0, 1))  # path b adds columns 0-4 only below
    assert out.read_interval(2, 0) == ((0, 3), (0, 4))
    (check,) = verify(traced, traced.analysis, [traced.graph.outputs[0]], in_channels=1,
                      cells=lambda *_: [(0, 0), (1, 5), (2, 0), (15, 15)])
    assert check.agree is True, check.detail


@pytest.mark.parametrize("size", ["481x643", "600x1000"])
def test_fcos_head_rf_is_flagged_global(run_cli, size):
    code, out, err = run_cli("rf", "torchvision:fcos_resnet50_fpn", "--input", size,
                             "--format", "json")
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert [row["head_rf"][0] for row in layers] == [523, 619, 811, 1195, 1963]
    assert all(row["head_global_context"] is True and row["global_context"] is False
               for row in layers)


def test_probe_detects_wrong_border_reads():
    """The oracle can fail on reads too: one more row read by the last cell is caught."""
    import dataclasses

    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    module = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 0), nn.Conv2d(1, 1, 3, 1, 1))
    traced = trace_module(module, (64, 64), in_channels=1)
    name = traced.graph.outputs[0]
    rf = traced.analysis[name]
    (check,) = verify(traced, traced.analysis, [name], in_channels=1)
    assert check.agree is True and check.cells[-1].rows == (58, 62)  # row 63 is never read
    ylo, yhi, xlo, xhi = rf.branches[0]
    wrong = yhi.copy()
    wrong[-1] += 1
    traced.analysis.nodes[name] = dataclasses.replace(rf, branches=((ylo, wrong, xlo, xhi),))
    (check,) = verify(traced, traced.analysis, [name], in_channels=1)
    assert check.agree is False and "probe rows (58, 62)" in check.detail
