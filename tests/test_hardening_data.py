"""Malformed annotation files (issue 12 and what tests/test_fuzz.py found): each one is a single
message naming the file and its line or JSON key, exit status 2, no traceback; and the valid
neighbours of those inputs still read."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from anchorfit.data import read_annotations
from anchorfit.errors import AnchorfitError

SEEDS = Path(__file__).resolve().parent / "data" / "fuzz_seeds"


def _coco(images: object = None, annotations: object = None, **extra: object) -> bytes:
    """A small COCO file; the default is one valid 500x375 image with one box."""
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 500, "height": 375}]
            if images is None else images,
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "bbox": [10, 20, 30, 40], "iscrowd": 0}]
            if annotations is None else annotations,
            "categories": [{"id": 1, "name": "person"}], **extra}
    return json.dumps(data).encode()


def _ann(**fields: object) -> list[dict]:
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0}
    ann.update(fields)
    return [ann]


_IMG = {"id": 1, "file_name": "a.jpg", "width": 500, "height": 375}
_WIDER = (b"0--Parade/a.jpg\n1\n449 330 122 149 0 0 0 0 0 0 \n"
          b"0--Parade/b.jpg\n2\n361 98 263 339 0 0 0 0 0 0 \n78 221 7 8 2 0 0 0 0 0 \n")
_CSV = (b"filename,width,height,class,xmin,ymin,xmax,ymax\n"
        b"a.jpg,275,183,raccoon,4,4,271,180\nb.jpg,720,960,raccoon,250,49,714,869\n")

# (id, format, file name, content, text the message must hold: where, then what)
CASES = [
    ("coco-images-int", "coco", "a.json", b'{"images": 5, "annotations": []}',
     "a.json: images: expected a list, found 5"),
    ("coco-annotations-dict", "coco", "a.json", _coco(annotations={"a": 1}),
     "a.json: annotations: expected a list"),
    ("coco-image-id-list", "coco", "a.json", _coco(annotations=_ann(image_id=[1])),
     "a.json: annotations[0].image_id: expected an integer or string id, found [1]"),
    ("coco-images-id-list", "coco", "a.json", _coco(images=[{**_IMG, "id": [1]}]),
     "a.json: images[0].id: expected an integer or string id, found [1]"),
    ("coco-bbox-1e400", "coco", "a.json",
     _coco().replace(b"[10, 20, 30, 40]", b"[10, 20, 1e400, 40]"),
     "a.json: annotations[0].bbox[2]: expected a number in bbox, found inf (not a finite float)"),
    ("coco-bbox-400-digits", "coco", "a.json",
     _coco().replace(b"[10, 20, 30, 40]", b"[10, 20, " + b"9" * 400 + b", 40]"),
     "a.json: annotations[0].bbox[2]: expected a number in bbox, found a 1329-bit "
     "integer (not a finite float)"),
    ("coco-int-past-str-limit", "coco", "a.json",
     _coco().replace(b"[10, 20, 30, 40]", b"[10, 20, " + b"9" * 5000 + b", 40]"),
     "a.json: malformed JSON: Exceeds the limit"),
    ("coco-deep-nesting", "coco", "a.json", b'{"images": ' + b"[" * 100000,
     "a.json: JSON nested too deeply"),
    ("coco-duplicate-image-id", "coco", "a.json",
     _coco(images=[_IMG, {**_IMG, "file_name": "b.jpg"}]),
     "a.json: images[1].id: image id 1 appears twice in 'images'"),
    ("coco-bool-in-bbox", "coco", "a.json", _coco(annotations=_ann(bbox=[True, 20, 30, 40])),
     "a.json: annotations[0].bbox[0]: expected a number in bbox, found True"),
    ("coco-string-in-bbox", "coco", "a.json", _coco(annotations=_ann(bbox=[10, "20", 30, 40])),
     "a.json: annotations[0].bbox[1]: expected a number in bbox, found '20'"),
    ("coco-string-width", "coco", "a.json", _coco(images=[{**_IMG, "width": "500"}]),
     "a.json: images[0].width: expected a number for width, found '500'"),
    ("coco-bool-height", "coco", "a.json", _coco(images=[{**_IMG, "height": False}]),
     "a.json: images[0].height: expected a number for height, found False"),
    ("coco-iscrowd-7", "coco", "a.json", _coco(annotations=_ann(iscrowd=7)),
     "a.json: annotations[0].iscrowd: expected 0 or 1 for iscrowd, found 7"),
    ("coco-iscrowd-string", "coco", "a.json", _coco(annotations=_ann(iscrowd="1")),
     "a.json: annotations[0].iscrowd: expected 0 or 1 for iscrowd, found '1'"),
    ("wider-latin1", "wider", "gt.txt", _WIDER.replace(b"449", b"4\xe9"),
     "gt.txt:3: not a UTF-8 text file (invalid continuation byte)"),
    ("wider-count-negative", "wider", "gt.txt", _WIDER.replace(b"\n2\n", b"\n-3\n"),
     "gt.txt:5: expected a box count of 0 or more, found -3"),
    ("csv-latin1", "csv", "boxes.csv", _CSV.replace(b"b.jpg", b"\xe9.jpg"),
     "boxes.csv:3: not a UTF-8 text file (invalid continuation byte)"),
    ("fddb-count-negative", "fddb", "ell.txt", b"img_1\n-2\n1 1 0 5 5 1\n",
     "ell.txt:2: expected a face count of 0 or more, found -2"),
]


@pytest.mark.parametrize("fmt, name, content, expected",
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_malformed_annotations_exit_2(tmp_path: Path, run_cli, fmt: str, name: str,
                                      content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run_cli("boxes", str(path), "--from", fmt, "--policy", "none")
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert expected.replace(name, str(path)) in err, err
    # the library raises the same message (the CLI only prints it)
    with pytest.raises(AnchorfitError) as exc:
        read_annotations(path, fmt)
    assert expected.replace(name, str(path)) in str(exc.value)


def test_valid_neighbours_still_read(tmp_path: Path) -> None:
    """What the checks must not refuse: null sizes (unknown), boolean iscrowd, string ids,
    float coordinates, and WIDER's count 0 with its placeholder line."""
    path = tmp_path / "ok.json"
    images = [{"id": "a", "file_name": "c.jpg", "width": None, "height": 375.0}, _IMG]
    anns = [{"image_id": "a", "category_id": 1, "bbox": [1.5, 2, 3.25, 4], "iscrowd": False},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 8, 9], "iscrowd": True},
            {"image_id": 1, "category_id": 1, "bbox": [None, 0, 8, 9], "iscrowd": 0}]
    path.write_bytes(_coco(images=images, annotations=anns))
    boxes = read_annotations(path, "coco")
    assert len(boxes) == 2 and boxes.skipped == {"iscrowd": 1}
    assert boxes.w.tolist() == [3.25, 8.0]
    assert boxes.image_width[0] != boxes.image_width[0]  # NaN: unknown width
    wider = tmp_path / "gt.txt"
    wider.write_bytes(_WIDER + b"1--x/c.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n")
    assert len(read_annotations(wider, "wider")) == 3


