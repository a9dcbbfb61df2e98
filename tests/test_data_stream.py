"""Streaming readers give what the exact readers give: the same rows, side tables, skips, notes,
and the same message (file:line or JSON path) for a bad record. Windows are shrunk to a few
dozen characters so every record crosses a window edge somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from anchorfit.data import coco_stream
from anchorfit.data.boxes import _ROW_COLUMNS, Boxes
from anchorfit.data.coco import read_coco
from anchorfit.data.coco_stream import read_coco_stream
from anchorfit.errors import AnchorfitError

A = "annotations"


def assert_same(a: Boxes, b: Boxes) -> None:
    for name in _ROW_COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name  # bitwise, -0.0 too
    for name in ("image_names", "classes", "files", "format", "source", "units", "skipped",
                 "notes", "synthetic"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.image_width.tobytes() == b.image_width.tobytes()
    assert a.image_height.tobytes() == b.image_height.tobytes()


def outcome(reader, path: Path, **kw):
    """The Boxes a reader returns, or (error type, message) when it raises."""
    try:
        return reader(path, **kw)
    except AnchorfitError as exc:
        return type(exc).__name__, str(exc)
    except Exception as exc:  # the exact reader's own crashes must be matched too
        return "crash", type(exc).__name__


def assert_same_outcome(path: Path, **kw) -> None:
    exact, stream = outcome(read_coco, path, **kw), outcome(read_coco_stream, path, **kw)
    if isinstance(exact, Boxes):
        assert isinstance(stream, Boxes), stream
        assert_same(exact, stream)
    else:
        assert exact == stream


@pytest.fixture
def small_windows(monkeypatch):
    monkeypatch.setattr(coco_stream, "BLOCK", 61)
    monkeypatch.setattr(coco_stream, "_MIN_RUN", 160)
    monkeypatch.setattr(coco_stream, "_MAX_RUN", 500)


def test_every_shared_coco_file(config_data):
    files = sorted((config_data / A).rglob("*.json"))
    assert len(files) >= 3
    for path in files:
        for crowd in (False, True):
            assert_same(read_coco(path, include_crowd=crowd),
                        read_coco_stream(path, include_crowd=crowd))


def test_every_shared_coco_file_small_windows(config_data, small_windows):
    for path in sorted((config_data / A).rglob("*.json")):
        assert_same(read_coco(path), read_coco_stream(path))


def _doc(anns, images=None, categories=None, order=("images", "annotations", "categories")):
    images = images if images is not None else [
        {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
        {"id": 2, "file_name": "b.jpg", "width": 500, "height": 375}]
    categories = categories if categories is not None else [
        {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    parts = {"images": images, "annotations": anns, "categories": categories}
    return "{" + ",\n".join(f'"{k}": {json.dumps(parts[k], indent=1)}' for k in order) + "}\n"


def _ann(i, image=1, cat=1, bbox=(10.5, 20, 30.25, 40), crowd=0):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": list(bbox),
            "area": 1.0, "iscrowd": crowd, "segmentation": [[1, 2, 3, 4, 5, 6]]}


REGULAR = [_ann(i, image=1 + i % 2, cat=(1, 3, 7)[i % 3], crowd=int(i % 11 == 5))
           for i in range(40)]

ODD_RECORDS = {
    "bbox_short": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},
    "bbox_null": {"image_id": 1, "category_id": 1, "bbox": None},
    "bbox_missing": {"image_id": 1, "category_id": 1},
    "bbox_string": {"image_id": 1, "category_id": 1, "bbox": ["1", "2.5", "3", "4"]},
    "bbox_word": {"image_id": 1, "category_id": 1, "bbox": [1, 2, "wide", 4]},
    "bbox_none_value": {"image_id": 1, "category_id": 1, "bbox": [1, None, 3, 4]},
    "bbox_minus_zero": "RAW:{\"image_id\": 1, \"category_id\": 1, \"bbox\": [-0, -0.0, 3, 4]}",
    "bbox_nan": "RAW:{\"image_id\": 1, \"category_id\": 1, \"bbox\": [NaN, 1, 3, Infinity]}",
    "bbox_huge_int": "RAW:{\"image_id\": 1, \"category_id\": 1, \"bbox\": "
                     "[123456789012345678901234567890, 1e400, 3, 4]}",
    "image_unknown": {"image_id": 9, "category_id": 1, "bbox": [1, 2, 3, 4]},
    "image_float": {"image_id": 2.0, "category_id": 1, "bbox": [1, 2, 3, 4]},
    "image_true": {"image_id": True, "category_id": 1, "bbox": [1, 2, 3, 4]},
    "image_string": {"image_id": "1", "category_id": 1, "bbox": [1, 2, 3, 4]},
    "category_string": {"image_id": 1, "category_id": "dog", "bbox": [1, 2, 3, 4]},
    "category_float": {"image_id": 1, "category_id": 3.0, "bbox": [1, 2, 3, 4]},
    "category_float_new": {"image_id": 1, "category_id": 7.0, "bbox": [1, 2, 3, 4]},
    "category_bool": {"image_id": 1, "category_id": True, "bbox": [1, 2, 3, 4]},
    "category_missing": {"image_id": 1, "bbox": [1, 2, 3, 4]},
    "category_big": {"image_id": 1, "category_id": 10 ** 20, "bbox": [1, 2, 3, 4]},
    "crowd_string": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": "0"},
    "crowd_float": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0.0},
    "crowd_true_bad_bbox": {"image_id": 1, "category_id": 1, "bbox": "x", "iscrowd": True},
    "crowd_list": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": [0]},
    "other_order": {"bbox": [5, 6, 7, 8], "category_id": 3, "image_id": 2},
    "escaped_string": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                       "note": "a \"quoted\" \\ value \u00e9"},
    "rle": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0,
            "segmentation": {"counts": [0, 5, 10], "size": [480, 640]}},
    "nested_deep": {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                    "extra": {"a": {"bbox": [9, 9, 9, 9]}}},
    "duplicate_key": "RAW:{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], "
                     "\"bbox\": [5, 6, 7, 8]}",
    "not_object": [1, 2, 3, 4],
    "number": 5,
}


_TEMPLATE = ('{"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 1.0, '
             '"iscrowd": 0, "segmentation": [[1, 2, 3, 4, 5, 6]]}')


def _in_layout(record):
    """The record with the regular records' keys and key order (so the fast path sees it)."""
    if isinstance(record, str):  # raw text: its (last) bbox text in the template's place
        bbox = re.findall(r'"bbox": (\[[^\]]*\])', record)[-1]
        return "RAW:" + _TEMPLATE.replace("[1, 2, 3, 4]", bbox)
    if not isinstance(record, dict):
        return record
    merged = json.loads(_TEMPLATE)
    for key in ("bbox", "image_id", "category_id", "iscrowd"):
        if key not in record:
            merged.pop(key, None) if key != "iscrowd" else None
    merged.update(record)
    return merged


