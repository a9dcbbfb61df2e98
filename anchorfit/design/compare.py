"""Side-by-side comparison of anchor sets on one dataset, with the metrics assigners use.

The sets: the detector's **default** anchors, **RF-derived** anchors (ratio x stride per level,
spread over an octave when a level has several), plain **k-means** (IoU k-means, anchors dealt to
levels by area like YOLOv5/Darknet) and **level-aware k-means** (each level clusters the boxes of
its own scale range, capped by its ERF or head RF). Every metric of ``anchorfit.cluster.metrics``
is computed for each, including grid recall with the detector's real strides and centre
convention, by COCO size bucket.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.cluster.metrics import AnchorMetrics, GridSpec, evaluate
from anchorfit.detector import Anchor, Detector
from anchorfit.errors import AnchorfitError

#: Rows of the comparison table, in order (scalar names of AnchorMetrics.scalars()).
HEADLINE = ("mean_best_iou", "iou_recall@0.5", "iou_recall@0.35", "bpr@{t}", "aat@{t}",
            "yolov5_fitness", "dead_anchors", "grid_recall@{pos} small",
            "grid_recall@{pos} medium", "grid_recall@{pos} large", "grid_recall@{pos} all",
            "matched_per_box@{pos} small", "matched_per_box@{pos} all", "emo small", "emo all")

#: What every metric means; ``anchorfit compare --help`` and README print this.
METRIC_HELP: dict[str, str] = {
    "mean_best_iou": "mean over boxes of the best shape IoU (anchor and box co-centred) with any "
                     "anchor: what Darknet's best-anchor assigner and IoU k-means optimise",
    "iou_recall@T": "share of boxes whose best shape IoU is at least T",
    "bpr@t": "YOLOv5 best possible recall: share of boxes with at least one anchor inside the "
             "ratio test max(w/aw, aw/w, h/ah, ah/h) < t (AutoAnchor re-fits below 0.98)",
    "aat@t": "YOLOv5 anchors above threshold: mean number of anchors per box that pass the "
             "ratio test (positives per box and cell)",
    "yolov5_fitness": "YOLOv5 AutoAnchor fitness: mean over boxes of the best ratio metric "
                      "min(r, 1/r) (worse axis), counted only where it passes 1/t",
    "metric_all": "mean over boxes and all anchors of the ratio metric (YOLOv5's metric_all)",
    "past_thr": "mean ratio metric of the anchor-box pairs that pass 1/t (YOLOv5's past_thr)",
    "best_ratio_mean": "mean over boxes of the best ratio metric, passed or not",
    "focal_objective": "mean of -(1-IoU)^2 log IoU of each box's best anchor (focal form of "
                       "anchor optimisation; lower is better)",
    "ce_objective": "mean of -log IoU of each box's best anchor (lower is better)",
    "dead_anchors": "anchors that no box passes the ratio test for (lower is better)",
    "grid_recall@T bucket": "share of boxes that some anchor tiled at the level's true stride "
                            "and centre convention overlaps with IoU >= T, boxes at random "
                            "sub-cell positions: what IoU assigners (SSD, RetinaNet, RPN) see",
    "matched_per_box@T bucket": "mean number of tiled anchors with IoU >= T per box "
                                "(positives per object)",
    "emo bucket": "expected max overlap (Zhu et al. 2019): mean over boxes of the best tiled IoU",
    "buckets": "COCO sizes by box area in input pixels: small < 32², medium 32²-96², large > 96²",
}

#: Metrics where a lower value is better (every other headline metric: higher is better).
LOWER_IS_BETTER = ("focal_objective", "ce_objective", "dead_anchors", "below_coverage",
                   "above_coverage")

#: The audit checks that depend on the anchors themselves (the rest describe the network).
ANCHOR_CHECKS = ("AF101", "AF102", "AF103", "AF104", "AF105", "AF110", "AF111", "AF112")

#: Scores within this of the best count as a tie; the candidate with fewer audit warnings wins.
TIE = 0.005


def metrics_help() -> str:
    """METRIC_HELP as indented lines (CLI epilog, README)."""
    return "\n".join(f"  {name}: {text}" for name, text in METRIC_HELP.items())


@dataclass
class Verdict:
    """Which set to use for this detector's assigner, and why."""

    recommended: str | None
    assigner: str
    metric: str
    scores: dict[str, float]
    by_bucket: dict[str, dict[str, float]]
    audits: dict[str, dict[str, Any]]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"recommended": self.recommended, "assigner": self.assigner,
                "metric": self.metric, "scores": self.scores, "by_bucket": self.by_bucket,
                "audits": self.audits, "reason": self.reason}


