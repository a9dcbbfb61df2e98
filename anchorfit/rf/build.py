"""A runnable torch module from the RF IR, for networks read from files (spec, Darknet cfg).

The ERF estimator measures gradients, so it needs a real network; a Darknet cfg or an anchorfit
spec only gives geometry. ``to_torch`` builds a module with exactly that geometry: every ``Window``
conv becomes a ``Conv2d`` with the same kernel, stride, dilation and (left/right) padding, pools
become pools, resampling ``nn.Upsample``, merges add/multiply/concatenate. Channel counts come
from the file where it gives them and are a small default elsewhere: they change nothing about
where a cell looks, only the cost of running it. Weights are PyTorch's default random init.

Tracing the result with ``anchorfit.rf.trace.trace_module`` gives the same receptive fields as the
IR (tested), which is what lets the gradient probe check the readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import torch
import torch.nn as nn

from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import (
    Adaptive,
    Global,
    Graph,
    Input,
    Merge,
    PixelShuffle,
    Pointwise,
    Resample,
    Slice,
    Transposed,
    Window,
)

DEFAULT_CHANNELS = 16
_MAX_POOL_KINDS = ("maxpool", "max", "pool")


class Merged(nn.Module):
    """Add, multiply or concatenate (on channels) the inputs; a module so tracing names it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            return torch.cat(xs, 1)
        out = xs[0]
        for x in xs[1:]:
            out = out * x if self.kind == "mul" else out + x
        return out


class SpatialSlice(nn.Module):
    """``x[..., a:b:s, c:d:t]`` on the two spatial axes."""

    def __init__(self, start: Sequence[int | None], stop: Sequence[int | None],
                 step: Sequence[int]) -> None:
        super().__init__()
        self.start, self.stop, self.step = tuple(start), tuple(stop), tuple(step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, self.start[0]:self.stop[0]:self.step[0],
                 self.start[1]:self.stop[1]:self.step[1]]


class GraphNet(nn.Module):
    """Runs the IR node by node. ``blocks`` holds one module per node (keyed by position)."""

    def __init__(self, plan: list[tuple[str, list[str], list[int]]], blocks: nn.ModuleDict,
                 outputs: list[int], node_keys: dict[str, str]) -> None:
        super().__init__()
        self.plan = plan  # (module key or "input", projection keys per input, input positions)
        self.blocks = blocks
        self.outputs = outputs
        self.node_keys = node_keys  # IR node name -> module key in ``blocks``

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values: list[torch.Tensor] = []
        for key, projections, inputs in self.plan:
            if key == "input":
                values.append(x)
                continue
            args = [values[i] if not proj else self.blocks[proj](values[i])
                    for i, proj in zip(inputs, projections)]
            values.append(self.blocks[key](*args))
        return tuple(values[i] for i in self.outputs)

    def module_path(self, node: str) -> str:
        """Qualified module name of an IR node (what ``TracedGraph.module_outputs`` is keyed by)."""
        return f"blocks.{self.node_keys[node]}"


def to_torch(graph: Graph, input_size: tuple[int, int], *,
             channels: Mapping[str, int] | None = None, in_channels: int = 3,
             default_channels: int = DEFAULT_CHANNELS, max_channels: int | None = 64,
             outputs: Sequence[str] | None = None) -> GraphNet:
    """A torch module with the geometry of ``graph`` at ``input_size`` (H, W).

    ``channels`` gives a node's output channels where known (capped at ``max_channels`` to keep
    the module cheap); other convs get ``default_channels``. The module returns the tensors of
    ``outputs`` (default: the graph's outputs, or its last node).
    """
    channels = dict(channels or {})
    analysis = analyze(graph, input_size)  # feature sizes, for TF-style 'same' padding
    names = list(graph.nodes)
    position = {n: i for i, n in enumerate(names)}
    width: dict[str, int] = {}
    blocks = nn.ModuleDict()
    plan: list[tuple[str, list[str], list[int]]] = []
    node_keys: dict[str, str] = {}

    def out_channels(name: str) -> int:
        c = channels.get(name, default_channels)
        return min(c, max_channels) if max_channels else c

    for idx, node in enumerate(graph.nodes.values()):
        op = node.op
        key = f"n{idx}"
        node_keys[node.name] = key
        if isinstance(op, Input):
            width[node.name] = in_channels
            plan.append(("input", [], []))
            continue
        cin = [width[s] for s in node.inputs]
        projections = ["" for _ in node.inputs]
        if isinstance(op, Merge):
            module, cout, projections = _merge(op, key, cin, blocks)
        else:
            sizes = analysis[node.inputs[0]].feature_size
            module, cout = _single(op, cin[0], out_channels(node.name), sizes, node.name)
        blocks[key] = module
        width[node.name] = cout
        plan.append((key, projections, [position[s] for s in node.inputs]))
    wanted = list(outputs or graph.outputs or names[-1:])
    return GraphNet(plan, blocks, [position[n] for n in wanted], node_keys)


