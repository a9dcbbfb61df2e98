"""compare: default vs RF-derived vs k-means vs level-aware k-means, every metric side by side."""

from __future__ import annotations

import numpy as np
import pytest

from anchorfit.cluster.metrics import evaluate
from anchorfit.design.compare import compare, rf_derived
from anchorfit.detector import Anchor, Assigner

from test_audit import detector


def boxes(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    s = np.exp(rng.uniform(np.log(12), np.log(220), n))
    return np.stack([s * rng.uniform(0.7, 1.0, n), s * rng.uniform(1.0, 1.4, n)], 1)


def test_rf_derived_spreads_an_octave():
    (a, b) = rf_derived([8, 16], [3, 1])
    assert a[:, 0] == pytest.approx([32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)])
    assert b.tolist() == [[64, 64]]


def test_comparison_table_has_every_set_and_headline_metrics():
    det = detector([[(30, 30), (40, 40)], [(70, 70), (90, 90)], [(140, 140), (180, 180)]])
    wh = boxes()
    cmp = compare(det, wh, seed=0, restarts=3)
    names = [s.name for s in cmp.sets]
    assert names == ["default", "rf x4", "k-means", "level-aware k-means"]
    frame = cmp.to_frame()
    assert list(frame.columns) == ["metric"] + names + ["best"]  # best value of each row named
    metrics = list(frame["metric"])
    for row in ["mean_best_iou", "bpr@4", "grid_recall@0.5 small", "grid_recall@0.5 all",
                "emo all", "anchors", "runtime_s"]:
        assert row in metrics
    # the default column equals a direct evaluation with the same grid
    direct = evaluate([np.array([[30, 30], [40, 40]]), np.array([[70, 70], [90, 90]]),
                       np.array([[140, 140], [180, 180]])], [8, 16, 32], wh, 4.0,
                      (0.35, 0.4, 0.5, 0.7), grid=cmp.grid)
    assert cmp.sets[0].metrics.mean_best_iou == pytest.approx(direct.mean_best_iou)
    # clustering on the data beats fixed squares on shape IoU
    assert cmp.sets[2].metrics.mean_best_iou > cmp.sets[1].metrics.mean_best_iou
    # level-aware keeps every level's anchors within [2, 8] x stride, plain k-means need not
    for a, s in zip(cmp.sets[3].anchors, [8, 16, 32]):
        side = np.sqrt(a[:, 0] * a[:, 1])
        assert np.all(side >= 2 * s - 1e-6) and np.all(side <= 8 * s + 1e-6)
    d = cmp.to_dict()
    assert d["seed"] == 0 and d["boxes"] == len(wh) and len(d["sets"]) == 4


def test_yolo_detectors_also_get_the_yolov5_algorithm():
    det = detector([[(30, 30), (40, 40)], [(70, 70), (90, 90)], [(140, 140), (180, 180)]],
                   assigner=Assigner("yolo-ratio", None, None, anchor_t=4.0))
    cmp = compare(det, boxes(600), restarts=2)
    assert cmp.sets[-1].name == "yolov5 evolve"
    assert cmp.anchor_t == 4.0


def test_compare_is_deterministic_per_seed():
    det = detector([[(30, 30)], [(70, 70)], [(140, 140)]])
    a = compare(det, boxes(800), seed=3, restarts=2).to_frame()
    b = compare(det, boxes(800), seed=3, restarts=2).to_frame()
    pd_equal = a.drop(index=a.index[-1]).equals(b.drop(index=b.index[-1]))  # runtimes differ
    assert pd_equal


def test_levels_listed_coarse_first_keep_their_own_anchors():
    """YOLOv3 lists its heads P5, P4, P3: clustered anchors must land on the right stride."""
    fine_first = detector([[(30, 30)], [(70, 70)], [(140, 140)]])
    coarse_first = detector([[(30, 30)], [(70, 70)], [(140, 140)]])
    coarse_first.levels.reverse()
    a = compare(fine_first, boxes(800), restarts=2)
    b = compare(coarse_first, boxes(800), restarts=2)
    for name in ("k-means", "level-aware k-means"):
        sa = next(s for s in a.sets if s.name == name).anchors
        sb = next(s for s in b.sets if s.name == name).anchors
        assert [x.tolist() for x in sa] == [x.tolist() for x in reversed(sb)]
        side = [float(np.sqrt(x[:, 0] * x[:, 1]).mean()) for x in sb]
        assert side == sorted(side, reverse=True)  # coarse level first gets the big anchors
