"""Ultralytics package model yamls (YOLOv3u/v5u/v6/v8/v9/v10/11/12/26, RT-DETR): scales, channels,
heads, global context, agreement with the YOLOv5 reader, and every block against the gradient
probe."""

from __future__ import annotations

import copy
import shutil
from fractions import Fraction

import pytest

from anchorfit.formats import load_detector
from anchorfit.rf.build import to_torch
from anchorfit.formats.ultralytics import load_yolov5
from anchorfit.formats.ultralytics_modern import guess_scale, load_ultralytics
from anchorfit.rf.graph import Pointwise
from anchorfit.rf.probe import verify
from anchorfit.rf.trace import trace_module
from formats_helpers import write


@pytest.fixture
def models(shipped_data):
    return shipped_data / "configs" / "ultralytics" / "models"


def _channels(det):
    return [det.extra["channels"][f"model.{lv.extra['row']}"] for lv in det.levels]


def _strides(det):
    return [lv.rf.stride for lv in det.levels]


def _s(*values):
    return [(Fraction(v), Fraction(v)) for v in values]


def local_probe(det):
    """Gradient-probe every level with attention replaced by its local part.

    The probe cannot compare a global op (it sees the whole image); swapping each
    ``global_context`` node for a plain pointwise op leaves the local RF the engine reports,
    which the probe then checks cell by cell (max over phases)."""
    graph = copy.deepcopy(det.network.graph)
    for node in graph.nodes.values():
        if isinstance(node.op, Pointwise) and node.op.global_context:
            node.op = Pointwise(node.op.kind, False)
    size = tuple(det.network.input_size)
    module = to_torch(graph, size, default_channels=1, max_channels=1)
    traced = trace_module(module, size)
    nodes = [traced.module_outputs[module.module_path(lv.node)] for lv in det.levels]
    for lv, node in zip(det.levels, nodes):
        assert traced.analysis[node].rf == lv.rf.rf, lv.name
    return {lv.name: c for lv, c in zip(det.levels, verify(traced, traced.analysis, nodes))}


def test_scale_from_file_name_and_channels(models, tmp_path):
    """parse_model: c2 = make_divisible(min(c2, max_channels) * width, 8); Detect inputs of
    YOLOv8n/s/m are (64, 128, 256), (128, 256, 512), (192, 384, 576) (m caps 1024 at 768)."""
    assert guess_scale(tmp_path / "yolov8s.yaml") == "s" and guess_scale(tmp_path / "x.yaml") == ""
    det = load_ultralytics(models / "v8" / "yolov8.yaml")
    assert det.extra["scale"] == "n" and any("scale 'n' assumed" in n for n in det.notes)
    assert _channels(det) == [64, 128, 256]
    assert _strides(det) == _s(8, 16, 32)
    for scale, want in (("s", [128, 256, 512]), ("m", [192, 384, 576])):
        path = tmp_path / f"yolov8{scale}.yaml"
        shutil.copy(models / "v8" / "yolov8.yaml", path)
        got = load_ultralytics(path)
        assert got.extra["scale"] == scale and _channels(got) == want
        assert not any("assumed" in n for n in got.notes)
    # depth: n repeats C2f row 2 (3 * 0.33 -> 1) once, m (0.67) twice
    assert "model.2.m.0.add" in det.network.graph.nodes
    assert "model.2.m.1.add" not in det.network.graph.nodes
    assert "model.2.m.1.add" in got.network.graph.nodes


@pytest.mark.parametrize("rel, channels, strides, glob", [
    ("11/yolo11.yaml", [64, 128, 256], (8, 16, 32), True),
    ("12/yolo12.yaml", [64, 128, 256], (8, 16, 32), True),
    ("26/yolo26.yaml", [64, 128, 256], (8, 16, 32), True),
    ("v10/yolov10n.yaml", [64, 128, 256], (8, 16, 32), True),
    ("v10/yolov10s.yaml", [128, 256, 512], (8, 16, 32), True),
    ("v9/yolov9t.yaml", [64, 96, 128], (8, 16, 32), False),
    ("v9/yolov9c.yaml", [256, 512, 512], (8, 16, 32), False),
    ("v6/yolov6.yaml", [32, 64, 128], (8, 16, 32), False),
    ("v8/yolov8-p6.yaml", [64, 128, 192, 256], (8, 16, 32, 64), False),
    ("v8/yolov8-obb.yaml", [64, 128, 256], (8, 16, 32), False),
    ("rt-detr/rtdetr-l.yaml", [256, 256, 256], (8, 16, 32), True),
    ("rt-detr/rtdetr-resnet50.yaml", [256, 256, 256], (8, 16, 32), True),
])
def test_families_channels_strides_global(models, rel, channels, strides, glob):
    """Channels at the first scale read off each yaml by hand (v9t: no scales, widths as
    written; v6n: 128*0.25 = 32); attention families (PSA, C2PSA, A2C2f, AIFI, RT-DETR's
    decoder) flag every level global_context."""
    det = load_detector(models / rel)
    assert det.extra["format"] == "ultralytics"
    assert _channels(det) == channels and _strides(det) == _s(*strides)
    assert [lv.rf.global_context for lv in det.levels] == [glob] * len(strides)
    assert all(lv.center == "cell-center" and lv.center_offset == 0.5 for lv in det.levels)


def test_dfl_head_ranges_and_assigners(models):
    v8 = load_ultralytics(models / "v8" / "yolov8.yaml")
    p3 = v8.levels[0]
    assert p3.anchor_free and p3.extra["reg_max"] == 16 and p3.extra["side_reach"] == 120
    assert [lv.anchor_free_range for lv in v8.levels] == [(0, 240), (0, 480), (0, 960)]
    assert p3.assigner.kind == "task-aligned" and p3.extra["topk"] == 10
    assert not p3.extra["end2end"]
    assert [w.kernel for w in p3.head] == [(3, 3), (3, 3), (1, 1)]
    assert p3.head_rf.rf[0] == p3.rf.rf[0] + 4 * 8
    y26 = load_ultralytics(models / "26" / "yolo26.yaml")
    assert y26.extra["reg_max"] == 1 and y26.extra["end2end"]
    assert [lv.anchor_free_range for lv in y26.levels] == [(0, 640)] * 3
    assert y26.levels[0].extra["one2one"] == {"topk": 7, "topk2": 1}
    v10 = load_ultralytics(models / "v10" / "yolov10n.yaml")
    assert v10.extra["end2end"] and v10.extra["reg_max"] == 16
    detr = load_ultralytics(models / "rt-detr" / "rtdetr-l.yaml")
    assert detr.levels[0].assigner.kind == "hungarian"
    assert [lv.extra["proposal_box"] for lv in detr.levels] == [(32, 32), (64, 64), (128, 128)]


def test_yolov5u_equals_yolov5_reader(models, shipped_data, tmp_path):
    """Same network, two files: Ultralytics' yolov5.yaml at scale s and YOLOv5's yolov5s.yaml
    give identical strides, RF and centres per level (C3 bottlenecks are 1x1 then 3x3 in both)."""
    path = tmp_path / "yolov5s.yaml"
    shutil.copy(models / "v5" / "yolov5.yaml", path)
    new = load_ultralytics(path, (320, 320))
    old = load_yolov5(shipped_data / "configs" / "yolov5" / "models" / "yolov5s.yaml", (320, 320))
    assert [(lv.rf.stride, lv.rf.rf, lv.rf.center, lv.rf.aligned) for lv in new.levels] == \
        [(lv.rf.stride, lv.rf.rf, lv.rf.center, lv.rf.aligned) for lv in old.levels]
    assert _channels(new) == [128, 256, 512]