@dataclass
class AnchorSet:
    """One compared anchor set: anchors per level, their metrics and what producing them cost."""

    name: str
    anchors: list[np.ndarray]
    metrics: AnchorMetrics
    runtime_s: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "anchors": [np.round(a, 2).tolist() for a in self.anchors],
                "runtime_s": self.runtime_s, "metrics": self.metrics.to_dict(),
                "notes": self.notes}


@dataclass
class Comparison:
    """The comparison table: rows are metrics, columns anchor sets."""

    detector: str
    input_size: tuple[int, int]
    strides: list[float]
    sets: list[AnchorSet]
    anchor_t: float
    positive_iou: float
    grid: GridSpec
    seed: int
    boxes: int
    dataset: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    level_names: list[str] = field(default_factory=list)
    strides_yx: list[tuple[float, float]] = field(default_factory=list)
    #: anchor-free detectors: assignment coverage by COCO bucket, current vs recommended
    #: configuration (``anchor_free.coverage_table``); None for anchor detectors
    coverage: dict[str, Any] | None = None
    coverage_frame: pd.DataFrame | None = None
    erf: dict[str, float] | None = None  # level -> ERF (4 sigma, px) capping level-aware k-means

    def rows(self) -> list[str]:
        pos = f"{self.positive_iou:g}"
        t = f"{self.anchor_t:g}"
        names = [h.format(t=t, pos=pos) for h in HEADLINE]
        have = set(self.sets[0].metrics.scalars())
        return [n for n in names if n in have]

    def to_frame(self) -> pd.DataFrame:
        data: dict[str, list[Any]] = {"metric": self.rows() + ["anchors", "runtime_s"]}
        for s in self.sets:
            sc = s.metrics.scalars()
            col = [round(float(sc[r]), 4) for r in self.rows()]
            col.append(sum(len(a) for a in s.anchors))
            col.append(round(s.runtime_s, 3))
            data[s.name] = col
        data["best"] = [self.best(r) for r in self.rows()] + ["", ""]
        return pd.DataFrame(data)

    def anchors_frame(self) -> pd.DataFrame:
        rows = []
        for i, stride in enumerate(self.strides):
            name = self.level_names[i] if i < len(self.level_names) else str(i)
            row: dict[str, Any] = {"level": name, "stride": stride}
            for s in self.sets:
                a = s.anchors[i] if i < len(s.anchors) else np.zeros((0, 2))
                row[s.name] = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in a)
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "input": list(self.input_size),
                "levels": self.level_names,
                "strides": [list(s) for s in self.strides_yx] or [[s, s] for s in self.strides],
                "anchor_t": self.anchor_t,
                "positive_iou": self.positive_iou, "grid": self.grid.to_dict(),
                "seed": self.seed, "boxes": self.boxes, "dataset": self.dataset,
                "sets": [s.to_dict() for s in self.sets],
                "best": {r: self.best(r) for r in self.rows()},
                "verdict": None if self.verdict is None else self.verdict.to_dict(),
                "coverage": self.coverage, "erf": self.erf, "notes": self.notes}

    def best(self, metric: str) -> str:
        """The set with the best value of ``metric`` (lowest where lower is better; ties: the
        first set in column order; "" when every set has the same value)."""
        sign = -1.0 if metric.split(" ")[0] in LOWER_IS_BETTER else 1.0
        values = [(_finite(sign * float(s.metrics.scalars()[metric])), -i, s.name)
                  for i, s in enumerate(self.sets)]
        if len({v[0] for v in values}) == 1 and len(values) > 1:
            return ""  # every set ties: nothing to highlight
        return max(values)[2]


