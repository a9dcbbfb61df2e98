"""The planner: which anchors fit each level, from its stride, RF, ERF and (optionally) the data.

Rules (research/anchor_tools.md §6, erf.md §3.9):

- **S3FD** (default): anchor = ``ratio`` x stride (ratio 4: the equal-proportion interval
  principle, every level tiles its anchors with the same density), checked against
  anchor < ERF (4 sigma) < RF. Where a dataset's anchors come out with anchor/stride below the
  ratio, FaceBoxes-style densification says how many shifted copies restore the density.
- **SSD** scales: ``s_min .. s_max`` over m levels, the paper's linear rule or Caffe's
  integer-percent variant (which reproduces SSD300's 30, 60, 111, 162, 213, 264).
- **RetinaNet** octave scales: stride x octave_base x 2^(i / scales_per_octave), each at every
  aspect ratio (RetinaNet: 3 scales x 3 ratios = 9 anchors per level).
- **Anchor-free** ranges: FCOS (4s, 8s] of the regression distance (the detector's own
  ``regress_ranges`` where it has them, in the unit its reader records in
  ``Level.range_measure``). A range is checked like an anchor: the objects routed to the level
  against its ERF and head RF. ``design.anchor_free`` adds what each level can learn given its
  assigner (a box needs a candidate grid point: side >= stride for TAL/ATSS/FCOS; DFL heads reach
  (reg_max - 1) strides per side), what no level learns, and the remedies.

Aspect ratios are h/w. By default each level keeps the ratios its detector designed (SSD's 2 and
3 with their reciprocals, RetinaNet's 0.5/1/2); detectors whose anchors are clustered shapes
(YOLO) or that have none get the rule's default (square for S3FD, 0.5/1/2 for the SSD and
octave rules).

With a dataset, anchors come from level-aware k-means (each level clusters the boxes of its own
scale range and is capped by its ERF or RF), and the plan says what the data needs that the
network cannot give: objects larger than the largest head RF, objects smaller than a quarter of
the finest stride, levels with nothing to detect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.design.anchor_free import range_sides
from anchorfit.design.findings import Finding, finding
from anchorfit.detector import MEASURE_LABELS, ROUTING_MEASURES, Anchor, Detector, Level
from anchorfit.errors import AnchorfitError

RULES = ("s3fd", "ssd", "ssd-caffe", "octave", "fcos")


@dataclass(frozen=True)
class ErfSize:
    """A level's ERF size (4 sigma, px) and its 95 % interval, from ``anchorfit.erf``.

    ``value``/``low``/``high`` are the mean of the two axes (what the ratios and checks use);
    ``axes`` and ``axes_ci`` keep the (y, x) values and intervals when they were measured.
    """

    value: float
    low: float | None = None
    high: float | None = None
    axes: tuple[float, float] | None = None
    axes_ci: tuple[tuple[float, float], tuple[float, float]] | None = None
    canvas: tuple[int, int] | None = None  # the input it was measured on (anchorfit.erf.canvas)

    def text(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.0f}"
        return f"{self.value:.0f} [{self.low:.0f}, {self.high:.0f}]"

    def to_dict(self) -> dict[str, Any]:
        """[y, x] per axis (README: JSON always gives [y, x]) and the mean of the axes."""
        axes = self.axes or (self.value, self.value)
        ci = self.axes_ci or ((self.low, self.high), (self.low, self.high))
        out: dict[str, Any] = {"value": list(axes), "ci95": [list(c) for c in ci],
                               "mean": self.value, "mean_ci95": [self.low, self.high]}
        if self.canvas is not None:  # measured here: the input it ran on
            out["input"] = list(self.canvas)
        return out


@dataclass
class LevelPlan:
    """The plan for one level.

    ``stride``, ``rf`` and ``head_rf`` are the larger axis (what tiling rules and checks use);
    ``stride_yx``, ``rf_yx`` and ``head_rf_yx`` keep both axes for the JSON view.
    """

    name: str
    stride: float
    rf: int | None
    head_rf: int | None
    erf: ErfSize | None
    anchors: list[Anchor]
    boxes: int | None = None
    densify: int = 1  # shifted copies per axis (FaceBoxes); 1 = none
    anchor_free_range: tuple[float, float] | None = None
    stride_yx: tuple[float, float] | None = None
    rf_yx: tuple[int, int] | None = None
    head_rf_yx: tuple[int, int] | None = None
    range_measure: str = "max-ltrb"  # what anchor_free_range bounds (detector.RANGE_MEASURES)
    learnable: dict[str, Any] | None = None  # anchor_free.LevelSpec.bounds(): sides and why
    head_global_context: bool | None = None  # the head has GroupNorm/global ops (FCOS)

    @property
    def anchor_side(self) -> float | None:
        """Geometric-mean side of the level's anchors (one number per level for the ratios).

        An anchor-free level's side is the nominal object it is trained on: the geometric mean
        of the smallest and largest object sides its range routes here (a box of side L has a
        largest regression distance of L/2 at its centre), half an octave inside an open end.
        Only ranges that route objects to levels have one (FCOS regress ranges, FoveaBox scale
        ranges, CenterNet-Update's): a DFL head's (0, 2 (reg_max - 1) stride] is how far it can
        reach, not which objects it gets, so it has none (the plan compares the boxes counted at
        the level with its ERF instead).
        """
        if not self.anchors:
            if self.anchor_free_range is None or self.range_measure not in ROUTING_MEASURES:
                return None  # a reach bound (DFL) or no range routes no nominal object here
            side = object_side(self.anchor_free_range, self.range_measure)
            return None if math.isinf(side) else side  # unbounded: no nominal object
        return float(np.exp(np.mean([0.5 * math.log(a.w * a.h) for a in self.anchors])))

    def ratios(self) -> dict[str, float | None]:
        side = self.anchor_side
        erf = self.erf.value if self.erf else None
        rf = self.rf or self.head_rf  # the ERF is measured at the feature map
        return {
            "anchor_stride": None if side is None else side / self.stride,
            "anchor_erf": None if side is None or not erf else side / erf,
            "erf_rf": None if not erf or not rf else erf / rf,
        }

    def to_dict(self) -> dict[str, Any]:
        def yx(pair: tuple[Any, Any] | None, scalar: Any) -> list[Any] | None:
            if pair is not None:
                return [_num(v) for v in pair]
            return None if scalar is None else [_num(scalar), _num(scalar)]

        return {"name": self.name, "stride": yx(self.stride_yx, self.stride),
                "rf": yx(self.rf_yx, self.rf), "head_rf": yx(self.head_rf_yx, self.head_rf),
                "head_global_context": self.head_global_context,
                "erf": None if self.erf is None else self.erf.to_dict(),
                "anchors": [a.to_list() for a in self.anchors],
                "anchor_offsets": [None if a.offsets is None else [list(o) for o in a.offsets]
                                   for a in self.anchors],
                "densify": self.densify, "boxes": self.boxes,
                "anchor_free_range": (None if self.anchor_free_range is None
                                      else list(self.anchor_free_range)),
                "range_measure": None if self.anchor_free_range is None else self.range_measure,
                "learnable": None if self.learnable is None else {
                    "min_side": [_num(v) for v in self.learnable["min"]],
                    "max_side": [None if math.isinf(v) else _num(v)
                                 for v in self.learnable["max"]],
                    "lower_bound": self.learnable["lower"],
                    "upper_bound": self.learnable["upper"]},
                **self.ratios()}


def object_side(free_range: tuple[float, float], measure: str = "max-ltrb") -> float:
    """Nominal object side of an anchor-free range (lo, hi] in ``measure`` units (default FCOS's
    max(l, t, r, b): square sides twice the distances; ``anchor_free.range_sides``)."""
    lo, hi = range_sides((float(free_range[0]), float(free_range[1])), measure)
    if math.isinf(hi):
        return lo * math.sqrt(2) if lo > 0 else math.inf  # half an octave past the open end
    if lo <= 0:
        return hi / math.sqrt(2)  # (0, hi]: half an octave below the upper end
    return math.sqrt(lo * hi)


def _num(v: Any) -> Any:
    f = float(v)
    return int(f) if f.is_integer() else f


@dataclass
class Plan:
    """Per-level proposal with the checks that say what is wrong and what to do."""

    detector: str
    input_size: tuple[int, int]
    rule: str
    ratio: float
    levels: list[LevelPlan]
    warnings: list[Finding] = field(default_factory=list)
    dataset: dict[str, Any] | None = None
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    anchor_free: Any = None  # anchor_free.Learnability of an anchor-free plan

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for lv in self.levels:
            r = lv.ratios()
            anchors = ", ".join(f"{_r(a.w)}x{_r(a.h)}" for a in lv.anchors[:6])
            if len(lv.anchors) > 6:
                anchors += f" ... ({len(lv.anchors)})"
            if lv.anchor_free_range is not None:
                unit = MEASURE_LABELS.get(lv.range_measure, "")
                anchors = (f"anchor-free ({_r(lv.anchor_free_range[0])}, "
                           f"{_r(lv.anchor_free_range[1])}]" + (f" {unit}" if unit else ""))
            rows.append({
                "level": lv.name, "stride": _r(lv.stride),
                "rf": "-" if lv.rf is None else lv.rf,
                "head_rf": "-" if lv.head_rf is None else lv.head_rf,
                "erf (4σ) [95% CI]": "-" if lv.erf is None else lv.erf.text(),
                "anchors": anchors + (f" (x{lv.densify}² dense)" if lv.densify > 1 else ""),
                "anchor/stride": _opt(r["anchor_stride"]),
                "anchor/erf": _opt(r["anchor_erf"]),
                "erf/rf": _opt(r["erf_rf"]),
                "boxes": "-" if lv.boxes is None else lv.boxes,
            })
            if lv.learnable is not None:
                from anchorfit.design.anchor_free import bounds_text

                rows[-1]["learnable side"] = bounds_text(lv.learnable)
                rows[-1]["bounded by"] = (_why(lv.learnable["lower"]) + " / " +
                                          _why(lv.learnable["upper"]))
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "input": list(self.input_size), "rule": self.rule,
                "ratio": self.ratio, "seed": self.seed, "convention": "index",
                "levels": [lv.to_dict() for lv in self.levels],
                "warnings": [w.to_dict() for w in self.warnings], "dataset": self.dataset,
                "notes": self.notes,
                "anchor_free": None if self.anchor_free is None else self.anchor_free.to_dict()}

    def anchors_by_level(self) -> list[list[tuple[float, float]]]:
        return [[(a.w, a.h) for a in lv.anchors] for lv in self.levels]


def _why(reason: str) -> str:
    """A learnable bound's reason in a word for the table (the notes give it in full)."""
    for key, word in (("DFL", "DFL reach"), ("range", "range"), ("grid point", "grid point"),
                      ("cell centre", "grid point"), ("unbounded", "-")):
        if key in reason:
            return word
    return "-"


def _r(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() else round(f, 1)


def _opt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


# --------------------------------------------------------------------------- scale rules


def ssd_sizes(input_size: int, levels: int, min_ratio: float = 0.2, max_ratio: float = 0.9,
              variant: str = "caffe") -> tuple[list[float], list[float]]:
    """SSD min/max prior sizes per level.

    ``caffe``: ``ssd_pascal.py``'s integer-percent rule (first level at min_ratio/2, then steps of
    floor((max - min) / (m - 2)) percent) — SSD300 VOC: 30, 60, 111, 162, 213, 264 / 60 ... 315.
    ``paper``: s_k = s_min + (s_max - s_min)(k - 1)/(m - 1); max size sqrt(s_k s_{k+1}) as the
    paper's extra box uses s_{k+1}.
    """
    if levels < 2:
        raise AnchorfitError("SSD scales need at least 2 levels")
    if variant == "caffe":
        lo, hi = int(round(min_ratio * 100)), int(round(max_ratio * 100))
        step = int(math.floor((hi - lo) / (levels - 2))) if levels > 2 else hi - lo
        ratios = list(range(lo, hi + 1, step))[: levels - 1]
        mins = [input_size * lo / 200] + [input_size * r / 100 for r in ratios]
        maxs = [input_size * lo / 100] + [input_size * (r + step) / 100 for r in ratios]
        return mins, maxs
    scales = [min_ratio + (max_ratio - min_ratio) * k / (levels - 1) for k in range(levels)]
    scales.append(scales[-1] + (max_ratio - min_ratio) / (levels - 1))
    return [s * input_size for s in scales[:-1]], [s * input_size for s in scales[1:]]


def octave_sizes(stride: float, octave_base_scale: float = 4, scales_per_octave: int = 3
                 ) -> list[float]:
    """RetinaNet: stride x octave_base x 2^(i / scales_per_octave) (mmdet, not truncated)."""
    return [stride * octave_base_scale * 2 ** (i / scales_per_octave)
            for i in range(scales_per_octave)]


def fcos_range(stride: float, first: bool, last: bool) -> tuple[float, float]:
    """FCOS assigns a location to the level whose (4s, 8s] range holds max(l, t, r, b)."""
    return (0.0 if first else 4 * stride, math.inf if last else 8 * stride)


def densification(anchor_side: float, stride: float, ratio: float = 4.0
                  ) -> tuple[int, tuple[tuple[float, float], ...] | None]:
    """FaceBoxes: n = round(ratio / (anchor/stride)) copies per axis at offsets j/n (cells).

    32-px anchors on stride 32 with ratio 4 give n = 4 at 0, .25, .5, .75 (16 per cell); 64 px
    give n = 2 at 0, .5. The nearest whole number, not the ceiling: an anchor at 3.97 x stride
    (a cluster capped a hair under 4) is dense enough and is not tiled 2x2 (4 times the
    anchors for a 1 % shortfall).
    """
    density = anchor_side / stride
    n = math.floor(ratio / density + 0.5)
    if n <= 1:
        return 1, None
    offsets = tuple((i / n, j / n) for i in range(n) for j in range(n))
    return n, offsets


# --------------------------------------------------------------------------- the planner


def _level_numbers(level: Level) -> tuple[float, int | None, int | None]:
    stride = level.stride_px()
    if stride is None:
        raise AnchorfitError(f"level {level.name!r} has no stride: the network is unknown and "
                             "the config gives none")
    rf = None if level.rf is None else max(level.rf.rf)
    head = None if level.head_rf is None else max(level.head_rf.rf)
    return stride, rf, head


def default_rule(detector: Detector) -> str:
    """The rule a plan uses when none is asked for: FCOS ranges for anchor-free detectors (they
    have no anchors to size), S3FD's equal-proportion rule for every other."""
    from anchorfit.design.anchor_free import is_anchor_free

    return "fcos" if is_anchor_free(detector) else "s3fd"


def designed_ratios(level: Level) -> tuple[float, ...] | None:
    """The aspect ratios (h/w) a level's anchors were designed with, or None.

    Designed sets are square plus reciprocal pairs (SSD's 2 and 3, RetinaNet's 0.5/1/2); shapes
    that come from clustering (YOLO) are not a ratio set and give None.
    """
    if not level.anchors:
        return None
    ratios: list[float] = []
    for a in level.anchors:  # in the detector's order, snapped to simple fractions (1/3, 1/2)
        r = a.h / a.w
        simple = Fraction(r).limit_denominator(12)
        r = float(simple) if abs(float(simple) / r - 1) < 1e-3 else round(r, 4)
        if all(abs(r / q - 1) > 1e-9 for q in ratios):
            ratios.append(r)
    if len(ratios) > 7 or not all(any(abs(r * q - 1) < 0.01 for q in ratios) for r in ratios):
        return None  # not square plus reciprocal pairs (1% for rounding: 1/3 is 0.333)
    return tuple(ratios)


def shaped(side: float, ratios: Sequence[float]) -> list[Anchor]:
    """Anchors of area side² at each aspect ratio h/w (mmdet: h = side·sqrt(r), w = side/sqrt(r))."""
    return [Anchor(side / math.sqrt(r), side * math.sqrt(r)) for r in ratios]


def _rule_anchors(rule: str, rank: int, stride: float, ratio: float,
                  ratios: Sequence[float], sizes: tuple[list[float], list[float]] | None,
                  scales_per_octave: int) -> list[Anchor]:
    """One level's anchors under ``rule``; ``rank`` is the level's place in stride order."""
    if rule == "s3fd":
        return shaped(ratio * stride, ratios)
    if rule in ("ssd", "ssd-caffe"):
        assert sizes is not None
        lo, hi = sizes[0][rank], sizes[1][rank]
        extra = math.sqrt(lo * hi)  # SSD's extra square box between this scale and the next
        others = [r for r in ratios if abs(r - 1) > 1e-9]
        return [Anchor(lo, lo), Anchor(extra, extra)] + shaped(lo, others)
    if rule == "octave":
        return [a for r in ratios for s in octave_sizes(stride, ratio, scales_per_octave)
                for a in shaped(s, (r,))]
    return []


DEFAULT_RATIOS = {"s3fd": (1.0,), "ssd": (0.5, 1.0, 2.0), "ssd-caffe": (0.5, 1.0, 2.0),
                  "octave": (0.5, 1.0, 2.0), "fcos": ()}


#: defaults of ``plan`` / ``measure_erf`` that callers (the CLI) show and pass on
RATIO = 4.0  # anchor = RATIO x stride (S3FD)
RESTARTS = 10  # k-means restarts with boxes
SAMPLES = 2  # ERF noise samples


def check_options(*, rule: str | None = None, ratio: float = RATIO, k: int | None = None,
                  aspect_ratios: Sequence[float] | None = None,
                  scales_per_octave: int | None = None, samples: int = SAMPLES) -> None:
    """Validate ``plan``'s (and ``measure_erf``'s) parameters; messages name the parameter.

    ``plan`` and ``measure_erf`` call it; a caller with slow work first (reading a detector and
    a dataset, measuring the ERF) may call it first to fail early.
    """
    if rule is not None and rule not in RULES:
        raise AnchorfitError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}",
                             key="rule")
    if not ratio > 0 or math.isinf(ratio):
        raise AnchorfitError(f"ratio must be positive, not {ratio}", key="ratio")
    if k is not None and k < 1:
        raise AnchorfitError(f"k {k}: expected at least 1", key="k")
    if aspect_ratios is not None and (not aspect_ratios or not all(
            r > 0 and math.isfinite(r) for r in aspect_ratios)):
        raise AnchorfitError(f"aspect ratios must be positive numbers, not {list(aspect_ratios)}",
                             key="aspect_ratios")
    if scales_per_octave is not None and scales_per_octave < 1:
        raise AnchorfitError(f"scales_per_octave {scales_per_octave}: expected at least 1",
                             key="scales_per_octave")
    if samples < 1:
        raise AnchorfitError(f"samples {samples}: expected at least 1", key="samples")