def _png_header(width: int, height: int) -> bytes:
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk \
        + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("cut", [9, 16, 20, 23])
def test_truncated_png_next_to_yolo_labels(tmp_path: Path, run_cli, cut: int) -> None:
    """A PNG cut inside its IHDR gives no size (not a struct.error): the boxes of that image
    stay normalised, and a letterbox run says why it cannot use them."""
    (tmp_path / "a.txt").write_bytes((SEEDS / "yolo" / "2007_000032.txt").read_bytes())
    (tmp_path / "a.png").write_bytes(_png_header(500, 281)[:cut])
    boxes = read_annotations(tmp_path, "yolo")
    assert boxes.units == "normalized" and len(boxes) == 4
    code, _, err = run_cli("boxes", str(tmp_path), "--from", "yolo", "--policy", "letterbox")
    assert code == 2 and "Traceback" not in err
    assert "the boxes are normalised and no image sizes are known" in err.replace("\n", " ")
    (tmp_path / "a.png").write_bytes(_png_header(500, 281))   # the whole header: pixels
    boxes = read_annotations(tmp_path, "yolo")
    assert boxes.units == "px" and boxes.w.tolist()[0] == pytest.approx(0.036 * 500)


@pytest.mark.parametrize("token", ["-1", "1" + "0" * 40, "2147483648"])
def test_yolo_class_id_out_of_range(tmp_path: Path, token: str) -> None:
    """A negative class id names no class; one past int32 cannot be stored (it was an
    OverflowError in the plain reader and a wrapped value in the streaming one)."""
    (tmp_path / "a.txt").write_text(f"0 0.5 0.5 0.1 0.1\n{token} 0.5 0.5 0.2 0.2\n")
    for fmt_reader in ("yolo",):
        with pytest.raises(AnchorfitError) as exc:
            read_annotations(tmp_path, fmt_reader)
        assert f"a.txt:2: expected a class id from 0 to 2147483647, found '{token}'" \
            in str(exc.value)
    from anchorfit.data.yolo import read_yolo

    with pytest.raises(AnchorfitError) as plain:
        read_yolo(tmp_path)
    assert str(plain.value) == str(exc.value)


