"""The ERF estimator: gradient-energy maps of one cell per detection level, averaged over samples.

Method (research/erf.md §4): for level ℓ, the cell u whose RF centre is nearest the image centre
with its whole RF inside the input, a seeded Rademacher cotangent v over the level's channels and
an input x, the map is A(p) = Σ_c (∂(vᵀF_ℓ[:, u]) / ∂x_c(p))². Averaged over inputs (and weight
draws) it is the channel-summed gradient energy, unbiased from one backward pass per level. Modes
``abs`` (Σ_c |g_c| with v = 1, Luo's pictures) and ``replknet`` (ReLU of the centre activations
summed, ReLU of the gradient, RepLKNet/SLaK) are there for comparison with published figures.

Speed (``anchorfit.erf.window``): for networks without global context every level runs on a
*window* of the input holding its cell's RF: pixels outside a cell's RF cannot change it, so the
maps are exactly those of the full input (up to the float rounding of differently sized
convolutions), at a fraction of the cost. Levels are grouped into passes: one forward pass of the
sub-network up to a pass's levels per batch of samples, then the levels' backward passes (batched
with ``is_grads_batched`` or looped), inner feature maps cropped to the cells' cones
(``anchorfit.erf.cone``). On CPU a few samples per batch at most: measured there, larger batches
are slower per sample (benchmarks/bench_erf.py).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from anchorfit.errors import AnchorfitError
from anchorfit.erf import stats as st
from anchorfit.erf.result import ERFResult, LevelERF
from anchorfit.erf.window import CHECK_MARGIN, ComputeWindow, Pass, schedule_passes
from anchorfit.rf.engine import NodeRF, RFAnalysis, extend

MODES = ("energy", "abs", "replknet")
BACKWARDS = ("auto", "batched", "loop")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- the cell per level


@dataclass(frozen=True)
class LevelPlan:
    """The cell measured on one level, in input coordinates (index convention)."""

    name: str  # the user's layer name
    node: str  # IR / fx node
    rf: NodeRF
    cell: tuple[int, int]
    box: tuple[tuple[int, int], tuple[int, int]]  # rows [y0, y1], cols [x0, x1] of its RF
    head: NodeRF | None = None

    @property
    def center2(self) -> tuple[int, int]:
        """Doubled RF centre of the cell (integers; the centre may be a half-integer)."""
        return (self.box[0][0] + self.box[0][1], self.box[1][0] + self.box[1][1])

    @property
    def center(self) -> tuple[Fraction, Fraction]:
        return (Fraction(self.center2[0], 2), Fraction(self.center2[1], 2))


def nearest_fitting(amap: Any, n: int, inside: bool = True) -> int | None:
    """On one axis of ``n`` pixels: the index whose RF centre is nearest the centre among those
    whose whole RF is inside (``inside=False``: among all; ties: the smaller index); None when
    none fits."""
    best: tuple[int, int] | None = None
    for o in range(amap.size):
        lo, hi = amap.start(o), amap.end(o)
        if lo is None or hi is None or (inside and (lo < 0 or hi > n - 1)):
            continue
        key = (abs(lo + hi - (n - 1)), o)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def choose_cell(rf: NodeRF, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """The cell whose RF centre is nearest the image centre among those whose whole RF is inside
    the input (ties: the smaller index); None when no cell's RF fits. After a global op (YOLOv1's
    connected layer) every cell sees the whole input at any size: the cell nearest the centre."""
    inside = not rf.global_context
    picked = [nearest_fitting(amap, n, inside) for amap, n in zip(rf.axes, input_size)]
    if picked[0] is None or picked[1] is None:
        return None
    return (picked[0], picked[1])


def required_input(rfs: Sequence[NodeRF], margin_strides: int = 2,
                   multiple: tuple[int, int] | None = None) -> tuple[int, int]:
    """Input size (H, W) for these levels: max RF + 2 margins of ``margin_strides`` × the largest
    stride, rounded up to a multiple of the largest stride (research/erf.md §4.3) and of
    ``multiple`` (``size_multiple``: what the network's deepest ancestor needs)."""
    size = []
    for axis in range(2):
        stride = max(math.ceil(r.axes[axis].stride) for r in rfs)
        need = max(r.axes[axis].rf for r in rfs) + 2 * margin_strides * stride
        unit = math.lcm(stride, multiple[axis]) if multiple else stride
        size.append(-(-need // unit) * unit)
    return (size[0], size[1])


def size_multiple(graph: Any, analysis: RFAnalysis, nodes: Sequence[str]) -> tuple[int, int]:
    """The lcm of the (integer) strides of every ancestor of ``nodes``, per axis: an input that
    is a multiple of it keeps every map of a top-down path (FPN, YOLO necks, which upsample a
    deeper map and merge it) the size of the map it merges with."""
    from anchorfit.erf.window import ancestors

    unit = [1, 1]
    for n in ancestors(graph, list(nodes)):
        for axis, amap in enumerate(analysis.nodes[n].axes):
            unit[axis] = math.lcm(unit[axis], max(math.ceil(amap.stride), 1))
    return (unit[0], unit[1])


def plan_levels(net: Any, layers: Sequence[str], analysis: RFAnalysis | None = None
                ) -> list[LevelPlan]:
    """Pick the cell of every layer; raise when the input is too small for one of them."""
    analysis = analysis or net.analyze()
    h, w = analysis.input_size
    plans = []
    for name in layers:
        node = net.node(name)
        rf = analysis[node]
        if rf.spatial_dims != 2:
            raise AnchorfitError(f"layer {name!r} is not an image feature map (no 2-D layout)",
                                 hint="pick a convolutional layer")
        cell = choose_cell(rf, (h, w))
        if cell is None:
            need = required_input([rf], multiple=size_multiple(net.graph, analysis, [node]))
            raise AnchorfitError(
                f"input {h}x{w} is smaller than layer {name!r} needs: its RF is "
                f"{rf.rf[0]}x{rf.rf[1]} (stride {float(rf.stride[0]):g}) and no cell's RF lies "
                "inside the input",
                hint=f"use --input {need[0]}x{need[1]} or larger, or leave --input out")
        i, j = cell
        box = ((rf.y.start(i), rf.y.end(i)), (rf.x.start(j), rf.x.end(j)))
        if rf.global_context:  # it reads every pixel: its RF is the input
            box = ((0, h - 1), (0, w - 1))
        head_ops = getattr(net, "heads", {}).get(name)
        head = extend(rf, head_ops) if head_ops else None
        plans.append(LevelPlan(name, node, rf, cell, box, head))  # type: ignore[arg-type]
    return plans


def load_network(model: str, input_size: tuple[int, int] | None = None,
                 layers: Sequence[str] | None = None, *, seed: int = 0,
                 unknown: str = "error") -> Any:
    """``models.load(model, ..., materialize=True)`` with the weights drawn under ``seed``, at
    ``input_size`` or, without one, at the size the levels need (``required_input``)."""
    from anchorfit import load as models

    def build(size: tuple[int, int] | None) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return models.load(model, size, unknown=unknown, materialize=True)  # type: ignore[arg-type]

    if input_size is not None:
        return build(input_size)
    probe = models.load(model, None, unknown=unknown)  # type: ignore[arg-type]
    analysis = probe.analyze()
    names = models.layer_names(probe, layers)
    nodes = [probe.node(n) for n in names]
    size = required_input([analysis[n] for n in nodes],
                          multiple=size_multiple(probe.graph, analysis, nodes))
    return build(size)


# --------------------------------------------------------------------------- inputs


def _generator(seed: int, *stream: int) -> torch.Generator:
    """An independent CPU generator for (seed, stream...): results never depend on batch size."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class NoiseSource:
    """Seeded N(0, 1) images of the nominal input size, one generator per (draw, sample)."""

    kind = "noise"

    def __init__(self, channels: int, size: tuple[int, int], seed: int = 0) -> None:
        self.channels, self.size, self.seed = channels, size, seed
        self.count: int | None = None

    def batch(self, indices: Sequence[int], draw: int = 0) -> torch.Tensor:
        return torch.stack([torch.randn(self.channels, *self.size,
                                        generator=_generator(self.seed, 1, draw, k))
                            for k in indices])

    def describe(self) -> str:
        return "noise"


class ImageSource:
    """Images of a folder (sorted, then shuffled with the seed), resized to the input size with
    bilinear interpolation and normalised with the network's mean/std."""

    kind = "images"

    def __init__(self, folder: str | Path, channels: int, size: tuple[int, int], seed: int = 0,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise AnchorfitError("not a readable folder of images", source=folder,
                                 hint="--images takes a folder of .jpg/.png files")
        try:
            files = sorted(p for p in folder.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as exc:
            raise AnchorfitError(f"cannot list the folder: {exc.strerror}", source=folder) from None
        if not files:
            raise AnchorfitError("no images in the folder", source=folder,
                                 hint="expected files ending in " + ", ".join(IMAGE_SUFFIXES))
        if channels not in (1, 3):
            raise AnchorfitError(f"--images needs a 1- or 3-channel network, this one takes "
                                 f"{channels} channels")
        order = np.random.default_rng(seed).permutation(len(files))
        self.files = [files[i] for i in order]
        self.folder, self.channels, self.size = folder, channels, size
        mean, std = list(mean)[:channels], list(std)[:channels]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.count = len(self.files)

    def load(self, path: Path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img = img.convert("RGB" if self.channels == 3 else "L")
                img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise AnchorfitError(f"cannot read image: {exc}", source=path) from None
        t = torch.from_numpy(arr.copy())
        t = t.permute(2, 0, 1) if t.dim() == 3 else t[None]
        return (t - self.mean) / self.std

    def batch(self, indices: Sequence[int], draw: int = 0) -> torch.Tensor:
        return torch.stack([self.load(self.files[k % len(self.files)]) for k in indices])

    def describe(self) -> str:
        return str(self.folder)


def image_normalisation(module: Any) -> tuple[Sequence[float], Sequence[float]]:
    """The mean/std a torchvision detector's transform uses, else ImageNet's."""
    transform = getattr(module, "transform", None)
    mean = getattr(transform, "image_mean", None)
    std = getattr(transform, "image_std", None)
    if mean is not None and std is not None:
        return list(mean), list(std)
    return IMAGENET_MEAN, IMAGENET_STD


# --------------------------------------------------------------------------- weights


def load_checkpoint(module: nn.Module, path: str | Path) -> str:
    """Load a state dict (or a dict holding one under state_dict/model) into ``module`` or, for a
    detector, its backbone. Returns which one it went into; raises when it does not fit."""
    path = Path(path)
    if not path.is_file():
        raise AnchorfitError("no such checkpoint file", source=path,
                             hint="--weights takes random, uniform or a .pt/.pth state dict")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnchorfitError(f"cannot read the checkpoint: {first}", source=path,
                             hint="expected a file saved with torch.save(model.state_dict(), ...)"
                             ) from None
    if isinstance(data, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise AnchorfitError("the checkpoint holds no state dict of tensors", source=path)
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in data.items()}
    targets = [("model", module)]
    if isinstance(getattr(module, "backbone", None), nn.Module):
        targets.append(("backbone", module.backbone))
    problems = []
    for label, target in targets:
        own = target.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
        if not missing and not unexpected and not shapes:
            target.load_state_dict(state, strict=True)
            return label
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            detail.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
        problems.append(f"{label}: " + ", ".join(detail))
    raise AnchorfitError("the checkpoint does not fit the network: " + "; ".join(problems),
                         source=path, hint="is it a checkpoint of this model?")


def redraw_weights(module: nn.Module, generator: torch.Generator) -> None:
    """A new weight draw with the scale of the current one: every conv/linear weight is redrawn as
    N(0, std²) of its own current std (Luo's analysis depends on the weight variance only)."""
    with torch.no_grad():
        for m in module.modules():
            weight = getattr(m, "weight", None)
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and isinstance(
                    weight, torch.Tensor) and weight.numel() > 1:
                std = float(weight.float().std())
                if std > 0:
                    fresh = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
                    weight.copy_((fresh * std).to(weight.dtype))


def _materialize(module: nn.Module, seed: int) -> bool:
    """Real tensors for a module built on the meta device (a format reader's network): PyTorch's
    default initialisation under ``seed``. Returns whether anything was done."""
    if not any(t.is_meta for t in list(module.parameters()) + list(module.buffers())):
        return False
    module.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            if hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
    return True


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate_batchnorm(module: nn.Module, batches: Iterator[torch.Tensor]) -> int:
    """Recompute BatchNorm running statistics (cumulative average over ``batches``), then eval.

    At random init the stored statistics are (0, 1), so eval-mode BN is about the identity and
    activations blow up or vanish; research/erf.md §2.6-1. Returns the number of BN layers."""
    bns = batch_norms(module)
    if not bns:
        return 0
    module.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            for x in batches:
                module(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        module.eval()
    return len(bns)


# --------------------------------------------------------------------------- the core


def outputs_module(gm: torch.fx.GraphModule, nodes: Sequence[str]) -> torch.fx.GraphModule:
    """A GraphModule computing only ``nodes`` of ``gm`` (a tuple), sharing its sub-modules."""
    from anchorfit.rf.probe import outputs_module as _outputs_module

    return _outputs_module(gm, list(nodes))


def cotangents(seed: int, draw: int, indices: Sequence[int], level: int, channels: int,
               ) -> torch.Tensor:
    """Seeded Rademacher vectors (B, C) for one level: one per (draw, sample, level)."""
    return torch.stack([torch.randint(0, 2, (channels,), generator=_generator(seed, 2, draw, k, level))
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


def auto_batch_size(net: Any, window: ComputeWindow, dtype: torch.dtype, device: str,
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
class _Layout:
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
class _PassRunner:
    """One pass of the schedule: its sub-module (sharing the prepared module's weights), its
    window and its batch size."""

    spec: Pass
    module: nn.Module
    batch: int
    layout: _Layout
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


# --------------------------------------------------------------------------- the estimator


def _progress(enabled: bool, total: int, description: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
        TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                        disable=not enabled)
    task = progress.add_task(description, total=total)
    return progress, task


def _prepare_module(net: Any, nodes: Sequence[str], weights: str, seed: int,
                    notes: list[str]) -> nn.Module:
    if net.traced is None or getattr(net.traced, "gm", None) is None:
        raise AnchorfitError(f"{net.name} has no traced torch module; the ERF needs one",
                             hint="use a torchvision name, a factory, or a format whose reader "
                                  "builds a torch module")
    if weights == "uniform":
        from anchorfit.rf.probe import linearize

        return outputs_module(linearize(net.traced), nodes)
    sub = copy.deepcopy(outputs_module(net.traced.gm, nodes))
    if _materialize(sub, seed):
        notes.append("the network was built without weights: PyTorch's default initialisation "
                     f"was used (seed {seed})")
    return sub


def estimate(net: Any, layers: Sequence[str] | None = None, *, samples: int = 32,
             until_ci: bool = False, max_samples: int = 1024, ci_target: float = 0.02,
             mode: str = "energy", weights: str = "random", images: str | Path | None = None,
             seed: int = 0, device: str = "cpu", dtype: torch.dtype = torch.float32,
             batch_size: int | None = None, weight_draws: int = 1, calibrate: int = 8,
             backward: str = "auto", crop: bool = True, schedule: str = "auto",
             channels_last: bool = False, cone: bool = True, fit: bool = False,
             anchors: dict[str, tuple[float, float]] | None = None, n_boot: int = 1000,
             ci_level: float = 0.95, progress: bool = False,
             on_batch: Callable[[int], None] | None = None) -> ERFResult:
    """Measure the ERF of ``layers`` (default: the network's detection levels) of ``net``.

    ``net`` is an ``anchorfit.models.Network`` with a traced torch module (``models.load(...,
    materialize=True)``), analysed at the input size to use. ``weights``: ``"random"`` (the
    module's weights as built, BatchNorm statistics recalibrated on the first ``calibrate``
    samples), ``"as_is"`` (no recalibration), ``"uniform"`` (the linearised all-positive copy of
    the gradient probe: Luo's analytic baseline) or a checkpoint path. ``weight_draws`` > 1 adds
    seeded redraws of the conv weights (same per-tensor scale) and bootstraps hierarchically.
    ``until_ci`` keeps sampling until every σ's CI half-width is under ``ci_target`` × σ (or
    ``max_samples``). ``anchors`` maps a layer to an anchor (h, w) for anchor/ERF; the default is
    S3FD's 4 × stride.

    Speed knobs (none changes the maps beyond float rounding): ``schedule`` groups the levels into
    passes (``anchorfit.erf.window``: ``joint``, ``per-level`` or ``auto``, the one doing less
    work); ``crop=False`` runs on the whole input; ``backward`` picks how a joint pass runs its
    levels' backward passes; ``cone`` crops a pass's inner feature maps to its cells' cones
    (``anchorfit.erf.cone``); ``channels_last`` the memory format (default: off, as it
    changes float rounding and so, through near-ties of max pooling, the maps);
    ``batch_size`` the samples per forward pass (default: from a memory budget per pass).
    """
    from anchorfit.rf.network import layer_names

    started = time.perf_counter()
    if mode not in MODES:
        raise AnchorfitError(f"unknown mode {mode!r}", hint="one of " + ", ".join(MODES))
    if backward not in BACKWARDS:
        raise AnchorfitError(f"unknown backward {backward!r}", hint="one of " + ", ".join(BACKWARDS))
    if samples < 1 or max_samples < 1 or weight_draws < 1:
        raise AnchorfitError("--samples, --max-samples and --weight-draws must be positive")
    if batch_size is not None and batch_size < 1:
        raise AnchorfitError(f"--batch-size {batch_size}: must be at least 1")
    if until_ci and weight_draws > 1:
        raise AnchorfitError("--until-ci works with one weight draw", hint="drop --weight-draws")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AnchorfitError(f"--device {device}: CUDA is not available here",
                             hint="use --device cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise AnchorfitError(f"--device {device!r} is not a torch device") from None
    notes: list[str] = []
    layers = layer_names(net, layers)
    analysis = net.analyze()
    plans = plan_levels(net, layers, analysis)
    passes, schedule = schedule_passes(net, analysis, plans, crop, schedule)
    for reason in dict.fromkeys(p.window.reason for p in passes if p.window.reason):
        notes.append(reason)

    checkpoint = None
    if weights not in ("random", "as_is", "uniform"):
        checkpoint = str(weights)
        if net.module is None:
            raise AnchorfitError(f"{net.name} has no torch module to load weights into")
        load_checkpoint(net.module, weights)
    sub = _prepare_module(net, [p.node for p in plans], weights, seed, notes)
    sub = sub.to(device=device, dtype=dtype).eval()
    for p in sub.parameters():
        p.requires_grad_(False)
    layout = _Layout(sub, channels_last)
    runners = []
    for spec in passes:
        module = sub if len(spec.levels) == len(plans) else outputs_module(
            sub, [plans[k].node for k in spec.levels])
        size = batch_size or auto_batch_size(net, spec.window, dtype, device, len(spec.levels))
        runner = _PassRunner(spec, module, size, layout, spec.window.cells)
        if cone and spec.window.cropped:
            _crop_to_cone(net, runner, [plans[k] for k in spec.levels])
        runners.append(runner)
    window_of = {k: r.spec.window for r in runners for k in r.spec.levels}

    channels = getattr(net, "in_channels", 3)
    h, w = analysis.input_size
    if images is not None:
        mean, std = image_normalisation(net.module)
        source: NoiseSource | ImageSource = ImageSource(images, channels, (h, w), seed, mean, std)
        if source.count is not None and source.count < (max_samples if until_ci else samples):
            notes.append(f"{source.count} images in {images}: using each once")
            samples = min(samples, source.count)
            max_samples = min(max_samples, source.count)
    else:
        source = NoiseSource(channels, (h, w), seed)
    linear_uniform = weights == "uniform"
    if linear_uniform and not until_ci and samples > 1 and mode != "replknet":
        notes.append("uniform weights make the network linear: every sample gives the same map")
    if backward == "auto":
        # measured (benchmarks/bench_erf.py): on CPU the vmapped backward is slower than a loop,
        # since every level's pass then runs through the whole network
        backward = "batched" if device.startswith("cuda") and len(plans) > 1 else "loop"
    chunk = max(r.batch for r in runners)  # samples drawn per step, shared by all passes
    kindex = [st.chebyshev_index(window_of[k].shape, window_of[k].origin, p.center2, device)
              for k, p in enumerate(plans)]
    channels_out: list[int] = []

    def calibration(draw: int) -> Iterator[torch.Tensor]:
        # one sample at a time on the whole input, so that the statistics (and so the maps)
        # depend neither on the window nor on the batch size
        n = min(calibrate, source.count) if source.count is not None else calibrate
        for k in range(n):
            yield source.batch([k], draw).to(device=device, dtype=dtype)

    def run_passes(images_: torch.Tensor, indices: Sequence[int], draw: int) -> None:
        """Every pass on this chunk of full-size inputs, adding rows and sums per level."""
        nonlocal channels_out
        if mode == "energy" and not linear_uniform and not channels_out:
            channels_out = _level_channels(net, sub, images_[:1].to(device=device, dtype=dtype),
                                           plans)
        for runner in runners:
            win = runner.spec.window
            for b0 in range(0, len(indices), runner.batch):
                part = list(indices[b0:b0 + runner.batch])
                x = images_[b0:b0 + len(part), :, win.y0:win.y1, win.x0:win.x1]
                x = x.to(device=device, dtype=dtype)
                vecs: list[torch.Tensor | None] = [
                    cotangents(seed, draw, part, k, channels_out[k]).to(device)
                    if channels_out else None for k in runner.spec.levels]
                maps = runner.maps(x, vecs, mode, backward).detach()
                for m, k in zip(maps, runner.spec.levels):
                    rows[k].append(st.sample_rows(m, win.origin, plans[k].center2, kindex[k]))
                    sums[k] += m.sum(0).to(torch.float64)

    has_bn = bool(batch_norms(sub)) and weights in ("random",)
    total = max_samples if until_ci else samples * weight_draws
    rows: list[list[np.ndarray]] = [[] for _ in plans]
    draw_of_row: list[int] = []
    sums = [torch.zeros(window_of[k].shape, dtype=torch.float64, device=device)
            for k in range(len(plans))]
    converged: bool | None = None
    done = 0
    bar, task = _progress(progress, total, "ERF samples")
    with bar:
        for draw in range(weight_draws):
            if draw > 0:
                redraw_weights(sub, _generator(seed, 3, draw))
            if has_bn:
                recalibrate_batchnorm(sub, calibration(draw))
            per_draw = max_samples if until_ci else samples
            k = 0
            while k < per_draw:
                indices = list(range(k, min(k + chunk, per_draw)))
                run_passes(source.batch(indices, draw), indices, draw)
                draw_of_row.extend([draw] * len(indices))
                k += len(indices)
                done += len(indices)
                bar.update(task, completed=done)
                if on_batch is not None:
                    on_batch(done)
                if until_ci and k >= max(samples, 8):
                    converged = _ci_converged(rows, draw_of_row, plans, n_boot, seed, ci_level,
                                              ci_target)
                    if converged:
                        break
    if until_ci and not converged:
        notes.append(f"--until-ci: σ's CI half-width is still above {ci_target:.0%} after "
                     f"{done} samples (the cap)")
    levels = []
    for lvl, plan in enumerate(plans):
        level_rows = np.concatenate(rows[lvl])
        mean_map = (sums[lvl] / done).cpu().numpy()
        anchor = anchors.get(plan.name) if anchors else None
        levels.append(_summarize_level(plan, level_rows, np.asarray(draw_of_row), mean_map,
                                       window_of[lvl].origin, mode, fit, anchor, n_boot, seed,
                                       ci_level))
    for runner in runners:
        for k in runner.spec.levels:
            levels[k].cone_crops = runner.cone_crops
    for lv in levels:
        if lv.zero_outside_rf is False:
            notes.append(f"{lv.name}: the map is not zero outside the theoretical RF "
                         f"({lv.outside_rf_mass:.2e} of the mass): an op mixes positions or "
                         "samples (BatchNorm in train mode, a global op the tracer missed)")
    wins = [r.spec.window for r in runners]
    bounds = ((min(x.y0 for x in wins), max(x.y1 for x in wins)),
              (min(x.x0 for x in wins), max(x.x1 for x in wins)))
    return ERFResult(
        model=net.name, input_size=(h, w), mode=mode,
        weights=checkpoint or weights, inputs=source.describe(), seed=seed, samples=done,
        weight_draws=weight_draws, device=device, dtype=str(dtype).replace("torch.", ""),
        window=bounds, cropped=all(x.cropped for x in wins), schedule=schedule,
        passes=[[plans[k].name for k in r.spec.levels] for r in runners],
        channels_last=layout.channels_last,
        backward=backward, batch_size=chunk, ci_level=ci_level, n_boot=n_boot,
        until_ci=until_ci, ci_target=ci_target if until_ci else None, converged=converged,
        levels=levels, notes=notes + list(getattr(net, "notes", [])),
        seconds=time.perf_counter() - started, kind=getattr(net, "kind", "network"))


def _crop_to_cone(net: Any, runner: _PassRunner, plans: Sequence[LevelPlan]) -> None:
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


def _level_channels(net: Any, sub: nn.Module, x: torch.Tensor,
                    plans: Sequence[LevelPlan]) -> list[int]:
    """Channels of each level: from the traced shapes, else from a forward pass of one sample."""
    shapes = getattr(net.traced, "shapes", {}) or {}
    found = [shapes.get(p.node) for p in plans]
    if all(s is not None and len(s) == 4 for s in found):
        return [int(s[1]) for s in found]  # type: ignore[index]
    with torch.no_grad():
        feats = sub(x[:1])
    feats = (feats,) if isinstance(feats, torch.Tensor) else feats
    return [int(f.shape[1]) for f in feats]


def _ci_converged(rows: list[list[np.ndarray]], draws: list[int], plans: Sequence[LevelPlan],
                  n_boot: int, seed: int, level: float, target: float) -> bool:
    for lvl, plan in enumerate(plans):
        data = np.concatenate(rows[lvl])
        boot = st.summarize(st.bootstrap_sums(data, np.asarray(draws), n_boot, seed),
                            plan.center2)
        point = st.summarize(data.sum(0), plan.center2)
        ci = st.percentile_ci(boot.sigma, level)
        half = (ci[:, 1] - ci[:, 0]) / 2
        if not np.all(half <= target * point.sigma):
            return False
    return True


def _summarize_level(plan: LevelPlan, rows: np.ndarray, draws: np.ndarray, mean_map: np.ndarray,
                     origin: tuple[int, int], mode: str, fit: bool,
                     anchor: tuple[float, float] | None, n_boot: int, seed: int,
                     ci_level: float) -> LevelERF:
    point = st.summarize(rows.sum(0), plan.center2)
    boot = st.summarize(st.bootstrap_sums(rows, draws, n_boot, seed), plan.center2)
    (y0, y1), (x0, x1) = plan.box
    beyond = mean_map.copy()
    beyond[max(y0 - origin[0], 0):y1 - origin[0] + 1, max(x0 - origin[1], 0):x1 - origin[1] + 1] = 0
    total = mean_map.sum()
    outside = float(np.abs(beyond).sum() / total) if total > 0 else 0.0
    zero_outside = None if plan.rf.global_context else not bool(np.any(beyond != 0))
    stride = tuple(float(s) for s in plan.rf.stride)
    if anchor is None:
        anchor = (4 * stride[0], 4 * stride[1])
        anchor_rule = "4*stride"
    else:
        anchor_rule = "given"
    extra: dict[str, Any] = {}
    if mode == "replknet":
        data = st.replknet_normalise(mean_map)
        extra["replknet_area"] = {st.square_key(t): (None if r is None else r[1])
                                  for t in (0.2, 0.3, 0.5, 0.99)
                                  for r in [st.replknet_area_ratio(data, t)]}
    return LevelERF(
        name=plan.name, node=plan.node, rf=plan.rf, head=plan.head, cell=plan.cell, box=plan.box,
        center=plan.center, samples=int(rows.shape[0]), total_mass=float(rows[:, 0].sum()),
        centroid=point.centroid, centroid_ci=st.percentile_ci(boot.centroid, ci_level),
        sigma=point.sigma, sigma_ci=st.percentile_ci(boot.sigma, ci_level),
        squares=dict(zip(st.SQUARE_LEVELS, point.squares.tolist())),
        squares_ci={q: st.percentile_ci(boot.squares[:, i], ci_level)
                    for i, q in enumerate(st.SQUARE_LEVELS)},
        threshold=st.threshold_region(mean_map, origin, plan.center2),
        gaussian=st.gaussian_fit(mean_map, origin) if fit else None,
        zero_outside_rf=zero_outside, outside_rf_mass=outside,
        anchor=anchor, anchor_rule=anchor_rule, mean_map=mean_map, origin=origin, extra=extra)