def rf_derived(strides: Sequence[float], per_level: Sequence[int], ratio: float = 4.0
               ) -> list[np.ndarray]:
    """ratio x stride per level; n anchors per level spread over one octave (RetinaNet-like)."""
    out = []
    for s, n in zip(strides, per_level):
        sizes = [ratio * s * 2 ** (j / max(n, 1)) for j in range(max(n, 1))]
        out.append(np.array([[v, v] for v in sizes]))
    return out


#: defaults of ``compare`` that callers (the CLI) show and pass on
RATIO = 4.0  # RF-derived anchors are RATIO x stride (S3FD)
RESTARTS = 10  # k-means restarts


def check_options(*, k: int | None = None, ratio: float = RATIO,
                  restarts: int = RESTARTS) -> None:
    """Validate ``compare``'s numeric parameters; messages name the parameter (``key``).

    ``compare`` calls it; a caller with slow work before ``compare`` (reading a dataset,
    measuring the ERF) may call it first to fail early.
    """
    if restarts < 1:
        raise AnchorfitError(f"restarts {restarts}: expected at least 1", key="restarts")
    if ratio <= 0:
        raise AnchorfitError(f"ratio {ratio}: expected a positive number", key="ratio")
    if k is not None and k < 1:
        raise AnchorfitError(f"k {k}: expected at least 1", key="k")


