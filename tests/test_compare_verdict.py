"""compare's verdict: one set for the detector's assigner, by the metric that assigner trains on,
after auditing every candidate; best values named; the metric glossary in --help."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anchorfit.cluster.metrics import GridSpec, evaluate
from anchorfit.design.compare import (METRIC_HELP, TIE, AnchorSet, assigner_metric, compare,
                                      recommend)
from anchorfit.detector import Assigner

from test_audit import GOOD, detector
from test_compare import boxes


def _set(name, anchors, wh, strides=(8, 16, 32), grid=GridSpec(seed=0)):
    arrays = [np.asarray(a, dtype=float).reshape(-1, 2) for a in anchors]
    return AnchorSet(name, arrays, evaluate(arrays, list(strides), wh, 4.0, (0.35, 0.5),
                                            grid=grid), 0.0)


def test_assigner_decides_the_metric():
    iou = detector(GOOD)
    yolo = detector(GOOD, assigner=Assigner("yolo-ratio", None, None, anchor_t=4.0))
    dark = detector(GOOD, assigner=Assigner("darknet", None, None))
    assert assigner_metric(iou, 0.5, 4.0)[1:] == ("grid_recall@0.5 all", "grid_recall@0.5",
                                                  "emo all")
    assert assigner_metric(yolo, 0.5, 4.0)[1:] == ("bpr@4", "bpr", "yolov5_fitness")
    assert assigner_metric(dark, 0.5, 4.0)[1:] == ("mean_best_iou", "mean_best_iou", None)


def test_a_tie_goes_to_the_set_whose_audit_is_cleaner():
    det = detector(GOOD)
    wh = boxes(800)
    clean = _set("clean", GOOD, wh)
    # the same anchors plus a 400 px one on p5: larger than its head RF (351, AF101), and no box
    # is that large, so every score is the same
    noisy = _set("noisy", [GOOD[0], GOOD[1], GOOD[2] + [(400, 400)]], wh)
    assert noisy.metrics.grid["recall"]["0.5"]["all"] == pytest.approx(
        clean.metrics.grid["recall"]["0.5"]["all"], abs=TIE)
    v = recommend(det, [noisy, clean], wh, 0.5, 4.0)
    # AF101 (larger than the head RF) and AF110 (no box passes the ratio test for it)
    assert set(v.audits["noisy"]["codes"]) - set(v.audits["clean"]["codes"]) == {"AF101",
                                                                                  "AF110"}
    assert v.audits["noisy"]["warnings"] > v.audits["clean"]["warnings"]
    assert v.recommended == "clean"
    assert v.reason.startswith("clean: grid_recall@0.5 all")


def test_an_audit_error_disqualifies_a_better_scoring_set():
    det = detector(GOOD)
    wh = boxes(800)
    good = _set("good", GOOD, wh)
    reversed_levels = _set("reversed", [GOOD[2], GOOD[1], GOOD[0]], wh)  # AF105: order
    shrunk = _set("shrunk", [[(w * 0.5, h * 0.5) for w, h in lv] for lv in GOOD], wh)
    v = recommend(det, [reversed_levels, shrunk, good], wh, 0.5, 4.0)
    assert v.audits["reversed"]["errors"] >= 1 and "AF105" in v.audits["reversed"]["codes"]
    assert v.recommended != "reversed"
    assert v.recommended == max(("good", "shrunk"), key=lambda n: v.scores[n])
    if v.scores["reversed"] > v.scores[v.recommended]:
        assert "reversed scores higher but has audit errors" in v.reason


def test_bucket_values_are_the_assigners_metric_by_size():
    det = detector(GOOD, assigner=Assigner("yolo-ratio", None, None, anchor_t=4.0))
    wh = boxes(800)
    s = _set("good", GOOD, wh)
    v = recommend(det, [s], wh, 0.5, 4.0)
    area = wh[:, 0] * wh[:, 1]
    anchors = np.concatenate([np.asarray(a, float) for a in GOOD])
    r = wh[:, None, :] / anchors[None]
    best = np.minimum(r, 1 / r).min(2).max(1)
    small = area < 32 ** 2
    assert v.by_bucket["good"]["small"] == pytest.approx(float(np.mean(best[small] > 0.25)))
    assert v.by_bucket["good"]["all"] == pytest.approx(v.scores["good"])


def test_compare_names_the_best_value_of_every_row():
    det = detector([[(30, 30), (40, 40)], [(70, 70), (90, 90)], [(140, 140), (180, 180)]])
    cmp = compare(det, boxes(), seed=0, restarts=2)
    frame = cmp.to_frame().set_index("metric")
    names = [s.name for s in cmp.sets]
    for row in ("mean_best_iou", "grid_recall@0.5 all"):
        values = frame.loc[row, names].astype(float)
        assert frame.loc[row, "best"] == values.idxmax()
    dead = frame.loc["dead_anchors", names].astype(float)
    assert frame.loc["dead_anchors", "best"] in ("", dead.idxmin())
    data = cmp.to_dict()
    assert data["best"]["mean_best_iou"] == frame.loc["mean_best_iou", "best"]
    assert data["verdict"]["recommended"] in names
    assert data["strides"] == [[8, 8], [16, 16], [32, 32]] and data["levels"] == ["p3", "p4", "p5"]


def test_compare_cli_recommends_and_exports_the_recommendation(run_cli, shipped_data, tmp_path):
    cfg = tmp_path / "yolov3-tiny.cfg"
    cfg.write_text((shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg").read_text())
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    out_cfg = tmp_path / "fitted.cfg"
    code, out, err = run_cli("compare", str(cfg), "--boxes", str(ann), "--restarts", "2",
                             "--export", "recommended", "--export-to", str(out_cfg), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    verdict = data["verdict"]
    assert verdict["metric"] == "mean_best_iou"  # Darknet's best-anchor assigner
    assert "recommended: " + verdict["recommended"] in err
    chosen = next(s for s in data["sets"] if s["name"] == verdict["recommended"])
    assert chosen["metrics"]["mean_best_iou"] == pytest.approx(verdict["scores"][chosen["name"]])
    assert out_cfg.is_file() and f"wrote {verdict['recommended']} anchors" in err


def test_compare_help_explains_every_metric(run_cli):
    code, out, _ = run_cli("compare", "--help")
    assert code == 0
    text = " ".join(out.split())
    for name in ("aat@t", "past_thr", "metric_all", "emo bucket", "focal_objective",
                 "ce_objective", "bpr@t", "grid_recall@T bucket"):
        assert f"{name}:" in text, name
    assert " ".join(METRIC_HELP["past_thr"].split()) in text


def test_a_yolov5_yaml_waiting_for_anchors_is_not_anchor_free(run_cli, shipped_data):
    """`anchors: 3` (AutoAnchor fills them in) leaves the levels without anchors, but the head
    assigns by the ratio test: the verdict ranks the sets by BPR, not "anchor-free"."""
    cfg = shipped_data / "configs/yolov5/models/hub/yolov5-p6.yaml"
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    code, out, err = run_cli("compare", str(cfg), "--boxes", str(ann), "--restarts", "1",
                             "-f", "json")
    assert code == 0, err
    verdict = json.loads(out)["verdict"]
    assert verdict["metric"] == "bpr@4" and verdict["recommended"] is not None
    assert "anchor-free" not in verdict["assigner"]
