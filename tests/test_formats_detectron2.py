"""detectron2 yaml reader: _BASE_ chains, built-in defaults, the eval tag, errors."""

from __future__ import annotations

import math

import pytest

from anchorfit.formats import load_detector
from anchorfit.formats.detectron2 import load_detectron2
from formats_helpers import write


@pytest.fixture
def d2(shipped_data):
    return shipped_data / "configs" / "detectron2"


def test_faster_rcnn_fpn(d2):
    det = load_detectron2(d2 / "COCO-Detection" / "faster_rcnn_R_50_FPN_1x.yaml")
    assert [lv.name for lv in det.levels] == ["p2", "p3", "p4", "p5", "p6"]
    assert [lv.rf.stride[0] for lv in det.levels] == [4, 8, 16, 32, 64]
    assert [a.to_list() for a in det.levels[0].anchors] == [[45.25, 22.63], [32, 32], [22.63, 45.25]]
    assert det.levels[0].center == "top-left"
    assert (det.levels[0].assigner.pos_iou, det.levels[0].assigner.neg_iou) == (0.7, 0.3)
    assert det.input_size == (800, 1344) and det.resize_params == {"short": 800, "max": 1333}
    assert det.num_classes == 80


def test_retinanet_eval_tag_sizes(d2):
    """Base-RetinaNet's SIZES is a !!python/object/apply:eval list comprehension."""
    det = load_detectron2(d2 / "COCO-Detection" / "retinanet_R_50_FPN_1x.yaml")
    p3 = det.levels[0]
    sizes = sorted({round(math.sqrt(a.w * a.h), 2) for a in p3.anchors})
    assert sizes == [32.0, 40.32, 50.8] and len(p3.anchors) == 9
    assert len(p3.head) == 5 and (p3.assigner.pos_iou, p3.assigner.neg_iou) == (0.5, 0.4)


def test_retinanet_matches_mmdet_caffe_style(d2, shipped_data):
    """Same architecture (MSRA ResNet, P6/P7 from res5, 4+1 head convs) in two formats."""
    from anchorfit.formats.mmdet import load_mmdet

    d = load_detectron2(d2 / "COCO-Detection" / "retinanet_R_50_FPN_1x.yaml")
    m = load_mmdet(shipped_data / "configs" / "mmdet" / "retinanet" /
                   "retinanet_r50-caffe_fpn_1x_coco.py")
    assert [(a.rf.rf, a.rf.stride, a.rf.center, a.head_rf.rf) for a in d.levels] == [
        (b.rf.rf, b.rf.stride, b.rf.center, b.head_rf.rf) for b in m.levels]


def test_c4_uses_builtin_defaults(d2):
    det = load_detectron2(d2 / "Base-RCNN-C4.yaml")
    (lv,) = det.levels
    assert lv.name == "res4" and lv.rf.stride[0] == 16 and len(lv.anchors) == 15
    assert det.input_size == (800, 1333)  # no FPN: no size divisibility
    dc5 = load_detectron2(d2 / "Base-RCNN-DilatedC5.yaml")
    assert dc5.levels[0].name == "res5" and dc5.levels[0].rf.stride[0] == 16
    assert dc5.levels[0].rf.rf[0] > lv.rf.rf[0]


def test_registry_dispatch(d2):
    assert load_detector(d2 / "Base-RCNN-FPN.yaml").extra["format"] == "detectron2"


@pytest.mark.parametrize("files, line, message", [
    ({"a.yaml": "_BASE_: b.yaml\nMODEL: {}\n", "b.yaml": "MODEL: {}\n_BASE_: a.yaml\n"}, 2,
     "_BASE_ cycle: a.yaml → b.yaml → a.yaml"),
    ({"a.yaml": "MODEL: {}\n_BASE_: nope.yaml\n"}, 2, "_BASE_ file 'nope.yaml' not found"),
    ({"a.yaml": "MODEL:\n  META_ARCHITECTURE: \"PanopticFPN\"\n"}, 1,
     "META_ARCHITECTURE 'PanopticFPN' is not supported"),
    ({"a.yaml": "MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval "
                "[\"__import__('os')\"]\n"}, 3, "call of __import__() is not allowed"),
    ({"a.yaml": "MODEL:\n  RPN: [1,\n"}, 3, "YAML"),
])
def test_malformed_file_line(tmp_path, run_cli, files, line, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    code, out, err = run_cli("rf", str(tmp_path / "a.yaml"))
    assert code == 2 and out == ""
    assert f":{line}:" in err and message in err, err
