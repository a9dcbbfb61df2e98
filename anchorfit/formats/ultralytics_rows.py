"""The row machinery shared by every Ultralytics-style model yaml (YOLOv5 and v3u..YOLO26).

A model yaml lists rows ``[from, number, module, args]`` under ``backbone:`` and ``head:``;
``depth_multiple`` scales ``number`` and ``width_multiple`` the channels. This module reads the
rows (``parse_rows``), resolves their sources, and builds each row's subgraph (``build_row``,
``build_rows``) for the blocks both generations share (Conv, C3 family, SPP/SPPF, Focus, Ghost
blocks, Upsample, Concat). The YOLOv5 reader (``ultralytics``) and the modern reader
(``ultralytics_modern`` with ``ultralytics_modules``) sit on top of it, so neither imports the
other's internals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.formats.base import set_origin
from anchorfit.formats.parsers.yamlsrc import YMap
from anchorfit.formats.validate import Where, integer, positive_finite, positive_int
from anchorfit.rf.graph import GraphBuilder, PixelShuffle, Pointwise
from anchorfit.safeinput import MAX_REPEATS, beyond_limit


DEFAULT_INPUT = 640



def yaml_line(value: Any) -> int | None:
    return getattr(value, "line", None)


def make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


def _autopad(k: Any, p: Any = None, d: int = 1) -> Any:
    """YOLOv5's 'same' padding for odd kernels: d*(k-1)//2 per axis."""
    if p is not None:
        return p
    if isinstance(k, (list, tuple)):
        return [d * (x - 1) // 2 for x in k]
    return d * (k - 1) // 2


@dataclass
class Row:
    index: int
    frm: int | list[int]
    number: int
    module: str
    args: list[Any]
    line: int | None


@dataclass
class Ctx:
    """State while building: the builder, the output node and channels of each row."""

    b: GraphBuilder
    source: Path
    outputs: list[str] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    global_context: bool = False


# --------------------------------------------------------------------------- block builders
# Each returns the output node; ``p`` is the node-name prefix (``model.4``).


def _conv(c: Ctx, x: str, p: str, k: Any = 1, s: Any = 1, pad: Any = None, d: int = 1) -> str:
    return c.b.conv(x, k, s, _autopad(k, pad, d), dilation=d, name=p)


def _bottleneck(c: Ctx, x: str, p: str, shortcut: bool, k: Any = 3) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    y = _conv(c, y, f"{p}.cv2", k)
    return c.b.add_(x, y, name=f"{p}.add") if shortcut else y


def _cross_bottleneck(c: Ctx, x: str, p: str, shortcut: bool) -> str:
    """CrossConv: a 1x3 conv then a 3x1 conv (C3x)."""
    y = _conv(c, x, f"{p}.cv1", (1, 3))
    y = _conv(c, y, f"{p}.cv2", (3, 1))
    return c.b.add_(x, y, name=f"{p}.add") if shortcut else y


def _ghost_conv(c: Ctx, x: str, p: str, k: int = 1, s: int = 1) -> str:
    y = _conv(c, x, f"{p}.cv1", k, s)
    z = _conv(c, y, f"{p}.cv2", 5)  # cheap depthwise 5x5 on half the channels
    return c.b.cat(y, z, name=f"{p}.cat")


def _ghost_bottleneck(c: Ctx, x: str, p: str, k: int = 3, s: int = 1) -> str:
    y = _ghost_conv(c, x, f"{p}.conv.0", 1)
    if s == 2:
        y = _conv(c, y, f"{p}.conv.1", k, s)
    y = _ghost_conv(c, y, f"{p}.conv.2", 1)
    short = x
    if s == 2:
        short = _conv(c, x, f"{p}.shortcut.0", k, s)
        short = _conv(c, short, f"{p}.shortcut.1", 1)
    return c.b.add_(y, short, name=f"{p}.add")


def _spp(c: Ctx, x: str, p: str, ks: Sequence[int] = (5, 9, 13)) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    pools = [c.b.pool(y, k, 1, k // 2, name=f"{p}.m.{i}", kind="maxpool") for i, k in enumerate(ks)]
    return _conv(c, c.b.cat(y, *pools, name=f"{p}.cat"), f"{p}.cv2", 1)


def _sppf(c: Ctx, x: str, p: str, k: int = 5) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    chain = [y]
    for i in range(3):
        chain.append(c.b.pool(chain[-1], k, 1, k // 2, name=f"{p}.m.{i}", kind="maxpool"))
    return _conv(c, c.b.cat(*chain, name=f"{p}.cat"), f"{p}.cv2", 1)


def _c3(c: Ctx, x: str, p: str, n: int, shortcut: bool, inner: str, extra: list[Any]) -> str:
    """C3 and its variants: cv1 → m (n blocks) ; cv2 ; cv3(cat)."""
    y = _conv(c, x, f"{p}.cv1", 1)
    if inner == "TR":
        y = c.b.pointwise(y, "transformer", global_context=True, name=f"{p}.m")
        c.global_context = True
    elif inner == "SPP":
        y = _spp(c, y, f"{p}.m", *(extra[:1] or []))
    else:
        for i in range(n):
            q = f"{p}.m.{i}"
            if inner == "Ghost":
                y = _ghost_bottleneck(c, y, q)
            elif inner == "x":
                y = _cross_bottleneck(c, y, q, shortcut)
            else:
                y = _bottleneck(c, y, q, shortcut)
    z = _conv(c, x, f"{p}.cv2", 1)
    return _conv(c, c.b.cat(y, z, name=f"{p}.cat"), f"{p}.cv3", 1)


def _bottleneck_csp(c: Ctx, x: str, p: str, n: int, shortcut: bool) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    for i in range(n):
        y = _bottleneck(c, y, f"{p}.m.{i}", shortcut)
    y = _conv(c, y, f"{p}.cv3", 1)
    z = _conv(c, x, f"{p}.cv2", 1)
    return _conv(c, c.b.cat(y, z, name=f"{p}.cat"), f"{p}.cv4", 1)


def _focus(c: Ctx, x: str, p: str, k: int = 1, s: int = 1, pad: Any = None) -> str:
    parts = [c.b.slice(x, start, (2, 2), name=f"{p}.slice{i}")
             for i, start in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)])]
    return _conv(c, c.b.cat(*parts, name=f"{p}.cat"), f"{p}.conv", k, s, pad)


_C3_FAMILY = {"C3": "", "C3TR": "TR", "C3Ghost": "Ghost", "C3SPP": "SPP", "C3x": "x"}
_POINTWISE_MODULES = {"nn.Identity", "nn.BatchNorm2d", "nn.ReLU", "nn.SiLU", "nn.LeakyReLU",
                      "nn.Hardswish", "nn.Sigmoid", "nn.Dropout", "nn.Dropout2d"}
SUPPORTED = sorted([*_C3_FAMILY, "Conv", "DWConv", "GhostConv", "GhostBottleneck", "Bottleneck",
                    "BottleneckCSP", "CrossConv", "SPP", "SPPF", "Focus", "Concat", "Contract",
                    "Expand", "Detect", "nn.Upsample", "nn.MaxPool2d", "nn.ZeroPad2d",
                    *_POINTWISE_MODULES])


def row_error(ctx: Ctx, row: Row, message: str) -> FormatError:
    return FormatError(f"row {row.index} ({row.module}): {message}", source=ctx.source,
                       line=row.line)


def build_row(ctx: Ctx, row: Row, x: str | list[str], c1: int, gw: float) -> tuple[str, int]:
    """Add one row's subgraph; return its output node and channel count."""
    m, a, n, p = row.module, row.args, row.number, f"model.{row.index}"
    b = ctx.b

    def c2_of(value: Any) -> int:
        if not isinstance(value, (int, float)):
            raise row_error(ctx, row, f"expected the output channels first in args, got {value!r}")
        positive_finite(value, row_where(ctx, row, "channels"))
        return make_divisible(float(value) * gw)

    def repeat(one: Callable[[str, str], str], first: str) -> str:
        y = first
        for i in range(n):
            y = one(y, p if n == 1 else f"{p}.{i}")
        return y

    assert isinstance(x, str) or m in ("Concat", "Detect")
    try:
        if m in ("Conv", "DWConv"):
            c2 = c2_of(a[0])
            k, s = (a[1:2] or [1])[0], (a[2:3] or [1])[0]
            pad = a[3] if len(a) > 3 else None
            d = a[5] if len(a) > 5 and m == "Conv" else 1
            return repeat(lambda y, q: _conv(ctx, y, q, k, s, pad, d), x), c2
        if m == "GhostConv":
            c2 = c2_of(a[0])
            k, s = (a[1:2] or [1])[0], (a[2:3] or [1])[0]
            return repeat(lambda y, q: _ghost_conv(ctx, y, q, k, s), x), c2
        if m == "GhostBottleneck":
            c2 = c2_of(a[0])
            k, s = (a[1:2] or [3])[0], (a[2:3] or [1])[0]
            return repeat(lambda y, q: _ghost_bottleneck(ctx, y, q, k, s), x), c2
        if m == "Bottleneck":
            c2 = c2_of(a[0])
            shortcut = bool(a[1]) if len(a) > 1 else True
            out, ch = x, c1
            for i in range(n):
                out = _bottleneck(ctx, out, p if n == 1 else f"{p}.{i}", shortcut and ch == c2)
                ch = c2
            return out, c2
        if m == "CrossConv":
            c2 = c2_of(a[0])
            return repeat(lambda y, q: _cross_bottleneck(ctx, y, q, c1 == c2), x), c2
        if m in _C3_FAMILY:
            c2 = c2_of(a[0])
            shortcut = bool(a[1]) if len(a) > 1 and not isinstance(a[1], list) else True
            return _c3(ctx, x, p, n, shortcut, _C3_FAMILY[m], a[1:]), c2
        if m == "BottleneckCSP":
            c2 = c2_of(a[0])
            shortcut = bool(a[1]) if len(a) > 1 else True
            return _bottleneck_csp(ctx, x, p, n, shortcut), c2
        if m == "SPP":
            ks = a[1] if len(a) > 1 else (5, 9, 13)
            return repeat(lambda y, q: _spp(ctx, y, q, ks), x), c2_of(a[0])
        if m == "SPPF":
            k = a[1] if len(a) > 1 else 5
            return repeat(lambda y, q: _sppf(ctx, y, q, k), x), c2_of(a[0])
        if m == "Focus":
            c2 = c2_of(a[0])
            k, s = (a[1:2] or [1])[0], (a[2:3] or [1])[0]
            pad = a[3] if len(a) > 3 else None
            return repeat(lambda y, q: _focus(ctx, y, q, k, s, pad), x), c2
        if m == "Concat":
            xs = [x] if isinstance(x, str) else x
            return b.cat(*xs, name=p), -1  # channels filled by the caller
        if m in ("Contract", "Expand"):
            gain = positive_int(a[0], row_where(ctx, row, f"{m} gain")) if a else 2
            op = PixelShuffle(gain, unshuffle=(m == "Contract"))
            ch = c1 * gain * gain if m == "Contract" else c1 // (gain * gain)
            return b.add(op, [x], p), ch
        if m == "nn.Upsample":
            size = a[0] if a else None
            scale = a[1] if len(a) > 1 else None
            mode = a[2] if len(a) > 2 else "nearest"
            if size is not None or scale is None:
                raise row_error(ctx, row, "only nn.Upsample(None, scale, mode) is supported "
                                           "(a fixed output size has no fixed stride)")
            scale = positive_int(scale, row_where(ctx, row, "nn.Upsample scale"))
            if mode not in ("nearest", "bilinear"):
                raise row_error(ctx, row, f"unsupported upsampling mode {mode!r}")
            return repeat(lambda y, q: b.upsample(y, int(scale), mode, name=q), x), c1
        if m == "nn.MaxPool2d":
            k = a[0]
            s = a[1] if len(a) > 1 and a[1] is not None else k
            pad = a[2] if len(a) > 2 else 0
            return repeat(lambda y, q: b.pool(y, k, s, pad, name=q, kind="maxpool"), x), c1
        if m == "nn.ZeroPad2d":
            pad = a[0]
            left, right, top, bottom = (pad,) * 4 if isinstance(pad, int) else pad
            return repeat(lambda y, q: b.pad(y, top, bottom, left, right, name=q), x), c1
        if m in _POINTWISE_MODULES:
            return repeat(lambda y, q: b.add(Pointwise(m), [y], q), x), c1
    except FormatError:
        raise
    except (TypeError, ValueError, IndexError) as exc:
        raise row_error(ctx, row, f"bad args {a!r}: {exc}") from None
    raise row_error(ctx, row, f"unknown module {m!r}; anchorfit reads "
                               f"{', '.join(SUPPORTED)}")


RowBuilder = Callable[[Ctx, Row, "str | list[str]", int], tuple[str, int]]


def build_rows(ctx: Ctx, rows: Sequence[Row], image: str, in_ch: int, names: dict[str, Any],
               depth: float, layer_names: dict[str, str], build: RowBuilder) -> None:
    """Build the body rows (all but the head) of a YOLOv5 or Ultralytics model yaml.

    Each row's args are resolved against ``names``, its repeat count scaled by the depth
    multiple (a row, or a C3's inner blocks, repeats at least once), its ``from`` wired to
    earlier rows (-1 is the previous row, or the image for the first), and ``build`` turns it
    into graph nodes; outputs, channels and ``model.N`` layer names are recorded on ``ctx``.
    Bad args that the builder trips on become a row error naming file and line.
    """
    for row in rows:
        row.args = resolve_arg(row.args, names)
        if row.number > 1:
            scaled = row.number * depth if row.number <= MAX_REPEATS else math.inf
            if not math.isfinite(scaled) or scaled > MAX_REPEATS:
                shown = row.number if depth == 1 else f"{row.number} x depth {depth:g}"
                raise row_error(ctx, row, beyond_limit("repeat count", shown, MAX_REPEATS))
            row.number = max(round(scaled), 1)
        srcs = sources(row, ctx, ctx.source)
        ins = [image if j == -1 else ctx.outputs[j] for j in srcs]
        chans = [in_ch if j == -1 else ctx.channels[j] for j in srcs]
        if row.module != "Concat" and len(ins) != 1:
            raise row_error(ctx, row, f"takes one input, 'from' gives {len(ins)}")
        before = len(ctx.b.graph.nodes)
        try:
            out, ch = build(ctx, row, ins if row.module == "Concat" else ins[0], chans[0])
        except FormatError:
            raise
        except AnchorfitError as exc:  # a limit or a rule of the graph builder: name the row
            raise row_error(ctx, row, exc.message) from None
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise row_error(ctx, row, f"bad args {row.args!r}: {exc}") from None
        set_origin(ctx.b.graph, before, f"{ctx.source}:{row.line}")
        if row.module == "Concat":
            ch = sum(chans)
        ctx.outputs.append(out)
        ctx.channels.append(ch)
        layer_names[f"model.{row.index}"] = out


def resolve_arg(v: Any, names: dict[str, Any]) -> Any:
    """YOLOv5 evaluates string args: ``nc``, ``anchors``, ``None``, ``True``."""
    if isinstance(v, str):
        if v in names:
            return names[v]
        return {"None": None, "True": True, "False": False}.get(v, v)
    if isinstance(v, list):
        return [resolve_arg(u, names) for u in v]
    return v


def top_int(data: YMap, key: str, default: int, path: Path, minimum: int = 1) -> int:
    """A top-level integer of a model yaml (``ch``, ``reg_max``): ``abc`` or ``.inf`` is a
    message naming its line, not a ValueError/OverflowError from ``int()``."""
    return integer(data.get(key, default), Where(path, data.key_lines.get(key), key),
                   minimum=minimum)


def class_count(data: YMap, path: Path) -> int | None:
    """``nc`` as a count when it is a number (a non-number such as a name stays unknown, as
    before); ``.inf`` or ``2.5`` is an error at its line."""
    nc = data.get("nc", 80)
    if isinstance(nc, bool) or not isinstance(nc, (int, float)):
        return None
    return top_int(data, "nc", 80, path)


def row_where(ctx: Ctx, row: Row, key: str) -> Where:
    """Where a value of one row was written, for ``formats.validate`` messages."""
    return Where(ctx.source, row.line, key, f"row {row.index} ({row.module}): ")


def multiples(data: YMap, path: Path) -> tuple[float, float]:
    """``depth_multiple`` and ``width_multiple``: positive finite numbers (default 1)."""
    return tuple(positive_finite(data.get(key, 1.0), Where(path, data.line_of(key), key))
                 for key in ("depth_multiple", "width_multiple"))  # type: ignore[return-value]


def parse_rows(data: YMap, source: Path) -> list[Row]:
    rows = []
    for section in ("backbone", "head"):
        block = data.get(section)
        if not isinstance(block, list):
            raise FormatError(f"'{section}' must be a list of [from, number, module, args] rows",
                              source=source, line=data.key_lines.get(section), key=section)
        for raw in block:
            line = yaml_line(raw) or yaml_line(block)
            if not isinstance(raw, list) or len(raw) != 4:
                raise FormatError(f"row {len(rows)} must be [from, number, module, args], got "
                                  f"{raw!r}", source=source, line=line, key=section)
            frm, number, module, args = raw
            if not isinstance(module, str):
                raise FormatError(f"row {len(rows)}: module must be a name, got {module!r}",
                                  source=source, line=line, key=section)
            if not isinstance(number, int) or number < 1:
                raise FormatError(f"row {len(rows)}: number must be a positive int, got "
                                  f"{number!r}", source=source, line=line, key=section)
            if not isinstance(args, list):
                args = [args]
            module = module.removeprefix("torch.")
            rows.append(Row(len(rows), frm, number, module, list(args), line))
    return rows


def sources(row: Row, ctx: Ctx, source: Path) -> list[int]:
    frm = row.frm if isinstance(row.frm, list) else [row.frm]
    out = []
    for f in frm:
        if not isinstance(f, int):
            raise FormatError(f"row {row.index}: 'from' must be ints, got {row.frm!r}",
                              source=source, line=row.line)
        j = row.index + f if f < 0 else f
        if f == -1 and row.index == 0:
            j = -1  # the image
        elif not 0 <= j < row.index:
            raise FormatError(f"row {row.index}: 'from' {f} does not name an earlier row",
                              source=source, line=row.line)
        out.append(j)
    return out
