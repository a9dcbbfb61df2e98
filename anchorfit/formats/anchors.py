"""Anchor generators: the rules by which a detector turns its config into anchor shapes.

One rule per concept, in the detector's own arithmetic (so the numbers are the ones that code
produces; ratio conventions are noted on each), in the spirit of torchvision's
``anchor_utils.py``. Readers parse their config language and call these instead of spelling the
arithmetic again:

- size x ratio grids: ``anchors_from_sizes`` (torchvision/mmdet order, the anchorfit spec),
  ``cell_anchors`` (detectron2's ``DefaultAnchorGenerator``);
- SSD priors: ``ssd_anchors`` (spec), ``prior_box`` (Caffe ``PriorBox``), ``ssd_sizes``
  (mmdetection's ``basesize_ratio_range``);
- mmdetection generators (``AnchorGenerator``, ``SSDAnchorGenerator``, ``YOLOAnchorGenerator``
  and the legacy ones): ``generator_anchors``;
- densification (FaceBoxes): ``densified``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from anchorfit.detector import Anchor


# --------------------------------------------------------------------------- size x ratio grids

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


def cell_anchors(sizes: list[float], ratios: list[float]) -> list[Anchor]:
    """detectron2's order: sizes outer, aspect ratios (h/w) inner."""
    out = []
    for s in sizes:
        for r in ratios:
            w = math.sqrt(s * s / r)
            out.append(Anchor(w, r * w))
    return out


# --------------------------------------------------------------------------- SSD priors

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


def prior_box(mins: Sequence[float], maxs: Sequence[float], aspect_ratios: Sequence[float], *,
              flip: bool = True) -> list[Anchor]:
    """Caffe SSD's PriorBox: per min size, the min square, the sqrt(min*max) square (when max
    sizes are given), then ``min*sqrt(r) x min/sqrt(r)`` for each distinct ratio r (w / h) and,
    with ``flip``, its inverse right after it."""
    ratios = [1.0]
    for r in aspect_ratios:
        if any(abs(r - q) < 1e-6 for q in ratios):
            continue
        ratios.append(r)
        if flip:
            ratios.append(1.0 / r)
    out = []
    for i, m in enumerate(mins):
        out.append(Anchor(m, m))
        if maxs:
            s = math.sqrt(m * maxs[i])
            out.append(Anchor(s, s))
        for r in ratios:
            if abs(r - 1.0) < 1e-6:
                continue
            out.append(Anchor(m * math.sqrt(r), m / math.sqrt(r)))
    return out


def ssd_sizes(input_size: int, ratio_range: Sequence[float], num_levels: int
              ) -> tuple[list[int], list[int]]:
    """mmdet SSDAnchorGenerator's min/max sizes from ``basesize_ratio_range``, exactly."""
    min_ratio, max_ratio = int(ratio_range[0] * 100), int(ratio_range[1] * 100)
    step = int(math.floor(max_ratio - min_ratio) / (num_levels - 2))
    mins, maxs = [], []
    for ratio in range(min_ratio, max_ratio + 1, step):
        mins.append(int(input_size * ratio / 100))
        maxs.append(int(input_size * (ratio + step) / 100))
    first = {(300, 0.15): (7, 15), (300, 0.2): (10, 20), (512, 0.1): (4, 10),
             (512, 0.15): (7, 15)}.get((input_size, float(ratio_range[0])))
    if first is None:
        raise ValueError(f"basesize_ratio_range[0] {ratio_range[0]} with input_size {input_size}: "
                         "mmdet only knows 300 with 0.15/0.2 and 512 with 0.1/0.15 (it raises "
                         "ValueError too); give min_sizes/max_sizes instead")
    mins.insert(0, int(input_size * first[0] / 100))
    maxs.insert(0, int(input_size * first[1] / 100))
    return mins, maxs


# --------------------------------------------------------------------------- mmdetection generators

def _strides(gen: dict) -> list[tuple[float, float]]:
    """mmdet strides are ints or (w, h); returned as (y, x)."""
    out = []
    for s in gen["strides"]:
        if isinstance(s, (int, float)):
            out.append((float(s), float(s)))
        else:
            out.append((float(s[1]), float(s[0])))
    return out


def _grid(base: float, scales: Sequence[float], ratios: Sequence[float], scale_major: bool
          ) -> list[tuple[float, float]]:
    """mmdet's base-anchor (w, h) list: ratio-major when ``scale_major`` (its own naming)."""
    pairs = ([(r, s) for r in ratios for s in scales] if scale_major else
             [(r, s) for s in scales for r in ratios])
    return [(base * s / math.sqrt(r), base * s * math.sqrt(r)) for r, s in pairs]


