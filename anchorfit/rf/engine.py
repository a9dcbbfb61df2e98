"""Exact receptive-field propagation over a ``Graph``, per axis, phase-aware.

Representation (per axis, per node). Cell ``o`` of a feature map sees the input pixels
``[U(o), V(o)]`` (index convention: input pixel k sits at coordinate k; padding counts as virtual
pixels, as in Araujo et al., Distill 2019). For every op we meet, U and V are *periodic up to a
shift*: ``U(o + T) = U(o) + D`` with an integer period ``T`` and integer shift ``D``. So a node is
stored exactly as ``T, D`` and the integer starts/ends of its ``T`` phases. Ordinary conv nets
have ``T = 1`` (then ``r = V - U + 1``, ``S = D``, ``P = -U(0)``: Distill's r, S, P). Upsampling,
transposed convs and pixel shuffles raise ``T`` (effective stride ``S = D / T`` becomes a
fraction) and make the RF depend on the cell's phase, which we keep instead of guessing.

Every op is described by its *taps*: output cell ``o`` reads input cells ``taps(o)``, and the taps
repeat with ``taps(o + B) = taps(o) + A``. Composing that with the input's ``(T, D)`` gives the
output's period ``T' = B * T / gcd(A, T)``: one pass in topological order, O(nodes + edges) times
the (small) period and kernel sizes, all in integers, so nothing is rounded.

Merges take the union (min start, max end) of their inputs per cell. When the inputs disagree on
stride or centre (FPN/YOLO top-down paths, Focus slicing, TF 'SAME' on even sizes) the node is
reported with ``aligned=False`` and its per-phase centres; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from anchorfit.errors import AnchorfitError
from anchorfit.rf.graph import (
    Adaptive,
    Global,
    Graph,
    Input,
    Merge,
    Node,
    PixelShuffle,
    Pointwise,
    Resample,
    Slice,
    Transposed,
    Window,
    lcm,
)

CONVENTION = ("index convention: input pixel k sits at coordinate k; the RF of cell i spans "
              "[-P + i*S, -P + i*S + r - 1] and its centre is -P + i*S + (r - 1)/2")

#: Limit on a node's phase period; beyond it the net is too irregular to track exactly.
MAX_PERIOD = 1 << 16


@dataclass(frozen=True)
class AxisMap:
    """Exact cell -> input-interval map of one axis: U(o + period) = U(o) + shift."""

    period: int
    shift: int
    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    size: int  # number of cells on this axis of the feature map

    def start(self, o: int) -> int | None:
        q, phase = divmod(o, self.period)
        lo = self.lo[phase]
        return None if lo is None else lo + q * self.shift

    def end(self, o: int) -> int | None:
        q, phase = divmod(o, self.period)
        hi = self.hi[phase]
        return None if hi is None else hi + q * self.shift

    @property
    def stride(self) -> Fraction:
        return Fraction(self.shift, self.period)

    def phases_in_map(self) -> range:
        """The phases that exist on the feature map (all of them unless the map is tiny)."""
        return range(min(self.period, max(self.size, 1)))

    @property
    def rf(self) -> int:
        widths = [self.hi[p] - self.lo[p] + 1 for p in self.phases_in_map()  # type: ignore[operator]
                  if self.lo[p] is not None]
        return max(widths, default=0)

    @property
    def padding(self) -> int | None:
        return None if self.lo[0] is None else -self.lo[0]

    @property
    def center(self) -> Fraction | None:
        if self.lo[0] is None or self.hi[0] is None:
            return None
        return Fraction(self.lo[0] + self.hi[0], 2)

    def centers(self) -> list[Fraction | None]:
        """RF centre of each phase's first cell (cells 0 .. period-1)."""
        return [None if lo is None or hi is None else Fraction(lo + hi, 2)
                for lo, hi in zip(self.lo, self.hi)]

    @property
    def shift_invariant(self) -> bool:
        """True when every cell's RF is cell 0's RF moved by i*S (the Distill picture)."""
        if any(v is None for v in self.lo):
            return False
        width = self.hi[0] - self.lo[0]  # type: ignore[operator]
        for p in range(self.period):
            if self.hi[p] - self.lo[p] != width:  # type: ignore[operator]
                return False
            if (self.lo[p] - self.lo[0]) * self.period != p * self.shift:  # type: ignore[operator]
                return False
        return True