def plan(detector: Detector, *, rule: str | None = None, ratio: float = RATIO,
         wh: np.ndarray | None = None, k: int | None = None,
         erf: dict[str, ErfSize] | None = None, seed: int = 0, restarts: int = RESTARTS,
         ssd_ratios: tuple[float, float] = (0.2, 0.9),
         aspect_ratios: Sequence[float] | None = None,
         scales_per_octave: int | None = None) -> Plan:
    """Propose anchors for every level of an analysed ``detector``.

    ``rule``: None picks :func:`default_rule`. ``aspect_ratios`` (h/w) override the ratios each
    level keeps from its detector (:func:`designed_ratios`, else the rule's default).
    ``scales_per_octave`` (octave rule): default the detector's own count, else 3.
    ``wh``: box sizes (N, 2) in input pixels; then ``k`` anchors (default: one per level, or the
    detector's current count) are clustered per level and the dataset checks run.
    """
    rule = default_rule(detector) if rule is None else rule
    check_options(rule=rule, ratio=ratio, k=k, aspect_ratios=aspect_ratios,
                  scales_per_octave=scales_per_octave)
    if detector.network is not None and any(lv.rf is None and lv.node for lv in detector.levels):
        detector.analyze()
    levels = detector.levels
    if not levels:
        raise AnchorfitError(f"{detector.name} has no detection levels: it is a backbone or "
                             "classifier, not a detector", hint="plan a detector (a config with "
                             "detection heads), or use 'anchorfit rf' for a backbone")
    numbers = [_level_numbers(lv) for lv in levels]
    erf = erf or {}
    # rules that depend on a level's place (SSD scales, FCOS's open ends) go by stride, since
    # detectors may list levels coarse first (YOLOv3: P5, P4, P3)
    order = sorted(range(len(levels)), key=lambda i: numbers[i][0])
    rank = {i: r for r, i in enumerate(order)}
    sizes = None
    if rule in ("ssd", "ssd-caffe"):
        sizes = ssd_sizes(max(detector.input_size), len(levels), *ssd_ratios,
                          variant="caffe" if rule == "ssd-caffe" else "paper")
    plans: list[LevelPlan] = []
    for i, (lv, (stride, rf, head)) in enumerate(zip(levels, numbers)):
        own = designed_ratios(lv)
        ratios = tuple(aspect_ratios) if aspect_ratios else (own or DEFAULT_RATIOS[rule])
        spo = scales_per_octave or (len(lv.anchors) // len(own) if own and rule == "octave"
                                    and len(lv.anchors) % len(own) == 0 else 3)
        anchors = _rule_anchors(rule, rank[i], stride, ratio, ratios, sizes, spo)
        free, measure = None, "max-ltrb"
        if rule == "fcos":
            free = lv.anchor_free_range or fcos_range(stride, rank[i] == 0,
                                                      rank[i] == len(levels) - 1)
            measure = (lv.range_measure or "max-ltrb") if lv.anchor_free_range else "max-ltrb"
        plans.append(LevelPlan(lv.name, stride, rf, head, erf.get(lv.name), anchors,
                               anchor_free_range=free, stride_yx=lv.true_stride(),
                               rf_yx=None if lv.rf is None else lv.rf.rf,
                               head_rf_yx=None if lv.head_rf is None else lv.head_rf.rf,
                               range_measure=measure,
                               head_global_context=None if lv.head_rf is None else
                               lv.head_rf.global_context))
    result = Plan(detector.name, detector.input_size, rule, ratio, plans, seed=seed)
    if wh is not None:
        if rule == "fcos":
            _route_anchor_free(result, np.asarray(wh, dtype=np.float64))
        else:
            _fit_dataset(result, np.asarray(wh, dtype=np.float64), k, seed, restarts, ratio)
    learn = _learnability(result, levels, wh) if rule == "fcos" else None
    result.warnings = _checks(result, wh)
    if learn is not None:
        from anchorfit.design.anchor_free import findings

        result.warnings += findings(learn, detector.input_size)
    return result


