"""Every reader on real annotation files (shipped in tests/data, or from ../shared/data for WIDER
FACE and FDDB, which cannot be shipped), counts from SOURCES.md."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from anchorfit.data import detect_format, read_annotations, validate
from anchorfit.data.fddb import ellipse_box
from anchorfit.data.imagesize import image_size
from anchorfit.data.sizes import load_sizes
from anchorfit.errors import AnchorfitError, FormatError

A = "annotations"

#: WIDER FACE and FDDB cannot be shipped (tests/data/SOURCES.md): their counts are checked by the
#: WIDER and FDDB tests below, which read ../shared/data and skip without it
UNSHIPPABLE_COUNTS = [
    ("wider_face/wider_face_train_bbx_gt.txt", "wider", 12880, 159420),
    ("wider_face/wider_face_val_bbx_gt.txt", "wider", 3226, 39708),
    ("fddb/FDDB_annotation_ellipseList_new.txt", "fddb", 2845, 5409),
]
COUNTS = [  # path, format, images, boxes (SOURCES.md "verified box counts")
    ("coco128_yolo/labels/train2017", "yolo", 128, 941),
    ("coco128_yolo/labels/val2017", "yolo", 128, 898),
    ("voc2012_subset100/yolo/obj_train_data", "yolo", 100, 273),
    ("coco2014_val_sample100/sampled_gts_bbox_area.json", "coco", 100, 830),
    ("voc2012_subset100/coco_json/instances_default.json", "coco", 100, 273),
    ("voc2012_subset100/pascalvoc_xml", "voc", 100, 273),
    ("raccoon/annotations", "voc", 200, 217),
    ("raccoon/raccoon_labels.csv", "csv", 200, 217),
    ("raccoon/train_labels.csv", "csv", 160, 173),
    ("raccoon/test_labels.csv", "csv", 40, 44),
    ("voc2012_subset100/openimages_csv/all_bounding_boxes.csv", "csv", 100, 273),
    ("voc2012_subset100/cvat_xml/annotations.xml", "cvat", 100, 273),
]


def _check_counts(path, fmt: str, images: int, boxes: int):
    assert detect_format(path) == fmt
    b = read_annotations(path)
    assert (b.n_images, len(b)) == (images, boxes)
    return b


@pytest.mark.parametrize("rel, fmt, images, boxes", COUNTS)
def test_counts_match_sources(shipped_data, rel, fmt, images, boxes):
    _check_counts(shipped_data / A / rel, fmt, images, boxes)


def test_coco_iscrowd_skipped_and_counted(shipped_data):
    path = shipped_data / A / "coco128_cocojson/instances_train2017.json"
    b = read_annotations(path)
    assert len(b) == 929 and b.skipped == {"iscrowd": 10}
    assert len(read_annotations(path, include_crowd=True)) == 939


def test_wider_face_counts_quirks_and_image_sizes(shared_wider):
    """Everything about the real WIDER FACE files in one test: they cannot be shipped, so a clone
    without ../shared/data skips this one test (counts, W2 zero-size quirks, W3 size subset)."""
    train, val = (_check_counts(shared_wider / A / rel, *counts)
                  for rel, *counts in UNSHIPPABLE_COUNTS if rel.startswith("wider_face"))
    # W2: 27 train and 11 val boxes with w or h = 0; the val count includes 4 placeholders
    assert int(((train.w == 0) | (train.h == 0)).sum()) == 27
    assert int(((val.w == 0) | (val.h == 0)).sum()) == 11
    assert int(train.flagged.sum()) == 2399 and int(val.flagged.sum()) == 585
    kept, rep = validate(val)
    assert rep.dropped["zero_size"] == 11 and len(kept) == 39708 - 11 - rep.dropped.get(
        "duplicate", 0)
    # W3: the image sizes of a subset of the train images
    wider = shared_wider / A / "wider_face"
    b = read_annotations(wider / "wider_face_train_bbx_gt.txt",
                         image_sizes=wider / "wider_train_image_sizes_subset.csv")
    known = np.isfinite(b.image_width)
    assert int(known.sum()) == 2102
    assert int(known[b.image].sum()) == 57739  # W3: all GT boxes of those images
    assert set(b.image_width[known]) == {1024.0}


def test_voc_difficult_kept(shipped_data):
    b = read_annotations(shipped_data / A / "voc2012_subset100/pascalvoc_xml")
    assert int(b.difficult.sum()) == 38 and len(b) == 273


def test_yolo_label_files_without_images(shipped_data):
    # C1: 000000000656/659 have no image, hence no size: their 3 + 9 boxes are counted, not lost
    b = read_annotations(shipped_data / A / "coco128_yolo/labels/train2017",
                         image_sizes=shipped_data / A / "coco128_yolo/image_sizes.csv")
    assert b.units == "px" and len(b) == 929 and b.skipped == {"no_image_size": 12}
    assert b.classes[0] == "person" and len(b.classes) == 80  # names from config.yaml
    no_sizes = read_annotations(shipped_data / A / "coco128_yolo/labels/train2017")
    assert no_sizes.units == "normalized" and len(no_sizes) == 941


def test_openimages_decimal_commas(shipped_data):
    b = read_annotations(
        shipped_data / A / "voc2012_subset100/openimages_csv/all_bounding_boxes.csv")
    assert b.units == "normalized"
    row = int(np.flatnonzero(np.array(b.image_names)[b.image] == "2007_000027.jpg")[0])
    # "0,3580246914","0,7181069959" → x 0.358..., w 0.360...
    assert b.x[row] == pytest.approx(0.3580246914, abs=1e-7)
    assert b.w[row] == pytest.approx(0.7181069959 - 0.3580246914, abs=1e-6)


def _key(b):
    names = np.array([n.rsplit("/", 1)[-1].split(".")[0] for n in b.image_names])[b.image]
    cls = np.array(b.classes + [""])[b.cls]
    order = np.lexsort((b.h, b.w, b.y, b.x, cls, names))
    return names[order], cls[order], np.stack([b.x, b.y, b.w, b.h], 1)[order]


def test_voc_subset_same_boxes_in_five_formats(shipped_data):
    root = shipped_data / A / "voc2012_subset100"
    voc = read_annotations(root / "pascalvoc_xml")
    sizes = voc.image_sizes()
    others = [read_annotations(root / "coco_json/instances_default.json"),
              read_annotations(root / "cvat_xml/annotations.xml"),
              read_annotations(root / "openimages_csv/all_bounding_boxes.csv", image_sizes=sizes),
              read_annotations(root / "yolo/obj_train_data", image_sizes=sizes)]
    ref_names, ref_cls, ref_xywh = _key(voc)
    for other in others:
        assert other.units == "px"
        names, cls, xywh = _key(other)
        assert (names == ref_names).all() and (cls == ref_cls).all()
        # YOLO rounds to 6 decimals of the image size (≤ 500 px): < 0.002 px
        np.testing.assert_allclose(xywh, ref_xywh, atol=0.01)


def test_fddb_ellipse_to_box_hand_computed():
    # an upright ellipse (theta = pi/2): major axis vertical
    x, y, w, h = ellipse_box(60.0, 40.0, math.pi / 2, 100.0, 200.0)
    assert (x, y, w, h) == pytest.approx((60.0, 140.0, 80.0, 120.0))
    # 45 degrees: both half-extents sqrt((a² + b²)/2)
    _, _, w, h = ellipse_box(60.0, 40.0, math.pi / 4, 0.0, 0.0)
    assert w == pytest.approx(2 * math.sqrt((60 ** 2 + 40 ** 2) / 2)) and w == pytest.approx(h)


def test_fddb_file_count_and_first_face(shared_fddb):
    rel, *counts = UNSHIPPABLE_COUNTS[2]
    b = _check_counts(shared_fddb / A / rel, *counts)
    # first face: 123.5833 85.5495 1.265839 269.6934 161.7812
    hw = math.hypot(123.5833 * math.cos(1.265839), 85.5495 * math.sin(1.265839))
    assert b.w[0] == pytest.approx(2 * hw, rel=1e-5)


def test_image_headers(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                    + struct.pack(">II", 640, 427) + b"\x08\x02\x00\x00\x00")
    jpg = tmp_path / "b.jpg"
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 375, 500, 1) + b"\x01\x11\x00"
    jpg.write_bytes(b"\xff\xd8" + app0 + sof + b"\xff\xd9")
    assert image_size(png) == (640, 427)
    assert image_size(jpg) == (500, 375)
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    assert image_size(tmp_path / "c.jpg") is None


def test_yolo_sizes_from_image_headers(tmp_path):
    labels = tmp_path / "labels" / "train"
    images = tmp_path / "images" / "train"
    labels.mkdir(parents=True)
    images.mkdir(parents=True)
    (labels / "x.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    (images / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                                   + struct.pack(">II", 800, 600) + b"\x08\x02\x00\x00\x00")
    b = read_annotations(labels)
    assert b.units == "px" and (b.w[0], b.h[0]) == (200.0, 300.0) and b.x[0] == 300.0


def test_sizes_table_formats(shipped_data):
    t = load_sizes(shipped_data / A / "voc2007/test_name_size.txt")  # "id height width"
    assert t.get("000001") == (353.0, 500.0)  # height 500, width 353 and len(t) == 4952
    c = load_sizes(shipped_data / A / "coco128_yolo/image_sizes.csv")
    assert c.get("train2017/000000000009") == (640.0, 480.0)


@pytest.mark.parametrize("name, text, line", [
    ("bad.json", '{"images": [], "annotations": [\n  {"bbox": [1, 2, 3]\n', 3),
    ("bad.xml", "<annotation>\n<object>\n</annotation>\n", 3),
])
def test_malformed_files_name_the_line(tmp_path, name, text, line):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(FormatError) as exc:
        read_annotations(p)
    assert exc.value.line == line and exc.value.source == str(p)


def test_malformed_yolo_and_csv_lines(tmp_path):
    d = tmp_path / "labels"
    d.mkdir()
    (d / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n1 0.5 oops 0.1 0.1\n")
    with pytest.raises(FormatError, match="found 'oops'") as exc:
        read_annotations(d)
    assert exc.value.line == 2
    p = tmp_path / "b.csv"
    p.write_text("filename,xmin,ymin,xmax,ymax\na.jpg,1,2,3,4\nb.jpg,1,2\n")
    with pytest.raises(FormatError) as exc:
        read_annotations(p)
    assert exc.value.line == 3
    with pytest.raises(AnchorfitError, match="no such file"):
        read_annotations(tmp_path / "missing")


def test_coco_records_sharing_a_file_name_are_noted(tmp_path):
    """Two ids, one file_name: the Boxes table keys images by name, so they become one image.
    Both COCO readers say so in a note (before: merged silently)."""
    import json

    from anchorfit.data.coco import read_coco
    from anchorfit.data.coco_stream import read_coco_stream

    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 2, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 3, "file_name": "b.jpg", "width": 64, "height": 48},
                      {"id": 4, "file_name": "b.jpg", "width": 64, "height": 48}],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 3, 4]}
                           for i in (1, 2, 3, 4)],
           "categories": [{"id": 1, "name": "x"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    for read in (read_coco, read_coco_stream):
        boxes = read(path)
        assert boxes.image_names == ["a.jpg", "b.jpg"] and len(boxes) == 4
        assert boxes.notes == ["2 image records share a file_name with a record of another id: "
                               "their boxes are counted as one image's"]
    doc["images"][3]["file_name"] = "c.jpg"
    path.write_text(json.dumps(doc))
    assert read_coco_stream(path).notes[0].startswith("1 image record shares a file_name")
