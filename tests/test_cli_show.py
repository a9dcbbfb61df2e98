"""``anchorfit show FILE``: the Detector in every output format, and errors as messages."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_table(run_cli) -> None:
    code, out, _ = run_cli("show", str(ROOT / "anchorfit" / "configs" / "faceboxes.yaml"))
    assert code == 0
    assert "faceboxes @ 1024x1024 (stretch)" in out
    for text in ("inception3", "463", "527", "explicit", "32x32 (x16 dense)", "(i+0.5)*S"):
        assert text in out


def test_json_has_every_level_field(run_cli) -> None:
    code, out, _ = run_cli("show", "s3fd", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["input"] == [640, 640] and data["convention"] == "index"
    levels = data["levels"]
    assert [lv["head_rf"][0] for lv in levels] == [48, 108, 228, 340, 468, 724]
    assert [lv["stride"][0] for lv in levels] == [4, 8, 16, 32, 64, 128]
    assert [lv["anchors"] for lv in levels][0] == [[16, 16]]
    assert levels[0]["center"] == "cell-center" and levels[3]["rf_center"] == [-48.5, -48.5]


def test_csv_and_markdown(run_cli) -> None:
    code, out, _ = run_cli("show", str(ROOT / "anchorfit" / "configs" / "ssd300_vgg16.yaml"), "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["step"] for r in rows] == ["8", "16", "32", "64", "100", "300"]
    assert [r["stride"] for r in rows] == ["8", "16", "32", "64", "64", "64"]
    code, out, _ = run_cli("show", str(ROOT / "anchorfit" / "configs" / "yolov3-tiny.yaml"), "-f", "md")
    assert code == 0 and out.startswith("| level |") and "| P5 | 32 |" in out


def test_input_override_and_output_file(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "det.json"
    code, out, _ = run_cli("show", "yolov3", "--input", "320", "-f", "json", "-o", str(target))
    assert code == 0 and out == ""
    data = json.loads(target.read_text())
    assert data["input"] == [320, 320]
    assert data["levels"][0]["feature_size"] == [10, 10]


def test_darknet_backbone_says_it_has_no_levels(run_cli, shipped_data: Path) -> None:
    code, _, err = run_cli("show", str(shipped_data / "configs/darknet/pjreddie/darknet53.cfg"))
    assert code == 0 and "no detection levels" in err


def test_missing_file_and_unknown_suffix(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("show", "no_such_thing")
    assert code == 2 and out == "" and "no such file" in err
    odd = tmp_path / "model.xyz"
    odd.write_text("x")
    code, _, err = run_cli("show", str(odd))
    assert code == 2 and "unknown file type '.xyz'" in err
