"""Exact receptive-field propagation over a ``Graph``, per axis, phase-aware.

Representation (per axis, per node). Cell ``o`` of a feature map sees the input pixels
``[U(o), V(o)]`` (index convention: input pixel k sits at coordinate k; padding counts as virtual
pixels, as in Araujo et al., Distill 2019). For most maps U and V are *periodic up to a shift*:
``U(o + T) = U(o) + D`` with an integer period ``T`` and integer shift ``D``. Such a node is
stored exactly as ``T, D`` and the integer starts/ends of its ``T`` phases. Ordinary conv nets
have ``T = 1`` (then ``r = V - U + 1``, ``S = D``, ``P = -U(0)``: Distill's r, S, P). Upsampling,
transposed convs and pixel shuffles raise ``T`` (effective stride ``S = D / T`` becomes a
fraction) and make the RF depend on the cell's phase, which we keep instead of guessing.

Every op is described by its *taps*: output cell ``o`` reads input cells ``taps(o)``, and the taps
repeat with ``taps(o + B) = taps(o) + A`` (resampling uses PyTorch's own index rule, so a size-based
upsampling 38 -> 75 has B = 75). Composing that with the input's ``(T, D)`` gives the output's
period ``T' = B * T / gcd(A, T)`` in closed form. The period reported is then the smallest the
map's *own cells* show, which is what a gradient probe can measure: 38 -> 75 picks the same rows as
x2 on all 75 cells, so FCOS at 600x800 has stride 8, period 2, not 8.1067. Where no pattern repeats
on the map (paths of different strides merged, a ratio like 31/75) the map is an explicit table of
its cells, with padding cells beyond it from the layer's own rule: exact, never an error.

Next to Distill's interval every real cell keeps what it *reads*: the first and last input pixel
its output depends on, clipped at the image and empty across padding, per merged path (a path
that reads only padding rows at a border cell adds no columns there). r, S and P stay Distill's;
reads are what the probe sees at the borders (a 3x3 stride-2 valid conv on 512 never reads row 511).

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

import numpy as np

from anchorfit.errors import AnchorfitError
from anchorfit.safeinput import (MAX_KERNEL, MAX_MAP_SIDE, MAX_TABLE_CELLS, MAX_TAP_READS,
                                 MAX_TOTAL_CELLS, MAX_TOTAL_STRIDE, beyond_limit)
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

#: Largest phase period composed in closed form; beyond it the map's real cells are computed one by
#: one (never an error: a map is at most its own size).
MAX_PERIOD = 1 << 12

#: Sentinels of the read arrays for a cell that reads no input pixel.
_NONE_LO = np.iinfo(np.int64).max
_NONE_HI = np.iinfo(np.int64).min

Interval = tuple[int | None, int | None]


@dataclass(frozen=True)
class AxisMap:
    """Exact cell -> input-interval map of one axis.

    Two interval kinds per cell. ``start/end`` is Distill's interval: padding pixels count as
    virtual input pixels, so it defines r, S, P and centres. ``read`` is what the cell really
    reads: the first and last input pixel its output depends on (clipped at the image borders and
    empty across padding), which is what a gradient probe sees.

    Periodic maps (``table`` false) satisfy ``U(o + period) = U(o) + shift`` on every cell, real or
    virtual (the padding cells a later layer reads): the phases ``lo``/``hi`` of cells
    ``0 .. period-1`` describe the whole axis. The period is the smallest that the map's own cells
    show, so S = shift / period is what a probe measures. A map whose cells show no repeating
    pattern (a resampling ratio such as 31/75, paths whose strides differ) is a *table*: ``lo/hi``
    hold every real cell, ``period`` is the map size, the stride is the mean step between the first
    and last cells' centres, and virtual cells come from the layer's own rule (``outside``).
    """

    period: int
    shift: int
    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    size: int  # number of cells on this axis of the feature map
    outside: Callable[[int], Interval] | None = field(default=None, repr=False, compare=False)
    table_stride: Fraction | None = None
    #: np.int64[size] each; _NONE_LO / _NONE_HI where a cell reads nothing
    read_lo: Any = field(default=None, repr=False, compare=False)
    read_hi: Any = field(default=None, repr=False, compare=False)

    @property
    def table(self) -> bool:
        return self.outside is not None

    def interval(self, o: int) -> Interval:
        """Distill interval (virtual padding pixels included) of cell ``o``, any integer."""
        if self.outside is not None:
            if 0 <= o < self.size:
                return self.lo[o], self.hi[o]
            return self.outside(o)
        q, phase = divmod(o, self.period)
        lo, hi = self.lo[phase], self.hi[phase]
        if lo is None or hi is None:
            return None, None
        return lo + q * self.shift, hi + q * self.shift

    def start(self, o: int) -> int | None:
        return self.interval(o)[0]

    def end(self, o: int) -> int | None:
        return self.interval(o)[1]

    def read(self, o: int) -> tuple[int, int] | None:
        """Input pixels [first, last] that real cell ``o`` depends on (None: none at all)."""
        if not 0 <= o < self.size:
            return None
        if self.read_lo is None:  # built by hand without reads: the Distill interval
            lo, hi = self.interval(o)
            return None if lo is None or hi is None else (lo, hi)
        lo, hi = int(self.read_lo[o]), int(self.read_hi[o])
        return None if lo == _NONE_LO else (lo, hi)

    def read_extent(self) -> tuple[int, int] | None:
        """First and last input pixel any cell of the map reads."""
        if self.read_lo is None or self.size == 0:
            return None
        lo, hi = int(self.read_lo.min()), int(self.read_hi.max())
        return None if lo == _NONE_LO else (lo, hi)

    @property
    def stride(self) -> Fraction:
        if self.table_stride is not None:
            return self.table_stride
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
        """RF centre of each phase's first cell (cells 0 .. period-1; every cell of a table)."""
        return [None if lo is None or hi is None else Fraction(lo + hi, 2)
                for lo, hi in zip(self.lo, self.hi)]

    @property
    def shift_invariant(self) -> bool:
        """True when every cell's RF is cell 0's RF moved by i*S (the Distill picture)."""
        if self.table or any(v is None for v in self.lo):
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
    #: What the cells read, in two dimensions: cell (i, j) reads the union over branches of
    #: rows ylo[i]..yhi[i] x columns xlo[j]..xhi[j], a branch counting only where it reads on both
    #: axes. Paths merged into a node stay apart while they read nothing on different border cells
    #: (a path that reads only padding rows at cell (0, j) contributes no column either).
    branches: tuple[tuple[Any, Any, Any, Any], ...] = field(default=(), repr=False, compare=False)

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
        """Input rows and columns [start, end] seen by cell (i, j) (Distill: padding included)."""
        return ((self.y.start(i), self.y.end(i)), (self.x.start(j), self.x.end(j)))

    def read_interval(self, i: int, j: int) -> tuple[tuple[int, int] | None,
                                                    tuple[int, int] | None]:
        """Input rows and columns cell (i, j) really reads: its RF clipped to what the network
        reads ((None, None) when it reads nothing)."""
        if not self.branches:
            rows, cols = self.y.read(i), self.x.read(j)
            return (rows, cols) if rows is not None and cols is not None else (None, None)
        if not (0 <= i < self.y.size and 0 <= j < self.x.size):
            return None, None
        found = [(int(ylo[i]), int(yhi[i]), int(xlo[j]), int(xhi[j]))
                 for ylo, yhi, xlo, xhi in self.branches
                 if ylo[i] != _NONE_LO and xlo[j] != _NONE_LO]
        if not found:
            return None, None
        return ((min(f[0] for f in found), max(f[1] for f in found)),
                (min(f[2] for f in found), max(f[3] for f in found)))

    def read_extent(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """First and last input row and column that some cell of the map reads."""
        if not self.branches:
            return self.y.read_extent(), self.x.read_extent()
        spans: list[list[tuple[int, int]]] = [[], []]
        for ylo, yhi, xlo, xhi in self.branches:
            rows, cols = ylo != _NONE_LO, xlo != _NONE_LO
            if rows.any() and cols.any():
                spans[0].append((int(ylo[rows].min()), int(yhi[rows].max())))
                spans[1].append((int(xlo[cols].min()), int(xhi[cols].max())))
        return tuple(  # type: ignore[return-value]
            (min(s[0] for s in axis), max(s[1] for s in axis)) if axis else None
            for axis in spans)

    def unread(self, input_size: tuple[int, int]) -> list[str]:
        """Input rows/columns at the image borders that no cell of this map reads, in words."""
        out = []
        for axis, (extent, n) in enumerate(zip(self.read_extent(), input_size)):
            what = ("row", "rows") if axis == 0 else ("column", "columns")
            if extent is None or (self.spatial_dims == 1 and axis == 0):
                continue
            lo, hi = extent
            for a, b, side in ((0, lo - 1, "first"), (hi + 1, n - 1, "last")):
                if a <= b:
                    label = f"{what[0]} {a}" if a == b else f"{what[1]} {a}-{b}"
                    out.append(f"{label} ({side} {b - a + 1})")
        return out

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
            "reads": [_pair_or_none(v) for v in self.read_extent()],
            "cell_reads": {
                "first": [_pair_or_none(v) for v in self.read_interval(0, 0)],
                "last": [_pair_or_none(v) for v in self.read_interval(self.y.size - 1,
                                                                       self.x.size - 1)],
            },
        }


