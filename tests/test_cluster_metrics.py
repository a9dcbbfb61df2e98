"""The metric catalogue on hand-computed cases (shape IoU, YOLOv5 ratio metrics, tiled grid)."""

from __future__ import annotations

import numpy as np
import pytest

from anchorfit.cluster.metrics import GridSpec, evaluate, grid_recall
from anchorfit.cluster.yolov5 import yolov5_fitness

BOXES = np.array([[10.0, 10.0], [20.0, 40.0], [100.0, 50.0]])
ANCHORS = [np.array([[10.0, 10.0], [40.0, 40.0]])]


def test_shape_and_yolov5_metrics_hand_computed():
    m = evaluate(ANCHORS, None, BOXES, anchor_t=4.0, grid=None)
    # best IoUs: 1; 800/1600 = 0.5; 1600/5000 = 0.32
    assert m.mean_best_iou == pytest.approx((1 + 0.5 + 0.32) / 3)
    assert m.iou_recall == pytest.approx({"0.35": 2 / 3, "0.4": 2 / 3, "0.5": 2 / 3, "0.7": 1 / 3})
    # ratio metric x: box1 (1, 0.25), box2 (0.25, 0.5), box3 (0.1, 0.4); thr 1/4 is strict
    assert m.bpr == 1.0
    assert m.aat == pytest.approx(1.0)  # 0.25 is not above 0.25
    assert m.fitness == pytest.approx((1 + 0.5 + 0.4) / 3)
    assert m.metric_all == pytest.approx(2.5 / 6)
    assert m.past_thr == pytest.approx((1 + 0.5 + 0.4) / 3)
    assert [a["best_iou_share"] for a in m.per_anchor] == pytest.approx([1 / 3, 2 / 3])
    assert [a["ratio_matched_share"] for a in m.per_anchor] == pytest.approx([1 / 3, 2 / 3])
    assert m.coverage["low"] == pytest.approx(2.5) and m.coverage["high"] == pytest.approx(160)
    assert m.ce_loss == pytest.approx(-(np.log(1) + np.log(0.5) + np.log(0.32)) / 3)
    assert yolov5_fitness(BOXES, ANCHORS[0]) == pytest.approx(m.fitness)


def test_tighter_anchor_t_and_dead_anchor():
    m = evaluate([np.array([[10.0, 10.0], [40.0, 40.0], [1000.0, 1000.0]])], None, BOXES,
                 anchor_t=2.0, grid=None)
    # thr 0.5: box1 → 1, box2 → none (0.5 not above), box3 → none
    assert m.bpr == pytest.approx(1 / 3) and m.fitness == pytest.approx(1 / 3)
    assert [d["index"] for d in m.dead_anchors] == [1, 2]


def test_weights_equal_repetition():
    reps = np.repeat(BOXES, [3, 1, 2], axis=0)
    a = evaluate(ANCHORS, None, reps, grid=None)
    b = evaluate(ANCHORS, None, BOXES, weights=np.array([3.0, 1.0, 2.0]), grid=None)
    assert a.mean_best_iou == pytest.approx(b.mean_best_iou) and a.aat == pytest.approx(b.aat)


def _actual(xy, wh, anchors, stride, offset="center", image=(64, 64), border=None):
    spec = GridSpec(offset=offset, positions="actual", image_size=image, allowed_border=border)
    return grid_recall([np.array(anchors, float)], [stride], np.array(wh, float), (0.3, 0.5),
                       spec=spec, xy=np.array(xy, float))


def test_grid_recall_hand_computed_positions():
    # centre on an anchor centre (8, 8): IoU 1, neighbours 16 px away do not overlap
    g = _actual([[8, 8]], [[16, 16]], [[16, 16]], 16)
    assert g["emo"]["all"] == pytest.approx(1.0)
    assert g["matched_per_box"]["0.3"]["all"] == 1
    # halfway between two anchors: IoU 128 / 384 = 1/3 with each → 2 matches at 0.3, 0 at 0.5
    g = _actual([[16, 8]], [[16, 16]], [[16, 16]], 16)
    assert g["emo"]["all"] == pytest.approx(1 / 3)
    assert g["matched_per_box"]["0.3"]["all"] == 2 and g["recall"]["0.5"]["all"] == 0
    # top-left convention puts an anchor at (16, 16); the centre convention is 8 px off in x, y
    assert _actual([[16, 16]], [[16, 16]], [[16, 16]], 16, "top-left")["emo"]["all"] == 1
    assert _actual([[16, 16]], [[16, 16]], [[16, 16]], 16)["emo"]["all"] == pytest.approx(1 / 7)


