"""Figures of the planner and comparison (matplotlib, Agg backend, PNG/SVG by suffix).

- ``ladder``: per level, stride, anchor sizes, ERF (with its interval) and RF / head RF on one log
  axis, so "anchor < ERF < RF" and the equal-proportion spacing can be read at a glance;
- ``box_scatter``: the dataset's box sizes (log w vs log h) with every anchor set, anchors
  coloured by level (marker by set) and the level boundaries in the legend;
- ``grid_recall_by_size``: grid recall (tiled anchors) per size bucket for several anchor sets,
  each bucket's size range written under it.

Every function returns the matplotlib Figure (tests read its titles, labels and legends) and
writes it when given a path. Legends sit outside the axes: inside, they covered data points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anchorfit.report.text import short_title, thousands  # noqa: E402
from anchorfit.report.figures.boxes import point_style  # noqa: E402
from anchorfit.report.output import save_figure_atomic  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f"]
#: one colour per detection level (fine -> coarse), shared by every figure drawing anchors
LEVEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f"]
#: COCO's size buckets by sqrt(area), as ``cluster.metrics`` counts them
BUCKET_RANGES = {"small": "sqrt(wh) < 32 px", "medium": "32 ≤ sqrt(wh) < 96 px",
                 "large": "sqrt(wh) ≥ 96 px", "all": "every box"}


def _finish(fig: Any, path: str | Path | None, dpi: int = 120) -> Any:
    if path is not None:
        save_figure_atomic(fig, path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return fig


def ladder(plan: Any, path: str | Path | None = None, title: str | None = None) -> Any:
    """The per-level ladder of a ``Plan``: stride < anchor < ERF < RF <= head RF (log scale).

    Series are drawn side by side within each level's column (anchors in the middle, ERF to the
    right, RF to the left), so an ERF equal to an anchor no longer hides it; the title names
    only the quantities drawn (no "ERF" after ``--no-erf``).
    """
    levels = plan.levels
    fig, ax = plt.subplots(figsize=(1.1 * len(levels) + 3.2, 4.4))
    x = np.arange(len(levels), dtype=float)
    ax.plot(x, [lv.stride for lv in levels], "s-", color="0.5", ms=5, label="stride")
    for i, lv in enumerate(levels):
        sizes = sorted({round(float(np.sqrt(a.w * a.h)), 3) for a in lv.anchors})
        ax.plot([i] * len(sizes), sizes, "o", ms=7, mfc=LEVEL_COLOURS[i % 10], mec="black",
                mew=0.6, zorder=4)
    if any(lv.anchors for lv in levels):  # one neutral legend entry: the colour is the level
        ax.plot([], [], "o", ms=7, mfc="white", mec="black", mew=0.6,
                label="anchor, sqrt(w·h)\n(colour = level)")
    erf = np.array([lv.erf.value if lv.erf else np.nan for lv in levels], dtype=float)
    has_erf = not np.all(np.isnan(erf))
    if has_erf:
        lo = np.array([lv.erf.low if lv.erf and lv.erf.low else np.nan for lv in levels])
        hi = np.array([lv.erf.high if lv.erf and lv.erf.high else np.nan for lv in levels])
        ax.errorbar(x + 0.18, erf, yerr=[np.nan_to_num(erf - lo), np.nan_to_num(hi - erf)],
                    fmt="D", mfc="none", color=COLOURS[2], ms=6, capsize=3, zorder=3,
                    label="ERF, 4σ (95% CI)")
    rf = np.array([lv.rf if lv.rf else np.nan for lv in levels], dtype=float)
    head = np.array([lv.head_rf if lv.head_rf else np.nan for lv in levels], dtype=float)
    ax.plot(x - 0.18, rf, "^", color=COLOURS[1], ms=6, label="RF (feature map)")
    if not np.allclose(np.nan_to_num(head), np.nan_to_num(rf)):
        ax.plot(x - 0.18, head, "v", color=COLOURS[1], mfc="none", ms=6, label="RF (with head)")
    ax.set_yscale("log", base=2)
    ax.set_xticks(x, [f"{lv.name}\nstride {lv.stride:g}" for lv in levels], fontsize=8)
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_xlabel("detection level")
    ax.set_ylabel("size, input px (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    order = "anchor < ERF < RF" if has_erf else "anchor < RF"
    ax.set_title(title or f"{short_title(plan.detector)}: {order} per level (rule {plan.rule})",
                 fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def _levels_of(anchors: Any) -> list[np.ndarray]:
    """Anchors per level as (n, 2) arrays; a flat list of (w, h) pairs is one level."""
    if isinstance(anchors, np.ndarray) and anchors.ndim == 2:
        return [anchors.astype(float)]
    items = list(anchors)
    if items and np.ndim(items[0]) == 1 and len(items[0]) == 2 and np.isscalar(items[0][0]):
        return [np.asarray(items, dtype=float).reshape(-1, 2)]
    return [np.asarray(a, dtype=float).reshape(-1, 2) for a in items]


def box_scatter(wh: np.ndarray, anchor_sets: Mapping[str, Sequence[Any]],
                strides: Sequence[float], path: str | Path | None = None,
                title: str = "box sizes", level_range: tuple[float, float] = (2.0, 8.0),
                max_points: int = 20000, seed: int = 0,
                level_names: Sequence[str] | None = None) -> Any:
    """Box w/h (log-log) with each anchor set's anchors and the levels' scale boundaries.

    ``anchor_sets`` maps a set's name to its anchors per level (a list of (n, 2) arrays, level
    order = ``strides`` order). Colour says the level, marker the set; the legend lists the
    boxes ("shown N of M" when subsampled), each set, each level and the boundary line.
    """
    wh = np.asarray(wh, dtype=float)
    total = len(wh)
    if total > max_points:
        wh = wh[np.random.default_rng(seed).choice(total, max_points, replace=False)]
    shown = (f"boxes (shown {thousands(len(wh))} of {thousands(total)})" if total > len(wh)
             else f"boxes ({thousands(total)})")
    fig, ax = plt.subplots(figsize=(8.6, 5.6))
    size, alpha = point_style(len(wh))
    ax.scatter(wh[:, 0], wh[:, 1], s=size, alpha=alpha, color="0.45", linewidths=0, label=shown)
    lo_all, hi_all = float(wh.min()), float(wh.max())
    # Each level owns the box scales sqrt(w*h) nearest (in log scale) to its range centre, as the
    # level-aware clustering assigns them: boundaries are the lines w*h = b^2 (anti-diagonals).
    uniq = sorted(set(float(s) for s in strides))
    centres = np.sqrt(level_range[0] * level_range[1]) * np.asarray(uniq, dtype=float)
    bounds = np.sqrt(centres[:-1] * centres[1:])
    span = np.geomspace(1e-2, 1e5, 50)
    for j, b in enumerate(bounds):
        ax.plot(span, b * b / span, color="0.55", lw=0.8, ls="--",
                label="level boundary, sqrt(w·h) = " + ", ".join(f"{v:.0f}" for v in bounds)
                + " px" if j == 0 else None)
    markers = ["o", "X", "^", "s", "D", "P"]
    names = list(level_names or [])
    for j, (name, anchors) in enumerate(anchor_sets.items()):
        per_level = _levels_of(anchors)
        for i, a in enumerate(per_level):
            if not len(a):
                continue
            colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)] if len(per_level) > 1 else COLOURS[j]
            ax.scatter(a[:, 0], a[:, 1], s=55, marker=markers[j % len(markers)], color=colour,
                       edgecolors="black", linewidths=0.5, zorder=3)
            lo_all, hi_all = min(lo_all, a.min()), max(hi_all, a.max())
        ax.scatter([], [], s=55, marker=markers[j % len(markers)], color="white",
                   edgecolors="black", label=f"anchors: {name}")
    n_levels = max((len(_levels_of(a)) for a in anchor_sets.values()), default=0)
    if n_levels > 1:
        for i in range(n_levels):
            stride = f"stride {strides[i]:g}" if i < len(strides) else ""
            label = f"{names[i]} ({stride})" if i < len(names) else f"level {i} ({stride})"
            ax.scatter([], [], s=55, marker="s", color=LEVEL_COLOURS[i % len(LEVEL_COLOURS)],
                       label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(lo_all / 1.5, hi_all * 2)
    ax.set_ylim(lo_all / 1.5, hi_all * 2)
    ax.set_xlabel("width, input px")
    ax.set_ylabel("height, input px")
    ax.grid(True, which="major", alpha=0.3)
    legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    boxes_handle = legend.legend_handles[0]  # the boxes' own dots are too faint to read there
    boxes_handle.set_sizes([16])
    boxes_handle.set_alpha(0.8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def grid_recall_by_size(results: Mapping[str, Mapping[str, float]],
                        path: str | Path | None = None,
                        title: str = "grid recall by object size") -> Any:
    """Bars of grid recall per size bucket (columns) for each anchor set (groups); each
    bucket's sqrt(area) range is written under its name."""
    names = list(results)
    order = ["small", "medium", "large", "all"]
    buckets = sorted({b for r in results.values() for b in r},
                     key=lambda b: order.index(b) if b in order else 10)
    fig, ax = plt.subplots(figsize=(1.9 * len(buckets) + 3.5, 4.2))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [results[name].get(b, np.nan) for b in buckets]
        pos = np.arange(len(buckets)) + i * width - 0.4 + width / 2
        ax.bar(pos, vals, width, label=name, color=COLOURS[i % len(COLOURS)])
        for p, v in zip(pos, vals):
            if np.isfinite(v):
                ax.text(p, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(buckets)),
                  [f"{b}\n{BUCKET_RANGES[b]}" if b in BUCKET_RANGES else b for b in buckets],
                  fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("object size (COCO buckets, input px)")
    ax.set_ylabel("grid recall (fraction of boxes)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)
