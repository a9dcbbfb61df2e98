"""mmdetection dense heads beyond the classic anchor heads: what each level predicts from, and how
training gives it boxes.

Two kinds of heads are read here (mmdet 3.x defaults, checked against its source):

**Point heads** predict from points ``((i + offset) * stride, (j + offset) * stride)`` of an
``MlvlPointGenerator``; the offset is 0.5 unless the head says otherwise:

- ``FCOSHead``: offset 0.5; a point takes a box when it lies inside it (or, with
  ``center_sampling``, within ``center_sample_radius`` strides of its centre, default 1.5) and
  ``max(l, t, r, b)`` is in the level's ``regress_ranges`` (default (-1, 64), (64, 128),
  (128, 256), (256, 512), (512, 1e8)). ``norm_on_bbox`` divides targets by the stride.
- ``AutoAssignHead``: an FCOS head with ``MlvlPointGenerator(offset=0)``; every point inside a
  box on every level is a candidate, weighted by a learned Gaussian centre prior: no ranges.
- ``CenterNetUpdateHead`` (CenterNet2's one-stage head): offset 0.5; ``sqrt(w² + h²) / 2`` in
  ``regress_ranges`` (default (0, 80), (64, 160), (128, 320), (256, 640), (512, 1e8)), points in
  the 3x3 cells around the box centre's cell.
- ``FoveaHead``: offset 0.5; ``sqrt(w h)`` in ``scale_ranges`` (default (8, 32) ... (128, 512)),
  positives in the box shrunk by ``sigma``.
- ``YOLOXHead``: ``MlvlPointGenerator(offset=0)``; ``SimOTAAssigner`` picks positives by cost
  among points inside the box or within ``center_radius`` (2.5) strides of its centre, on all
  levels at once: no ranges.
- ``RTMDetHead``/``RTMDetSepBNHead``: the config's ``MlvlPointGenerator`` (``offset=0``);
  ``DynamicSoftLabelAssigner`` (``topk`` 13, soft centre prior of radius 3 strides), all levels.
- ``CenterNetHead`` (Objects as Points): one stride-4 map; a box's centre goes to the cell
  ``int(c / stride)`` and the offset within it is regressed: offset 0.

Where a head has no size range its levels get ``(0, inf)``: every level can take every size.

**Anchor heads with newer assigners** (ATSS, GFL, TOOD, VFNet, DDOD, PAA, FSAF) keep the
generator's anchors (``octave_base_scale * stride`` squares, centre offset 0); only the assigner
is recorded: ``ATSSAssigner`` (``topk`` 9 by centre distance per level, IoU above mean + std),
``TaskAlignedAssigner`` (TOOD, ``topk`` 13 after ``initial_epoch`` epochs of ATSS),
``MaxIoUAssigner`` (PAA, then its GMM), ``CenterRegionAssigner`` (FSAF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from anchorfit.detector import Assigner

INF = 1e8  # mmdet's INF in its default ranges

FCOS_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))
CENTERNET_UPDATE_RANGES = ((0, 80), (64, 160), (128, 320), (256, 640), (512, INF))
FOVEA_RANGES = ((8, 32), (16, 64), (32, 128), (64, 256), (128, 512))

#: head type -> (point offset, default strides)
POINT_HEADS: dict[str, tuple[float, tuple[int, ...]]] = {
    "FCOSHead": (0.5, (4, 8, 16, 32, 64)),
    "AutoAssignHead": (0.0, (4, 8, 16, 32, 64)),
    "CenterNetUpdateHead": (0.5, (4, 8, 16, 32, 64)),
    "FoveaHead": (0.5, (4, 8, 16, 32, 64)),
    "YOLOXHead": (0.0, (8, 16, 32)),
    "VFNetHead": (0.5, (4, 8, 16, 32, 64)),
    "CenterNetHead": (0.0, (4,)),
    "RTMDetHead": (0.0, (8, 16, 32)),
    "RTMDetSepBNHead": (0.0, (8, 16, 32)),
}


#: head type -> Level.range_measure of its ranges (heads not listed route nothing: ``none``)
MEASURE_CODES = {"FCOSHead": "max-ltrb", "VFNetHead": "max-ltrb",
                 "CenterNetUpdateHead": "half-diagonal", "FoveaHead": "sqrt-area"}


class HeadError(ValueError):
    """A head setting anchorfit cannot read; ``key`` is the config key to point the user at."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class PointHead:
    """Geometry of a point head, per level (finest first)."""

    strides: list[tuple[float, float]]  # (y, x)
    offset: float
    ranges: list[tuple[float, float]]
    measure: str  # what the ranges bound, in words
    assigner: Assigner
    kernels: list[int]
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    measure_code: str = "none"  # Level.range_measure (anchorfit.anchor_free.MEASURES)


