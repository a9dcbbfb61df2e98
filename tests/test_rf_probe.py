"""The engine against the gradient probe: fixed nets and random DAGs (hypothesis)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from anchorfit import load as models
from anchorfit.errors import AnchorfitError
from anchorfit.rf import analyze
from anchorfit.rf.probe import verify
from anchorfit.rf.trace import trace_module

sys.path.insert(0, str(Path(__file__).parent))
from nets import small  # noqa: E402


def all_nodes(traced):
    return [n for n in traced.graph.nodes if n != traced.graph.input_names[0]]


def test_probe_agrees_on_functional_net_every_node():
    traced = trace_module(small.FunctionalNet(), (38, 62))
    analysis = analyze(traced.graph, (38, 62))
    checks = verify(traced, analysis, all_nodes(traced))
    assert checks and all(c.agree for c in checks), [c.detail for c in checks if not c.agree]


def test_probe_is_not_fooled_by_global_context():
    traced = trace_module(small.SqueezeExcite(), 24)
    analysis = analyze(traced.graph, 24)
    out = traced.output_names["output"]
    (check,) = verify(traced, analysis, [out])
    assert check.agree is None and "global context" in check.detail


def test_probe_detects_a_wrong_engine():
    """The oracle must be able to fail: corrupt one interval and it disagrees."""
    traced = trace_module(small.FunctionalNet(), (38, 62))
    analysis = analyze(traced.graph, (38, 62))
    name = traced.output_names["output"]
    rf = analysis.nodes[name]
    import dataclasses

    bad_y = dataclasses.replace(rf.y, lo=tuple(v - 1 for v in rf.y.lo))
    analysis.nodes[name] = dataclasses.replace(rf, y=bad_y)
    (check,) = verify(traced, analysis, [name])
    assert check.agree is False and "probe rows" in check.detail


@pytest.mark.slow
def test_probe_on_resnet18_stages():
    net = models.load("torchvision:resnet18", (480, 480))  # layer4's RF (435) must fit
    checks = verify(net.traced, net.analyze(), [net.node(n) for n in net.default_layers])
    assert [c.agree for c in checks] == [True] * 5


class TinyFPN(nn.Module):
    """Three strided stages and torchvision's FeaturePyramidNetwork (nearest top-down path)."""

    def __init__(self):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        self.c2 = nn.Conv2d(3, 4, 3, 2, 1)
        self.c3 = nn.Conv2d(4, 4, 3, 2, 1)
        self.c4 = nn.Conv2d(4, 4, 3, 2, 1)
        self.fpn = FeaturePyramidNetwork([4, 4, 4], 4, extra_blocks=LastLevelMaxPool())

    def forward(self, x):
        a = self.c2(x)
        b = self.c3(a)
        c = self.c4(b)
        return self.fpn({"p2": a, "p3": b, "p4": c})


def test_probe_on_fpn_levels_which_are_not_aligned():
    pytest.importorskip("torchvision")
    traced = trace_module(TinyFPN(), 64)
    analysis = analyze(traced.graph, 64)
    levels = list(traced.output_names.values())
    assert [analysis[n].stride[0] for n in levels] == [2, 4, 8, 16]
    assert [analysis[n].aligned for n in levels] == [False, False, True, True]
    checks = verify(traced, analysis, all_nodes(traced))
    assert all(c.agree for c in checks), [c.detail for c in checks if not c.agree]


# --------------------------------------------------------------------------- random DAGs

OPS = ("conv", "maxpool", "avgpool", "up", "convT", "pad", "slice")