def _write_with(tmp_path: Path, record, where: int = 17, **doc) -> Path:
    anns = [json.dumps(a) for a in REGULAR]
    anns.insert(where, record[4:] if isinstance(record, str) else json.dumps(record))
    text = _doc([], **doc).replace('"annotations": []', '"annotations": [\n'
                                   + ",\n".join(anns) + "\n]")
    path = tmp_path / "odd.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(ODD_RECORDS))
@pytest.mark.parametrize("form", ["alone", "in_layout"])
def test_odd_records_same_rows_or_message(tmp_path, name, form, small_windows):
    record = ODD_RECORDS[name]
    path = _write_with(tmp_path, record if form == "alone" else _in_layout(record))
    for crowd in (False, True):
        assert_same_outcome(path, include_crowd=crowd)


@pytest.mark.parametrize("name", ["bbox_short", "image_unknown", "other_order", "category_string"])
def test_odd_record_first_and_last(tmp_path, name):
    for where in (0, len(REGULAR)):
        assert_same_outcome(_write_with(tmp_path, ODD_RECORDS[name], where=where))


def test_regular_file_takes_the_fast_path(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text(_doc([_ann(i, image=1 + i % 2, cat=(1, 3)[i % 2]) for i in range(3000)]))
    slow = []
    original = coco_stream._Annotations.add_slow
    monkeypatch.setattr(coco_stream._Annotations, "add_slow",
                        lambda self, *a: (slow.append(1), original(self, *a)))
    assert_same(read_coco(path), read_coco_stream(path))
    assert len(slow) <= 2  # the first record (learns the layout) and the last (no comma)


@pytest.mark.parametrize("variant", [
    {"order": ("categories", "images", "annotations")},
    {"order": ("annotations", "images", "categories")},       # falls back to read_coco
    {"order": ("images", "annotations")},                      # no categories: ids as names
    {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                {"file_name": "b.jpg"}]},                     # image without id
    {"images": [{"id": 1, "file_name": "a.jpg", "width": "wide"}]},
    {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg",
                                                 "width": 10, "height": 20}]},
    {"images": [{"id": 1.0, "width": 640, "height": 480}, {"id": True}, {"id": "2"}]},
    {"categories": [{"id": 1}]},                               # category without name
    {"categories": {"id": 1, "name": "x"}},                    # not a list
    {"categories": [{"id": 7, "name": "car"}, {"id": 1, "name": "3"}]},  # name clash with id
])
def test_document_variants(tmp_path, variant, small_windows):
    path = tmp_path / "v.json"
    path.write_text(_doc(REGULAR, **variant))
    for crowd in (False, True):
        assert_same_outcome(path, include_crowd=crowd)


