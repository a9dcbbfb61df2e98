"""YOLOv5 model yaml reader: real hub/model files, block internals, anchors, errors."""

from __future__ import annotations

from fractions import Fraction

import pytest

from anchorfit.formats import load_detector
from anchorfit.formats.ultralytics import load_yolov5
from formats_helpers import probe_levels, rf_row, write

TINY_HEAD = """
nc: 2
depth_multiple: 1.0
width_multiple: 1.0
anchors:
  - [10, 14, 23, 27, 37, 58]
  - [81, 82, 135, 169, 344, 319]
"""


@pytest.fixture
def models(shipped_data):
    return shipped_data / "configs" / "yolov5" / "models"


def test_yolov3_tiny_gold(models):
    """research §2.5: P5 r=318, c0=31.5 (five 2x2 pools + ZeroPad/MaxPool(2,1)); P4 286 with
    centres alternating 15.5/31.5 (upsampled path)."""
    det = load_yolov5(models / "hub" / "yolov3-tiny.yaml")
    assert [lv.name for lv in det.levels] == ["P4", "P5"]
    assert rf_row(det, "P5") == (318, 32.0, 127, 31.5)
    p4 = det.levels[0]
    assert p4.rf.rf == (286, 286) and p4.rf.stride == (16, 16) and not p4.rf.aligned
    assert [float(c) - 16 * i for i, c in enumerate(p4.rf.x.centers())] == [15.5, 31.5]
    assert [a.to_list() for a in p4.anchors] == [[10, 14], [23, 27], [37, 58]]
    assert det.levels[1].head_rf.rf == (318, 318)  # Detect is a 1x1 conv


def test_yolov5s_levels_and_conventions(models):
    det = load_yolov5(models / "yolov5s.yaml")
    assert det.input_size == (640, 640) and det.resize_policy == "letterbox"
    assert [lv.name for lv in det.levels] == ["P3", "P4", "P5"]
    assert [lv.rf.stride for lv in det.levels] == [(Fraction(s), Fraction(s)) for s in (8, 16, 32)]
    assert [lv.rf.feature_size for lv in det.levels] == [(80, 80), (40, 40), (20, 20)]
    p3 = det.levels[0]
    assert [a.to_list() for a in p3.anchors] == [[10, 13], [16, 30], [33, 23]]
    assert p3.center == "cell-center" and p3.center_offset == 0.5
    assert p3.assigner.kind == "yolo-ratio" and p3.assigner.anchor_t == 4.0
    assert p3.step == (8.0, 8.0)
    # YOLOv5's own module paths name layers
    assert det.network.node("model.17") == p3.node
    assert det.num_classes == 80


def test_depth_multiple_repeats_bottlenecks(models):
    """C3 with number 3: yolov5n (0.33) builds 1 bottleneck, yolov5l (1.0) builds 3."""
    small = load_yolov5(models / "yolov5n.yaml").network.graph.nodes
    large = load_yolov5(models / "yolov5l.yaml").network.graph.nodes
    assert "model.2.m.0.add" in small and "model.2.m.1.add" not in small
    assert "model.2.m.2.add" in large
    # head C3 with shortcut False: no residual add
    assert "model.13.m.0.cv2" in small and "model.13.m.0.add" not in small


def test_anchor_count_means_to_be_fitted(models):
    det = load_yolov5(models / "hub" / "yolov5-p6.yaml")
    assert [lv.name for lv in det.levels] == ["P3", "P4", "P5", "P6"]
    assert all(lv.anchor_free is True and lv.extra["anchors_to_fit"] == 3 for lv in det.levels)
    assert det.extra["anchors_to_fit"]
    assert any("anchors: to be fitted" in n for n in det.notes)


def test_transformer_block_is_global_context(models):
    det = load_yolov5(models / "hub" / "yolov5s-transformer.yaml")
    assert all(lv.rf.global_context for lv in det.levels)


def test_every_model_yaml_matches_probe_on_tiny_nets(models):
    """RF of the IR agrees with the gradient probe (torch module built from the same IR)."""
    det = load_yolov5(models / "hub" / "yolov3-tiny.yaml", (416, 416))
    checks = probe_levels(det)
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}


