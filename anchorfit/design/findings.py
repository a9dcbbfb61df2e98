"""The catalogue of anchor checks, each with its runner, and the findings they report.

Every check has a stable code (AF1xx: the anchors of a detector, ``design.audit``; AF2xx: what a
plan or its data cannot satisfy, raised by ``design.plan``; AF3xx: what an anchor-free assigner
lets a level learn, from ``design.anchor_free``), a default severity and a runner. Every finding
names the level (and anchor) it concerns, the numbers measured, and a one-line remedy. Codes never
change meaning, so CI scripts can filter on them.

Coordinates: anchor centres are compared with RF centres in continuous pixel coordinates, where
the RF centre of cell i is ``c0 + i*S + 0.5`` (index convention + 0.5) and an anchor generator puts
cell i's anchor centre at ``(i + center_offset) * step``.

This module sits below the planner and the anchor-free analysis (both report ``Finding``s made
with ``finding()``); the anchor-free runners therefore get that analysis passed in through
``AuditInputs.anchor_free`` rather than importing it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from anchorfit.detector import Detector, Level
from anchorfit.report.text import plural

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
Runner = Callable[["AuditInputs"], list["Finding"]]


@dataclass(frozen=True)
class Check:
    """A check of the catalogue: its stable code, default severity, what it looks at, and the
    function that runs it on ``AuditInputs`` (None where another step raises it: the planner)."""

    code: str
    name: str
    severity: Severity
    needs_boxes: bool
    needs_erf: bool
    summary: str
    run: Runner | None = field(default=None, compare=False, repr=False)


@dataclass
class Finding:
    """One problem found: code, severity, where, the measured numbers and what to do."""

    code: str
    severity: Severity
    level: str | None
    message: str
    remedy: str
    anchor: int | None = None
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return CHECKS[self.code].name

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "severity": self.severity,
                "level": self.level, "anchor": self.anchor, "message": self.message,
                "remedy": self.remedy, "measured": self.measured}


@dataclass
class AuditInputs:
    """What the checks look at: the analysed detector, optionally box sizes and ERF sizes."""

    detector: Detector
    wh: np.ndarray | None = None  # (N, 2) box widths/heights in input pixels
    erf: dict[str, float] | None = None  # level name -> ERF size (4 sigma, px)
    #: the anchor-free findings (AF301-AF305) of this detector, made on first use by the caller
    #: (``design.audit`` passes ``design.anchor_free``'s analysis); an empty list on anchor
    #: detectors. Passed in so that the catalogue sits below the analysis it reports.
    anchor_free: Callable[[], list[Finding]] | None = None

    @cached_property
    def anchor_free_findings(self) -> list[Finding]:
        """AF301-AF305 on this detector, computed once for the five anchor-free runners."""
        return [] if self.anchor_free is None else self.anchor_free()

    @cached_property
    def assignment(self) -> Assignment:
        """Box-to-anchor assignment, computed once for all the dataset checks."""
        return _assign(self)


@dataclass(frozen=True)
class Assignment:
    """Which anchors the detector's assigner lets take each box, and each box's best anchor."""

    ok: np.ndarray  # (N, K) bool
    ids: list[tuple[str, int]]  # (level name, anchor index) of each of the K anchors
    best: np.ndarray  # (N,) index of the best shape-IoU anchor


# --------------------------------------------------------------------------- helpers


def _side(w: float, h: float) -> float:
    """One number for an anchor's size: the side of the square of equal area."""
    return math.sqrt(w * h)


def _step(level: Level) -> float | None:
    if level.step is not None:
        return float(max(level.step))
    return level.stride_px()


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def finding(code: str, level: Level | None, message: str, remedy: str,
            anchor: int | None = None, **measured: Any) -> Finding:
    """A ``Finding`` of check ``code`` at its catalogue severity; ``measured`` made JSON-ready."""
    return Finding(code, CHECKS[code].severity, None if level is None else level.name, message,
                   remedy, anchor, {k: json_value(v) for k, v in measured.items()})


def json_value(v: Any) -> Any:
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    return v


# --------------------------------------------------------------------------- the checks


