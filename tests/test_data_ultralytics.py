"""Ultralytics data yamls as annotations, on the real COCO128 labels with generated image headers.

The reference is the YOLO folder reader with the size table ``image_sizes.csv`` on the same label
files: the data-yaml reader must give exactly the same boxes, whatever form the yaml takes, while
finding its labels from the images (Ultralytics' images → labels rule) and reading the sizes from
the image headers it was handed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from anchorfit.data import detect_format, read_annotations
from anchorfit.data.imagesize import image_size
from anchorfit.data.prepare import prepare_boxes
from anchorfit.data.ultralytics import label_path, load_data_yaml
from anchorfit.errors import AnchorfitError

SRC = "annotations/coco128_yolo"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "anchorfit" / "schemas" /
                     "boxes.schema.json").read_text())


# --------------------------------------------------------------------------- image headers

def png_header(w: int, h: int) -> bytes:
    """A PNG signature, IHDR and IEND with valid CRCs: a header and no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


def jpeg_header(w: int, h: int, orientation: int | None = None) -> bytes:
    """SOI, JFIF APP0, optional EXIF APP1 (big-endian, one orientation tag), SOF0, EOI."""
    out = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01" + b"\x00" * 7
    if orientation is not None:
        tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 274, 3, 1,
                                                                   orientation, 0) + b"\x00" * 4
        body = b"Exif\x00\x00" + tiff
        out += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    out += b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) \
        + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"  # 3 components
    return out + b"\xff\xd9"


# --------------------------------------------------------------------------- the dataset

@pytest.fixture(scope="module")
def coco128(shipped_data, tmp_path_factory) -> Path:
    """An Ultralytics-layout COCO128: images/{train2017,val2017} (train as JPEG headers, val as
    PNG headers, of the sizes in image_sizes.csv) and the real labels/ beside them."""
    root = tmp_path_factory.mktemp("coco128")
    src = shipped_data / SRC
    for row in csv.DictReader(open(src / "image_sizes.csv")):
        folder = root / "images" / row["split"]
        folder.mkdir(parents=True, exist_ok=True)
        w, h = int(row["width"]), int(row["height"])
        if row["split"] == "train2017":
            (folder / row["image"]).write_bytes(jpeg_header(w, h))
        else:
            (folder / row["image"]).with_suffix(".png").write_bytes(png_header(w, h))
    shutil.copytree(src / "labels", root / "labels")
    names = load_data_yaml(src / "config.yaml").names
    assert len(names) == 80 and names[0] == "person"
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": ".", "train": "images/train2017", "val": "images/val2017", "names": names}))
    return root


@pytest.fixture(scope="module")
def reference(shipped_data):
    """The YOLO folder reader with the size table: the boxes every form must reproduce."""
    src = shipped_data / SRC
    return {split: read_annotations(src / "labels" / split, image_sizes=src / "image_sizes.csv")
            for split in ("train2017", "val2017")}


def _same_boxes(got, ref) -> None:
    assert got.units == ref.units == "px"
    assert len(got) == len(ref)
    for col in ("w", "h", "x", "y", "cls", "line"):
        np.testing.assert_array_equal(getattr(got, col), getattr(ref, col), err_msg=col)
    assert got.classes == ref.classes


@pytest.mark.parametrize("split, folder", [("train", "train2017"), ("val", "val2017")])
def test_same_boxes_as_yolo_reader(coco128, reference, split, folder):
    got = read_annotations(coco128 / "data.yaml", split=split)
    ref = reference[folder]
    assert got.format == "ultralytics" and detect_format(coco128 / "data.yaml") == "ultralytics"
    _same_boxes(got, ref)
    # C1: the 2 train label files without an image are never reached from the images, so the
    # 12 boxes the YOLO reader skips as no_image_size simply are not part of the dataset; the 2
    # images without a label file are background images
    assert ref.skipped == ({"no_image_size": 12} if split == "train" else {})
    assert got.skipped == {}
    assert got.n_images == 128 and len(got) == {"train": 929, "val": 898}[split]
    if split == "train":
        assert any("2 of 128 images have no label file" in n for n in got.notes)
        assert "images/train2017/000000000250.jpg" in got.image_names
    # sizes came from the headers: the same as the table, image by image
    sizes = got.image_sizes()
    assert sizes["images/train2017/000000000009.jpg" if split == "train"
                 else "images/val2017/000000000139.png"] == (
        (640.0, 480.0) if split == "train" else (640.0, 426.0))
    # and the whole prepared pipeline drops the same rows for the same reasons
    a, b = prepare_boxes(got), prepare_boxes(ref)
    b.dropped.pop("no_image_size", None)
    assert a.dropped == b.dropped and np.array_equal(a.boxes.wh(), b.boxes.wh())


