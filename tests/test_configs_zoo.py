"""The config zoo (packaged in anchorfit/configs/): every file loads, cites its source, and
reproduces the published / researched numbers exactly (RF checked against the probe)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest

from anchorfit.formats import builtin_names, load_detector
from probe_helpers import assert_probe_agrees

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "anchorfit" / "configs"
ZOO = sorted(PACKAGED.glob("*.yaml"))


def test_zoo_has_the_promised_detectors() -> None:
    names = {p.stem for p in ZOO}
    assert {"s3fd", "ssd300_vgg16", "ssd300_vgg16_coco", "ssd512", "faceboxes", "yolov3",
            "yolov3-tiny", "retinanet_r50_fpn", "faster_rcnn_r50_fpn", "fcos_r50_fpn"} <= names


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_zoo_file_loads_and_cites(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#"), "each config opens with a comment saying where it comes from"
    assert "\nsource:" in text
    det = load_detector(path)
    assert det.levels and all(lv.rf is not None for lv in det.levels)
    assert det.network.kind == "detector"


def test_packaged_zoo_has_nothing_extra() -> None:
    assert sorted(builtin_names()) == sorted(p.stem for p in ZOO)


def _column(det, attr):
    return [getattr(lv.rf, attr)[0] if attr != "head_rf" else lv.head_rf.rf[0]
            for lv in det.levels]


def test_s3fd_table1() -> None:
    det = load_detector("s3fd")  # the builtin name resolves to the packaged file
    assert det.input_size == (640, 640)
    assert [lv.rf.stride for lv in det.levels] == [(s, s) for s in (4, 8, 16, 32, 64, 128)]
    assert [(a.w, a.h) for lv in det.levels for a in lv.anchors] == [
        (s, s) for s in (16, 32, 64, 128, 256, 512)]
    assert [lv.head_rf.rf for lv in det.levels] == [(r, r) for r in (48, 108, 228, 340, 468, 724)]
    assert [lv.rf.rf for lv in det.levels] == [(r, r) for r in (40, 92, 196, 276, 340, 468)]
    assert det.levels[3].rf.center == (Fraction(-97, 2),) * 2  # fc6 pad 3: two cells off
    assert all(lv.assigner.pos_iou == 0.35 for lv in det.levels)


def test_ssd300_numbers_and_variants() -> None:
    voc = load_detector(PACKAGED / "ssd300_vgg16.yaml")
    assert [lv.rf.rf[0] for lv in voc.levels] == [92, 420, 452, 516, 644, 772]
    assert [lv.rf.stride[0] for lv in voc.levels] == [8, 16, 32, 64, 64, 64]
    assert [lv.rf.padding[0] for lv in voc.levels] == [42, 202, 218, 250, 250, 250]
    assert [lv.rf.center[0] for lv in voc.levels] == [Fraction(7, 2), Fraction(15, 2),
                                                      Fraction(15, 2), Fraction(15, 2),
                                                      Fraction(143, 2), Fraction(271, 2)]
    assert [lv.head_rf.rf[0] for lv in voc.levels] == [108, 452, 516, 644, 772, 900]
    assert [lv.rf.feature_size[0] for lv in voc.levels] == [38, 19, 10, 5, 3, 1]
    assert [lv.step[0] for lv in voc.levels] == [8, 16, 32, 64, 100, 300]
    assert [len(lv.anchors) for lv in voc.levels] == [4, 6, 6, 6, 4, 4]
    total = sum(len(lv.anchors) * lv.rf.feature_size[0] ** 2 for lv in voc.levels)
    assert total == 8732
    assert [lv.anchors[0].w for lv in voc.levels] == [30, 60, 111, 162, 213, 264]
    assert voc.levels[0].anchors[1].w == pytest.approx(math.sqrt(30 * 60))
    coco = load_detector(PACKAGED / "ssd300_vgg16_coco.yaml")
    assert [lv.anchors[0].w for lv in coco.levels] == [21, 45, 99, 153, 207, 261]
    assert [lv.rf.rf for lv in coco.levels] == [lv.rf.rf for lv in voc.levels]


def test_ssd512_maps() -> None:
    det = load_detector(PACKAGED / "ssd512.yaml")
    assert [lv.rf.feature_size[0] for lv in det.levels] == [64, 32, 16, 8, 4, 2, 1]
    assert [lv.anchors[0].w for lv in det.levels] == [35.84, 76.8, 153.6, 230.4, 307.2, 384.0,
                                                      460.8]


def test_faceboxes_rf_and_densification() -> None:
    det = load_detector(PACKAGED / "faceboxes.yaml")
    assert det.input_size == (1024, 1024)
    assert [(lv.rf.rf[0], lv.rf.stride[0], lv.rf.padding[0], lv.rf.center[0])
            for lv in det.levels] == [(463, 32, 231, 0), (527, 64, 263, 0), (655, 128, 327, 0)]
    inc = det.levels[0]
    assert inc.center == "explicit"
    assert [len(a.offsets) for a in inc.anchors] == [16, 4, 1]
    assert sum(len(a.offsets) for a in inc.anchors) == 21
    assert {o[1] for o in inc.anchors[0].offsets} == {0, 0.25, 0.5, 0.75}
    assert inc.anchors[2].offsets == ((0.5, 0.5),)


def test_yolov3_tiny_gold() -> None:
    det = load_detector(PACKAGED / "yolov3-tiny.yaml")
    p5, p4 = det.levels
    assert (p5.rf.rf[0], p5.rf.center[0], p5.rf.aligned) == (318, Fraction(63, 2), True)
    assert p4.rf.rf[0] == 286 and not p4.rf.aligned
    # centre of cell i minus i*S alternates 15.5 / 31.5 (nearest 2x upsampling)
    assert [c - 16 * i for i, c in enumerate(p4.rf.y.centers())] == [Fraction(31, 2),
                                                                     Fraction(63, 2)]


def test_anchor_generators_of_the_fpn_configs() -> None:
    retina = load_detector(PACKAGED / "retinanet_r50_fpn.yaml")
    sizes = [math.sqrt(a.w * a.h) for a in retina.levels[0].anchors[::3]]
    assert sizes == pytest.approx([32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)])
    assert len(retina.levels[0].anchors) == 9
    assert [lv.rf.stride[0] for lv in retina.levels] == [8, 16, 32, 64, 128]
    assert all(lv.center == "top-left" and lv.center_offset == 0 for lv in retina.levels)
    assert retina.levels[0].anchors[0].h / retina.levels[0].anchors[0].w == pytest.approx(0.5)
    frcnn = load_detector(PACKAGED / "faster_rcnn_r50_fpn.yaml")
    assert [lv.anchors[1].w for lv in frcnn.levels] == [32, 64, 128, 256, 512]
    assert [lv.rf.stride[0] for lv in frcnn.levels] == [4, 8, 16, 32, 64]
    assert frcnn.resize_policy == "shortside" and frcnn.resize_params == {"short": 800,
                                                                         "max": 1333}
    fcos = load_detector(PACKAGED / "fcos_r50_fpn.yaml")
    assert all(lv.anchor_free for lv in fcos.levels)
    assert fcos.levels[0].anchor_free_range == (0, 64)
    assert fcos.levels[-1].anchor_free_range == (512, math.inf)


def test_torchvision_style_r50_matches_torchvision_backbone() -> None:
    """Our hand-written ResNet-50 + FPN has the RFs torchvision's traced RetinaNet has."""
    pytest.importorskip("torchvision")
    from anchorfit import load as models

    tv = models.load("torchvision:retinanet_resnet50_fpn")
    analysis = tv.analyze()
    ours = load_detector(PACKAGED / "fcos_r50_fpn.yaml")  # P6/P7 on P5, like torchvision
    for layer, level in zip(tv.default_layers, ours.levels):
        theirs = analysis[tv.node(layer)]
        assert (theirs.rf, theirs.stride, theirs.center) == (level.rf.rf, level.rf.stride,
                                                            level.rf.center)


@pytest.mark.parametrize("name,size", [("s3fd", None), ("ssd300_vgg16", (832, 832)),
                                       ("faceboxes", None), ("yolov3-tiny", None)])
def test_rf_matches_gradient_probe(name: str, size: tuple[int, int] | None) -> None:
    """Traced torch build == IR, and the probe agrees, on every level (SSD300 at 832 so that
    cells of the 772-px conv11_2 fit inside the image)."""
    assert_probe_agrees(load_detector(name, size), size)
