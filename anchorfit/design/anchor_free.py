"""Anchor-free planning: which object sizes each level of a point-based detector can learn, and why.

An anchor-free level has no anchors to size; what bounds it is its assigner's geometry. A box is
learnable on a level when (a) some grid point of the level is a *candidate* for it and (b) the
level's size rule lets it take the box. This module states both per assigner, from their sources
(read from the wheels: ``ultralytics`` 8.3/8.4 and ``mmdet`` 3.3.0):

**Candidates (lower bound).** Points sit on a lattice ``(i + offset) * stride``; a box placed
uniformly at random has, per axis, a grid point inside an interval of length ``L`` with
probability ``min(L / stride, 1)``, and the axes are independent (a point lies in a rectangle iff
each coordinate lies in its interval). So the probability that a box gets at least one candidate
point on a level is ``min(Lx / sx, 1) * min(Ly / sy, 1)``; it is 1 for every position exactly when
``Lx >= sx`` and ``Ly >= sy``. ``L`` per assigner (:class:`CandidateRule`):

- ``in-box`` (L = side): Ultralytics ``TaskAlignedAssigner.select_candidates_in_gts`` (anchor
  centres strictly inside the box; the top-k=10 by alignment are then chosen among them, over all
  levels), mmdet FCOS without centre sampling (``bbox_targets.min(-1) > 0``),
  ``DynamicSoftLabelAssigner`` (RTMDet: ``is_in_gts``; its soft centre prior of radius 3 is a cost,
  not a region), ``ATSSAssigner`` (``is_in_gts`` after the top-k by centre distance),
  ``CenterNetUpdateHead`` (inside the box and in the 3x3 cells of the centre's cell: for a box of
  side >= stride the point nearest the centre is in both, so the region is the box's) and
  AutoAssign. A box smaller than one stride may get no positive point: side >= stride is the
  rule. Ultralytics 8.4 (the YOLO26 release) enlarges sides below ``stride[1]`` to ``stride[1]``
  before this test, so there every box gets candidates; 8.3 and earlier (YOLOv8's releases) do not.
- ``centre-sampling`` (L = min(side, 2 r stride)): FCOS ``center_sampling`` (mmdet
  ``center_sample_radius``, default 1.5; torchvision FCOS always, ``center_sampling_radius`` 1.5):
  inside the box and within ``r`` strides of its centre. With r >= 0.5 the rule is still
  side >= stride; with r < 0.5 no box is ever certain of a point.
- ``box-or-centre`` (L = max(side, 2 r stride)): YOLOX ``SimOTAAssigner`` takes points inside the
  box *or* within ``center_radius`` (2.5) strides of its centre, and dynamic k is at least 1:
  every box gets a positive.
- ``fovea`` (L = sigma * side): ``FoveaHead`` marks cells whose centres lie in the box shrunk to
  ``sigma`` (0.4) of its size about its centre: side >= stride / sigma.
- ``centre-cell`` / ``global``: CenterNet puts each box at the cell holding its centre; DETR-style
  Hungarian matching has no point rule: no lower bound.

**Size rule (routing and upper bound).** Ranged heads route a box by a measure
(``detector.RANGE_MEASURES``) to the level whose ``(lo, hi]`` holds it: CenterNetUpdate's half
diagonal and Fovea's ``sqrt(w h)`` once per box; FCOS's ``regress_ranges`` of
``max(l, t, r, b)`` at each point (max(w, h)/2 at the box centre, up to max(w, h) at its edge), so
a box is positive on every level where some candidate point's distances fall in the range
(:meth:`LevelSpec.probability` gives the exact probability; per-level box *counts* still route by
the centre's value). DFL heads (Ultralytics, ``reg_max`` > 1) regress each side as a
distribution over ``reg_max`` bins of one stride, so a side reaches at most ``(reg_max - 1) *
stride`` (``DFLoss`` clamps targets to ``reg_max - 1 - 0.01``): a box wider than ``2 (reg_max - 1)
stride`` cannot be regressed from any point of that level. ``reg_max`` 1 (YOLO26) regresses
unbounded distances. SimOTA, dynamic soft labels, TAL and Hungarian matching rank all levels at
once: no routing, every level whose geometry allows it is a candidate.

A box is *learnable* when some level gives it a candidate with probability 1; *small* when the
best level gives it one only at some positions (the expected number with none is reported);
*too large* when it is above every level's upper bound; *gap* when it falls between (or below)
the ranged levels. The probability of a box is the best level's (a lower bound when several
levels could take it). Remedies are configurations re-evaluated on the same boxes: add a level at
half the finest stride (P2) or twice the coarsest (P6), scale the input, raise ``reg_max``, or
make the ranges contiguous.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from anchorfit.design.findings import Finding, finding
from anchorfit.detector import RANGE_MEASURES, Detector, Level
from anchorfit.report.text import plural

MEASURES = RANGE_MEASURES
CandidateKind = Literal["in-box", "centre-sampling", "box-or-centre", "fovea", "centre-cell",
                        "global"]
#: COCO size buckets by box area (input pixels)
BUCKETS = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2),
           ("large", 96.0 ** 2, math.inf))
#: input scale factors tried as a remedy
INPUT_SCALES = (0.5, 0.75, 1.25, 1.5, 2.0)
_EPS = 1e-9


# --------------------------------------------------------------------------- measures


def measure_of(wh: np.ndarray, measure: str) -> np.ndarray:
    """The quantity a level's range bounds, for boxes (N, 2) of w, h at their centre point."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    w, h = wh[:, 0], wh[:, 1]
    if measure == "max-ltrb":
        return np.maximum(w, h) / 2
    if measure == "half-diagonal":
        return np.sqrt(w ** 2 + h ** 2) / 2
    if measure == "sqrt-area":
        return np.sqrt(w * h)
    if measure == "box-side":
        return np.maximum(w, h)
    if measure == "none":
        return np.zeros(len(wh))
    raise ValueError(f"unknown range measure {measure!r} ({', '.join(MEASURES)})")


