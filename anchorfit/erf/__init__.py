"""The effective receptive field estimator: gradient-energy maps per detection level, their
statistics (centroid, σ, 4σ, mass squares, Luo's threshold region, Gaussian fit) and bootstrap
intervals, and the canvas a detector's ERF runs on (``anchorfit.erf.canvas``). See
research/erf.md for the method and the closed forms the tests check."""

from anchorfit.erf.canvas import Canvas, canvas_for, choose_canvas, erf_network
from anchorfit.erf.estimator import (
    MODES,
    ImageSource,
    LevelPlan,
    NoiseSource,
    choose_cell,
    estimate,
    level_maps,
    load_checkpoint,
    plan_levels,
    recalibrate_batchnorm,
    required_input,
    size_multiple,
)
from anchorfit.erf.result import ERFResult, LevelERF
from anchorfit.erf.window import ComputeWindow, Pass, compute_window, schedule_passes

__all__ = ["MODES", "Canvas", "ComputeWindow", "ERFResult", "ImageSource", "LevelERF", "LevelPlan",
           "NoiseSource", "Pass", "canvas_for", "choose_canvas", "choose_cell", "compute_window",
           "erf_network", "estimate", "level_maps", "load_checkpoint", "plan_levels",
           "recalibrate_batchnorm", "required_input", "schedule_passes", "size_multiple"]