def _pair_or_none(value: tuple[int, int] | None) -> list[int] | None:
    return None if value is None else [int(value[0]), int(value[1])]


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

@dataclass(frozen=True)
class TapRule:
    """Which input cells output cell ``o`` reads: ``taps[o % B] + (o // B) * A``, for any integer o.

    ``clamp``: PyTorch clamps the indices into the input (bilinear/bicubic resampling), so a
    real cell reads the border cell where the rule points outside; other ops read zero padding.
    """

    B: int
    A: int
    taps: list[list[int]]
    clamp: bool = False

    def at(self, o: int) -> list[int]:
        q, r = divmod(o, self.B)
        return [j + q * self.A for j in self.taps[r]]


def _window_axis(op: Window, axis: int, n: int, node: Node) -> tuple[TapRule, int]:
    k, s, d = op.kernel[axis], op.stride[axis], op.dilation[axis]
    if k < 1 or s < 1 or d < 1:
        raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): kernel, stride and dilation "
                             "must be positive")
    _check_taps(node, axis, "kernel", k)
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
    return TapRule(1, s, [[-left + t * d for t in range(k)]]), out


def _check_taps(node: Node, axis: int, what: str, count: int) -> None:
    """Refuse an op whose tap list would be longer than ``MAX_KERNEL``: the engine enumerates
    taps, so a kernel of 10⁹ would build a list of 10⁹ before anything else could fail."""
    if count > MAX_KERNEL:
        raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): "
                             + beyond_limit(f"{what} on the {'yx'[axis]} axis", count, MAX_KERNEL))


