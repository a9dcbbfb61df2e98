"""Level-aware clustering keeps every level's anchors in its range (yolov5 #117)."""

from __future__ import annotations

import numpy as np

from anchorfit.cluster import cluster_anchors
from anchorfit.cluster.levels import assign_levels, split_k


def _small_objects(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(6), np.log(40), size=(n, 2))).astype(np.float32)


def test_split_k():
    assert split_k(9, 3) == [3, 3, 3] and split_k(10, 3) == [3, 3, 4] and split_k(4, 4) == [1] * 4


def test_assign_levels_boundaries():
    # range [2, 8]·S: centres 32, 64, 128 for strides 8, 16, 32; boundaries 45.25 and 90.5
    pts = np.array([[10.0, 10.0], [45.0, 45.0], [46.0, 46.0], [90.0, 90.0], [91.0, 91.0],
                    [900.0, 900.0]])
    assert assign_levels(pts, [8, 16, 32]).tolist() == [0, 0, 1, 1, 2, 2]


def test_area_split_pulls_coarse_anchors_below_stride():
    r = cluster_anchors(_small_objects(), 9, strides=[8, 16, 32], assign="area", grid=None)
    assert np.sqrt(r.anchors[2].prod(1)).min() < 32
    assert any("smaller than the stride" in w for w in r.warnings)


def test_range_assignment_respects_each_level():
    r = cluster_anchors(_small_objects(), 9, strides=[8, 16, 32], assign="range", grid=None)
    for stride, anchors in zip([8, 16, 32], r.anchors):
        scale = np.sqrt(anchors.prod(1))
        assert (scale >= 2 * stride - 1e-6).all() and (scale <= 8 * stride + 1e-6).all()
    # boxes below 16 px are clustered at the boundary: the finest level keeps 3 distinct anchors
    assert len(np.unique(np.round(r.anchors[0], 2), axis=0)) == 3
    # no box reaches the stride-32 range centre (128 px): one square anchor and a warning
    assert r.anchors[2].shape == (1, 2) and r.anchors[2][0, 0] == 128
    assert any("level 2 (stride 32): no box falls in its clustering range" in w for w in r.warnings)


def test_level_max_caps_anchors():
    wh = np.exp(np.random.default_rng(1).uniform(np.log(20), np.log(300), (3000, 2)))
    r = cluster_anchors(wh, 6, strides=[16, 32], level_max=[50, None], grid=None)
    assert np.sqrt(r.anchors[0].prod(1)).max() <= 50 + 1e-6


def test_methods_agree_on_shape_and_seed_is_reported():
    wh = _small_objects(2000, 2) * 4
    for method in ("iou", "yolov5", "sklearn"):
        r = cluster_anchors(wh, 6, method=method, seed=3, grid=None)
        assert sum(len(a) for a in r.anchors) == 6 and r.to_dict()["seed"] == 3
        assert 0.5 < r.metrics.mean_best_iou < 1


def test_a_cap_below_the_levels_range_holds_anchors_at_the_cap():
    """An ERF of 249 px on a stride-128 level (range [256, 1024]) must not give the empty
    interval [256, 249]: the anchors sit at the cap and the warning says why."""
    from anchorfit.cluster.levels import level_kmeans

    rng = np.random.default_rng(1)
    pts = np.exp(rng.uniform(np.log(300), np.log(900), size=(200, 2)))
    w = np.ones(len(pts))

    def fit(p, weight, k):
        return np.array([np.median(p, 0)] * k), []

    levels, warnings, _ = level_kmeans(pts, w, [128.0], [2], fit, level_max=[249.0],
                                       level_names=["P7"])
    side = np.sqrt(levels[0].prod(1))
    assert np.allclose(side, 249.0)
    assert any(m.startswith("level P7 (stride 128): its cap 249 px") for m in warnings)
    assert not any("[256, 249]" in m for m in warnings)
