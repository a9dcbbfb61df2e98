"""``ErfConfig``: validated at construction, messages name the parameter; library defaults; and
the estimator package measures a network it is handed without importing a resolver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from anchorfit.erf import ConfigError, ErfConfig

ERF = Path(__file__).resolve().parents[1] / "anchorfit" / "erf"


@pytest.mark.parametrize("changes, message", [
    ({"samples": 0}, "samples must be positive, got 0"),
    ({"max_samples": -3}, "max_samples must be positive, got -3"),
    ({"weight_draws": 0}, "weight_draws must be positive, got 0"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"n_boot": 0}, "n_boot must be positive, got 0"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ({"samples": True}, "samples must be positive, got True"),
    ({"ci_target": 1.5}, "ci_target must be a fraction between 0 and 1"),
    ({"ci_level": 0}, "ci_level must be a fraction between 0 and 1"),
    ({"mode": "grad"}, "mode must be one of energy, abs, replknet, got 'grad'"),
    ({"backward": "vmap"}, "backward must be one of auto, batched, loop"),
    ({"schedule": "sideways"}, "schedule must be one of auto, joint, per-level"),
    ({"until_ci": True, "weight_draws": 2}, "weight_draws must be 1 when sampling until"),
    ({"dtype": torch.int64}, "dtype must be a torch floating-point dtype"),
    ({"device": "gpu0"}, "device must be a torch device"),
    ({"anchors": {"p3": (16, 0)}}, "anchors['p3'] must be two positive sides"),
    ({"anchors": {"p3": 16}}, "anchors['p3'] must be a pair (h, w)"),
])
def test_bad_values_fail_at_construction_naming_the_parameter(changes, message):
    with pytest.raises(ConfigError) as info:
        ErfConfig(**changes)
    assert message in str(info.value)
    assert "--" not in str(info.value)  # a library message names no CLI flag
    assert info.value.param in str(info.value)


def test_defaults_live_in_the_library():
    assert ErfConfig().samples == 8 and ErfConfig().max_samples == 512
    assert ErfConfig(weights="uniform").samples == 1  # a linear network: one sample suffices
    assert ErfConfig(weights="uniform", samples=5).samples == 5
    assert ErfConfig(weights=Path("w.pt")).checkpoint == "w.pt"
    assert ErfConfig(weights="as_is").checkpoint is None
    assert ErfConfig(until_ci=True, samples=8, max_samples=64).per_draw == 64
    assert ErfConfig(samples=8, max_samples=64).per_draw == 8


def test_config_is_frozen_and_replace_validates_again():
    config = ErfConfig(samples=4, anchors={"p3": [16, 32]})
    assert config.anchors["p3"] == (16.0, 32.0)
    with pytest.raises(Exception):
        config.samples = 5  # type: ignore[misc]
    with pytest.raises(ConfigError, match="samples must be positive"):
        config.replace(samples=0)
    assert config.replace(samples=6).samples == 6 and config.samples == 4


def test_cli_names_the_flag(run_cli):
    code, _, err = run_cli("erf", "torchvision:resnet18", "--max-samples", "0")
    assert code == 2 and "--max-samples 0: must be positive" in err
    # argparse refuses a number out of range before ErfConfig sees it, naming the flag too
    code, _, err = run_cli("erf", "torchvision:resnet18", "--ci-target", "3")
    assert code == 2 and "--ci-target" in err and "below 1" in err
    code, _, err = run_cli("erf", "torchvision:resnet18", "--until-ci", "--weight-draws", "2")
    assert code == 2 and "--weight-draws 2: must be 1" in err


def test_erf_imports_no_resolver():
    """The estimator is handed a network: nothing in anchorfit/erf imports the MODEL-string
    resolver, the readers, the design layer, the CLI or the report (type-only imports aside)."""
    above = ("anchorfit.models", "anchorfit.load", "anchorfit.formats", "anchorfit.design",
             "anchorfit.cli", "anchorfit.report", "anchorfit.plan", "anchorfit.audit",
             "anchorfit.compare", "anchorfit.detector")
    found = []
    for path in sorted(ERF.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []
