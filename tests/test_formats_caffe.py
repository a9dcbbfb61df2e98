"""Caffe prototxt reader: SSD300 / S3FD / FaceBoxes / MobileNet-SSD / OpenCV res10 gold numbers,
PriorBox anchors, probe agreement, parser and reader errors."""

from __future__ import annotations

import math

import pytest

from anchorfit.formats.caffe import load_caffe
from anchorfit.formats.parsers.prototxt import parse_prototxt
from formats_helpers import probe_levels, rf_row, write


@pytest.fixture
def caffe(shipped_data):
    return shipped_data / "configs" / "caffe"


def test_ssd300_gold(caffe):
    """research §2.5 SSD300 table: r/S/P/c0, head RF and steps 8..300 (pool3 ceil -> 38x38)."""
    det = load_caffe(caffe / "ssd300_vgg_voc0712" / "deploy.prototxt")
    assert det.input_size == (300, 300)
    rows = [rf_row(det, lv.name) for lv in det.levels]
    assert rows == [(92, 8, 42, 3.5), (420, 16, 202, 7.5), (452, 32, 218, 7.5),
                    (516, 64, 250, 7.5), (644, 64, 250, 71.5), (772, 64, 250, 135.5)]
    assert [lv.head_rf.rf[0] for lv in det.levels] == [108, 452, 516, 644, 772, 900]
    assert [lv.step[0] for lv in det.levels] == [8, 16, 32, 64, 100, 300]
    assert [lv.rf.feature_size[0] for lv in det.levels] == [38, 19, 10, 5, 3, 1]
    assert [lv.name for lv in det.levels][:2] == ["conv4_3_norm", "fc7"]
    assert all(lv.center == "cell-center" for lv in det.levels)


def test_ssd300_priors_caffe_order_and_count(caffe):
    det = load_caffe(caffe / "ssd300_vgg_voc0712" / "deploy.prototxt")
    mins = [30, 60, 111, 162, 213, 264]
    maxs = [60, 111, 162, 213, 264, 315]
    for lv, lo, hi in zip(det.levels, mins, maxs):
        a = lv.anchors
        assert (a[0].w, a[0].h) == (lo, lo)
        assert a[1].w == pytest.approx(math.sqrt(lo * hi))
        assert a[2].w == pytest.approx(lo * math.sqrt(2)) and a[3].h == pytest.approx(lo * math.sqrt(2))
    total = sum(lv.rf.feature_size[0] * lv.rf.feature_size[1] * len(lv.anchors)
                for lv in det.levels)
    assert total == 8732
    assert det.levels[0].assigner.pos_iou == 0.5


def test_train_prototxt_reads_input_and_assigner(caffe):
    det = load_caffe(caffe / "ssd300_vgg_voc0712" / "train.prototxt")
    assert det.input_size == (300, 300)  # AnnotatedData resize_param
    assert (det.levels[0].assigner.pos_iou, det.levels[0].assigner.neg_iou) == (0.5, 0.5)
    assert [lv.rf.rf for lv in det.levels] == [
        lv.rf.rf for lv in load_caffe(caffe / "ssd300_vgg_voc0712" / "deploy.prototxt").levels]


def test_s3fd_table1(caffe):
    """S3FD Table 1 head RFs 48/108/228 on the first three levels; this reproduction's fc6 is
    3x3 dilation 6 (pad 6), so the last three are 660/788/1044 (research §2.5)."""
    det = load_caffe(caffe / "s3fd" / "deploy.prototxt")
    assert det.input_size == (640, 640)
    assert [lv.head_rf.rf[0] for lv in det.levels] == [48, 108, 228, 660, 788, 1044]
    assert [rf_row(det, lv.name)[:3] for lv in det.levels[:3]] == [
        (40, 4, 18), (92, 8, 42), (196, 16, 90)]
    assert [lv.step[0] for lv in det.levels] == [4, 8, 16, 32, 64, 128]
    assert [a.to_list() for lv in det.levels for a in lv.anchors] == [
        [s, s] for s in (16, 32, 64, 128, 256, 512)]


def test_faceboxes_rf_and_densification(caffe):
    """FaceBoxes RFs 463/527/655; the fork densifies 32 px 4x4 and 64 px 2x2 (21 per cell).
    The Caffe original pools without padding, so c0 = 20 (the PyTorch port's is 0)."""
    det = load_caffe(caffe / "faceboxes" / "deploy.prototxt")
    assert [rf_row(det, lv.name)[:2] for lv in det.levels] == [(463, 32), (527, 64), (655, 128)]
    assert [float(lv.rf.center[0]) for lv in det.levels] == [20, 20, 20]
    inc = det.levels[0]
    assert [len(a.offsets or [None]) for a in inc.anchors] == [16, 4, 1]
    assert sum(len(a.offsets or [None]) for a in inc.anchors) == 21
    assert inc.anchors[0].offsets[:2] == ((0.0, 0.0), (0.0, 0.25))
    assert inc.center == "explicit" and det.levels[1].center == "cell-center"
    assert any("densification" in n for n in det.notes)
    plain = load_caffe(caffe / "faceboxes" / "deploy.prototxt", densify="none")
    assert all(a.offsets is None for lv in plain.levels for a in lv.anchors)


