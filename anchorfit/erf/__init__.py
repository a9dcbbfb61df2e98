"""The effective receptive field estimator: gradient-energy maps per detection level, their
statistics (centroid, σ, 4σ, mass squares, Luo's threshold region, Gaussian fit) and bootstrap
intervals. See research/erf.md for the method and the closed forms the tests check.

One module per concept: ``config`` (``ErfConfig``, every setting, validated), ``cells`` (the
cell per level, the input size that has one), ``sources`` (noise, images, the seeded streams),
``weights`` (random, as is, uniform, checkpoint; BatchNorm recalibration), ``window`` (where a
pass runs, which levels share it), ``cone`` (inner maps cropped to the cells' cones), ``passes``
(the forward and backward passes), ``stats`` (moments, bootstrap), ``result`` (``ERFResult``),
``canvas`` (the input a detector's ERF runs on) and ``estimator`` (``estimate(net, layers,
config)``: the sampling loop and the summary). A network is handed in, never loaded here.

The names below are loaded on first use (PEP 562), so that importing a torch-free module of this
package (``config``, ``canvas``, ``cells``, ``window``) does not import torch: commands that only
read ERF defaults or plan a canvas start in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module of this package that defines it
_WHERE = {
    "Canvas": "canvas", "canvas_for": "canvas", "choose_canvas": "canvas",
    "LevelPlan": "cells", "choose_cell": "cells", "plan_levels": "cells",
    "required_input": "cells", "size_multiple": "cells",
    "ConfigError": "config", "ErfConfig": "config", "MODES": "config",
    "estimate": "estimator",
    "level_maps": "passes",
    "ERFResult": "result", "LevelERF": "result",
    "ImageSource": "sources", "NoiseSource": "sources",
    "load_checkpoint": "weights", "recalibrate_batchnorm": "weights",
    "ComputeWindow": "window", "Pass": "window", "compute_window": "window",
    "schedule_passes": "window",
}

__all__ = ["Canvas", "ComputeWindow", "ConfigError", "ERFResult", "ErfConfig", "ImageSource",
           "LevelERF", "LevelPlan", "MODES", "NoiseSource", "Pass", "canvas_for", "choose_canvas",
           "choose_cell", "compute_window", "estimate", "level_maps", "load_checkpoint",
           "plan_levels", "recalibrate_batchnorm", "required_input", "schedule_passes",
           "size_multiple"]

if TYPE_CHECKING:  # what the names are, for type checkers; at run time __getattr__ loads them
    from anchorfit.erf.canvas import Canvas, canvas_for, choose_canvas
    from anchorfit.erf.cells import LevelPlan, choose_cell, plan_levels, required_input, \
        size_multiple
    from anchorfit.erf.config import MODES, ConfigError, ErfConfig
    from anchorfit.erf.estimator import estimate
    from anchorfit.erf.passes import level_maps
    from anchorfit.erf.result import ERFResult, LevelERF
    from anchorfit.erf.sources import ImageSource, NoiseSource
    from anchorfit.erf.weights import load_checkpoint, recalibrate_batchnorm
    from anchorfit.erf.window import ComputeWindow, Pass, compute_window, schedule_passes


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'anchorfit.erf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"anchorfit.erf.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