def _strides(values: Any) -> list[tuple[float, float]]:
    out = []
    if not isinstance(values, (list, tuple)):
        raise HeadError(f"strides must be a list, got {values!r}", "strides")
    for s in values:
        if isinstance(s, (int, float)) and not isinstance(s, bool):
            out.append((float(s), float(s)))
        elif isinstance(s, (list, tuple)) and len(s) == 2:  # mmdet (w, h)
            out.append((float(s[1]), float(s[0])))
        else:  # a string indexed as a pair was an IndexError
            raise HeadError(f"{s!r}: a stride is a number or a (w, h) pair", "strides")
    return out


def _ranges(values: Any, n: int, what: str) -> list[tuple[float, float]]:
    """(lo, hi) per level; a lower bound below 0 is 0 (sizes are not negative), >= INF is inf."""
    ranges = [(float(lo), float(hi)) for lo, hi in values]
    if len(ranges) != n:
        raise HeadError(f"{len(ranges)} {what} for {n} levels (one (lo, hi) per stride)", what)
    return [(max(lo, 0.0), math.inf if hi >= INF else hi) for lo, hi in ranges]


def is_point_head(head: dict) -> bool:
    """Whether ``head`` predicts from points (read by ``point_head``), not a generator's anchors."""
    kind = head.get("type")
    gen = head.get("prior_generator") or head.get("anchor_generator")
    if isinstance(gen, dict) and gen.get("type") == "MlvlPointGenerator":
        return True
    if kind == "VFNetHead":
        return not head.get("use_atss", True)
    return kind in POINT_HEADS and kind not in ("RTMDetHead", "RTMDetSepBNHead")


def vfnet_generator(head: dict) -> dict:
    """VFNetHead with ``use_atss`` (the default): its ATSS anchors come from this generator."""
    gen = {"type": "AnchorGenerator", "ratios": [1.0], "octave_base_scale": 8,
           "scales_per_octave": 1, "center_offset": 0.0, "strides": [8, 16, 32, 64, 128]}
    gen.update(head.get("anchor_generator") or {})
    return gen


def point_head(head: dict, train_cfg: dict | None) -> PointHead:
    """Read a point head (see the module docstring); ValueError for what cannot be read."""
    kind = str(head.get("type"))
    gen = head.get("prior_generator") or head.get("anchor_generator")
    default_offset, default_strides = POINT_HEADS.get(kind, (0.5, (8, 16, 32)))
    if isinstance(gen, dict) and gen.get("type") == "MlvlPointGenerator":
        strides = _strides(gen["strides"])
        offset = float(gen.get("offset", 0.5))
    else:
        strides = _strides(head.get("strides", default_strides))
        offset = default_offset
    n = len(strides)
    train = train_cfg or {}
    a = train.get("assigner") or {}
    stacked = int(head.get("stacked_convs", 4))
    kernels = [3] * (stacked + 1)
    extra: dict[str, Any] = {"head": kind, "points": "MlvlPointGenerator", "point_offset": offset}
    notes: list[str] = []
    unbounded = [(0.0, math.inf)] * n
    if kind in ("FCOSHead", "VFNetHead"):
        ranges = _ranges(head.get("regress_ranges", FCOS_RANGES), n, "regress_ranges")
        measure = "max(l, t, r, b) from the point to the box sides"
        sampling = bool(head.get("center_sampling", False))
        radius = float(head.get("center_sample_radius", 1.5)) if sampling else None
        assigner = Assigner("anchor-free", None, None, radius=radius)
        extra.update(center_sampling=sampling, norm_on_bbox=bool(head.get("norm_on_bbox", False)),
                     centerness_on_reg=bool(head.get("centerness_on_reg", False)))
        if radius is not None:
            extra["center_sample_radius"] = radius
        if kind == "VFNetHead":
            kernels = [3] * (int(head.get("stacked_convs", 3)) + 2)
        if head.get("dcn_on_last_conv"):
            notes.append(f"{kind}: the last stacked conv is deformable (dcn_on_last_conv); drawn "
                         "as its regular 3x3 grid")
    elif kind == "AutoAssignHead":
        ranges, measure = unbounded, "none: every level is a candidate (learned centre prior)"
        assigner = Assigner("autoassign", None, None)
    elif kind == "CenterNetUpdateHead":
        ranges = _ranges(head.get("regress_ranges", CENTERNET_UPDATE_RANGES), n,
                         "regress_ranges")
        measure = "sqrt(w^2 + h^2) / 2 (half the box diagonal)"
        assigner = Assigner("centernet-update", None, None,
                            topk=int(head.get("more_pos_topk", 9)))
        extra.update(hm_min_radius=head.get("hm_min_radius", 4),
                     more_pos_thresh=head.get("more_pos_thresh", 0.2))
    elif kind == "FoveaHead":
        ranges = _ranges(head.get("scale_ranges", FOVEA_RANGES), n, "scale_ranges")
        measure = "sqrt(w h), closed range"
        assigner = Assigner("fovea", None, None)
        extra.update(sigma=float(head.get("sigma", 0.4)),
                     base_edge_list=list(head.get("base_edge_list", (16, 32, 64, 128, 256))))
        if head.get("with_deform"):
            notes.append("FoveaHead with_deform: the classification branch aligns features with "
                         "a deformable 3x3 (data-dependent offsets); drawn as its regular grid")
    elif kind == "YOLOXHead":
        ranges, measure = unbounded, "none: SimOTA chooses among all levels by cost"
        radius = float(a.get("center_radius", 2.5)) if a.get("type", "SimOTAAssigner") == \
            "SimOTAAssigner" else None
        assigner = Assigner("simota", None, None, topk=int(a.get("candidate_topk", 10)),
                            radius=radius)
        kernels = [3] * int(head.get("stacked_convs", 2)) + [1]
    elif kind in ("RTMDetHead", "RTMDetSepBNHead"):
        ranges, measure = unbounded, "none: the dynamic soft-label assigner ranks all levels"
        if a.get("type", "DynamicSoftLabelAssigner") != "DynamicSoftLabelAssigner":
            raise HeadError(f"{kind}: assigner {a.get('type')!r} is not read (only "
                            "DynamicSoftLabelAssigner)", "assigner")
        assigner = Assigner("dynamic-soft-label", None, None, topk=int(a.get("topk", 13)),
                            radius=float(a.get("soft_center_radius", 3.0)))
        kernels = [3] * int(head.get("stacked_convs", 2)) + [int(head.get("pred_kernel_size", 1))]
        extra.update(exp_on_reg=bool(head.get("exp_on_reg", False)),
                     share_conv=bool(head.get("share_conv", True)))
    elif kind == "CenterNetHead":
        ranges, measure = unbounded, "none: one level, a Gaussian heatmap peak per box centre"
        assigner = Assigner("centernet-heatmap", None, None)
        kernels = [3, 1]
    else:
        raise ValueError(f"{kind} is not a point head anchorfit reads "
                         f"({', '.join(sorted(POINT_HEADS))})")
    if a.get("type"):
        extra["assigner"] = a["type"]
    extra["range_measure"] = measure
    return PointHead(strides, offset, ranges, measure, assigner, kernels, extra, notes,
                     MEASURE_CODES.get(kind, "none"))


