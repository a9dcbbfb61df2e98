"""The planner on the detectors users bring: RetinaNet's 9 octave anchors, SSD's ratios and extra
square, FCOS ranges against ERF and head RF, levels named as the table names them, per-axis JSON,
and a clear refusal for networks without detection levels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anchorfit.detector import Anchor, Level
from anchorfit.errors import AnchorfitError
from anchorfit.load import load_detector
from anchorfit.design.plan import (ErfSize, default_rule, designed_ratios, object_side, plan,
                            ssd_sizes)

from test_plan import s3fd_detector


def _sizes(anchors):
    return sorted((round(a.w, 2), round(a.h, 2)) for a in anchors)


def test_octave_rule_gives_retinanets_nine_anchors_per_level():
    det = load_detector("retinanet_r50_fpn")
    p = plan(det, rule="octave", ratio=4)
    assert [len(lv.anchors) for lv in p.levels] == [9] * 5
    # mmdet RetinaNet: octave_base_scale 4, 3 scales per octave, ratios h/w 0.5, 1, 2: the
    # plan at ratio 4 is exactly the detector's own anchors
    for got, own in zip(p.levels, det.levels):
        assert _sizes(got.anchors) == _sizes(own.anchors), got.name
    p3 = p.levels[0]
    side = [32 * 2 ** (i / 3) for i in range(3)]
    want = sorted((round(s / math.sqrt(r), 2), round(s * math.sqrt(r), 2))
                  for r in (0.5, 1, 2) for s in side)
    assert _sizes(p3.anchors) == want and p3.stride == 8


def test_octave_rule_scales_per_octave_and_aspect_ratios_override():
    det = load_detector("retinanet_r50_fpn")
    p = plan(det, rule="octave", scales_per_octave=2, aspect_ratios=[1.0])
    assert [len(lv.anchors) for lv in p.levels] == [2] * 5
    assert _sizes(p.levels[1].anchors) == [(64, 64), (90.51, 90.51)]


def test_ssd_caffe_rule_reproduces_ssd300_priors_with_ratios_and_extra_square():
    det = load_detector("ssd300_vgg16")
    p = plan(det, rule="ssd-caffe")
    assert [len(lv.anchors) for lv in p.levels] == [4, 6, 6, 6, 4, 4]
    for got, own in zip(p.levels, det.levels):
        assert _sizes(got.anchors) == _sizes(own.anchors), got.name
    fc7 = p.levels[1]
    assert [round(a.w, 2) for a in fc7.anchors[:2]] == [60, 81.61]  # min, sqrt(60 * 111)


def test_ssd_sizes_follow_stride_order_on_detectors_listed_coarse_first():
    det = load_detector("yolov3")  # heads P5, P4, P3
    p = plan(det, rule="ssd", aspect_ratios=[1])
    mins, _ = ssd_sizes(max(det.input_size), 3, variant="paper")
    by_stride = sorted(p.levels, key=lambda lv: lv.stride)
    assert [round(lv.anchors[0].w, 3) for lv in by_stride] == [round(m, 3) for m in mins]
    assert p.levels[0].stride == 32 and p.levels[0].anchors[0].w == max(mins)


def test_designed_ratios_are_reciprocal_sets_not_clustered_shapes():
    assert designed_ratios(Level("a", anchors=[Anchor(10, 13), Anchor(16, 30)])) is None
    ssd = Level("b", anchors=[Anchor(60, 60), Anchor(81.6, 81.6), Anchor(84.85, 42.43),
                              Anchor(42.43, 84.85), Anchor(103.92, 34.64), Anchor(34.64, 103.92)])
    assert designed_ratios(ssd) == (1.0, 0.5, 2.0, 1 / 3, 3.0)
    assert designed_ratios(Level("c")) is None


def test_fcos_detector_defaults_to_its_own_ranges_and_routes_boxes():
    det = load_detector("fcos_r50_fpn")
    assert default_rule(det) == "fcos" and default_rule(s3fd_detector()) == "s3fd"
    wh = np.array([[20, 30], [100, 90], [200, 100], [600, 300], [1500, 900], [130, 10]], float)
    p = plan(det, wh=wh)
    assert p.rule == "fcos"
    assert [lv.anchor_free_range for lv in p.levels] == [
        (0.0, 64.0), (64.0, 128.0), (128.0, 256.0), (256.0, 512.0), (512.0, math.inf)]
    # max(w, h) / 2: 15, 50 -> P3; 65 (130x10) and 100 -> P4; 300 -> P5; 750 -> P7
    assert [lv.boxes for lv in p.levels] == [2, 2, 0, 1, 1]
    assert p.dataset["routed"] == 6
    assert {(w.code, w.level) for w in p.warnings} >= {("AF207", "P5")}


def test_anchor_free_ranges_are_checked_against_erf_and_head_rf():
    det = s3fd_detector()  # conv3_3: stride 4, head RF 48
    p = plan(det, rule="fcos", erf={"conv3_3": ErfSize(20.0)})
    first = p.levels[0]
    assert first.anchor_free_range == (0.0, 32.0)  # (0, 8s]
    assert first.anchor_side == pytest.approx(64 / math.sqrt(2))
    found = {(w.code, w.level): w for w in p.warnings}
    assert ("AF201", "conv3_3") in found  # nominal object 45 px > ERF 20
    assert "range (0, 32]" in found[("AF201", "conv3_3")].message
    assert ("AF203", "conv3_3") in found  # objects up to 64 px > head RF 48
    assert found[("AF203", "conv3_3")].measured == {"side": 64.0, "rf": 48}
    # the open-ended last level never trips the head-RF check on its infinite end
    assert p.levels[-1].name == "conv7_2" and math.isinf(p.levels[-1].anchor_free_range[1])
    assert ("AF203", "conv7_2") not in found
    assert ("AF203", "fc7") in found  # (128, 256]: objects up to 512 px, head RF 340
    ok = plan(det, rule="fcos", erf={"conv3_3": ErfSize(60.0)})
    assert ("AF201", "conv3_3") not in {(w.code, w.level) for w in ok.warnings}


def test_object_side_of_ranges():
    assert object_side((64, 128)) == pytest.approx(math.sqrt(128 * 256))
    assert object_side((-1, 64)) == pytest.approx(128 / math.sqrt(2))
    assert object_side((512, math.inf)) == pytest.approx(1024 * math.sqrt(2))


def test_cluster_messages_name_the_level_as_the_table_does():
    det = s3fd_detector()
    rng = np.random.default_rng(0)
    wh = rng.uniform(10, 30, size=(500, 2))  # nothing near conv7_2's (stride 128) range
    p = plan(det, wh=wh, k=6)
    assert any(n.startswith("level conv7_2 (stride 128): no box falls in its clustering range")
               for n in p.notes), p.notes
    assert not any(n.startswith("level 5 ") for n in p.notes)


def test_plan_json_is_per_axis():
    p = plan(s3fd_detector(), erf={"conv3_3": ErfSize(14.0, 12.0, 16.0, (13.0, 15.0),
                                                       ((11.0, 15.0), (13.0, 17.0)))})
    lv = p.to_dict()["levels"][0]
    assert lv["stride"] == [4, 4] and lv["rf"] == [40, 40] and lv["head_rf"] == [48, 48]
    assert lv["erf"] == {"value": [13.0, 15.0], "ci95": [[11.0, 15.0], [13.0, 17.0]],
                         "mean": 14.0, "mean_ci95": [12.0, 16.0]}
    assert lv["anchors"] == [[16, 16]]  # anchors stay [w, h], as every anchor config lists them


def test_plan_and_audit_refuse_a_network_without_detection_levels(run_cli, shipped_data):
    cfg = shipped_data / "configs/darknet/pjreddie/darknet53.cfg"
    for command in (["plan", str(cfg), "--no-erf"], ["audit", str(cfg)]):
        code, out, err = run_cli(*command)
        assert code == 2 and out == "", err
        assert "darknet53 has no detection levels" in err and "Traceback" not in err


def test_bad_plan_options_exit_2(run_cli):
    for args, message in [(["--aspect-ratios", "1,0"], "--aspect-ratios '1,0'"),
                          (["--aspect-ratios", "nan"], "--aspect-ratios 'nan'"),
                          (["--scales-per-octave", "0"], "--scales-per-octave 0"),
                          (["--ratio", "inf"], "argument --ratio: expected a finite number")]:
        code, out, err = run_cli("plan", "s3fd", "--no-erf", *args)
        assert code == 2 and out == "" and message in err, (args, err)
    with pytest.raises(AnchorfitError, match="aspect ratios must be positive"):
        plan(s3fd_detector(), aspect_ratios=[-1.0])


def test_a_dfl_reach_is_no_routing_range(shipped_data):
    """YOLOv8's (0, 2 (reg_max - 1) stride] bounds how far a head reaches, not which objects it
    gets: no nominal object, so no anchor < ERF finding however small the ERF, and no
    anchor/stride ratio; FCOS's regress ranges do route objects and are checked."""
    v8 = load_detector(shipped_data / "configs/ultralytics/models/v8/yolov8.yaml")  # a Path
    erf = {lv.name: ErfSize(20.0) for lv in v8.levels}
    p = plan(v8, erf=erf)
    assert p.rule == "fcos" and all(lv.anchor_side is None for lv in p.levels)
    assert all(lv.ratios()["anchor_stride"] is None for lv in p.levels)
    assert "AF201" not in {w.code for w in p.warnings}
    fcos = load_detector("fcos_r50_fpn")
    q = plan(fcos, erf={lv.name: ErfSize(20.0) for lv in fcos.levels})
    assert {w.level for w in q.warnings if w.code == "AF201"} == {lv.name for lv in fcos.levels}
