"""Cone crops: shrink the intermediate feature maps of a one-level pass to the cell's cone.

The cell's gradient flows only through its *cone*: the positions of each feature map that can
change the cell. Every such position has its own RF inside the cell's RF, so cropping a feature
map to the positions whose RF lies inside the cell's RF keeps the whole cone; the layers after the
crop then compute every cone position from the same values as before (positions outside the cone
may read the crop's zero padding, but they cannot change the cell). So the cell, its gradient and
the map are unchanged while the deeper layers run on less: on SSD300's fc7 the cone at fc6 is a
single position of a 27 × 27 map.

Crops are only put on *cut* nodes (every path from the input to the level passes through them),
start at an offset that keeps every later sampling grid in phase, and are checked by re-running
the RF engine on the cropped graph: the cell must keep exactly its RF there, or no crop is used.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from anchorfit.erf.window import ancestors
from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import RFAnalysis, analyze
from anchorfit.rf.graph import Graph, Input, Node, Slice

#: crop a feature map only when it keeps less than this fraction of its cells
MIN_GAIN = 0.9


@dataclass(frozen=True)
class Crop:
    """Keep rows [y0, y1) and cols [x0, x1) of ``node``'s map (in the cropped network's cells)."""

    node: str
    y0: int
    y1: int
    x0: int
    x1: int


@dataclass(frozen=True)
class ConePlan:
    crops: tuple[Crop, ...]
    cells: tuple[tuple[int, int], ...]  # each level's cell in the cropped network


def cut_nodes(graph: Graph, order: Sequence[str]) -> list[str]:
    """Nodes of ``order`` (topological, ancestor-closed) that every later node is reached through:
    no node after a cut reads a node before it."""
    pos = {n: i for i, n in enumerate(order)}
    earliest = [min((pos[s] for s in graph.nodes[n].inputs), default=i)
                for i, n in enumerate(order)]
    cuts, suffix_min = [], len(order)
    for i in range(len(order) - 1, -1, -1):
        if suffix_min >= i:
            cuts.append(order[i])
        suffix_min = min(suffix_min, earliest[i])
    return cuts[::-1]


Box = tuple[tuple[int, int], tuple[int, int]]


def plan_cone(graph: Graph, analysis: RFAnalysis, levels: Sequence[str],
              cells: Sequence[tuple[int, int]], boxes: Sequence[Box],
              allowed: set[str] | None = None, min_gain: float = MIN_GAIN,
              margin: int = 0) -> ConePlan | None:
    """Crops for the cones of ``cells`` of ``levels``, whose RFs are ``boxes`` (in the coordinates
    of ``analysis``, the analysis of ``graph`` at the window the pass runs on). A map is cropped
    to the positions whose RF lies in the bounding box of the RFs of the levels after it: that
    holds every one of their cones. ``allowed``: the nodes a crop may follow (those of the torch
    module). ``margin``: input pixels added around those boxes, so that a map keeps a ring of
    positions outside the cones and an op that leaks across positions (BatchNorm stuck in train
    mode) still shows outside the RF. None when nothing is worth cropping or the check fails."""
    keep = ancestors(graph, list(levels))
    order = [n for n in graph.nodes if n in keep]
    pos = {n: i for i, n in enumerate(order)}
    cuts = {n for n in cut_nodes(graph, order)
            if n not in levels and not isinstance(graph.nodes[n].op, Input)
            and (allowed is None or n in allowed)}
    # later_lcm[i][axis]: lcm of the shifts of the nodes after order[i]; a crop there must start
    # at a multiple of each of them in input pixels, i.e. at a multiple of later / gcd(later, step)
    # cells of its own map
    later_lcm = [(1, 1)] * len(order)
    acc = (1, 1)
    for i in range(len(order) - 1, -1, -1):
        later_lcm[i] = acc
        acc = tuple(math.lcm(acc[a], abs(analysis.nodes[order[i]].axes[a].shift) or 1)
                    for a in range(2))  # type: ignore[assignment]
    offset = [0, 0]  # input pixels removed in front by the crops so far
    extent: list[int | None] = [None, None]  # input pixels the last crop kept (bounds later maps)
    crops: list[Crop] = []
    offsets_at: dict[str, tuple[int, int]] = {}
    for n in order:
        if n in levels:
            offsets_at[n] = (offset[0], offset[1])
        if n not in cuts:
            continue
        rf = analysis.nodes[n]
        if rf.spatial_dims != 2 or any(a.period != 1 or a.shift <= 0 or a.lo[0] is None
                                       or a.hi[0] is None for a in rf.axes):
            continue
        after = [b for lv, b in zip(levels, boxes) if pos[lv] > pos[n]]
        box = tuple((min(b[a][0] for b in after) - margin, max(b[a][1] for b in after) + margin)
                    for a in range(2))
        span = []
        for axis, amap in enumerate(rf.axes):
            step = amap.shift
            lo = max(-(-(box[axis][0] - amap.lo[0]) // step), 0)
            hi = min((box[axis][1] - amap.hi[0]) // step, amap.size - 1)
            if hi < lo:
                break
            later = later_lcm[pos[n]][axis]
            align = later // math.gcd(later, step)
            done = offset[axis] // step  # cells of this map already removed by earlier crops
            start = (lo - done) // align * align
            size = amap.size - done
            if extent[axis] is not None:  # about the size the map has after the last crop
                size = min(size, -(-extent[axis] // step))  # type: ignore[operator]
            span.append((start, hi - done + 1, size))
        if len(span) < 2:
            continue
        kept = (span[0][1] - span[0][0]) * (span[1][1] - span[1][0])
        if kept >= min_gain * span[0][2] * span[1][2]:
            continue
        crops.append(Crop(n, span[0][0], span[0][1], span[1][0], span[1][1]))
        for axis in range(2):
            offset[axis] += span[axis][0] * rf.axes[axis].shift
            extent[axis] = (span[axis][1] - span[axis][0]) * rf.axes[axis].shift
    if not crops:
        return None
    new_cells = []
    for lv, cell in zip(levels, cells):
        axes = analysis.nodes[lv].axes
        new_cells.append((cell[0] - offsets_at[lv][0] // axes[0].shift,
                          cell[1] - offsets_at[lv][1] // axes[1].shift))
    if not _check(graph, order, crops, analysis.input_size, levels, new_cells, boxes):
        return None
    return ConePlan(tuple(crops), tuple(new_cells))


def _check(graph: Graph, order: Sequence[str], crops: Sequence[Crop], size: tuple[int, int],
           levels: Sequence[str], cells: Sequence[tuple[int, int]], boxes: Sequence[Box]) -> bool:
    """The RF engine on the cropped graph: every cell must exist and keep exactly its box."""
    by_node = {c.node: c for c in crops}
    renamed: dict[str, str] = {}
    cropped = Graph(name=graph.name)
    for n in order:
        node = graph.nodes[n]
        cropped.add(Node(n, node.op, tuple(renamed.get(s, s) for s in node.inputs), node.source,
                         node.spatial_dims))
        if n in by_node:
            c = by_node[n]
            name = f"{n}__cone"
            cropped.add(Node(name, Slice((c.y0, c.x0), (c.y1, c.x1), (1, 1)), (n,)))
            renamed[n] = name
    try:
        result = analyze(cropped, size)
    except AnchorfitError:
        return False
    for level, cell, box in zip(levels, cells, boxes):
        for axis, amap in enumerate(result.nodes[level].axes):
            o = cell[axis]
            if not 0 <= o < amap.size or (amap.start(o), amap.end(o)) != box[axis]:
                return False
    return True


def apply_crops(gm: torch.fx.GraphModule, crops: Sequence[Crop]) -> torch.fx.GraphModule:
    """Insert ``x[:, :, y0:y1, x0:x1].contiguous()`` after each cropped node of ``gm`` (in place)
    and send every later use of the node to the crop."""
    nodes = {n.name: n for n in gm.graph.nodes}
    for c in crops:
        node = nodes[c.node]
        with gm.graph.inserting_after(node):
            sliced = gm.graph.call_function(
                operator.getitem, (node, (slice(None), slice(None), slice(c.y0, c.y1),
                                          slice(c.x0, c.x1))))
        with gm.graph.inserting_after(sliced):
            dense = gm.graph.call_method("contiguous", (sliced,))
        node.replace_all_uses_with(dense, delete_user_cb=lambda user: user is not sliced)
    gm.graph.lint()
    gm.recompile()
    return gm