def side_of(value: float, measure: str, aspect: float = 1.0) -> float:
    """The side sqrt(w h) of a box of aspect h/w whose ``measure`` equals ``value``.

    The inverse of :func:`measure_of` along boxes of one shape: with w = side/sqrt(a),
    h = side*sqrt(a), max(w, h) = side * k where k = sqrt(max(a, 1/a)).
    """
    value = max(float(value), 0.0)
    if measure == "none" or math.isinf(value):
        return math.inf if math.isinf(value) or measure == "none" else value
    k = math.sqrt(max(aspect, 1 / aspect))
    if measure == "max-ltrb":
        return 2 * value / k
    if measure == "half-diagonal":
        return 2 * value / math.sqrt(aspect + 1 / aspect)
    if measure == "sqrt-area":
        return value
    if measure == "box-side":
        return value / k
    raise ValueError(f"unknown range measure {measure!r} ({', '.join(MEASURES)})")


def range_sides(free_range: tuple[float, float], measure: str = "max-ltrb",
                aspect: float = 1.0) -> tuple[float, float]:
    """(lo, hi] of a range in ``measure`` units as box sides sqrt(w h) for boxes of aspect h/w
    (FCOS (64, 128] of max(l, t, r, b) is squares of side (128, 256]; a box-side range is the
    box's longer side)."""
    if measure == "none":
        return 0.0, math.inf
    return side_of(free_range[0], measure, aspect), side_of(free_range[1], measure, aspect)


# --------------------------------------------------------------------------- candidate rules


@dataclass(frozen=True)
class CandidateRule:
    """Where a grid point must lie, per axis, to be a candidate for a box (module docstring)."""

    kind: CandidateKind
    radius: float | None = None  # strides (centre sampling, SimOTA centre prior)
    sigma: float | None = None  # FoveaBox shrink factor
    source: str = ""
    floor: float = 0.0  # px: sides below it are enlarged to it first (Ultralytics 8.4 TAL)

    def region(self, side: np.ndarray, stride: float) -> np.ndarray:
        """Length of the interval along one axis where a grid point is a candidate."""
        side = np.maximum(np.asarray(side, dtype=np.float64), self.floor)
        if self.kind == "in-box":
            return side
        if self.kind == "centre-sampling":
            return np.minimum(side, 2 * float(self.radius or 0) * stride)
        if self.kind == "box-or-centre":
            return np.maximum(side, 2 * float(self.radius or 0) * stride)
        if self.kind == "fovea":
            return float(self.sigma or 0) * side
        return np.full(side.shape, math.inf)

    def probability(self, side: np.ndarray, stride: float) -> np.ndarray:
        """P(a uniformly placed box has a grid point in its region), along one axis."""
        return np.minimum(self.region(side, stride) / stride, 1.0)

    def probability_2d(self, wh: np.ndarray, stride: tuple[float, float]) -> np.ndarray:
        """P(a uniformly placed box w x h has a candidate point), strides (y, x).

        A point is a candidate when its x and its y each lie in an interval, so the product of
        the axes is exact. SimOTA's ``in box | in centre square`` is not one rectangle: there the
        larger of the two rectangles' probabilities, exact when the centre square alone always
        holds a point (radius >= 0.5, SimOTA's 2.5) and a lower bound otherwise.
        """
        wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
        if self.kind != "box-or-centre":
            return self.probability(wh[:, 0], stride[1]) * self.probability(wh[:, 1], stride[0])
        box = np.minimum(wh[:, 0] / stride[1], 1) * np.minimum(wh[:, 1] / stride[0], 1)
        r = 2 * float(self.radius or 0)
        return np.maximum(box, min(r, 1.0) ** 2)

    def certain_side(self, stride: float) -> float:
        """The smallest side whose region always holds a grid point (inf: none does)."""
        if self.kind in ("centre-cell", "global"):
            return 0.0
        if self.kind == "box-or-centre":
            return 0.0 if 2 * float(self.radius or 0) >= 1 else stride
        if self.kind == "centre-sampling":
            return stride if 2 * float(self.radius or 0) >= 1 else math.inf
        if self.kind == "fovea":
            return stride / float(self.sigma) if self.sigma else math.inf
        return 0.0 if self.floor >= stride else stride

    def text(self) -> str:
        if self.kind == "in-box" and self.floor:
            return f"a grid point inside the box, sides under {self.floor:g} px enlarged to it"
        if self.kind == "in-box":
            return "a grid point inside the box"
        if self.kind == "centre-sampling":
            return f"a grid point inside the box within {self.radius:g} strides of its centre"
        if self.kind == "box-or-centre":
            return (f"a grid point inside the box or within {self.radius:g} strides of its "
                    "centre")
        if self.kind == "fovea":
            return f"a cell centre inside the box shrunk to {self.sigma:g} of its size"
        if self.kind == "centre-cell":
            return "the cell holding the box centre"
        return "no point rule (global matching)"


