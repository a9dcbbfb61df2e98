"""The ERF estimator: gradient-energy maps of one cell per detection level, averaged over samples.

Method (research/erf.md §4): for level ℓ, the cell u whose RF centre is nearest the image centre
with its whole RF inside the input (``cells``), a seeded Rademacher cotangent v over the level's
channels and an input x (``sources``), the map is A(p) = Σ_c (∂(vᵀF_ℓ[:, u]) / ∂x_c(p))².
Averaged over inputs (and weight draws, ``weights``) it is the channel-summed gradient energy,
unbiased from one backward pass per level. Modes ``abs`` (Σ_c |g_c| with v = 1, Luo's pictures)
and ``replknet`` (ReLU of the centre activations summed, ReLU of the gradient, RepLKNet/SLaK) are
there for comparison with published figures.

Speed (``window``, ``cone``, ``passes``): for networks without global context every level runs
on a *window* of the input holding its cell's RF: pixels outside a cell's RF cannot change it, so
the maps are exactly those of the full input (up to the float rounding of differently sized
convolutions), at a fraction of the cost.

This module holds the sampling loop and the summary; ``estimate(net, layers, config)`` takes a
network already built (resolving a MODEL string is the caller's job) and one ``ErfConfig``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from anchorfit.data.progress import TaskMeter, duration
from anchorfit.erf import stats as st
from anchorfit.erf.cells import LevelPlan, plan_levels
from anchorfit.erf.config import ErfConfig
from anchorfit.erf.passes import (Layout, PassRunner, build_runners, chunk_maps, level_channels,
                                  resolve_backward)
from anchorfit.erf.result import ERFResult, LevelERF
from anchorfit.erf.sources import REDRAWS, Source, calibration_batches, generator, input_source
from anchorfit.erf.weights import needs_recalibration, prepare_module, recalibrate_batchnorm, \
    redraw_weights
from anchorfit.erf.window import ComputeWindow, schedule_passes
from anchorfit.rf.network import layer_names

if TYPE_CHECKING:
    from anchorfit.load import Network


def _shorten(config: ErfConfig, rate: float, options: Mapping[str, str] | None) -> list[str]:
    """Ways to shorten a run whose samples take ``rate`` seconds each: fewer samples (about a
    minute's worth), a GPU, channels-last. ``options`` maps each setting the caller offers to
    its spelling ("samples" -> "--samples"); a setting it does not offer is not suggested.
    Without ``options`` (a Python caller) settings are spelled as keywords ("samples=8")."""
    def spell(param: str, value: Any) -> str | None:
        if options is None:
            return f"{param}={value!r}"
        if param not in options:
            return None
        return options[param] if value is True else f"{options[param]} {value}"

    hints: list[str | None] = []
    budget = max(4, int(60 / rate)) if rate > 0 else 4
    if config.until_ci:
        if budget < config.max_samples:
            cap = spell("max_samples", budget)
            hints.append(cap and f"{cap} (a cap of ~{duration(budget * rate)})")
        target = spell("ci_target", 0.05)
        hints.append(target and f"{target} (a looser target)")
    elif budget < config.samples:  # type: ignore[operator]
        fewer = spell("samples", budget)
        hints.append(fewer and f"{fewer} (~{duration(budget * rate)}, a wider interval)")
    if config.weight_draws > 1:
        hints.append(spell("weight_draws", 1))
    if config.device == "cpu":
        if torch.cuda.is_available():
            hints.append(spell("device", "cuda"))
        if not config.channels_last:
            faster = spell("channels_last", True)
            hints.append(faster and f"{faster} (about 15 % faster on CPU)")
    return [h for h in hints if h]


@dataclass
class _Tally:
    """What the samples leave behind, per level: one row of moments per sample (for the point
    estimates and the bootstrap), the running sum of maps (for the mean map), and each row's
    weight draw (for the hierarchical bootstrap)."""

    plans: Sequence[LevelPlan]
    windows: Sequence[ComputeWindow]
    device: str
    rows: list[list[np.ndarray]] = field(init=False)
    sums: list[torch.Tensor] = field(init=False)
    draws: list[int] = field(default_factory=list)
    kindex: list[torch.Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = [[] for _ in self.plans]
        self.sums = [torch.zeros(w.shape, dtype=torch.float64, device=self.device)
                     for w in self.windows]
        self.kindex = [st.chebyshev_index(w.shape, w.origin, p.center2, self.device)
                       for w, p in zip(self.windows, self.plans)]

    def add(self, level: int, maps: torch.Tensor, window: ComputeWindow) -> None:
        """One batch of one level's maps (B, h, w) on ``window``."""
        plan = self.plans[level]
        self.rows[level].append(st.sample_rows(maps, window.origin, plan.center2,
                                               self.kindex[level]))
        self.sums[level] += maps.sum(0).to(torch.float64)

    def converged(self, config: ErfConfig) -> bool:
        """Whether every level's σ has a CI half-width under ``ci_target`` × σ."""
        return _ci_converged(self.rows, self.draws, self.plans, config.n_boot, config.seed,
                             config.ci_level, config.ci_target)


@dataclass
class _Sampler:
    """The prepared module, its passes and the input source of one measurement: draws the
    samples, weight draw by weight draw, into a ``_Tally``."""

    sub: torch.nn.Module
    runners: list[PassRunner]
    source: Source
    config: ErfConfig
    backward: str
    channels: list[int] | None  # cotangent lengths per level; None: no cotangent
    recalibrate: bool

    @property
    def chunk(self) -> int:
        """Samples drawn per step, shared by all passes (the largest pass batch)."""
        return max(r.batch for r in self.runners)

    def start_draw(self, draw: int) -> None:
        """Weights of ``draw``: redrawn after the first, BatchNorm statistics recomputed."""
        cfg = self.config
        if draw > 0:
            redraw_weights(self.sub, generator(cfg.seed, REDRAWS, draw))
        if self.recalibrate:
            recalibrate_batchnorm(self.sub, calibration_batches(
                self.source, cfg.calibrate, draw, cfg.device, cfg.dtype))

    def run(self, tally: _Tally, per_draw: int, advance: Callable[[float, bool], None]
            ) -> bool | None:
        """Every draw's samples; with ``until_ci``, stop once the CI target is met (returned;
        None without ``until_ci``). ``advance(done, step_end)`` is told the samples done so far:
        0 when the first sample starts (after calibration), fractions as a step's levels
        finish, whole counts at the end of each step."""
        cfg = self.config
        converged: bool | None = None
        done = 0
        levels = len(tally.plans)
        for draw in range(cfg.weight_draws):
            self.start_draw(draw)
            if draw == 0:
                advance(0, False)
            k = 0
            while k < per_draw:
                indices = list(range(k, min(k + self.chunk, per_draw)))
                images = self.source.batch(indices, draw)
                part = 0.0
                for level, maps, window in chunk_maps(
                        self.runners, images, indices, draw, seed=cfg.seed,
                        channels=self.channels, mode=cfg.mode, backward=self.backward,
                        device=cfg.device, dtype=cfg.dtype):
                    tally.add(level, maps, window)
                    part += maps.shape[0] / levels
                    advance(done + min(part, len(indices) - 1e-6), False)
                tally.draws.extend([draw] * len(indices))
                k += len(indices)
                done += len(indices)
                advance(done, True)
                if cfg.until_ci and k >= max(cfg.samples, 8):  # type: ignore[call-overload]
                    converged = tally.converged(cfg)
                    if converged:
                        break
        return converged


def _sample_budget(config: ErfConfig, source: Source, notes: list[str]) -> ErfConfig:
    """``config`` with the sample counts cut to the images a folder holds (each used once)."""
    if source.count is None or source.count >= config.per_draw:
        return config
    notes.append(f"{source.count} images in {config.images}: using each once")
    return config.replace(samples=min(config.samples, source.count),  # type: ignore[type-var]
                          max_samples=min(config.max_samples, source.count))


def estimate(net: Network, layers: Sequence[str] | None = None, config: ErfConfig | None = None,
             *, progress: bool = False, on_batch: Callable[[int], None] | None = None,
             options: Mapping[str, str] | None = None) -> ERFResult:
    """Measure the ERF of ``layers`` (default: the network's detection levels) of ``net``.

    ``net`` is a network with a traced torch module (``models.load(..., materialize=True)``),
    analysed at the input size to use. ``config`` (default ``ErfConfig()``) holds every setting
    of the measurement. ``progress`` reports on standard error (``anchorfit.data.progress
    .TaskMeter``): a bar with the time left on a terminal, else a line every 10 s; and, when the
    first sample says the run will take more than half a minute, one line with the expected
    time and how to shorten it: with the settings the caller offers, spelled its way
    (``options``: parameter -> option, e.g. ``{"samples": "--samples"}``; default: every
    setting, as a keyword, ``samples=8``). ``on_batch`` is called with the number of samples
    done after each step.
    """
    config = config or ErfConfig()
    started = time.perf_counter()
    layers = layer_names(net, layers)
    analysis = net.analyze()
    plans = plan_levels(net, layers, analysis)
    passes, schedule = schedule_passes(net, analysis, plans, config.crop, config.schedule)
    notes = list(dict.fromkeys(p.window.reason for p in passes if p.window.reason))

    sub = prepare_module(net, [p.node for p in plans], config.weights, config.seed, notes)
    sub = sub.to(device=config.device, dtype=config.dtype).eval()
    for p in sub.parameters():
        p.requires_grad_(False)
    layout = Layout(sub, config.channels_last)
    runners = build_runners(net, sub, plans, passes, layout, batch_size=config.batch_size,
                            dtype=config.dtype, device=config.device, cone=config.cone)
    window_of = {k: r.spec.window for r in runners for k in r.spec.levels}
    windows = [window_of[k] for k in range(len(plans))]

    h, w = analysis.input_size
    source = input_source(net.module, getattr(net, "in_channels", 3), (h, w), config.seed,
                          config.images)
    config = _sample_budget(config, source, notes)
    uniform = config.weights == "uniform"
    if uniform and not config.until_ci and config.samples > 1 and config.mode != "replknet":
        notes.append("uniform weights make the network linear: every sample gives the same map")
    channels = None
    if config.mode == "energy" and not uniform:
        channels = level_channels(net, sub, plans, lambda: source.batch([0]).to(
            device=config.device, dtype=config.dtype))
    sampler = _Sampler(sub, runners, source, config,
                       resolve_backward(config.backward, config.device, len(plans)), channels,
                       needs_recalibration(sub, str(config.weights)))
    tally = _Tally(plans, windows, config.device)
    total = config.per_draw if config.until_ci else config.per_draw * config.weight_draws
    meter = TaskMeter("erf", total, "samples", enabled=progress, capped=config.until_ci)
    def advance(done: float, step_end: bool) -> None:
        meter.update(done)
        if step_end:
            rate = meter.rate()
            if rate is not None:
                meter.forecast(_shorten(config, rate, options))
            if on_batch is not None:
                on_batch(int(done))

    with meter:
        converged = sampler.run(tally, config.per_draw, advance)
    done = len(tally.draws)
    if config.until_ci and not converged:
        notes.append(f"until_ci: σ's CI half-width is still above {config.ci_target:.0%} after "
                     f"{done} samples (the cap)")
    levels = _summarize_levels(plans, tally, windows, config, done)
    for runner in runners:
        for k in runner.spec.levels:
            levels[k].cone_crops = runner.cone_crops
    notes += _outside_rf_notes(levels)
    wins = [r.spec.window for r in runners]
    bounds = ((min(x.y0 for x in wins), max(x.y1 for x in wins)),
              (min(x.x0 for x in wins), max(x.x1 for x in wins)))
    return ERFResult(
        model=net.name, input_size=(h, w), mode=config.mode,
        weights=config.checkpoint or str(config.weights), inputs=source.describe(),
        seed=config.seed, samples=done, weight_draws=config.weight_draws, device=config.device,
        dtype=str(config.dtype).replace("torch.", ""),
        window=bounds, cropped=all(x.cropped for x in wins), schedule=schedule,
        passes=[[plans[k].name for k in r.spec.levels] for r in runners],
        channels_last=layout.channels_last,
        backward=sampler.backward, batch_size=sampler.chunk, ci_level=config.ci_level,
        n_boot=config.n_boot, until_ci=config.until_ci,
        ci_target=config.ci_target if config.until_ci else None, converged=converged,
        levels=levels, notes=notes + list(getattr(net, "notes", [])),
        seconds=time.perf_counter() - started, kind=getattr(net, "kind", "network"))


def _outside_rf_notes(levels: Sequence[LevelERF]) -> list[str]:
    """A map with mass outside the theoretical RF means an op mixes positions or samples: the RF
    engine or the module's mode is wrong, and the user must hear of it."""
    return [f"{lv.name}: the map is not zero outside the theoretical RF "
            f"({lv.outside_rf_mass:.2e} of the mass): an op mixes positions or "
            "samples (BatchNorm in train mode, a global op the tracer missed)"
            for lv in levels if lv.zero_outside_rf is False]


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


def _summarize_levels(plans: Sequence[LevelPlan], tally: _Tally,
                      windows: Sequence[ComputeWindow], config: ErfConfig, done: int
                      ) -> list[LevelERF]:
    """Every level's statistics from the tally: point estimates, bootstrap intervals, the mean
    map and what lies outside the RF."""
    anchors = config.anchors or {}
    draws = np.asarray(tally.draws)
    return [_summarize_level(plan, np.concatenate(tally.rows[lvl]), draws,
                             (tally.sums[lvl] / done).cpu().numpy(), windows[lvl].origin,
                             config.mode, config.fit, anchors.get(plan.name), config.n_boot,
                             config.seed, config.ci_level)
            for lvl, plan in enumerate(plans)]


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
