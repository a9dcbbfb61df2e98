"""``anchorfit boxes`` end to end: outputs, schema, and every bad input → exit 2, no file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "anchorfit" / "schemas" /
                     "boxes.schema.json").read_text())
A = "annotations"


def test_coco_json_statistics(shipped_data, run_cli, tmp_path):
    out = tmp_path / "b.json"
    code, _, err = run_cli("boxes",
                           str(shipped_data / A / "coco128_cocojson/instances_train2017.json"),
                           "--format", "json", "-o", str(out))
    assert code == 0 and "iscrowd" in err
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["counts"]["rows_read"] == 939 and data["dropped"]["iscrowd"] == 10
    assert data["counts"]["boxes"] + sum(data["dropped"].values()) == 939
    assert sum(data["buckets"].values()) == data["counts"]["boxes"]
    assert data["space"] == "letterbox 640x640 (HxW)"
    # letterbox to 640: no side can exceed the input
    assert data["percentiles"]["w"]["p100"] <= 640 and data["percentiles"]["h"]["p100"] <= 640


def test_yolo_with_sizes_table_and_plot(shipped_data, run_cli, tmp_path):
    png = tmp_path / "sizes.png"
    code, out, _ = run_cli("boxes", str(shipped_data / A / "coco128_yolo/labels/train2017"),
                           "--from", "yolo", "--image-sizes",
                           str(shipped_data / A / "coco128_yolo/image_sizes.csv"),
                           "--plot", str(png), "--format", "md")
    assert code == 0 and "| dropped: no_image_size | 12 |" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stretch_works_without_sizes_like_darknet(shipped_data, run_cli):
    code, out, _ = run_cli("boxes", str(shipped_data / A / "voc2012_subset100/yolo/obj_train_data"),
                           "--policy", "stretch", "--input", "416", "--format", "csv")
    assert code == 0 and out.startswith("quantity,p0,")


def test_wider_without_sizes_needs_policy(shared_wider, run_cli):
    path = shared_wider / A / "wider_face/wider_face_val_bbx_gt.txt"
    code, _, err = run_cli("boxes", str(path))
    assert code == 2 and "image sizes are unknown" in err and "--policy none" in err
    assert "Traceback" not in err
    code, out, _ = run_cli("boxes", str(path), "--policy", "none", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["dropped"]["zero_size"] == 11
    assert data["issues"]["flagged_by_format"] == 585


BAD = [
    ("bad.json", '{"images": [{"id": 1, "width": 10, "height": 10}],\n "annotations": [\n'
                 '  {"image_id": 1, "bbox": [1, 2, 3, 4]},,\n]}\n', "bad.json:3"),
    ("bad.csv", "filename,width,height,class,xmin,ymin,xmax,ymax\na.jpg,100,100,c,1,2,30,40\n"
                "b.jpg,100,100,c,1,x,30,40\n", "bad.csv:3"),
    ("bad.txt", "0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", "bad.txt:4"),
]


@pytest.mark.parametrize("name, text, where", BAD)
def test_malformed_files_exit_2_without_output(run_cli, tmp_path, name, text, where):
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out.json"
    code, stdout, err = run_cli("boxes", str(src), "--policy", "none", "-f", "json", "-o", str(out))
    assert code == 2 and where in err and "Traceback" not in err
    assert not out.exists() and stdout == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.json")]


def test_malformed_voc_and_yolo_folders(run_cli, tmp_path):
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "a.xml").write_text("<annotation><size><width>10</width><height>10</height></size>\n"
                               "<object><bndbox><xmin>1</xmin></bndbox></object>\n")
    code, _, err = run_cli("boxes", str(voc))
    assert code == 2 and "a.xml:3" in err
    yolo = tmp_path / "labels"
    yolo.mkdir()
    (yolo / "a.txt").write_text("0 0.5 0.5 0.2\n")
    code, _, err = run_cli("boxes", str(yolo), "--policy", "stretch")
    assert code == 2 and "a.txt:1" in err and "5 fields" in err


def _csv(tmp_path, rows):
    p = tmp_path / "boxes.csv"
    p.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n" +
                 "".join(f"img.jpg,100,100,c,{r}\n" for r in rows))
    return p


def test_invalid_boxes_counted_or_refused(run_cli, tmp_path):
    p = _csv(tmp_path, ["10,10,40,40", "10,10,10,40", "50,50,40,60", "nan,1,2,3"])
    code, out, _ = run_cli("boxes", str(p), "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["counts"]["boxes"] == 1
    assert data["dropped"] == {"zero_size": 1, "negative_size": 1, "nan_size": 1}
    code, _, err = run_cli("boxes", str(p), "--strict")
    assert code == 2 and "boxes.csv:3" in err and "zero" in err
    only_bad = _csv(tmp_path, ["10,10,10,40", "50,50,40,60"])
    code, _, err = run_cli("boxes", str(only_bad))
    assert code == 2 and "no usable boxes" in err and "negative_size: 1" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder(run_cli, tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    (d / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    d.chmod(0)
    try:
        code, _, err = run_cli("boxes", str(d), "--from", "yolo", "--policy", "stretch")
    finally:
        d.chmod(0o755)
    assert code == 2 and "locked" in err


def test_unreadable_file(run_cli, tmp_path):
    d = tmp_path / "labels.json"
    d.mkdir()  # a folder where a file is expected: unreadable as a file, even for root
    code, _, err = run_cli("boxes", str(d), "--from", "coco")
    assert code == 2 and "cannot read" in err and "labels.json" in err


def test_missing_path_and_bad_options(run_cli, tmp_path):
    code, _, err = run_cli("boxes", str(tmp_path / "nope.json"))
    assert code == 2 and "no such file" in err
    p = _csv(tmp_path, ["10,10,40,40"])
    code, _, err = run_cli("boxes", str(p), "--jitter", "1.1")
    assert code == 2 and "--jitter" in err
    code, _, err = run_cli("boxes", str(p), "--input", "0")
    assert code == 2 and "--input" in err
