"""Exports write anchors back in each format, change nothing else, and never clobber by default."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.design.export import (export_darknet, export_mmdet, export_torchvision,
                                     export_yolov5, write_export)

NEW3 = [[(12, 15), (20, 33), (35, 25)], [(40, 70), (70, 50), (65, 130)],
        [(120, 95), (160, 200), (380, 330)]]


def test_darknet_yolov3_rewrites_anchors_masks_filters(shipped_data):
    text = (shipped_data / "configs/darknet/pjreddie/yolov3.cfg").read_text()
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


def test_darknet_filters_follow_mask_size(shipped_data):
    text = (shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg").read_text()
    out = export_darknet(text, [[(10, 14), (23, 27)], [(37, 58), (81, 82), (135, 169),
                                                        (344, 319)]])
    assert re.findall(r"^mask\s*=\s*(.*)$", out, re.M) == ["2,3,4,5", "0,1"]
    before_yolo = re.findall(r"^filters=(\d+)\n(?:(?!\[)[^\n]*\n)*\n*\[yolo\]", out, re.M)
    assert before_yolo == ["340", "170"]  # (80 + 5) x 4 and x 2
    assert re.findall(r"^num=(\d+)$", out, re.M) == ["6", "6"]


def test_darknet_level_count_mismatch(shipped_data):
    text = (shipped_data / "configs/darknet/pjreddie/yolov3.cfg").read_text()
    with pytest.raises(FormatError, match="3 \\[yolo\\] heads but 2"):
        export_darknet(text, NEW3[:2], source="yolov3.cfg")


def test_yolov5_anchor_block(shipped_data):
    text = (shipped_data / "configs/yolov5/models/yolov5s.yaml").read_text()
    out = export_yolov5(text, NEW3)
    import yaml

    data = yaml.safe_load(out)
    assert data["anchors"] == [[12, 15, 20, 33, 35, 25], [40, 70, 70, 50, 65, 130],
                               [120, 95, 160, 200, 380, 330]]
    assert data["backbone"] == yaml.safe_load(text)["backbone"]
    assert data["head"] == yaml.safe_load(text)["head"]
    assert "# Parameters" in out  # comments kept


def test_yolov5_bare_count(shipped_data):
    text = (shipped_data / "configs/yolov5/models/hub/yolov5s6.yaml").read_text()
    out = export_yolov5(text, NEW3 + [[(400, 400), (500, 420), (600, 600)]])
    import yaml

    assert len(yaml.safe_load(out)["anchors"]) == 4


def test_mmdet_configs():
    yolo = export_mmdet("configs/yolo/yolov3_d53.py", NEW3, [8, 16, 32],
                        base_ref="./yolov3_d53.py")
    assert "_base_ = './yolov3_d53.py'" in yolo
    assert "type='YOLOAnchorGenerator'" in yolo and "[(12, 15), (20, 33), (35, 25)]" in yolo
    assert "_delete_=True" in yolo
    squares = [[(4 * s, 4 * s)] for s in (8, 16, 32, 64, 128)]
    retina = export_mmdet("retinanet.py", squares, [8, 16, 32, 64, 128])
    assert "type='AnchorGenerator', scales=[4], ratios=[1]" in retina
    ns: dict = {}
    exec(retina, ns)  # the override parses as Python
    gen = ns["model"]["bbox_head"]["anchor_generator"]
    assert gen["strides"] == [8, 16, 32, 64, 128] and gen["_delete_"] is True
    # without a target folder the base is absolute, so the text loads from anywhere
    assert ns["_base_"] == str(Path("retinanet.py").resolve().as_posix())


def test_torchvision_snippet():
    text = export_torchvision([[(32, 32)], [(64, 32), (32, 64)]])
    # 45 px at ratios 0.5 and 2 gives 64 x 32 and 32 x 64 once torchvision rounds the corners
    assert "sizes=((32.0,), (45.0,))" in text and "aspect_ratios=((1.0,), (0.5, 2.0))" in text


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
#
# Every export goes to a *different* folder than the config it came from (both copied from
# tests/data into tmp_path), is read back with anchorfit's reader for that format, and must give
# the same anchors (as a multiset per level, to the pixel) and the same anchor centres.


def _anchors(det):
    return [sorted((round(a.w), round(a.h)) for a in lv.anchors) for lv in det.levels]


def _new_anchors(det):
    """Distinct anchors per level that grow with stride (the YOLOv5 reader re-orders levels by
    anchor area), not a scales x ratios grid (so generators that tile grids must not be used)."""
    new = [[(11 + 7 * i + j, 13 + 9 * i + 2 * j) for j in range(len(lv.anchors))]
           for i, lv in enumerate(det.levels)]
    order = sorted(range(len(det.levels)), key=lambda i: float(max(det.levels[i].true_stride())))
    return [new[order.index(i)] for i in range(len(det.levels))]


def _copy_config(shipped_data, tmp_path, source: str) -> Path:
    """The config's folder tree copied into tmp_path/src (mmdet needs its _base_ files)."""
    if source.startswith("configs/"):  # an anchorfit spec shipped in the repository
        src = Path(__file__).resolve().parents[1] / "anchorfit" / "configs"
        shutil.copytree(src, tmp_path / "src" / "configs")
        return tmp_path / "src" / source
    top = source.split("/")[0]
    shutil.copytree(shipped_data / "configs" / top, tmp_path / "src" / top)
    return tmp_path / "src" / source