def test_block_zoo_probe(tmp_path):
    """Focus, BottleneckCSP, SPP, C3x, C3Ghost, GhostBottleneck s2, Contract/Expand, MaxPool,
    ZeroPad2d in one small net: the IR agrees with the probe on every level.

    (A conv sits between Contract and Expand: the engine is channel-agnostic, so a bare
    space-to-depth → depth-to-space pair, which is the identity, would be reported with the
    larger RF of the 2x2 block, a sound over-estimate the probe would flag.)"""
    path = write(tmp_path, "zoo.yaml", TINY_HEAD + """
backbone:
  [[-1, 1, Focus, [8, 3]],
   [-1, 1, Conv, [16, 3, 2]],
   [-1, 1, BottleneckCSP, [16]],
   [-1, 1, GhostBottleneck, [32, 3, 2]],
   [-1, 2, C3x, [32]],
   [-1, 1, SPP, [32, [3, 5]]],
   [-1, 1, Contract, [2]],
   [-1, 1, Conv, [64, 1, 1]],
   [-1, 1, Expand, [2]],
   [-1, 1, nn.ZeroPad2d, [[0, 1, 0, 1]]],
   [-1, 1, nn.MaxPool2d, [2, 1, 0]],
  ]
head:
  [[-1, 1, C3Ghost, [32, False]],
   [-1, 1, Conv, [32, 3, 2]],
   [[10, 12], 1, Detect, [nc, anchors]],
  ]
""")
    det = load_yolov5(path, (256, 256))
    assert [lv.rf.stride[1] for lv in det.levels] == [8, 16]
    checks = probe_levels(det)
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}


def test_reversed_anchor_order_is_flipped(tmp_path, models):
    text = (models / "yolov5s.yaml").read_text()
    text = text.replace("[10, 13, 16, 30, 33, 23]", "[X]").replace(
        "[116, 90, 156, 198, 373, 326]", "[10, 13, 16, 30, 33, 23]").replace(
        "[X]", "[116, 90, 156, 198, 373, 326]")
    det = load_yolov5(write(tmp_path, "rev.yaml", text))
    assert det.levels[0].anchors[0].to_list() == [10, 13]
    assert any("check_anchor_order" in n for n in det.notes)


def test_registry_dispatches_by_content(models):
    det = load_detector(models / "yolov5s.yaml")
    assert det.extra["format"] == "yolov5"


@pytest.mark.parametrize("name, body, line, message", [
    ("unknown.yaml", "backbone:\n  [[-1, 1, Conv, [16, 3, 2]],\n   [-1, 1, Frobnicate, [16]]]\n"
     "head:\n  [[[1], 1, Detect, [nc, anchors]]]\n", 10, "unknown module 'Frobnicate'"),
    ("forward.yaml", "backbone:\n  [[-1, 1, Conv, [16, 3, 2]],\n   [5, 1, Conv, [16, 3, 2]]]\n"
     "head:\n  [[[1], 1, Detect, [nc, anchors]]]\n", 10, "'from' 5 does not name an earlier row"),
    ("nodetect.yaml", "backbone:\n  [[-1, 1, Conv, [16, 3, 2]]]\nhead:\n  [[-1, 1, Conv, [16, 3, 2]]]\n",
     11, "the last head row must be Detect"),
    ("badrow.yaml", "backbone:\n  [[-1, 1, Conv],\n   [-1, 1, Conv, [16, 3, 2]]]\n"
     "head:\n  [[[1], 1, Detect, [nc, anchors]]]\n", 9, "must be [from, number, module, args]"),
    ("anchors.yaml", "backbone:\n  [[-1, 1, Conv, [16, 3, 2]]]\n"
     "head:\n  [[[0, 0, 0], 1, Detect, [nc, anchors]]]\n", 5, "one list per Detect input (3)"),
])
def test_malformed_yaml_is_file_line_message(tmp_path, run_cli, name, body, line, message):
    path = write(tmp_path, name, TINY_HEAD + body)
    code, out, err = run_cli("rf", str(path))
    assert code == 2 and out == ""
    assert f"{path}:{line}:" in err and message in err
    assert "Traceback" not in err


def test_bad_yaml_syntax(tmp_path, run_cli):
    path = write(tmp_path, "broken.yaml", TINY_HEAD + "backbone:\n  [[-1, 1, Conv, [16, 3, 2]]\n"
                 "head: [[[0], 1, Detect, [nc, anchors]]]\n")
    code, _, err = run_cli("rf", str(path))
    assert code == 2 and f"{path}:" in err and "YAML" in err


def test_non_model_yolov5_files_say_what_they_are(shipped_data, run_cli):
    hyp = shipped_data / "configs" / "yolov5" / "data" / "hyps" / "hyp.scratch-low.yaml"
    code, _, err = run_cli("rf", str(hyp))
    assert code == 2 and "a YOLOv5 hyperparameter file, not a model" in err
