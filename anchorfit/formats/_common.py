"""Pieces every format reader needs: turning (graph, levels) into a Network + Detector.

Readers differ in how they find layers and anchors; what they hand back is the same shape, so it
is built once here: the network's default layers are the detector's levels (so ``anchorfit rf
FILE`` reports exactly the maps the anchors live on), each with the head's own convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from anchorfit.detector import Anchor, Detector, Level
from anchorfit.errors import FormatError
from anchorfit.models import Network
from anchorfit.rf.engine import RFAnalysis, analyze
from anchorfit.rf.graph import Graph, Window


def pyramid_name(stride: Fraction | float | int) -> str:
    """``P3`` for stride 8: the usual FPN/YOLO name for a level (``S16x8`` when not a power of 2)."""
    s = Fraction(stride)
    if s.denominator == 1 and s.numerator > 0 and s.numerator & (s.numerator - 1) == 0:
        return f"P{int(math.log2(s.numerator))}"
    return f"S{float(s):g}"


def unique_names(names: Sequence[str]) -> list[str]:
    """Make level names unique (two levels at one stride get ``P4``, ``P4b``)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}{chr(ord('a') + k)}")
        seen[n] = k + 1
    return out


def build_network(name: str, graph: Graph, input_size: tuple[int, int], levels: Sequence[Level],
                  extra_layers: Mapping[str, str] | None = None,
                  notes: Iterable[str] = ()) -> Network:
    """A detector Network whose default layers are the levels (by name) and heads their convs."""
    graph.outputs = [lv.node for lv in levels if lv.node is not None]
    layer_nodes = dict(extra_layers or {})
    layer_nodes.update({lv.name: lv.node for lv in levels if lv.node is not None})
    net = Network(name, graph, input_size, [lv.name for lv in levels if lv.node is not None],
                  layer_nodes=layer_nodes,
                  heads={lv.name: list(lv.head) for lv in levels if lv.head},
                  kind="detector", notes=list(notes))
    return net


def finish(detector: Detector) -> Detector:
    """Join RF numbers to the levels and return the detector (readers end with this)."""
    return detector.analyze()


def square_anchors(sizes: Iterable[float], ratios: Iterable[float]) -> list[Anchor]:
    """Anchors of area size² for each aspect ratio h/w (the torchvision/detectron2 rule).

    Order: for each ratio, for each size (detectron2 and torchvision both iterate sizes fastest).
    """
    out = []
    for r in ratios:
        for s in sizes:
            w = math.sqrt(s * s / r)
            out.append(Anchor(w, w * r))
    return out


def as_pair(value: Any, source: str | Path, key: str, line: int | None = None) -> tuple[int, int]:
    """An input size written as 640, [640], (H, W) → (H, W)."""
    try:
        if isinstance(value, (int, float)):
            return (int(value), int(value))
        vals = [int(v) for v in value]
        if len(vals) == 1:
            return (vals[0], vals[0])
        if len(vals) == 2:
            return (vals[0], vals[1])
    except (TypeError, ValueError):
        pass
    raise FormatError(f"expected a size (one int or [H, W]), got {value!r}", source=source,
                      key=key, line=line)


def analysis_of(graph: Graph, input_size: tuple[int, int]) -> RFAnalysis:
    return analyze(graph, input_size)


def head_convs(kernels: Sequence[int | tuple[int, int]]) -> list[Window]:
    """Stride-1 same-padded convs of the given kernels (a head's own layers, in order)."""
    out = []
    for k in kernels:
        ky, kx = (k, k) if isinstance(k, int) else k
        out.append(Window((ky, kx), (1, 1), ((ky - 1) // 2, (kx - 1) // 2), kind="head"))
    return out