def _reload_check(det, again, new):
    assert _anchors(again) == [sorted(tuple(a) for a in lv) for lv in new]
    assert [lv.true_stride() for lv in again.levels] == [lv.true_stride() for lv in det.levels]
    assert [lv.center_offset for lv in again.levels] == [lv.center_offset for lv in det.levels]


@pytest.mark.parametrize("source", [
    "configs/yolov3.yaml",                                      # anchorfit spec
    "configs/ssd300_vgg16_coco.yaml",                           # spec inheriting through base:
    "darknet/pjreddie/yolov3.cfg",                              # Darknet, coarse head first
    "darknet/pjreddie/yolov3-tiny.cfg",
    "yolov5/models/yolov5s.yaml",                               # YOLOv5
    "mmdet/yolo/yolov3_d53_8xb8-ms-416-273e_coco.py",           # mmdet, YOLOAnchorGenerator
])
def test_exports_reload_from_another_folder(shipped_data, tmp_path, source):
    from anchorfit.design.export import save_export
    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, source)
    det = load_detector(str(path))
    new = _new_anchors(det)
    if source.endswith("ssd300_vgg16_coco.yaml"):
        new = [[(7 * i + 20 + j, 9 * i + 21 + 2 * j) for j in range(len(lv.anchors))]
               for i, lv in enumerate(det.levels)]
    (tmp_path / "out" / "deeper").mkdir(parents=True)
    out, written = save_export(det, new, target=tmp_path / "out" / "deeper" /
                               f"exported{path.suffix}")
    assert not out.changes_centers and out.notes == []
    again = load_detector(str(written))
    _reload_check(det, again, new)