def _write(root: Path, name: str, data: dict) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(data))
    return p


def test_every_yaml_form_reads_the_same_boxes(coco128, reference, tmp_path):
    names = load_data_yaml(coco128 / "data.yaml").names
    as_dict = {i: n for i, n in enumerate(names)}
    train = sorted((coco128 / "images/train2017").iterdir())
    # a .txt list with ./ entries (relative to the list) and one with plain relative entries
    (coco128 / "train_dot.txt").write_text("".join(f"./images/train2017/{p.name}\n" for p in train))
    (coco128 / "lists").mkdir(exist_ok=True)
    (coco128 / "lists/train.txt").write_text("".join(f"../images/train2017/{p.name}\n"
                                                     for p in reversed(train)))
    forms = [
        _write(coco128, "txt_list.yaml", {"train": "train_dot.txt", "val": "x", "names": as_dict}),
        _write(coco128, "txt_rel.yaml", {"train": "lists/train.txt", "val": "x", "nc": 80,
                                         "names": names}),
        _write(coco128, "list.yaml", {"path": str(coco128), "train": ["images/train2017"],
                                      "val": "x", "names": names}),
        # relative `path` from a yaml in another folder: resolved against the yaml's folder
        _write(tmp_path, "sub/rel.yaml", {"path": os.path.relpath(coco128, tmp_path / "sub"),
                                          "train": "images/train2017/", "val": "x",
                                          "names": names}),
    ]
    for data_yaml in forms:
        got = read_annotations(data_yaml)  # split defaults to train
        _same_boxes(got, reference["train2017"])
    # a list of two folders is their union, sorted like Ultralytics sorts image paths
    both = _write(coco128, "both.yaml", {"train": ["images/val2017", "images/train2017"],
                                         "val": "x", "names": names})
    got = read_annotations(both)
    ref = np.concatenate([reference["train2017"].wh(), reference["val2017"].wh()])
    assert got.n_images == 256 and np.array_equal(got.wh(), ref)


def test_images_to_labels_rule():
    assert label_path("/d/images/a/images/x.JPG") == Path("/d/images/a/labels/x.txt")
    assert label_path("/d/images/train/x.v2.png") == Path("/d/labels/train/x.v2.txt")
    assert label_path("/d/pics/x.jpg") == Path("/d/pics/x.txt")     # no /images/: beside it
    assert label_path("/d/myimages/x.jpg") == Path("/d/myimages/x.txt")


def test_exif_orientation_and_rules_ultralytics_applies(tmp_path):
    img, lab = tmp_path / "images", tmp_path / "labels"
    img.mkdir()
    lab.mkdir()
    # orientation 6 (a quarter turn): stored 640x480, shown (and labelled) as 480x640
    (img / "rot.jpg").write_bytes(jpeg_header(640, 480, orientation=6))
    (img / "up.jpg").write_bytes(jpeg_header(640, 480, orientation=3))  # half turn: no swap
    (img / "bg.jpg").write_bytes(jpeg_header(100, 100))
    (img / "bad.jpg").write_bytes(jpeg_header(100, 100))
    (img / "notes.txt").write_text("not an image")
    (lab / "rot.txt").write_text("0 0.5 0.5 0.5 0.25\n")
    (lab / "up.txt").write_text("1 0.5 0.5 0.5 0.25\n")
    (lab / "bad.txt").write_text("0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n")  # class 2 >= nc 2
    (tmp_path / "list.txt").write_text("./images/rot.jpg\n./images/gone.jpg\n")
    (lab / "gone.txt").write_text("0 0.1 0.1 0.1 0.1\n0 0.2 0.2 0.1 0.1\n0 0.3 0.3 0.1 0.1\n")
    data = _write(tmp_path, "d.yaml", {"train": "images", "val": "list.txt",
                                       "names": {0: "a", 1: "b"}})
    b = read_annotations(data)
    sizes = b.image_sizes()
    assert sizes["images/rot.jpg"] == (480.0, 640.0) and sizes["images/up.jpg"] == (640.0, 480.0)
    assert [(float(w), float(h)) for w, h in b.wh()] == [(240.0, 160.0), (320.0, 120.0)]
    assert b.n_images == 4 and b.skipped == {"corrupt_label": 2}
    assert any("bad.txt:2: class 2 outside 0-1" in n for n in b.notes)
    v = read_annotations(data, split="val")
    assert len(v) == 1 and v.skipped == {"missing_image": 3}
    assert any("1 listed images do not exist" in n for n in v.notes)


