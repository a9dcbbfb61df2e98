"""``anchorfit rf`` as a user types it: tables, the JSON contract, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from anchorfit.schemas import load_schema

NETS = Path(__file__).parent / "nets" / "small.py"


def test_resnet50_table_as_in_the_issue(run_cli):
    code, out, err = run_cli("rf", "torchvision:resnet50", "--input", "1024x1024", "--layers",
                             "layer1,layer2,layer3,layer4")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│ layer")]
    cells = [[c.strip() for c in r.strip("│").split("│")] for r in rows]
    assert [c[:4] for c in cells] == [["layer1", "35", "4", "17"], ["layer2", "91", "8", "45"],
                                      ["layer3", "267", "16", "133"],
                                      ["layer4", "427", "32", "213"]]
    assert "index convention" in out


def test_json_contract(run_cli):
    code, out, _ = run_cli("rf", "torchvision:resnet50", "--input", "1024x1024", "--layers",
                           "layer1,layer4", "--format", "json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, load_schema("rf"))
    assert data["model"] == "torchvision:resnet50"
    assert data["input"] == [1024, 1024] and data["convention"] == "index"
    layer4 = data["layers"][1]
    assert layer4 == {**layer4, "name": "layer4", "rf": [427, 427], "stride": [32, 32],
                      "padding": [213, 213], "center": [0, 0], "aligned": True,
                      "global_context": False, "feature_size": [32, 32]}


def test_json_halves_and_flags_for_a_detector(run_cli):
    code, out, _ = run_cli("rf", "torchvision:ssd300_vgg16", "-f", "json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, load_schema("rf"))
    first, last = data["layers"][0], data["layers"][-1]
    assert first["rf"] == [92, 92] and first["center"] == [3.5, 3.5] and first["head_rf"] == [108, 108]
    assert last["rf"] == [772, 772] and last["center"] == [135.5, 135.5]


def test_csv_markdown_and_output_file(run_cli, tmp_path):
    code, out, _ = run_cli("rf", "torchvision:resnet18", "-f", "csv", "--layers", "layer4")
    assert code == 0 and out.splitlines()[1].startswith("layer4,435,32,217,0,7x7")
    code, out, _ = run_cli("rf", "torchvision:resnet18", "-f", "md", "--layers", "layer4")
    assert out.startswith("| layer | rf |")
    target = tmp_path / "rf.json"
    code, out, _ = run_cli("rf", "torchvision:resnet18", "-f", "json", "-o", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["layers"]


def test_verify_reports_agreement(run_cli):
    code, out, err = run_cli("rf", f"{NETS}:functional", "--input", "38x62", "--verify")
    assert code == 0, err
    assert "agrees" in out and "DIFFERS" not in out


def test_non_square_input_prints_y_x(run_cli):
    code, out, _ = run_cli("rf", f"{NETS}:functional", "--input", "38x62", "-f", "csv")
    row = out.splitlines()[1].split(",")
    assert row[2] == "2x4"  # stride y=2, x=4


@pytest.mark.parametrize("args, message", [
    (["torchvision:resnet5O"], "unknown torchvision model 'resnet5O'"),
    (["torchvision:resnet18", "--input", "abc"], "--input 'abc' is not a size"),
    (["torchvision:resnet18", "--input", "0x224"], "is not a size"),
    (["torchvision:resnet18", "--layers", "layer9"], "no layer named 'layer9'"),
    (["torchvision:vgg16", "--input", "16"], "check --input"),
    ([f"{NETS}:untraceable"], "cannot trace"),
    ([f"{NETS}:rolled"], "unsupported op function roll"),
    ([f"{NETS}:not_a_module"], "returned int, not a torch.nn.Module"),
    ([f"{NETS}:missing"], "has no callable 'missing'"),
    (["no/such/file.cfg"], "no such file"),
    (["somepackage_that_does_not_exist.models:build"], "cannot import"),
    (["resnet50"], "resnet50: no such file (MODEL is a detector file"),
])
def test_bad_input_is_a_message_and_exit_2(run_cli, args, message):
    code, out, err = run_cli("rf", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_unknown_op_pointwise_on_request(run_cli):
    code, out, err = run_cli("rf", f"{NETS}:rolled", "--unknown", "pointwise", "-f", "csv")
    assert code == 0, err
    assert "roll" in err  # the warning says what was assumed


def test_help_explains_the_convention(run_cli):
    code, out, _ = run_cli("rf", "--help")
    assert code == 0 and "index convention" in out and "--layers" in out


def test_verify_works_on_detector_files(run_cli):
    repo = Path(__file__).resolve().parents[1]
    code, out, err = run_cli("rf", str(repo / "anchorfit/configs/yolov3-tiny.yaml"), "--verify", "-f",
                             "json")
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert [(lay["rf"][0], lay["center"][0], lay["verified"]) for lay in layers] == [
        (318, 31.5, True), (286, 15.5, True)]


def test_verify_probes_global_layers_with_their_global_paths_cut(run_cli):
    """EfficientNet's squeeze-excitation makes every stage global; --verify still checks the
    local RF the engine reports (the probe with the SE gates held constant)."""
    code, out, err = run_cli("rf", "torchvision:efficientnet_b0", "--input", "224",
                             "--layers", "features.1,features.2,features.3", "--verify",
                             "--format", "json")
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert [(lay["rf"][0], lay["global_context"], lay["verified"]) for lay in layers] == [
        (7, True, True), (19, True, True), (67, True, True)]
    assert "--verify probes it with the global paths cut" in err


# --------------------------------------------------------------------------- issue 16


def test_fcos_at_600x800_has_the_geometry_of_608x800(run_cli):
    """FPN nearest 38 -> 75 reads what x2 reads on every cell: 459/8/245, period 4, both axes."""
    code, out, err = run_cli("rf", "torchvision:fcos_resnet50_fpn", "--input", "600x800",
                             "--layers", "0", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, load_schema("rf"))
    (layer,) = doc["layers"]
    assert (layer["rf"], layer["stride"], layer["padding"], layer["period"]) == (
        [459, 459], [8, 8], [245, 245], [4, 4])
    assert layer["phase_centers"] == [[-16, 0, 0, 16], [-16, 0, 0, 16]]
    assert layer["cell_reads"]["first"] == [[0, 213], [0, 213]]  # cell 0 reads [-245, 213]
    assert layer["head_global_context"] is True


@pytest.mark.parametrize("model, size", [
    ("fcos_resnet50_fpn", "481x643"),
    pytest.param("fasterrcnn_resnet50_fpn", "500x500", marks=pytest.mark.slow),
    pytest.param("maskrcnn_resnet50_fpn", "496x496", marks=pytest.mark.slow),
    pytest.param("fcos_resnet50_fpn", "800x1199", marks=pytest.mark.slow),
    pytest.param("retinanet_resnet50_fpn", "600x1000", marks=pytest.mark.slow),
])
def test_fpn_detectors_at_any_size_never_exit_2(run_cli, model, size):
    code, out, err = run_cli("rf", f"torchvision:{model}", "--input", size, "--format", "json")
    assert code == 0, err
    layers = json.loads(out)["layers"]
    # the finest levels keep the stride-8/16 geometry; nothing is 'too irregular'
    assert [row["stride"] for row in layers[:2]] == [[4, 4], [8, 8]] if "rcnn" in model else \
        [[8, 8], [16, 16]]
    assert all(row["rf"][0] == row["rf"][1] for row in layers)