def candidate_rule(level: Level) -> CandidateRule:
    """The candidate geometry of ``level``'s assigner (sources in the module docstring)."""
    a = level.assigner
    kind = a.kind
    if kind == "task-aligned":
        return CandidateRule("in-box", source="ultralytics utils/tal.py "
                             "TaskAlignedAssigner.select_candidates_in_gts (topk "
                             f"{level.extra.get('topk', a.topk or 10)} among anchor centres in the "
                             "box)")
    if kind == "simota":
        return CandidateRule("box-or-centre", radius=a.radius or 2.5,
                             source="mmdet SimOTAAssigner.get_in_gt_and_in_center_info "
                                    "(is_in_gts | is_in_cts), dynamic k >= 1")
    if kind == "dynamic-soft-label":
        return CandidateRule("in-box", source="mmdet DynamicSoftLabelAssigner (is_in_gts; "
                             f"soft centre prior radius {a.radius or 3:g} is a cost), topk "
                             f"{a.topk or 13}")
    if kind == "fovea":
        return CandidateRule("fovea", sigma=float(level.extra.get("sigma", 0.4)),
                             source="mmdet FoveaHead._get_targets_single (pos_left..pos_right)")
    if kind == "centernet-heatmap":
        return CandidateRule("centre-cell", source="mmdet CenterNetHead (centre cell heatmap)")
    if kind == "hungarian":
        return CandidateRule("global", source="RT-DETR HungarianMatcher (set matching)")
    if kind == "centernet-update":
        return CandidateRule("in-box", source="mmdet CenterNetUpdateHead._get_targets_single "
                             "(inside box and the centre's 3x3 cells)")
    radius = a.radius if kind == "anchor-free" else None
    if radius is None and kind == "anchor-free":
        radius = level.extra.get("center_sampling_radius")  # torchvision FCOS: always on
    if radius is not None:
        return CandidateRule("centre-sampling", radius=float(radius),
                             source="FCOS centre sampling (mmdet FCOSHead._get_targets_single; "
                                    "torchvision FCOS.compute_loss)")
    return CandidateRule("in-box", source="points inside the box (FCOS, ATSS is_in_gts, "
                         "AutoAssign)")