def anchor_head_assigner(head: dict, train_cfg: dict | None) -> tuple[Assigner, dict[str, Any]] | None:
    """The assigner of an anchor head that uses one of the newer (non-IoU-threshold) assigners,
    with its parameters for the level's ``extra``; None for the IoU assigners ``mmdet`` reads."""
    train = train_cfg or {}
    a = train.get("assigner") or {}
    kind = a.get("type")
    params: dict[str, Any] = {"assigner": kind}
    if kind == "ATSSAssigner":
        params.update(topk=int(a.get("topk", 9)))
        if a.get("alpha") is not None:  # DDOD's cost weighting
            params["alpha"] = float(a["alpha"])
        if isinstance(train.get("reg_assigner"), dict):
            params["reg_assigner"] = dict(train["reg_assigner"])
        out = Assigner("atss", None, None, topk=int(a.get("topk", 9)))
    elif kind == "TaskAlignedAssigner":
        init = train.get("initial_assigner") or {}
        params.update(topk=int(a.get("topk", 13)), initial_epoch=train.get("initial_epoch"),
                      initial_assigner=init.get("type"), initial_topk=init.get("topk"),
                      anchor_type=head.get("anchor_type", "anchor_free"))
        out = Assigner("task-aligned", None, None, topk=int(a.get("topk", 13)))
    elif kind == "CenterRegionAssigner":
        params.update(pos_scale=float(a.get("pos_scale", 0.2)),
                      neg_scale=float(a.get("neg_scale", 0.2)),
                      min_pos_iof=float(a.get("min_pos_iof", 0.01)))
        out = Assigner("center-region", None, None)
    else:
        return None
    return out, params


def anchor_head_kernels(head: dict) -> list[int] | None:
    """Head convolutions of the ATSS-family anchor heads (None: not one of them)."""
    kind = head.get("type")
    n = int(head.get("stacked_convs", 4))
    if kind in ("ATSSHead", "PAAHead"):
        return [3] * n + [int(head.get("pred_kernel_size", 3))]
    if kind in ("GFLHead", "DDODHead", "FSAFHead"):
        return [3] * (n + 1)
    if kind == "TOODHead":
        return [3] * n + [1, 3]  # stacked convs, task decomposition 1x1, 3x3 predictors
    if kind == "VFNetHead":
        return [3] * (int(head.get("stacked_convs", 3)) + 2)
    return None


__all__ = ["HeadError", "PointHead", "anchor_head_assigner", "anchor_head_kernels", "is_point_head",
           "point_head", "vfnet_generator"]
