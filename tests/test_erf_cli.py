"""``anchorfit erf``: output contract (JSON schema, table/CSV/Markdown, plot, npz) and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from anchorfit.schemas import load_schema

NETS = Path(__file__).parent / "nets" / "erf_nets.py"
TINY = f"{NETS}:tiny_bn"


def test_json_matches_schema_and_reports_every_field(run_cli, tmp_path):
    code, out, err = run_cli("erf", TINY, "--input", "40", "--samples", "4", "--fit",
                             "--format", "json", "--seed", "3")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("erf"))
    assert data["convention"] == "index" and data["seed"] == 3 and data["samples"] == 4
    assert data["mode"] == "energy" and data["weights"] == "random" and data["inputs"] == "noise"
    assert len(data["layers"]) == 2  # the two outputs of TinyBN
    for lay in data["layers"]:
        assert lay["zero_outside_rf"] is True
        lo, hi = np.array(lay["sigma_ci"]).T
        assert np.all(lo <= np.array(lay["sigma"])) and np.all(np.array(lay["sigma"]) <= hi)
        assert lay["erf_4sigma"] == pytest.approx([4 * s for s in lay["sigma"]])
        assert set(lay["mass_squares"]) == {"50", "90", "95.45"}
        assert 0 < lay["gaussian_fit"]["r2"] <= 1


def test_same_seed_same_numbers_other_seed_other_numbers(run_cli):
    runs = [json.loads(run_cli("erf", TINY, "--input", "40", "-n", "3", "-f", "json",
                               "--seed", str(s))[1]) for s in (0, 0, 1)]
    sig = [[lay["sigma"] for lay in r["layers"]] for r in runs]
    assert sig[0] == sig[1] and sig[0] != sig[2]


def test_table_csv_markdown_plot_and_npz(run_cli, tmp_path):
    png, npz = tmp_path / "erf.png", tmp_path / "maps.npz"
    code, out, err = run_cli("erf", TINY, "--input", "40", "-n", "2", "--plot", str(png),
                             "--save", str(npz))
    assert code == 0, err
    assert "4sigma" in out and "index convention" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    maps = np.load(npz)
    assert list(maps["layers"]) and maps["map_0"].shape == (40, 40)
    box = maps["cell_rf_box"][0]
    inside = maps["map_0"][box[0][0]:box[0][1] + 1, box[1][0]:box[1][1] + 1]
    assert inside.sum() == pytest.approx(maps["map_0"].sum())
    for fmt, marker in (("csv", "layer,rf,stride"), ("md", "| layer | rf |")):
        code, out, _ = run_cli("erf", TINY, "--input", "40", "-n", "1", "-f", fmt)
        assert code == 0 and out.startswith(marker)


def test_uniform_abs_replknet_modes(run_cli):
    code, out, err = run_cli("erf", TINY, "--input", "40", "--weights", "uniform", "--mode",
                             "abs", "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["samples"] == 1 and data["weights"] == "uniform"
    code, out, err = run_cli("erf", TINY, "--input", "40", "-n", "2", "--mode", "replknet",
                             "-f", "json")
    assert code == 0, err
    assert set(json.loads(out)["layers"][0]["replknet_area"]) == {"20", "30", "50", "99"}


def test_images_folder_and_checkpoint(run_cli, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (30 + k, 50, 3), dtype=np.uint8)).save(
            folder / f"{k}.png")
    from tests.nets.erf_nets import tiny_bn

    ckpt = tmp_path / "w.pt"
    torch.save({"state_dict": tiny_bn().state_dict()}, ckpt)
    code, out, err = run_cli("erf", TINY, "--input", "40", "--images", str(folder),
                             "--weights", str(ckpt), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["samples"] == 3 and data["inputs"] == str(folder)
    assert "3 images" in " ".join(data["notes"])


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("hello")
    cases = [
        (["--layers", "nosuchlayer"], "no layer named 'nosuchlayer'"),
        (["--input", "40", "--layers", "block3", "--input", "4"], "smaller than layer"),
        (["--input", "40", "--images", str(tmp_path / "missing")], "not a readable folder"),
        (["--input", "40", "--images", str(empty)], "no images in the folder"),
        (["--input", "40", "--images", str(broken)], "cannot read image"),
        (["--input", "40", "--weights", str(wrong)], "checkpoint does not fit"),
        (["--input", "40", "--weights", str(garbage)], "cannot read the checkpoint"),
        (["--input", "40", "--weights", str(tmp_path / "none.pt")], "no such checkpoint"),
        (["--input", "40", "--samples", "0"], "--samples 0"),
        (["--input", "40", "--anchors", "16,32,64"], "--anchors gives 3 sizes for 2 levels"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--input", "40", "--device", "cuda"], "CUDA is not available"))
    return cases


def test_bad_input_exits_2_with_a_message_and_writes_nothing(run_cli, tmp_path):
    for extra, message in _bad_cases(tmp_path):
        png, npz, out = tmp_path / "p.png", tmp_path / "m.npz", tmp_path / "o.json"
        code, _, err = run_cli("erf", TINY, *extra, "--plot", str(png), "--save", str(npz),
                               "-o", str(out))
        assert code == 2, (extra, err)
        assert message in err, (extra, err)
        assert "Traceback" not in err
        assert not png.exists() and not npz.exists() and not out.exists()
    code, _, err = run_cli("erf", "torchvision:nosuchnet")
    assert code == 2 and "unknown torchvision model" in err
    code, _, err = run_cli("erf", TINY, "--input", "40", "--plot", str(tmp_path / "x.gif"))
    assert code == 2 and "unknown figure type '.gif'" in err


def test_schedule_and_channels_last_flags_reach_the_json(run_cli):
    code, out, err = run_cli("erf", TINY, "--input", "40", "-n", "2", "-f", "json",
                             "--schedule", "per-level", "--channels-last")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("erf"))
    assert data["schedule"] == "per-level" and data["channels_last"] is True
    assert data["passes"] == [[lay["name"]] for lay in data["layers"]]
    for lay in data["layers"]:
        (y0, y1), (x0, x1) = lay["window"]
        (r0, r1), (c0, c1) = lay["cell_rf_box"]
        assert y0 <= r0 and r1 < y1 and x0 <= c0 and c1 < x1  # the window holds the RF
    code, _, err = run_cli("erf", TINY, "--input", "40", "--schedule", "sideways")
    assert code == 2 and "invalid choice" in err
