"""mmdetection config reader: safe _base_ inheritance, anchor generators (exact SSD sizes),
backbone/neck IR recipes checked against torchvision, cross-format agreement, errors."""

from __future__ import annotations

import math

import pytest

from anchorfit.formats import nets as _nets
from anchorfit.formats.mmdet import load_config, load_mmdet, ssd_sizes
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder
from formats_helpers import probe_levels, write


@pytest.fixture
def mmdet(shipped_data):
    return shipped_data / "configs" / "mmdet"


@pytest.mark.parametrize("size, rng, n, mins, maxs", [
    (300, (0.15, 0.9), 6, [21, 45, 99, 153, 207, 261], [45, 99, 153, 207, 261, 315]),
    (300, (0.2, 0.9), 6, [30, 60, 111, 162, 213, 264], [60, 111, 162, 213, 264, 315]),
    (512, (0.1, 0.9), 7, [20, 51, 133, 215, 296, 378, 460], [51, 133, 215, 296, 378, 460, 542]),
    (512, (0.15, 0.9), 7, [35, 76, 153, 230, 307, 384, 460], [76, 153, 230, 307, 384, 460, 537]),
])
def test_ssd_basesize_ratio_range_exact(size, rng, n, mins, maxs):
    """research anchor_tools §3.3: mmdet's integer-percent rule, first level hard-coded."""
    assert ssd_sizes(size, rng, n) == (mins, maxs)


def test_ssd_other_input_size_is_an_error(tmp_path, mmdet, run_cli):
    path = write(tmp_path, "ssd416.py", f"_base_ = '{mmdet}/ssd/ssd300_coco.py'\n"
                 "model = dict(bbox_head=dict(anchor_generator=dict(input_size=416)))\n")
    code, _, err = run_cli("rf", str(path))
    assert code == 2 and "only knows 300" in err and "ssd300.py:" in err


def test_ssd300_voc_matches_caffe(mmdet, shipped_data):
    from anchorfit.formats.caffe import load_caffe

    m = load_mmdet(mmdet / "pascal_voc" / "ssd300_voc0712.py")
    c = load_caffe(shipped_data / "configs" / "caffe" / "ssd300_vgg_voc0712" / "deploy.prototxt")
    assert m.input_size == (300, 300) and m.resize_policy == "stretch"
    for a, b in zip(m.levels, c.levels):
        assert (a.rf.rf, a.rf.stride, a.rf.center, a.head_rf.rf, a.step) == (
            b.rf.rf, b.rf.stride, b.rf.center, b.head_rf.rf, b.step)
        assert sorted(x.to_list() for x in a.anchors) == sorted(x.to_list() for x in b.anchors)
    assert m.levels[0].center == "cell-center"


def test_retinanet_octave_anchors(mmdet):
    det = load_mmdet(mmdet / "retinanet" / "retinanet_r50_fpn_1x_coco.py")
    assert [lv.name for lv in det.levels] == ["P3", "P4", "P5", "P6", "P7"]
    p3 = det.levels[0]
    sizes = sorted({round(math.sqrt(a.w * a.h), 1) for a in p3.anchors})
    assert sizes == [32.0, 40.3, 50.8] and len(p3.anchors) == 9
    assert p3.center == "top-left" and p3.center_offset == 0
    assert (p3.assigner.pos_iou, p3.assigner.neg_iou) == (0.5, 0.4)
    assert det.resize_policy == "shortside" and det.resize_params == {"short": 800, "max": 1333}
    assert det.input_size == (800, 1344)  # pad_size_divisor 32
    assert len(p3.head) == 5  # 4 stacked convs + predictor
    # on_input extras read C5: P6 = 427 + 64
    assert det.levels[3].rf.rf == (491, 491)