def compare(detector: Detector, wh: np.ndarray, *, k: int | None = None, ratio: float = RATIO,
            erf: dict[str, float] | None = None, seed: int = 0, restarts: int = RESTARTS,
            anchor_t: float | None = None, positive_iou: float | None = None,
            extra_sets: dict[str, list[np.ndarray]] | None = None,
            dataset: dict[str, Any] | None = None) -> Comparison:
    """Compare default, RF-derived, k-means and level-aware k-means anchors on ``wh``."""
    from anchorfit.cluster.api import cluster_anchors

    check_options(k=k, ratio=ratio, restarts=restarts)
    if detector.network is not None and any(lv.rf is None and lv.node for lv in detector.levels):
        detector.analyze()
    levels = detector.levels
    strides = []
    for lv in levels:
        s = lv.stride_px()
        if s is None:
            raise AnchorfitError(f"level {lv.name!r} has no stride; cannot tile anchors")
        strides.append(s)
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    if len(wh) == 0:
        raise AnchorfitError("no boxes to compare on")
    per_level = [len(lv.anchors) for lv in levels]
    if k is None:
        k = sum(per_level) or len(levels)
    if not any(per_level):
        per_level = [max(k // len(levels), 1)] * len(levels)
    yolo = [lv.assigner.anchor_t for lv in levels if lv.assigner.kind == "yolo-ratio"]
    anchor_t = anchor_t or (yolo[0] if yolo and yolo[0] else 4.0)
    pos = positive_iou or next((lv.assigner.pos_iou for lv in levels if lv.assigner.pos_iou),
                               0.5)
    offset = "center" if levels[0].center_offset >= 0.25 else "top-left"
    grid = GridSpec(offset=offset, positions="random", seed=seed)
    taus = tuple(sorted({0.35, 0.4, 0.5, 0.7, float(pos)}))

    def measure(name: str, anchors: list[np.ndarray], runtime: float,
                notes: list[str] | None = None) -> AnchorSet:
        metrics = evaluate(anchors, strides, wh, anchor_t, taus, grid=grid)
        return AnchorSet(name, [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in anchors],
                         metrics, runtime, notes or [])

    # clustering deals anchors to levels finest first; detectors may list levels coarse first
    # (YOLOv3 heads are P5, P4, P3): cluster in stride order, report in the detector's order
    order = sorted(range(len(levels)), key=lambda i: strides[i])
    asc = [strides[i] for i in order]

    def in_level_order(by_stride: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, 2))] * len(levels)
        for rank, i in enumerate(order):
            out[i] = by_stride[rank]
        return out

    sets = []
    if any(len(lv.anchors) for lv in levels):
        default = [np.array([[a.w, a.h] for a in lv.anchors]).reshape(-1, 2) for lv in levels]
        sets.append(measure("default", default, 0.0))
    t0 = time.perf_counter()
    rf_sets = rf_derived(strides, per_level, ratio)
    sets.append(measure(f"rf x{ratio:g}", rf_sets, time.perf_counter() - t0))
    names = [levels[i].name for i in order]
    km = cluster_anchors(wh, k, method="iou", strides=asc, assign="area", restarts=restarts,
                         seed=seed, anchor_t=anchor_t, grid=None, level_names=names)
    sets.append(measure("k-means", in_level_order(km.anchors), km.runtime_s, list(km.warnings)))
    caps = []
    for lv in levels:
        cap = (erf or {}).get(lv.name)
        if cap is None and lv.head_rf is not None:
            cap = float(max(lv.head_rf.rf))
        caps.append(cap)
    lk = cluster_anchors(wh, k, method="iou", strides=asc, assign="range",
                         restarts=restarts, seed=seed, anchor_t=anchor_t,
                         level_max=[caps[i] for i in order], grid=None, level_names=names)
    sets.append(measure("level-aware k-means", in_level_order(lk.anchors), lk.runtime_s,
                        list(lk.warnings)))
    if yolo:
        yk = cluster_anchors(wh, k, method="yolov5", strides=asc, seed=seed,
                             anchor_t=anchor_t, grid=None, level_names=names)
        sets.append(measure("yolov5 evolve", in_level_order(yk.anchors), yk.runtime_s,
                            list(yk.warnings)))
    for name, anchors in (extra_sets or {}).items():
        sets.append(measure(name, anchors, 0.0))
    verdict = recommend(detector, sets, wh, float(pos), anchor_t, erf)
    notes = [f"grid recall: anchors tiled at the true strides with centres at "
             f"{'(i+0.5)*S' if offset == 'center' else 'i*S'}, box centres uniform within a "
             f"cell (seed {seed}); positive IoU {pos:g}; YOLOv5 ratio threshold {anchor_t:g}"]
    result = Comparison(detector.name, detector.input_size, strides, sets, anchor_t, float(pos),
                        grid, seed, int(len(wh)), dataset or {}, notes, verdict,
                        [lv.name for lv in levels],
                        [tuple(float(v) for v in lv.true_stride()) for lv in levels])
    result.erf = dict(erf) if erf else None
    _anchor_free_coverage(result, detector, wh)
    return result


def _anchor_free_coverage(result: Comparison, detector: Detector, wh: np.ndarray) -> None:
    """Anchor-free detectors are compared by assignment coverage (boxes that get a positive
    point on some level, by size bucket) for their configuration and the recommended one."""
    from anchorfit.design import anchor_free as af

    if not af.is_anchor_free(detector):
        return
    frame, info = af.coverage_table(af.specs_from_levels(detector.levels), wh,
                                    detector.input_size)
    result.coverage, result.coverage_frame = info, frame
    cur, rec = info["current"]["all"], info["recommended"]["all"]
    result.notes.append(
        f"assignment coverage: {cur['covered']} of {cur['boxes']} boxes get a positive point at "
        "every position with the current configuration" + (
            f"; {rec['covered']} with the recommended one: {info['text']}" if info["text"]
            else " (no change of levels, ranges, reg_max or input size covers more)"))


def _finite(v: float) -> float:
    return -math.inf if math.isnan(v) else v