@pytest.mark.parametrize("text", [
    "", "   ", "[]", "{}", '{"images": []}', '{"images": [], "annotations": []}',
    '{"images": [], "annotations": []} x', '{"images": [], "annotations": [],}',
    '{"images": [], "annotations": [{"bbox": [1, 2, 3, 4]},]}',
    '{"images": [], "images": [], "annotations": []}', '{"images": {}, "annotations": []}',
    '{"images": [] "annotations": []}', '{"images" [], "annotations": []}',
    '{images: [], "annotations": []}', '\ufeff{"images": [], "annotations": []}',
    '{"images": [], "annotations": [{"bbox": [1, 2, 3, 4]} {"bbox": [1, 2, 3, 4]}]}',
    '{"images": [], "annotations": [], "info": "tab\there"}',
])
def test_small_documents(tmp_path, text):
    path = tmp_path / "s.json"
    path.write_text(text)
    assert_same_outcome(path)


def test_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.json"
    good = _doc(REGULAR).encode()
    path.write_bytes(good[:-30] + b"\xe9" + good[-29:])
    assert_same_outcome(path)


def test_every_truncation_gives_the_same_message(tmp_path, small_windows):
    """A cut download: json.loads and the stream must name the same line and problem."""
    text = _doc(REGULAR[:6])
    path = tmp_path / "cut.json"
    step = max(1, len(text) // 400)
    for cut in range(0, len(text), step):
        path.write_text(text[:cut])
        assert_same_outcome(path)


def test_syntax_error_deep_in_the_file_names_its_line(tmp_path, small_windows):
    text = _doc(REGULAR)
    broken = text.replace('"area": 1.0', '"area": 1.0.5', 1)
    path = tmp_path / "broken.json"
    path.write_text(broken)
    assert_same_outcome(path)
    with pytest.raises(AnchorfitError) as exc:
        read_coco_stream(path)
    assert exc.value.line == broken[:broken.index("1.0.5")].count("\n") + 1


def test_semantic_error_loses_to_a_later_syntax_error(tmp_path):
    anns = [json.dumps(a) for a in REGULAR]
    anns[3] = json.dumps({"image_id": 1, "category_id": 1, "bbox": [1, 2]})
    text = _doc([]).replace('"annotations": []', '"annotations": [\n' + ",\n".join(anns)
                            + "\n]").rstrip().rstrip("}") + ', "x": }'
    path = tmp_path / "both.json"
    path.write_text(text)
    assert_same_outcome(path)
    with pytest.raises(AnchorfitError, match="malformed JSON"):
        read_coco_stream(path)


def test_same_boxes_through_read_annotations(config_data):
    from anchorfit.data import read_annotations

    path = config_data / A / "coco128_cocojson/instances_train2017.json"
    b = read_annotations(path)
    assert len(b) == 929 and b.skipped == {"iscrowd": 10}
    assert_same(read_coco(path), b)
    assert np.isfinite(b.image_width).all()


def test_duplicates_match_the_void_record_reference():
    from anchorfit.data.boxes import _duplicates, _duplicates_reference

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 5000):
        def col(values):
            return rng.choice(np.array(values, np.float32), n)

        z, f = np.zeros(n, np.int32), np.zeros(n, bool)
        b = Boxes(rng.integers(0, 4, n).astype(np.int32), rng.integers(-1, 2, n).astype(np.int32),
                  col([0, -0.0, 1, np.nan]), col([0, 1, np.nan]), col([1, 2, -0.0]),
                  col([1, np.inf]), f, f, z, z, [], np.zeros(0), np.zeros(0), [], [], "t", "t")
        dup = _duplicates(b)
        assert (dup == _duplicates_reference(b)).all()
        if n == 5000:  # 0.0 and -0.0 differ as bytes, NaN matches NaN
            assert 4000 < dup.sum() < 5000