def test_faster_rcnn_fpn_matches_torchvision_backbone(mmdet):
    """The ResNet-50 + FPN IR recipe reproduces the traced torchvision module's RFs."""
    from anchorfit.formats.torchvision import load_torchvision_detector

    m = load_mmdet(mmdet / "faster_rcnn" / "faster-rcnn_r50_fpn_1x_coco.py", (800, 800))
    t = load_torchvision_detector("fasterrcnn_resnet50_fpn", (800, 800))
    assert [lv.name for lv in m.levels] == [lv.name for lv in t.levels]
    for a, b in zip(m.levels, t.levels):
        assert (a.rf.rf, a.rf.stride, a.rf.padding, a.rf.aligned, a.head_rf.rf) == (
            b.rf.rf, b.rf.stride, b.rf.padding, b.rf.aligned, b.head_rf.rf), a.name
    assert [a.to_list() for a in m.levels[0].anchors] == [[45.25, 22.63], [32, 32], [22.63, 45.25]]
    assert (m.levels[0].assigner.pos_iou, m.levels[0].assigner.neg_iou) == (0.7, 0.3)


def test_caffe_style_resnet_matches_torchvision_with_stride_in_1x1():
    """style='caffe' moves the stride to the 1x1 conv: compare with a torchvision ResNet-50
    whose first blocks are edited the same way."""
    import torch.nn as nn

    from anchorfit.load import build_torchvision, load_torch_network

    tv = build_torchvision("resnet50")
    for layer in (tv.layer2, tv.layer3, tv.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    tv.fc = nn.Identity()
    net = load_torch_network(tv, "r50caffe", (224, 224))
    ta = net.analyze()
    b = GraphBuilder()
    outs = _nets.resnet(b, b.input(), _nets.ResNetSpec(50, stride_in_1x1=True))
    ours = analyze(b.build(), (224, 224))
    for i, node in enumerate(outs):
        theirs = ta[net.traced.resolve(f"layer{i + 1}")]
        assert (ours[node].rf, ours[node].padding) == (theirs.rf, theirs.padding), i


def test_mobilenet_v2_matches_torchvision():
    from anchorfit.load import build_torchvision, load_torch_network

    net = load_torch_network(build_torchvision("mobilenet_v2").features, "mnv2", (320, 320))
    ta = net.analyze()
    b = GraphBuilder()
    outs = _nets.mobilenet_v2(b, b.input())
    ours = analyze(b.build(), (320, 320))
    # mmdet out index 4 (layer5) = torchvision features.13; index 7 (conv2) = features.18
    for idx, feat in ((4, "13"), (7, "18"), (2, "6")):
        theirs = ta[net.traced.resolve(feat)]
        assert (ours[outs[idx]].rf, ours[outs[idx]].padding) == (theirs.rf, theirs.padding)


def test_yolov3_agrees_with_yolov5_hub_yaml(mmdet, shipped_data):
    """Same detector in two formats: strides, anchors per level, head RF (mmdet counts the 3x3
    bridge conv in its head, YOLOv5 in its neck, so the prediction's RF is what must agree)."""
    from anchorfit.formats.ultralytics import load_yolov5

    m = load_mmdet(mmdet / "yolo" / "yolov3_d53_8xb8-ms-608-273e_coco.py")
    y = load_yolov5(shipped_data / "configs" / "yolov5" / "models" / "hub" / "yolov3.yaml",
                    m.input_size)
    ms = sorted(m.levels, key=lambda lv: lv.rf.stride)
    assert [lv.rf.stride for lv in ms] == [lv.rf.stride for lv in y.levels]
    assert [[a.to_list() for a in lv.anchors] for lv in ms] == [
        [a.to_list() for a in lv.anchors] for lv in y.levels]
    assert [lv.head_rf.rf for lv in ms] == [lv.head_rf.rf for lv in y.levels] == [
        (981, 981), (949, 949), (917, 917)]
    assert [lv.center for lv in ms] == [lv.center for lv in y.levels]
    assert m.input_size == (608, 608) and m.resize_policy == "letterbox"


def test_legacy_generators(mmdet):
    det = load_mmdet(mmdet / "legacy_1.x" / "faster-rcnn_r50_fpn_1x_coco_v1.py")
    assert [a.to_list() for a in det.levels[0].anchors] == [[46, 22], [32, 32], [22, 46]]
    assert det.levels[0].center_offset == pytest.approx(0.5 * 3 / 4)
    ssd = load_mmdet(mmdet / "legacy_1.x" / "ssd300_coco_v1.py")
    assert ssd.input_size == (300, 300)  # the anchor generator's size wins over the pipeline's
    assert any("built for 300" in n for n in ssd.notes)


def test_ssdlite_and_guided_anchoring_load(mmdet):
    lite = load_mmdet(mmdet / "ssd" / "ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py")
    assert lite.input_size == (320, 320)
    assert [lv.step[0] for lv in lite.levels] == [16, 32, 64, 107, 160, 320]
    assert [lv.rf.stride[0] for lv in lite.levels] == [16, 32, 64, 128, 256, 512]
    ga = load_mmdet(mmdet / "guided_anchoring" / "ga-retinanet_r50-caffe_fpn_1x_coco.py")
    assert any("guided anchoring" in n for n in ga.notes)


@pytest.mark.parametrize("config, size", [
    ("retinanet/retinanet_r50-caffe_fpn_1x_coco.py", (832, 832)),
    ("yolo/yolov3_d53_8xb8-320-273e_coco.py", (992, 992)),
    ("ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py", (2048, 2048)),
])
@pytest.mark.slow
def test_probe_agrees_on_every_level(mmdet, config, size):
    checks = probe_levels(load_mmdet(mmdet / config, size))
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}


