"""Ultralytics YOLOv5 model ``.yaml`` → IR + Detector.

A YOLOv5 model yaml lists rows ``[from, number, module, args]`` under ``backbone:`` and ``head:``;
``depth_multiple`` scales ``number`` and ``width_multiple`` the channels, and the last row is a
``Detect`` over some earlier rows with the ``anchors`` (pixels, one flat ``w,h,...`` list per
level, or a bare count that AutoAnchor fills in before training).

Only geometry matters for receptive fields, but the internals of the blocks do: a ``C3`` is two
1x1 branches, ``n`` bottlenecks (1x1 then 3x3, with a residual add) and a 1x1 merge; ``SPPF`` chains
three stride-1 max-pools; ``Focus`` is four stride-2 slices concatenated. Each row becomes a small
subgraph named after YOLOv5's own module path (``model.17``), so users can name layers as YOLOv5
does. Channels are tracked because a ``Bottleneck`` adds its shortcut only when in == out.

Conventions recorded on the levels: YOLOv5 decodes centres as ``(2*sigmoid - 0.5 + i) * S`` (the
nominal centre, sigmoid = 0.5, is the cell centre ``(i + 0.5) * S``); its assigner is the ratio test
``max(w/aw, aw/w, h/ah, ah/h) < anchor_t`` with the ``hyp.scratch-low.yaml`` default 4.0; and it
reverses the anchor order at build when it contradicts the stride order (``check_anchor_order``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.formats.base import (
    Format,
    finish,
    head_convs,
    make_network,
    pyramid_name,
    top_level_keys,
    unique_names,
)
from anchorfit.formats.parsers.yamlsrc import YMap, load_yaml
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder, PixelShuffle, Pointwise
from anchorfit.safeinput import MAX_REPEATS, beyond_limit

DEFAULT_INPUT = 640
DEFAULT_ANCHOR_T = 4.0  # hyp.scratch-low.yaml (the default hyperparameters)


def is_yolov5_yaml(data: Any) -> bool:
    """A YOLOv5 model yaml has ``backbone:`` and ``head:`` row lists."""
    return isinstance(data, dict) and "backbone" in data and "head" in data


def _line(value: Any) -> int | None:
    return getattr(value, "line", None)


def _make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


def _autopad(k: Any, p: Any = None, d: int = 1) -> Any:
    """YOLOv5's 'same' padding for odd kernels: d*(k-1)//2 per axis."""
    if p is not None:
        return p
    if isinstance(k, (list, tuple)):
        return [d * (x - 1) // 2 for x in k]
    return d * (k - 1) // 2


@dataclass
class _Row:
    index: int
    frm: int | list[int]
    number: int
    module: str
    args: list[Any]
    line: int | None


@dataclass
class _Ctx:
    """State while building: the builder, the output node and channels of each row."""

    b: GraphBuilder
    source: Path
    outputs: list[str] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    global_context: bool = False


# --------------------------------------------------------------------------- block builders
# Each returns the output node; ``p`` is the node-name prefix (``model.4``).


def _conv(c: _Ctx, x: str, p: str, k: Any = 1, s: Any = 1, pad: Any = None, d: int = 1) -> str:
    return c.b.conv(x, k, s, _autopad(k, pad, d), dilation=d, name=p)


def _bottleneck(c: _Ctx, x: str, p: str, shortcut: bool, k: Any = 3) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    y = _conv(c, y, f"{p}.cv2", k)
    return c.b.add_(x, y, name=f"{p}.add") if shortcut else y


def _cross_bottleneck(c: _Ctx, x: str, p: str, shortcut: bool) -> str:
    """CrossConv: a 1x3 conv then a 3x1 conv (C3x)."""
    y = _conv(c, x, f"{p}.cv1", (1, 3))
    y = _conv(c, y, f"{p}.cv2", (3, 1))
    return c.b.add_(x, y, name=f"{p}.add") if shortcut else y


def _ghost_conv(c: _Ctx, x: str, p: str, k: int = 1, s: int = 1) -> str:
    y = _conv(c, x, f"{p}.cv1", k, s)
    z = _conv(c, y, f"{p}.cv2", 5)  # cheap depthwise 5x5 on half the channels
    return c.b.cat(y, z, name=f"{p}.cat")


def _ghost_bottleneck(c: _Ctx, x: str, p: str, k: int = 3, s: int = 1) -> str:
    y = _ghost_conv(c, x, f"{p}.conv.0", 1)
    if s == 2:
        y = _conv(c, y, f"{p}.conv.1", k, s)
    y = _ghost_conv(c, y, f"{p}.conv.2", 1)
    short = x
    if s == 2:
        short = _conv(c, x, f"{p}.shortcut.0", k, s)
        short = _conv(c, short, f"{p}.shortcut.1", 1)
    return c.b.add_(y, short, name=f"{p}.add")


def _spp(c: _Ctx, x: str, p: str, ks: Sequence[int] = (5, 9, 13)) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    pools = [c.b.pool(y, k, 1, k // 2, name=f"{p}.m.{i}", kind="maxpool") for i, k in enumerate(ks)]
    return _conv(c, c.b.cat(y, *pools, name=f"{p}.cat"), f"{p}.cv2", 1)


def _sppf(c: _Ctx, x: str, p: str, k: int = 5) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    chain = [y]
    for i in range(3):
        chain.append(c.b.pool(chain[-1], k, 1, k // 2, name=f"{p}.m.{i}", kind="maxpool"))
    return _conv(c, c.b.cat(*chain, name=f"{p}.cat"), f"{p}.cv2", 1)


def _c3(c: _Ctx, x: str, p: str, n: int, shortcut: bool, inner: str, extra: list[Any]) -> str:
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


def _bottleneck_csp(c: _Ctx, x: str, p: str, n: int, shortcut: bool) -> str:
    y = _conv(c, x, f"{p}.cv1", 1)
    for i in range(n):
        y = _bottleneck(c, y, f"{p}.m.{i}", shortcut)
    y = _conv(c, y, f"{p}.cv3", 1)
    z = _conv(c, x, f"{p}.cv2", 1)
    return _conv(c, c.b.cat(y, z, name=f"{p}.cat"), f"{p}.cv4", 1)


def _focus(c: _Ctx, x: str, p: str, k: int = 1, s: int = 1, pad: Any = None) -> str:
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


def _row_error(ctx: _Ctx, row: _Row, message: str) -> FormatError:
    return FormatError(f"row {row.index} ({row.module}): {message}", source=ctx.source,
                       line=row.line)


def _build_row(ctx: _Ctx, row: _Row, x: str | list[str], c1: int, gw: float) -> tuple[str, int]:
    """Add one row's subgraph; return its output node and channel count."""
    m, a, n, p = row.module, row.args, row.number, f"model.{row.index}"
    b = ctx.b

    def c2_of(value: Any) -> int:
        if not isinstance(value, (int, float)):
            raise _row_error(ctx, row, f"expected the output channels first in args, got {value!r}")
        return _make_divisible(float(value) * gw)

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
            gain = int(a[0]) if a else 2
            op = PixelShuffle(gain, unshuffle=(m == "Contract"))
            ch = c1 * gain * gain if m == "Contract" else c1 // (gain * gain)
            return b.add(op, [x], p), ch
        if m == "nn.Upsample":
            size = a[0] if a else None
            scale = a[1] if len(a) > 1 else None
            mode = a[2] if len(a) > 2 else "nearest"
            if size is not None or scale is None:
                raise _row_error(ctx, row, "only nn.Upsample(None, scale, mode) is supported "
                                           "(a fixed output size has no fixed stride)")
            if float(scale) != int(scale):
                raise _row_error(ctx, row, f"non-integer upsampling scale {scale!r}")
            if mode not in ("nearest", "bilinear"):
                raise _row_error(ctx, row, f"unsupported upsampling mode {mode!r}")
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
        raise _row_error(ctx, row, f"bad args {a!r}: {exc}") from None
    raise _row_error(ctx, row, f"unknown module {m!r}; anchorfit reads "
                               f"{', '.join(SUPPORTED)}")


RowBuilder = Callable[[_Ctx, _Row, "str | list[str]", int], tuple[str, int]]


def build_rows(ctx: _Ctx, rows: Sequence[_Row], image: str, in_ch: int, names: dict[str, Any],
               depth: float, layer_names: dict[str, str], build: RowBuilder) -> None:
    """Build the body rows (all but the head) of a YOLOv5 or Ultralytics model yaml.

    Each row's args are resolved against ``names``, its repeat count scaled by the depth
    multiple (a row, or a C3's inner blocks, repeats at least once), its ``from`` wired to
    earlier rows (-1 is the previous row, or the image for the first), and ``build`` turns it
    into graph nodes; outputs, channels and ``model.N`` layer names are recorded on ``ctx``.
    Bad args that the builder trips on become a row error naming file and line.
    """
    for row in rows:
        row.args = _resolve_arg(row.args, names)
        if row.number > 1:
            scaled = row.number * depth
            if not math.isfinite(scaled) or scaled > MAX_REPEATS:
                shown = row.number if depth == 1 else f"{row.number} x depth {depth:g}"
                raise _row_error(ctx, row, beyond_limit("repeat count", shown, MAX_REPEATS))
            row.number = max(round(scaled), 1)
        srcs = _sources(row, ctx, ctx.source)
        ins = [image if j == -1 else ctx.outputs[j] for j in srcs]
        chans = [in_ch if j == -1 else ctx.channels[j] for j in srcs]
        if row.module != "Concat" and len(ins) != 1:
            raise _row_error(ctx, row, f"takes one input, 'from' gives {len(ins)}")
        try:
            out, ch = build(ctx, row, ins if row.module == "Concat" else ins[0], chans[0])
        except FormatError:
            raise
        except AnchorfitError as exc:  # a limit or a rule of the graph builder: name the row
            raise _row_error(ctx, row, exc.message) from None
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise _row_error(ctx, row, f"bad args {row.args!r}: {exc}") from None
        if row.module == "Concat":
            ch = sum(chans)
        ctx.outputs.append(out)
        ctx.channels.append(ch)
        layer_names[f"model.{row.index}"] = out


def _resolve_arg(v: Any, names: dict[str, Any]) -> Any:
    """YOLOv5 evaluates string args: ``nc``, ``anchors``, ``None``, ``True``."""
    if isinstance(v, str):
        if v in names:
            return names[v]
        return {"None": None, "True": True, "False": False}.get(v, v)
    if isinstance(v, list):
        return [_resolve_arg(u, names) for u in v]
    return v


def _parse_rows(data: YMap, source: Path) -> list[_Row]:
    rows = []
    for section in ("backbone", "head"):
        block = data.get(section)
        if not isinstance(block, list):
            raise FormatError(f"'{section}' must be a list of [from, number, module, args] rows",
                              source=source, line=data.key_lines.get(section), key=section)
        for raw in block:
            line = _line(raw) or _line(block)
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
            rows.append(_Row(len(rows), frm, number, module, list(args), line))
    return rows


def _sources(row: _Row, ctx: _Ctx, source: Path) -> list[int]:
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


def _anchor_levels(anchors: Any, count: int, source: Path, line: int | None) -> list[list[Anchor]] | None:
    """Per-level anchors from the yaml, or None when only a count per level is given."""
    if isinstance(anchors, (int, float)) and not isinstance(anchors, bool):
        return None
    if not isinstance(anchors, list) or len(anchors) != count:
        raise FormatError(f"anchors must be a count or one list per Detect input ({count}), got "
                          f"{anchors!r}", source=source, line=line, key="anchors")
    levels = []
    for i, flat in enumerate(anchors):
        if not isinstance(flat, list) or len(flat) % 2 or not all(
                isinstance(v, (int, float)) and v > 0 for v in flat):
            raise FormatError(f"anchors level {i}: expected w1,h1,w2,h2,... positive numbers, got "
                              f"{flat!r}", source=source, line=_line(flat) or line, key="anchors")
        levels.append([Anchor(float(flat[j]), float(flat[j + 1])) for j in range(0, len(flat), 2)])
    return levels


def load_yolov5(path: Path, input_size: tuple[int, int] | None = None, *,
                data: Any = None, anchor_t: float = DEFAULT_ANCHOR_T) -> Detector:
    """Read a YOLOv5 model yaml into a Detector whose network is the IR of the whole model."""
    path = Path(path)
    if data is None:
        data = load_yaml(path)
    if not isinstance(data, YMap):
        raise FormatError("expected a YAML mapping with backbone: and head:", source=path)
    if not is_yolov5_yaml(data):
        raise FormatError(f"{_not_a_model(path, data)}, not a model: a YOLOv5 or Ultralytics "
                          "model yaml has 'backbone:' and 'head:' row lists", source=path,
                          line=data.line)
    from anchorfit.formats.ultralytics_modern import is_ultralytics_yaml, load_ultralytics

    if is_ultralytics_yaml({str(k) for k in data}):
        return load_ultralytics(path, input_size, data=data)  # the package's yamls: own rules
    gd = float(data.get("depth_multiple", 1.0))
    gw = float(data.get("width_multiple", 1.0))
    nc = data.get("nc", 80)
    anchors_value = data.get("anchors")
    rows = _parse_rows(data, path)
    if not rows or rows[-1].module not in ("Detect", "Segment"):
        last = rows[-1] if rows else None
        raise FormatError("the last head row must be Detect(nc, anchors)", source=path,
                          line=last.line if last else data.key_lines.get("head"), key="head")
    size = input_size or (DEFAULT_INPUT, DEFAULT_INPUT)
    ctx = _Ctx(GraphBuilder(path.stem), path)
    image = ctx.b.input("images")
    in_ch = int(data.get("ch", 3))
    names = {"nc": nc, "anchors": anchors_value}
    layer_names: dict[str, str] = {}
    detect_row = rows[-1]
    build_rows(ctx, rows[:-1], image, in_ch, names, gd, layer_names,
               lambda c, row, x, c1: _build_row(c, row, x, c1, gw))
    # Detect
    srcs = _sources(detect_row, ctx, path)
    if any(j == -1 for j in srcs):
        raise _row_error(ctx, detect_row, "Detect must read earlier rows")
    det_args = _resolve_arg(detect_row.args, names)
    det_anchors = det_args[1] if len(det_args) > 1 else anchors_value
    per_level = _anchor_levels(det_anchors, len(srcs), path,
                               data.key_lines.get("anchors", detect_row.line))
    graph = ctx.b.build()
    analysis = analyze(graph, size)
    strides = [analysis[ctx.outputs[j]].stride for j in srcs]
    notes = list(ctx.notes)
    if per_level is None:
        na = int(det_anchors) if isinstance(det_anchors, (int, float)) else 3
        notes.append(f"anchors: to be fitted ({path.name} gives only a count, {det_anchors!r} per "
                     "level; YOLOv5 runs AutoAnchor before training)")
    else:
        per_level, flipped = _check_anchor_order(per_level, [float(s[1]) for s in strides])
        if flipped:
            notes.append("anchor order contradicts the stride order; YOLOv5 reverses it at build "
                         "(check_anchor_order) and so does anchorfit")
    if ctx.global_context:
        notes.append("C3TR holds a transformer block: those levels depend on the whole image "
                     "(global_context); rf is the local RF")
    level_names = unique_names([pyramid_name(s[1]) for s in strides])
    levels = []
    for i, (j, stride) in enumerate(zip(srcs, strides)):
        step = (float(stride[0]), float(stride[1]))
        levels.append(Level(
            name=level_names[i], node=ctx.outputs[j], stride=stride, step=step,
            anchors=list(per_level[i]) if per_level is not None else [],
            center="cell-center", center_offset=0.5, head=head_convs([1]),
            assigner=Assigner("yolo-ratio", None, None, anchor_t=anchor_t),
            extra={"row": j, **({"anchors_to_fit": na} if per_level is None else {})}))
    net = make_network(path.stem, graph, size, levels, notes, layer_names)
    det = Detector(path.stem, size, levels, "letterbox", {"long": max(size)}, str(path), net,
                   int(nc) if isinstance(nc, (int, float)) else None, notes,
                   extra={"format": "yolov5", "depth_multiple": gd, "width_multiple": gw,
                          "anchors_to_fit": per_level is None})
    return finish(det)


def _not_a_model(path: Path, data: YMap) -> str:
    """What a YOLOv5/Ultralytics yaml without rows is. Dataset files have one format in both
    code bases; the usage comment says which one a file was written for (YOLOv5's
    ``python train.py --data``, the package's ``yolo train data=``)."""
    if "anchor_t" in data:
        return "a YOLOv5 hyperparameter file"
    if {"task", "mode"} <= set(data):
        return "an Ultralytics settings/hyperparameter file (default.yaml)"
    if "names" in data or "train" in data:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        return ("a YOLOv5 dataset file" if "train.py" in text or "yolo train" not in text
                else "an Ultralytics dataset file")
    if any(str(k).startswith("anchors_") for k in data):
        return "a YOLOv5 anchor-set collection"
    return "no network"


def _check_anchor_order(levels: list[list[Anchor]], strides: list[float]
                        ) -> tuple[list[list[Anchor]], bool]:
    """YOLOv5's check_anchor_order: flip whole levels if mean area order ≠ stride order."""
    areas = [sum(a.w * a.h for a in lv) / len(lv) for lv in levels]
    da, ds = areas[-1] - areas[0], strides[-1] - strides[0]
    if da and ds and (da > 0) != (ds > 0):
        return list(reversed(levels)), True
    return levels, False


__all__ = ["DEFAULT_ANCHOR_T", "FORMAT", "SUPPORTED", "is_yolov5_yaml", "load_yolov5"]


def _sniff(path: Path, text: str) -> bool:
    """A YOLOv5 model (backbone + head), or a YOLOv5 file that is not a model (hyp, anchor
    sets, dataset), so the user hears what the file is instead of "unknown format"."""
    from anchorfit.formats.ultralytics_modern import is_ultralytics_yaml

    keys = top_level_keys(text)
    if is_ultralytics_yaml(keys):
        return False  # the Ultralytics package reader's
    return ({"backbone", "head"} <= keys or {"anchor_t", "lr0"} <= keys
            or {"task", "mode", "lr0"} <= keys
            or any(k.startswith("anchors_p") for k in keys)
            or ("names" in keys and bool({"train", "val"} & keys)))


FORMAT = Format("YOLOv5 model yaml", (".yaml", ".yml"), load_yolov5, sniff=_sniff,
                expects="top-level 'backbone:' and 'head:' row lists", export="yolov5")