def test_mobilenet_ssd_step_from_map(caffe):
    """No step in the first PriorBox: Caffe uses img / map = 300 / 19."""
    det = load_caffe(caffe / "mobilenet_ssd" / "MobileNetSSD_deploy.prototxt")
    assert det.levels[0].step == pytest.approx((300 / 19, 300 / 19))
    assert [lv.rf.feature_size[0] for lv in det.levels] == [19, 10, 5, 3, 2, 1]
    assert len(det.levels[0].anchors) == 3  # 60, then 2 and 1/2 (no max_size)


def test_opencv_res10_face(caffe):
    det = load_caffe(caffe / "opencv_res10_ssd_face" / "deploy.prototxt")
    assert len(det.levels) == 6 and det.levels[0].anchors[0].w == 30
    # extra layers keep stride 64 while PriorBox steps say 100 and 300
    assert [lv.step[0] for lv in det.levels[-2:]] == [100, 300]
    assert [lv.rf.stride[0] for lv in det.levels[-2:]] == [64, 64]


@pytest.mark.parametrize("folder, name, size", [
    ("ssd300_vgg_voc0712", "deploy.prototxt", 784),
    ("s3fd", "deploy.prototxt", 800),
    ("faceboxes", "deploy.prototxt", 800),
])
@pytest.mark.slow
def test_probe_agrees_on_every_level(caffe, folder, name, size):
    det = load_caffe(caffe / folder / name, (size, size))
    checks = probe_levels(det)
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}


def test_parser_handles_comments_enums_lists_and_strings():
    msg = parse_prototxt('name: "a" # comment\nlayer { type: \'Pooling\' pooling_param '
                         '{ pool: MAX kernel_size: 3 stride: [2] } }\nx: 1.5e1 y: true\n')
    layer = msg.get("layer")
    assert layer.get("type") == "Pooling"
    assert layer.get("pooling_param").get("pool") == "MAX"
    assert layer.get("pooling_param").getall("stride") == [2]
    assert msg.get("x") == 15.0 and msg.get("y") is True
    assert layer.line == 2


NET = """name: "t"
input: "data"
input_shape { dim: 1 dim: 3 dim: 64 dim: 64 }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
"""
PRIOR = """layer { name: "p" type: "PriorBox" bottom: "c1" bottom: "data" top: "p"
        prior_box_param { min_size: 8 aspect_ratio: 2 flip: true } }
"""


@pytest.mark.parametrize("text, line, message", [
    (NET + "layer { name: \"x\" type: \"Frob\" bottom: \"c1\" top: \"x\" }\n" + PRIOR, 6,
     "unknown layer type 'Frob'"),
    (NET + PRIOR + "layer { name: \"bad\"\n", 8, "'}' missing"),
    (NET.replace("kernel_size: 3 ", "") + PRIOR, 5, "missing kernel_size"),
    (NET + "layer { name: \"y\" type: \"ReLU\" bottom: \"nope\" top: \"y\" }\n" + PRIOR, 6,
     "bottom 'nope' is not produced"),
    (NET, 1, "no PriorBox layers"),
    (NET.replace('input: "data"', 'input: "data" @'), 2, "unexpected character '@'"),
])
def test_malformed_prototxt_file_line(tmp_path, run_cli, text, line, message):
    path = write(tmp_path, "net.prototxt", text)
    code, out, err = run_cli("rf", str(path))
    assert code == 2 and out == ""
    assert f"{path}:{line}:" in err and message in err, err


def test_solver_and_labelmap_are_not_networks(caffe, run_cli):
    code, _, err = run_cli("rf", str(caffe / "s3fd" / "solver.prototxt"))
    assert code == 2 and "a solver prototxt" in err
    code, _, err = run_cli("rf", str(caffe / "faceboxes" / "labelmap_face.prototxt"))
    assert code == 2 and "a label map prototxt" in err


def test_small_net_loads_and_priors_flip(tmp_path):
    det = load_caffe(write(tmp_path, "ok.prototxt", NET + PRIOR))
    assert [a.to_list() for a in det.levels[0].anchors] == [[8, 8], [11.31, 5.66], [5.66, 11.31]]
    assert det.levels[0].step == (2.0, 2.0)  # 64 / 32
