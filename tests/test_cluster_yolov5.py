"""YOLOv5-compatible mode: defaults, filters, determinism, and fitness = YOLOv5's formula."""

from __future__ import annotations

import numpy as np
import pytest

from anchorfit.cluster.metrics import evaluate
from anchorfit.cluster.yolov5 import ratio_metric, yolov5_anchors, yolov5_fitness
from anchorfit.data.synthetic import synthetic_wh


def test_ratio_metric_hand_computed():
    x = ratio_metric(np.array([[20.0, 40.0]]), np.array([[10.0, 10.0], [40.0, 40.0]]))
    assert x.tolist() == [[0.25, 0.5]]


def test_fitness_zeroes_boxes_below_threshold():
    wh = np.array([[10.0, 10.0], [100.0, 100.0]])
    # box 2 vs the 10 px anchor: best_x 0.1 < 1/4 → contributes 0
    assert yolov5_fitness(wh, np.array([[10.0, 10.0]])) == pytest.approx(0.5)
    assert yolov5_fitness(wh, np.array([[10.0, 10.0]]), anchor_t=12) == pytest.approx(0.55)


def test_evolution_improves_and_is_deterministic():
    wh = synthetic_wh(4000, seed=3).astype(np.float64) * 0.5
    a = yolov5_anchors(wh, 9, seed=0, gen=300)
    b = yolov5_anchors(wh, 9, seed=0, gen=300)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    assert a.fitness >= a.kmeans_fitness and a.improvements > 0
    assert a.anchors.shape == (9, 2) and (a.anchors >= 2.0).all()
    areas = a.anchors.prod(1)
    assert (np.diff(areas) >= 0).all()
    # the fitness it reports is YOLOv5's formula on the boxes it kept (>= 2 px on a side)
    kept = wh[(wh >= 2.0).any(1)]
    assert a.fitness == pytest.approx(yolov5_fitness(kept, a.anchors), abs=1e-6)
    assert evaluate([a.anchors], None, kept, grid=None).fitness == pytest.approx(a.fitness, abs=1e-6)


def test_tiny_labels_filtered_and_warned():
    wh = np.concatenate([synthetic_wh(500, seed=1).astype(np.float64),
                         [[1.0, 1.5]] * 7, [[2.5, 1.0]] * 4])
    fit = yolov5_anchors(wh, 4, gen=10)
    assert fit.dropped_under_2px == 7      # under 2 px on both sides
    assert fit.under_3px >= 11
    assert "under 3 pixels" in fit.warnings[0]