def _merge(op: Merge, key: str, cin: list[int], blocks: nn.ModuleDict
           ) -> tuple[nn.Module, int, list[str]]:
    """The merge module; element-wise merges of unequal widths get 1x1 projections (RF-neutral)."""
    kind = {"cat": "concat", "concat": "concat", "mul": "mul"}.get(op.kind, "add")
    if kind == "concat":
        return Merged(kind), sum(cin), ["" for _ in cin]
    cout = max(cin)
    projections = []
    for i, c in enumerate(cin):
        if c == cout or c == 1:
            projections.append("")
            continue
        proj = f"{key}_p{i}"
        blocks[proj] = nn.Conv2d(c, cout, 1, bias=False)
        projections.append(proj)
    return Merged(kind), cout, projections


def _single(op: object, cin: int, cout: int, in_size: tuple[int, int], name: str
            ) -> tuple[nn.Module, int]:
    if isinstance(op, Window):
        return _window(op, cin, cout, in_size)
    if isinstance(op, Transposed):
        return nn.ConvTranspose2d(cin, cout, op.kernel, op.stride, op.padding, op.output_padding,
                                  dilation=op.dilation), cout
    if isinstance(op, Resample):
        if op.size is not None:
            return nn.Upsample(size=op.size, mode=op.mode), cin
        scale = tuple(float(Fraction(s)) for s in op.scale or (1, 1))
        corners = op.align_corners if op.mode in ("bilinear", "bicubic") else None
        return nn.Upsample(scale_factor=scale, mode=op.mode, align_corners=corners), cin
    if isinstance(op, PixelShuffle):
        f = op.factor
        if op.unshuffle:
            return nn.PixelUnshuffle(f), cin * f * f
        if cin % (f * f):  # depth-to-space needs f*f channels per output channel
            return nn.Sequential(nn.Conv2d(cin, f * f * cout, 1), nn.PixelShuffle(f)), cout
        return nn.PixelShuffle(f), cin // (f * f)
    if isinstance(op, Slice):
        return SpatialSlice(op.start, op.stop, op.step), cin
    if isinstance(op, Adaptive):
        return nn.AdaptiveAvgPool2d(op.output_size), cin
    if isinstance(op, Global):
        return nn.AdaptiveAvgPool2d(1), cin
    if isinstance(op, Pointwise):
        if op.global_context:
            return nn.GroupNorm(1, cin), cin
        return nn.ReLU(), cin
    raise AnchorfitError(f"layer {name!r}: cannot build a torch module for {type(op).__name__}")


def _window(op: Window, cin: int, cout: int, in_size: tuple[int, int]) -> tuple[nn.Module, int]:
    k, s, d = op.kernel, op.stride, op.dilation
    if op.padding == "same":
        left, right = [], []
        for axis in (0, 1):
            k_eff = d[axis] * (k[axis] - 1) + 1
            total = max(k_eff - (in_size[axis] % s[axis] or s[axis]), 0)
            left.append(total // 2)
            right.append(total - total // 2)
    else:
        left = list(op.padding)
        right = list(op.padding_end if op.padding_end is not None else op.padding)
    kind = op.kind.lower()
    if kind == "pad":
        return nn.ZeroPad2d((left[1], right[1], left[0], right[0])), cin
    symmetric = left == right and all(p >= 0 for p in left)
    is_max = kind in _MAX_POOL_KINDS or "max" in kind
    is_avg = "avg" in kind
    if is_max or is_avg:
        fits = symmetric and all(2 * p <= kk for p, kk in zip(left, k))
        pad = tuple(left) if fits else (0, 0)
        if is_max:
            pool: nn.Module = nn.MaxPool2d(k, s, pad, d, ceil_mode=op.ceil_mode)
        else:
            if d != (1, 1):
                raise AnchorfitError(f"{op.describe()}: average pooling has no dilation")
            pool = nn.AvgPool2d(k, s, pad, ceil_mode=op.ceil_mode)
        if fits:
            return pool, cin
        return nn.Sequential(nn.ZeroPad2d((left[1], right[1], left[0], right[0])), pool), cin
    if symmetric:
        return nn.Conv2d(cin, cout, k, s, tuple(left), d), cout
    return nn.Sequential(nn.ZeroPad2d((left[1], right[1], left[0], right[0])),
                         nn.Conv2d(cin, cout, k, s, 0, d)), cout


__all__ = ["DEFAULT_CHANNELS", "GraphNet", "to_torch"]
