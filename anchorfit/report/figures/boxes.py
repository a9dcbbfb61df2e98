"""Figures for dataset boxes and anchors: a size histogram and a w-h scatter with anchors.

Log axes throughout: box sizes span decades, and the anchor-vs-box ratio test is a distance in
log space. Large sets are subsampled (seeded) for the scatter and the legend says "shown N of M";
the histogram uses all boxes. COCO's bucket edges (sqrt area 32 and 96 px) are drawn and named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anchorfit.report.output import save_figure_atomic
from anchorfit.report.text import plural, thousands

#: one colour per level, the same as ``figures.design.LEVEL_COLOURS`` (not imported: that
#: module sets up pyplot at import)
LEVEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f"]


def point_style(n: int) -> tuple[float, float]:
    """Marker size and opacity for ``n`` scatter points: a thousand boxes must stay visible,
    fifty thousand must not become one grey blot."""
    if n <= 2000:
        return 7.0, 0.5
    if n <= 20000:
        return 3.0, 0.3
    return 2.0, 0.15


def _figure(ncols: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(1, ncols, figsize=(6.0 * ncols, 4.6))


def plot_boxes(wh: np.ndarray, path: str | Path | None = None, *, title: str = "",
               seed: int = 0, anchors: Sequence[np.ndarray] | None = None,
               strides: Sequence[float | None] | None = None, max_points: int = 50000) -> Any:
    """Histogram of sqrt(w·h) and a log-log w-h scatter (anchors per level on top if given).

    Returns the Figure; with ``path`` it is written and closed (the object stays readable).
    """
    plt, fig, (ax1, ax2) = _figure(2)
    wh = np.asarray(wh, dtype=np.float64)
    scale = np.sqrt(wh[:, 0] * wh[:, 1])
    bins = np.geomspace(max(scale.min(), 0.5), scale.max() * 1.01, 60)
    counts, _, _ = ax1.hist(scale, bins=bins, color="0.45",
                            label=f"all {plural(len(wh), 'box')}")
    ax1.set_ylim(0, max(float(np.max(counts)), 1.0) * 1.35)  # headroom: the legend, not bars
    ax1.set_xscale("log")
    ax1.set_xlabel("sqrt(w·h), input px (log scale)")
    ax1.set_ylabel("boxes per bin")
    ax1.set_title("box size distribution", fontsize=9)
    for edge, label, style in ((32, "COCO small | medium (32 px)", "--"),
                               (96, "COCO medium | large (96 px)", ":")):
        ax1.axvline(edge, color="tab:red", lw=1.0, ls=style, label=label)
        ax2.plot(np.geomspace(0.1, 1e5, 40), edge * edge / np.geomspace(0.1, 1e5, 40),
                 color="tab:red", lw=0.9, ls=style, label=f"COCO w·h = {edge}² px²")
    ax1.legend(loc="upper left", fontsize=7, framealpha=0.9)  # small sizes: low bars there
    rng = np.random.default_rng(seed)
    total = len(wh)
    pts = wh if total <= max_points else wh[rng.choice(total, max_points, replace=False)]
    label = (f"boxes (shown {thousands(len(pts))} of {thousands(total)})" if len(pts) < total
             else f"boxes ({thousands(total)})")
    size, alpha = point_style(len(pts))
    ax2.scatter(pts[:, 0], pts[:, 1], s=size, alpha=alpha, color="0.35", linewidths=0,
                label=label)
    lo, hi = float(wh.min()), float(wh.max())
    if anchors is not None:
        for i, a in enumerate(anchors):
            a = np.asarray(a, dtype=float).reshape(-1, 2)
            s = strides[i] if strides and i < len(strides) else None
            ax2.scatter(a[:, 0], a[:, 1], marker="o", s=55, color=LEVEL_COLOURS[i % 10],
                        edgecolors="black", linewidths=0.6, zorder=3,
                        label=f"level {i}, stride {s:g} ({plural(len(a), 'anchor')})" if s
                        else plural(len(a), "anchor"))
            if len(a):
                lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlim(lo / 1.5, hi * 1.5)
    ax2.set_ylim(lo / 1.5, hi * 1.5)
    ax2.set_xlabel("width, input px (log scale)")
    ax2.set_ylabel("height, input px (log scale)")
    ax2.set_title("box width vs height" + (" with anchors" if anchors is not None else ""),
                  fontsize=9)
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure_atomic(fig, path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig
