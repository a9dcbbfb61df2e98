"""The ERF canvas: plan, audit --erf and compare --erf measure the ERF at any detector's native
input, on a larger canvas when a level's RF does not fit there (one stderr line says so), or at
--erf-input."""

from __future__ import annotations

import json

import jsonschema
import pytest

from anchorfit.erf.canvas import canvas_for, choose_canvas
from anchorfit.erf.cells import required_input
from anchorfit.errors import AnchorfitError
from anchorfit.formats import load_detector
from anchorfit.schemas import load_schema


def canvas_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "canvas" in line]


def test_canvas_is_native_when_every_level_fits_else_what_erf_picks():
    s3fd = load_detector("s3fd")
    layers = [lv.name for lv in s3fd.levels]
    assert choose_canvas(s3fd.network, layers).size == (640, 640)  # conv7_2's RF 468 fits
    ssd = load_detector("ssd300_vgg16")
    layers = [lv.name for lv in ssd.levels]
    canvas = choose_canvas(ssd.network, layers)
    # conv11_2: RF 772, stride 64 -> 772 + 4 * 64 = 1028, rounded up to 1088 (17 x 64)
    assert canvas.size == (1088, 1088) and canvas.native == (300, 300) and canvas.moved
    assert "conv11_2" in canvas.reason and "772x772" in canvas.reason
    given = choose_canvas(ssd.network, layers, (1200, 1100))
    assert given.size == (1200, 1100) and given.requested and given.reason == "--erf-input"


def test_canvas_keeps_top_down_merges_whole():
    # RetinaNet's P3 and P4 read P5 through the FPN's top-down path: a canvas sized for P3/P4's
    # own strides (16) is 528, where lateral4 (33 x 33) and the upsampled P5 (34 x 34) no longer
    # add; the canvas is rounded to the stride of every ancestor (32) instead
    det = load_detector("retinanet_r50_fpn")
    analysis = det.network.analyze()
    own = required_input([analysis[det.network.node(n)] for n in ("P3", "P4")])
    assert own == (528, 528)
    with pytest.raises(AnchorfitError, match="different sizes"):
        load_detector("retinanet_r50_fpn", own)
    size = canvas_for(det.network, ["P3", "P4"])
    assert size == (544, 544)
    assert load_detector("retinanet_r50_fpn", size).input_size == size


def test_plan_ssd300_measures_on_the_canvas_and_reports_native_rf(run_cli):
    code, out, err = run_cli("plan", "ssd300_vgg16", "--samples", "1", "--format", "json")
    assert code == 0, err
    lines = canvas_lines(err)
    assert len(lines) == 1 and "canvas 1088x1088" in lines[0] and "300x300" in lines[0], err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("plan"))
    assert data["input"] == [300, 300]
    rf = {lv["name"]: lv["rf"] for lv in data["levels"]}
    # the RF engine's numbers at 300 x 300, [y, x]
    assert rf["fc7"] == [420, 420] and rf["conv11_2"] == [772, 772]
    for lv in data["levels"]:
        assert lv["erf"]["input"] == [1088, 1088]
        assert all(0 < e < r for e, r in zip(lv["erf"]["value"], lv["rf"])), lv["name"]


def test_plan_yolov3_with_boxes(run_cli, shipped_data):
    labels = shipped_data / "annotations" / "coco128_yolo"
    code, out, err = run_cli("plan", "yolov3", "--boxes", str(labels / "labels" / "train2017"),
                             "--image-sizes", str(labels / "image_sizes.csv"), "--samples", "1",
                             "--format", "json")
    assert code == 0, err
    lines = canvas_lines(err)
    assert len(lines) == 1 and "canvas 1120x1120" in lines[0] and "416x416" in lines[0], err
    data = json.loads(out)
    assert data["input"] == [416, 416]
    assert all(lv["erf"]["input"] == [1120, 1120] and lv["erf"]["mean"] > 0
               for lv in data["levels"])


def test_plan_yolov3_tiny_at_its_own_input_and_with_erf_input(run_cli):
    code, out, err = run_cli("plan", "yolov3-tiny", "--samples", "1", "--format", "json")
    assert code == 0, err
    lines = canvas_lines(err)
    assert len(lines) == 1 and "canvas 416x416 (the detector's input)" in lines[0], err
    native = {lv["name"]: lv["erf"] for lv in json.loads(out)["levels"]}
    assert all(e["input"] == [416, 416] for e in native.values())
    code, out, err = run_cli("plan", "yolov3-tiny", "--samples", "1", "--erf-input", "480x512",
                             "--format", "json")
    assert code == 0, err
    lines = canvas_lines(err)
    assert len(lines) == 1 and "canvas 480x512 (--erf-input" in lines[0], err
    moved = {lv["name"]: lv["erf"] for lv in json.loads(out)["levels"]}
    for name, erf in moved.items():
        assert erf["input"] == [480, 512]
        # the same cell's map on a larger canvas: a network without global context gives the
        # same ERF up to the cell's place on the Darknet grid (P4's period-2 phase)
        assert erf["mean"] == pytest.approx(native[name]["mean"], rel=0.15), name