_WRITERS = [("JPEG", "jpg", {}), ("PNG", "png", {}), ("WEBP", "webp", {}),
            ("WEBP", "webp", {"lossless": True}), ("MPO", "mpo", {})]


@pytest.mark.parametrize("fmt, ext, kwargs, orientation",
                         [(*w, o) for w in _WRITERS for o in (None, 1, 6, 8, 3)]
                         + [("BMP", "bmp", {}, None), ("GIF", "gif", {}, None),
                            ("TIFF", "tif", {}, None)])
def test_header_sizes_match_pillow_decoding(tmp_path, fmt, ext, kwargs, orientation):
    """Independent check: Pillow decodes and applies EXIF orientation (ImageOps.exif_transpose);
    the header reader must give the same displayed size without decoding."""
    pil = pytest.importorskip("PIL.Image")
    ops = pytest.importorskip("PIL.ImageOps")
    p = tmp_path / f"x.{ext}"
    extra = dict(kwargs)
    if orientation:
        exif = pil.Exif()
        exif[274] = orientation
        extra["exif"] = exif.tobytes()
    pil.new("RGB", (37, 21), (200, 10, 10)).save(p, fmt, **extra)
    with pil.open(p) as im:
        shown = ops.exif_transpose(im).size
    assert image_size(p) == shown
    assert image_size(p) == ((21, 37) if orientation in (6, 8) else (37, 21))


