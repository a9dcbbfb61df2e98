"""The planner on every detector anchorfit reads: each zoo entry and every detector file under
../shared/data/configs that loads gets a plan (its default rule, with a dataset), and the CLI's
JSON validates against the plan schema. The ERF side of the walk (every schedule against the
whole input, plans with the ERF on every zoo entry) lives in tests/test_erf_canvas.py and
tests/test_erf_schedules.py."""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pytest

from anchorfit.formats import load_detector
from anchorfit.formats import builtin_names
from anchorfit.design.plan import plan
from anchorfit.schemas import load_schema

from test_formats_walk import _CONFIGS, FILES, _expected_error

DETECTOR_FILES = [rel for rel in FILES if _expected_error(rel) is None]


def _boxes() -> np.ndarray:
    """Boxes from 4 to 600 px, log-uniform, with aspect ratios 1/3..3 (seeded)."""
    rng = np.random.default_rng(0)
    side = np.exp(rng.uniform(np.log(4), np.log(600), 400))
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3), 400))
    return np.stack([side * np.sqrt(aspect), side / np.sqrt(aspect)], 1)


def _check(p, det) -> None:
    assert p.levels and [lv.name for lv in p.levels] == [lv.name for lv in det.levels]
    for lv in p.levels:
        assert lv.stride > 0 and lv.rf is not None and lv.head_rf is not None
        assert lv.anchors or lv.anchor_free_range is not None, lv.name
        for a in lv.anchors:
            assert a.w > 0 and a.h > 0 and math.isfinite(a.w * a.h)
    if p.dataset is not None and p.rule != "fcos":
        assert sum(lv.boxes for lv in p.levels) == p.dataset["boxes"]
    json.dumps(p.to_dict(), allow_nan=True)


@pytest.mark.slow  # every detector file of ../shared/data: the full run (README) walks them
@pytest.mark.parametrize("rel", DETECTOR_FILES or ["<no shared data>"])
def test_plan_every_shared_detector(shared_data, rel):
    det = load_detector(shared_data / "configs" / rel)
    if not det.levels:
        return  # Darknet backbones: plan refuses them (tests/test_plan_every_rule.py)
    _check(plan(det, wh=_boxes(), restarts=1), det)


@pytest.mark.parametrize("name", builtin_names())
def test_plan_every_zoo_entry_cli_json(run_cli, name):
    code, out, err = run_cli("plan", name, "--no-erf", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    jsonschema.validate(data, load_schema("plan"))
    det = load_detector(name)
    assert [lv["name"] for lv in data["levels"]] == [lv.name for lv in det.levels]
    _check(plan(det, wh=_boxes(), restarts=1), det)
