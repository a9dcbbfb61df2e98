"""The ERF mean maps as an .npz archive (``anchorfit erf --save``): the arrays behind the heatmaps,
for whoever wants to plot or compare them elsewhere."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from anchorfit.erf.result import ERFResult


def maps_npz(result: ERFResult) -> bytes:
    """The mean maps as an .npz: ``map_<k>`` (H, W float64 on the whole input) for the k-th of
    ``layers``, with ``cell``, ``cell_rf_box`` (k, 2, 2: rows, cols) and ``cell_center``."""
    arrays: dict[str, Any] = {
        "layers": np.array([lv.name for lv in result.levels]),
        "input": np.array(result.input_size),
        "mode": np.array(result.mode),
        "seed": np.array(result.seed),
        "samples": np.array(result.samples),
        "cell": np.array([lv.cell for lv in result.levels]),
        "cell_rf_box": np.array([lv.box for lv in result.levels]),
        "cell_center": np.array([[float(c) for c in lv.center] for lv in result.levels]),
    }
    for k, lv in enumerate(result.levels):
        arrays[f"map_{k}"] = lv.full_map(result.input_size)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
