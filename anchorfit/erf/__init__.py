"""The effective receptive field estimator: gradient-energy maps per detection level, their
statistics (centroid, σ, 4σ, mass squares, Luo's threshold region, Gaussian fit) and bootstrap
intervals. See research/erf.md for the method and the closed forms the tests check."""

from anchorfit.erf.estimator import (
    MODES,
    ComputeWindow,
    ImageSource,
    LevelPlan,
    NoiseSource,
    choose_cell,
    compute_window,
    estimate,
    level_maps,
    load_checkpoint,
    plan_levels,
    recalibrate_batchnorm,
    required_input,
)
from anchorfit.erf.result import ERFResult, LevelERF

__all__ = ["MODES", "ComputeWindow", "ERFResult", "ImageSource", "LevelERF", "LevelPlan",
           "NoiseSource", "choose_cell", "compute_window", "estimate", "level_maps",
           "load_checkpoint", "plan_levels", "recalibrate_batchnorm", "required_input"]
