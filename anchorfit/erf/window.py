"""Where the ERF estimator runs: compute windows and passes.

A cell's value depends only on the input pixels inside its theoretical RF, so its gradient map
can be computed on any crop of the input that holds that RF, provided the crop starts at an offset
every feature map's sampling grid agrees with and no op depends on the input size (research/erf.md
§4.3). Then the maps are exactly those of the full input, at the cost of the crop.

A *pass* is a group of levels computed together: one forward pass of the network up to those
levels on their window, then one backward pass per level. One pass for all levels (``joint``)
shares the forward; one pass per level (``per-level``) runs every level on its own, smaller
window; ``auto`` lets levels with about the same window share a pass. Measured on CPU
(benchmarks/bench_erf.py, SSD300): the forward and the input-gradient backward of a convolution
cost about the same and batching samples does not make them cheaper, so the work is about window
area × (1 + levels in the pass), which ``joint_cost`` counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import NodeRF, RFAnalysis, analyze
from anchorfit.rf.graph import Graph, Input, Merge, PixelShuffle, Pointwise, Resample, Transposed, \
    Window

SCHEDULES = ("auto", "joint", "per-level")
#: pixels of input kept around a cell's RF on every side, so that the zero-outside-RF check
#: still sees a ring of pixels the cell must not depend on
CHECK_MARGIN = 4


class _Plan(Protocol):
    node: str
    rf: NodeRF
    cell: tuple[int, int]
    box: tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ComputeWindow:
    """The input region the network runs on: rows [y0, y1), cols [x0, x1); cells inside it."""

    y0: int
    y1: int
    x0: int
    x1: int
    cells: tuple[tuple[int, int], ...]  # each level's cell on the window's feature maps
    cropped: bool
    reason: str = ""

    @property
    def origin(self) -> tuple[int, int]:
        return (self.y0, self.x0)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)

    @property
    def area(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def bounds(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return ((self.y0, self.y1), (self.x0, self.x1))


@dataclass(frozen=True)
class Pass:
    """Levels (indices into the plans) computed from one forward pass on one window."""

    levels: tuple[int, ...]
    window: ComputeWindow


def ancestors(graph: Graph, nodes: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(nodes)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(graph.nodes[name].inputs)
    return seen


def crop_safe(op: Any) -> bool:
    """Ops whose output moves with the input when the input is cropped at an aligned offset."""
    if isinstance(op, (Input, Merge, Transposed, PixelShuffle)):
        return True
    if isinstance(op, Pointwise):
        return not op.global_context
    if isinstance(op, Window):
        return op.padding != "same"
    if isinstance(op, Resample):
        return op.size is None and not op.align_corners
    return False


def _subgraph(graph: Graph, keep: set[str]) -> Graph:
    """The nodes of ``graph`` in ``keep`` (ancestor-closed), in the same order."""
    return Graph({n: node for n, node in graph.nodes.items() if n in keep}, [], graph.name)


def compute_window(net: Any, analysis: RFAnalysis, plans: Sequence[_Plan], crop: bool = True,
                   margin: int = CHECK_MARGIN) -> ComputeWindow:
    """The smallest aligned window holding every chosen cell's RF plus ``margin`` pixels, or the
    full input when cropping would not be exact (global context, size-dependent ops) or is
    switched off.

    The window starts at a multiple of every ancestor's shift (so each feature map's grid is the
    full input's, shifted by whole cells) and ends right after the RFs: the sub-network up to
    these levels is re-analysed at the window's size and each cell must keep its RF there.
    """
    h, w = analysis.input_size
    full = ComputeWindow(0, h, 0, w, tuple(p.cell for p in plans), False)
    if not crop:
        return ComputeWindow(0, h, 0, w, full.cells, False, "cropping switched off")
    if any(p.rf.global_context for p in plans):
        return ComputeWindow(0, h, 0, w, full.cells, False, "global context: runs on the full input")
    graph = net.graph
    nodes = ancestors(graph, [p.node for p in plans])
    unsafe = sorted(n for n in nodes if not crop_safe(graph.nodes[n].op))
    if unsafe:
        return ComputeWindow(0, h, 0, w, full.cells, False,
                             f"size-dependent op {unsafe[0]!r}: runs on the full input")
    align = [1, 1]
    for n in nodes:
        for axis, amap in enumerate(analysis.nodes[n].axes):
            align[axis] = math.lcm(align[axis], max(abs(amap.shift), 1))
    lo = [max(min(p.box[a][0] for p in plans) - margin, 0) for a in range(2)]
    hi = [min(max(p.box[a][1] for p in plans) + margin, (h, w)[a] - 1) for a in range(2)]
    start = [lo[a] // align[a] * align[a] for a in range(2)]
    # the tight end first; an aligned end when a size-dependent layout (ceil-mode pooling at the
    # edge) would lose a cell at the tight one
    tight = [hi[a] + 1 for a in range(2)]
    rounded = [min(-(-(hi[a] + 1 - start[a]) // align[a]) * align[a] + start[a], (h, w)[a])
               for a in range(2)]
    sub = _subgraph(graph, nodes)
    for stop in (tight, rounded):
        if start == [0, 0] and stop == [h, w]:
            return full
        cells = _cells_in_window(sub, plans, start, stop)
        if cells is not None:
            return ComputeWindow(start[0], stop[0], start[1], stop[1], cells, True)
    return ComputeWindow(0, h, 0, w, full.cells, False, "window does not preserve cells")


def _cells_in_window(sub: Graph, plans: Sequence[_Plan], start: list[int], stop: list[int]
                     ) -> tuple[tuple[int, int], ...] | None:
    """Each plan's cell on the window's feature maps, or None when one loses its RF there."""
    try:
        analysis = analyze(sub, (stop[0] - start[0], stop[1] - start[1]))
    except AnchorfitError:
        return None
    cells = []
    for p in plans:
        rf = analysis.nodes[p.node]
        cell = []
        for axis, amap in enumerate(rf.axes):
            want = (p.box[axis][0] - start[axis], p.box[axis][1] - start[axis])
            found = [o for o in range(amap.size) if (amap.start(o), amap.end(o)) == want]
            if not found:
                return None
            cell.append(found[0])
        cells.append((cell[0], cell[1]))
    return tuple(cells)


def window_analysis(net: Any, plans: Sequence[_Plan], window: ComputeWindow
                    ) -> tuple[Graph, RFAnalysis]:
    """The sub-network up to ``plans``' levels and its RF analysis at the window's size."""
    sub = _subgraph(net.graph, ancestors(net.graph, [p.node for p in plans]))
    return sub, analyze(sub, window.shape)


def joint_cost(window: ComputeWindow, levels: int) -> int:
    """Work of one pass, in input pixels × passes: one forward plus one backward per level."""
    return window.area * (1 + levels)


def schedule_passes(net: Any, analysis: RFAnalysis, plans: Sequence[_Plan], crop: bool = True,
                    schedule: str = "auto") -> tuple[list[Pass], str]:
    """Group the levels into passes. ``joint``: one pass on the union window; ``per-level``: one
    pass per level on its own window; ``auto``: the grouping that does the least work by
    ``joint_cost``, among splits of the levels, ordered by window size, into consecutive groups
    (levels with about the same window share one forward pass: SSD300's fc7, conv8_2 and conv9_2).
    Returns the passes and the schedule used (``grouped`` when auto mixes both)."""
    if schedule not in SCHEDULES:
        raise AnchorfitError(f"unknown schedule {schedule!r}", hint="one of " + ", ".join(SCHEDULES))
    union = compute_window(net, analysis, plans, crop)
    joint = [Pass(tuple(range(len(plans))), union)]
    if schedule == "joint" or len(plans) == 1:
        return joint, "joint"
    split = [Pass((k,), compute_window(net, analysis, [p], crop)) for k, p in enumerate(plans)]
    if schedule == "per-level":
        return split, "per-level"
    if not union.cropped:  # nothing to gain: every level would run on the full input
        return joint, "joint"
    order = sorted(range(len(plans)), key=lambda k: (split[k].window.area, k))
    windows: dict[tuple[int, int], ComputeWindow] = {}

    def window_of(i: int, j: int) -> ComputeWindow:
        # the group order[i:j], its cells in level order: a Pass lists its levels sorted and
        # the runner pairs the window's cells with them position by position
        if (i, j) not in windows:
            windows[i, j] = split[order[i]].window if j == i + 1 else compute_window(
                net, analysis, [plans[k] for k in sorted(order[i:j])], crop)
        return windows[i, j]

    n = len(order)
    best: list[float] = [0.0] + [math.inf] * n
    start_of = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + joint_cost(window_of(i, j), j - i)
            if cost < best[j]:
                best[j], start_of[j] = cost, i
    groups = []
    j = n
    while j > 0:
        i = start_of[j]
        groups.append(Pass(tuple(sorted(order[i:j])), window_of(i, j)))
        j = i
    groups.sort(key=lambda p: p.levels[0])
    if len(groups) == 1:
        return groups, "joint"
    return groups, "per-level" if len(groups) == len(plans) else "grouped"
