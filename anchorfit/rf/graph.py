"""The network IR the RF engine works on: a DAG of nodes with per-axis geometry.

Every front end (torch.fx tracing, Darknet cfg, YOLOv5 yaml, Caffe prototxt, anchorfit's YAML spec)
produces a ``Graph``. The engine never looks at torch modules, only at these ops, so one exact
implementation serves every format.

Geometry is per axis, always as (y, x) pairs. An op describes how output cell ``o`` of its input
reads input cells (the *taps*), which is all the engine needs to propagate receptive fields, plus
how it changes the feature-map size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Union

from anchorfit.errors import AnchorfitError, suggest
from anchorfit.safeinput import MAX_KERNEL, beyond_limit

Pair = tuple[int, int]
AXES = ("y", "x")


def pair(value: int | Sequence[int], name: str = "value") -> Pair:
    """Normalise an int or a (y, x) sequence to a (y, x) tuple of ints."""
    if isinstance(value, int):
        return (value, value)
    seq = tuple(int(v) for v in value)
    if len(seq) == 1:
        return (seq[0], seq[0])
    if len(seq) != 2:
        raise AnchorfitError(f"{name} must be one int or a (y, x) pair, got {value!r}")
    return (seq[0], seq[1])


# --------------------------------------------------------------------------- ops


@dataclass(frozen=True)
class Input:
    """The network input (a single image tensor)."""

    def describe(self) -> str:
        return "input"


@dataclass(frozen=True)
class Window:
    """Sliding-window op: conv, pooling, padding or cropping.

    Output cell ``o`` reads input cells ``o*stride - padding + t*dilation`` for ``t < kernel``.
    ``padding`` is the left/top pad only (it alone moves RF centres); ``padding_end`` is the
    right/bottom pad, which only changes the output size. ``padding="same"`` means TensorFlow's
    SAME rule, resolved from the actual input size (pad split with the extra pixel on the right).
    """

    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair | Literal["same"] = (0, 0)
    dilation: Pair = (1, 1)
    padding_end: Pair | None = None  # None: symmetric (PyTorch conv/pool convention)
    ceil_mode: bool = False
    kind: str = "conv"

    def describe(self) -> str:
        k, s, d = self.kernel, self.stride, self.dilation
        text = f"{self.kind} k={_fmt_pair(k)} s={_fmt_pair(s)} p={_fmt_pad(self.padding)}"
        if d != (1, 1):
            text += f" d={_fmt_pair(d)}"
        if self.ceil_mode:
            text += " ceil"
        return text


@dataclass(frozen=True)
class Transposed:
    """Transposed convolution (fractional stride 1/stride)."""

    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    output_padding: Pair = (0, 0)

    def describe(self) -> str:
        return (f"convT k={_fmt_pair(self.kernel)} s={_fmt_pair(self.stride)} "
                f"p={_fmt_pair(self.padding)}")


ResampleMode = Literal["nearest", "nearest-exact", "bilinear", "bicubic", "area"]


@dataclass(frozen=True)
class Resample:
    """Up/down-sampling by interpolation (``nn.Upsample``, ``F.interpolate``, Darknet upsample).

    Either ``scale`` (output/input per axis, exact) or ``size`` (output size per axis) is given.
    """

    mode: ResampleMode = "nearest"
    scale: tuple[Fraction, Fraction] | None = None
    size: Pair | None = None
    align_corners: bool = False

    def describe(self) -> str:
        how = f"x{_fmt_pair(self.scale)}" if self.scale else f"to {_fmt_pair(self.size)}"
        return f"upsample {self.mode} {how}"


@dataclass(frozen=True)
class PixelShuffle:
    """Depth-to-space (factor > 0) or space-to-depth (``unshuffle=True``)."""

    factor: int = 2
    unshuffle: bool = False

    def describe(self) -> str:
        return f"pixel_{'un' if self.unshuffle else ''}shuffle {self.factor}"


@dataclass(frozen=True)
class Slice:
    """Strided slicing along the spatial axes (``x[..., a:b:s, c:d:t]``): YOLOv5 Focus, crops."""

    start: tuple[int | None, int | None] = (None, None)
    stop: tuple[int | None, int | None] = (None, None)
    step: Pair = (1, 1)

    def describe(self) -> str:
        parts = []
        for a, b, s in zip(self.start, self.stop, self.step):
            parts.append(f"{'' if a is None else a}:{'' if b is None else b}:{s}")
        return f"slice [{', '.join(parts)}]"


@dataclass(frozen=True)
class Adaptive:
    """Adaptive pooling to a fixed output size (global when the size is 1)."""

    output_size: tuple[int | None, int | None] = (1, 1)

    def describe(self) -> str:
        return f"adaptive_pool to {self.output_size}"


@dataclass(frozen=True)
class Pointwise:
    """A per-cell op (activation, BatchNorm in eval mode, 1x1 channel mixing, dropout...).

    ``global_context`` marks ops that are pointwise in space but use statistics over the whole
    map (GroupNorm, LayerNorm, InstanceNorm, SE gates, attention): the local RF is unchanged, the
    output nevertheless depends on the whole image.
    """

    kind: str = "pointwise"
    global_context: bool = False

    def describe(self) -> str:
        return self.kind + (" (global)" if self.global_context else "")


@dataclass(frozen=True)
class Global:
    """Global pooling / flatten+linear: output no longer has the input's spatial layout.

    The local RF is that of the reduced map's cell 0 (so a classifier's logits report the RF of
    the features they pool) and ``global_context`` is set.
    """

    kind: str = "global_pool"

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Merge:
    """Element-wise or channel merge of several inputs: add, mul, concat (channels), ..."""

    kind: str = "add"

    def describe(self) -> str:
        return self.kind


Op = Union[Input, Window, Transposed, Resample, PixelShuffle, Slice, Adaptive, Pointwise, Global,
           Merge]


@dataclass
class Node:
    """One node of the IR. ``inputs`` name earlier nodes; ``source`` says where it came from."""

    name: str
    op: Op
    inputs: tuple[str, ...] = ()
    source: str | None = None  # e.g. "nn.Conv2d features.0" or "yolov3.cfg:line 25"
    spatial_dims: int = 2  # 2 for images, 1 for sequences (then only x varies), 0 after flatten
    #: "file:line" of the cfg section / yaml row / prototxt layer that wrote this node, set by
    #: file readers so that RF engine errors can point at the user's file (None: built in code)
    origin: str | None = None

    def describe(self) -> str:
        return self.op.describe()


@dataclass
class Graph:
    """A DAG of nodes in insertion order (which must be topological) plus the outputs of interest."""

    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    name: str = "network"

    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise AnchorfitError(f"duplicate node name {node.name!r}")
        for src in node.inputs:
            if src not in self.nodes:
                raise AnchorfitError(f"node {node.name!r} reads {src!r}, which is not defined before it")
        if isinstance(node.op, Input):
            if node.inputs:
                raise AnchorfitError("an input node takes no inputs")
        elif not node.inputs:
            raise AnchorfitError(f"node {node.name!r} ({node.describe()}) has no input")
        if isinstance(node.op, Merge) is False and len(node.inputs) > 1:
            raise AnchorfitError(f"node {node.name!r} ({node.describe()}) takes one input, "
                                 f"got {len(node.inputs)}")
        self.nodes[node.name] = node
        return node

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterable[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise AnchorfitError(f"no layer named {name!r}", hint=suggest_layer(name, self.nodes)) from None

    @property
    def input_names(self) -> list[str]:
        return [n.name for n in self.nodes.values() if isinstance(n.op, Input)]


def suggest_layer(name: str, names: Iterable[str], limit: int = 5) -> str:
    """The hint for an unknown layer name: close names, or the first few layer names."""
    names = list(names)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return suggest(name, names, n=limit, cutoff=0.5,  # type: ignore[return-value]
                   otherwise=f"layers include {shown}")


#: Nodes one reader may build (repeats of repeats); real detectors have a few hundred.
MAX_NODES = 20_000


class GraphBuilder:
    """A small fluent API to write networks by hand (tests, the YAML spec, format readers).

    Each method adds a node and returns its name, so chains read like the network::

        b = GraphBuilder()
        x = b.input()
        x = b.conv(x, 3, stride=2, padding=1)
        b.output(x)
    """

    def __init__(self, name: str = "network") -> None:
        self.graph = Graph(name=name)
        self._count = 0

    def _name(self, name: str | None, kind: str) -> str:
        self._count += 1
        return name or f"{kind}{self._count}"

    def add(self, op: Op, inputs: Sequence[str], name: str | None = None,
            source: str | None = None, kind: str | None = None, origin: str | None = None) -> str:
        if len(self.graph.nodes) >= MAX_NODES:  # repeats of repeats (spec blocks, C3 n x depth)
            raise AnchorfitError(beyond_limit("layer count", f"over {MAX_NODES}", MAX_NODES),
                                 hint=f"adding {name or kind or type(op).__name__}")
        for field_name in ("kernel", "stride", "dilation", "padding", "step", "size",
                           "output_size", "factor"):
            value = getattr(op, field_name, None)
            values = value if isinstance(value, tuple) else (value,)
            big = [v for v in values if isinstance(v, int) and abs(v) > MAX_KERNEL]
            if big:
                # the engine enumerates taps and cells: refuse here, where the reader can name
                # the line (a stride of 10**40 also overflows the engine's integer arrays)
                what = "kernel size" if field_name == "kernel" else field_name.replace("_", " ")
                raise AnchorfitError(beyond_limit(what, big[0], MAX_KERNEL))
        node = Node(self._name(name, kind or type(op).__name__.lower()), op, tuple(inputs), source,
                    origin=origin)
        self.graph.add(node)
        return node.name

    def input(self, name: str = "input") -> str:
        return self.add(Input(), (), name)

    def conv(self, x: str, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
             padding: int | Sequence[int] | str = 0, dilation: int | Sequence[int] = 1,
             padding_end: int | Sequence[int] | None = None, name: str | None = None,
             kind: str = "conv", ceil_mode: bool = False) -> str:
        pad: Pair | Literal["same"]
        if isinstance(padding, str):
            if padding.lower() == "same":
                pad = "same"
            elif padding.lower() == "valid":
                pad = (0, 0)
            else:
                raise AnchorfitError(f"padding {padding!r} is not 'same', 'valid' or a number")
        else:
            pad = pair(padding, "padding")
        op = Window(pair(kernel, "kernel"), pair(stride, "stride"), pad, pair(dilation, "dilation"),
                    None if padding_end is None else pair(padding_end, "padding_end"),
                    ceil_mode, kind)
        return self.add(op, [x], name, kind=kind)

    def pool(self, x: str, kernel: int | Sequence[int], stride: int | Sequence[int] | None = None,
             padding: int | Sequence[int] | str = 0, ceil_mode: bool = False,
             dilation: int | Sequence[int] = 1, name: str | None = None, kind: str = "pool") -> str:
        stride = kernel if stride is None else stride
        return self.conv(x, kernel, stride, padding, dilation, name=name, kind=kind,
                         ceil_mode=ceil_mode)

    def pad(self, x: str, top: int, bottom: int, left: int, right: int,
            name: str | None = None) -> str:
        """Explicit padding (negative values crop)."""
        return self.add(Window((1, 1), (1, 1), (top, left), (1, 1), (bottom, right), False, "pad"),
                        [x], name, kind="pad")

    def transposed(self, x: str, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
                   padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                   dilation: int | Sequence[int] = 1, name: str | None = None) -> str:
        op = Transposed(pair(kernel), pair(stride), pair(padding), pair(dilation),
                        pair(output_padding))
        return self.add(op, [x], name, kind="convT")

    def upsample(self, x: str, scale: int | Sequence[int] = 2, mode: ResampleMode = "nearest",
                 name: str | None = None, align_corners: bool = False) -> str:
        sy, sx = pair(scale, "scale")
        return self.add(Resample(mode, (Fraction(sy), Fraction(sx)), None, align_corners), [x],
                        name, kind="upsample")

    def slice(self, x: str, start: Sequence[int | None], step: Sequence[int],
              stop: Sequence[int | None] = (None, None), name: str | None = None) -> str:
        return self.add(Slice(tuple(start), tuple(stop), pair(step)), [x], name, kind="slice")

    def pointwise(self, x: str, kind: str = "pointwise", global_context: bool = False,
                  name: str | None = None) -> str:
        return self.add(Pointwise(kind, global_context), [x], name, kind=kind)

    def global_pool(self, x: str, name: str | None = None, kind: str = "global_pool") -> str:
        return self.add(Global(kind), [x], name, kind=kind)

    def merge(self, xs: Sequence[str], kind: str = "add", name: str | None = None) -> str:
        return self.add(Merge(kind), list(xs), name, kind=kind)

    def add_(self, *xs: str, name: str | None = None) -> str:
        return self.merge(xs, "add", name)

    def cat(self, *xs: str, name: str | None = None) -> str:
        return self.merge(xs, "concat", name)

    def output(self, *names: str) -> None:
        self.graph.outputs.extend(names)

    def build(self) -> Graph:
        return self.graph


# --------------------------------------------------------------------------- helpers


def _fmt_pair(value: Sequence[object] | None) -> str:
    if value is None:
        return "?"
    a, b = value
    return f"{a}" if a == b else f"{a}x{b}"


def _fmt_pad(value: Pair | str) -> str:
    return value if isinstance(value, str) else _fmt_pair(value)


def lcm(*values: int) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out
