"""The gradient probe: an oracle for the RF engine that knows no formula.

The network is *linearised* so that the support of an input gradient is exactly the receptive
field: every conv/linear weight becomes a positive constant, biases 0, BatchNorm and activations the
identity, max-pooling an average over the same window (so no gradient is dropped), subtraction an
addition and division a product (so no two paths can cancel). Then the non-zero rows and columns of
d y[i, j] / d x for a few neighbouring cells give each cell's interval, which must equal the
engine's. Global-context layers (SE gates, GroupNorm statistics) are not comparable this way: the
probe sees their whole-image dependence, the engine reports the local RF and a flag.

It is slow (a backward pass per probed cell, on a real-size input) and is meant for tests and for
the user's ``--verify``.

``linearize(..., local=True)`` checks the local RF of such layers too: it cuts every path the
engine calls global (the outputs of global pooling, token flattening and attention become
constant ones; per-cell ops with global context such as window attention become the identity),
so what is left is the local part the engine reports.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from anchorfit.rf.convert import GLOBAL_NORMS, POINTWISE_FUNCS, POINTWISE_METHODS, \
    POINTWISE_MODULES
from anchorfit.rf.engine import NodeRF, RFAnalysis
from anchorfit.rf.trace import TracedGraph


class _WindowAverage(nn.Module):
    """Average over a (possibly dilated) pooling window: max-pool geometry, all taps positive."""

    def __init__(self, kernel: Any, stride: Any, padding: Any, dilation: Any,
                 ceil_mode: bool) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _window_average(x, self.kernel, self.stride, self.padding, self.dilation,
                               self.ceil_mode)


def _window_average(x: torch.Tensor, kernel: Any, stride: Any = None, padding: Any = 0,
                    dilation: Any = 1, ceil_mode: bool = False, *_: Any, **__: Any) -> torch.Tensor:
    # max_pool with return_indices gives the geometry; an average with the same dilation needs
    # a depthwise conv of ones, which is exact for the support.
    one_d = x.dim() == 3
    if one_d:
        x = x.unsqueeze(2)
    k = _pair(kernel)
    s = k if stride is None or stride == [] else _pair(stride)
    p, d = _pair(padding), _pair(dilation)
    channels = x.shape[1]
    if ceil_mode:
        # emulate the extra partial window on the right with explicit padding
        extra = []
        for axis in (0, 1):
            n = x.shape[2 + axis]
            k_eff = d[axis] * (k[axis] - 1) + 1
            span = n + 2 * p[axis] - k_eff
            out = -(-span // s[axis]) + 1
            if (out - 1) * s[axis] >= n + p[axis]:
                out -= 1
            extra.append(max((out - 1) * s[axis] + k_eff - (n + 2 * p[axis]), 0))
        x = F.pad(x, (0, extra[1], 0, extra[0]))
    weight = torch.ones(channels, 1, k[0], k[1], dtype=x.dtype, device=x.device) / (k[0] * k[1])
    y = F.conv2d(x, weight, None, s, p, d, groups=channels)
    return y.squeeze(2) if one_d else y


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def _adaptive_avg(x: torch.Tensor, output_size: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
    if x.dim() == 3:
        return F.adaptive_avg_pool1d(x, output_size)
    return F.adaptive_avg_pool2d(x, output_size)


def linearize(traced: TracedGraph, local: bool = False) -> torch.fx.GraphModule:
    """A float64 copy of the traced module whose input-gradient support is its RF.

    With ``local`` the global-context paths are cut (see the module docstring).
    """
    gm = copy.deepcopy(traced.gm)
    if any(p.is_meta for p in gm.parameters()) or any(b.is_meta for b in gm.buffers()):
        gm = gm.to_empty(device="cpu")
        with torch.no_grad():  # uninitialised memory: layer scales, embeddings get a constant
            for tensor in list(gm.parameters()) + list(gm.buffers()):
                if tensor.is_floating_point():
                    tensor.fill_(1.0)
    gm = gm.double().eval()
    for name, mod in list(gm.named_modules()):
        if not name:
            continue
        replacement: nn.Module | None = None
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                            nn.Linear)):
            with torch.no_grad():
                fan_in = mod.weight[0].numel() if not isinstance(
                    mod, (nn.ConvTranspose1d, nn.ConvTranspose2d)) else mod.weight[:, 0].numel()
                mod.weight.fill_(1.0 / fan_in)
                if mod.bias is not None:
                    mod.bias.zero_()
        elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
            replacement = _WindowAverage(mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                                         mod.ceil_mode)
        elif isinstance(mod, (nn.LPPool1d, nn.LPPool2d)):
            replacement = _WindowAverage(mod.kernel_size, mod.stride, 0, 1, mod.ceil_mode)
        elif isinstance(mod, nn.AdaptiveMaxPool2d):
            replacement = nn.AdaptiveAvgPool2d(mod.output_size)
        elif isinstance(mod, nn.AdaptiveMaxPool1d):
            replacement = nn.AdaptiveAvgPool1d(mod.output_size)
        elif isinstance(mod, POINTWISE_MODULES + GLOBAL_NORMS + (
                nn.LayerNorm, nn.Softmax, nn.LogSoftmax)) and not isinstance(
                mod, nn.ChannelShuffle):
            replacement = nn.Identity()
        if replacement is not None:
            parent_name, _, child = name.rpartition(".")
            parent = gm.get_submodule(parent_name) if parent_name else gm
            setattr(parent, child, replacement)
    replace_funcs = {
        F.max_pool2d: _window_average, F.max_pool1d: _window_average,
        torch.max_pool2d: _window_average, torch.max_pool1d: _window_average,
        F.adaptive_max_pool2d: _adaptive_avg, F.adaptive_max_pool1d: _adaptive_avg,
        operator.sub: operator.add, operator.isub: operator.add, torch.sub: torch.add,
        operator.truediv: operator.mul, operator.itruediv: operator.mul, torch.div: torch.mul,
        F.group_norm: _identity, F.layer_norm: _identity, F.instance_norm: _identity,
        F.softmax: _identity, F.log_softmax: _identity,
    }
    for node in gm.graph.nodes:
        if node.op == "call_function":
            if node.target in replace_funcs:
                node.target = replace_funcs[node.target]
            elif node.target in POINTWISE_FUNCS and node.target not in (torch.clone,):
                node.target = _identity
        elif node.op == "call_method":
            if node.target in POINTWISE_METHODS and node.target not in (
                    "contiguous", "clone", "float", "double", "half", "to", "type_as", "detach",
                    "expand_as", "requires_grad_", "masked_fill"):
                node.op, node.target = "call_function", _identity
            elif node.target in ("sub", "sub_"):
                node.target = "add"
            elif node.target in ("div", "div_"):
                node.target = "mul"
            elif node.target in ("softmax", "log_softmax"):
                node.op, node.target = "call_function", _identity
    if local:
        _cut_global_paths(traced, gm)
    gm.recompile()
    return gm


def _cut_global_paths(traced: TracedGraph, gm: torch.fx.GraphModule) -> None:
    """Make what the engine calls global a constant; per-cell context ops (attention) identities."""
    from anchorfit.rf.graph import Global, Pointwise

    for node in list(gm.graph.nodes):
        ir = traced.graph.nodes.get(node.name)
        if ir is None or node.op not in ("call_module", "call_function", "call_method"):
            continue
        if isinstance(ir.op, Global):
            with gm.graph.inserting_after(node):
                # ones, not the value: an SE gate x * g(x) would square the linearised
                # activations at every block and overflow float64 in a deep net
                cut = gm.graph.call_function(torch.ones_like, (node,))
            node.replace_all_uses_with(cut, delete_user_cb=lambda user: user is not cut)
        elif isinstance(ir.op, Pointwise) and ir.op.global_context and node.args:
            node.op, node.target = "call_function", _identity
            node.args, node.kwargs = (node.args[0],), {}


@dataclass(frozen=True)
class ProbeCell:
    """One probed cell: its index and the input rows/columns its gradient reaches."""

    i: int
    j: int
    rows: tuple[int, int] | None
    cols: tuple[int, int] | None


@dataclass(frozen=True)
class LayerCheck:
    """Agreement of the engine with the probe on one layer."""

    name: str
    agree: bool | None  # None: not comparable (global context, or nothing probed)
    cells: tuple[ProbeCell, ...]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agree": self.agree, "detail": self.detail,
                "cells": [{"cell": [c.i, c.j], "rows": c.rows, "cols": c.cols} for c in self.cells]}


def outputs_module(gm: torch.fx.GraphModule, names: Sequence[str]) -> torch.fx.GraphModule:
    graph = copy.deepcopy(gm.graph)
    by_name = {n.name: n for n in graph.nodes}
    out = next(n for n in graph.nodes if n.op == "output")
    graph.erase_node(out)
    graph.output(tuple(by_name[n] for n in names))
    sub = torch.fx.GraphModule(gm, graph)
    sub.graph.eliminate_dead_code()
    sub.recompile()
    return sub


def probe_cells(traced: TracedGraph, input_size: tuple[int, int], layer: str,
                cells: Sequence[tuple[int, int]], in_channels: int = 3,
                linear: torch.fx.GraphModule | None = None) -> list[ProbeCell]:
    """Input support (rows, cols) of each of ``cells`` of ``layer`` in the linearised network."""
    lin = linear if linear is not None else linearize(traced)
    sub = outputs_module(lin, [layer])
    h, w = input_size
    x = torch.ones(1, in_channels, h, w, dtype=torch.float64, requires_grad=True)
    (y,) = sub(x)
    pos = traced.spatial_pos.get(layer) or tuple(range(y.dim() - (2 if y.dim() == 4 else 1),
                                                       y.dim()))
    found = []
    for i, j in cells:
        index: list[Any] = [slice(None)] * y.dim()
        index[0] = 0
        if len(pos) == 2:  # (y, x) wherever they are: NCHW, or NHWC inside ConvNeXt/Swin
            index[pos[0]], index[pos[1]] = i, j
        else:
            index[pos[0]] = j
        (g,) = torch.autograd.grad(y[tuple(index)].sum(), x, retain_graph=True)
        support = g[0].abs().sum(0) > 0
        rows = torch.nonzero(support.any(1)).flatten()
        cols = torch.nonzero(support.any(0)).flatten()
        found.append(ProbeCell(i, j,
                               (int(rows[0]), int(rows[-1])) if len(rows) else None,
                               (int(cols[0]), int(cols[-1])) if len(cols) else None))
    return found


def cells_to_probe(rf: NodeRF, input_size: tuple[int, int], extra: int = 1
                   ) -> list[tuple[int, int]]:
    """Neighbouring cells near the map centre covering every phase on both axes, and a repeat.

    Only cells whose whole RF lies inside the input are usable: at the border the probe cannot
    see the virtual padding pixels that the (Distill) RF counts.
    """
    count = max(rf.y.period, rf.x.period) + extra

    def inside(axis_map: Any, o: int, n: int) -> bool:
        lo, hi = axis_map.start(o), axis_map.end(o)
        return lo is not None and hi is not None and lo >= 0 and hi <= n - 1

    rows = [i for i in range(rf.y.size) if inside(rf.y, i, input_size[0])]
    cols = [j for j in range(rf.x.size) if inside(rf.x, j, input_size[1])]
    if not rows or not cols:
        return []
    i0 = rows[max((len(rows) - count) // 2, 0)]
    j0 = cols[max((len(cols) - count) // 2, 0)]
    return [(i0 + t, j0 + t) for t in range(count)
            if i0 + t in rows and j0 + t in cols]


def border_and_inside(rf: NodeRF, input_size: tuple[int, int]) -> list[tuple[int, int]]:
    """``cells_to_probe``'s inside cells, then the first and the last cell of the map."""
    chosen = cells_to_probe(rf, input_size)
    for cell in ((0, 0), (rf.y.size - 1, rf.x.size - 1)):
        if cell not in chosen:
            chosen.append(cell)
    return chosen