def assigner_metric(detector: Detector, positive_iou: float, anchor_t: float
                    ) -> tuple[str, str, str, str | None]:
    """(assigner description, headline metric, by-bucket key, tie-break metric) for the
    detector's assigner: the number that assigner's training really depends on."""
    kinds = {lv.assigner.kind for lv in detector.levels}
    t, pos = f"{anchor_t:g}", f"{positive_iou:g}"
    if "yolo-ratio" in kinds:
        return (f"YOLOv5 ratio test (max(w/aw, aw/w, h/ah, ah/h) < {t}): a box trains every "
                "anchor that passes, so best possible recall decides, then fitness",
                f"bpr@{t}", "bpr", "yolov5_fitness")
    if "darknet" in kinds:
        return ("Darknet best anchor: each box trains the anchor of highest shape IoU, so the "
                "mean best IoU decides", "mean_best_iou", "mean_best_iou", None)
    return (f"IoU assigner (positive at IoU >= {pos} with tiled anchors, best anchor forced): "
            f"grid recall at {pos} decides, then expected max overlap",
            f"grid_recall@{pos} all", f"grid_recall@{pos}", "emo all")


def _bucket_values(s: AnchorSet, key: str) -> dict[str, float]:
    if key.startswith("grid_recall@"):
        grid = s.metrics.grid or {}
        return dict(grid.get("recall", {}).get(key.split("@", 1)[1], {}))
    return dict(s.metrics.by_bucket.get(key, {}))


def _with_anchors(detector: Detector, anchors: Sequence[np.ndarray]) -> Detector:
    levels = [dataclasses.replace(lv, anchors=[Anchor(float(w), float(h)) for w, h in a])
              for lv, a in zip(detector.levels, anchors)]
    return dataclasses.replace(detector, levels=levels)


def recommend(detector: Detector, sets: Sequence[AnchorSet], wh: np.ndarray,
              positive_iou: float, anchor_t: float, erf: dict[str, float] | None = None
              ) -> Verdict:
    """Recommend one set for the detector's assigner.

    Each set is audited first (the checks that depend on anchors, with the boxes): a set with
    an error finding is never recommended. Among the rest the highest score of the assigner's
    metric wins; within ``TIE`` of it, the set with fewer audit warnings (then the better
    tie-break metric) wins, so a marginally better set that trips a check is not preferred.
    """
    from anchorfit.design.anchor_free import is_anchor_free
    from anchorfit.design.audit import audit

    describe, metric, bucket_key, tie_metric = assigner_metric(detector, positive_iou, anchor_t)
    scores = {s.name: float(s.metrics.scalars().get(metric, math.nan)) for s in sets}
    by_bucket = {s.name: _bucket_values(s, bucket_key) for s in sets}
    audits: dict[str, dict[str, Any]] = {}
    for s in sets:
        report = audit(_with_anchors(detector, s.anchors), wh, erf,
                       only=[c for c in ANCHOR_CHECKS if c != "AF102" or erf])
        audits[s.name] = {
            "errors": sum(f.severity == "error" for f in report.findings),
            "warnings": sum(f.severity == "warning" for f in report.findings),
            "codes": sorted(report.codes()),
            "findings": [f"{f.code} {f.level or ''}: {f.message}".replace(" :", ":")
                         for f in report.findings if f.severity != "info"]}
    if is_anchor_free(detector):
        return Verdict(None, "anchor-free: no anchors are assigned", metric, scores, by_bucket,
                       audits, "the detector is anchor-free; the anchor sets are for reference")
    eligible = [s for s in sets if audits[s.name]["errors"] == 0 and
                not math.isnan(scores[s.name])]
    if not eligible:
        return Verdict(None, describe, metric, scores, by_bucket, audits,
                       "every set has an error finding; fix those first (see audits)")
    top = max(scores[s.name] for s in eligible)
    close = [s for s in eligible if scores[s.name] >= top - TIE]

    def rank(s: AnchorSet) -> tuple[float, ...]:
        tie = float(s.metrics.scalars().get(tie_metric, 0.0)) if tie_metric else 0.0
        return (-audits[s.name]["warnings"], _finite(tie), scores[s.name])

    chosen = max(close, key=rank)
    reason = _reason(chosen.name, metric, scores, by_bucket, audits, sets)
    return Verdict(chosen.name, describe, metric, scores, by_bucket, audits, reason)