@pytest.mark.parametrize("source", [
    "configs/yolov3.yaml",
    "darknet/pjreddie/yolov3.cfg",
    "yolov5/models/yolov5s.yaml",
    "mmdet/yolo/yolov3_d53_8xb8-ms-416-273e_coco.py",
    "mmdet/retinanet/retinanet_r50_fpn_1x_coco.py",
    "caffe/ssd300_vgg_voc0712/deploy.prototxt",
])
def test_in_place_export_loads_and_keeps_a_backup(shipped_data, tmp_path, source):
    from anchorfit.design.export import save_export
    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, source)
    before = path.read_text()
    det = load_detector(str(path))
    new = [[(a.w * 1.25, a.h * 1.25) for a in lv.anchors] for lv in det.levels]
    out, written = save_export(det, new, in_place=True)
    assert written == path
    again = load_detector(str(path))
    assert _anchors(again) == [sorted((round(w), round(h)) for w, h in lv) for lv in new]
    assert [lv.center_offset for lv in again.levels] == [lv.center_offset for lv in det.levels]
    backup = out.backup or path.with_name(path.name + ".bak")
    assert backup.read_text() == before
    # a second in-place export keeps every earlier version: the first backup still holds the
    # original (an mmdet override keeps inheriting it), and the file the second export replaced
    # is kept under the next number (FILE.bak.1; mmdet NAME.bak.1.py, which loads: it inherits
    # the original too)
    first = path.read_text()
    save_export(again, new, in_place=True)
    assert backup.read_text() == before
    second = (path.with_name(path.stem + ".bak.1.py") if out.backup
              else path.with_name(path.name + ".bak.1"))
    assert second.read_text() == first
    assert _anchors(load_detector(str(path))) == _anchors(again)
    if out.backup:
        assert _anchors(load_detector(str(second))) == _anchors(again)


def test_mmdet_retinanet_grid_keeps_anchor_generator_and_top_left_centres(shipped_data,
                                                                          tmp_path):
    """RetinaNet's own anchors scaled x2 are still an octave x ratio grid: the export stays an
    AnchorGenerator (centres at i*S, as the detector has them) and replaces the old generator
    whole: no octave_base_scale/scales_per_octave merged next to the new scales."""
    from anchorfit.design.export import save_export
    from anchorfit.formats.mmdet import load_config
    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, "mmdet/retinanet/retinanet_r50_fpn_1x_coco.py")
    det = load_detector(str(path))
    new = [[(2 * a.w, 2 * a.h) for a in lv.anchors] for lv in det.levels]
    out, written = save_export(det, new, target=tmp_path / "retina_x2.py")
    assert "type='AnchorGenerator'" in out.text and not out.changes_centers
    assert "_base_ = './src/mmdet/retinanet/retinanet_r50_fpn_1x_coco.py'" in out.text
    gen = load_config(written).data["model"]["bbox_head"]["anchor_generator"]
    assert "octave_base_scale" not in gen and "scales_per_octave" not in gen
    again = load_detector(str(written))
    assert [sorted((round(a.w, 1), round(a.h, 1)) for a in lv.anchors) for lv in again.levels] \
        == [sorted((round(w, 1), round(h, 1)) for w, h in lv) for lv in new]
    assert [lv.center_offset for lv in again.levels] == [0.0] * 5


def test_mmdet_non_grid_anchors_say_and_score_the_moved_centres(shipped_data, tmp_path):
    """k-means-like anchors do not fit AnchorGenerator: the export switches to
    YOLOAnchorGenerator, says that centres move from i*S to (i+0.5)*S, and the re-read detector
    has them there; the generator's old keys are gone."""
    from anchorfit.design.export import save_export
    from anchorfit.formats.mmdet import load_config
    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, "mmdet/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py")
    det = load_detector(str(path))
    assert [lv.center_offset for lv in det.levels] == [0.0] * 5
    new = _new_anchors(det)
    out, written = save_export(det, new, target=tmp_path / "elsewhere.py")
    assert out.changes_centers and out.center_offsets == [0.5] * 5
    assert "i*S to (i+0.5)*S" in out.notes[0]
    gen = load_config(written).data["model"]["rpn_head"]["anchor_generator"]
    assert set(gen) == {"type", "base_sizes", "strides"}
    again = load_detector(str(written))
    assert _anchors(again) == [sorted(tuple(a) for a in lv) for lv in new]
    assert [lv.center_offset for lv in again.levels] == [0.5] * 5