def test_yolov3u_differs_from_yolov5_hub_by_bottleneck_kernels(models, shipped_data):
    """yolov3-tiny has no Bottleneck: both readers give research §2.5's 286/318. YOLOv3u's
    Bottleneck is 3x3+3x3 where YOLOv5's is 1x1+3x3, so each one adds 2*stride to the RF:
    P5 gains 2*(1*2 + 2*4 + 8*8 + 8*16 + 4*32) in the backbone plus 2*32 for the head's one."""
    hub = shipped_data / "configs" / "yolov5" / "models" / "hub"
    tiny_u = load_ultralytics(models / "v3" / "yolov3-tiny.yaml", (416, 416))
    tiny_5 = load_yolov5(hub / "yolov3-tiny.yaml", (416, 416))
    assert [lv.rf.rf[0] for lv in tiny_u.levels] == [lv.rf.rf[0] for lv in tiny_5.levels] == \
        [286, 318]
    assert [lv.rf.center for lv in tiny_u.levels] == [lv.rf.center for lv in tiny_5.levels]
    v3u = load_ultralytics(models / "v3" / "yolov3.yaml", (608, 608))
    v35 = load_yolov5(hub / "yolov3.yaml", (608, 608))
    p5u = next(lv for lv in v3u.levels if lv.name == "P5")
    p55 = next(lv for lv in v35.levels if lv.name == "P5")
    assert p5u.rf.rf[0] - p55.rf.rf[0] == 2 * (1 * 2 + 2 * 4 + 8 * 8 + 8 * 16 + 4 * 32) + 2 * 32


@pytest.mark.slow
def test_full_yolov8n_matches_probe(models):
    """The whole YOLOv8n (C2f, SPPF, upsampled misaligned P3/P4) against the probe; 1280 px so
    some P5 cell's 1135-px RF fits inside the image."""
    det = load_ultralytics(models / "v8" / "yolov8.yaml", (1280, 1280))
    assert [lv.rf.rf[0] for lv in det.levels] == [879, 975, 1135]
    assert [lv.rf.aligned for lv in det.levels] == [False, False, False]
    checks = local_probe(det)
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}


HEAD = "nc: 2\nscales:\n  n: [1.0, 1.0, 64]\n"

