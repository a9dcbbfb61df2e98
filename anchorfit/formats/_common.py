"""Small helpers the foreign-config readers (YOLOv5, Caffe, mmdet, detectron2) share.

The Network/anchor helpers every reader uses live in ``anchorfit.formats.common``; this module
only adds level naming and the final RF join.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from anchorfit.detector import Detector, Level
from anchorfit.formats.common import detector_network
from anchorfit.models import Network
from anchorfit.rf.graph import Graph
from anchorfit.safeinput import read_config_text


def pyramid_name(stride: Fraction | float | int) -> str:
    """``P3`` for stride 8: the usual FPN/YOLO name for a level (``S100`` when not a power of 2)."""
    s = Fraction(stride)
    if s.denominator == 1 and s.numerator > 0 and s.numerator & (s.numerator - 1) == 0:
        return f"P{int(math.log2(s.numerator))}"
    return f"S{float(s):g}"


def unique_names(names: Sequence[str]) -> list[str]:
    """Make level names unique (two levels at one stride get ``P6``, ``P6b``)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}{chr(ord('a') + k)}")
        seen[n] = k + 1
    return out


def finish(detector: Detector) -> Detector:
    """Join RF numbers to the levels and return the detector (readers end with this)."""
    return detector.analyze()


def make_network(name: str, graph: Graph, input_size: tuple[int, int], levels: Sequence[Level],
                 notes: Sequence[str] = (), extra_layers: Mapping[str, str] | None = None
                 ) -> Network:
    """``common.detector_network`` with the level nodes as the graph's outputs (so the torch
    module built from the IR returns them) and extra user-facing layer names."""
    graph.outputs = list(dict.fromkeys(lv.node for lv in levels if lv.node is not None))
    net = detector_network(name, graph, input_size, list(levels), notes=notes)
    for layer, node in (extra_layers or {}).items():
        net.layer_nodes.setdefault(layer, node)
    return net


def read_text(path: Path) -> str:
    """A config file's text; unreadable or non-UTF-8 files, devices and FIFOs, and files over
    ``safeinput.MAX_CONFIG_BYTES`` are a ``FormatError`` naming it."""
    return read_config_text(Path(path))
