"""Which cell of each level the ERF is measured at, and the input size that makes one exist.

research/erf.md §4: per level, the cell whose RF centre is nearest the image centre among those
whose whole RF lies inside the input, so that no padding enters its map and the map's statistics
are those of an interior cell. ``required_input`` is the smallest input where every level has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from anchorfit.erf.window import ancestors
from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import NodeRF, RFAnalysis, extend

if TYPE_CHECKING:  # the type only: the estimator is handed a network, it never loads one
    from anchorfit.rf.network import Network


@dataclass(frozen=True)
class LevelPlan:
    """The cell measured on one level, in input coordinates (index convention)."""

    name: str  # the user's layer name
    node: str  # IR / fx node
    rf: NodeRF
    cell: tuple[int, int]
    box: tuple[tuple[int, int], tuple[int, int]]  # rows [y0, y1], cols [x0, x1] of its RF
    head: NodeRF | None = None

    @property
    def center2(self) -> tuple[int, int]:
        """Doubled RF centre of the cell (integers; the centre may be a half-integer)."""
        return (self.box[0][0] + self.box[0][1], self.box[1][0] + self.box[1][1])

    @property
    def center(self) -> tuple[Fraction, Fraction]:
        return (Fraction(self.center2[0], 2), Fraction(self.center2[1], 2))


def nearest_fitting(amap: Any, n: int, inside: bool = True) -> int | None:
    """On one axis of ``n`` pixels: the index whose RF centre is nearest the centre among those
    whose whole RF is inside (``inside=False``: among all; ties: the smaller index); None when
    none fits."""
    best: tuple[int, int] | None = None
    for o in range(amap.size):
        lo, hi = amap.start(o), amap.end(o)
        if lo is None or hi is None or (inside and (lo < 0 or hi > n - 1)):
            continue
        key = (abs(lo + hi - (n - 1)), o)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def choose_cell(rf: NodeRF, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """The cell whose RF centre is nearest the image centre among those whose whole RF is inside
    the input (ties: the smaller index); None when no cell's RF fits. After a global op (YOLOv1's
    connected layer) every cell sees the whole input at any size: the cell nearest the centre."""
    inside = not rf.global_context
    picked = [nearest_fitting(amap, n, inside) for amap, n in zip(rf.axes, input_size)]
    if picked[0] is None or picked[1] is None:
        return None
    return (picked[0], picked[1])


def required_input(rfs: Sequence[NodeRF], margin_strides: int = 2,
                   multiple: tuple[int, int] | None = None) -> tuple[int, int]:
    """Input size (H, W) for these levels: max RF + 2 margins of ``margin_strides`` × the largest
    stride, rounded up to a multiple of the largest stride (research/erf.md §4.3) and of
    ``multiple`` (``size_multiple``: what the network's deepest ancestor needs)."""
    size = []
    for axis in range(2):
        stride = max(math.ceil(r.axes[axis].stride) for r in rfs)
        need = max(r.axes[axis].rf for r in rfs) + 2 * margin_strides * stride
        unit = math.lcm(stride, multiple[axis]) if multiple else stride
        size.append(-(-need // unit) * unit)
    return (size[0], size[1])


def size_multiple(graph: Any, analysis: RFAnalysis, nodes: Sequence[str]) -> tuple[int, int]:
    """The lcm of the (integer) strides of every ancestor of ``nodes``, per axis: an input that
    is a multiple of it keeps every map of a top-down path (FPN, YOLO necks, which upsample a
    deeper map and merge it) the size of the map it merges with."""
    unit = [1, 1]
    for n in ancestors(graph, list(nodes)):
        for axis, amap in enumerate(analysis.nodes[n].axes):
            unit[axis] = math.lcm(unit[axis], max(math.ceil(amap.stride), 1))
    return (unit[0], unit[1])


def plan_levels(net: Network, layers: Sequence[str], analysis: RFAnalysis | None = None
                ) -> list[LevelPlan]:
    """Pick the cell of every layer; raise when the input is too small for one of them."""
    analysis = analysis or net.analyze()
    h, w = analysis.input_size
    plans = []
    for name in layers:
        node = net.node(name)
        rf = analysis[node]
        if rf.spatial_dims != 2:
            raise AnchorfitError(f"layer {name!r} is not an image feature map (no 2-D layout)",
                                 hint="pick a convolutional layer")
        cell = choose_cell(rf, (h, w))
        if cell is None:
            need = required_input([rf], multiple=size_multiple(net.graph, analysis, [node]))
            raise AnchorfitError(
                f"input {h}x{w} is smaller than layer {name!r} needs: its RF is "
                f"{rf.rf[0]}x{rf.rf[1]} (stride {float(rf.stride[0]):g}) and no cell's RF lies "
                "inside the input",
                hint=f"use an input of {need[0]}x{need[1]} or larger (anchorfit erf picks one "
                     "when no input size is given)")
        i, j = cell
        box = ((rf.y.start(i), rf.y.end(i)), (rf.x.start(j), rf.x.end(j)))
        if rf.global_context:  # it reads every pixel: its RF is the input
            box = ((0, h - 1), (0, w - 1))
        head_ops = getattr(net, "heads", {}).get(name)
        head = extend(rf, head_ops) if head_ops else None
        plans.append(LevelPlan(name, node, rf, cell, box, head))  # type: ignore[arg-type]
    return plans
