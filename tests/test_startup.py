"""Start-up cost: commands that run no network never import torch (issue 13 item 5).

Importing torch costs 2–5 s on a laptop CPU, more than ``anchorfit kmeans`` needs to cluster
COCO128. Each case runs the real command in a fresh interpreter (``sys.modules`` is shared inside
the test process, where another test may already have imported torch) and reports, at exit, which
heavy packages it loaded. Inputs are the files the repository ships (tests/data: COCO8, COCO128, a
Darknet cfg; the zoo in anchorfit/configs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COCO8 = REPO / "tests" / "data" / "ultralytics_coco8" / "data.yaml"
ZOO = REPO / "anchorfit" / "configs"

#: runs each ``anchorfit ARGS`` of a JSON list in turn, as ``python -m anchorfit`` would, and
#: prints after each the exit status and the heavy modules loaded so far. Imports persist, so the
#: first command that loads torch is the one named; one interpreter keeps the test quick.
PROBE = """
import io, json, runpy, sys, contextlib
for args in json.loads(sys.argv[1]):
    sys.argv = ["anchorfit", *args]
    code = 0
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module("anchorfit", run_name="__main__")
        except SystemExit as exc:
            code = exc.code
    heavy = sorted(m for m in ("torch", "torchvision", "matplotlib", "sklearn")
                   if m in sys.modules)
    print("STARTUP " + json.dumps({"args": args, "code": code, "heavy": heavy}),
          file=sys.stderr)
"""

COMMANDS = ("rf", "show", "erf", "boxes", "kmeans", "plan", "audit", "compare")


def run_probe(*commands: tuple[str, ...]) -> list[dict]:
    """Per command: its arguments, exit status and the heavy modules loaded by then."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    got = [json.loads(ln[len("STARTUP "):]) for ln in proc.stderr.splitlines()
           if ln.startswith("STARTUP ")]
    assert len(got) == len(commands), f"the probe stopped early; stderr:\n{proc.stderr[-2000:]}"
    return got


def assert_light(got: list[dict]) -> None:
    for step in got:
        assert step["code"] == 0, step
        assert step["heavy"] == [], f"anchorfit {' '.join(step['args'])} imported {step['heavy']}"


def test_probe_sees_torch_when_a_command_needs_it() -> None:
    """The probe can fail: a torchvision model is built with torch, and the probe says so."""
    pytest.importorskip("torchvision")
    (got,) = run_probe(("show", "torchvision:ssdlite320_mobilenet_v3_large", "-f", "json"))
    assert got["code"] == 0
    assert "torch" in got["heavy"]


def test_help_does_not_import_torch() -> None:
    assert_light(run_probe(("--help",), ("--version",), *((c, "--help") for c in COMMANDS)))


def test_commands_without_a_network_do_not_import_torch() -> None:
    """The shipped COCO8 labels and zoo configs through every command that needs no network."""
    assert_light(run_probe(
        ("boxes", str(COCO8), "-f", "json"),
        ("kmeans", str(COCO8), "-k", "6", "--seed", "0", "-f", "json"),
        ("kmeans", str(COCO8), "-k", "6", "--levels", "8,16,32", "-f", "json"),
        ("show", str(ZOO / "yolov3-tiny.yaml"), "-f", "json"),
        ("show", "s3fd", "-f", "json"),
        ("rf", str(ZOO / "ssd300_vgg16.yaml"), "-f", "json"),
        ("audit", str(ZOO / "yolov3.yaml"), "-f", "json"),
        ("audit", "s3fd", "--boxes", str(COCO8), "-f", "json"),
        ("plan", "s3fd", "--no-erf", "--boxes", str(COCO8), "-f", "json"),
    ))


def test_coco128_and_darknet_do_not_import_torch(shipped_data: Path) -> None:
    """The issue's case: ``anchorfit kmeans`` on COCO128, and a Darknet cfg through show/audit."""
    coco128 = shipped_data / "annotations" / "coco128_yolo"
    cfg = shipped_data / "configs" / "darknet" / "pjreddie" / "yolov3.cfg"
    assert_light(run_probe(
        ("kmeans", str(coco128 / "labels" / "train2017"), "--image-sizes",
         str(coco128 / "image_sizes.csv"), "-k", "9", "-f", "json"),
        ("show", str(cfg), "-f", "json"),
        ("audit", str(cfg), "-f", "json"),
    ))


def test_erf_package_loads_torch_only_on_use() -> None:
    """``anchorfit.erf``'s torch-free modules import without torch; its estimator loads on use."""
    code = ("import sys\n"
            "from anchorfit.erf.config import DEFAULT_SAMPLES, MODES\n"
            "from anchorfit.erf import canvas_for\n"
            "assert 'torch' not in sys.modules, 'torch loaded too early'\n"
            "import anchorfit.erf as erf\n"
            "from anchorfit.erf import ErfConfig, estimate\n"
            "assert all(getattr(erf, name) is not None for name in erf.__all__)\n"
            "assert 'torch' in sys.modules\n"
            "import torch\n"
            "assert ErfConfig().dtype is torch.float32\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