def test_tiff_and_jpeg2000_headers(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    p = tmp_path / "x.tif"
    pil.new("RGB", (37, 21)).save(p, "TIFF")
    assert image_size(p) == (37, 21)
    # TIFF orientation 6 in IFD0: shown as 21x37 (stored 37x21)
    ifd = struct.pack("<H", 3) + b"".join(struct.pack("<HHII", t, 4, 1, v) for t, v in
                                          ((256, 37), (257, 21), (274, 6))) + b"\x00" * 4
    (tmp_path / "r.tif").write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd)
    assert image_size(tmp_path / "r.tif") == (21, 37)
    assert image_size(tmp_path / "r.tif", exif_orientation=False) == (37, 21)
    jp2 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n"
           + struct.pack(">I4s", 20, b"ftyp") + b"jp2 \x00\x00\x00\x00jp2 "
           + struct.pack(">I4s", 45, b"jp2h")
           + struct.pack(">I4sIIHBBBB", 22, b"ihdr", 21, 37, 3, 7, 7, 0, 0))  # height, width
    (tmp_path / "x.jp2").write_bytes(jp2)
    assert image_size(tmp_path / "x.jp2") == (37, 21)
    (tmp_path / "x.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    assert image_size(tmp_path / "x.heic") is None


def test_real_ultralytics_yamls_parse(shipped_data):
    folder = shipped_data / "configs/ultralytics/datasets"
    counts = {"coco8.yaml": 80, "coco128.yaml": 80, "VOC.yaml": 20, "lvis.yaml": 1203,
              "open-images-v7.yaml": 601, "Objects365.yaml": 365, "SKU-110K.yaml": 1,
              "DOTAv1.yaml": 15, "VisDrone.yaml": 10}
    files = sorted(folder.glob("*.yaml"))
    assert len(files) >= 20
    for f in files:
        assert detect_format(f) == "ultralytics", f.name
        d = load_data_yaml(f)
        if f.name in counts:
            assert len(d.names) == counts[f.name], f.name
    voc = load_data_yaml(folder / "VOC.yaml")
    assert voc.split_entries("train") == ["images/train2012", "images/train2007",
                                          "images/val2012", "images/val2007"]
    # the images are not here: the error names the yaml, the key and where it looked
    with pytest.raises(AnchorfitError) as exc:
        read_annotations(folder / "coco8.yaml")
    assert exc.value.key == "path" and "coco8" in exc.value.message


# --------------------------------------------------------------------------- CLI

def test_cli_boxes_kmeans(coco128, shipped_data, run_cli):
    import jsonschema

    data = str(coco128 / "data.yaml")
    code, out, err = run_cli("boxes", data, "--split", "val", "-f", "json")
    assert code == 0, err
    rep = json.loads(out)
    jsonschema.validate(rep, SCHEMA)
    assert rep["format"] == "ultralytics" and rep["counts"] == {"images": 128, "rows_read": 898,
                                                                "boxes": 898}
    code, out, err = run_cli("boxes", data, "--from", "ultralytics", "-f", "json")
    rep = json.loads(out)
    assert code == 0 and rep["counts"]["rows_read"] == 929 and rep["dropped"] == {
        "under_min_size": 1}
    code, out, err = run_cli("kmeans", data, "-k", "9", "--restarts", "2", "-f", "json")
    assert code == 0, err
    got = json.loads(out)
    assert sum(len(lv["anchors"]) for lv in got["levels"]) == 9
    # the same anchors as from the YOLO folder with the size table (same 928 boxes, same seed)
    src = shipped_data / SRC
    code, out, err = run_cli("kmeans", str(src / "labels/train2017"), "--image-sizes",
                             str(src / "image_sizes.csv"), "-k", "9", "--restarts", "2",
                             "-f", "json")
    assert code == 0 and json.loads(out)["levels"] == got["levels"]


def test_cli_plan_with_data_yaml(coco128, shipped_data, run_cli):
    cfg = shipped_data / "configs/darknet/alexeyab/yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip("yolov4-tiny.cfg not in shared data")
    code, out, err = run_cli("plan", str(cfg), "--boxes", str(coco128 / "data.yaml"),
                             "--split", "val", "--no-erf", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["dataset"]["boxes"] == 898 and "data.yaml [val]" in err


@pytest.mark.parametrize("content, key, words", [
    ({"train": "images/train2017", "val": "images/val2017", "names": ["a"]}, "test",
     "no images listed for the 'test' split"),
    ({"train": "images/nowhere", "val": "images/val2017", "names": ["a"]}, "train",
     "images not found: 'images/nowhere'"),
    ({"train": "images/train2017", "val": "v", "names": {0: "a", 2: "b"}}, "names",
     "ids 0-1"),
    ({"train": "images/train2017", "val": "v", "names": ["a", "b"], "nc": 3}, "nc",
     "must match"),
    ({"train": "images/train2017", "val": "v", "names": "person"}, "names", "expected list"),
    ({"train": "images/train2017", "val": "v"}, "names", "neither 'names' nor 'nc'"),
    ({"path": "no/such/root", "train": "images/train2017", "val": "v", "nc": 1}, "path",
     "dataset root not found"),
])
def test_cli_errors_name_file_and_key(coco128, run_cli, content, key, words):
    p = _write(coco128, "bad.yaml", content)
    split = ["--split", "test"] if key == "test" else []
    code, out, err = run_cli("boxes", str(p), *split)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"bad.yaml: {key}:" in err and words in err


def test_cli_other_errors(coco128, shipped_data, run_cli, tmp_path):
    other = _write(tmp_path, "model.yaml", {"nc": 80, "backbone": []})
    code, _, err = run_cli("boxes", str(other))
    assert code == 2 and "not an Ultralytics data yaml" in err
    code, _, err = run_cli("boxes", str(shipped_data / "annotations/coco128_cocojson/"
                                        "instances_train2017.json"), "--split", "val")
    assert code == 2 and "--split" in err
    # images without any label file
    root = tmp_path / "nolabels"
    (root / "images").mkdir(parents=True)
    (root / "images/a.jpg").write_bytes(jpeg_header(10, 10))
    p = _write(root, "d.yaml", {"train": "images", "val": "images", "names": ["a"]})
    code, _, err = run_cli("boxes", str(p))
    assert code == 2 and "d.yaml: train:" in err and "labels/a.txt" in err


# --------------------------------------------------------------------------- shipped fixture

COCO8 = Path(__file__).resolve().parent / "data" / "ultralytics_coco8"


def test_shipped_coco8_fixture(run_cli):
    """The fixture works without ../shared: 13 train and 17 val boxes, sizes from the headers."""
    train = read_annotations(COCO8 / "data.yaml")
    val = read_annotations(COCO8 / "data.yaml", split="val")
    assert (train.n_images, len(train), val.n_images, len(val)) == (4, 13, 4, 17)
    assert train.image_sizes()["images/train/000000000009.jpg"] == (640.0, 480.0)
    assert val.image_sizes()["images/val/000000000036.jpg"] == (481.0, 640.0)  # portrait
    # 000000000036 line 1: "25 0.475759 0.414523 0.951518 0.672422" on a 481x640 image
    row = int(np.flatnonzero(np.array(val.image_names)[val.image]
                             == "images/val/000000000036.jpg")[0])
    assert val.classes[val.cls[row]] == "umbrella" and int(val.line[row]) == 1
    assert float(val.w[row]) == pytest.approx(0.951518 * 481, abs=1e-3)
    assert float(val.h[row]) == pytest.approx(0.672422 * 640, abs=1e-3)
    code, out, err = run_cli("boxes", str(COCO8 / "data.yaml"), "--split", "val",
                             "--policy", "none", "-f", "json")
    assert code == 0 and json.loads(out)["counts"]["boxes"] == 17


def test_size_table_fills_unreadable_headers(tmp_path):
    """HEIC headers are not read: without a table their boxes are counted as no_image_size, with
    one (name matched by parent/stem, like YOLO + --image-sizes) they are kept."""
    img, lab = tmp_path / "images/train", tmp_path / "labels/train"
    img.mkdir(parents=True)
    lab.mkdir(parents=True)
    (img / "a.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    (img / "b.png").write_bytes(png_header(200, 100))
    (lab / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n0 0.4 0.4 0.2 0.2\n")
    (lab / "b.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = _write(tmp_path, "d.yaml", {"train": "images/train", "val": "images/train",
                                       "names": ["x"]})
    b = read_annotations(data)
    assert len(b) == 1 and b.skipped == {"no_image_size": 2}
    assert any("image header could not be read" in n for n in b.notes)
    table = tmp_path / "sizes.csv"
    table.write_text("image,width,height\ntrain/a.heic,300,600\n")
    b = read_annotations(data, image_sizes=table)
    assert b.skipped == {} and [tuple(map(float, r)) for r in b.wh()] == [
        (150.0, 300.0), (60.0, 120.0), (100.0, 50.0)]


def test_cli_compare_with_data_yaml(run_cli):
    """compare --boxes data.yaml --split val scores the anchor sets exactly as on the same label
    folder read by the YOLO reader (which finds the same headers through labels → images)."""
    repo = Path(__file__).resolve().parents[1]
    args = ["compare", str(repo / "anchorfit/configs/yolov3.yaml"), "--restarts", "2", "-f", "json"]
    code, out, err = run_cli(*args, "--boxes", str(COCO8 / "data.yaml"), "--split", "val")
    assert code == 0, err
    got = json.loads(out)
    assert got["dataset"]["boxes_kept"] == 17 and "data.yaml [val]" in got["dataset"]["source"]
    code, out, err = run_cli(*args, "--boxes", str(COCO8 / "labels/val"))
    assert code == 0, err
    assert json.loads(out)["verdict"]["scores"] == got["verdict"]["scores"]


def test_pose_rows_hidden_files_and_tiny_images(tmp_path):
    img, lab = tmp_path / "images", tmp_path / "labels"
    (img / ".cache").mkdir(parents=True)
    lab.mkdir()
    (img / "p.jpg").write_bytes(jpeg_header(200, 100))
    (img / "._p.jpg").write_bytes(b"\x00\x05\x16\x07")            # macOS AppleDouble file
    (img / ".cache/q.jpg").write_bytes(jpeg_header(50, 50))        # inside a hidden folder
    (img / "t.png").write_bytes(png_header(9, 400))                # under 10 px wide
    # a pose row with kpt_shape [2, 3]: box + 2 keypoints x (x, y, visible) = 11 fields
    (lab / "p.txt").write_text("0 0.5 0.5 0.5 0.5 0.1 0.1 2 0.2 0.2 2\n")
    (lab / "t.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (lab / "q.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = _write(tmp_path, "pose.yaml", {"train": "images", "val": "images", "names": ["a"],
                                          "kpt_shape": [2, 3]})
    b = read_annotations(data)
    # the box is the first 5 fields (read as a polygon, the visibility flags 2 would be
    # coordinates and the file rejected as not normalised)
    assert [tuple(map(float, r)) for r in b.wh()] == [(100.0, 50.0)]
    assert b.n_images == 2 and b.skipped == {"corrupt_image": 1}
    assert any("1 images under 10 px" in n for n in b.notes)
    bad = _write(tmp_path, "bad.yaml", {"train": "images", "val": "images", "names": ["a"],
                                        "kpt_shape": [17]})
    with pytest.raises(AnchorfitError) as exc:
        read_annotations(bad)
    assert exc.value.key == "kpt_shape"
