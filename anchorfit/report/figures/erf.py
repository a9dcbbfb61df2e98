"""ERF heatmaps: one panel per level with the RF box, the 2σ ellipse and the mass squares."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from anchorfit.erf.result import ERFResult
from anchorfit.erf.stats import SQUARE_LEVELS, replknet_normalise, square_key
from anchorfit.report.text import plural, short_title

_SQUARE_STYLE = {0.5: ("#ffd54f", ":"), 0.9: ("#ff8a65", "--"), 0.9545: ("#e040fb", "-.")}


def erf_figure(result: ERFResult, *, columns: int = 3) -> Any:
    """A matplotlib figure of every level's mean map (normalised to its maximum; RepLKNet's
    log10 normalisation in ``replknet`` mode), cropped to the cell's RF plus a margin.

    Drawn on each panel: the theoretical RF (white box), the ellipse at ±2σ about the centroid
    (cyan, 4σ across: the headline ERF) and the centred squares holding 50/90/95.45 % of the mass.
    Axes are input pixels (index convention: pixel k spans [k - 0.5, k + 0.5]).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse, Patch, Rectangle

    squares = "/".join(square_key(q) for q in SQUARE_LEVELS) + " %"

    n = len(result.levels)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.5 * cols + 0.8, 4.3 * rows + 0.6),
                             squeeze=False,
                             layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    img, label = None, "map / max"
    for ax, lv in zip(axes.ravel(), result.levels):
        (y0, y1), (x0, x1) = lv.box
        pad = [max(4, (b[1] - b[0] + 1) // 8) for b in lv.box]
        top, left = y0 - pad[0], x0 - pad[1]
        bottom, right = y1 + pad[0], x1 + pad[1]
        full = lv.full_map(result.input_size)
        view = np.zeros((bottom - top + 1, right - left + 1))
        sy0, sx0 = max(top, 0), max(left, 0)
        sy1, sx1 = min(bottom, full.shape[0] - 1), min(right, full.shape[1] - 1)
        view[sy0 - top:sy1 - top + 1, sx0 - left:sx1 - left + 1] = full[sy0:sy1 + 1, sx0:sx1 + 1]
        if result.mode == "replknet":
            shown = replknet_normalise(view)
            label = "log10(map + 1) / max"
        else:
            peak = view.max()
            shown = view / peak if peak > 0 else view
            label = "map / max"
        img = ax.imshow(shown, cmap="magma", vmin=0, vmax=1, interpolation="nearest",
                        extent=(left - 0.5, right + 0.5, bottom + 0.5, top - 0.5))
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                               edgecolor="white", linewidth=1.2))
        cy, cx = lv.centroid
        sy, sx = lv.sigma
        ax.add_patch(Ellipse((cx, cy), 4 * sx, 4 * sy, fill=False, edgecolor="cyan",
                             linewidth=1.2))
        c_y, c_x = (float(c) for c in lv.center)
        for q in SQUARE_LEVELS:
            side = lv.squares[q]
            colour, style = _SQUARE_STYLE[q]
            ax.add_patch(Rectangle((c_x - side / 2, c_y - side / 2), side, side, fill=False,
                                   edgecolor=colour, linestyle=style, linewidth=1.0))
        sides = "/".join(f"{lv.squares[q]:g}" for q in SQUARE_LEVELS)
        ax.set_title(f"{lv.name}: RF {lv.rf.rf[0]} px, stride {float(lv.rf.stride[0]):g}\n"
                     f"4σ {lv.erf_4sigma[0]:.1f} x {lv.erf_4sigma[1]:.1f} px, "
                     f"4σ/RF {lv.erf_rf.mean():.2f}\nsquares {squares}: {sides} px", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("x, input px", fontsize=8)
        ax.set_ylabel("y, input px", fontsize=8)
    # one colour bar and one legend for every panel: per-panel ones covered the maps' corners
    # and repeated the same scale six times (the numbers are in each panel's title)
    used = list(axes.ravel()[:n])
    fig.colorbar(img, ax=used, shrink=0.85, pad=0.01).set_label(label, fontsize=8)
    handles = [Patch(facecolor="0.25", edgecolor="white", lw=1.5, label="theoretical RF"),
               Patch(facecolor="0.25", edgecolor="cyan", lw=1.5,
                     label="ellipse at ±2σ (4σ across)")]
    handles += [Patch(facecolor="0.25", edgecolor=_SQUARE_STYLE[q][0], lw=1.5,
                      linestyle=_SQUARE_STYLE[q][1], label=f"square holding {square_key(q)} %")
                for q in SQUARE_LEVELS]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"{short_title(result.model)} @ {result.input_size[0]}x{result.input_size[1]}:"
                 f" ERF ({result.mode}, weights {Path(str(result.weights)).name}, "
                 f"{result.inputs}, {plural(result.samples, 'sample')}, seed {result.seed})",
                 fontsize=10)
    return fig


def save_erf_figure(result: ERFResult, path: str | Path) -> None:
    """Write the figure atomically (the format follows the suffix)."""
    import matplotlib.pyplot as plt

    from anchorfit.report.output import save_figure_atomic

    fig = erf_figure(result)
    try:
        save_figure_atomic(fig, path, dpi=110, bbox_inches="tight", pad_inches=0.05)
    finally:
        plt.close(fig)

