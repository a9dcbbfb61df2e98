"""``cluster_anchors``: one call from box sizes to anchors per level plus every metric.

Methods: ``iou`` (k-means on 1 − shape IoU, k-means++ seeding, restarts), ``yolov5`` (YOLOv5's
whitened k-means + mutation evolution at ``anchor_t``), ``sklearn`` (scikit-learn KMeans on
(log w, log h), a baseline). All run on compressed weighted sizes (see ``compress``); the
returned metrics are computed on *all* boxes, and ``approx_error`` says how far the compressed
mean IoU was from the exact one for the same anchors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from anchorfit.cluster.compress import compress
from anchorfit.cluster.geometry import best_iou, weighted_mean
from anchorfit.cluster.kmeans import iou_kmeans
from anchorfit.cluster.levels import level_kmeans, level_label, split_by_area, split_k
from anchorfit.cluster.metrics import AnchorMetrics, GridSpec, evaluate
from anchorfit.cluster.yolov5 import yolov5_anchors
from anchorfit.errors import AnchorfitError
from anchorfit.safeinput import MAX_RESTARTS

METHODS = ("iou", "yolov5", "sklearn")


@dataclass
class ClusterResult:
    """Anchors per level, the metrics of those anchors on all boxes, and how they were found."""

    method: str
    k: int
    strides: list[float | None]
    anchors: list[np.ndarray]           # per level, (n_l, 2) w, h in input pixels
    metrics: AnchorMetrics
    seed: int
    restarts: int
    restart_mean_iou: list[float]
    runtime_s: float
    assign: str
    compression: dict[str, Any]
    approx_error: float
    parameters: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    boxes: dict[str, Any] = field(default_factory=dict)   # source, counts, dropped

    def to_frame(self) -> pd.DataFrame:
        """One row per anchor: level, stride, w, h, and how much of the data it serves."""
        rows = []
        for p in self.metrics.per_anchor:
            rows.append({"level": p["level"], "stride": p["stride"], "w": round(p["w"], 2),
                         "h": round(p["h"], 2), "w/h": round(p["w"] / p["h"], 3),
                         "best_iou_share": round(p["best_iou_share"], 4),
                         "ratio_matched_share": round(p["ratio_matched_share"], 4)})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        spread = np.asarray(self.restart_mean_iou, dtype=np.float64)
        return {
            "method": self.method, "k": self.k, "seed": self.seed, "restarts": self.restarts,
            "assign": self.assign, "runtime_s": self.runtime_s,
            "levels": [{"level": i, "stride": s, "anchors": np.round(a, 2).tolist()}
                       for i, (s, a) in enumerate(zip(self.strides, self.anchors))],
            "metrics": self.metrics.to_dict(),
            "restart_spread": {"mean_iou": spread.tolist(), "min": float(spread.min()),
                               "max": float(spread.max()), "std": float(spread.std())},
            "compression": self.compression, "approx_error": self.approx_error,
            "parameters": self.parameters, "warnings": self.warnings, "boxes": self.boxes}


def _fit_points(method: str, points: np.ndarray, weight: np.ndarray, k: int, *, restarts: int,
                seed: int, update: str, anchor_t: float
                ) -> tuple[np.ndarray, list[str], list[float]]:
    """Anchors (k, 2) for one set of weighted points with one method."""
    if method == "iou":
        fit = iou_kmeans(points, k, weight=weight, restarts=restarts, seed=seed, update=update)
        return fit.anchors, fit.warnings, fit.restart_mean_iou.tolist()
    if method == "yolov5":
        distinct = np.unique(points[(points >= 2.0).any(1)], axis=0).shape[0]
        if distinct < k:
            fit = iou_kmeans(points, k, weight=weight, restarts=1, seed=seed)
            return fit.anchors, fit.warnings, fit.restart_mean_iou.tolist()
        y = yolov5_anchors(points, k, weight=weight, anchor_t=anchor_t, seed=seed)
        return y.anchors, y.warnings, [y.fitness]
    if method == "sklearn":
        return sklearn_log_kmeans(points, weight, k, restarts=restarts, seed=seed)
    raise AnchorfitError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}",
                         key="method")


def sklearn_log_kmeans(points: np.ndarray, weight: np.ndarray, k: int, *, restarts: int = 10,
                       seed: int = 0) -> tuple[np.ndarray, list[str], list[float]]:
    """Baseline: scikit-learn KMeans (k-means++, Euclidean) on (log w, log h), weighted."""
    from sklearn.cluster import KMeans

    distinct = np.unique(points, axis=0)
    if distinct.shape[0] <= k:
        return distinct, ([f"only {distinct.shape[0]} distinct sizes for k={k}"]
                          if distinct.shape[0] < k else []), [float("nan")]
    km = KMeans(n_clusters=k, n_init=restarts, random_state=seed)
    km.fit(np.log(points), sample_weight=weight)
    return np.exp(km.cluster_centers_), [], [float(-km.inertia_)]


def check_restarts(restarts: int, key: str = "restarts") -> int:
    """A restart count between 1 and ``MAX_RESTARTS`` (every restart holds a copy of the
    assignments, so 10⁸ restarts would exhaust memory long before finishing)."""
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise AnchorfitError(f"expected at least 1 restart, got {restarts!r}", key=key)
    if restarts > MAX_RESTARTS:
        raise AnchorfitError(f"{restarts} restarts is beyond the limit of {MAX_RESTARTS} "
                             "(the default is 10; more restarts than a few hundred never change "
                             "the result)", key=key)
    return int(restarts)


def cluster_anchors(wh: np.ndarray, k: int = 9, *, method: str = "iou",
                    strides: Sequence[float] | None = None, assign: str = "auto",
                    restarts: int = 10, seed: int = 0, update: str = "mean",
                    anchor_t: float = 4.0, compression: str = "auto", bin_width: float = 0.01,
                    level_range: tuple[float, float] = (2.0, 8.0),
                    level_max: Sequence[float | None] | None = None,
                    iou_thresholds: Sequence[float] = (0.35, 0.4, 0.5, 0.7),
                    grid: GridSpec | None = GridSpec(), xy: np.ndarray | None = None,
                    level_names: Sequence[str] | None = None) -> ClusterResult:
    """Cluster box sizes ``wh`` (N, 2, input pixels) into k anchors and evaluate them.

    With ``strides`` the anchors are grouped per level: ``assign="range"`` clusters each level's
    boxes inside [lo, hi]·stride (level-aware, default for iou/sklearn), ``assign="area"`` sorts
    all k anchors by area and splits them evenly (YOLOv5's rule, default for yolov5).
    ``level_names`` (one per stride) name the levels in warnings as the detector does.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise AnchorfitError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}",
                             key="method")
    if k < 1:
        raise AnchorfitError(f"k must be at least 1, not {k}", key="k")
    check_restarts(restarts)
    wh = np.asarray(wh, dtype=np.float32).reshape(-1, 2)
    comp = compress(wh, mode=compression, bin_width=bin_width)
    stride_list: list[float | None] = list(strides) if strides else [None]
    n_levels = len(stride_list)
    if k < n_levels:
        raise AnchorfitError(f"k={k} is fewer than the {n_levels} levels", key="k")
    if assign == "auto":
        assign = "area" if (method == "yolov5" or not strides) else "range"
    if assign not in ("area", "range"):
        raise AnchorfitError(f"assign must be 'area' or 'range', not {assign!r}", key="assign")
    k_levels = split_k(k, n_levels)
    warnings: list[str] = []
    spread: list[float] = []
    if assign == "range" and strides:
        def fit(p: np.ndarray, w: np.ndarray, kk: int) -> tuple[np.ndarray, list[str]]:
            a, notes, sp = _fit_points(method, p, w, kk, restarts=restarts, seed=seed,
                                       update=update, anchor_t=anchor_t)
            spread.extend(sp)
            return a, notes
        levels, notes, _ = level_kmeans(comp.wh, comp.weight, [float(s) for s in strides],
                                        k_levels, fit, level_range=level_range,
                                        level_max=level_max, level_names=level_names)
        warnings += notes
    else:
        anchors, notes, spread = _fit_points(method, comp.wh, comp.weight, k, restarts=restarts,
                                             seed=seed, update=update, anchor_t=anchor_t)
        warnings += notes
        levels = split_by_area(anchors, split_k(anchors.shape[0], n_levels)) \
            if anchors.shape[0] >= n_levels else [anchors]
        if strides:
            for lvl, (s, a) in enumerate(zip(stride_list, levels)):
                small = int(np.sum(np.sqrt(a[:, 0] * a[:, 1]) < s))
                if small:
                    warnings.append(f"{level_label(lvl, s, level_names)}: {small} anchors are "
                                    "smaller than the stride (yolov5 #117); level-aware "
                                    "clustering (range assignment) keeps each level's anchors "
                                    "in its own size range")
    all_anchors = np.concatenate(levels)
    metrics = evaluate(levels, stride_list if strides else None, wh, anchor_t, iou_thresholds,
                       grid=grid if strides else None, xy=xy)
    approx = weighted_mean(best_iou(comp.wh, all_anchors)[0], comp.weight) - metrics.mean_best_iou
    runtime = time.perf_counter() - t0
    return ClusterResult(
        method=method, k=k, strides=stride_list, anchors=levels, metrics=metrics, seed=seed,
        restarts=restarts if method != "yolov5" else 1, restart_mean_iou=spread or [float("nan")],
        runtime_s=runtime, assign=assign, compression=comp.to_dict(), approx_error=float(approx),
        parameters={"update": update, "anchor_t": anchor_t, "level_range": list(level_range),
                    "bin_width": bin_width, "iou_thresholds": list(iou_thresholds),
                    "grid": grid.to_dict() if (grid and strides) else None},
        warnings=warnings)