def _coco8_edited(tmp_path: Path, edit: tuple[str, str]) -> Path:
    """A copy of the shipped coco8 dataset whose data.yaml has ``edit[0]`` replaced once by
    ``edit[1]``; returns the yaml's path."""
    import shutil

    root = tmp_path / "coco8"
    shutil.copytree(Path(__file__).resolve().parent / "data" / "ultralytics_coco8", root)
    yaml_path = root / "data.yaml"
    text = yaml_path.read_text()
    assert edit[0] in text
    yaml_path.write_text(text.replace(edit[0], edit[1], 1))
    return yaml_path


@pytest.mark.parametrize("edit, expected", [
    (("  0: person", "  .inf: person"), "data.yaml: names: class ids must be integers, found inf"),
    (("names:", "nc: .inf\nnames:"), "data.yaml: nc: expected a positive integer class count, "
                                     "found inf"),
])
def test_ultralytics_infinite_class_ids(tmp_path: Path, run_cli, edit, expected) -> None:
    """``int(inf)`` raises OverflowError, which the class-id checks did not catch."""
    yaml_path = _coco8_edited(tmp_path, edit)
    code, _, err = run_cli("boxes", str(yaml_path))
    assert code == 2 and "Traceback" not in err
    assert expected.replace("data.yaml", str(yaml_path)) in err, err


def test_yolo_empty_label_of_unknown_size_skips_nothing(tmp_path: Path) -> None:
    """An empty label file whose image size is unknown adds no ``no_image_size: 0`` entry (the
    plain and the streaming reader now report the same skips)."""
    from anchorfit.data.yolo import read_yolo
    from anchorfit.data.yolo_stream import read_yolo_stream

    (tmp_path / "a.txt").write_bytes((SEEDS / "yolo" / "2007_000032.txt").read_bytes())
    (tmp_path / "a.png").write_bytes(_png_header(500, 281))
    (tmp_path / "b.txt").write_text("")
    plain, stream = read_yolo(tmp_path), read_yolo_stream(tmp_path)
    assert plain.skipped == stream.skipped == {}
    assert len(plain) == len(stream) == 4


@pytest.mark.parametrize("edit, listing, expected", [
    # strict fuzz census of fuzz-b: Path.exists() raises ENAMETOOLONG (OSError) and os.stat
    # ValueError on a NUL byte; neither is "not found"
    (("train: images/train", "train: images/" + "x" * 300), None,
     "data.yaml: train: 'images/xxx"),
    (("train: images/train", 'train: "images/tr\\0ain"'), None,
     "data.yaml: train: 'images/tr\\x00ain' is no path: it holds a NUL byte"),
    (("train: images/train", "train: list.txt"), "images/train/a.jpg\n" + "y" * 300 + ".jpg\n",
     "list.txt:2: 'yyy"),
])
def test_ultralytics_path_the_os_cannot_look_up(tmp_path: Path, run_cli, edit, listing,
                                                 expected) -> None:
    yaml_path = _coco8_edited(tmp_path, edit)
    root = yaml_path.parent
    if listing is not None:
        (root / "list.txt").write_text(listing)
    code, out, err = run_cli("boxes", str(yaml_path), "--split", "train")
    assert (code, out) == (2, "") and "Traceback" not in err, err
    assert expected.replace("data.yaml", str(yaml_path)).replace("list.txt", str(root / "list.txt")) \
        in err, err
    assert "is no path" in err


def test_sizes_past_float32_are_dropped_without_runtime_warnings(tmp_path):
    """A COCO bbox or YOLO width of 1e300 overflows float32: the streaming readers store inf
    quietly (as BoxBuilder does) and validation drops the row as nan_size, counted; no
    RuntimeWarning reaches the user's terminal."""
    import json
    import warnings

    from anchorfit.data import validate
    from anchorfit.data.coco_stream import read_coco_stream
    from anchorfit.data.sizes import SizeTable
    from anchorfit.data.yolo_stream import read_yolo_stream

    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
           "annotations": [{"id": i, "image_id": 1, "category_id": 1,
                            "bbox": [i, 0, 1e300 if i == 1 else 5, 5]} for i in range(1, 5)],
           "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 1e300 0.2\n0 0.5 0.5 0.1 0.2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coco = read_coco_stream(tmp_path / "c.json")
        yolo = read_yolo_stream(tmp_path / "labels", sizes=SizeTable({"a": (640.0, 480.0)}))
        for boxes, kept_rows in ((coco, 3), (yolo, 1)):
            kept, report = validate(boxes)
            assert report.dropped == {"nan_size": 1} and len(kept) == kept_rows