@dataclass(frozen=True)
class NodeRF:
    """Receptive field of every cell of one node, both axes."""

    name: str
    op: str
    y: AxisMap
    x: AxisMap
    aligned: bool
    global_context: bool
    stride_conflict: bool = False
    spatial_dims: int = 2
    source: str | None = None

    @property
    def axes(self) -> tuple[AxisMap, AxisMap]:
        return (self.y, self.x)

    @property
    def rf(self) -> tuple[int, int]:
        return (self.y.rf, self.x.rf)

    @property
    def stride(self) -> tuple[Fraction, Fraction]:
        return (self.y.stride, self.x.stride)

    @property
    def padding(self) -> tuple[int | None, int | None]:
        return (self.y.padding, self.x.padding)

    @property
    def center(self) -> tuple[Fraction | None, Fraction | None]:
        return (self.y.center, self.x.center)

    @property
    def feature_size(self) -> tuple[int, int]:
        return (self.y.size, self.x.size)

    def interval(self, i: int, j: int) -> tuple[tuple[int | None, int | None],
                                               tuple[int | None, int | None]]:
        """Input rows and columns [start, end] seen by cell (i, j)."""
        return ((self.y.start(i), self.y.end(i)), (self.x.start(j), self.x.end(j)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "rf": [self.y.rf, self.x.rf],
            "stride": [json_number(self.y.stride), json_number(self.x.stride)],
            "padding": [json_number(self.y.padding), json_number(self.x.padding)],
            "center": [json_number(self.y.center), json_number(self.x.center)],
            "aligned": self.aligned,
            "global_context": self.global_context,
            "feature_size": [self.y.size, self.x.size],
            "period": [self.y.period, self.x.period],
            "phase_centers": [[json_number(c) for c in self.y.centers()],
                              [json_number(c) for c in self.x.centers()]],
        }


def json_number(value: Fraction | int | None) -> int | float | None:
    """JSON number for an exact value: ints stay ints, halves become floats (exact in binary)."""
    if value is None:
        return None
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


def fmt_exact(value: Fraction | int | None) -> str:
    """Display an exact value: 213, 31.5, or 1/3 when it is not a short decimal."""
    if value is None:
        return "-"
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    if value.denominator in (2, 4, 8):
        return f"{float(value):g}"
    return f"{value.numerator}/{value.denominator}"


def fmt_axes(a: Any, b: Any) -> str:
    """'427' when both axes agree, '427x383' (y x) when they do not."""
    sa, sb = fmt_exact(a), fmt_exact(b)
    return sa if sa == sb else f"{sa}x{sb}"


# --------------------------------------------------------------------------- taps per op

# A tap rule: (B, A, taps) where taps[o] (o < B) are the input cells read by output cell o and
# taps(o + B) = taps(o) + A.
TapRule = tuple[int, int, list[list[int]]]


def _window_axis(op: Window, axis: int, n: int, node: Node) -> tuple[TapRule, int]:
    k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
    if k < 1 or s < 1 or d < 1:
        raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): kernel, stride and dilation "
                             "must be positive")
    k_eff = d * (k - 1) + 1
    if op.padding == "same":
        total = max(k_eff - (n % s or s), 0)
        left, end = total // 2, total - total // 2
    else:
        left = op.padding[axis]
        end = left if op.padding_end is None else op.padding_end[axis]
    span = n + left + end - k_eff
    if span < 0:
        raise AnchorfitError(
            f"layer {node.name!r} ({node.describe()}): its input is only {n} cells on the "
            f"{'yx'[axis]} axis, smaller than its window ({k_eff} with padding {left}+{end})",
            hint="use a larger --input")
    if op.ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= n + left:  # PyTorch drops a window that starts in the right padding
            out -= 1
    else:
        out = span // s + 1
    return (1, s, [[-left + t * d for t in range(k)]]), out