# --------------------------------------------------------------------------- YOLO folders

from anchorfit.data import yolo_stream  # noqa: E402
from anchorfit.data.sizes import SizeTable  # noqa: E402
from anchorfit.data.yolo import read_yolo  # noqa: E402
from anchorfit.data.yolo_stream import read_yolo_stream  # noqa: E402

YOLO_SHARED = ["coco128_yolo/labels/train2017", "coco128_yolo/labels",
               "voc2012_subset100/yolo/obj_train_data", "voc2012_subset100/yolo"]


def same_yolo(path, **kw):
    try:
        exact = read_yolo(path, **kw)
    except AnchorfitError as exc:
        with pytest.raises(AnchorfitError) as got:
            read_yolo_stream(path, **kw)
        assert (type(got.value), str(got.value)) == (type(exc), str(exc))
        return None
    stream = read_yolo_stream(path, **kw)
    assert_same(exact, stream)
    return stream


@pytest.mark.parametrize("rel", YOLO_SHARED)
def test_every_shared_yolo_folder(config_data, rel, monkeypatch):
    from anchorfit.data.sizes import load_sizes

    monkeypatch.setattr(yolo_stream, "BATCH", 7)  # many batches, threads out of step
    sizes = load_sizes(config_data / A / "coco128_yolo/image_sizes.csv")
    same_yolo(config_data / A / rel)
    b = same_yolo(config_data / A / rel, sizes=sizes)
    if rel.startswith("coco128"):
        assert b.skipped == {"no_image_size": 12}
    same_yolo(config_data / A / rel, image_size_wh=(640.0, 480.0))


def _png(path: Path, w: int, h: int) -> None:
    import struct

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                     + struct.pack(">II", w, h) + b"\x08\x02\x00\x00\x00")


YOLO_FILES = {
    "plain.txt": "0 0.5 0.5 0.25 0.5\n1 0.1 0.2 0.05 0.1\n",
    "blank_lines.txt": "\n2 0.5 0.5 0.1 0.1\n\n\n3 0.4 0.4 0.2 0.2",
    "crlf.txt": "0 0.5 0.5 0.2 0.2\r\n4 0.3 0.3 0.1 0.1\r\n",
    "cr_only.txt": "0 0.5 0.5 0.2 0.2\r5 0.3 0.3 0.1 0.1",
    "tabs.txt": "1\t0.5\t0.5  0.2 0.2\n",
    "segment.txt": "0 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.5 0.5 0.2 0.2\n",
    "exponent.txt": "7 5e-1 0.5 1E-1 2.5e-01\n",
    "integral_float_class.txt": "3.0 0.5 0.5 0.2 0.2\n",
    "new_class_ids.txt": "90 0.5 0.5 0.2 0.2\n95 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n",
    "decimal_comma.txt": "0 0,5 0.5 0.2 0.2\n",
    "bom.txt": "\ufeff0 0.5 0.5 0.2 0.2\n",
    "unicode_space.txt": "0\u00a00.5 0.5 0.2 0.2\n",
    "nan.txt": "0 nan 0.5 0.2 0.2\n",
    "empty.txt": "",
    "a/deep/nested.txt": "0 0.5 0.5 0.2 0.2\n",
    "classes.txt": "person\nbicycle\ncar\n",
    "train.txt": "images/x.jpg\n",
    "upper.TXT": "0 0.5 0.5 0.2 0.2\n",
    ".hidden.txt": "0 0.5 0.5 0.2 0.2\n",
    "notes.md": "not a label",
}

