"""``ErfConfig``: every setting of one ERF measurement, validated when it is built.

scikit-learn style: the estimator takes one frozen object, and a bad value fails at construction
with a message naming the parameter ("samples must be positive, got 0"), before any network is
loaded or run. Front ends map their own spellings onto the fields: ``ConfigError`` carries the
parameter, its value and the requirement, so the CLI can say "--samples 0: must be positive".
Library defaults live here, not in the CLI.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from anchorfit.erf.passes import BACKWARDS, MODES
from anchorfit.erf.weights import POLICIES
from anchorfit.erf.window import SCHEDULES
from anchorfit.errors import AnchorfitError

#: samples drawn when none are asked for; uniform weights make the network linear, so one sample
#: gives the map every sample would
DEFAULT_SAMPLES, UNIFORM_SAMPLES = 32, 1


class ConfigError(AnchorfitError):
    """A setting of ``ErfConfig`` out of its range: names the parameter, the value and the
    requirement, each readable on its own, so that a front end can name its own flag."""

    def __init__(self, param: str, value: Any, requirement: str, *, hint: str | None = None
                 ) -> None:
        self.param, self.value, self.requirement = param, value, requirement
        super().__init__(f"{param} {requirement}, got {value!r}", hint=hint)


def _integer(name: str, value: Any, low: int, what: str) -> None:
    """``value`` an int (not a bool) of at least ``low``; ``what`` says so in words."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, value, what)


def _fraction(name: str, value: Any) -> None:
    """``value`` a real number strictly between 0 and 1 (a level or a relative width)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(name, value, "must be a fraction between 0 and 1, e.g. 0.02")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, value, "must be one of " + ", ".join(choices))


@dataclass(frozen=True)
class ErfConfig:
    """How to measure an ERF (``anchorfit.erf.estimate``).

    What is averaged: ``samples`` inputs (default 32; 1 with uniform weights, whose maps do not
    depend on the input), or with ``until_ci`` as many as it takes for every σ's CI half-width to
    fall under ``ci_target`` × σ, at most ``max_samples``; inputs are seeded noise or the
    ``images`` of a folder; ``weights``: ``"random"`` (as built, BatchNorm statistics
    recalibrated on the first ``calibrate`` samples), ``"as_is"`` (no recalibration),
    ``"uniform"`` (the linearised all-positive copy: Luo's analytic baseline) or a checkpoint
    path; ``weight_draws`` > 1 adds seeded redraws of the conv weights (same per-tensor scale),
    bootstrapped hierarchically. ``mode`` says what a map is (``passes.MODES``). ``seed`` seeds
    every random step. ``anchors`` maps a layer to an anchor (h, w) for anchor/ERF (default:
    S3FD's 4 × stride). ``fit`` adds a 2-D Gaussian fit; ``n_boot`` and ``ci_level`` set the
    percentile bootstrap.

    Speed (none changes the maps beyond float rounding): ``schedule`` groups the levels into
    passes (``anchorfit.erf.window``); ``crop=False`` runs on the whole input; ``backward`` how a
    joint pass runs its levels' backward passes; ``cone`` crops inner feature maps to the cells'
    cones (``anchorfit.erf.cone``); ``channels_last`` the memory format (off by default: it
    changes float rounding and so, through near-ties of max pooling, the maps); ``batch_size``
    the samples per forward pass (default: from a memory budget per pass); ``device``/``dtype``.
    """

    samples: int | None = None
    until_ci: bool = False
    max_samples: int = 512
    ci_target: float = 0.02
    mode: str = "energy"
    weights: str | Path = "random"
    images: str | Path | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    batch_size: int | None = None
    weight_draws: int = 1
    calibrate: int = 8
    backward: str = "auto"
    crop: bool = True
    schedule: str = "auto"
    channels_last: bool = False
    cone: bool = True
    fit: bool = False
    anchors: Mapping[str, tuple[float, float]] | None = None
    n_boot: int = 1000
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        if self.samples is None:  # resolved here so that every reader sees the number used
            default = UNIFORM_SAMPLES if self.weights == "uniform" else DEFAULT_SAMPLES
            object.__setattr__(self, "samples", default)
        if isinstance(self.weights, Path):
            object.__setattr__(self, "weights", str(self.weights))
        _integer("samples", self.samples, 1, "must be positive")
        _integer("max_samples", self.max_samples, 1, "must be positive")
        _integer("weight_draws", self.weight_draws, 1, "must be positive")
        _integer("calibrate", self.calibrate, 0, "must be a count of samples (0 or more)")
        _integer("n_boot", self.n_boot, 1, "must be positive")
        _integer("seed", self.seed, 0, "must be a non-negative integer")
        if self.batch_size is not None:
            _integer("batch_size", self.batch_size, 1, "must be at least 1 (or None: automatic)")
        _fraction("ci_target", self.ci_target)
        _fraction("ci_level", self.ci_level)
        _choice("mode", self.mode, MODES)
        _choice("backward", self.backward, BACKWARDS)
        _choice("schedule", self.schedule, SCHEDULES)
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError("weights", self.weights, "must be " + ", ".join(POLICIES)
                              + " or the path of a state dict")
        if self.until_ci and self.weight_draws > 1:
            raise ConfigError("weight_draws", self.weight_draws, "must be 1 when sampling until "
                              "the CI target (until_ci)")
        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise ConfigError("dtype", self.dtype, "must be a torch floating-point dtype")
        self._check_device()
        if self.anchors is not None:
            object.__setattr__(self, "anchors", MappingProxyType(
                {str(k): self._anchor(k, v) for k, v in self.anchors.items()}))

    def _check_device(self) -> None:
        """A torch device of this machine: a CUDA run on a machine without one fails here,
        before a network is built."""
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError("device", self.device, "must be a torch device, e.g. cpu or "
                              "cuda:0") from None
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device", self.device, "must be available here (CUDA is not "
                              "available here)", hint="cpu works everywhere")

    @staticmethod
    def _anchor(layer: Any, value: Any) -> tuple[float, float]:
        try:
            h, w = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"anchors[{layer!r}]", value, "must be a pair (h, w)") from None
        if not (h > 0 and w > 0 and math.isfinite(h) and math.isfinite(w)):
            raise ConfigError(f"anchors[{layer!r}]", value, "must be two positive sides")
        return (h, w)

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint path when ``weights`` names one, else None."""
        return None if self.weights in POLICIES else str(self.weights)

    @property
    def per_draw(self) -> int:
        """Samples drawn per weight draw: the cap when sampling until the CI target."""
        return self.max_samples if self.until_ci else self.samples  # type: ignore[return-value]

    def replace(self, **changes: Any) -> ErfConfig:
        """A copy with ``changes``, validated again."""
        return dataclasses.replace(self, **changes)