def test_grid_recall_image_border():
    # 32x32 image, stride 16, anchor 32: cell centres 8 and 24; box 32x32 at the centre
    g = _actual([[16, 16]], [[32, 32]], [[32, 32]], 16, image=(32, 32))
    assert g["emo"]["all"] == pytest.approx(576 / 1472)
    # every anchor crosses the border by 8 px: with allowed_border 0 none may be used
    g = _actual([[16, 16]], [[32, 32]], [[32, 32]], 16, image=(32, 32), border=0)
    assert g["emo"]["all"] == 0 and g["recall"]["0.3"]["all"] == 0


def test_emo_random_positions_matches_integral():
    # boxes = anchor = 32 px, stride 8: offsets to the nearest centre uniform in [0, 4]^2
    d = (np.arange(400) + 0.5) / 100
    o = 32 - d
    inter = o[:, None] * o[None, :]
    expected = (inter / (2048 - inter)).mean()
    g = grid_recall([np.array([[32.0, 32.0]])], [8.0], np.full((20000, 2), 32.0), (0.5,),
                    spec=GridSpec(seed=1))
    assert g["emo"]["all"] == pytest.approx(expected, abs=2e-3)
    assert g["emo"]["medium"] == g["emo"]["all"] and np.isnan(g["emo"]["small"])


def test_grid_recall_in_evaluate_by_bucket_and_seeded():
    rng = np.random.default_rng(0)
    wh = np.exp(rng.uniform(np.log(8), np.log(300), size=(3000, 2)))
    anchors = [np.array([[16.0, 16.0], [32.0, 32.0]]), np.array([[64.0, 64.0], [128.0, 128.0]])]
    a = evaluate(anchors, [8, 32], wh)
    b = evaluate(anchors, [8, 32], wh)
    assert a.grid == b.grid
    rec = a.grid["recall"]["0.5"]
    assert set(rec) == {"all", "small", "medium", "large"}
    # tiled recall can never beat shape recall (the best co-centred placement)
    assert rec["all"] <= a.iou_recall["0.5"] + 1e-12


def test_chunked_sums_equal_the_per_box_definitions():
    """evaluate() keeps no per-box array beyond a chunk: its weighted sums over chunks of 7 boxes
    equal the metrics computed from their per-box definitions over the whole set at once."""
    rng = np.random.default_rng(3)
    boxes = np.exp(rng.normal(3.5, 1.2, (1000, 2)))
    weights = rng.random(1000) * 2
    levels = [np.exp(rng.normal(3.5, 1.0, (3, 2))) for _ in range(2)]
    m = evaluate(levels, None, boxes, anchor_t=4.0, weights=weights, grid=None, chunk=7)
    anchors = np.concatenate(levels)
    inter = np.minimum(boxes[:, None, 0], anchors[:, 0]) * np.minimum(boxes[:, None, 1],
                                                                        anchors[:, 1])
    iou = inter / (boxes.prod(1)[:, None] + anchors.prod(1) - inter)
    r = boxes[:, None, :] / anchors
    x = np.minimum(r, 1 / r).min(2)
    best_x = x.max(1)
    wmean = lambda v, sel=slice(None): float(v[sel] @ weights[sel] / weights[sel].sum())  # noqa
    assert m.mean_best_iou == pytest.approx(wmean(iou.max(1)), rel=1e-12)
    assert m.bpr == pytest.approx(wmean((best_x > 0.25).astype(float)), rel=1e-12)
    assert m.fitness == pytest.approx(wmean(best_x * (best_x > 0.25)), rel=1e-12)
    assert m.aat == pytest.approx(wmean((x > 0.25).sum(1).astype(float)), rel=1e-12)
    assert m.per_level[1]["ratio_matched_share"] == pytest.approx(
        wmean((x[:, 3:] > 0.25).any(1).astype(float)), rel=1e-12)
    small = boxes.prod(1) < 32 ** 2
    assert m.by_bucket["mean_best_iou"]["small"] == pytest.approx(
        wmean(iou.max(1), small), rel=1e-12)
    assert m.buckets["small"] == pytest.approx(float(weights[small].sum()), rel=1e-12)