def _learnability(result: Plan, levels: Sequence[Level], wh: np.ndarray | None) -> Any:
    """Anchor-free plans: each level's learnable sizes from its assigner, what no level learns
    and the remedies (``design.anchor_free``); unranged levels count the boxes they own."""
    from anchorfit.design import anchor_free as af

    specs = af.specs_from_levels(levels, [lv.anchor_free_range for lv in result.levels],
                                 [lv.range_measure for lv in result.levels])
    learn = af.analyse(specs, None if wh is None else np.asarray(wh, dtype=np.float64),
                       result.input_size)
    result.anchor_free = learn
    for lv, spec, bounds in zip(result.levels, specs, learn.bounds):
        lv.learnable = bounds
        if learn.per_level is not None and not spec.ranged:
            lv.boxes = learn.per_level[result.levels.index(lv)]
    result.notes.extend(af.summary_notes(learn))
    for lv, n, med in zip(result.levels, learn.per_level or [], learn.medians or []):
        if med is None:
            continue
        rf = lv.head_rf or lv.rf  # the objects this level learns against what it sees
        parts = [f"{lv.name}: {n} boxes counted here, median side {med:.0f} px"]
        if rf:
            parts.append(f"{med / rf:.2f} x head RF {rf}")
        if lv.erf is not None:
            parts.append(f"{med / lv.erf.value:.2f} x ERF {lv.erf.value:.0f}")
        result.notes.append(", ".join(parts))
    return learn