def verify(traced: TracedGraph, analysis: RFAnalysis, layers: Sequence[str],
           in_channels: int = 3, local: bool = False,
           cells: Callable[[NodeRF, tuple[int, int]], Sequence[tuple[int, int]]] | None = None
           ) -> list[LayerCheck]:
    """Compare the engine with the probe on ``layers``: each probed cell's gradient support must be
    the engine's read interval (``AxisMap.read``: the RF clipped to what the network reads).

    ``local``: probe global-context layers too, with their global paths cut, against the local
    RF. ``cells(rf, input_size)``: the cells to probe on a layer instead of ``cells_to_probe``'s
    plus the first and the last cell (border truth).
    """
    h, w = analysis.input_size
    lin = linearize(traced, local=local)
    checks = []
    for name in layers:
        rf = analysis[name]
        if rf.global_context and not local:
            checks.append(LayerCheck(name, None, (), "global context: the probe sees the whole "
                                                     "image, the engine reports the local RF"))
            continue
        chosen = list(cells(rf, (h, w))) if cells is not None else border_and_inside(rf, (h, w))
        if not chosen:
            checks.append(LayerCheck(name, None, (), "no cell's RF fits inside the input: "
                                                     "verify with a larger --input"))
            continue
        found = probe_cells(traced, (h, w), name, chosen, in_channels, lin)
        agree = True
        details = []
        seen_y, seen_x = _seen(rf.y, h), _seen(rf.x, w)
        for cell in found:
            want_rows, want_cols = rf.read_interval(cell.i, cell.j)
            # a cell whose Distill RF lies inside the part of the image the map sees reads
            # exactly that RF: this checks r, S, P and centres, computed apart from the reads
            rows = (rf.y.start(cell.i), rf.y.end(cell.i))
            cols = (rf.x.start(cell.j), rf.x.end(cell.j))
            if (_within(rows, seen_y) and _within(cols, seen_x)
                    and (want_rows, want_cols) != (rows, cols)):
                details.append(f"cell ({cell.i},{cell.j}): engine RF rows {rows} cols {cols} but "
                               f"engine reads rows {want_rows} cols {want_cols}")
                want_rows, want_cols = rows, cols
                agree = False
            if cell.rows != want_rows or cell.cols != want_cols:
                agree = False
                details.append(f"cell ({cell.i},{cell.j}): probe rows {cell.rows} cols {cell.cols}"
                               f", engine rows {want_rows} cols {want_cols}")
        checks.append(LayerCheck(name, agree, tuple(found), "; ".join(details)))
    return checks


def _seen(axis_map: Any, n: int) -> tuple[int, int] | None:
    """The input pixels [first, last] some cell of the map reads, within the image. A crop
    (negative padding, a slice) hides the pixels past it: there a cell's Distill RF may count a
    virtual pixel that coincides with a real input pixel the network never sees (found by the
    random-DAG test: a 1-column crop, then a padded pool)."""
    extent = axis_map.read_extent()
    return (0, n - 1) if extent is None and axis_map.read_lo is None else extent


def _within(interval: tuple[int | None, int | None], span: tuple[int, int] | None) -> bool:
    lo, hi = interval
    return (span is not None and lo is not None and hi is not None
            and span[0] <= lo and hi <= span[1])