def _reason(chosen: str, metric: str, scores: dict[str, float],
            by_bucket: dict[str, dict[str, float]], audits: dict[str, dict[str, Any]],
            sets: Sequence[AnchorSet]) -> str:
    others = ", ".join(f"{s.name} {scores[s.name]:.3f}" for s in sets if s.name != chosen)
    buckets = ", ".join(f"{b} {v:.3f}" for b, v in by_bucket[chosen].items()
                        if b != "all" and not math.isnan(v))
    text = f"{chosen}: {metric} {scores[chosen]:.3f} (vs {others})"
    if buckets:
        text += f"; by size: {buckets}"
    found = audits[chosen]
    text += ("; its audit is clean" if not found["warnings"] else
             f"; its audit warns {', '.join(found['codes'])}")
    skipped = [name for name, a in audits.items() if name != chosen and a["errors"] == 0
               and a["warnings"] > found["warnings"] and scores[name] > scores[chosen]]
    if skipped:
        text += (f"; {', '.join(skipped)} scores within {TIE:g} but trips "
                 + ", ".join(sorted({c for n in skipped for c in audits[n]['codes']})))
    failed = [name for name, a in audits.items() if a["errors"] and scores[name] > scores[chosen]]
    if failed:
        text += f"; {', '.join(failed)} scores higher but has audit errors"
    return text


def score_as_exported(result: Comparison, wh: np.ndarray, name: str,
                      center_offsets: Sequence[float]) -> AnchorSet:
    """Set ``name`` scored again with the anchor centres an export gives it (an mmdet export
    that has to switch to YOLOAnchorGenerator moves i*S centres to (i+0.5)*S): the column says
    what the written file will do, not what the detector's generator did."""
    chosen = next(s for s in result.sets if s.name == name)
    offset = "center" if float(center_offsets[0]) >= 0.25 else "top-left"
    grid = GridSpec(offset=offset, positions=result.grid.positions, seed=result.seed)
    metrics = evaluate(chosen.anchors, result.strides, np.asarray(wh, dtype=np.float64).reshape(
        -1, 2), result.anchor_t, chosen.metrics.iou_thresholds, grid=grid)
    where = "(i+0.5)*S" if offset == "center" else "i*S"
    return AnchorSet(f"{name} (as exported)", chosen.anchors, metrics, chosen.runtime_s,
                     [f"scored with the exported centres at {where}"])


@dataclass
class SetExport:
    """One compared set written back in the detector's own format (``export_set``)."""

    name: str  # the set exported (the verdict's set when 'recommended' was asked for)
    export: Any  # design.export.Export: format, text, notes, centre offsets
    target: Path | None  # the file written; None when the export was only made (export.text)


def export_set(result: Comparison, detector: Detector, wh: np.ndarray, name: str, *,
               target: Path | None = None, in_place: bool = False,
               force: bool = False) -> SetExport:
    """Export set ``name`` of ``result`` ('recommended': the set the verdict recommends).

    Written to ``target`` (an existing file only with ``force``), or over the detector's own file with ``in_place`` (atomically, keeping
    a .bak copy); with neither, only made. The export's notes join ``result.notes``; an export
    that moves the anchor centres (mmdet i*S -> (i+0.5)*S) adds the set scored as exported to
    ``result.sets``, so the comparison says what the written file will do.
    """
    from anchorfit.design.export import make_export, save_export

    if name == "recommended":
        if result.verdict is None or result.verdict.recommended is None:
            raise AnchorfitError("export recommended: no set is recommended for this detector",
                                 key="export")
        name = result.verdict.recommended
    names = [s.name for s in result.sets]
    if name not in names:
        raise AnchorfitError(f"export {name!r} is not a compared set", key="export",
                             hint="one of: " + ", ".join(names))
    chosen = next(s for s in result.sets if s.name == name)
    anchors = [a.tolist() for a in chosen.anchors]
    written = None
    if in_place or target:
        out, written = save_export(detector, anchors, target=target, in_place=in_place,
                                   force=force)
    else:
        out = make_export(detector, anchors)
    result.notes += [f"export: {n}" for n in out.notes]
    if out.changes_centers:
        result.sets.append(score_as_exported(result, wh, name, out.center_offsets))
    return SetExport(name, out, written)