def check_anchor_exceeds_rf(inp: AuditInputs) -> list[Finding]:
    out = []
    for level in inp.detector.levels:
        rf = level.head_rf or level.rf
        if rf is None:
            continue
        limit = min(rf.rf)
        for i, a in enumerate(level.anchors):
            side = max(a.w, a.h)
            if side > limit:
                out.append(finding(
                    "AF101", level, f"anchor {_fmt(a.w)}x{_fmt(a.h)} is larger than the head RF "
                    f"{limit} px", "move it to a deeper level, or accept that the level predicts "
                    "beyond what it sees", i, size=[a.w, a.h], rf=list(rf.rf)))
    return out


def check_erf_band(inp: AuditInputs) -> list[Finding]:
    out = []
    if not inp.erf:
        return out
    for level in inp.detector.levels:
        erf = inp.erf.get(level.name)
        if erf is None:
            continue
        for i, a in enumerate(level.anchors):
            side = _side(a.w, a.h)
            if side > erf or side < erf / 4:
                where = "above" if side > erf else "below"
                out.append(finding(
                    "AF102", level, f"anchor {_fmt(a.w)}x{_fmt(a.h)} (side {_fmt(side)}) is "
                    f"{where} the ERF band [{_fmt(erf / 4)}, {_fmt(erf)}]",
                    "S3FD rule: anchor < ERF < RF; pick an anchor inside the band or move it "
                    "to the level whose ERF fits", i, side=side, erf=erf))
    return out


def check_sparse_tiling(inp: AuditInputs) -> list[Finding]:
    out = []
    for level in inp.detector.levels:
        step = _step(level)
        if step is None:
            continue
        if level.rf is not None and level.rf.y.size * level.rf.x.size == 1:
            continue  # a single cell has no neighbours to leave gaps between
        for i, a in enumerate(level.anchors):
            copies = len(a.offsets) if a.offsets else 1
            density = min(a.w, a.h) * math.sqrt(copies) / step
            if density < 1:
                n = math.ceil(1 / density)
                out.append(finding(
                    "AF103", level, f"anchor {_fmt(a.w)}x{_fmt(a.h)} on step {_fmt(step)}: "
                    f"anchor/step = {density:.2f}", f"densify it {n}x per axis "
                    f"(FaceBoxes), or tile it on a finer level", i, density=density, step=step))
    return out


def check_uneven_density(inp: AuditInputs) -> list[Finding]:
    ratios = {}
    for level in inp.detector.levels:
        stride = level.stride_px()
        if stride is None or not level.anchors:
            continue
        sides = [_side(a.w, a.h) for a in level.anchors]
        ratios[level.name] = float(np.exp(np.mean(np.log(sides)))) / stride
    if len(ratios) < 2:
        return []
    lo, hi = min(ratios.values()), max(ratios.values())
    if hi / lo <= 2:
        return []
    text = ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
    return [finding("AF104", None, f"anchor/stride (geometric mean per level) ranges from "
                    f"{lo:.2f} to {hi:.2f}: {text}",
                    "equal-proportion tiling (S3FD) keeps anchor/stride constant, e.g. 4",
                    ratios=ratios)]


def check_anchor_order(inp: AuditInputs) -> list[Finding]:
    levels = [lv for lv in inp.detector.levels if lv.anchors and lv.stride_px() is not None]
    if len(levels) < 2:
        return []
    # YOLOv5's check_anchor_order compares the sign of the change of mean anchor area with the
    # change of stride, in pixel space (PR #7067).
    by_stride = sorted(levels, key=lambda lv: (lv.stride_px(), levels.index(lv)))
    area = {lv.name: float(np.mean([a.w * a.h for a in lv.anchors])) for lv in by_stride}
    areas = [area[lv.name] for lv in by_stride]
    out = []
    for a, b in zip(by_stride, by_stride[1:]):
        sa, sb = a.stride_px(), b.stride_px()
        if sb > sa and area[b.name] < area[a.name]:
            out.append(finding(
                "AF105", b, f"level {b.name} (stride {_fmt(sb)}) has smaller anchors (mean area "
                f"{_fmt(area[b.name])}) than level {a.name} (stride {_fmt(sa)})",
                "reverse or re-sort the anchor lists so that anchors grow with stride",
                areas=areas))
    return out


