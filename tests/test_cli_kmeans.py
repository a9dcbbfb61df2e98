"""``anchorfit kmeans`` end to end: schema, determinism, formats, levels, errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "anchorfit" / "schemas" /
                     "kmeans.schema.json").read_text())
COCO = "annotations/coco2014_val_sample100/sampled_gts_bbox_area.json"


def test_json_output_is_complete_and_deterministic(shipped_data, run_cli, tmp_path):
    args = ["kmeans", str(shipped_data / COCO), "-k", "9", "--levels", "8,16,32", "--seed", "5",
            "--format", "json"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert data["seed"] == 5 and [lv["stride"] for lv in data["levels"]] == [8, 16, 32]
    assert sum(len(lv["anchors"]) for lv in data["levels"]) == 9
    assert data["boxes"]["rows_read"] == 830
    assert data["metrics"]["grid"]["recall"]["0.5"]["all"] <= data["metrics"]["iou_recall"]["0.5"]
    assert len(data["restart_spread"]["mean_iou"]) >= 10
    code, out2, _ = run_cli(*args)
    assert json.loads(out2)["levels"] == data["levels"]


def test_table_md_csv(shipped_data, run_cli, tmp_path):
    path = str(shipped_data / "annotations/voc2012_subset100/pascalvoc_xml")
    code, out, _ = run_cli("kmeans", path, "-k", "5")
    assert code == 0 and "mean_best_iou" in out and "bpr@4" in out
    code, out, _ = run_cli("kmeans", path, "-k", "5", "--format", "md")
    assert code == 0 and "| metric | value |" in out
    target = tmp_path / "a.csv"
    code, _, _ = run_cli("kmeans", path, "-k", "5", "--format", "csv", "-o", str(target))
    rows = target.read_text().strip().splitlines()
    assert code == 0 and rows[0].startswith("level,stride,w,h") and len(rows) == 6


def test_yolov5_method_and_plot(shipped_data, run_cli, tmp_path):
    png = tmp_path / "k.png"
    code, out, err = run_cli("kmeans", str(shipped_data / COCO), "--method", "yolov5",
                             "--levels", "8,16,32", "--plot", str(png), "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["assign"] == "area" and data["method"] == "yolov5"
    anchors = np.concatenate([np.array(lv["anchors"]) for lv in data["levels"]])
    assert (np.diff(anchors.prod(1)) >= -1e-6).all()  # smallest to the finest level
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_actual_positions_with_border(shipped_data, run_cli):
    code, out, err = run_cli("kmeans", str(shipped_data / COCO), "--levels", "8,16,32",
                             "--grid-positions", "actual", "--offset", "top-left", "-f", "json")
    assert code == 0, err
    spec = json.loads(out)["metrics"]["grid"]["spec"]
    assert spec["positions"] == "actual" and spec["offset"] == "top-left"
    assert spec["image_size"] == [640, 640]


def test_bad_options_exit_2_without_output(shipped_data, run_cli, tmp_path):
    out = tmp_path / "o.json"
    for extra in (["--levels", "8,x"], ["-k", "0"], ["--anchor-t", "0.5"],
                  ["--level-range", "8,2"], ["-k", "2", "--levels", "8,16,32"]):
        code, _, err = run_cli("kmeans", str(shipped_data / COCO), *extra, "-o", str(out))
        assert code == 2 and "error" in err and "Traceback" not in err, extra
    assert not out.exists()


def test_malformed_annotation_exit_2(run_cli, tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"images": [], "annotations": [{"bbox": [1, 2, 3], "image_id": 1}]}')
    code, _, err = run_cli("kmeans", str(p), "-o", str(tmp_path / "o.json"))
    assert code == 2 and "annotations[0].bbox" in err and not (tmp_path / "o.json").exists()
