"""torchvision detectors: anchors read from the built model (meta device, weights=None)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torchvision")

from anchorfit.formats.torchvision import load_torchvision_detector  # noqa: E402
from anchorfit.load import load_detector  # noqa: E402


def test_faster_rcnn_p6_step_61_vs_stride_64():
    det = load_torchvision_detector("fasterrcnn_resnet50_fpn")
    assert det.input_size == (800, 800)
    assert [lv.step[0] for lv in det.levels] == [4, 8, 16, 32, 61]
    assert [lv.rf.stride[0] for lv in det.levels] == [4, 8, 16, 32, 64]
    assert det.levels[-1].rf.feature_size == (13, 13)
    assert any("step 61" in n for n in det.notes)
    # torchvision rounds its base anchors
    assert [a.to_list() for a in det.levels[0].anchors] == [[46, 22], [32, 32], [22, 46]]
    assert det.levels[0].center == "top-left"
    assert (det.levels[0].assigner.pos_iou, det.levels[0].assigner.neg_iou) == (0.7, 0.3)
    assert det.levels[0].extra["feature_key"] == "0" and det.levels[-1].extra["feature_key"] == "pool"


def test_retinanet_truncated_octave_sizes():
    det = load_torchvision_detector("retinanet_resnet50_fpn")
    squares = [a.w for a in det.levels[0].anchors if a.w == a.h]
    assert squares == [32, 40, 50]  # int(x * 2**(k/3)), unlike mmdet's 40.3/50.8
    assert [lv.step[0] for lv in det.levels] == [8, 16, 32, 61, 114]
    assert len(det.levels[0].head) == 5


def test_ssd300_matches_caffe_rf_and_coco_sizes(shipped_data):
    from anchorfit.formats.caffe import load_caffe

    tv = load_torchvision_detector("ssd300_vgg16")
    caffe = load_caffe(shipped_data / "configs/caffe/ssd300_vgg_voc0712/deploy.prototxt")
    assert [(lv.rf.rf, lv.rf.center, lv.head_rf.rf, lv.step) for lv in tv.levels] == [
        (lv.rf.rf, lv.rf.center, lv.head_rf.rf, lv.step) for lv in caffe.levels]
    assert [lv.anchors[0].w for lv in tv.levels] == pytest.approx([21, 45, 99, 153, 207, 261])
    assert tv.levels[1].anchors[1].w == pytest.approx(math.sqrt(45 * 99))
    assert tv.levels[0].center == "cell-center"


def test_ssdlite_steps_from_map_size():
    det = load_torchvision_detector("ssdlite320_mobilenet_v3_large")
    assert det.levels[3].step == pytest.approx((320 / 3, 320 / 3))
    assert det.levels[0].anchors[0].w == pytest.approx(64)


def test_fcos_is_anchor_free_with_ranges():
    det = load_torchvision_detector("fcos_resnet50_fpn")
    assert all(lv.anchor_free for lv in det.levels)
    assert [lv.anchor_free_range for lv in det.levels] == [
        (0, 64), (64, 128), (128, 256), (256, 512), (512, math.inf)]
    assert det.levels[0].assigner.kind == "anchor-free"


def test_show_path_and_layer_names():
    det = load_detector("torchvision:fasterrcnn_resnet50_fpn", (512, 512))
    net = det.network
    assert net.default_layers == ["P2", "P3", "P4", "P5", "P6"]
    assert net.node("P6") == net.node("pool")
    assert det.to_frame()["step"].tolist()[-1] == "64"  # 512 // 8 = 64 at this size


@pytest.mark.slow
def test_probe_agrees_on_ssd300_first_level():
    """The traced torchvision module itself against the gradient probe (modest input)."""
    from anchorfit import load as models
    from anchorfit.rf.probe import verify

    net = models.load("torchvision:ssd300_vgg16", (300, 300), materialize=True)
    analysis = net.analyze()
    (check,) = verify(net.traced, analysis, [net.node("0")])
    assert check.agree is True
    assert analysis[net.node("0")].rf == (92, 92)


def test_unknown_model_message():
    from anchorfit.errors import AnchorfitError

    with pytest.raises(AnchorfitError, match="unknown torchvision model"):
        load_detector("torchvision:fasterrcnn_resnet_51")
    with pytest.raises(AnchorfitError, match="not a detection model"):
        load_torchvision_detector("resnet18")
