"""The result of ``anchorfit erf``: per-level ERF statistics with intervals, and the mean maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.erf.stats import SQUARE_LEVELS, square_key
from anchorfit.rf.engine import CONVENTION, NodeRF, fmt_axes


def _pair(values: Any, digits: int = 1) -> str:
    """'12.3' when both axes agree to the shown digits, else '12.3 x 14.0' (y first)."""
    a, b = (f"{float(v):.{digits}f}" for v in values)
    return a if a == b else f"{a} x {b}"


def _ci(ci: np.ndarray, digits: int = 1) -> str:
    """'[lo, hi]' per axis, axes joined when they differ."""
    parts = [f"[{lo:.{digits}f}, {hi:.{digits}f}]" for lo, hi in np.atleast_2d(ci)]
    return parts[0] if len(set(parts)) == 1 else " x ".join(parts)


def _list(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


@dataclass
class LevelERF:
    """ERF of one level: the measured cell, its statistics (point and 95 % CI) and its mean map.

    Pairs are (y, x) in input pixels. ``sigma`` is the per-axis standard deviation of the
    normalised map about its centroid; ``erf_4sigma = 4σ`` (Luo's ±2σ) is the headline size;
    ``squares[q]`` is the side of the smallest square centred on the cell's RF centre holding
    mass q; ``threshold`` is Luo's region {P >= 0.0455·P(centre)}.
    """

    name: str
    node: str
    rf: NodeRF
    head: NodeRF | None
    cell: tuple[int, int]
    box: tuple[tuple[int, int], tuple[int, int]]
    center: tuple[Fraction, Fraction]
    samples: int
    total_mass: float
    centroid: np.ndarray
    centroid_ci: np.ndarray
    sigma: np.ndarray
    sigma_ci: np.ndarray
    squares: dict[float, float]
    squares_ci: dict[float, np.ndarray]
    threshold: dict[str, float]
    gaussian: dict[str, Any] | None
    zero_outside_rf: bool | None
    outside_rf_mass: float
    anchor: tuple[float, float]
    anchor_rule: str
    mean_map: np.ndarray = field(repr=False)
    origin: tuple[int, int] = (0, 0)
    extra: dict[str, Any] = field(default_factory=dict)
    cone_crops: int = 0  # feature maps cropped to the cell's cone (anchorfit.erf.cone)

    @property
    def rf_size(self) -> np.ndarray:
        return np.array(self.rf.rf, dtype=np.float64)

    @property
    def erf_4sigma(self) -> np.ndarray:
        return 4 * self.sigma

    @property
    def erf_4sigma_ci(self) -> np.ndarray:
        return 4 * self.sigma_ci

    @property
    def erf_rf(self) -> np.ndarray:
        return self.erf_4sigma / self.rf_size

    @property
    def erf_rf_ci(self) -> np.ndarray:
        return self.erf_4sigma_ci / self.rf_size[:, None]

    @property
    def anchor_erf(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.array(self.anchor) / self.erf_4sigma

    @property
    def anchor_erf_ci(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (np.array(self.anchor)[:, None] / self.erf_4sigma_ci)[:, ::-1]

    @property
    def window(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Input rows [y0, y1) and cols [x0, x1) the level was computed on."""
        h, w = self.mean_map.shape
        return ((self.origin[0], self.origin[0] + h), (self.origin[1], self.origin[1] + w))

    def full_map(self, input_size: tuple[int, int]) -> np.ndarray:
        """The mean map on the whole input (zero outside the computed window)."""
        out = np.zeros(input_size, dtype=self.mean_map.dtype)
        h, w = self.mean_map.shape
        out[self.origin[0]:self.origin[0] + h, self.origin[1]:self.origin[1] + w] = self.mean_map
        return out

    def to_dict(self) -> dict[str, Any]:
        data = self.rf.to_dict()
        data["node"] = data.pop("name")
        data = {"name": self.name, **data}
        data["head_rf"] = list(self.head.rf) if self.head is not None else None
        data.update({
            "cell": list(self.cell),
            "cell_center": [float(c) for c in self.center],
            "cell_rf_box": [list(self.box[0]), list(self.box[1])],
            "window": [list(b) for b in self.window],
            "cone_crops": self.cone_crops,
            "samples": self.samples,
            "centroid": _list(self.centroid),
            "centroid_ci": self.centroid_ci.tolist(),
            "sigma": _list(self.sigma),
            "sigma_ci": self.sigma_ci.tolist(),
            "erf_4sigma": _list(self.erf_4sigma),
            "erf_4sigma_ci": self.erf_4sigma_ci.tolist(),
            "erf_rf": _list(self.erf_rf),
            "erf_rf_ci": self.erf_rf_ci.tolist(),
            "mass_squares": {square_key(q): {"side": self.squares[q],
                                             "ci": _list(self.squares_ci[q])}
                             for q in SQUARE_LEVELS},
            "threshold_region": dict(self.threshold),
            "anchor": list(self.anchor),
            "anchor_rule": self.anchor_rule,
            "anchor_erf": _list(self.anchor_erf),
            "anchor_erf_ci": self.anchor_erf_ci.tolist(),
            "gaussian_fit": self.gaussian,
            "zero_outside_rf": self.zero_outside_rf,
            "outside_rf_mass": self.outside_rf_mass,
        })
        data.update(self.extra)
        return data


@dataclass
class ERFResult:
    """ERF of selected levels of a model (``anchorfit erf``)."""

    model: str
    input_size: tuple[int, int]
    mode: str
    weights: str
    inputs: str
    seed: int
    samples: int
    weight_draws: int
    device: str
    dtype: str
    window: tuple[tuple[int, int], tuple[int, int]]  # bounding box of the passes' windows
    cropped: bool
    backward: str
    batch_size: int  # samples drawn per step (each pass runs them in batches of its own)
    ci_level: float
    n_boot: int
    until_ci: bool
    ci_target: float | None
    converged: bool | None
    levels: list[LevelERF]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kind: str = "network"
    schedule: str = "joint"
    passes: list[list[str]] = field(default_factory=list)
    channels_last: bool = False

    def __getitem__(self, name: str) -> LevelERF:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": list(self.input_size),
            "convention": "index",
            "convention_text": CONVENTION,
            "kind": self.kind,
            "mode": self.mode,
            "weights": self.weights,
            "inputs": self.inputs,
            "seed": self.seed,
            "samples": self.samples,
            "weight_draws": self.weight_draws,
            "device": self.device,
            "dtype": self.dtype,
            "window": [list(self.window[0]), list(self.window[1])],
            "cropped": self.cropped,
            "schedule": self.schedule,
            "passes": [list(p) for p in self.passes],
            "channels_last": self.channels_last,
            "backward": self.backward,
            "batch_size": self.batch_size,
            "ci": {"level": self.ci_level, "method": "percentile bootstrap over samples",
                   "resamples": self.n_boot, "until_ci": self.until_ci,
                   "target": self.ci_target, "converged": self.converged},
            "seconds": round(self.seconds, 3),
            "layers": [lv.to_dict() for lv in self.levels],
            "notes": list(self.notes),
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for lv in self.levels:
            row: dict[str, Any] = {
                "layer": lv.name,
                "rf": fmt_axes(*lv.rf.rf),
                "stride": fmt_axes(*lv.rf.stride),
                "cell centre": fmt_axes(*lv.center),
                "sigma": _pair(lv.sigma, 2),
                "4sigma": _pair(lv.erf_4sigma),
                "4sigma 95% CI": _ci(lv.erf_4sigma_ci),
                "4sigma/rf": _pair(lv.erf_rf, 3),
            }
            for q in SQUARE_LEVELS:
                row[f"sq{square_key(q)}"] = f"{lv.squares[q]:g}"
            row["luo"] = f"{lv.threshold['diameter']:.1f}"
            row["anchor/4sigma"] = _pair(lv.anchor_erf, 2)
            if lv.gaussian is not None:
                row["fit R2"] = f"{lv.gaussian['r2']:.3f}"
            row["zero outside rf"] = {True: "yes", False: "NO", None: "n/a"}[lv.zero_outside_rf]
            rows.append(row)
        return pd.DataFrame(rows)