class RandomNet(nn.Module):
    """A DAG described by a list of (kind, params, sources); merges add same-sized maps."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList()
        for kind, p, _ in spec:
            if kind == "conv":
                self.layers.append(nn.Conv2d(2, 2, p["k"], p["s"], p["p"], p["d"]))
            elif kind == "convT":
                self.layers.append(nn.ConvTranspose2d(2, 2, p["k"], p["s"], p["p"]))
            elif kind == "maxpool":
                self.layers.append(nn.MaxPool2d(p["k"], p["s"], p["p"], p["d"],
                                                ceil_mode=p["ceil"]))
            elif kind == "avgpool":
                self.layers.append(nn.AvgPool2d(p["k"], p["s"], p["p"], ceil_mode=p["ceil"]))
            elif kind == "up":
                self.layers.append(nn.Upsample(scale_factor=2, mode=p["mode"]))
            else:
                self.layers.append(nn.Identity())

    def forward(self, x):
        outs = [x]
        for (kind, p, srcs), layer in zip(self.spec, self.layers):
            y = outs[srcs[0]]
            if kind == "pad":
                y = F.pad(y, p["pad"])
            elif kind == "slice":
                y = y[:, :, p["a"]::p["sy"], p["b"]::p["sx"]]
            elif kind == "add":
                y = y + outs[srcs[1]]
            else:
                y = layer(y)
            outs.append(y)
        return outs[-1]


def pairs(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


@st.composite
def random_spec(draw):
    spec = []
    n = draw(st.integers(1, 6))
    for _ in range(n):
        kind = draw(st.sampled_from(OPS + ("add", "add")))
        src = draw(st.integers(0, len(spec)))
        if kind == "add":
            src2 = draw(st.integers(0, len(spec)))
            spec.append(("add", {}, (src, src2)))
            continue
        if kind in ("conv", "maxpool", "avgpool", "convT"):
            k = draw(pairs(1, 4))
            s = draw(pairs(1, 3 if kind != "convT" else 2))
            d = draw(pairs(1, 2)) if kind in ("conv", "maxpool") else (1, 1)
            limit = (k[0] // 2, k[1] // 2) if kind != "conv" else (k[0], k[1])
            if kind == "convT":
                limit = (k[0] - 1, k[1] - 1)
            p = (draw(st.integers(0, limit[0])), draw(st.integers(0, limit[1])))
            params = {"k": k, "s": s, "p": p, "d": d, "ceil": draw(st.booleans())}
        elif kind == "up":
            params = {"mode": draw(st.sampled_from(["nearest", "bilinear"]))}
        elif kind == "pad":
            params = {"pad": draw(st.tuples(*[st.integers(-1, 2)] * 4))}
        else:
            params = {"a": draw(st.integers(0, 1)), "b": draw(st.integers(0, 1)),
                      "sy": draw(st.integers(1, 2)), "sx": draw(st.integers(1, 2))}
        spec.append((kind, params, (src,)))
    return spec


#: found by this test on a random run: a one-column crop, then a pool padding past it. The last
#: cell's Distill RF (46, 47) counts a virtual pixel at column 47, a real input column the crop
#: hid; it reads (46, 46). The verifier compared the two as if the RF lay inside what the map sees.
CROP_THEN_PADDED_POOL = [
    ("conv", {"k": (1, 1), "s": (1, 1), "p": (0, 0), "d": (1, 1), "ceil": False}, (0,)),
    ("pad", {"pad": (0, 0, 0, 0)}, (0,)),
    ("pad", {"pad": (0, 0, 0, 0)}, (0,)),
    ("pad", {"pad": (0, -1, 0, 0)}, (0,)),
    ("avgpool", {"k": (1, 2), "s": (1, 1), "p": (0, 1), "d": (1, 1), "ceil": False}, (4,)),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=random_spec(), size=pairs(48, 80))
@example(spec=CROP_THEN_PADDED_POOL, size=(48, 48))
def test_engine_matches_probe_on_random_dags(spec, size):
    net = RandomNet(spec).eval()
    try:
        traced = trace_module(net, size, in_channels=2)
        analysis = analyze(traced.graph, size)
    except AnchorfitError:
        assume(False)  # shapes that PyTorch itself rejects (tiny maps, mismatched adds)
        return
    nodes = all_nodes(traced)
    checks = verify(traced, analysis, nodes, in_channels=2)
    bad = [c.detail for c in checks if c.agree is False]
    assert not bad, (spec, size, bad)
    assume(any(c.agree for c in checks))  # count only examples where something was compared


def test_crop_then_padded_pool_distill_rf_and_reads():
    """The Distill interval keeps counting past a crop (affine, virtual pixels included); the
    reads stop where the crop cut. Both are right, and the probe sees the reads."""
    traced = trace_module(RandomNet(CROP_THEN_PADDED_POOL).eval(), (48, 48), in_channels=2)
    analysis = analyze(traced.graph, (48, 48))
    last = all_nodes(traced)[-1]
    rf = analysis[last]
    assert rf.x.size == 48
    assert (rf.x.start(47), rf.x.end(47)) == (46, 47)
    assert rf.read_interval(47, 47)[1] == (46, 46)
    assert rf.x.read_extent() == (0, 46)
    assert all(c.agree for c in verify(traced, analysis, [last], in_channels=2))