def _far_probability(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """P(some lattice point d = delta + k s, delta uniform, has b < |d| < a), per box.

    The two intervals (b, a) and (-a, -b) are arcs of length a - b on a circle of length s; the
    probability is the measure of their union over s.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    near = np.clip(2 * a / s, 0, 1)
    length = np.clip(a - b, 0, None)
    delta = np.mod(-a - b, s)
    overlap = np.maximum(0, length - delta) + np.maximum(0, length - (s - delta))
    union = np.where(length >= s, s, 2 * length - overlap)
    return np.where(b < 0, near, np.where(a <= b, 0.0, np.clip(union / s, 0, 1)))


# --------------------------------------------------------------------------- level specs


@dataclass(frozen=True)
class LevelSpec:
    """One level as the learnability analysis sees it: strides, size rule and candidates."""

    name: str
    stride: tuple[float, float]  # (y, x) px
    lo: float = 0.0  # range in ``measure`` units, (lo, hi]
    hi: float = math.inf
    measure: str = "none"
    rule: CandidateRule = field(default_factory=lambda: CandidateRule("in-box"))
    reg_max: int | None = None  # DFL bins: each side reaches (reg_max - 1) strides

    @property
    def ranged(self) -> bool:
        return self.measure != "none"

    @property
    def per_point(self) -> bool:
        """FCOS's max(l, t, r, b) is measured at each point, not once per box: a box near a
        range's edge is positive at the points whose distances fall inside it."""
        return self.measure == "max-ltrb"

    def side_reach(self) -> tuple[float, float]:
        """(y, x) largest box extent the regression reaches from the best point (DFL)."""
        if self.reg_max is None or self.reg_max <= 1:
            return math.inf, math.inf
        return (2 * (self.reg_max - 1) * self.stride[0], 2 * (self.reg_max - 1) * self.stride[1])

    def bounds(self, aspect: float = 1.0) -> dict[str, Any]:
        """Learnable sides per axis [y, x] for boxes of aspect h/w, with the reason for each."""
        if self.per_point:
            return self._scanned_bounds(aspect)
        lo_r, hi_r = range_sides((self.lo, self.hi), self.measure, aspect)
        lo_g = [self.rule.certain_side(s) for s in self.stride]
        reach = self.side_reach()
        lo = [max(g, lo_r) for g in lo_g]
        hi = [min(r, hi_r) for r in reach]
        why_lo = (f"range lo {self.lo:g} ({self.measure})" if lo_r > max(lo_g) else
                  f"{self.rule.text()}: side >= {_g(max(lo_g))}" if max(lo_g) > 0 else
                  f"none ({self.rule.text()})")
        if min(reach) < hi_r:
            why_hi = f"DFL reg_max {self.reg_max}: each side <= {self.reg_max - 1} strides"
        elif math.isfinite(hi_r):
            why_hi = f"range hi {self.hi:g} ({self.measure})"
        else:
            why_hi = ("none (reg_max 1: unbounded regression)" if self.reg_max == 1 else "none")
        return {"min": lo, "max": hi, "lower": why_lo, "upper": why_hi}

    def probability(self, wh: np.ndarray) -> np.ndarray:
        """P(the box gets a candidate point here and the size rule lets this level take it).

        FCOS (``max-ltrb``): a point at offset (dx, dy) from the box centre measures
        max(w/2 + |dx|, h/2 + |dy|); it is positive when it is a candidate (|d| under the
        candidate region's half-length per axis), the measure is <= hi (|dx| <= hi - w/2 and
        |dy| <= hi - h/2: one rectangle) and > lo (|dx| > lo - w/2 *or* |dy| > lo - h/2). With
        X, Y the candidate offsets per axis, P = P(X)P(Y) - P(X, none far)P(Y, none far), exact
        since the axes' offsets are independent.
        """
        wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
        if not self.per_point:
            return np.where(self.admits(wh), self.rule.probability_2d(wh, self.stride), 0.0)
        some, none_far = [], []
        for side, s in ((wh[:, 0], self.stride[1]), (wh[:, 1], self.stride[0])):
            a = np.minimum(self.rule.region(side, s) / 2, self.hi - side / 2)
            near = np.clip(2 * a / s, 0, 1)
            far = _far_probability(a, self.lo - side / 2, s) if self.lo > 0 else near
            some.append(near)
            none_far.append(near - far)
        p = some[0] * some[1] - none_far[0] * none_far[1]
        return np.where(self._within_reach(wh), np.clip(p, 0, 1), 0.0)

    def _within_reach(self, wh: np.ndarray) -> np.ndarray:
        ry, rx = self.side_reach()
        return (wh[:, 0] <= rx * (1 + _EPS)) & (wh[:, 1] <= ry * (1 + _EPS))

    def _scanned_bounds(self, aspect: float) -> dict[str, Any]:
        """FCOS: the span of sides (boxes of aspect h/w) positive at every position, found on a
        0.25 px grid (the per-point rule has no closed form for both ends at once)."""
        top = 2 * self.hi if math.isfinite(self.hi) else 2 * self.lo + 64 * max(self.stride)
        sides = np.arange(0.25, top + 0.25, 0.25)
        k = math.sqrt(aspect)
        wh = np.stack([sides / k, sides * k], axis=1)
        sure = np.nonzero(self.probability(wh) >= 1 - 1e-9)[0]
        lo = float(sides[sure[0]]) if len(sure) else math.inf
        hi = float(sides[sure[-1]]) if len(sure) else 0.0
        if not math.isfinite(self.hi) and len(sure) and sure[-1] == len(sides) - 1:
            hi = math.inf
        why_lo = (f"range lo {self.lo:g}: max(l,t,r,b) > {self.lo:g} at a candidate point "
                  f"({self.rule.text()})" if self.lo > 0 else
                  f"{self.rule.text()}: side >= {_g(lo)}")
        why_hi = (f"range hi {self.hi:g}: max(l,t,r,b) <= {self.hi:g} at a candidate point"
                  if math.isfinite(self.hi) else "none")
        return {"min": [lo, lo], "max": [hi, hi], "lower": why_lo, "upper": why_hi}

    def admits(self, wh: np.ndarray) -> np.ndarray:
        """Whether the size rule (range and DFL reach) lets this level take each box."""
        return self.position(wh) == 0

    def position(self, wh: np.ndarray) -> np.ndarray:
        """-1 below the level's range, 0 inside, 1 above its range or its DFL reach."""
        wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
        out = np.zeros(len(wh), dtype=int)
        if self.ranged:
            m = measure_of(wh, self.measure)
            out[m <= self.lo * (1 + _EPS)] = -1 if self.lo > 0 else 0
            out[m > self.hi * (1 + _EPS)] = 1
        ry, rx = self.side_reach()
        out[(wh[:, 0] > rx * (1 + _EPS)) | (wh[:, 1] > ry * (1 + _EPS))] = 1
        return out


def specs_from_levels(levels: Sequence[Level],
                      ranges: Sequence[tuple[float, float] | None] | None = None,
                      measures: Sequence[str | None] | None = None,
                      tal_floor: bool | None = None) -> list[LevelSpec]:
    """LevelSpecs of a detector's levels; ``ranges``/``measures`` override the levels' own (a
    plan's FCOS ranges for a detector that has none).

    ``tal_floor``: Ultralytics TAL with 8.4's floor (sides below ``stride[1]`` enlarged to it
    before the in-box test). None: only for ``reg_max`` 1 heads (YOLO26), which only 8.4 and
    later train; other Ultralytics heads get 8.3's plain in-box rule.
    """
    strides = sorted({float(max(lv.true_stride() or lv.step or (0, 0))) for lv in levels})
    floor = strides[1] if len(strides) > 1 else (strides[0] if strides else 0.0)
    out = []
    for i, lv in enumerate(levels):
        stride = lv.true_stride() or ((lv.step[0], lv.step[1]) if lv.step else None)
        if stride is None:
            raise ValueError(f"level {lv.name!r} has no stride")
        rng = (ranges[i] if ranges is not None else None) or lv.anchor_free_range
        measure = (measures[i] if measures is not None else None) or lv.range_measure or \
            ("max-ltrb" if rng is not None else "none")
        reg_max = lv.extra.get("reg_max")
        if reg_max is not None and measure == "box-side":  # Ultralytics DFL: the reach bounds it
            rng, measure = None, "none"
        lo, hi = rng if rng is not None and measure != "none" else (0.0, math.inf)
        rule = candidate_rule(lv)
        use_floor = (reg_max is not None and int(reg_max) <= 1) if tal_floor is None else tal_floor
        if use_floor and reg_max is not None and lv.assigner.kind == "task-aligned":
            rule = replace(rule, floor=floor, source=rule.source + "; Ultralytics 8.4 enlarges "
                           f"sides under stride[1] = {floor:g} px to it")
        out.append(LevelSpec(lv.name, (float(stride[0]), float(stride[1])), max(float(lo), 0.0),
                             float(hi), measure, rule, None if reg_max is None else int(reg_max)))
    return out


def is_anchor_free(detector: Detector) -> bool:
    """Every level predicts from points (no anchors) and has a size range (the readers give
    unranged heads (0, inf)); YOLOv5's ``anchors: 3`` levels wait for anchors and are not."""
    return bool(detector.levels) and all(
        not lv.anchors and (lv.anchor_free_range is not None or lv.assigner.kind == "anchor-free")
        for lv in detector.levels)


# --------------------------------------------------------------------------- analysis


@dataclass
class Remedy:
    """A configuration change re-evaluated on the same boxes."""

    key: str
    text: str
    unlearnable: int  # after the change
    gained: int  # unlearnable before - after
    specs: list[LevelSpec]
    scale: float = 1.0  # input scale factor (boxes scale with it)
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "unlearnable": self.unlearnable,
                "gained": self.gained, "scale": self.scale, "counts": self.counts,
                "levels": [_spec_dict(s) for s in self.specs]}