def _route_anchor_free(result: Plan, wh: np.ndarray) -> None:
    """Count the boxes each anchor-free range takes: the level whose (lo, hi] holds the box's
    measure (FCOS: its largest regression distance, max(w, h)/2 at its centre) owns it."""
    from anchorfit.design.anchor_free import measure_of

    taken = np.zeros(len(wh), dtype=bool)
    for lv in result.levels:
        assert lv.anchor_free_range is not None
        lo, hi = lv.anchor_free_range
        if lv.range_measure == "none":  # unrouted: every level may take every box
            lv.boxes = len(wh)
            taken[:] = True
            continue
        reach = measure_of(wh, lv.range_measure)
        here = (reach > lo) & (reach <= hi)
        lv.boxes = int(np.sum(here))
        taken |= here
    routed = int(np.sum(taken))
    result.dataset = {"boxes": int(len(wh)), "routed": routed}
    if routed < len(wh):
        result.notes.append(f"{len(wh) - routed} of {len(wh)} boxes fall in no level's range")


def _fit_dataset(result: Plan, wh: np.ndarray, k: int | None, seed: int, restarts: int,
                 ratio: float) -> None:
    from anchorfit.cluster.api import cluster_anchors
    from anchorfit.cluster.geometry import best_iou

    # level-aware clustering wants levels finest first; the detector may list them coarse first
    by_stride = sorted(result.levels, key=lambda lv: lv.stride)
    strides = [lv.stride for lv in by_stride]
    k = k or len(strides)
    caps = []
    for lv in by_stride:
        cap = lv.erf.value if lv.erf else (lv.head_rf or lv.rf)
        caps.append(None if cap is None else float(cap))
    clustered = cluster_anchors(wh, k, method="iou", strides=strides, assign="range",
                                restarts=restarts, seed=seed, level_max=caps, grid=None,
                                level_names=[lv.name for lv in by_stride])
    for lv, anchors in zip(by_stride, clustered.anchors):
        lv.anchors = [Anchor(float(w), float(h)) for w, h in np.asarray(anchors)]
        side = lv.anchor_side
        if side is not None:
            n, offsets = densification(side, lv.stride, ratio)
            if n > 1:
                lv.densify = n
                lv.anchors = [Anchor(a.w, a.h, offsets) for a in lv.anchors]
    # each box to the level of its best shape-IoU anchor: what IoU assigners mostly train
    all_anchors = np.array([[a.w, a.h] for lv in result.levels for a in lv.anchors])
    owner = np.repeat(np.arange(len(result.levels)), [len(lv.anchors) for lv in result.levels])
    best = owner[best_iou(wh, all_anchors)[1]]
    for i, lv in enumerate(result.levels):
        lv.boxes = int(np.sum(best == i))
    result.dataset = {"boxes": int(len(wh)), "k": k, "restarts": restarts,
                      "mean_best_iou": float(clustered.metrics.mean_best_iou),
                      "clustering_warnings": list(clustered.warnings)}
    result.notes.extend(clustered.warnings)


