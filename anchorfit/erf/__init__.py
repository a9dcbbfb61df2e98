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
"""

from anchorfit.erf.canvas import Canvas, canvas_for, choose_canvas
from anchorfit.erf.cells import LevelPlan, choose_cell, plan_levels, required_input, size_multiple
from anchorfit.erf.config import ConfigError, ErfConfig
from anchorfit.erf.estimator import estimate
from anchorfit.erf.passes import MODES, level_maps
from anchorfit.erf.result import ERFResult, LevelERF
from anchorfit.erf.sources import ImageSource, NoiseSource
from anchorfit.erf.weights import load_checkpoint, recalibrate_batchnorm
from anchorfit.erf.window import ComputeWindow, Pass, compute_window, schedule_passes

__all__ = ["MODES", "Canvas", "ComputeWindow", "ConfigError", "ERFResult", "ErfConfig",
           "ImageSource", "LevelERF", "LevelPlan", "NoiseSource", "Pass", "canvas_for",
           "choose_canvas", "choose_cell", "compute_window", "estimate", "level_maps",
           "load_checkpoint", "plan_levels", "recalibrate_batchnorm", "required_input",
           "schedule_passes", "size_multiple"]
