"""Shape-only IoU of co-centred boxes, the distance of anchor k-means (YOLO9000, Darknet, mmdet).

Two boxes with the same centre overlap in min(w1, w2) × min(h1, h2); position plays no part.
Everything is broadcast so one call scores all boxes against all anchors (and all restarts).
"""

from __future__ import annotations

import numpy as np


def shape_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of co-centred boxes: wh (..., N, 2) against anchors (..., K, 2) → (..., N, K)."""
    w, h = wh[..., :, None, 0], wh[..., :, None, 1]
    aw, ah = anchors[..., None, :, 0], anchors[..., None, :, 1]
    inter = np.minimum(w, aw) * np.minimum(h, ah)
    return inter / (w * h + aw * ah - inter)


def best_iou(wh: np.ndarray, anchors: np.ndarray, chunk: int = 1 << 18
             ) -> tuple[np.ndarray, np.ndarray]:
    """(best IoU, index of the best anchor) per box, computed in chunks to bound memory."""
    n = wh.shape[0]
    best = np.empty(n, dtype=np.float64)
    arg = np.empty(n, dtype=np.int64)
    anchors = np.asarray(anchors, dtype=np.float64)
    for s in range(0, n, chunk):
        iou = shape_iou(np.asarray(wh[s:s + chunk], dtype=np.float64), anchors)
        arg[s:s + chunk] = iou.argmax(1)
        best[s:s + chunk] = iou.max(1) if iou.shape[1] else 0.0
    return best, arg


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    if values.size == 0:
        return float("nan")
    if weights is None:
        return float(values.mean())
    return float(np.dot(values, weights) / weights.sum())


def sort_by_area(anchors: np.ndarray) -> np.ndarray:
    """Anchors ordered by area, ties by width: the order every detector config expects."""
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    order = np.lexsort((anchors[:, 0], anchors[:, 0] * anchors[:, 1]))
    return anchors[order]
