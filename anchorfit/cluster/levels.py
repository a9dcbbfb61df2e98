"""Level-aware clustering: k anchors per detection level, each kept inside its level's range.

Plain k-means sorts all anchors by area and deals them out evenly (YOLOv5), so a small-object
dataset pulls even the stride-32 anchors below their stride (yolov5 #117: "constraining the
anchors to not shrink below their stride size"). Here each level l with stride S_l owns the box
scales (sqrt(w·h)) nearest, in log scale, to the centre of its range [lo·S_l, hi·S_l] (default
[2, 8]·S, centre 4·S as in S3FD); boxes beyond the first/last level go to that level. Each level
is clustered on its own boxes, with boxes outside the range moved onto its boundary (aspect
kept) so the anchors land inside it and stay distinct; anchors are finally clipped into the range
(and under an optional per-level maximum, e.g. the ERF). Empty levels get one square
anchor at the range centre, and a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from anchorfit.cluster.geometry import sort_by_area


def split_k(k: int, levels: int) -> list[int]:
    """k anchors over levels as evenly as possible, extra ones to the coarser levels."""
    base, extra = divmod(k, levels)
    return [base + (1 if i >= levels - extra else 0) for i in range(levels)]


def assign_levels(points: np.ndarray, strides: Sequence[float],
                  level_range: tuple[float, float] = (2.0, 8.0)) -> np.ndarray:
    """Level index per point by nearest range centre in log scale."""
    centre = np.sqrt(level_range[0] * level_range[1]) * np.asarray(strides, dtype=np.float64)
    bounds = np.sqrt(centre[:-1] * centre[1:])
    scale = np.sqrt(points[:, 0] * points[:, 1])
    return np.searchsorted(bounds, scale)


def clip_to_range(anchors: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int]:
    """Scale anchors whose sqrt-area lies outside [lo, hi] back to the boundary (aspect kept)."""
    scale = np.sqrt(anchors[:, 0] * anchors[:, 1])
    target = np.clip(scale, lo, hi)
    clipped = int(np.sum(~np.isclose(target, scale, rtol=1e-6)))
    return anchors * (target / scale)[:, None], clipped


def level_kmeans(points: np.ndarray, weight: np.ndarray, strides: Sequence[float],
                 k_per_level: Sequence[int],
                 fit: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, list[str]]], *,
                 level_range: tuple[float, float] = (2.0, 8.0),
                 level_max: Sequence[float | None] | None = None,
                 level_names: Sequence[str] | None = None
                 ) -> tuple[list[np.ndarray], list[str], list[dict]]:
    """Cluster each level's points with ``fit(points, weight, k) -> (anchors, warnings)``.

    Warnings name each level as ``level_names`` does (the detector's names), else by its
    position in ``strides``, always with the stride.
    """
    owner = assign_levels(points, strides, level_range)
    levels, warnings, info = [], [], []
    for lvl, (stride, k) in enumerate(zip(strides, k_per_level)):
        label = level_label(lvl, stride, level_names)
        lo, hi = level_range[0] * stride, level_range[1] * stride
        cap = level_max[lvl] if level_max is not None else None
        if cap is not None and float(cap) < hi:
            hi = float(cap)
            if hi < lo:  # the level sees less than its own range: hold its anchors at the cap
                warnings.append(f"{label}: its cap {hi:g} px (ERF or head RF) is below its "
                                f"range's lower end {lo:g} px; anchors held at {hi:g} px")
                lo = hi
        sel = owner == lvl
        n = float(weight[sel].sum())
        if not sel.any():
            c = np.sqrt(level_range[0] * level_range[1]) * stride
            levels.append(np.full((max(k, 1), 2), c)[:1])
            warnings.append(f"{label}: no box falls in its clustering range [{lo:g}, {hi:g}] "
                            f"px; one square {c:g} px anchor put there")
            info.append({"level": lvl, "stride": stride, "boxes": 0.0, "clipped": 0})
            continue
        # boxes outside the range pull anchors out of it; clustering them at the boundary (same
        # aspect) instead keeps the k anchors distinct after the final clip
        projected, _ = clip_to_range(points[sel], lo, hi)
        anchors, notes = fit(projected, weight[sel], k)
        warnings += [f"{label}: {m}" for m in notes]
        anchors, clipped = clip_to_range(np.asarray(anchors, dtype=np.float64), lo, hi)
        if clipped:
            warnings.append(f"{label}: {clipped} anchors clipped into [{lo:g}, {hi:g}] px")
        levels.append(sort_by_area(anchors))
        info.append({"level": lvl, "stride": stride, "boxes": n, "clipped": clipped})
    return levels, warnings, info


def level_label(index: int, stride: float | None, names: Sequence[str] | None = None) -> str:
    """How messages name a level: the detector's name and stride ("level P3 (stride 8)")."""
    name = names[index] if names is not None and index < len(names) else str(index)
    return f"level {name}" + ("" if stride is None else f" (stride {stride:g})")


def split_by_area(anchors: np.ndarray, k_per_level: Sequence[int]) -> list[np.ndarray]:
    """YOLOv5's rule: sort by area, the smallest to the first (finest) level, and so on."""
    ordered = sort_by_area(anchors)
    cuts = np.cumsum(k_per_level)[:-1]
    return [a for a in np.split(ordered, cuts)]