#: Small nets that put each family's blocks behind stride-2 stems, with an upsample + concat so
#: one level is misaligned; RFs stay small enough for the probe at 256 px.
ZOO = {
    "v8_11_26": """
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, C2f, [16, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 2, C3k2, [32, False, 0.25]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, C3k2, [64, True]]
  - [-1, 1, SPPF, [64, 3, 3, True]]
  - [-1, 1, C2PSA, [64]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 3], 1, Concat, [1]]
  - [-1, 1, C3k2, [32, True, 0.5, True]]
  - [[10, 7], 1, Detect, [nc]]
""",
    "v9": """
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, ELAN1, [16, 16, 8]]
  - [-1, 1, AConv, [32]]
  - [-1, 1, RepNCSPELAN4, [32, 32, 16, 1]]
  - [-1, 1, ADown, [64]]
  - [-1, 1, SPPELAN, [64, 32]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 3], 1, Concat, [1]]
  - [[7, 5], 1, Detect, [nc]]
""",
    "v10": """
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, SCDown, [64, 3, 2]]
  - [-1, 1, C2fCIB, [64, True, True]]
  - [-1, 1, PSA, [64]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 1], 1, Concat, [1]]
  - [-1, 1, C2fCIB, [64, True]]
  - [[7, 4], 1, v10Detect, [nc]]
""",
    "v12_v6": """
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, A2C2f, [64, False, -1]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, A2C2f, [64, True, 4]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [-1, 1, nn.ConvTranspose2d, [64, 2, 2, 0]]
  - [[-1, 3], 1, Concat, [1]]
  - [-1, 1, A2C2f, [64, True, 1]]
  - [[7, 4], 1, Detect, [nc]]
""",
    "rtdetr": """
backbone:
  - [-1, 1, HGStem, [16, 32]]
  - [-1, 2, HGBlock, [16, 32, 3]]
  - [-1, 1, DWConv, [32, 3, 2, 1, False]]
  - [-1, 2, HGBlock, [16, 64, 5, True, False]]
  - [-1, 1, ResNetLayer, [64, 16, 2, False, 2]]
head:
  - [-1, 1, AIFI, [64, 2]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 3], 1, Concat, [1]]
  - [-1, 2, RepC3, [64]]
  - [[8, 5], 1, RTDETRDecoder, [nc]]
""",
    "resnet_stem": """
backbone:
  - [-1, 1, ResNetLayer, [3, 16, 1, True, 1]]
  - [-1, 1, ResNetLayer, [16, 16, 1, False, 2]]
  - [-1, 1, ResNetLayer, [64, 32, 2, False, 1]]
head:
  - [-1, 1, Bottleneck, [128]]
  - [[1, 3], 1, Detect, [nc]]
""",
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_block_zoo_matches_probe(tmp_path, name):
    """Every module builder (local part of attention blocks) agrees with the gradient probe on
    the torch module built from the same IR, including misaligned levels after upsampling."""
    det = load_ultralytics(write(tmp_path, f"{name}.yaml", HEAD + ZOO[name]), (256, 256))
    checks = local_probe(det)
    assert all(c.agree for c in checks.values()), {k: c.detail for k, c in checks.items()}
    assert any(not lv.rf.aligned for lv in det.levels) or name == "resnet_stem"


def test_block_geometry_by_hand(tmp_path):
    """RFs computed by hand for single blocks after a 3x3 s2 stem (RF 3, stride 2):
    ADown: avg 2 (+2) then 3x3 s2 (+4) -> 9; SCDown 3x3 s2: 3 + 4 = 7;
    RepVGGDW inside C2fCIB(lk): dw3 + dw7 + dw3 at stride 2 -> 3 + 2*(2 + 6 + 2) = 23;
    HGStem: 3x3 s2 (3), max 2 / 2x2,2x2 (+2*2), 3x3 s2 (+2*2) -> 11 at stride 4."""
    rows = {"ADown": "[-1, 1, ADown, [16]]", "SCDown": "[-1, 1, SCDown, [16, 3, 2]]",
            "C2fCIB": "[-1, 1, C2fCIB, [16, True, True]]"}
    want = {"ADown": (9, 4), "SCDown": (7, 4), "C2fCIB": (23, 2)}
    for name, row in rows.items():
        body = (f"backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - {row}\n"
                "head:\n  - [[1], 1, Detect, [nc]]\n")
        det = load_ultralytics(write(tmp_path, f"{name}.yaml", HEAD + body), (64, 64))
        assert (det.levels[0].rf.rf[0], det.levels[0].rf.stride[0]) == want[name], name
    body = "backbone:\n  - [-1, 1, HGStem, [16, 32]]\nhead:\n  - [[0], 1, Detect, [nc]]\n"
    det = load_ultralytics(write(tmp_path, "stem.yaml", HEAD + body), (64, 64))
    assert (det.levels[0].rf.rf[0], det.levels[0].rf.stride[0]) == (11, 4)


def test_messages(tmp_path, run_cli, shipped_data):
    bad = write(tmp_path, "yolo-bad.yaml", HEAD + "backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n"
                "  - [-1, 1, Frobnicate, [16]]\nhead:\n  - [[1], 1, Detect, [nc]]\n")
    code, out, err = run_cli("rf", str(bad))
    assert code == 2 and out == "" and f"{bad}:6:" in err and "unknown module 'Frobnicate'" in err
    seg = write(tmp_path, "yolo-seg.yaml", HEAD + "backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n"
                "head:\n  - [[0], 1, Segment, [nc, 32, 64]]\n")
    code, _, err = run_cli("rf", str(seg))
    assert code == 2 and "a segmentation model, not a detector" in err
    code, _, err = run_cli("rf", str(shipped_data / "configs" / "ultralytics" / "datasets" /
                                     "coco8.yaml"))
    assert code == 2 and "an Ultralytics dataset file, not a model" in err
    # YOLOv5's own files keep their reader
    det = load_detector(shipped_data / "configs" / "yolov5" / "models" / "yolov5s.yaml")
    assert det.extra["format"] == "yolov5"
    # and the YOLOv5 entry point hands the package's yamls to their reader
    assert load_yolov5(shipped_data / "configs" / "ultralytics" / "models" / "v8" /
                       "yolov8.yaml").extra["format"] == "ultralytics"