BAD_FILES = {
    "four_fields.txt": "0 0.5 0.5 0.2\n",
    "six_fields.txt": "0 0.5 0.5 0.2 0.2 0.9\n",
    "word.txt": "0 0.5 wide 0.2 0.2\n",
    "half_class.txt": "1.5 0.5 0.5 0.2 0.2\n",
    "negative_class.txt": "-1 0.5 0.5 0.2 0.2\n",       # class ids are 0 or more
    "huge_class.txt": "0 0.5 0.5 0.2 0.2\n2147483648 0.5 0.5 0.2 0.2\n",   # past int32
    "bad_exponent.txt": "0 1e 0.5 0.2 0.2\n",
    "dash.txt": "0 - 0.5 0.2 0.2\n",
    "latin1.txt": b"0 0.5 0.5 0.2 0.2 \xe9\n",
}


def _yolo_folder(root: Path, files: dict, images: bool = True) -> Path:
    labels = root / "labels" / "train"
    for name, text in files.items():
        f = labels / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    if images:
        (root / "images" / "train").mkdir(parents=True)
        for i, name in enumerate(sorted(files)):
            stem = Path(name).stem
            if i % 3 and "/" not in name:  # a third without an image: no_image_size
                _png(root / "images" / "train" / f"{stem}.png", 320 + 10 * i, 240)
    return labels


@pytest.mark.parametrize("images", [False, True])
def test_yolo_odd_files_same_rows(tmp_path, images, monkeypatch):
    monkeypatch.setattr(yolo_stream, "BATCH", 3)
    labels = _yolo_folder(tmp_path, YOLO_FILES, images)
    b = same_yolo(labels)
    assert b.units == ("px" if images else "normalized")
    same_yolo(labels, sizes=SizeTable({"plain": (100.0, 50.0), "crlf": (10.0, 10.0)}))


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_yolo_bad_file_same_message(tmp_path, bad, monkeypatch):
    monkeypatch.setattr(yolo_stream, "BATCH", 4)
    files = dict(YOLO_FILES)
    files["m_" + bad] = BAD_FILES[bad]
    labels = _yolo_folder(tmp_path, files, images=False)
    with pytest.raises(AnchorfitError) as exc:
        read_yolo_stream(labels)
    assert "m_" + bad in str(exc.value)
    same_yolo(labels)