def _legacy(wh: list[tuple[float, float]], center: float) -> list[tuple[float, float]]:
    """mmdet v1 boxes: corners ``c ± 0.5 (w - 1)`` rounded, width ``x2 - x1 + 1``."""
    out = []
    for w, h in wh:
        bw = round(center + 0.5 * (w - 1)) - round(center - 0.5 * (w - 1)) + 1
        bh = round(center + 0.5 * (h - 1)) - round(center - 0.5 * (h - 1)) + 1
        out.append((float(bw), float(bh)))
    return out


def generator_anchors(gen: dict) -> tuple[list[list[Anchor]], list[tuple[float, float]], list[float]]:
    """Per-level anchors, steps (y, x) and centre offsets (cells) of an mmdet anchor generator."""
    kind = gen.get("type")
    strides = _strides(gen)
    n = len(strides)
    legacy = str(kind).startswith("Legacy")
    levels: list[list[Anchor]] = []
    offsets: list[float] = []
    if kind in ("AnchorGenerator", "LegacyAnchorGenerator"):
        has_scales = gen.get("scales") is not None
        has_octave = gen.get("octave_base_scale") is not None
        if has_scales == has_octave:
            raise ValueError("give either scales or octave_base_scale + scales_per_octave")
        if has_scales:
            scales = [float(s) for s in gen["scales"]]
        else:
            spo = int(gen.get("scales_per_octave", 1))
            scales = [float(gen["octave_base_scale"]) * 2 ** (i / spo) for i in range(spo)]
        bases = [float(b) for b in gen.get("base_sizes") or [min(s) for s in strides]]
        if len(bases) != n:
            raise ValueError(f"{len(bases)} base_sizes for {n} strides")
        ratios = [float(r) for r in gen["ratios"]]
        co = float(gen.get("center_offset", 0.0))
        centers = gen.get("centers")
        for i, base in enumerate(bases):
            wh = _grid(base, scales, ratios, bool(gen.get("scale_major", True)))
            if legacy:
                c = co * (base - 1)
                wh = _legacy(wh, c)
                offsets.append(c / strides[i][1])
            else:
                offsets.append(float(centers[i][0]) / strides[i][1] if centers else
                               co * base / strides[i][1])
            levels.append([Anchor(w, h) for w, h in wh])
    elif kind in ("SSDAnchorGenerator", "LegacySSDAnchorGenerator"):
        ratios_per = gen["ratios"]
        if len(ratios_per) != n:
            raise ValueError(f"{len(ratios_per)} ratio lists for {n} strides")
        if gen.get("min_sizes") is not None or gen.get("max_sizes") is not None:
            mins = [float(v) for v in gen["min_sizes"]]
            maxs = [float(v) for v in gen["max_sizes"]]
        else:
            mins_i, maxs_i = ssd_sizes(int(gen.get("input_size", 300)),
                                       gen.get("basesize_ratio_range", (0.15, 0.9)), n)
            mins, maxs = [float(v) for v in mins_i], [float(v) for v in maxs_i]
        if len(mins) != n or len(maxs) != n:
            raise ValueError(f"{len(mins)} min sizes / {len(maxs)} max sizes for {n} strides")
        for k in range(n):
            scales = [1.0, math.sqrt(maxs[k] / mins[k])]
            ratio = [1.0]
            for r in ratios_per[k]:
                ratio += [1 / float(r), float(r)]
            wh = _grid(mins[k], scales, ratio, bool(gen.get("scale_major", True)))
            idx = list(range(len(ratio)))
            idx.insert(1, len(idx))
            wh = [wh[j] for j in idx]
            if legacy:
                c = (strides[k][1] - 1) / 2
                wh = _legacy(wh, c)
                offsets.append(c / strides[k][1])
            else:
                offsets.append(0.5)
            levels.append([Anchor(w, h) for w, h in wh])
    elif kind == "YOLOAnchorGenerator":
        base_sizes = gen["base_sizes"]
        if len(base_sizes) != n:
            raise ValueError(f"{len(base_sizes)} base_sizes levels for {n} strides")
        for lv in base_sizes:
            levels.append([Anchor(float(w), float(h)) for w, h in lv])
            offsets.append(0.5)
    else:
        raise ValueError(f"anchor generator type {kind!r} is not supported (AnchorGenerator, "
                         "SSDAnchorGenerator, YOLOAnchorGenerator, LegacyAnchorGenerator, "
                         "LegacySSDAnchorGenerator)")
    return levels, strides, offsets


# --------------------------------------------------------------------------- densification

def densified(anchor: Anchor, n: int) -> Anchor:
    """FaceBoxes densification: n x n copies at offsets (i/n, j/n) of a cell, in cells."""
    steps = [k / n for k in range(n)]
    return Anchor(anchor.w, anchor.h, tuple((oy, ox) for oy in steps for ox in steps))


def _clean(value: float) -> float:
    """Round away float noise (64.00000000001) without losing real fractions."""
    r = round(float(value), 9)
    return float(int(r)) if r.is_integer() else r


__all__ = ["anchors_from_sizes", "cell_anchors", "densified", "generator_anchors", "prior_box",
           "ssd_anchors", "ssd_sizes"]
