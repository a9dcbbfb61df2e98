"""Figures of the planner and comparison (matplotlib, Agg backend, PNG/SVG by suffix).

- ``ladder``: per level, stride, anchor sizes, ERF (with its interval) and RF / head RF on one log
  axis, so "anchor < ERF < RF" and the equal-proportion spacing can be read at a glance;
- ``box_scatter``: the dataset's box sizes (log w vs log h) with every anchor set and the level
  bands [2, 8] x stride;
- ``grid_recall_by_size``: grid recall (tiled anchors) per size bucket for several anchor sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anchorfit.report.output import save_figure_atomic  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def ladder(plan: Any, path: str | Path, title: str | None = None) -> None:
    """The per-level ladder of a ``Plan``: stride < anchor < ERF < RF <= head RF (log scale)."""
    levels = plan.levels
    fig, ax = plt.subplots(figsize=(1.3 * len(levels) + 3, 4.6))
    x = np.arange(len(levels))
    strides = [lv.stride for lv in levels]
    ax.plot(x, strides, "s-", color="0.5", label="stride")
    for i, lv in enumerate(levels):
        for a in lv.anchors:
            ax.plot(i, np.sqrt(a.w * a.h), "o", color=COLOURS[0], ms=7, alpha=0.8,
                    label="anchor (sqrt wh)" if i == 0 and a is lv.anchors[0] else None)
    erf = [lv.erf.value if lv.erf else np.nan for lv in levels]
    if not np.all(np.isnan(erf)):
        lo = [lv.erf.low if lv.erf and lv.erf.low else np.nan for lv in levels]
        hi = [lv.erf.high if lv.erf and lv.erf.high else np.nan for lv in levels]
        ax.errorbar(x, erf, yerr=[np.subtract(erf, lo), np.subtract(hi, erf)], fmt="D-",
                    color=COLOURS[2], capsize=4, label="ERF (4σ, 95% CI)")
    rf = [lv.rf if lv.rf else np.nan for lv in levels]
    head = [lv.head_rf if lv.head_rf else np.nan for lv in levels]
    ax.plot(x, rf, "^-", color=COLOURS[1], label="RF (feature)")
    ax.plot(x, head, "^--", color=COLOURS[1], alpha=0.5, label="RF (head)")
    ax.set_yscale("log", base=2)
    ax.set_xticks(x, [f"{lv.name}\nS={lv.stride:g}" for lv in levels])
    ax.set_ylabel("pixels (input)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"{plan.detector}: anchor < ERF < RF per level ({plan.rule})")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def box_scatter(wh: np.ndarray, anchor_sets: Mapping[str, Sequence[Sequence[float]]],
                strides: Sequence[float], path: str | Path, title: str = "box sizes",
                level_range: tuple[float, float] = (2.0, 8.0), max_points: int = 20000,
                seed: int = 0) -> None:
    """Box w/h (log-log) with each anchor set's anchors and the levels' scale boundaries."""
    wh = np.asarray(wh, dtype=float)
    if len(wh) > max_points:
        wh = wh[np.random.default_rng(seed).choice(len(wh), max_points, replace=False)]
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.scatter(wh[:, 0], wh[:, 1], s=3, alpha=0.25, color="0.4", label=f"boxes ({len(wh)})")
    lo_all, hi_all = float(wh.min()), float(wh.max())
    # Each level owns the box scales sqrt(w*h) nearest (in log scale) to its range centre, as the
    # level-aware clustering assigns them: boundaries are the lines w*h = b^2 (anti-diagonals).
    centres = np.sqrt(level_range[0] * level_range[1]) * np.asarray(strides, dtype=float)
    bounds = np.sqrt(centres[:-1] * centres[1:])
    span = np.geomspace(1e-2, 1e5, 50)
    for b in bounds:
        ax.plot(span, b * b / span, color="0.6", lw=0.8, ls="--")
    for c, s in zip(centres, strides):
        ax.text(c * 1.3, c / 1.3, f"S{s:g}", fontsize=8, color="0.3", ha="left", va="top")
    markers = ["o", "x", "^", "s", "D", "P"]
    for j, (name, anchors) in enumerate(anchor_sets.items()):
        a = np.asarray(anchors, dtype=float).reshape(-1, 2)
        ax.scatter(a[:, 0], a[:, 1], s=60, marker=markers[j % len(markers)],
                   color=COLOURS[j % len(COLOURS)], label=name, zorder=3)
        lo_all, hi_all = min(lo_all, a.min()), max(hi_all, a.max())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(lo_all / 1.5, hi_all * 2)
    ax.set_ylim(lo_all / 1.5, hi_all * 2)
    ax.set_xlabel("width (input px)")
    ax.set_ylabel("height (input px)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def grid_recall_by_size(results: Mapping[str, Mapping[str, float]], path: str | Path,
                        title: str = "grid recall by object size") -> None:
    """Bars of grid recall per size bucket (columns) for each anchor set (groups)."""
    names = list(results)
    buckets = sorted({b for r in results.values() for b in r},
                     key=lambda b: ["small", "medium", "large", "all"].index(b)
                     if b in ("small", "medium", "large", "all") else 10)
    fig, ax = plt.subplots(figsize=(1.8 * len(buckets) + 2.5, 4.2))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [results[name].get(b, np.nan) for b in buckets]
        pos = np.arange(len(buckets)) + i * width - 0.4 + width / 2
        ax.bar(pos, vals, width, label=name, color=COLOURS[i % len(COLOURS)])
        for p, v in zip(pos, vals):
            if np.isfinite(v):
                ax.text(p, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(buckets)), buckets)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("grid recall (tiled anchor above IoU)")
    ax.legend(fontsize=8, loc="upper center", ncol=min(len(names), 3), frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)
