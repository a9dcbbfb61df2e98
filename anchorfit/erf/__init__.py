"""The effective receptive field estimator: gradient-energy maps per detection level, their
statistics (centroid, σ, 4σ, mass squares, Luo's threshold region, Gaussian fit) and bootstrap
intervals. See research/erf.md for the method and the closed forms the tests check."""

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
)
from anchorfit.erf.result import ERFResult, LevelERF
from anchorfit.erf.window import ComputeWindow, Pass, compute_window, schedule_passes

__all__ = ["MODES", "ComputeWindow", "ERFResult", "ImageSource", "LevelERF", "LevelPlan",
           "NoiseSource", "Pass", "choose_cell", "compute_window", "estimate", "level_maps",
           "load_checkpoint", "plan_levels", "recalibrate_batchnorm", "required_input",
           "schedule_passes"]