def test_merge_delete_and_base_refs(tmp_path):
    write(tmp_path, "base.py", "x = 1\nmodel = dict(a=dict(b=1, c=2), l=[1, 2])\n")
    path = write(tmp_path, "child.py", "_base_ = './base.py'\n"
                 "model = dict(a=dict(_delete_=True, d=3), l=[3], y={{_base_.x}}, "
                 "z=_base_.model.a.c)\n")
    cfg = load_config(path).data
    assert cfg["model"] == {"a": {"d": 3}, "l": [3], "y": 1, "z": 2}
    assert cfg["x"] == 1


@pytest.mark.parametrize("files, line, message", [
    ({"a.py": "_base_ = './b.py'\nmodel = dict()\n", "b.py": "x = 1\n_base_ = ['./a.py']\n"},
     2, "_base_ cycle: a.py → b.py → a.py"),
    ({"a.py": "y = 2\n_base_ = './missing.py'\n"}, 2, "_base_ file './missing.py' not found"),
    ({"a.py": "import os\nmodel = dict()\n"}, 1, "imports are code"),
    ({"a.py": "model = dict(x=__import__('os'))\n"}, 1, "call of __import__() is not allowed"),
    ({"a.py": "model = dict(\n  a=1,,\n)\n"}, 2, "Python syntax error"),
    ({"a.py": "model = dict(type='RetinaNet', backbone=dict(type='ResNet', depth=50),\n"
              "  bbox_head=dict(type='RetinaHead',\n"
              "    anchor_generator=dict(type='AnchorGenerator', scales=[8],\n"
              "      ratios=[1.0])))\n"}, 3, "missing key 'strides'"),
    ({"a.py": "model = dict(type='X', backbone=dict(type='Swin'),\n"
              "  bbox_head=dict(type='RetinaHead', anchor_generator=dict(\n"
              "    type='AnchorGenerator', scales=[8], ratios=[1.0], strides=[8])))\n"},
     1, "backbone type 'Swin' is not supported"),
])
def test_malformed_configs_file_line(tmp_path, run_cli, files, line, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    path = tmp_path / "a.py"
    code, out, err = run_cli("rf", str(path))
    assert code == 2 and out == ""
    assert f":{line}:" in err and message in err, err
    assert "Traceback" not in err


def test_non_detector_bases_say_so(mmdet, run_cli):
    code, _, err = run_cli("rf", str(mmdet / "_base_" / "schedules" / "schedule_1x.py"))
    assert code == 2 and "no 'model' in this config" in err
