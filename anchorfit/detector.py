"""The common detector model every format reader produces and every later step consumes.

A detector is an input size, a resize policy and an ordered list of levels. A level says which
feature map it reads, the stride its anchor generator *uses* (which can differ from the true
stride the RF engine measures: SSD's 100/300 steps, torchvision's ``image // grid``), its anchors
in input pixels, where it puts anchor centres, its head's own convolutions and the rule its
assigner applies. ``Detector.analyze()`` joins the RF engine's numbers to each level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import pandas as pd

from anchorfit.rf.engine import NodeRF, extend, fmt_axes, fmt_exact, json_number
from anchorfit.rf.graph import Window

CenterConvention = Literal["top-left", "cell-center", "explicit"]
ResizePolicy = Literal["letterbox", "stretch", "shortside", "fixed", "none"]  # none: native pixels

#: What an anchor-free level's ``anchor_free_range`` bounds, for a box w x h (at its centre point):
RANGE_MEASURES: dict[str, str] = {
    "max-ltrb": "max(l, t, r, b): the largest distance from the point to a box side, max(w, h)/2 "
                "at the box centre (FCOS regress_ranges, mmdet and torchvision)",
    "half-diagonal": "sqrt(w^2 + h^2) / 2 (mmdet CenterNetUpdateHead regress_ranges)",
    "sqrt-area": "sqrt(w h) (mmdet FoveaHead scale_ranges)",
    "box-side": "max(w, h), the box's longer side (Ultralytics DFL reach 2 (reg_max - 1) stride)",
    "none": "no routing by size: every level takes every size",
}
#: the measures by which an assigner routes objects to levels; ``box-side`` (a DFL head's
#: reach) and ``none`` bound what a level can regress, not which objects it gets
ROUTING_MEASURES = ("max-ltrb", "half-diagonal", "sqrt-area")
#: the unit after a range in tables (``none`` and unknown: nothing)
MEASURE_LABELS = {"max-ltrb": "of max(l,t,r,b)", "half-diagonal": "of half diagonal",
                  "sqrt-area": "of sqrt(wh)", "box-side": "of box side"}


@dataclass(frozen=True)
class Anchor:
    """An anchor box (w, h) in input pixels.

    ``offsets`` are explicit (y, x) centre offsets in cells, for densified anchors (FaceBoxes tiles
    a 32-px anchor 4x4 per cell at offsets 0, .25, .5, .75); ``None`` follows the level's
    convention.
    """

    w: float
    h: float
    offsets: tuple[tuple[float, float], ...] | None = None

    def to_list(self) -> list[float]:
        return [_round(self.w), _round(self.h)]


@dataclass(frozen=True)
class Assigner:
    """How the detector's training assigns boxes to anchors (which metric matters for audits).

    kind: ``iou`` (SSD/RetinaNet/RPN: IoU above ``pos_iou`` is positive), ``yolo-ratio``
    (YOLOv5: max(w/aw, aw/w, h/ah, ah/h) < ``anchor_t``), ``darknet`` (best-IoU anchor among
    all, kept when in this level's ``mask``), ``anchor-free`` (FCOS/LFFD size ranges).
    mmdetection's newer assigners keep their name as the kind (``atss``, ``task-aligned``,
    ``simota``, ``dynamic-soft-label``, ``center-region``, ...) with ``topk`` (candidates per
    level or per box) and ``radius`` (centre sampling / centre prior radius, in strides) where
    they have one.
    """

    kind: str = "iou"
    pos_iou: float | None = 0.5
    neg_iou: float | None = 0.4
    anchor_t: float | None = None
    ignore_iou: float | None = None
    topk: int | None = None
    radius: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Level:
    """One detection level."""

    name: str
    node: str | None = None  # IR node of the feature map this level reads
    stride: tuple[Fraction, Fraction] | None = None  # true stride (from the RF engine when known)
    step: tuple[float, float] | None = None  # the stride the anchor generator uses
    anchors: list[Anchor] = field(default_factory=list)
    anchor_free_range: tuple[float, float] | None = None  # (lo, hi] object sizes, anchor-free
    center: CenterConvention = "cell-center"
    center_offset: float = 0.5  # cells: 0 for top-left i*S, 0.5 for (i + 0.5)*S
    head: list[Window] = field(default_factory=list)  # the head's own convs on this level
    assigner: Assigner = field(default_factory=Assigner)
    feature_size: tuple[int, int] | None = None  # from the config when it says (SSD feature_maps)
    mask: list[int] | None = None  # Darknet: indices into the cfg's global anchor list
    extra: dict[str, Any] = field(default_factory=dict)
    rf: NodeRF | None = None
    head_rf: NodeRF | None = None
    #: what ``anchor_free_range`` bounds (``design.anchor_free.MEASURES``): ``max-ltrb`` (FCOS:
    #: the largest point-to-side distance, max(w, h)/2 at the box centre), ``half-diagonal``,
    #: ``sqrt-area``, ``box-side`` (max(w, h)), or ``none`` (no routing: every level takes every
    #: size). None on anchor levels.
    range_measure: str | None = None

    @property
    def anchor_free(self) -> bool:
        return not self.anchors

    def true_stride(self) -> tuple[Fraction, Fraction] | None:
        if self.rf is not None:
            return self.rf.stride
        return self.stride

    def stride_px(self) -> float | None:
        """The true stride as one number (the larger axis): what tiling and clustering use."""
        s = self.true_stride()
        return None if s is None else float(max(s))

    def to_dict(self) -> dict[str, Any]:
        rf = self.rf
        stride = self.true_stride()
        return {
            "name": self.name,
            "node": self.node,
            "stride": None if stride is None else [json_number(Fraction(s)) for s in stride],
            "step": None if self.step is None else [_round(s) for s in self.step],
            "anchors": [a.to_list() for a in self.anchors],
            "anchor_offsets": [None if a.offsets is None else [list(o) for o in a.offsets]
                               for a in self.anchors],
            "anchor_free_range": None if self.anchor_free_range is None else list(
                self.anchor_free_range),
            "range_measure": self.range_measure,
            "center": self.center,
            "center_offset": self.center_offset,
            "assigner": self.assigner.to_dict(),
            "mask": self.mask,
            "rf": None if rf is None else list(rf.rf),
            "head_rf": None if self.head_rf is None else list(self.head_rf.rf),
            "head_global_context": None if self.head_rf is None else self.head_rf.global_context,
            "rf_center": None if rf is None else [json_number(c) for c in rf.center],
            "padding": None if rf is None else [json_number(p) for p in rf.padding],
            "feature_size": (list(rf.feature_size) if rf is not None else
                             list(self.feature_size) if self.feature_size else None),
            "aligned": None if rf is None else rf.aligned,
            "global_context": None if rf is None else rf.global_context,
        }


@dataclass
class Detector:
    """A detector read from any format: input size, resize policy and levels."""

    name: str
    input_size: tuple[int, int]
    levels: list[Level]
    resize_policy: ResizePolicy = "stretch"
    resize_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"short": 800, "max": 1333}
    source: str | None = None
    network: Any = None  # anchorfit.rf.network.Network when the network is known
    num_classes: int | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def analyze(self) -> Detector:
        """Join the RF engine's numbers (rf, head_rf, true stride, centre) to every level."""
        if self.network is None:
            return self
        analysis = self.network.analyze()
        for level in self.levels:
            if level.node is None:
                continue
            level.rf = analysis[level.node]
            level.stride = level.rf.stride
            level.head_rf = extend(level.rf, level.head) if level.head else level.rf
        return self

    def all_anchors(self) -> list[tuple[float, float]]:
        return [(a.w, a.h) for level in self.levels for a in level.anchors]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "input": list(self.input_size),
            "resize_policy": self.resize_policy,
            "resize_params": self.resize_params,
            "num_classes": self.num_classes,
            "convention": "index",
            "levels": [level.to_dict() for level in self.levels],
            "notes": list(self.notes),
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for level in self.levels:
            stride = level.true_stride()
            rf = level.rf
            rows.append({
                "level": level.name,
                "stride": "-" if stride is None else fmt_axes(*stride),
                "step": "-" if level.step is None else fmt_axes(*(_round(s) for s in level.step)),
                "map": ("-" if rf is None and level.feature_size is None else
                        "x".join(str(v) for v in (rf.feature_size if rf else level.feature_size))),
                "rf": "-" if rf is None else fmt_axes(*rf.rf),
                "head_rf": "-" if level.head_rf is None else fmt_axes(*level.head_rf.rf) + (
                    " (global)" if level.head_rf.global_context and not (
                        rf is not None and rf.global_context) else ""),
                "rf_center": "-" if rf is None else fmt_axes(*rf.center),
                "anchor_center": {"top-left": "i*S", "cell-center": "(i+0.5)*S",
                                  "explicit": "explicit"}[level.center],
                "anchors (w x h)": format_anchors(level),
                "assigner": _assigner_text(level.assigner),
                "aligned": "-" if rf is None else ("yes" if rf.aligned else "NO"),
            })
        return pd.DataFrame(rows)


def format_anchors(level: Level, limit: int = 6) -> str:
    if level.anchor_free:
        if level.anchor_free_range:
            lo, hi = level.anchor_free_range
            unit = MEASURE_LABELS.get(level.range_measure or "", "")
            return f"anchor-free ({_round(lo)}, {_round(hi)}]" + (f" {unit}" if unit else "")
        return "anchor-free"
    parts = []
    for a in level.anchors[:limit]:
        text = f"{_round(a.w)}x{_round(a.h)}"
        if a.offsets is not None and len(a.offsets) > 1:
            text += f" (x{len(a.offsets)} dense)"
        parts.append(text)
    if len(level.anchors) > limit:
        parts.append(f"... ({len(level.anchors)})")
    return ", ".join(parts)


def _assigner_text(a: Assigner) -> str:
    if a.kind == "yolo-ratio":
        return f"ratio<{a.anchor_t:g}"
    if a.kind == "iou":
        return f"IoU>={a.pos_iou:g}" if a.pos_iou is not None else "IoU"
    if a.topk is not None:
        return f"{a.kind} top{a.topk}"
    return a.kind


def _round(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() else round(f, 2)


__all__ = ["RANGE_MEASURES", "Anchor", "Assigner", "Detector", "Level", "fmt_exact"]