def _transposed_axis(op: Transposed, axis: int, n: int, node: Node) -> tuple[TapRule, int]:
    k, s, p, d = op.kernel[axis], op.stride[axis], op.padding[axis], op.dilation[axis]
    _check_taps(node, axis, "kernel", k)
    _check_taps(node, axis, "stride", s)
    out = (n - 1) * s - 2 * p + d * (k - 1) + op.output_padding[axis] + 1
    taps = [[(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0] for o in range(s)]
    return TapRule(s, 1, taps), out


def _resample_axis(op: Resample, axis: int, n: int, node: Node) -> tuple[TapRule, int]:
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
    _check_taps(node, axis, "resampling period", b)
    if op.mode == "area":
        _check_taps(node, axis, "area window", math.ceil(ratio) + 1)
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
    return TapRule(b, a, taps, op.mode in ("bilinear", "bicubic")), out


def _axis_rule(node: Node, axis: int, n: int) -> tuple[TapRule, int]:
    """Tap rule and output size of ``node``'s op along ``axis`` for an input of ``n`` cells,
    refusing a map larger than ``MAX_MAP_SIDE`` or an op that would enumerate more than
    ``MAX_TAP_READS`` (cell, tap) pairs (a transposed convolution of a huge kernel), before
    any per-cell array of that size exists."""
    rule, out = _axis_rule_of(node, axis, n)
    _check_taps(node, axis, "step between windows", rule.A)
    if out > MAX_MAP_SIDE:
        raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): " + beyond_limit(
            f"feature map size on the {'yx'[axis]} axis", out, MAX_MAP_SIDE))
    if rule.B > 1 or rule.clamp or rule.A <= 0:
        width = max((len(t) for t in rule.taps), default=0)
        if out * width > MAX_TAP_READS:
            raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): " + beyond_limit(
                f"{out} output cells x {width} taps =", out * width, MAX_TAP_READS))
    return rule, out


def _axis_rule_of(node: Node, axis: int, n: int) -> tuple[TapRule, int]:
    op = node.op
    identity = TapRule(1, 1, [[0]])
    if node.spatial_dims == 1 and axis == 0 and not isinstance(op, (Global, Merge)):
        return identity, n  # 1-D networks: the y axis is a dummy of size 1
    if isinstance(op, Window):
        return _window_axis(op, axis, n, node)
    if isinstance(op, Transposed):
        return _transposed_axis(op, axis, n, node)
    if isinstance(op, Resample):
        return _resample_axis(op, axis, n, node)
    if isinstance(op, PixelShuffle):
        f = op.factor
        _check_taps(node, axis, "pixel-shuffle factor", f)
        if op.unshuffle:
            if n % f:
                raise AnchorfitError(f"layer {node.name!r}: pixel_unshuffle by {f} needs a size "
                                     f"divisible by {f}, got {n}")
            return TapRule(1, f, [list(range(f))]), n // f
        return TapRule(f, 1, [[0] for _ in range(f)]), n * f
    if isinstance(op, Slice):
        a, b, s = slice(op.start[axis], op.stop[axis], op.step[axis]).indices(n)
        out = len(range(a, b, s))
        if out <= 0:
            raise AnchorfitError(f"layer {node.name!r} ({node.describe()}) selects no cells of "
                                 f"{n} on the {'yx'[axis]} axis")
        return TapRule(1, s, [[a]]), out
    if isinstance(op, Adaptive):
        m = op.output_size[axis] or n
        _check_taps(node, axis, "adaptive output size", m)
        taps = [list(range(math.floor(o * n / m), math.ceil((o + 1) * n / m))) for o in range(m)]
        return TapRule(m, n, taps), m
    if isinstance(op, Global):
        return identity, 1
    if isinstance(op, Pointwise):
        return identity, n
    raise AnchorfitError(f"layer {node.name!r}: no geometry rule for {type(op).__name__}")


