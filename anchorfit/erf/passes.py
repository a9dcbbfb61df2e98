"""The forward and backward passes: input-gradient maps of one cell per level.

``window`` decides *where* each pass runs (the compute window holding its cells' RFs, and which
levels share a pass); ``cone`` crops a pass's inner feature maps to its cells' cones. This module
*runs* them: one forward pass of the sub-network up to a pass's levels per batch of samples, then
the levels' backward passes (batched with ``is_grads_batched`` or looped). On CPU a few samples
per batch at most: measured there, larger batches are slower per sample (benchmarks/bench_erf.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from anchorfit.erf.cells import LevelPlan
from anchorfit.erf.sources import COTANGENTS, generator
from anchorfit.erf.window import CHECK_MARGIN, ComputeWindow, Pass

if TYPE_CHECKING:
    from anchorfit.rf.network import Network

#: what a map is: channel-summed squared gradient with a Rademacher cotangent (unbiased energy),
#: Luo's Σ|g| with an all-ones cotangent, or RepLKNet's ReLU(centre) → ReLU(gradient)
MODES = ("energy", "abs", "replknet")
#: how a pass runs its levels' backward passes (``auto``: ``resolve_backward``)
BACKWARDS = ("auto", "batched", "loop")


def outputs_module(gm: torch.fx.GraphModule, nodes: Sequence[str]) -> torch.fx.GraphModule:
    """A GraphModule computing only ``nodes`` of ``gm`` (a tuple), sharing its sub-modules."""
    from anchorfit.rf.probe import outputs_module as _outputs_module

    return _outputs_module(gm, list(nodes))


def cotangents(seed: int, draw: int, indices: Sequence[int], level: int, channels: int,
               ) -> torch.Tensor:
    """Seeded Rademacher vectors (B, C) for one level: one per (draw, sample, level)."""
    return torch.stack([torch.randint(0, 2, (channels,),
                                      generator=generator(seed, COTANGENTS, draw, k, level))
                        for k in indices]).to(torch.float64) * 2 - 1


def level_maps(sub: nn.Module, x: torch.Tensor, cells: Sequence[tuple[int, int]],
               vectors: Sequence[torch.Tensor | None], mode: str = "energy",
               backward: str = "batched") -> torch.Tensor:
    """Input-gradient maps (L, B, H, W) of one cell per level, from one forward pass.

    ``vectors[l]`` is the cotangent (B, C_l) over the level's channels (None: all ones). Samples in
    the batch are independent (eval mode), so the sum over the batch backpropagates each sample's
    own cell. ``backward="batched"`` runs the L backward passes as one vmapped pass
    (``is_grads_batched``); ``"loop"`` runs them one after another.
    """
    x = x.detach().requires_grad_(True)
    feats = sub(x)
    if isinstance(feats, torch.Tensor):
        feats = (feats,)
    targets = []
    for feat, (i, j), v in zip(feats, cells, vectors):
        cell = feat[:, :, i, j]
        if mode == "replknet":
            targets.append(torch.relu(cell).sum())
        elif v is None:
            targets.append(cell.sum())
        else:
            targets.append((cell * v.to(cell.dtype)).sum())
    if backward == "batched" and len(targets) > 1:
        y = torch.stack(targets)
        eye = torch.eye(len(targets), dtype=y.dtype, device=y.device)
        (g,) = torch.autograd.grad(y, x, grad_outputs=eye, is_grads_batched=True)
    else:
        g = torch.stack([torch.autograd.grad(t, x, retain_graph=k < len(targets) - 1)[0]
                         for k, t in enumerate(targets)])
    if mode == "energy":
        return g.square().sum(2)
    if mode == "abs":
        return g.abs().sum(2)
    return g.clamp_min(0).sum(2)


def resolve_backward(backward: str, device: str, levels: int) -> str:
    """``auto``: measured (benchmarks/bench_erf.py), on CPU the vmapped backward is slower than a
    loop, since every level's pass then runs through the whole network; on CUDA it is faster."""
    if backward != "auto":
        return backward
    return "batched" if device.startswith("cuda") and levels > 1 else "loop"