def check_masks(inp: AuditInputs) -> list[Finding]:
    levels = [lv for lv in inp.detector.levels if lv.mask is not None]
    if not levels:
        return []
    total = inp.detector.extra.get("num_anchors")
    if total is None:
        total = max(max(lv.mask) for lv in levels if lv.mask) + 1
    used: dict[int, list[str]] = {}
    for lv in levels:
        for m in lv.mask or []:
            used.setdefault(m, []).append(lv.name)
    out = []
    unused = [i for i in range(int(total)) if i not in used]
    shared = {i: names for i, names in used.items() if len(names) > 1}
    if unused:
        out.append(finding("AF106", None, f"anchors {unused} are in no mask (of {total})",
                           "make the masks cover every anchor exactly once, e.g. 0,1,2 / 3,4,5",
                           unused=unused))
    for i, names in shared.items():
        out.append(finding("AF106", None, f"anchor {i} is used by levels {', '.join(names)}",
                           "give each anchor to one level", shared=[i, names]))
    for lv in levels:
        if lv.mask and sorted(lv.mask) != list(range(min(lv.mask), max(lv.mask) + 1)):
            out.append(finding("AF106", lv, f"mask {lv.mask} is not a contiguous range",
                               "use consecutive anchors per level", mask=lv.mask))
    return out


def check_filters(inp: AuditInputs) -> list[Finding]:
    out = []
    classes_default = inp.detector.num_classes
    for lv in inp.detector.levels:
        filters = lv.extra.get("filters")
        classes = lv.extra.get("classes", classes_default)
        if filters is None or classes is None or lv.mask is None:
            continue
        want = (int(classes) + 5) * len(lv.mask)
        if int(filters) != want:
            line = lv.extra.get("filters_line")
            where = f" (line {line})" if line else ""
            out.append(finding("AF107", lv, f"filters={filters}{where} but (classes {classes} "
                               f"+ 5) x {plural(len(lv.mask), 'anchor')} = {want}",
                               f"set filters={want} in the [convolutional] before this [yolo]",
                               filters=int(filters), expected=want))
    return out


def check_step(inp: AuditInputs) -> list[Finding]:
    out = []
    for lv in inp.detector.levels:
        if lv.step is None or lv.rf is None:
            continue
        stride = lv.rf.stride
        for axis, (st, sp) in enumerate(zip(stride, lv.step)):
            if abs(float(st) - float(sp)) > 1e-6:
                n = lv.rf.feature_size[axis]
                drift = (n - 1) * (float(sp) - float(st))
                amap = lv.rf.axes[axis]
                rf_centre = (amap.start(0) + amap.end(0)) / 2 + 0.5
                anchor_centre = lv.center_offset * float(sp)
                where = (f"the last of {n} cells is {_fmt(abs(drift))} px off" if n > 1 else
                         f"its single cell's anchors sit at {_fmt(anchor_centre)} px, the RF "
                         f"centre at {_fmt(rf_centre)} px")
                out.append(finding(
                    "AF108", lv, f"anchor step {_fmt(float(sp))} but the feature map's stride is "
                    f"{_fmt(float(st))} ({'yx'[axis]} axis): {where}",
                    f"use step {_fmt(float(st))}", step=float(sp), stride=float(st),
                    drift=drift))
                break
    return out


