"""Anchor generators: the rules by which a detector turns its config into anchor shapes.

One function per rule, the same numbers as the detector's own code (ratio conventions noted on
each). Readers call these instead of spelling the arithmetic again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from anchorfit.detector import Anchor


def anchors_from_sizes(sizes: Sequence[float], ratios: Sequence[float] = (1.0,)) -> list[Anchor]:
    """Anchors of every size x ratio, ratio = h / w (mmdetection and torchvision's convention).

    Sizes are the square root of the area: w = size / sqrt(ratio), h = size * sqrt(ratio).
    Ordered ratio-major within each size, like mmdetection's generator.
    """
    out = []
    for size in sizes:
        for ratio in ratios:
            root = math.sqrt(float(ratio))
            out.append(Anchor(_clean(size / root), _clean(size * root)))
    return out


def ssd_anchors(min_size: float, max_size: float | None, ratios: Sequence[float]) -> list[Anchor]:
    """SSD priors of one level: min square, sqrt(min*max) square, then min with each ar, 1/ar.

    The order of Caffe's PriorBox with ``flip: true`` (and ssd.pytorch's prior_box.py); ``ar`` is
    w / h here as in SSD, but every ratio comes with its inverse so the set is the same.
    """
    out = [Anchor(float(min_size), float(min_size))]
    if max_size is not None:
        s = math.sqrt(float(min_size) * float(max_size))
        out.append(Anchor(_clean(s), _clean(s)))
    for ar in ratios:
        root = math.sqrt(float(ar))
        out.append(Anchor(_clean(min_size * root), _clean(min_size / root)))
        out.append(Anchor(_clean(min_size / root), _clean(min_size * root)))
    return out


def densified(anchor: Anchor, n: int) -> Anchor:
    """FaceBoxes densification: n x n copies at offsets (i/n, j/n) of a cell, in cells."""
    steps = [k / n for k in range(n)]
    return Anchor(anchor.w, anchor.h, tuple((oy, ox) for oy in steps for ox in steps))


def _clean(value: float) -> float:
    """Round away float noise (64.00000000001) without losing real fractions."""
    r = round(float(value), 9)
    return float(int(r)) if r.is_integer() else r


__all__ = ["anchors_from_sizes", "densified", "ssd_anchors"]