@dataclass
class Learnability:
    """Per-level learnable sizes and, with boxes, what no level can learn and what would fix it."""

    specs: list[LevelSpec]
    bounds: list[dict[str, Any]]
    counts: dict[str, Any] | None = None
    per_level: list[int] | None = None
    medians: list[float | None] | None = None
    remedies: list[Remedy] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def recommended(self) -> Remedy | None:
        best = [r for r in self.remedies if r.gained > 0]
        return max(best, key=lambda r: (r.gained, -self.remedies.index(r))) if best else None

    def to_dict(self) -> dict[str, Any]:
        levels = []
        for i, (s, b) in enumerate(zip(self.specs, self.bounds)):
            d = {**_spec_dict(s), "learnable_side": {"min": _list(b["min"]),
                                                     "max": _list(b["max"])},
                 "lower_bound": b["lower"], "upper_bound": b["upper"]}
            if self.per_level is not None:
                d["boxes"] = self.per_level[i]
                d["median_box_side"] = None if self.medians is None else self.medians[i]
            levels.append(d)
        rec = self.recommended
        return {"levels": levels, "counts": self.counts,
                "remedies": [r.to_dict() for r in self.remedies],
                "recommended": None if rec is None else rec.key, "notes": self.notes}


def classify(specs: Sequence[LevelSpec], wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(status, p) per box: p the best level's candidate probability; status 0 learnable,
    1 small (0 < p < 1: a positive point at some positions only), 2 too large (above every
    level), 3 gap (no level at any position, not above them all: between or below ranges)."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    probs = np.stack([s.probability(wh) for s in specs]) if specs else np.zeros((1, len(wh)))
    pos = np.stack([s.position(wh) for s in specs])
    p = probs.max(axis=0)
    status = np.where(p >= 1 - 1e-9, 0, 1)
    none = p <= 0
    status[none & (pos == 1).all(axis=0)] = 2
    status[none & ~(pos == 1).all(axis=0)] = 3
    return status, p


def counts_of(specs: Sequence[LevelSpec], wh: np.ndarray) -> dict[str, Any]:
    """How many boxes are learnable, small (of them under the finest level's bound), too
    large or in a gap, and the expected number without a positive point."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    status, p = classify(specs, wh)
    n = len(status)
    fine = _by_stride(specs)[0] if specs else None
    low = fine.bounds()["min"] if fine is not None else [0.0, 0.0]
    under = (status == 1) & ((wh[:, 0] < low[1]) | (wh[:, 1] < low[0]))
    return {"boxes": int(n), "learnable": int(np.sum(status == 0)),
            "under_finest": int(np.sum(under)),
            "small": int(np.sum(status == 1)), "too_large": int(np.sum(status == 2)),
            "gap": int(np.sum(status == 3)), "unlearnable": int(np.sum(status != 0)),
            "expected_without_positive": float(np.sum(1 - p))}


def coverage_by_bucket(specs: Sequence[LevelSpec], wh: np.ndarray, scale: float = 1.0,
                       ) -> dict[str, dict[str, Any]]:
    """Assignment coverage by COCO size bucket (of the boxes as given): boxes that get a
    positive point at every position, and the expected number over positions."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    status, p = classify(specs, wh * scale)
    area = wh[:, 0] * wh[:, 1]
    out = {}
    for name, lo, hi in BUCKETS + (("all", 0.0, math.inf),):
        m = (area >= lo) & (area < hi)
        n = int(m.sum())
        out[name] = {"boxes": n, "covered": int(np.sum(status[m] == 0)),
                     "expected": float(np.sum(p[m])),
                     "coverage": float(np.sum(status[m] == 0) / n) if n else None}
    return out


def owners(specs: Sequence[LevelSpec], wh: np.ndarray) -> np.ndarray:
    """The level each box is counted at (-1: none). Ranged levels: the level whose range holds
    it. Unranged (TAL, SimOTA, ...) levels have no owner rule, so a nominal one: among the levels
    that give the box a point at every position, the one whose learnable span
    [lower, upper] (lower at least the stride; upper = 8 x lower when unbounded) has its
    log-centre nearest the box side."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    side = np.sqrt(wh[:, 0] * wh[:, 1])
    out = np.full(len(wh), -1)
    best = np.full(len(wh), math.inf)
    for i, s in enumerate(specs):
        p = s.probability(wh)
        if s.ranged:
            take = s.position(wh) == 0
            out[take & (out < 0)] = i
            continue
        b = s.bounds()
        lo, hi = max(max(b["min"]), max(s.stride)), min(b["max"])  # SimOTA: no lower bound
        centre = math.sqrt(lo * (hi if math.isfinite(hi) else 8 * lo))
        d = np.abs(np.log(np.maximum(side, 1e-6) / centre))
        take = (p >= 1 - 1e-12) & (d < best)
        out[take], best[take] = i, d[take]
    return out


def analyse(specs: list[LevelSpec], wh: np.ndarray | None = None,
            input_size: tuple[int, int] | None = None) -> Learnability:
    """Per-level learnable sizes; with ``wh`` (input pixels) the counts and the remedies."""
    result = Learnability(specs, [s.bounds() for s in specs])
    tal = [s for s in specs if s.reg_max is not None and s.rule.kind == "in-box"]
    floored = bool(tal) and all(s.rule.floor for s in tal)
    if wh is not None:
        wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
        result.counts = counts_of(specs, wh)
    if tal and not floored:
        strides = sorted({max(s.stride) for s in specs})
        floor = strides[1] if len(strides) > 1 else strides[0]
        alt = ""
        if wh is not None and result.counts is not None:
            n = counts_of(_floored(specs, floor), wh)["unlearnable"]
            alt = (f" (unlearnable {n} instead of {result.counts['unlearnable']})"
                   if n != result.counts["unlearnable"] else " (the same count here)")
        result.notes.append(f"Ultralytics 8.4 enlarges box sides under stride[1] = {floor:g} px "
                            f"to it before choosing candidates, so there every box gets one{alt}; "
                            "the lower bounds here are 8.3's (YOLOv8's releases)")
    elif floored:
        result.notes.append(f"Ultralytics 8.4 TAL (reg_max 1 heads are 8.4's): sides under "
                            f"{tal[0].rule.floor:g} px are enlarged to it before choosing "
                            "candidates, so no box is too small for a point")
    if wh is None:
        return result
    own = owners(specs, wh)
    result.per_level = [int(np.sum(own == i)) for i in range(len(specs))]
    sides = np.sqrt(wh[:, 0] * wh[:, 1])
    result.medians = [float(np.median(sides[own == i])) if np.any(own == i) else None
                      for i in range(len(specs))]
    result.remedies = remedies(specs, wh, result.counts, input_size)
    return result


# --------------------------------------------------------------------------- remedies


def _floored(specs: Sequence[LevelSpec], floor: float) -> list[LevelSpec]:
    return [replace(s, rule=replace(s.rule, floor=floor))
            if s.reg_max is not None and s.rule.kind == "in-box" else s for s in specs]


def _by_stride(specs: Sequence[LevelSpec]) -> list[LevelSpec]:
    return sorted(specs, key=lambda s: max(s.stride))


def _name(stride: float) -> str:
    n = math.log2(stride) if stride > 0 else 0.5
    return f"P{int(n)}" if float(n).is_integer() else f"S{stride:g}"


def remedies(specs: list[LevelSpec], wh: np.ndarray, before: dict[str, Any],
             input_size: tuple[int, int] | None = None) -> list[Remedy]:
    """Candidate changes, each evaluated on ``wh``; only those that change something."""
    out: list[Remedy] = []
    base = before["unlearnable"]

    def add(key: str, text: str, new: list[LevelSpec], scale: float = 1.0) -> None:
        c = counts_of(new, wh * scale)
        out.append(Remedy(key, text.format(**c, before=base, gain=base - c["unlearnable"]),
                          c["unlearnable"], base - c["unlearnable"], new, scale, c))

    order = _by_stride(specs)
    fine, coarse = order[0], order[-1]
    # contiguous ranges (ranged heads): close gaps, open the ends
    ranged = [s for s in order if s.ranged]
    if ranged and before["gap"] + before["too_large"] > 0:
        fixed = []
        for j, s in enumerate(ranged):
            lo = 0.0 if j == 0 else min(s.lo, ranged[j - 1].hi)
            hi = math.inf if j == len(ranged) - 1 else s.hi
            fixed.append(replace(s, lo=lo, hi=hi))
        if any((a.lo, a.hi) != (b.lo, b.hi) for a, b in zip(fixed, ranged)):
            new = [next((f for f in fixed if f.name == s.name), s) for s in specs]
            ranges = ", ".join(f"{s.name} ({_g(s.lo)}, {_g(s.hi)}]" for s in fixed)
            add("ranges", "make the ranges contiguous and open-ended (" + ranges + "): "
                "unlearnable {before} -> {unlearnable}", new)
    # raise reg_max (DFL heads) until the largest box fits the coarsest level
    if coarse.reg_max is not None and coarse.reg_max > 1 and before["too_large"]:
        need = max(float(np.max(wh[:, 0])) / coarse.stride[1],
                   float(np.max(wh[:, 1])) / coarse.stride[0])  # box extent in strides
        r = int(math.ceil(need / 2 + 1 - 1e-9))
        if r > coarse.reg_max:
            add("reg-max", f"raise reg_max {coarse.reg_max} -> {r} (each side reaches {r - 1} "
                f"strides: {_g(2 * (r - 1) * max(coarse.stride))} px on {coarse.name}): "
                "unlearnable {before} -> {unlearnable}",
                [replace(s, reg_max=r) for s in specs])
    # a finer level (P2)
    half = (fine.stride[0] / 2, fine.stride[1] / 2)
    p2 = replace(fine, name=_name(max(half)), stride=half)
    new = list(specs)
    if fine.ranged and fine.lo == 0 and math.isfinite(fine.hi):  # split the finest range
        p2 = replace(p2, hi=fine.hi / 2)
        new = [replace(s, lo=fine.hi / 2) if s is fine else s for s in specs]
    add("add-p2", f"add {p2.name} (stride {_g(max(half))}): boxes with a side from "
        f"{_g(max(p2.bounds()['min']))} px get a positive point at every position; unlearnable "
        "{before} -> {unlearnable} (small {small})", [p2] + new)
    # a coarser level (P6)
    double = (coarse.stride[0] * 2, coarse.stride[1] * 2)
    p6 = replace(coarse, name=_name(max(double)), stride=double)
    if coarse.ranged:
        p6 = replace(p6, lo=coarse.hi, hi=math.inf) if math.isfinite(coarse.hi) else None
    if p6 is not None and before["too_large"]:
        reach = p6.bounds()["upper"]
        add("add-p6", f"add {p6.name} (stride {_g(max(double))}, upper bound "
            f"{_g(min(p6.bounds()['max']))} px: {reach}): unlearnable {{before}} -> "
            "{unlearnable} (too large {too_large})", list(specs) + [p6])
    # input size
    trials = []
    for f in INPUT_SCALES:
        c = counts_of(specs, wh * f)
        trials.append((c["unlearnable"], abs(math.log(f)), f))
    u, _, f = min(trials)
    if u < base:
        size = "" if input_size is None else \
            f" ({round(input_size[0] * f)}x{round(input_size[1] * f)})"
        add("input", f"train and infer at {f:g}x the input{size}: boxes scale by {f:g}; "
            "unlearnable {before} -> {unlearnable} (small {small}, too large {too_large})",
            list(specs), f)
    return out


def recommended_specs(learn: Learnability) -> tuple[str, list[LevelSpec], float]:
    rec = learn.recommended
    if rec is None:
        return "current", learn.specs, 1.0
    return rec.key, rec.specs, rec.scale


def coverage_table(specs: list[LevelSpec], wh: np.ndarray,
                   input_size: tuple[int, int] | None = None) -> tuple[pd.DataFrame, dict]:
    """Assignment coverage (boxes with a positive point on some level at every position) by
    COCO size bucket, for the current configuration and the recommended one."""
    learn = analyse(specs, wh, input_size)
    key, rec_specs, scale = recommended_specs(learn)
    cur = coverage_by_bucket(specs, wh)
    new = coverage_by_bucket(rec_specs, wh, scale)
    rows = []
    for bucket in [b[0] for b in BUCKETS] + ["all"]:
        a, b = cur[bucket], new[bucket]
        rows.append({"bucket": bucket, "boxes": a["boxes"],
                     "current": _cov(a), f"recommended ({key})": _cov(b),
                     "expected current": round(a["expected"], 1),
                     "expected recommended": round(b["expected"], 1)})
    rec = learn.recommended
    return pd.DataFrame(rows), {"current": cur, "recommended": new, "remedy": key,
                                "text": None if rec is None else rec.text}


def _cov(c: dict[str, Any]) -> str:
    return "-" if not c["boxes"] else f"{c['covered']} ({c['covered'] / c['boxes']:.1%})"


# --------------------------------------------------------------------------- findings


def findings(learn: Learnability, input_size: tuple[int, int] | None = None) -> list[Finding]:
    """The anchor-free checks AF301-AF305 (codes in ``findings.CHECKS``)."""
    out: list[Finding] = []
    specs = learn.specs
    order = _by_stride(specs)
    rec = {r.key: r for r in learn.remedies}
    c = learn.counts
    if c is not None and c["boxes"]:
        n = c["boxes"]
        fine = order[0]
        if c["small"]:
            lo = fine.bounds()["min"]
            fix = [rec[k].text for k in ("add-p2", "input") if k in rec and rec[k].gained > 0]
            under = ("" if c["under_finest"] == c["small"] else
                     f"{c['under_finest']} of them ")
            out.append(finding("AF301", Level(fine.name), f"{plural(c['small'], 'box')} "
                               f"({c['small'] / n:.1%}) may get no positive point: {under}below "
                               f"{_g(lo[1])}x{_g(lo[0])} px (w x h) on {fine.name} "
                               f"({fine.rule.text()}); expected "
                               f"{c['expected_without_positive']:.1f} get none",
                               "; or ".join(fix) or "add a finer level or a larger input",
                               boxes=c["small"],
                               expected=round(c["expected_without_positive"], 2)))
        if c["too_large"]:
            top = order[-1]
            fix = [rec[k].text for k in ("reg-max", "add-p6", "ranges", "input")
                   if k in rec and rec[k].gained > 0]
            out.append(finding("AF302", Level(top.name), f"{plural(c['too_large'], 'box')} "
                               f"({c['too_large'] / n:.1%}) exceed every level's upper bound "
                               f"({top.name}: {_g(min(top.bounds()['max']))} px, "
                               f"{top.bounds()['upper']})", "; or ".join(fix) or
                               "add a coarser level or a smaller input", boxes=c["too_large"]))
        if c["gap"]:
            fix = [rec[k].text for k in ("ranges",) if k in rec]
            out.append(finding("AF303", None, f"{plural(c['gap'], 'box')} ({c['gap'] / n:.1%}) fall "
                               "between or below the levels' ranges: no level takes them",
                               "; ".join(fix) or "make the ranges contiguous",
                               boxes=c["gap"]))
    ranged = [s for s in order if s.ranged]
    gaps = []
    # below the first range: only sizes the finest level's candidates could otherwise reach
    if ranged and side_of(ranged[0].lo, ranged[0].measure) > max(
            ranged[0].rule.certain_side(s) for s in ranged[0].stride):
        gaps.append(f"below {ranged[0].lo:g} ({ranged[0].name})")
    for a, b in zip(ranged, ranged[1:]):
        if a.hi < b.lo * (1 - _EPS):
            gaps.append(f"({a.hi:g}, {b.lo:g}] between {a.name} and {b.name}")
    top = order[-1]
    if input_size is not None:
        longest = float(max(input_size))
        if ranged and math.isfinite(ranged[-1].hi):
            biggest = float(measure_of(np.array([[longest, longest]]), ranged[-1].measure)[0])
            if ranged[-1].hi < biggest:
                gaps.append(f"above {ranged[-1].hi:g} ({ranged[-1].name}; an input-sized "
                            f"object measures {biggest:g})")
        reach = min(top.side_reach())
        if reach < longest:
            gaps.append(f"boxes wider than {_g(reach)} px ({top.name}: DFL reg_max "
                        f"{top.reg_max}, input {longest:g})")
    if gaps:
        measure = ranged[0].measure if ranged else "box side"
        out.append(finding("AF304", None, f"no level learns sizes {'; '.join(gaps)} "
                           f"({measure})", "make the ranges contiguous and open-ended, raise "
                           "reg_max, or add a level", gaps=gaps))
    for s in specs:
        if s.rule.kind == "centre-sampling" and 2 * float(s.rule.radius or 0) < 1:
            out.append(finding("AF305", Level(s.name), f"centre sampling radius "
                               f"{s.rule.radius:g} < 0.5: the sampling region "
                               f"({2 * s.rule.radius:g} strides) misses the grid at some "
                               "positions for every box size",
                               "set center_sample_radius >= 0.5 (FCOS uses 1.5)",
                               radius=s.rule.radius))
    return out


# --------------------------------------------------------------------------- views


def bounds_text(b: dict[str, Any]) -> str:
    lo, hi = max(b["min"]), min(b["max"])
    return f"{_g(lo)}-{_g(hi) if math.isfinite(hi) else 'inf'}"


def summary_notes(learn: Learnability) -> list[str]:
    """One line per level and per remedy, for the CLI's notes."""
    lines = []
    for s, b in zip(learn.specs, learn.bounds):
        lines.append(f"{s.name}: learnable sides {bounds_text(b)} px; lower: {b['lower']}; "
                     f"upper: {b['upper']}")
    c = learn.counts
    if c is not None:
        lines.append(f"unlearnable: {c['unlearnable']:,} of {plural(c['boxes'], 'box')} (small "
                     f"{c['small']}, too large {c['too_large']}, gap {c['gap']}); expected "
                     f"without a positive point {c['expected_without_positive']:.1f}")
        rec = learn.recommended
        for r in learn.remedies:
            if r.gained > 0:
                lines.append(f"remedy{' (recommended)' if r is rec else ''}: {r.text}")
    return lines + learn.notes


def _spec_dict(s: LevelSpec) -> dict[str, Any]:
    return {"name": s.name, "stride": list(s.stride), "range": [_j(s.lo), _j(s.hi)],
            "measure": s.measure, "candidates": s.rule.kind, "radius": s.rule.radius,
            "reg_max": s.reg_max, "source": s.rule.source}


def _j(v: float) -> float | None:
    return None if math.isinf(v) else float(v)


def _list(v: Sequence[float]) -> list[float | None]:
    return [_j(float(x)) for x in v]


def _g(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


__all__ = ["BUCKETS", "MEASURES", "CandidateRule", "Learnability", "LevelSpec", "Remedy",
           "analyse", "candidate_rule", "classify", "counts_of", "coverage_by_bucket",
           "coverage_table", "findings", "is_anchor_free", "measure_of", "owners",
           "range_sides", "remedies", "side_of", "specs_from_levels", "summary_notes"]
