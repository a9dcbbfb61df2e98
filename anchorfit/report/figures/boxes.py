"""Figures for dataset boxes and anchors: a size histogram and a w-h scatter with anchors.

Log axes throughout: box sizes span decades, and the anchor-vs-box ratio test is a distance in
log space. Large sets are subsampled (seeded) for the scatter; the histogram uses all boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from anchorfit.report.output import save_figure_atomic


def _figure(ncols: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(1, ncols, figsize=(5.5 * ncols, 4.5))


def plot_boxes(wh: np.ndarray, path: str | Path, *, title: str = "", seed: int = 0,
               anchors: Sequence[np.ndarray] | None = None,
               strides: Sequence[float | None] | None = None, max_points: int = 50000) -> None:
    """Histogram of sqrt(w·h) and a log-log w-h scatter (anchors per level on top if given)."""
    plt, fig, (ax1, ax2) = _figure(2)
    wh = np.asarray(wh, dtype=np.float64)
    scale = np.sqrt(wh[:, 0] * wh[:, 1])
    bins = np.geomspace(max(scale.min(), 0.5), scale.max() * 1.01, 60)
    ax1.hist(scale, bins=bins, color="0.4")
    ax1.set_xscale("log")
    ax1.set_xlabel("sqrt(w·h), input px")
    ax1.set_ylabel("boxes")
    for edge in (32, 96):
        ax1.axvline(edge, color="tab:red", lw=0.8, ls="--")
    rng = np.random.default_rng(seed)
    pts = wh if len(wh) <= max_points else wh[rng.choice(len(wh), max_points, replace=False)]
    ax2.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.2, color="0.3", linewidths=0)
    if anchors is not None:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, a in enumerate(anchors):
            s = strides[i] if strides else None
            ax2.scatter(a[:, 0], a[:, 1], marker="x", s=60, color=colors[i % len(colors)],
                        label=f"level {i}" + (f" (stride {s:g})" if s else ""))
        ax2.legend(loc="upper left", fontsize=8)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("w, input px")
    ax2.set_ylabel("h, input px")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