# --------------------------------------------------------------------------- composition


def compose(src: AxisMap, rule: TapRule, out_size: int,
            reads: tuple[Any, Any] | None = None) -> AxisMap:
    """The map of an op's output given its input map ``src`` and its tap rule.

    In closed form when the input is periodic and the output period stays small (one pass over
    the output's phases); otherwise cell by cell over the output's real cells. Either way the
    result is then reduced to the smallest period its real cells show (see ``_canonical``).
    """
    b, a = rule.B, rule.A
    if (b, a, rule.taps) == (1, 1, [[0]]) and out_size == src.size:
        return src  # per-cell op: the same map
    if reads is None:
        reads = _compose_reads(src, rule, out_size)
    formula: AxisMap | None = None
    if not src.table:
        t = src.period
        copies = t // math.gcd(a, t) if a else 1
        period = b * copies
        if period <= MAX_PERIOD:
            shift = (copies * a // t) * src.shift if a else 0
            lo: list[int | None] = []
            hi: list[int | None] = []
            for o in range(period):
                u, v = _hull(src, rule.at(o))
                lo.append(u)
                hi.append(v)
            formula = _reduce(AxisMap(period, shift, tuple(lo), tuple(hi), out_size))

    def outside(o: int) -> Interval:
        return _hull(src, rule.at(o))

    return _canonical(formula, outside, out_size, reads, lambda: src.stride * Fraction(a, b))


def _hull(src: AxisMap, cells: Sequence[int]) -> Interval:
    """Distill interval covering the intervals of ``cells`` of ``src`` (None when none reads)."""
    lo: int | None = None
    hi: int | None = None
    for j in cells:
        u, v = src.interval(j)
        if u is None or v is None:
            continue
        lo = u if lo is None or u < lo else lo
        hi = v if hi is None or v > hi else hi
    return lo, hi


def _reduce(amap: AxisMap) -> AxisMap:
    """The same periodic map with its smallest period (a divisor of the one it has)."""
    t = amap.period
    for p in range(1, t):
        if t % p or (amap.shift * p) % t:
            continue
        d = amap.shift * p // t
        if all(_same_step(amap.lo[o], amap.lo[o + p], d) and _same_step(amap.hi[o], amap.hi[o + p], d)
               for o in range(t - p)):
            return AxisMap(p, d, amap.lo[:p], amap.hi[:p], amap.size)
    return amap


def _same_step(a: int | None, b: int | None, d: int) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return b - a == d


def _canonical(formula: AxisMap | None, outside: Callable[[int], Interval], size: int,
               reads: tuple[Any, Any], nominal: Callable[[], Fraction]) -> AxisMap:
    """The map as its real cells show it.

    A closed-form map whose period fits twice in the map is kept (it is exact on every cell, real
    or virtual). Otherwise the real cells decide: the smallest period that repeats at least twice
    on them, extended to the padding cells by that pattern (an FPN upsampling 38 -> 75 reads the
    same rows as x2 on all 75 cells: stride 8, not 8.1067); failing that the closed form, and
    failing that an explicit table of every cell.
    """
    read_lo, read_hi = reads
    if formula is not None and 2 * formula.period <= size:
        return _with_reads(formula, read_lo, read_hi)
    if formula is not None:
        cells = [formula.interval(o) for o in range(size)]
    else:
        cells = [outside(o) for o in range(size)]
    found = _observed_period(cells)
    if found is not None:
        p, d = found
        return AxisMap(p, d, tuple(c[0] for c in cells[:p]), tuple(c[1] for c in cells[:p]), size,
                       read_lo=read_lo, read_hi=read_hi)
    if formula is not None:
        return _with_reads(formula, read_lo, read_hi)
    cache: dict[int, Interval] = {}

    def extended(o: int) -> Interval:
        if o not in cache:
            cache[o] = outside(o)
        return cache[o]

    centres = [(u + v) for u, v in cells if u is not None and v is not None]
    stride = Fraction(centres[-1] - centres[0], 2 * (len(centres) - 1)) if len(
        centres) > 1 else nominal()
    return AxisMap(size, 0, tuple(c[0] for c in cells), tuple(c[1] for c in cells), size,
                   extended, stride, read_lo, read_hi)


def _with_reads(amap: AxisMap, read_lo: Any, read_hi: Any) -> AxisMap:
    return AxisMap(amap.period, amap.shift, amap.lo, amap.hi, amap.size, amap.outside,
                   amap.table_stride, read_lo, read_hi)


def _observed_period(cells: Sequence[Interval]) -> tuple[int, int] | None:
    """Smallest (period, shift) with U(o + p) = U(o) + shift on all cells, p at most half of them."""
    m = len(cells)
    if m < 2:
        return None
    none = np.array([u is None or v is None for u, v in cells])
    lo = np.array([0 if u is None else u for u, _ in cells], dtype=np.int64)
    hi = np.array([0 if v is None else v for _, v in cells], dtype=np.int64)
    probes = sorted({0, 1, m // 3, m // 2, m - 1})
    for p in range(1, (m - 1) // 2 + 1):
        if not _may_repeat(none, lo, hi, p, probes):  # O(1) necessary test: m**2 work otherwise
            continue
        if not np.array_equal(none[p:], none[:-p]):
            continue
        both = ~none[p:]
        step_lo = (lo[p:] - lo[:-p])[both]
        step_hi = (hi[p:] - hi[:-p])[both]
        if step_lo.size == 0:
            continue
        d = step_lo[0]
        if np.all(step_lo == d) and np.all(step_hi == d):
            return p, int(d)
    return None


def _may_repeat(none: Any, lo: Any, hi: Any, p: int, probes: Sequence[int]) -> bool:
    """False when a few cells already rule out period ``p`` (a cell and the one ``p`` later
    differ in presence, or their lo/hi steps differ); True means only "check them all"."""
    step: int | None = None
    m = len(none)
    for o in probes:
        if o + p >= m:
            o = m - 1 - p
        if none[o] != none[o + p]:
            return False
        if none[o]:
            continue
        d_lo, d_hi = int(lo[o + p] - lo[o]), int(hi[o + p] - hi[o])
        if d_lo != d_hi or (step is not None and d_lo != step):
            return False
        step = d_lo
    return True


def _compose_reads(src: AxisMap, rule: TapRule, out_size: int) -> tuple[Any, Any]:
    """First and last input pixel each real output cell reads, from the input's reads."""
    src_lo, src_hi = _reads_of(src)
    return _compose_read_arrays(src_lo, src_hi, rule, out_size)


def _compose_read_arrays(src_lo: Any, src_hi: Any, rule: TapRule, out_size: int
                         ) -> tuple[Any, Any]:
    """Read arrays of an op's output from its input's (one axis).

    Taps outside the input read zero padding (nothing), or the border cell where PyTorch clamps
    the index (bilinear/bicubic resampling).
    """
    n = len(src_lo)
    if (rule.B, rule.A, rule.taps) == (1, 1, [[0]]) and out_size == n:
        return src_lo, src_hi
    if rule.B == 1 and rule.A > 0 and not rule.clamp:
        return _window_reads(src_lo, src_hi, rule.A, rule.taps[0], out_size)
    o = np.arange(out_size, dtype=np.int64)
    q, r = np.divmod(o, rule.B)
    width = max((len(t) for t in rule.taps), default=0)
    if width == 0 or out_size == 0:
        return (np.full(out_size, _NONE_LO, dtype=np.int64),
                np.full(out_size, _NONE_HI, dtype=np.int64))
    table = np.zeros((rule.B, width), dtype=np.int64)
    present = np.zeros((rule.B, width), dtype=bool)
    for k, taps in enumerate(rule.taps):
        table[k, :len(taps)] = taps
        present[k, :len(taps)] = True
    idx = table[r] + (q * rule.A)[:, None]
    ok = present[r]
    if rule.clamp:
        idx = np.clip(idx, 0, n - 1)
    else:
        ok = ok & (idx >= 0) & (idx < n)
    safe = np.clip(idx, 0, n - 1)
    lo = np.where(ok, src_lo[safe], _NONE_LO).min(axis=1)
    hi = np.where(ok, src_hi[safe], _NONE_HI).max(axis=1)
    return lo, hi


def _window_reads(src_lo: Any, src_hi: Any, stride: int, taps: Sequence[int], out_size: int
                  ) -> tuple[Any, Any]:
    """``_compose_read_arrays`` for a sliding window (cell o reads o*stride + t): strided slices.

    One numpy pass per tap is quick for real kernels (a handful of taps) but a kernel of
    thousands of taps over a large map would take seconds per layer, so long evenly spaced tap
    lists (every window's: ``-left + t * dilation``) go to ``_window_reads_sparse`` instead.
    """
    n = len(src_lo)
    if len(taps) > _SPARSE_TAPS and out_size > 0 and n > 0:
        even = sorted(taps)  # min/max do not care about order (a transposed conv's run down)
        step = even[1] - even[0]
        if step > 0 and all(b - a == step for a, b in zip(even, even[1:])):
            return (_window_reads_sparse(src_lo, stride, even[0], step, len(even), out_size,
                                         np.minimum, _NONE_LO),
                    _window_reads_sparse(src_hi, stride, even[0], step, len(even), out_size,
                                         np.maximum, _NONE_HI))
    lo = np.full(out_size, _NONE_LO, dtype=np.int64)
    hi = np.full(out_size, _NONE_HI, dtype=np.int64)
    for tap in taps:
        first = max(-(tap // stride), 0)  # smallest o with o*stride + tap >= 0
        last = min((n - 1 - tap) // stride, out_size - 1)  # largest o with o*stride + tap < n
        if last < first:
            continue
        span = slice(first * stride + tap, last * stride + tap + 1, stride)
        np.minimum(lo[first:last + 1], src_lo[span], out=lo[first:last + 1])
        np.maximum(hi[first:last + 1], src_hi[span], out=hi[first:last + 1])
    return lo, hi


#: Tap count from which a window's reads use the sparse table (same result, O(n log k) work).
_SPARSE_TAPS = 16


def _window_reads_sparse(src: Any, stride: int, first: int, step: int, count: int,
                         out_size: int, reduce: Any, none: int) -> Any:
    """``reduce`` (min or max) of ``src`` over each cell's taps ``o*stride + first + t*step``
    (t < count, taps outside ``src`` skipped) with a sparse table: level l holds the reduction
    over 2**l taps spaced ``step`` apart, so any run of c taps is the reduction of two
    overlapping level-floor(log2 c) entries. Work O(n log count) instead of O(n * count)."""
    n = len(src)
    levels = [np.asarray(src, dtype=np.int64)]
    width = 1
    while 2 * width <= count:
        prev = levels[-1]
        nxt = prev.copy()
        reach = width * step
        if reach < n:
            reduce(prev[:n - reach], prev[reach:], out=nxt[:n - reach])
        levels.append(nxt)
        width *= 2
    base = np.arange(out_size, dtype=np.int64) * stride + first
    # valid taps t: 0 <= base + t*step < n
    t_lo = np.maximum(-(base // step), 0)                  # ceil(-base / step), at least 0
    t_hi = np.minimum((n - 1 - base) // step, count - 1)
    ok = t_hi >= t_lo
    c = np.where(ok, t_hi - t_lo + 1, 1)
    level = np.frexp(c.astype(np.float64))[1] - 1          # floor(log2 c), exact for c < 2**53
    start = np.where(ok, base + t_lo * step, 0)
    end = np.where(ok, start + (c - (1 << level)) * step, 0)
    table = np.stack(levels)
    result = reduce(table[level, start], table[level, end])
    return np.where(ok, result, none)


def _reads_of(amap: AxisMap) -> tuple[Any, Any]:
    if amap.read_lo is not None:
        return amap.read_lo, amap.read_hi
    lo = np.full(amap.size, _NONE_LO, dtype=np.int64)
    hi = np.full(amap.size, _NONE_HI, dtype=np.int64)
    for o in range(amap.size):
        u, v = amap.interval(o)
        if u is not None and v is not None:
            lo[o], hi[o] = u, v
    return lo, hi


def union(maps: Sequence[AxisMap], out_size: int, reads: tuple[Any, Any] | None = None
          ) -> tuple[AxisMap, bool, bool]:
    """Per-cell union of several maps of the same feature-map grid.

    Returns (map, agree, stride_conflict): ``agree`` is Distill's alignment test (equal stride
    and equal centre on every cell) between the inputs. Paths with different strides (a size-
    based upsampling beside a lateral path) have no common period: their union is computed on the
    map's real cells, and padding cells beyond it are the union of each path's own.
    """
    strides = {m.stride for m in maps}
    conflict = len(strides) > 1
    if reads is None:
        each = [_reads_of(m) for m in maps]
        reads = (np.minimum.reduce([r[0] for r in each]) if len(each) > 1 else each[0][0],
                 np.maximum.reduce([r[1] for r in each]) if len(each) > 1 else each[0][1])
    formula: AxisMap | None = None
    agree = not conflict
    if not conflict and not any(m.table for m in maps):
        period = lcm(*(m.period for m in maps))
        if period <= MAX_PERIOD:
            stride = next(iter(strides))
            lo: list[int | None] = []
            hi: list[int | None] = []
            for o in range(period):
                u, v, same = _union_at(maps, o)
                lo.append(u)
                hi.append(v)
                agree = agree and same
            formula = _reduce(AxisMap(period, int(stride * period), tuple(lo), tuple(hi),
                                      out_size))
    if formula is None:
        agree = not conflict and all(_union_at(maps, o)[2] for o in range(out_size))

    def outside(o: int) -> Interval:
        u, v, _ = _union_at(maps, o)
        return u, v

    merged = _canonical(formula, outside, out_size, reads, lambda: max(strides))
    return merged, agree, conflict


def _union_at(maps: Sequence[AxisMap], o: int) -> tuple[int | None, int | None, bool]:
    """Union of the maps' intervals at cell ``o``, and whether their centres agree there."""
    present = [iv for iv in (m.interval(o) for m in maps) if iv[0] is not None and iv[1] is not None]
    if not present:
        return None, None, True
    lo = min(u for u, _ in present)  # type: ignore[type-var]
    hi = max(v for _, v in present)  # type: ignore[type-var]
    return lo, hi, len({u + v for u, v in present}) == 1  # type: ignore[operator]


def _input_map(n: int) -> AxisMap:
    ramp = np.arange(n, dtype=np.int64)
    return AxisMap(1, 1, (0,), (0,), n, read_lo=ramp, read_hi=ramp)


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
    if max(h, w) > MAX_MAP_SIDE:
        raise AnchorfitError(beyond_limit(f"input size {h}x{w}: side", max(h, w), MAX_MAP_SIDE))
    result = RFAnalysis(graph, (int(h), int(w)))
    out = result.nodes
    cells = table_cells = 0
    for node in graph.nodes.values():
        try:
            rf = _node_rf(node, out, h, w)
            cells += max(rf.y.size, rf.x.size)
            if cells > MAX_TOTAL_CELLS:  # time and memory grow with the cells of all layers
                raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): " + beyond_limit(
                    f"feature-map cells of all layers up to here (per axis, at input {h}x{w}):",
                    cells, MAX_TOTAL_CELLS))
            table_cells += _python_cells(rf, [out[s] for s in node.inputs if s in out])
            if table_cells > MAX_TABLE_CELLS:
                raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): " + beyond_limit(
                    "map phases built one by one up to here (periods and cells of maps with no "
                    "short repeat):", table_cells, MAX_TABLE_CELLS), hint="long periods come from "
                    "an adaptive pool or a resize to a large size that does not divide its input;"
                    " real networks use those only on small maps")
        except AnchorfitError as exc:
            raise with_origin(exc, node) from None
        out[node.name] = rf
        if on_node is not None:
            on_node(node, rf)
    return result


def _python_cells(rf: NodeRF, ins: Sequence[NodeRF]) -> int:
    """Cells the engine built one Python step at a time for ``rf``: a periodic map's phases
    (one pass over its period), a map with no period its every cell; an op that kept its
    input's map (a per-cell op) built nothing. What ``MAX_TABLE_CELLS`` bounds."""
    work = 0
    for axis, m in enumerate(rf.axes):
        if any(m is i.axes[axis] for i in ins):
            continue
        work += m.size if m.table else min(m.period, m.size)
    return work


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
        y_map, x_map = _input_map(h_in), _input_map(w)
        rf = NodeRF(node.name, node.describe(), y_map, x_map, True, False,
                    spatial_dims=node.spatial_dims, source=node.source,
                    branches=((y_map.read_lo, y_map.read_hi, x_map.read_lo, x_map.read_hi),))
    elif isinstance(op, Merge):
        rf = _merge(node, [out[s] for s in node.inputs])
    else:
        (src,) = (out[s] for s in node.inputs)
        rules = [_axis_rule(node, axis, amap.size) for axis, amap in enumerate(src.axes)]
        branches = _branches_through(src.branches, rules)
        summary = _summary(branches)
        maps = [compose(amap, rule, size, summary[axis] if summary else None)
                for axis, (amap, (rule, size)) in enumerate(zip(src.axes, rules))]
        _check_stride(node, maps)
        own_global = isinstance(op, Global) or (isinstance(op, Pointwise) and op.global_context)
        aligned = src.aligned and all(m.shift_invariant for m in maps)
        rf = NodeRF(node.name, node.describe(), maps[0], maps[1], aligned,
                    src.global_context or own_global, src.stride_conflict,
                    node.spatial_dims, node.source, branches)
    return rf


def _check_stride(node: Node, maps: Sequence[AxisMap]) -> None:
    """Refuse a map whose cells lie more than ``MAX_TOTAL_STRIDE`` input pixels apart, before
    the next op multiplies it again (a YOLOv5 row of 1000 stride-2 convs: 2**1000)."""
    for axis, m in enumerate(maps):
        if abs(m.stride) > MAX_TOTAL_STRIDE:
            raise AnchorfitError(f"layer {node.name!r} ({node.describe()}): " + beyond_limit(
                f"stride on the {'yx'[axis]} axis", round(m.stride), MAX_TOTAL_STRIDE))


def _merge(node: Node, srcs: list[NodeRF]) -> NodeRF:
    sizes = [{s.axes[axis].size for s in srcs} for axis in range(2)]
    if any(len(axis - {1}) > 1 for axis in sizes):
        detail = ", ".join(f"{s.name} {s.y.size}x{s.x.size}" for s in srcs)
        raise AnchorfitError(f"layer {node.name!r} ({node.describe()}) merges feature maps of "
                             f"different sizes: {detail}")
    shape = (max(sizes[0]), max(sizes[1]))
    # A 1-cell map broadcast against a larger one (SE gates, global context) is read by every
    # cell; it contributes context, not locality.
    local_srcs = [s for s in srcs if (s.y.size, s.x.size) == shape]
    branches = _normalise([b for s in local_srcs for b in s.branches])
    summary = _summary(branches)
    maps = []
    agree_all = True
    conflict_any = any(s.stride_conflict for s in srcs)
    for axis in range(2):
        size = shape[axis]
        axis_maps = [s.axes[axis] for s in srcs]
        local = [m for m in axis_maps if m.size == size] if size > 1 else axis_maps
        merged, agree, conflict = union(local, size, summary[axis] if summary else None)
        agree_all = agree_all and agree
        conflict_any = conflict_any or conflict
        maps.append(merged)
    broadcast = any(s.y.size == 1 and s.x.size == 1 for s in srcs) and (
        maps[0].size > 1 or maps[1].size > 1)
    aligned = agree_all and all(s.aligned for s in srcs) and all(m.shift_invariant for m in maps)
    global_context = any(s.global_context for s in srcs) or broadcast
    return NodeRF(node.name, node.describe(), maps[0], maps[1], aligned, global_context,
                  conflict_any, max(s.spatial_dims for s in srcs), node.source, branches)


def _summary(branches: Sequence[tuple[Any, Any, Any, Any]]
             ) -> tuple[tuple[Any, Any], tuple[Any, Any]] | None:
    """Per-axis reads of a node (each axis' hull over its branches), for its ``AxisMap``s."""
    if not branches:
        return None
    if len(branches) == 1:
        ylo, yhi, xlo, xhi = branches[0]
        return (ylo, yhi), (xlo, xhi)
    return ((np.minimum.reduce([b[0] for b in branches]), np.maximum.reduce([b[1] for b in branches])),
            (np.minimum.reduce([b[2] for b in branches]), np.maximum.reduce([b[3] for b in branches])))


def _branches_through(branches: Sequence[tuple[Any, Any, Any, Any]],
                      rules: Sequence[tuple[TapRule, int]]) -> tuple[tuple[Any, Any, Any, Any], ...]:
    """Each branch through a separable op (a window's taps per axis keep a product a product)."""
    (rule_y, size_y), (rule_x, size_x) = rules
    out = []
    for ylo, yhi, xlo, xhi in branches:
        out.append((*_compose_read_arrays(ylo, yhi, rule_y, size_y),
                    *_compose_read_arrays(xlo, xhi, rule_x, size_x)))
    return _normalise(out)


def _normalise(branches: Sequence[tuple[Any, Any, Any, Any]]
               ) -> tuple[tuple[Any, Any, Any, Any], ...]:
    """Merge branches that read on exactly the same cells (their union is then a product)."""
    if len(branches) == 1:
        return tuple(branches)
    groups: dict[tuple[bytes, bytes], tuple[Any, Any, Any, Any]] = {}
    for ylo, yhi, xlo, xhi in branches:
        key = ((ylo == _NONE_LO).tobytes(), (xlo == _NONE_LO).tobytes())
        if key in groups:
            a = groups[key]
            groups[key] = (np.minimum(a[0], ylo), np.maximum(a[1], yhi), np.minimum(a[2], xlo),
                           np.maximum(a[3], xhi))
        else:
            groups[key] = (ylo, yhi, xlo, xhi)
    return tuple(groups.values())


def extend(rf: NodeRF, ops: Sequence[Window | Pointwise]) -> NodeRF:
    """The RF after extra ops on top of a node: used for a detection head's own convolutions.

    A ``Pointwise`` op with ``global_context`` (the GroupNorm in FCOS's head) leaves the local RF
    as it is and sets the result's ``global_context``: the head's output depends on the whole
    image even when the feature map it reads does not.
    """
    node = Node(rf.name, ops[0] if ops else Pointwise(), ("",), spatial_dims=rf.spatial_dims)
    y, x = rf.y, rf.x
    aligned = rf.aligned
    global_context = rf.global_context
    branches = rf.branches
    for op in ops:
        node.op = op
        ry, ny = _axis_rule(node, 0, y.size)
        rx, nx = _axis_rule(node, 1, x.size)
        branches = _branches_through(branches, [(ry, ny), (rx, nx)])
        summary = _summary(branches)
        y = compose(y, ry, ny, summary[0] if summary else None)
        x = compose(x, rx, nx, summary[1] if summary else None)
        _check_stride(node, (y, x))
        aligned = aligned and y.shift_invariant and x.shift_invariant
        global_context = global_context or (isinstance(op, Pointwise) and op.global_context)
    return NodeRF(rf.name, rf.op, y, x, aligned, global_context, rf.stride_conflict,
                  rf.spatial_dims, rf.source, branches)


def head_window(kernel: int | Sequence[int], count: int = 1) -> list[Window]:
    """``count`` stride-1, same-padded convolutions of ``kernel``: a typical detection head."""
    ky, kx = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return [Window((ky, kx), (1, 1), ((ky - 1) // 2, (kx - 1) // 2), kind="head")
            for _ in range(count)]
