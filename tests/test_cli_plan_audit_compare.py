"""plan, audit and compare as a user types them, on the real configs and annotations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from anchorfit.schemas import load_schema

REPO = Path(__file__).resolve().parents[1]


def test_plan_without_arguments_is_s3fd_table_1_with_erf(run_cli):
    code, out, err = run_cli("plan", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("plan"))
    levels = data["levels"]
    # JSON gives [y, x] per axis (README's convention)
    assert [lv["stride"] for lv in levels] == [[s, s] for s in (4, 8, 16, 32, 64, 128)]
    assert [lv["anchors"][0][0] for lv in levels] == [16, 32, 64, 128, 256, 512]
    assert [lv["head_rf"] for lv in levels] == [[r, r] for r in (48, 108, 228, 340, 468, 724)]
    for lv in levels:
        for axis in (0, 1):
            erf = lv["erf"]["value"][axis]
            lo, hi = lv["erf"]["ci95"][axis]
            assert lo <= erf <= hi and erf < lv["rf"][axis]  # ERF < RF on every level and axis
        assert min(lv["erf"]["value"]) <= lv["erf"]["mean"] <= max(lv["erf"]["value"])
    assert "ERF: 2 samples" in err


def test_plan_with_wider_face_and_figures(run_cli, wider_val_or_coco128, tmp_path):
    ladder, scatter = tmp_path / "ladder.png", tmp_path / "boxes.png"
    code, out, err = run_cli("plan", "s3fd", "--no-erf", "--boxes",
                             str(wider_val_or_coco128),
                             "--policy", "none", "-k", "6", "--plot", str(ladder),
                             "--plot-boxes", str(scatter), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("plan"))
    assert sum(lv["boxes"] for lv in data["levels"]) == data["dataset"]["boxes"]
    assert data["levels"][0]["boxes"] > data["levels"][-1]["boxes"]  # WIDER: mostly tiny faces
    assert ladder.stat().st_size > 10_000 and scatter.stat().st_size > 10_000


def test_audit_flags_mask_1_2_3(run_cli, shipped_data):
    cfg = shipped_data / "configs/darknet/alexeyab/yolov4-tiny.cfg"
    code, out, err = run_cli("audit", str(cfg), "-f", "json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, load_schema("audit"))
    af106 = [f["message"] for f in data["findings"] if f["code"] == "AF106"]
    assert any("anchors [0]" in m for m in af106) and any("anchor 3 is used" in m for m in af106)


def test_pjreddie_yolov3_tiny_masks_are_fine_but_half_a_cell_off(run_cli, shipped_data):
    cfg = shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg"
    code, out, _ = run_cli("audit", str(cfg), "-f", "json")
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert "AF106" not in codes  # its masks are 3,4,5 / 0,1,2
    assert "AF109" in codes  # RF centres sit S/2 right/down of (i + 0.5) * S


def test_audit_flags_ssd300_steps(run_cli):
    code, out, _ = run_cli("audit", str(REPO / "anchorfit/configs/ssd300_vgg16.yaml"), "-f", "json")
    af108 = {f["level"]: f["measured"] for f in json.loads(out)["findings"] if f["code"] == "AF108"}
    assert af108 == {"conv10_2": {"step": 100.0, "stride": 64.0, "drift": 72.0},
                     "conv11_2": {"step": 300.0, "stride": 64.0, "drift": 0.0}}


def test_audit_flags_torchvision_faster_rcnn_p6_step(run_cli):
    code, out, _ = run_cli("audit", "torchvision:fasterrcnn_resnet50_fpn", "-f", "json")
    af108 = [f for f in json.loads(out)["findings"] if f["code"] == "AF108"]
    assert [(f["level"], f["measured"]["step"], f["measured"]["stride"]) for f in af108] == [
        ("P6", 61.0, 64.0)]


def test_audit_fail_on_and_dataset_checks(run_cli, shipped_data):
    cfg = shipped_data / "configs/darknet/alexeyab/yolov4-tiny.cfg"
    assert run_cli("audit", str(cfg), "--fail-on", "warning")[0] == 1
    assert run_cli("audit", str(cfg), "--fail-on", "error")[0] == 0
    ann = shipped_data / "annotations/coco128_yolo/labels/train2017"
    sizes = shipped_data / "annotations/coco128_yolo/image_sizes.csv"
    code, out, err = run_cli("audit", str(cfg), "--boxes", str(ann), "--image-sizes", str(sizes),
                             "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {"AF110", "AF111", "AF112"} <= set(data["checks_run"])


def test_compare_yolov3_on_coco128_and_export_round_trip(run_cli, shipped_data, tmp_path):
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    target = tmp_path / "yolov3_fitted.yaml"
    recall = tmp_path / "recall.png"
    code, out, err = run_cli("compare", str(REPO / "anchorfit/configs/yolov3.yaml"), "--boxes", str(ann),
                             "--restarts", "3", "--export", "k-means", "--export-to",
                             str(target), "--plot-recall", str(recall), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("compare"))
    names = [s["name"] for s in data["sets"]]
    assert names[:4] == ["default", "rf x4", "k-means", "level-aware k-means"]
    kmeans = next(s for s in data["sets"] if s["name"] == "k-means")
    from anchorfit.load import load_detector

    again = load_detector(str(target))
    got = [[[a.w, a.h] for a in lv.anchors] for lv in again.levels]
    want = [[[round(w), round(h)] for w, h in lv] for lv in kmeans["anchors"]]
    assert got == want
    assert recall.stat().st_size > 10_000


def test_compare_s3fd_on_wider_face(run_cli, wider_val_or_coco128):
    ann = wider_val_or_coco128
    code, out, err = run_cli("compare", "s3fd", "--boxes", str(ann), "--policy", "none",
                             "--restarts", "2", "-f", "csv")
    assert code == 0, err
    header = out.splitlines()[0].split(",")
    assert header == ["metric", "default", "rf x4", "k-means", "level-aware k-means", "best"]
    assert any(line.startswith("grid_recall@0.35 small") for line in out.splitlines())


def test_compare_never_overwrites_the_original(run_cli, shipped_data, tmp_path):
    cfg = tmp_path / "yolov3-tiny.cfg"
    cfg.write_text((shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg").read_text())
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    before = cfg.read_text()
    code, _, err = run_cli("compare", str(cfg), "--boxes", str(ann), "--restarts", "2",
                           "--export", "k-means", "--export-to", str(cfg))
    assert code == 2 and "--in-place" in err and cfg.read_text() == before
    code, _, err = run_cli("compare", str(cfg), "--boxes", str(ann), "--restarts", "2",
                           "--export", "k-means", "--in-place")
    assert code == 0, err
    assert cfg.read_text() != before and (tmp_path / "yolov3-tiny.cfg.bak").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["plan", "nosuchmodel"], "no such file"),
    (["plan", "--samples", "0"], "--samples 0"),
    (["plan", "--no-erf", "--plot-boxes", "x.png"], "--plot-boxes needs --boxes"),
    (["plan", "--no-erf", "--ratio", "-1"], "argument --ratio: expected a finite number above 0"),
    (["audit"], "give a detector to audit"),
    (["audit", "s3fd", "--only", "AF999"], "unknown check code"),
    (["audit", "s3fd", "--erf", "conv3_3=abc"], "--erf 'conv3_3=abc'"),
    (["audit", "s3fd", "--erf", "nolevel=20"], "does not have"),
    (["compare", "s3fd", "--boxes", "/no/such/annotations.json"], "annotations.json"),
    (["compare", "s3fd", "--boxes", "x.json", "--export-to", "y.cfg"], "need --export"),
])
def test_bad_input_exit_2(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_bad_export_set_name(run_cli, shipped_data):
    ann = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    code, _, err = run_cli("compare", "s3fd", "--boxes", str(ann), "--restarts", "1",
                           "--export", "magic")
    assert code == 2 and "is not a compared set" in err and "level-aware k-means" in err