def test_yolo_listing_like_rglob(tmp_path):
    root = tmp_path / "labels"
    for rel in ("a-b/x.txt", "a/x.txt", "a/b/y.txt", "a/z.txt", "B/q.txt", "a.b/c.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "link").symlink_to(root / "a", target_is_directory=True)  # not entered by rglob
    (root / "alias.txt").symlink_to(root / "a" / "x.txt")             # a file: counted
    b = same_yolo(root)
    assert len(b.files) == 7
    with pytest.raises(AnchorfitError, match="no .txt files found"):
        read_yolo_stream(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    (d / "x.jpg").write_bytes(b"")
    return d


def test_yolo_only_list_files(tmp_path):
    root = tmp_path / "lists"
    root.mkdir()
    (root / "train.txt").write_text("a.jpg\n")
    same_yolo(root)


def test_yolo_class_ids_without_names_like_pack_labels(tmp_path, monkeypatch):
    """No names file: read_yolo names ids in order of appearance and uses an id below the
    table's length as an index (a quirk kept for identical output)."""
    monkeypatch.setattr(yolo_stream, "BATCH", 2)
    root = tmp_path / "labels"
    root.mkdir()
    ids = [5, 0, 5, 2, 1, 7, 5, 3, 9, 0, 7, 12, 4, 4, 12, 30, 6]
    for i, c in enumerate(ids):
        (root / f"{i:02d}.txt").write_text(f"{c} 0.5 0.5 0.1 0.1\n{(c * 7) % 13} 0.4 0.4 0.2 0.2\n")
    b = same_yolo(root)
    assert b.classes[:2] == ["5", "9"]  # file 00: ids 5 and 35 % 13


# --------------------------------------------------------------------------- VOC folders

def _voc_sequential(path: Path) -> Boxes:
    """read_voc as it was: one file after another."""
    from anchorfit.data import voc
    from anchorfit.data._parse import list_files
    from anchorfit.data.boxes import BoxBuilder

    b = BoxBuilder("voc", str(path))
    for f in list_files(path, (".xml",)):
        voc._read_one(f, b)
    return b.build()


def _voc_xml(i: int) -> str:
    return (f"<annotation><filename>{i}.jpg</filename><size><width>{100 + i}</width>"
            f"<height>80</height></size><object><name>c{i % 3}</name><difficult>{i % 2}"
            f"</difficult><bndbox><xmin>{i % 50}</xmin><ymin>2</ymin><xmax>{i % 50 + 9}</xmax>"
            "<ymax>20</ymax></bndbox></object></annotation>")


@pytest.mark.parametrize("bad", [None, "<annotation><object></annotation>", b"\xff\xfe<a/>"])
def test_voc_folder_read_ahead_same_as_sequential(tmp_path, config_data, bad):
    from anchorfit.data.voc import read_voc

    root = tmp_path / "voc"
    root.mkdir()
    for i in range(700):  # more than two read-ahead batches
        (root / f"{i:04d}.xml").write_text(_voc_xml(i))
    if bad is not None:
        target = root / "0555.xml"
        target.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        with pytest.raises(AnchorfitError) as exact:
            _voc_sequential(root)
        with pytest.raises(AnchorfitError) as got:
            read_voc(root)
        assert str(got.value) == str(exact.value) and "0555.xml" in str(got.value)
        return
    assert_same(_voc_sequential(root), read_voc(root))
    assert_same(_voc_sequential(config_data / A / "raccoon/annotations"),
                read_voc(config_data / A / "raccoon/annotations"))


# --------------------------------------------------------------------------- progress

def test_progress_lines_off_a_terminal(config_data):
    import io

    from anchorfit.data import read_annotations
    from anchorfit.data.progress import Meter, status

    stream = io.StringIO()
    with status("reading", stream=stream, interval=0):
        read_annotations(config_data / A / "coco128_cocojson/instances_train2017.json")
        read_annotations(config_data / A / "coco128_yolo/labels/train2017")
    lines = stream.getvalue().splitlines()
    size = (config_data / A / "coco128_cocojson/instances_train2017.json").stat().st_size
    coco = [ln for ln in lines if ln.startswith("reading instances_train2017.json: ")]
    assert coco and f"{size / 1e3:.1f} kB of {size / 1e3:.1f} kB (100%)" in coco[-1]
    assert "B/s, ETA 0 s" in coco[-1]
    assert any(ln.startswith("reading train2017: 128 of 128 files (100%)") for ln in lines)
    quiet = io.StringIO()  # the default interval: nothing for a read shorter than 10 s
    with status("reading", stream=quiet):
        read_annotations(config_data / A / "coco128_cocojson/instances_train2017.json")
    assert quiet.getvalue() == ""
    m = Meter()
    m.start("x", 3_000_000_000)
    m.done = 1_500_000_000
    assert m.describe(m._t0 + 10).startswith("1.5 GB of 3.0 GB (50%), 150.0 MB/s, ETA 10 s")
