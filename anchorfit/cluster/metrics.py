"""The anchor-fit metric catalogue (research §7.3), side by side, for any anchors and boxes.

No single number predicts mAP (darknet #1033, yolov5 #117), because detectors assign anchors
differently. So this module computes every metric the assigners actually use:

- shape-only (co-centred) IoU: mean best IoU (M1), IoU recall at thresholds (M2), the focal / CE
  objectives of anchor-optimization (M7) — what Darknet/mmdet clustering optimises;
- YOLOv5's ratio test: BPR, anchors above threshold, fitness, metric_all, past_thr (M3–M6) —
  exact for YOLOv5-style heads, which match by ``max(r, 1/r) < anchor_t``;
- per-anchor and per-level utilisation, dead anchors (M11), size coverage (M13);
- grid recall and matched anchors per box by size bucket (M8–M10): anchors *tiled* at the real
  stride with the detector's centre convention ('center' (i + 0.5)·S or 'top-left' i·S), the
  boxes at uniformly random sub-stride positions (Zhu et al.'s EMO view) or at their true
  positions inside the image with the feature map's border. This is what SSD/RetinaNet/RPN IoU
  assigners see; shape IoU cannot show the stride effect on small objects.

Entry point: :func:`evaluate` (reusable by planners/audits): anchors per level with strides, box
sizes in input pixels, returns :class:`AnchorMetrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

COCO_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2), ("large", 96.0 ** 2, math.inf))
OFFSETS = ("center", "top-left")


@dataclass(frozen=True)
class GridSpec:
    """How anchors are tiled and where boxes sit for grid recall.

    ``positions``: "random" places each box centre uniformly at random within one cell of the
    coarsest stride (no border effects; the EMO view), "actual" uses the boxes' own centres in
    the resized image of ``image_size`` (H, W) with the feature map's real extent, and drops
    anchors that cross the border by more than ``allowed_border`` px (None: keep all, like
    mmdet's ``allowed_border=-1``). At most ``max_boxes`` boxes are sampled (seeded).
    """

    offset: str = "center"
    positions: str = "random"
    image_size: tuple[int, int] | None = None
    allowed_border: float | None = None
    max_boxes: int = 20000
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "positions": self.positions,
                "image_size": list(self.image_size) if self.image_size else None,
                "allowed_border": self.allowed_border, "max_boxes": self.max_boxes,
                "seed": self.seed}


@dataclass
class AnchorMetrics:
    """Every metric of one anchor set on one box set (see module docstring)."""

    n_boxes: float
    anchor_t: float
    iou_thresholds: tuple[float, ...]
    mean_best_iou: float
    iou_recall: dict[str, float]
    focal_loss: float
    ce_loss: float
    bpr: float
    aat: float
    fitness: float
    metric_all: float
    best_ratio_mean: float
    past_thr: float
    coverage: dict[str, float]
    per_anchor: list[dict[str, Any]]
    per_level: list[dict[str, Any]]
    dead_anchors: list[dict[str, Any]]
    buckets: dict[str, float]
    grid: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: shape metrics per size bucket: {"mean_best_iou" | "bpr" | "fitness": {bucket: value}}
    by_bucket: dict[str, dict[str, float]] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """Flat {name: value} of the headline numbers (the table view)."""
        out: dict[str, float] = {"boxes": self.n_boxes, "mean_best_iou": self.mean_best_iou}
        out.update({f"iou_recall@{k}": v for k, v in self.iou_recall.items()})
        out.update({"focal_objective": self.focal_loss, "ce_objective": self.ce_loss,
                    f"bpr@{self.anchor_t:g}": self.bpr, f"aat@{self.anchor_t:g}": self.aat,
                    "yolov5_fitness": self.fitness, "metric_all": self.metric_all,
                    "best_ratio_mean": self.best_ratio_mean, "past_thr": self.past_thr,
                    "dead_anchors": float(len(self.dead_anchors)),
                    "below_coverage": self.coverage["below"],
                    "above_coverage": self.coverage["above"]})
        if self.grid:
            for tau, per in self.grid["recall"].items():
                for bucket, v in per.items():
                    out[f"grid_recall@{tau} {bucket}"] = v
            for tau, per in self.grid["matched_per_box"].items():
                for bucket, v in per.items():
                    out[f"matched_per_box@{tau} {bucket}"] = v
            for bucket, v in self.grid["emo"].items():
                out[f"emo {bucket}"] = v
        return out

    def to_frame(self) -> pd.DataFrame:
        items = self.scalars()
        return pd.DataFrame({"metric": list(items), "value": [float(v) for v in items.values()]})

    def anchors_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_anchor)

    def to_dict(self) -> dict[str, Any]:
        return {"boxes": self.n_boxes, "anchor_t": self.anchor_t,
                "iou_thresholds": list(self.iou_thresholds),
                "mean_best_iou": self.mean_best_iou, "iou_recall": self.iou_recall,
                "focal_objective": self.focal_loss, "ce_objective": self.ce_loss,
                "bpr": self.bpr, "aat": self.aat, "fitness": self.fitness,
                "metric_all": self.metric_all, "best_ratio_mean": self.best_ratio_mean,
                "past_thr": self.past_thr, "coverage": self.coverage,
                "per_anchor": self.per_anchor, "per_level": self.per_level,
                "dead_anchors": self.dead_anchors, "buckets": self.buckets,
                "by_bucket": self.by_bucket, "grid": self.grid, "notes": self.notes}


# --------------------------------------------------------------------------- shape metrics

def _wmean(values: np.ndarray, weight: np.ndarray | None) -> float:
    if values.size == 0:
        return float("nan")
    return float(values.mean() if weight is None else values @ weight / weight.sum())


def _bucket_of(area: np.ndarray, buckets: Sequence[tuple[str, float, float]]) -> np.ndarray:
    out = np.full(area.shape, -1, dtype=np.int64)
    for i, (_, lo, hi) in enumerate(buckets):
        out[(area >= lo) & (area < hi)] = i
    return out


def evaluate(anchors_by_level: Sequence[np.ndarray], strides: Sequence[float | None] | None,
             boxes: np.ndarray, anchor_t: float = 4.0,
             iou_thresholds: Sequence[float] = (0.35, 0.4, 0.5, 0.7), *,
             weights: np.ndarray | None = None, grid: GridSpec | None = GridSpec(),
             xy: np.ndarray | None = None,
             buckets: Sequence[tuple[str, float, float]] = COCO_BUCKETS,
             chunk: int = 1 << 18) -> AnchorMetrics:
    """All metrics of anchors (per level, (n_l, 2) w, h in input px) on box sizes ``boxes``
    (N, 2) in the same pixels. ``strides`` (one per level) enables grid recall; ``xy`` (N, 2)
    box centres are needed for ``grid.positions == "actual"``; ``weights`` are multiplicities.
    """
    levels = [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in anchors_by_level]
    anchors = np.concatenate(levels) if levels else np.zeros((0, 2))
    if anchors.shape[0] == 0:
        raise ValueError("no anchors to evaluate")
    level_of = np.concatenate([np.full(len(a), i) for i, a in enumerate(levels)])
    taus = tuple(float(t) for t in iou_thresholds)
    boxes = np.asarray(boxes).reshape(-1, 2)
    n = boxes.shape[0]
    k = anchors.shape[0]
    w_all = None if weights is None else np.asarray(weights, dtype=np.float64)
    thr = 1.0 / anchor_t
    s_list = list(strides) if strides is not None else [None] * len(levels)
    a_scale = np.sqrt(anchors[:, 0] * anchors[:, 1])
    lo, hi = a_scale.min() / anchor_t, a_scale.max() * anchor_t
    # Weighted sums, accumulated chunk by chunk: no per-box array outlives its chunk, so memory
    # stays flat in the number of boxes (10 M boxes would otherwise hold ~1 GB of per-box
    # metrics). Row 0 of each (1 + buckets) table is every box, row 1 + i bucket i.
    groups = 1 + len(buckets)
    weight_sum = np.zeros(groups)
    count = np.zeros(groups)
    iou_sum, bpr_sum, fit_sum = np.zeros(groups), np.zeros(groups), np.zeros(groups)
    recall_sum = np.zeros(len(taus))
    totals = dict.fromkeys(("focal", "ce", "above", "x_above", "metric_all", "best_x", "below",
                            "beyond"), 0.0)
    best_counts = np.zeros(k)
    ratio_hits = np.zeros(k)
    level_hit_sum = np.zeros(len(levels))
    for s in range(0, n, chunk):
        wh = np.asarray(boxes[s:s + chunk], dtype=np.float64)
        ww = np.ones(wh.shape[0]) if w_all is None else w_all[s:s + chunk]
        inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * \
            np.minimum(wh[:, None, 1], anchors[None, :, 1])
        iou = inter / (wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1]
                       - inter)
        best_counts += np.bincount(iou.argmax(1), weights=ww, minlength=k)
        best_iou = iou.max(1)
        del inter, iou
        r = wh[:, None, :] / anchors[None, :, :]      # YOLOv5's ratio form, exact at the
        x = np.minimum(r, 1.0 / r).min(2)             # threshold (10/40 is 0.25, not above)
        del r
        best_x = x.max(1)
        hit = x > thr
        ratio_hits += ww @ hit
        above = hit.sum(1)
        totals["above"] += float(ww @ above)
        totals["x_above"] += float(ww @ (x * hit).sum(1))
        totals["metric_all"] += float(ww @ (x.sum(1) / k))
        totals["best_x"] += float(ww @ best_x)
        for lvl in range(len(levels)):
            level_hit_sum[lvl] += float(ww @ hit[:, level_of == lvl].any(1))
        del x, hit
        m_iou = np.clip(best_iou, 1e-12, 1.0)
        totals["focal"] += float(ww @ (-np.square(1 - m_iou) * np.log(m_iou)))
        totals["ce"] += float(ww @ -np.log(m_iou))
        recall_sum += np.array([ww @ (best_iou >= t) for t in taus])
        scale = np.sqrt(wh[:, 0] * wh[:, 1])
        totals["below"] += float(ww @ (scale < lo))
        totals["beyond"] += float(ww @ (scale > hi))
        passed = best_x > thr
        bpr, fit = passed.astype(float), best_x * passed
        b_idx = _bucket_of(wh[:, 0] * wh[:, 1], buckets)
        for g in range(groups):
            sel = slice(None) if g == 0 else (b_idx == g - 1)
            wg = ww[sel]
            count[g] += wg.size
            weight_sum[g] += wg.sum()
            iou_sum[g] += wg @ best_iou[sel]
            bpr_sum[g] += wg @ bpr[sel]
            fit_sum[g] += wg @ fit[sel]
    wsum = float(n if w_all is None else weight_sum[0])

    def mean(total: float, g: int = 0) -> float:
        """A weighted mean over group ``g`` (NaN for an empty group, as numpy's mean of none)."""
        return float(total / weight_sum[g]) if count[g] and weight_sum[g] else float("nan")

    iou_recall = {f"{t:g}": mean(recall_sum[i]) for i, t in enumerate(taus)}
    past = mean(totals["x_above"]) / max(mean(totals["above"]), 1e-12)
    bucket_counts = {name: float(weight_sum[1 + i]) for i, (name, _, _) in enumerate(buckets)}
    per_anchor = []
    for j in range(k):
        lvl = int(level_of[j])
        per_anchor.append({"level": lvl, "stride": s_list[lvl], "w": float(anchors[j, 0]),
                           "h": float(anchors[j, 1]),
                           "best_iou_share": float(best_counts[j] / wsum),
                           "ratio_matched_share": float(ratio_hits[j] / wsum)})
    per_level = []
    for lvl, a in enumerate(levels):
        sel = level_of == lvl
        per_level.append({"level": lvl, "stride": s_list[lvl], "anchors": int(len(a)),
                          "best_iou_share": float(best_counts[sel].sum() / wsum),
                          "ratio_matched_share": mean(level_hit_sum[lvl])})
    dead = [{"level": p["level"], "index": j, "w": p["w"], "h": p["h"]}
            for j, p in enumerate(per_anchor) if p["ratio_matched_share"] == 0.0]
    result = AnchorMetrics(
        n_boxes=wsum, anchor_t=anchor_t, iou_thresholds=taus,
        mean_best_iou=mean(iou_sum[0]), iou_recall=iou_recall,
        focal_loss=mean(totals["focal"]), ce_loss=mean(totals["ce"]),
        bpr=mean(bpr_sum[0]), aat=mean(totals["above"]), fitness=mean(fit_sum[0]),
        metric_all=mean(totals["metric_all"]), best_ratio_mean=mean(totals["best_x"]),
        past_thr=float(past),
        coverage={"low": float(lo), "high": float(hi), "below": mean(totals["below"]),
                  "above": mean(totals["beyond"])},
        per_anchor=per_anchor, per_level=per_level, dead_anchors=dead, buckets=bucket_counts)
    names = ["all"] + [name for name, _, _ in buckets]
    for key, sums in (("mean_best_iou", iou_sum), ("bpr", bpr_sum), ("fitness", fit_sum)):
        result.by_bucket[key] = {name: mean(sums[g], g) for g, name in enumerate(names)}
    if grid is not None and strides is not None and all(s for s in s_list):
        result.grid = grid_recall(levels, [float(s) for s in s_list], boxes, taus,
                                  spec=grid, xy=xy, weights=w_all, buckets=buckets)
    elif grid is not None:
        result.notes.append("grid recall needs a stride per level; not computed")
    return result


# --------------------------------------------------------------------------- grid recall

def _overlap_1d(d: np.ndarray, size: np.ndarray, asize: float) -> np.ndarray:
    """Overlap length of two segments of lengths size and asize whose centres are d apart."""
    return np.clip(np.minimum(np.minimum(size, asize), (size + asize) / 2 - np.abs(d)), 0, None)


def _valid_range(extent: float | None, stride: float, offset: float, asize: float,
                 allowed_border: float | None) -> tuple[float, float]:
    """Contiguous range of cell indices [lo, hi] that exist (and respect the border rule)."""
    if extent is None:
        return -math.inf, math.inf
    lo, hi = 0.0, float(math.ceil(extent / stride) - 1)
    if allowed_border is not None:
        lo = max(lo, math.ceil((asize / 2 - allowed_border - offset) / stride))
        hi = min(hi, math.floor((extent + allowed_border - asize / 2 - offset) / stride))
    return lo, hi


def _tiled_iou_stats(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray,
                     aw: float, ah: float, stride: float, offset: float, taus: np.ndarray,
                     extent: tuple[float, float] | None, allowed_border: float | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Max IoU with, and count of anchors at IoU ≥ τ among, every tiled copy of one anchor
    shape on one level: (n,) and (n, T).

    The overlap is separable (ox(dx)·oy(dy), each non-increasing in |d|), so the max IoU sits at
    the nearest valid cell on each axis. Counting only scans cells that can reach the smallest
    τ: IoU ≥ τ needs an area ratio in [τ, 1/τ] and a centre distance ≤ (1 − τ)·max(w, aw).
    """
    n = cx.shape[0]
    xr = _valid_range(None if extent is None else extent[1], stride, offset, aw, allowed_border)
    yr = _valid_range(None if extent is None else extent[0], stride, offset, ah, allowed_border)
    counts = np.zeros((n, taus.size))
    if xr[0] > xr[1] or yr[0] > yr[1] or n == 0:
        return np.zeros(n), counts
    jx = np.clip(np.rint((cx - offset) / stride), *xr)
    jy = np.clip(np.rint((cy - offset) / stride), *yr)
    ox = _overlap_1d(jx * stride + offset - cx, w, aw)
    oy = _overlap_1d(jy * stride + offset - cy, h, ah)
    inter = ox * oy
    best = inter / (w * h + aw * ah - inter)
    tmin = float(taus.min())
    ratio = (w * h) / (aw * ah)
    elig = np.flatnonzero((ratio >= tmin) & (ratio <= 1 / tmin) & (best >= tmin))
    if elig.size == 0:
        return best, counts
    rx = int(math.ceil((1 - tmin) * max(float(w[elig].max()), aw) / stride)) + 1
    ry = int(math.ceil((1 - tmin) * max(float(h[elig].max()), ah) / stride)) + 1
    span_x, span_y = np.arange(-rx, rx + 1), np.arange(-ry, ry + 1)
    step = max(1, int(2_000_000 // (span_x.size * span_y.size)))
    for s in range(0, elig.size, step):
        idx = elig[s:s + step]
        gx = np.rint((cx[idx] - offset) / stride)[:, None] + span_x[None, :]
        gy = np.rint((cy[idx] - offset) / stride)[:, None] + span_y[None, :]
        ox = _overlap_1d(gx * stride + offset - cx[idx, None], w[idx, None], aw)
        oy = _overlap_1d(gy * stride + offset - cy[idx, None], h[idx, None], ah)
        ox *= (gx >= xr[0]) & (gx <= xr[1])
        oy *= (gy >= yr[0]) & (gy <= yr[1])
        inter = ox[:, :, None] * oy[:, None, :]
        union = (w[idx] * h[idx])[:, None, None] + aw * ah - inter
        iou = (inter / union).reshape(idx.size, -1)
        counts[idx] = (iou[:, :, None] >= taus[None, None, :]).sum(1)
    return best, counts


def grid_recall(anchors_by_level: Sequence[np.ndarray], strides: Sequence[float],
                boxes: np.ndarray, iou_thresholds: Sequence[float] = (0.35, 0.4, 0.5, 0.7), *,
                spec: GridSpec = GridSpec(), xy: np.ndarray | None = None,
                weights: np.ndarray | None = None,
                buckets: Sequence[tuple[str, float, float]] = COCO_BUCKETS) -> dict[str, Any]:
    """Grid recall (fraction of boxes with a tiled anchor at IoU ≥ τ), matched anchors per box
    and EMO (mean max tiled IoU), overall and per size bucket. See :class:`GridSpec`."""
    if spec.offset not in OFFSETS:
        raise ValueError(f"offset must be one of {OFFSETS}, not {spec.offset!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2)
    rng = np.random.default_rng(spec.seed)
    n = boxes.shape[0]
    if n > spec.max_boxes:
        p = None if weights is None else weights / weights.sum()
        sample = np.sort(rng.choice(n, size=spec.max_boxes, replace=False, p=p))
        sw = None
    else:
        sample = np.arange(n)
        sw = weights
    wh = boxes[sample]
    taus = np.asarray(iou_thresholds, dtype=np.float64)
    extent = None
    if spec.positions == "actual":
        if xy is None or spec.image_size is None:
            raise ValueError("positions='actual' needs box centres (xy) and image_size")
        centres = np.asarray(xy, dtype=np.float64)[sample]
        extent = (float(spec.image_size[0]), float(spec.image_size[1]))
    elif spec.positions == "random":
        # one offset per box inside a cell of the coarsest stride, which is aligned with every
        # finer grid whose stride divides it
        centres = rng.random((sample.size, 2)) * max(strides)
    else:
        raise ValueError(f"positions must be 'random' or 'actual', not {spec.positions!r}")
    best = np.zeros(sample.size)
    counts = np.zeros((sample.size, taus.size))
    for anchors, stride in zip(anchors_by_level, strides):
        off = stride / 2 if spec.offset == "center" else 0.0
        for aw, ah in np.asarray(anchors, dtype=np.float64).reshape(-1, 2):
            b, c = _tiled_iou_stats(centres[:, 0], centres[:, 1], wh[:, 0], wh[:, 1], aw, ah,
                                    stride, off, taus, extent, spec.allowed_border)
            np.maximum(best, b, out=best)
            counts += c
    b_idx = _bucket_of(wh[:, 0] * wh[:, 1], buckets)
    groups = [("all", np.ones(sample.size, dtype=bool))] + \
        [(name, b_idx == i) for i, (name, _, _) in enumerate(buckets)]

    def per_group(values: np.ndarray) -> dict[str, float]:
        return {name: _wmean(values[m], None if sw is None else sw[m]) for name, m in groups}

    return {"spec": spec.to_dict(), "boxes_sampled": int(sample.size),
            "recall": {f"{t:g}": per_group((best >= t).astype(float)) for t in taus},
            "matched_per_box": {f"{t:g}": per_group(counts[:, i]) for i, t in enumerate(taus)},
            "emo": per_group(best)}