def _checks(result: Plan, wh: np.ndarray | None) -> list[Finding]:
    out: list[Finding] = []
    for lv in result.levels:
        level = Level(lv.name)
        side = lv.anchor_side
        rf = lv.head_rf or lv.rf
        free = lv.anchor_free_range if not lv.anchors else None
        what = ("" if side is None else f"anchor side {side:.0f}" if free is None else
                f"the nominal object side {side:.0f} of range ({free[0]:g}, {free[1]:g}]")
        # strictly above: the dataset fit caps anchors *at* the ERF, which satisfies the rule
        if side is not None and lv.erf is not None and side > lv.erf.value * (1 + 1e-6):
            remedy = (f"lower the anchor/stride ratio to under {lv.erf.value / lv.stride:.1f}, "
                      "or assign these objects to the next level" if free is None else
                      "lower this level's regress range, or route these objects to the next "
                      "level")
            out.append(finding("AF201", level, f"{what} is not below the ERF "
                               f"{lv.erf.value:.0f} (anchor <= ERF < RF fails)", remedy,
                               side=side, erf=lv.erf.value))
        feature_rf = lv.rf or rf
        if lv.erf is not None and feature_rf is not None and lv.erf.value >= feature_rf:
            out.append(finding("AF202", level, f"ERF {lv.erf.value:.0f} is not below the RF "
                               f"{feature_rf}", "check the ERF samples/weights (--samples)",
                               erf=lv.erf.value, rf=feature_rf))
        largest = side if free is None else (range_sides(free, lv.range_measure)[1]
                                             if math.isfinite(free[1]) else None)
        if largest is not None and rf is not None and largest > rf:
            what_max = what if free is None else (f"objects up to {largest:g} px (range "
                                                  f"({free[0]:g}, {free[1]:g}])")
            out.append(finding("AF203", level, f"{what_max} exceed{'s' if free is None else ''} "
                               f"the head RF {rf}", "the level predicts objects larger than it "
                               "sees; add a deeper level" + ("" if free is None else
                                                             " or lower the range's upper end"),
                               side=largest, rf=rf))
        if lv.densify > 1:
            offs = ", ".join(f"{o:g}" for o in sorted({o for a in lv.anchors[:1]
                                                       for p in (a.offsets or ()) for o in p}))
            out.append(finding("AF204", level, f"anchor/stride = {side / lv.stride:.2f} < "
                               f"{result.ratio:g}: tile {lv.densify}x{lv.densify} shifted "
                               f"copies per cell at offsets {offs} (cells)",
                               "densify (FaceBoxes) or move these anchors to a finer level",
                               copies=lv.densify))
        if wh is not None and lv.boxes == 0:
            out.append(finding("AF207", level, "no box of the dataset is assigned here",
                               "drop the level, or lower k elsewhere", boxes=0))
    if wh is not None and len(wh):
        sides = np.sqrt(wh[:, 0] * wh[:, 1])
        by_stride = sorted(result.levels, key=lambda lv: lv.stride)
        largest = by_stride[-1]
        top_rf = largest.head_rf or largest.rf
        if top_rf is not None:
            n = int(np.sum(np.maximum(wh[:, 0], wh[:, 1]) > top_rf))
            if n:
                out.append(finding("AF205", Level(largest.name), f"{n} boxes "
                                   f"({n / len(wh):.1%}) are larger than the largest head RF "
                                   f"{top_rf} px", "add a deeper level or train at a smaller "
                                   "input size", boxes=n, rf=top_rf))
        finest = by_stride[0].stride
        n = int(np.sum(sides < finest / 4))
        if n:
            out.append(finding("AF206", Level(by_stride[0].name), f"{n} boxes "
                               f"({n / len(wh):.1%}) are smaller than a quarter of the finest "
                               f"stride ({finest / 4:g} px)", "add a finer level (upsampled "
                               "features) or train at a larger input size", boxes=n))
    return out