@pytest.mark.parametrize("args, message", [
    (["plan", "ssd300_vgg16", "--erf-input", "300x300"],
     "--erf-input 300x300 is smaller than layer"),
    (["plan", "yolov3-tiny", "--erf-input", "0x4"], "--erf-input '0x4' is not a size"),
    (["plan", "yolov3-tiny", "--no-erf", "--erf-input", "480"], "--erf-input needs the ERF"),
    (["audit", "yolov3-tiny", "--erf", "P5=90", "--erf-input", "480"],
     "--erf-input is for a measured ERF"),
])
def test_bad_erf_input_exits_2(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2 and out == "" and message in err and "Traceback" not in err, err
    if "smaller than layer" in message:
        assert "use --erf-input 1088x1088 or larger" in err


def test_audit_measures_the_erf_with_erf_alone(run_cli):
    code, out, err = run_cli("audit", "yolov3-tiny", "--erf", "--erf-input", "448",
                             "--format", "json")
    assert code == 0, err
    assert len(canvas_lines(err)) == 1 and "canvas 448x448" in err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("audit"))
    assert set(data["erf"]) == {"P5", "P4"} and "AF102" in data["checks_run"]
    # `audit --erf MODEL`: the bare flag comes before the model
    code, out, err = run_cli("audit", "--erf", "yolov3-tiny", "--only", "AF102",
                             "--format", "json")
    assert code == 0, err
    assert "canvas 416x416 (the detector's input)" in err
    assert json.loads(out)["checks_run"] == ["AF102"]


def test_compare_caps_level_aware_kmeans_at_the_measured_erf(run_cli, shipped_data):
    labels = shipped_data / "annotations" / "coco128_yolo"
    code, out, err = run_cli("compare", "yolov3-tiny", "--boxes",
                             str(labels / "labels" / "train2017"), "--image-sizes",
                             str(labels / "image_sizes.csv"), "--restarts", "2", "--erf",
                             "--format", "json")
    assert code == 0, err
    assert len(canvas_lines(err)) == 1 and "canvas 416x416" in err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("compare"))
    assert set(data["erf"]) == {"P5", "P4"}
    cap = data["erf"]["P4"]
    aware = next(s for s in data["sets"] if s["name"] == "level-aware k-means")
    p4 = [lv.name for lv in load_detector("yolov3-tiny").levels].index("P4")
    assert all(max(a) <= cap * (1 + 1e-6) for a in aware["anchors"][p4])


def test_a_detector_without_a_source_is_rebuilt_from_its_ir():
    from anchorfit.design.erf_network import detector_at

    det = load_detector("ssd300_vgg16")
    det.source = None
    moved = detector_at(det, (1088, 1088))
    ref = load_detector("ssd300_vgg16", (1088, 1088))
    assert moved.network.input_size == (1088, 1088) and det.network.input_size == (300, 300)
    a, b = moved.network.analyze(), ref.network.analyze()
    for lv in ref.levels:
        assert a[lv.node].feature_size == b[lv.node].feature_size
        assert (a[lv.node].rf, a[lv.node].center) == (b[lv.node].rf, b[lv.node].center)
    # conv11_2: 1 x 1 at 300; at 1088: 136 (conv4_3) -> 68 -> 34 -> 17 -> 15 -> 13 (valid 3 x 3)
    assert b[ref.levels[-1].node].feature_size == (13, 13)


def test_a_global_level_is_measured_at_the_detector_input(run_cli, shipped_data):
    # YOLOv1's detection layer reads a connected layer: every cell sees the whole input at any
    # size, so no canvas makes its RF "fit"; it is measured at 448 x 448, on the whole input
    cfg = shipped_data / "configs" / "darknet" / "pjreddie" / "yolov1-tiny.cfg"
    code, out, err = run_cli("plan", str(cfg), "--samples", "1", "--format", "json")
    assert code == 0, err
    assert "canvas 448x448 (the detector's input)" in err
    assert "global context: runs on the full input" in err
    (level,) = json.loads(out)["levels"]
    assert level["erf"]["input"] == [448, 448] and level["erf"]["mean"] > 0