def auto_batch_size(net: Network, window: ComputeWindow, dtype: torch.dtype, device: str,
                    levels: int) -> int:
    """Samples per forward pass, from the activation memory of one sample on ``window``.

    On CUDA a quarter of the free memory (up to 32 samples). On CPU a small budget (64 MiB):
    measured there (benchmarks/bench_erf.py, SSD300), batching large windows is *slower* per
    sample than one sample at a time (the activations no longer stay in cache) and small windows
    gain a little from a few samples per pass."""
    shapes = getattr(net.traced, "shapes", {}) or {}
    h, w = net.input_size
    scale = window.area / max(h * w, 1)
    per_sample = sum(math.prod(s[1:]) for s in shapes.values() if len(s) >= 3)
    per_sample = per_sample * scale * torch.finfo(dtype).bits / 8 * 2
    per_sample += 3 * window.area * levels * torch.finfo(dtype).bits / 8 * 2
    budget, cap = 64 * 2**20, 8
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info()
        budget, cap = free // 4, 32
    return int(max(1, min(cap, budget // max(per_sample, 1))))


@dataclass
class Layout:
    """The memory format all passes run in (they share one module's weights). Channels-last is
    about 15 % faster on CPU (oneDNN runs NHWC without reorders; VGG, measured), but it changes
    the float rounding of convolutions, and near-ties of max pooling then route some gradients
    to the other pixel: the maps differ by a few % of their peak per sample. So it is opt-in. A
    module that rejects it (a ``view`` of a non-contiguous tensor) switches every pass back."""

    module: nn.Module
    channels_last: bool

    def __post_init__(self) -> None:
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)

    def fall_back(self) -> None:
        self.channels_last = False
        self.module.to(memory_format=torch.contiguous_format)


@dataclass
class PassRunner:
    """One pass of the schedule: its sub-module (sharing the prepared module's weights), its
    window and its batch size."""

    spec: Pass
    module: nn.Module
    batch: int
    layout: Layout
    cells: tuple[tuple[int, int], ...]
    cone_crops: int = 0

    def maps(self, x: torch.Tensor, vectors: Sequence[torch.Tensor | None], mode: str,
             backward: str) -> torch.Tensor:
        """(levels, B, h, w) maps of this pass's levels for a batch already cropped to its window."""
        cells = self.cells
        if self.layout.channels_last:
            try:
                return level_maps(self.module, x.contiguous(memory_format=torch.channels_last),
                                  cells, vectors, mode, backward)
            except RuntimeError:
                self.layout.fall_back()
        return level_maps(self.module, x, cells, vectors, mode, backward)


def crop_to_cone(net: Network, runner: PassRunner, plans: Sequence[LevelPlan]) -> None:
    """Put the cone crops of the pass's cells into the runner's (own copy of the) module."""
    from anchorfit.erf.cone import apply_crops, plan_cone
    from anchorfit.erf.window import window_analysis

    win = runner.spec.window
    graph, analysis = window_analysis(net, plans, win)
    boxes = [tuple((p.box[a][0] - win.origin[a], p.box[a][1] - win.origin[a]) for a in range(2))
             for p in plans]
    fx_names = {n.name for n in runner.module.graph.nodes}
    nodes = [p.node for p in plans]
    cone = plan_cone(graph, analysis, nodes, runner.cells, boxes,  # type: ignore[arg-type]
                     allowed=fx_names, margin=CHECK_MARGIN)
    if cone is None:
        return
    runner.module = apply_crops(outputs_module(runner.module, nodes), cone.crops)
    runner.cells = cone.cells
    runner.cone_crops = len(cone.crops)


def build_runners(net: Network, sub: nn.Module, plans: Sequence[LevelPlan],
                  passes: Sequence[Pass], layout: Layout, *, batch_size: int | None,
                  dtype: torch.dtype, device: str, cone: bool) -> list[PassRunner]:
    """A runner per pass: the prepared module itself when the pass holds every level, else the
    part of it computing the pass's levels; batch size given or from the memory budget; the
    cone crops when the pass runs on a cropped window."""
    runners = []
    for spec in passes:
        module = sub if len(spec.levels) == len(plans) else outputs_module(
            sub, [plans[k].node for k in spec.levels])  # type: ignore[arg-type]
        size = batch_size or auto_batch_size(net, spec.window, dtype, device, len(spec.levels))
        runner = PassRunner(spec, module, size, layout, spec.window.cells)
        if cone and spec.window.cropped:
            crop_to_cone(net, runner, [plans[k] for k in spec.levels])
        runners.append(runner)
    return runners


def level_channels(net: Network, sub: nn.Module, plans: Sequence[LevelPlan],
                   first_input: Callable[[], torch.Tensor]) -> list[int]:
    """Channels of each level (the cotangents' length): from the traced shapes, else from a
    forward pass of one sample (``first_input``, only called then)."""
    shapes = getattr(net.traced, "shapes", {}) or {}
    found = [shapes.get(p.node) for p in plans]
    if all(s is not None and len(s) == 4 for s in found):
        return [int(s[1]) for s in found]  # type: ignore[index]
    with torch.no_grad():
        feats = sub(first_input()[:1])
    feats = (feats,) if isinstance(feats, torch.Tensor) else feats
    return [int(f.shape[1]) for f in feats]


def chunk_maps(runners: Sequence[PassRunner], images: torch.Tensor, indices: Sequence[int],
               draw: int, *, seed: int, channels: Sequence[int] | None, mode: str, backward: str,
               device: str, dtype: torch.dtype
               ) -> Iterator[tuple[int, torch.Tensor, ComputeWindow]]:
    """Every pass on this chunk of full-size inputs (samples ``indices`` of ``draw``), each cut
    to its window and split into the pass's batches: yields (level, maps (B, h, w), window).
    ``channels`` None: no cotangent (all ones, or RepLKNet's ReLU of the centre)."""
    for runner in runners:
        win = runner.spec.window
        for b0 in range(0, len(indices), runner.batch):
            part = list(indices[b0:b0 + runner.batch])
            x = images[b0:b0 + len(part), :, win.y0:win.y1, win.x0:win.x1]
            x = x.to(device=device, dtype=dtype)
            vecs: list[torch.Tensor | None] = [
                cotangents(seed, draw, part, k, channels[k]).to(device)
                if channels else None for k in runner.spec.levels]
            maps = runner.maps(x, vecs, mode, backward).detach()
            for m, k in zip(maps, runner.spec.levels):
                yield k, m, win