def measure_erf(detector: Detector, *, samples: int = SAMPLES, seed: int = 0,
                progress: bool = False, erf_input: tuple[int, int] | None = None
                ) -> tuple[dict[str, ErfSize], list[str]]:
    """ERF (4 sigma, mean of the two axes, with its 95 % interval) of every level.

    Measured at the detector's input, or on a larger canvas when a level's RF does not fit there
    (``anchorfit.erf.canvas``: the cell's map depends only on its RF's pixels), or at
    ``erf_input``. Networks read from files get a torch module built from their IR
    (``models.as_traced``); weights are random (seeded) with BatchNorm recalibrated, as in
    ``anchorfit erf``. The first note names the canvas.
    """
    from anchorfit.design.erf_network import erf_network
    from anchorfit.erf import ErfConfig, estimate

    check_options(samples=samples)
    layers = [lv.name for lv in detector.levels if lv.node]
    net, canvas = erf_network(detector, layers, erf_input, seed=seed)
    result = estimate(net, layers, ErfConfig(samples=samples, seed=seed), progress=progress)
    sizes = {}
    for lv in result.levels:
        axes = np.asarray(lv.erf_4sigma, dtype=float)  # (y, x)
        ci = np.asarray(lv.erf_4sigma_ci, dtype=float)  # per axis: (low, high)
        sizes[lv.name] = ErfSize(float(np.mean(axes)), float(np.mean(ci[:, 0])),
                                 float(np.mean(ci[:, 1])), (float(axes[0]), float(axes[1])),
                                 ((float(ci[0, 0]), float(ci[0, 1])),
                                  (float(ci[1, 0]), float(ci[1, 1]))), canvas.size)
    notes = [f"ERF: {samples} samples of seeded noise (seed {seed}), random weights, on "
             f"{canvas.describe()}"] + list(result.notes)
    return sizes, notes
