"""Exports write anchors back in each format, change nothing else, and never clobber by default."""

from __future__ import annotations

import re

import pytest

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.export import (export_darknet, export_mmdet, export_torchvision, export_yolov5,
                              write_export)

NEW3 = [[(12, 15), (20, 33), (35, 25)], [(40, 70), (70, 50), (65, 130)],
        [(120, 95), (160, 200), (380, 330)]]


def test_darknet_yolov3_rewrites_anchors_masks_filters(shared_data):
    text = (shared_data / "configs/darknet/pjreddie/yolov3.cfg").read_text()
    out = export_darknet(text, NEW3)
    anchors = re.findall(r"^anchors\s*=\s*(.*)$", out, re.M)
    assert len(anchors) == 3 and len(set(anchors)) == 1
    assert anchors[0].replace(" ", "") == ("12,15,20,33,35,25,40,70,70,50,65,130,120,95,"
                                           "160,200,380,330")
    # the file lists the stride-32 head first
    assert re.findall(r"^mask\s*=\s*(.*)$", out, re.M) == ["6,7,8", "3,4,5", "0,1,2"]
    assert re.findall(r"^filters=(\d+)$", out, re.M).count("255") == 3
    changed = [(a, b) for a, b in zip(text.splitlines(), out.splitlines()) if a != b]
    assert all(a.split("=")[0].strip() in ("anchors", "mask", "num", "filters")
               for a, _ in changed)
    assert len(text.splitlines()) == len(out.splitlines())


def test_darknet_filters_follow_mask_size(shared_data):
    text = (shared_data / "configs/darknet/pjreddie/yolov3-tiny.cfg").read_text()
    out = export_darknet(text, [[(10, 14), (23, 27)], [(37, 58), (81, 82), (135, 169),
                                                        (344, 319)]])
    assert re.findall(r"^mask\s*=\s*(.*)$", out, re.M) == ["2,3,4,5", "0,1"]
    before_yolo = re.findall(r"^filters=(\d+)\n(?:(?!\[)[^\n]*\n)*\n*\[yolo\]", out, re.M)
    assert before_yolo == ["340", "170"]  # (80 + 5) x 4 and x 2
    assert re.findall(r"^num=(\d+)$", out, re.M) == ["6", "6"]


def test_darknet_level_count_mismatch(shared_data):
    text = (shared_data / "configs/darknet/pjreddie/yolov3.cfg").read_text()
    with pytest.raises(FormatError, match="3 \\[yolo\\] heads but 2"):
        export_darknet(text, NEW3[:2], source="yolov3.cfg")


def test_yolov5_anchor_block(shared_data):
    text = (shared_data / "configs/yolov5/models/yolov5s.yaml").read_text()
    out = export_yolov5(text, NEW3)
    import yaml

    data = yaml.safe_load(out)
    assert data["anchors"] == [[12, 15, 20, 33, 35, 25], [40, 70, 70, 50, 65, 130],
                               [120, 95, 160, 200, 380, 330]]
    assert data["backbone"] == yaml.safe_load(text)["backbone"]
    assert data["head"] == yaml.safe_load(text)["head"]
    assert "# Parameters" in out  # comments kept


def test_yolov5_bare_count(shared_data):
    text = (shared_data / "configs/yolov5/models/hub/yolov5s6.yaml").read_text()
    out = export_yolov5(text, NEW3 + [[(400, 400), (500, 420), (600, 600)]])
    import yaml

    assert len(yaml.safe_load(out)["anchors"]) == 4


def test_mmdet_configs():
    yolo = export_mmdet("configs/yolo/yolov3_d53.py", NEW3, [8, 16, 32])
    assert "_base_ = './yolov3_d53.py'" in yolo
    assert "type='YOLOAnchorGenerator'" in yolo and "[(12, 15), (20, 33), (35, 25)]" in yolo
    squares = [[(4 * s, 4 * s)] for s in (8, 16, 32, 64, 128)]
    retina = export_mmdet("retinanet.py", squares, [8, 16, 32, 64, 128])
    assert "type='AnchorGenerator', scales=[4], ratios=[1]" in retina
    ns: dict = {}
    exec(retina.split("\n", 2)[2], ns)  # the override parses as Python (without _base_)
    assert ns["model"]["bbox_head"]["anchor_generator"]["strides"] == [8, 16, 32, 64, 128]


def test_torchvision_snippet():
    text = export_torchvision([[(32, 32)], [(64, 32), (32, 64)]])
    assert "sizes=((32.0,), (45.3,))" in text and "aspect_ratios=((1.0,), (0.5, 2.0))" in text


def test_write_export_never_overwrites_without_in_place(tmp_path):
    original = tmp_path / "model.cfg"
    original.write_text("old\n")
    with pytest.raises(AnchorfitError, match="--in-place"):
        write_export(original, "new\n", original=original)
    assert original.read_text() == "old\n"
    write_export(original, "new\n", in_place=True, original=original)
    assert original.read_text() == "new\n"
    assert (tmp_path / "model.cfg.bak").read_text() == "old\n"


# --------------------------------------------------------------------------- round trips


def _anchors(det):
    return [[(round(a.w), round(a.h)) for a in lv.anchors] for lv in det.levels]


@pytest.mark.parametrize("source", [
    "configs/yolov3.yaml",                                      # anchorfit spec
    "darknet/pjreddie/yolov3.cfg",                              # Darknet, coarse head first
    "darknet/pjreddie/yolov3-tiny.cfg",
    "yolov5/models/yolov5s.yaml",                               # YOLOv5
    "mmdet/yolo/yolov3_d53_8xb8-ms-416-273e_coco.py",           # mmdet override config
])
def test_exports_reload_with_the_same_anchors(shared_data, tmp_path, source):
    from anchorfit.export import export_for
    from anchorfit.models import load_detector

    path = source if source.startswith("configs/") else str(shared_data / "configs" / source)
    det = load_detector(path)
    new = [[(11 + 7 * i + j, 13 + 9 * i + 2 * j) for j in range(len(lv.anchors))]
           for i, lv in enumerate(det.levels)]
    # anchors must grow with stride for the YOLOv5 reader not to flip them
    order = sorted(range(len(det.levels)), key=lambda i: float(max(det.levels[i].true_stride())))
    new = [new[order.index(i)] for i in range(len(det.levels))]
    fmt, text = export_for(det, new)
    suffix = ".py" if fmt == "mmdet" else (".cfg" if fmt == "darknet" else ".yaml")
    out = (tmp_path / "exported").with_suffix(suffix)
    if fmt == "mmdet":  # the override inherits the original through _base_: put it beside it
        import shutil

        src_dir = tmp_path / "cfg"
        shutil.copytree(shared_data / "configs" / "mmdet", src_dir)
        out = src_dir / "yolo" / "exported.py"
    out.write_text(text)
    again = load_detector(str(out))
    assert _anchors(again) == [[tuple(a) for a in lv] for lv in new]
    assert [lv.true_stride() for lv in again.levels] == [lv.true_stride() for lv in det.levels]