def _transposed_axis(op: Transposed, axis: int, n: int) -> tuple[TapRule, int]:
    k, s, p, d = op.kernel[axis], op.stride[axis], op.padding[axis], op.dilation[axis]
    out = (n - 1) * s - 2 * p + d * (k - 1) + op.output_padding[axis] + 1
    taps = [[(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0] for o in range(s)]
    return (s, 1, taps), out


def _resample_axis(op: Resample, axis: int, n: int) -> tuple[TapRule, int]:
    if op.size is not None:
        out = op.size[axis]
        ratio = Fraction(n, out)
    elif op.scale is not None:
        out = math.floor(n * op.scale[axis])
        ratio = 1 / Fraction(op.scale[axis])
    else:
        raise AnchorfitError("resample needs a scale or a size")
    if op.align_corners and op.mode in ("bilinear", "bicubic"):
        ratio = Fraction(n - 1, out - 1) if out > 1 else Fraction(0)
    a, b = ratio.numerator, ratio.denominator
    taps: list[list[int]] = []
    for o in range(b):
        if op.mode == "nearest":
            taps.append([math.floor(o * ratio)])
        elif op.mode == "nearest-exact":
            taps.append([math.floor((o + Fraction(1, 2)) * ratio)])
        elif op.mode == "area":
            taps.append(list(range(math.floor(o * ratio), math.ceil((o + 1) * ratio))))
        else:  # bilinear / bicubic: taps with non-zero weight only
            src = o * ratio if op.align_corners else (o + Fraction(1, 2)) * ratio - Fraction(1, 2)
            f = math.floor(src)
            if src == f:
                taps.append([f])
            elif op.mode == "bilinear":
                taps.append([f, f + 1])
            else:
                taps.append([f - 1, f, f + 1, f + 2])
    return (b, a, taps), out


def _axis_rule(node: Node, axis: int, n: int) -> tuple[TapRule, int]:
    """Tap rule and output size of ``node``'s op along ``axis`` for an input of ``n`` cells."""
    op = node.op
    identity: TapRule = (1, 1, [[0]])
    if node.spatial_dims == 1 and axis == 0 and not isinstance(op, (Global, Merge)):
        return identity, n  # 1-D networks: the y axis is a dummy of size 1
    if isinstance(op, Window):
        return _window_axis(op, axis, n, node)
    if isinstance(op, Transposed):
        return _transposed_axis(op, axis, n)
    if isinstance(op, Resample):
        return _resample_axis(op, axis, n)
    if isinstance(op, PixelShuffle):
        f = op.factor
        if op.unshuffle:
            if n % f:
                raise AnchorfitError(f"layer {node.name!r}: pixel_unshuffle by {f} needs a size "
                                     f"divisible by {f}, got {n}")
            return (1, f, [list(range(f))]), n // f
        return (f, 1, [[0] for _ in range(f)]), n * f
    if isinstance(op, Slice):
        a, b, s = slice(op.start[axis], op.stop[axis], op.step[axis]).indices(n)
        out = len(range(a, b, s))
        if out <= 0:
            raise AnchorfitError(f"layer {node.name!r} ({node.describe()}) selects no cells of "
                                 f"{n} on the {'yx'[axis]} axis")
        return (1, s, [[a]]), out
    if isinstance(op, Adaptive):
        m = op.output_size[axis] or n
        taps = [list(range(math.floor(o * n / m), math.ceil((o + 1) * n / m))) for o in range(m)]
        return (m, n, taps), m
    if isinstance(op, Global):
        return identity, 1
    if isinstance(op, Pointwise):
        return identity, n
    raise AnchorfitError(f"layer {node.name!r}: no geometry rule for {type(op).__name__}")


# --------------------------------------------------------------------------- composition


def compose(src: AxisMap, rule: TapRule, out_size: int) -> AxisMap:
    """The map of an op's output given its input map ``src`` and its tap rule."""
    b, a, taps = rule
    t = src.period
    copies = t // math.gcd(a, t) if a else 1
    period = b * copies
    if period > MAX_PERIOD:
        raise AnchorfitError(f"the RF pattern repeats only every {period} cells; this network "
                             "mixes resampling factors too irregular to track exactly")
    shift = (copies * a // t) * src.shift if a else 0
    lo: list[int | None] = []
    hi: list[int | None] = []
    start, end = src.start, src.end
    for o in range(period):
        q, r = divmod(o, b)
        starts = [start(j + q * a) for j in taps[r]]
        ends = [end(j + q * a) for j in taps[r]]
        starts_ok = [v for v in starts if v is not None]
        if starts_ok:
            lo.append(min(starts_ok))
            hi.append(max(v for v in ends if v is not None))
        else:
            lo.append(None)
            hi.append(None)
    return AxisMap(period, shift, tuple(lo), tuple(hi), out_size)


def union(maps: Sequence[AxisMap], out_size: int) -> tuple[AxisMap, bool, bool]:
    """Per-cell union of several maps of the same feature-map grid.

    Returns (map, agree, stride_conflict): ``agree`` is Distill's alignment test (equal stride
    and equal centre on every cell) between the inputs.
    """
    strides = {m.stride for m in maps}
    conflict = len(strides) > 1
    period = lcm(*(m.period for m in maps))
    if conflict:
        # No common period exists; the union is exact on the cells of the map and extended with
        # the largest stride beyond them.
        period = period * max(out_size, 1)
        stride = max(strides)
    else:
        stride = strides.pop()
    if period > MAX_PERIOD:
        raise AnchorfitError(f"merged paths repeat only every {period} cells: too irregular")
    shift = stride * period
    lo: list[int | None] = []
    hi: list[int | None] = []
    agree = not conflict
    for o in range(period):
        starts = [m.start(o) for m in maps]
        ends = [m.end(o) for m in maps]
        present = [(u, v) for u, v in zip(starts, ends) if u is not None and v is not None]
        if not present:
            lo.append(None)
            hi.append(None)
            continue
        lo.append(min(u for u, _ in present))
        hi.append(max(v for _, v in present))
        if agree and len({u + v for u, v in present}) > 1:
            agree = False
    return AxisMap(period, int(shift), tuple(lo), tuple(hi), out_size), agree, conflict


def _input_map(n: int) -> AxisMap:
    return AxisMap(1, 1, (0,), (0,), n)


# --------------------------------------------------------------------------- the analysis


@dataclass
class RFAnalysis:
    """RF of every node of a graph for one input size, in topological order."""

    graph: Graph
    input_size: tuple[int, int]
    nodes: dict[str, NodeRF] = field(default_factory=dict)

    def __getitem__(self, name: str) -> NodeRF:
        if name not in self.nodes:
            self.graph[name]  # raises a helpful error naming close matches
        return self.nodes[name]

    def __iter__(self) -> Iterable[NodeRF]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def select(self, names: Sequence[str] | None = None) -> list[NodeRF]:
        if not names:
            names = self.graph.outputs or list(self.nodes)[-1:]
        return [self[n] for n in names]


def analyze(graph: Graph, input_size: int | Sequence[int],
            on_node: Callable[[Node, NodeRF], None] | None = None) -> RFAnalysis:
    """Propagate exact receptive fields through ``graph`` for an input of ``input_size`` (H, W)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if h <= 0 or w <= 0:
        raise AnchorfitError(f"input size must be positive, got {h}x{w}")
    result = RFAnalysis(graph, (int(h), int(w)))
    out = result.nodes
    for node in graph.nodes.values():
        try:
            rf = _node_rf(node, out, h, w)
        except AnchorfitError as exc:
            raise with_origin(exc, node) from None
        out[node.name] = rf
        if on_node is not None:
            on_node(node, rf)
    return result


def with_origin(exc: AnchorfitError, node: Node) -> AnchorfitError:
    """``exc`` located at the file and line that wrote ``node`` (its ``origin``), when the error
    names no file yet: "yolov3.cfg:25: layer 'conv3' ...". The same error type is kept."""
    if node.origin is None or exc.source is not None:
        return exc
    return type(exc)(exc.message, source=node.origin, key=exc.key, hint=exc.hint)


def _node_rf(node: Node, out: dict[str, NodeRF], h: int, w: int) -> NodeRF:
    """The RF of one node from the RFs of its inputs (``out``)."""
    op = node.op
    if isinstance(op, Input):
        h_in = 1 if node.spatial_dims == 1 else h
        rf = NodeRF(node.name, node.describe(), _input_map(h_in), _input_map(w), True, False,
                    spatial_dims=node.spatial_dims, source=node.source)
    elif isinstance(op, Merge):
        rf = _merge(node, [out[s] for s in node.inputs])
    else:
        (src,) = (out[s] for s in node.inputs)
        maps = []
        for axis, amap in enumerate(src.axes):
            rule, size = _axis_rule(node, axis, amap.size)
            maps.append(compose(amap, rule, size))
        own_global = isinstance(op, Global) or (isinstance(op, Pointwise) and op.global_context)
        aligned = src.aligned and all(m.shift_invariant for m in maps)
        rf = NodeRF(node.name, node.describe(), maps[0], maps[1], aligned,
                    src.global_context or own_global, src.stride_conflict,
                    node.spatial_dims, node.source)
    return rf


def _merge(node: Node, srcs: list[NodeRF]) -> NodeRF:
    maps = []
    agree_all = True
    conflict_any = any(s.stride_conflict for s in srcs)
    for axis in range(2):
        axis_maps = [s.axes[axis] for s in srcs]
        sizes = {m.size for m in axis_maps}
        big = sizes - {1}
        if len(big) > 1:
            detail = ", ".join(f"{s.name} {s.y.size}x{s.x.size}" for s in srcs)
            raise AnchorfitError(f"layer {node.name!r} ({node.describe()}) merges feature maps of "
                                 f"different sizes: {detail}")
        size = max(sizes)
        # A 1-cell map broadcast against a larger one (SE gates, global context) is read by every
        # cell; it contributes context, not locality.
        local = [m for m in axis_maps if m.size == size] if size > 1 else axis_maps
        merged, agree, conflict = union(local, size)
        agree_all = agree_all and agree
        conflict_any = conflict_any or conflict
        maps.append(merged)
    broadcast = any(s.y.size == 1 and s.x.size == 1 for s in srcs) and (
        maps[0].size > 1 or maps[1].size > 1)
    aligned = agree_all and all(s.aligned for s in srcs) and all(m.shift_invariant for m in maps)
    global_context = any(s.global_context for s in srcs) or broadcast
    return NodeRF(node.name, node.describe(), maps[0], maps[1], aligned, global_context,
                  conflict_any, max(s.spatial_dims for s in srcs), node.source)


def extend(rf: NodeRF, ops: Sequence[Window]) -> NodeRF:
    """The RF after extra ops on top of a node: used for a detection head's own convolutions."""
    node = Node(rf.name, ops[0] if ops else Pointwise(), ("",), spatial_dims=rf.spatial_dims)
    y, x = rf.y, rf.x
    aligned = rf.aligned
    for op in ops:
        node.op = op
        ry, ny = _axis_rule(node, 0, y.size)
        rx, nx = _axis_rule(node, 1, x.size)
        y, x = compose(y, ry, ny), compose(x, rx, nx)
        aligned = aligned and y.shift_invariant and x.shift_invariant
    return NodeRF(rf.name, rf.op, y, x, aligned, rf.global_context, rf.stride_conflict,
                  rf.spatial_dims, rf.source)


def head_window(kernel: int | Sequence[int], count: int = 1) -> list[Window]:
    """``count`` stride-1, same-padded convolutions of ``kernel``: a typical detection head."""
    ky, kx = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return [Window((ky, kx), (1, 1), ((ky - 1) // 2, (kx - 1) // 2), kind="head")
            for _ in range(count)]