def test_caffe_prototxt_export_reloads_and_refuses_non_grids(shipped_data, tmp_path):
    from anchorfit.design.export import save_export
    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, "caffe/ssd300_vgg_voc0712/deploy.prototxt")
    det = load_detector(str(path))
    # SSD's own boxes with every size x 1.5: min_size, max_size and ratios survive
    new = [[(1.5 * a.w, 1.5 * a.h) for a in lv.anchors] for lv in det.levels]
    out, written = save_export(det, new, target=tmp_path / "other" / "ssd.prototxt") \
        if (tmp_path / "other").mkdir() is None else (None, None)
    again = load_detector(str(written))
    assert [sorted((round(a.w), round(a.h)) for a in lv.anchors) for lv in again.levels] == \
        [sorted((round(w), round(h)) for w, h in lv) for lv in new]
    assert [lv.center_offset for lv in again.levels] == [lv.center_offset for lv in det.levels]
    assert [lv.step for lv in again.levels] == [lv.step for lv in det.levels]
    with pytest.raises(AnchorfitError, match="not min_size x aspect_ratio"):
        save_export(det, _new_anchors(det), target=tmp_path / "bad.prototxt")


@pytest.mark.parametrize("grid", [True, False])
def test_torchvision_snippet_builds_the_same_cell_anchors(grid):
    """The snippet, run with torchvision, gives a generator whose cell anchors (what it tiles at
    i*stride) are the exported anchors, for grids and for arbitrary sets."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from anchorfit.design.export import export_torchvision

    anchors = ([[(32, 32), (46, 22), (22, 46)], [(64, 64), (90, 46), (46, 90)]] if grid else
               [[(12, 15), (20, 33), (35, 25)], [(40, 70), (70, 50), (65, 131)]])
    text = export_torchvision(anchors)
    assert ("ANCHORS = " in text) is not grid
    ns: dict = {}
    exec(text, ns)
    gen = ns["anchor_generator"]
    assert gen.num_anchors_per_location() == [3, 3]
    got = [sorted((round(float(x2 - x1)), round(float(y2 - y1))) for x1, y1, x2, y2 in c.tolist())
           for c in gen.cell_anchors]
    want = [sorted(lv) for lv in anchors]
    if grid:  # torchvision rounds grid corners to integers: within a pixel
        assert all(abs(a - c) <= 1 and abs(b - d) <= 1
                   for g, w in zip(got, want) for (a, b), (c, d) in zip(g, w))
    else:
        assert got == want
        assert all(torch.allclose(c.reshape(-1, 2, 2).mean(1), torch.zeros(3, 2))
                   for c in gen.cell_anchors)  # centred on the cell origin (i * stride)


def test_compare_cli_mmdet_export_from_another_folder_scores_moved_centres(run_cli, shipped_data,
                                                                           tmp_path):
    """``compare --export k-means --export-to`` on an mmdet AnchorGenerator config (centres at
    i*S): the file written elsewhere loads with the k-means anchors, the notes say the centres
    move, and the table gains the set scored with the exported centres."""
    import json

    from anchorfit.load import load_detector

    path = _copy_config(shipped_data, tmp_path, "mmdet/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py")
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "fitted.py"
    code, out, err = run_cli("compare", str(path), "--boxes", str(ann), "--restarts", "1",
                             "--export", "k-means", "--export-to", str(target), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    jsonschema = pytest.importorskip("jsonschema")
    from anchorfit.schemas import load_schema

    jsonschema.validate(data, load_schema("compare"))
    names = [s["name"] for s in data["sets"]]
    assert "k-means (as exported)" in names
    kmeans = next(s for s in data["sets"] if s["name"] == "k-means")
    exported = next(s for s in data["sets"] if s["name"] == "k-means (as exported)")
    assert exported["anchors"] == kmeans["anchors"]
    assert any("i*S to (i+0.5)*S" in n for n in data["notes"])
    again = load_detector(str(target))
    want = [sorted((w, h) for w, h in lv) for lv in kmeans["anchors"]]  # 2 decimals in JSON
    assert all(abs(a - w) <= 0.5 and abs(b - h) <= 0.5
               for g, v in zip(_anchors(again), want) for (a, b), (w, h) in zip(g, v))
    assert [len(g) for g in _anchors(again)] == [len(v) for v in want]
    assert [lv.center_offset for lv in again.levels] == [0.5] * 5