def check_centres(inp: AuditInputs) -> list[Finding]:
    out = []
    for lv in inp.detector.levels:
        if lv.rf is None or not lv.anchors or lv.center == "explicit" or not lv.rf.aligned:
            continue  # misaligned levels have no single RF centre per cell (AF114 says so)
        step = lv.step or tuple(float(s) for s in lv.rf.stride)
        worst = 0.0
        where = (0, 0)
        for axis, amap in enumerate(lv.rf.axes):
            n = amap.size
            for i in {0, n // 2, n - 1}:
                lo, hi = amap.start(i), amap.end(i)
                if lo is None or hi is None:
                    continue
                rf_centre = (lo + hi) / 2 + 0.5
                anchor_centre = (i + lv.center_offset) * float(step[axis])
                off = abs(anchor_centre - rf_centre)
                if off > worst:
                    worst, where = off, (axis, i)
        stride = float(max(lv.rf.stride))
        if worst > stride / 4:
            axis, i = where
            out.append(finding(
                "AF109", lv, f"anchor centres are up to {_fmt(worst)} px from the RF centres "
                f"(cell {i}, {'yx'[axis]} axis; S/4 = {_fmt(stride / 4)})",
                "shift the anchor grid (centre offset) to the RF centres or use step = stride",
                offset=worst, stride=stride))
    return out


def _assign(inp: AuditInputs) -> Assignment:
    """For each box, which anchors can take it under the detector's assigner (boolean matrix)."""
    from anchorfit.cluster.geometry import shape_iou

    det = inp.detector
    anchors = [(lv.name, i, a) for lv in det.levels for i, a in enumerate(lv.anchors)]
    wh = np.asarray(inp.wh, dtype=np.float64)
    aw = np.array([a.w for _, _, a in anchors])
    ah = np.array([a.h for _, _, a in anchors])
    iou = shape_iou(wh, np.stack([aw, ah], 1))
    best = iou.argmax(1)
    kinds = {lv.assigner.kind for lv in det.levels}
    if "yolo-ratio" in kinds:
        t = next(lv.assigner.anchor_t for lv in det.levels if lv.assigner.anchor_t) or 4.0
        r = np.maximum(np.maximum(wh[:, :1] / aw, aw / wh[:, :1]),
                       np.maximum(wh[:, 1:] / ah, ah / wh[:, 1:]))
        ok = r < t
    else:
        thr = np.array([lv.assigner.pos_iou or 0.5 for lv in det.levels for _ in lv.anchors])
        ok = iou >= thr
        if "darknet" in kinds or "iou" in kinds:
            # every box also gets its best anchor (SSD/RetinaNet force-match, Darknet best-IoU)
            ok[np.arange(len(wh)), best] = True
    return Assignment(ok, [(name, i) for name, i, _ in anchors], best)


def check_dead_anchors(inp: AuditInputs) -> list[Finding]:
    if inp.wh is None or not inp.detector.all_anchors():
        return []
    ok, ids = inp.assignment.ok, inp.assignment.ids
    counts = ok.sum(0)
    out = []
    levels = {lv.name: lv for lv in inp.detector.levels}
    for (name, i), c in zip(ids, counts):
        if c == 0:
            a = levels[name].anchors[i]
            out.append(finding("AF110", levels[name], f"anchor {_fmt(a.w)}x{_fmt(a.h)} matches "
                               f"none of {plural(len(inp.wh), 'box')} under the assigner",
                               "drop it or re-cluster (anchorfit kmeans --levels ...)", i,
                               boxes=int(c)))
    return out


def check_boxes_below_reach(inp: AuditInputs) -> list[Finding]:
    if inp.wh is None or not inp.detector.all_anchors():
        return []
    ok = inp.assignment.ok
    wh = np.asarray(inp.wh)
    smallest = min(inp.detector.all_anchors(), key=lambda a: a[0] * a[1])
    small = (wh[:, 0] * wh[:, 1]) < smallest[0] * smallest[1]
    unmatched_small = small & (ok.sum(1) <= 1)
    det = inp.detector
    if det.levels and det.levels[0].assigner.kind == "yolo-ratio":
        unmatched_small = small & (ok.sum(1) == 0)
    n = int(unmatched_small.sum())
    if n == 0:
        return []
    frac = n / len(wh)
    if frac < 0.01:
        return []
    # the finest level (Darknet lists its [yolo] heads coarse first, so not levels[0])
    finest = min(det.levels, key=lambda lv: lv.stride_px() or math.inf)
    return [finding("AF111", finest, f"{plural(n, 'box')} ({frac:.1%}) are smaller than the "
                    f"smallest anchor {_fmt(smallest[0])}x{_fmt(smallest[1])} and match at most "
                    "the forced best anchor", "add a smaller anchor on the finest level, or "
                    "train at a larger input size", boxes=n, fraction=frac)]


def check_empty_levels(inp: AuditInputs) -> list[Finding]:
    if inp.wh is None or not inp.detector.all_anchors():
        return []
    ok, ids = inp.assignment.ok, inp.assignment.ids
    wh = inp.wh
    # each box goes to its best anchor's level (what the loss mostly trains)
    best_level = [ids[j][0] for j in inp.assignment.best]
    out = []
    for lv in inp.detector.levels:
        if not lv.anchors:
            continue
        got = sum(1 for b in best_level if b == lv.name)
        matched = int(ok[:, [k for k, (n, _) in enumerate(ids) if n == lv.name]].any(1).sum())
        if matched == 0:
            out.append(finding("AF112", lv, f"no box of {len(wh)} is assigned to this level",
                               "remove the level or move anchors here from crowded levels",
                               boxes=0, best_anchor_boxes=got))
    return out


def check_prior_count(inp: AuditInputs) -> list[Finding]:
    out = []
    for lv in inp.detector.levels:
        if lv.feature_size is None or lv.rf is None:
            continue
        actual = lv.rf.feature_size
        if tuple(lv.feature_size) != tuple(actual):
            per = max(len(lv.anchors), 1)
            out.append(finding(
                "AF113", lv, f"the config tiles a {lv.feature_size[0]}x{lv.feature_size[1]} grid "
                f"but the network gives {actual[0]}x{actual[1]} at input "
                f"{inp.detector.input_size[0]}x{inp.detector.input_size[1]} "
                f"({per * lv.feature_size[0] * lv.feature_size[1]} vs "
                f"{per * actual[0] * actual[1]} priors)",
                f"set feature_maps to {actual[0]}, or use the input size the config was made for",
                config=list(lv.feature_size), network=list(actual)))
    return out


def check_misaligned(inp: AuditInputs) -> list[Finding]:
    return [finding("AF114", lv, (f"RF depends on the cell phase (period "
                                  f"{lv.rf.y.period}x{lv.rf.x.period})"
                                  if lv.rf.y.period * lv.rf.x.period > 1 else
                                  "paths into this level disagree on the RF centre") +
                    f"; rf {max(lv.rf.rf)} is the maximum",
                    "anchors here see unequal context cell to cell; prefer the lateral path's "
                    "RF when sizing them", period=[lv.rf.y.period, lv.rf.x.period])
            for lv in inp.detector.levels if lv.rf is not None and not lv.rf.aligned]


def check_global(inp: AuditInputs) -> list[Finding]:
    return [finding("AF115", lv, "the level depends on the whole image (global pooling, "
                    "GroupNorm/LayerNorm statistics or attention); the local RF is reported",
                    "size anchors by the local RF/ERF; treat the RF bound as soft")
            for lv in inp.detector.levels if lv.rf is not None and lv.rf.global_context]


def anchor_free_check(code: str) -> Runner:
    """The runner of one anchor-free check (AF301-AF305); no findings on anchor detectors."""
    def run(inp: AuditInputs) -> list[Finding]:
        return [f for f in inp.anchor_free_findings if f.code == code]
    return run


#: The catalogue, in the order ``audit`` runs it. AF2xx checks have no runner: the planner
#: raises them from its own numbers (``design.plan``).
CHECKS: dict[str, Check] = {c.code: c for c in [
    Check("AF101", "anchor-exceeds-rf", "warning", False, False,
          "an anchor is larger than its level's receptive field (head RF included)",
          check_anchor_exceeds_rf),
    Check("AF102", "anchor-outside-erf-band", "warning", False, True,
          "an anchor lies outside [ERF/4, ERF] (ERF = 4 sigma of the effective receptive field)",
          check_erf_band),
    Check("AF103", "sparse-tiling", "warning", False, False,
          "anchor/step < 1: neighbouring anchors leave gaps, small objects fall between them",
          check_sparse_tiling),
    Check("AF104", "uneven-density", "info", False, False,
          "anchor/stride differs a lot between levels (not equal-proportion tiling)",
          check_uneven_density),
    Check("AF105", "anchor-order", "error", False, False,
          "anchor sizes do not grow with the level's stride (YOLOv5 check_anchor_order)",
          check_anchor_order),
    Check("AF106", "mask-skips-or-shares", "warning", False, False,
          "Darknet masks leave anchors unused or give one anchor to several levels",
          check_masks),
    Check("AF107", "filters-mismatch", "error", False, False,
          "Darknet filters= before a [yolo] layer is not (classes + 5) x |mask|",
          check_filters),
    Check("AF108", "step-not-stride", "warning", False, False,
          "the anchor generator's step differs from the feature map's true stride",
          check_step),
    Check("AF109", "centre-offset", "warning", False, False,
          "anchor centres sit more than S/4 away from the RF centres of their cells",
          check_centres),
    Check("AF110", "dead-anchor", "warning", True, False,
          "an anchor that no box of the dataset can be assigned to",
          check_dead_anchors),
    Check("AF111", "boxes-below-reach", "warning", True, False,
          "boxes smaller than the smallest anchor can match",
          check_boxes_below_reach),
    Check("AF112", "empty-level", "warning", True, False,
          "a level that receives no boxes of the dataset",
          check_empty_levels),
    Check("AF113", "prior-count", "error", False, False,
          "the config's feature-map size differs from the network's at this input size (SSD "
          "prior count mismatch)",
          check_prior_count),
    Check("AF114", "misaligned-level", "info", False, False,
          "the level's RF depends on the cell phase (FPN/YOLO top-down paths, upsampling)",
          check_misaligned),
    Check("AF115", "global-context", "info", False, False,
          "the level depends on the whole image (SE, GroupNorm, global pooling)",
          check_global),
    # planner findings (design.plan raises them; no runner): what the proposal or the data
    # cannot satisfy
    Check("AF201", "anchor-not-below-erf", "warning", False, True,
          "the proposed anchor is not smaller than the level's ERF"),
    Check("AF202", "erf-not-below-rf", "warning", False, True,
          "the measured ERF is not smaller than the theoretical RF"),
    Check("AF203", "anchor-exceeds-head-rf", "warning", False, False,
          "the proposed anchor is larger than the level's head RF"),
    Check("AF204", "densify", "info", False, False,
          "anchor/stride below the target ratio: shifted copies restore the density"),
    Check("AF205", "objects-beyond-rf", "warning", True, False,
          "objects larger than the largest head RF"),
    Check("AF206", "objects-below-stride", "warning", True, False,
          "objects smaller than a quarter of the finest stride"),
    Check("AF207", "level-without-boxes", "warning", True, False,
          "a level the dataset gives nothing to detect"),
    # anchor-free detectors (design.anchor_free): what the assigner's geometry lets a level learn
    Check("AF301", "af-no-positive-point", "warning", True, False,
          "boxes smaller than the finest level's candidate region may get no positive point "
          "(a box needs a grid point inside it: side >= stride for TAL/ATSS/FCOS)",
          anchor_free_check("AF301")),
    Check("AF302", "af-beyond-reach", "warning", True, False,
          "boxes larger than every level's upper bound (DFL reach 2 (reg_max - 1) stride, or the "
          "last regress range)",
          anchor_free_check("AF302")),
    Check("AF303", "af-range-gap", "warning", True, False,
          "boxes that fall between or below the levels' regress/scale ranges",
          anchor_free_check("AF303")),
    Check("AF304", "af-ranges-leave-sizes", "warning", False, False,
          "the levels' ranges (or DFL reach) leave object sizes that no level learns",
          anchor_free_check("AF304")),
    Check("AF305", "af-centre-sampling-radius", "error", False, False,
          "a centre sampling radius under 0.5 strides misses the grid for boxes of every size",
          anchor_free_check("AF305")),
]}


__all__ = ["CHECKS", "SEVERITY_RANK", "Assignment", "AuditInputs", "Check", "Finding", "Runner",
           "Severity", "anchor_free_check", "finding", "json_value"]
