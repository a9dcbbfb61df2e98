"""IoU k-means: brute-force optimum on a toy set, determinism, compression, k > distinct."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from anchorfit.cluster import compress, iou_kmeans
from anchorfit.cluster.geometry import best_iou, shape_iou
from anchorfit.data.synthetic import synthetic_wh

TOY = np.array([[10, 12], [12, 10], [11, 30], [14, 34], [40, 20], [46, 26], [90, 100],
                [120, 90], [100, 140]], dtype=np.float64)


def test_shape_iou_hand_computed():
    # 10x20 vs 20x10: overlap 10x10 = 100, union 200 + 200 - 100 = 300
    assert shape_iou(np.array([[10.0, 20.0]]), np.array([[20.0, 10.0]]))[0, 0] == \
        pytest.approx(1 / 3)


def _brute_force(points, k):
    """Best mean-best-IoU over every partition of the points, centres = member means (the
    candidates k-means' update step can produce)."""
    best, best_c = -1.0, None
    for labels in itertools.product(range(k), repeat=len(points)):
        labels = np.array(labels)
        if len(set(labels)) < k or labels[0] != 0:
            continue
        centres = np.stack([points[labels == j].mean(0) for j in range(k)])
        score = shape_iou(points, centres).max(1).mean()
        if score > best + 1e-12:
            best, best_c = score, centres
    return best, best_c


@pytest.mark.parametrize("k", [2, 3])
def test_reproduces_brute_force_optimum(k):
    best, centres = _brute_force(TOY, k)
    fit = iou_kmeans(TOY, k, restarts=30, seed=0)
    assert fit.mean_iou == pytest.approx(best, abs=1e-9)
    ref = centres[np.lexsort((centres[:, 0], centres.prod(1)))]
    np.testing.assert_allclose(fit.anchors, ref, rtol=1e-9)


def test_deterministic_per_seed_and_spread_reported():
    wh = synthetic_wh(5000, seed=4).astype(np.float64)
    a = iou_kmeans(wh, 9, seed=7)
    b = iou_kmeans(wh, 9, seed=7)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    assert len(a.restart_mean_iou) == 10 and a.mean_iou == a.restart_mean_iou.max()
    assert len(np.unique(a.anchors, axis=0)) == 9


def test_fewer_distinct_sizes_than_k_says_why():
    fit = iou_kmeans(np.array([[10.0, 10.0]] * 5 + [[20.0, 40.0]] * 3), 4)
    assert fit.anchors.shape == (2, 2) and "only 2 distinct sizes" in fit.warnings[0]


def test_exact_compression_is_lossless():
    wh = np.round(synthetic_wh(20000, seed=1))
    c = compress(wh)
    assert c.mode == "exact" and c.weight.sum() == 20000
    full = iou_kmeans(c.wh, 6, weight=c.weight, seed=0)
    # the same objective: weighted mean on unique sizes equals the plain mean on all boxes
    assert best_iou(wh, full.anchors)[0].mean() == pytest.approx(full.mean_iou, abs=1e-6)


def test_histogram_compression_error_is_tiny():
    wh = synthetic_wh(200000, seed=2)
    fine = compress(wh, mode="histogram", bin_width=0.01)
    c = compress(wh, exact_limit=1000)  # too many distinct sizes: adaptive histogram
    assert c.mode == "histogram" and c.n_points <= 16384 < fine.n_points
    assert c.bin_width in (0.02, 0.04) and c.weight.sum() == fine.weight.sum() == 200000
    fit = iou_kmeans(c.wh, 9, weight=c.weight, seed=0)
    exact = best_iou(wh, fit.anchors)[0].mean()
    assert abs(exact - fit.mean_iou) < 5e-4


def test_median_update_differs_from_mean():
    wh = synthetic_wh(3000, seed=5).astype(np.float64)
    mean = iou_kmeans(wh, 5, update="mean", seed=0)
    med = iou_kmeans(wh, 5, update="median", seed=0)
    assert not np.allclose(mean.anchors, med.anchors)
    # a median anchor is made of member coordinates: each w and h occurs in the data
    assert np.isin(med.anchors[:, 0], wh[:, 0]).all() and np.isin(med.anchors[:, 1], wh[:, 1]).all()
