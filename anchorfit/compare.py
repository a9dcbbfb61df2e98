"""Side-by-side comparison of anchor sets on one dataset, with the metrics assigners use.

The sets: the detector's **default** anchors, **RF-derived** anchors (ratio x stride per level,
spread over an octave when a level has several), plain **k-means** (IoU k-means, anchors dealt to
levels by area like YOLOv5/Darknet) and **level-aware k-means** (each level clusters the boxes of
its own scale range, capped by its ERF or head RF). Every metric of ``anchorfit.cluster.metrics``
is computed for each, including grid recall with the detector's real strides and centre
convention, by COCO size bucket.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.cluster.metrics import AnchorMetrics, GridSpec, evaluate
from anchorfit.detector import Detector
from anchorfit.errors import AnchorfitError

#: Rows of the comparison table, in order (scalar names of AnchorMetrics.scalars()).
HEADLINE = ("mean_best_iou", "iou_recall@0.5", "iou_recall@0.35", "bpr@{t}", "aat@{t}",
            "yolov5_fitness", "dead_anchors", "grid_recall@{pos} small",
            "grid_recall@{pos} medium", "grid_recall@{pos} large", "grid_recall@{pos} all",
            "matched_per_box@{pos} small", "matched_per_box@{pos} all", "emo small", "emo all")


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
        return pd.DataFrame(data)

    def anchors_frame(self) -> pd.DataFrame:
        rows = []
        for i, stride in enumerate(self.strides):
            row: dict[str, Any] = {"level": i, "stride": stride}
            for s in self.sets:
                a = s.anchors[i] if i < len(s.anchors) else np.zeros((0, 2))
                row[s.name] = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in a)
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "input": list(self.input_size),
                "strides": self.strides, "anchor_t": self.anchor_t,
                "positive_iou": self.positive_iou, "grid": self.grid.to_dict(),
                "seed": self.seed, "boxes": self.boxes, "dataset": self.dataset,
                "sets": [s.to_dict() for s in self.sets], "notes": self.notes}

    def best(self, metric: str) -> str:
        return max(self.sets, key=lambda s: s.metrics.scalars()[metric]).name


def rf_derived(strides: Sequence[float], per_level: Sequence[int], ratio: float = 4.0
               ) -> list[np.ndarray]:
    """ratio x stride per level; n anchors per level spread over one octave (RetinaNet-like)."""
    out = []
    for s, n in zip(strides, per_level):
        sizes = [ratio * s * 2 ** (j / max(n, 1)) for j in range(max(n, 1))]
        out.append(np.array([[v, v] for v in sizes]))
    return out


def compare(detector: Detector, wh: np.ndarray, *, k: int | None = None, ratio: float = 4.0,
            erf: dict[str, float] | None = None, seed: int = 0, restarts: int = 10,
            anchor_t: float | None = None, positive_iou: float | None = None,
            extra_sets: dict[str, list[np.ndarray]] | None = None,
            dataset: dict[str, Any] | None = None) -> Comparison:
    """Compare default, RF-derived, k-means and level-aware k-means anchors on ``wh``."""
    from anchorfit.cluster.api import cluster_anchors

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
    km = cluster_anchors(wh, k, method="iou", strides=asc, assign="area", restarts=restarts,
                         seed=seed, anchor_t=anchor_t, grid=None)
    sets.append(measure("k-means", in_level_order(km.anchors), km.runtime_s, list(km.warnings)))
    caps = []
    for lv in levels:
        cap = (erf or {}).get(lv.name)
        if cap is None and lv.head_rf is not None:
            cap = float(max(lv.head_rf.rf))
        caps.append(cap)
    lk = cluster_anchors(wh, k, method="iou", strides=asc, assign="range",
                         restarts=restarts, seed=seed, anchor_t=anchor_t,
                         level_max=[caps[i] for i in order], grid=None)
    sets.append(measure("level-aware k-means", in_level_order(lk.anchors), lk.runtime_s,
                        list(lk.warnings)))
    if yolo:
        yk = cluster_anchors(wh, k, method="yolov5", strides=asc, seed=seed,
                             anchor_t=anchor_t, grid=None)
        sets.append(measure("yolov5 evolve", in_level_order(yk.anchors), yk.runtime_s,
                            list(yk.warnings)))
    for name, anchors in (extra_sets or {}).items():
        sets.append(measure(name, anchors, 0.0))
    notes = [f"grid recall: anchors tiled at the true strides with centres at "
             f"{'(i+0.5)*S' if offset == 'center' else 'i*S'}, box centres uniform within a "
             f"cell (seed {seed}); positive IoU {pos:g}; YOLOv5 ratio threshold {anchor_t:g}"]
    return Comparison(detector.name, detector.input_size, strides, sets, anchor_t, float(pos),
                      grid, seed, int(len(wh)), dataset or {}, notes)


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
