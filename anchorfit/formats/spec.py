"""anchorfit's own YAML detector spec: a readable layer list plus levels and anchors.

A spec file describes a detector without any framework: the layers that matter for geometry
(conv, pool, pad, upsample, merges...) with their kernel, stride, padding and dilation, the
levels that read feature maps, and the anchors each level tiles. It builds the RF IR directly, so
``anchorfit rf configs/s3fd.yaml`` needs no torch. The schema is documented in ``docs/spec.md``;
the shipped zoo lives in ``configs/`` (and, byte-identical, in the package's ``anchorfit/configs``
so a builtin name such as ``s3fd`` works from an installed package).

Every error names the file and line of the offending entry.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from anchorfit.detector import RANGE_MEASURES, Anchor, Assigner, Detector, Level
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.formats import register, top_level_keys
from anchorfit.formats.common import (
    anchors_from_sizes,
    densified,
    detector_network,
    head_convs,
    ssd_anchors,
)
from anchorfit.formats.yamlsrc import YMap, line_of, load_yaml
from anchorfit.safeinput import MAX_BASE_DEPTH, MAX_REPEATS, beyond_limit
from anchorfit.rf.graph import (
    Adaptive,
    GraphBuilder,
    PixelShuffle,
    Pointwise,
    pair,
)

# layer type -> the keys it accepts (besides the common ones)
_COMMON = {"name", "type", "from", "c", "n"}
_WINDOW_KEYS = {"k", "s", "p", "d", "p_end", "ceil", "groups"}
LAYER_TYPES: dict[str, set[str]] = {
    "conv": _WINDOW_KEYS,
    "maxpool": _WINDOW_KEYS - {"groups"},
    "avgpool": _WINDOW_KEYS - {"groups", "d"},
    "pad": {"p", "p_end"},
    "convT": {"k", "s", "p", "d", "output_padding", "groups"},
    "upsample": {"scale", "size", "mode", "align_corners"},
    "slice": {"start", "stop", "step"},
    "space_to_depth": {"f"},
    "pixel_shuffle": {"f"},
    "adaptive_pool": {"size"},
    "global_pool": set(),
    "pointwise": {"kind"},
    "global_context": {"kind"},
    "add": set(),
    "mul": set(),
    "concat": set(),
}
#: other spellings a newcomer will type
ALIASES = {
    "convolution": "conv", "conv2d": "conv", "dwconv": "conv", "local": "conv",
    "pool": "maxpool", "max_pool": "maxpool", "avg_pool": "avgpool",
    "deconv": "convT", "conv_transpose": "convT", "transposed": "convT",
    "interpolate": "upsample", "reorg": "space_to_depth", "pixel_unshuffle": "space_to_depth",
    "gap": "global_pool", "global_avgpool": "global_pool", "fc": "global_pool",
    "linear": "global_pool", "cat": "concat", "sum": "add", "shortcut": "add",
    "relu": "pointwise", "bn": "pointwise", "act": "pointwise", "norm": "pointwise",
    "l2norm": "pointwise", "dropout": "pointwise", "identity": "pointwise",
    "groupnorm": "global_context", "gn": "global_context", "se": "global_context",
    "attention": "global_context",
}
_MERGES = {"add", "mul", "concat"}

TOP_KEYS = {"name", "base", "source", "input", "channels", "resize", "classes", "blocks",
            "layers", "levels", "assigner", "notes"}
LEVEL_KEYS = {"name", "from", "node", "anchors", "sizes", "scales", "octave_base_scale",
              "scales_per_octave", "ratios", "ssd", "anchor_free", "center", "step", "head",
              "assigner", "densify", "mask", "feature_size", "range_measure"}
ASSIGNER_KEYS = {"kind", "pos", "neg", "pos_iou", "neg_iou", "anchor_t", "ignore", "ignore_iou"}
CENTERS = {"cell-center": 0.5, "top-left": 0.0}
#: Nesting of block calls (a block whose body calls a block ...); real specs nest 2 or 3.
MAX_BLOCK_DEPTH = 16


@dataclass
class _Ctx:
    """Where we are in the file, for messages."""

    path: Path
    blocks: list[str] = field(default_factory=list)  # block calls being expanded (outermost first)

    def error(self, message: str, where: Any = None, key: str | None = None,
              hint: str | None = None) -> FormatError:
        return FormatError(message, source=self.path, line=line_of(where, key), hint=hint)


@dataclass
class _Scope:
    """Names visible to ``from:`` (the whole file, or one block instance)."""

    names: dict[str, str] = field(default_factory=dict)  # spec name -> IR node
    order: list[str] = field(default_factory=list)  # IR nodes in layer order (for ints)
    block_input: str | None = None


def sniff(path: Path, text: str) -> bool:
    """An anchorfit spec has a top-level ``layers:`` or ``levels:`` (or inherits a ``base:``)."""
    keys = top_level_keys(text)
    return bool(keys & {"layers", "levels"}) or ("base" in keys and "backbone" not in keys)


def load(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """Read a spec file into a Detector (RF numbers are joined by ``Detector.analyze``)."""
    ctx = _Ctx(Path(path))
    doc = _load_with_base(ctx, Path(path), set())
    return build(doc, ctx, input_size)


def _load_with_base(ctx: _Ctx, path: Path, seen: set[Path]) -> YMap:
    """Load a spec; ``base: other.yaml`` supplies every top-level key the file does not set.

    ``base`` is followed wherever it points (relative to the file, or absolute); the base is
    only read as YAML. Chains deeper than ``MAX_BASE_DEPTH`` are refused."""
    doc = load_yaml(path)
    if not isinstance(doc, YMap):
        raise FormatError("an anchorfit spec is a mapping with 'input', 'layers' and 'levels'",
                          source=path, line=line_of(doc) or 1)
    base = doc.get("base")
    if base is None:
        return doc
    if not isinstance(base, str):
        raise FormatError("'base' names another spec file", source=path, line=doc.line_of("base"))
    base_path = (path.parent / base).resolve()
    if base_path in seen or base_path == path.resolve():
        raise FormatError(f"'base' cycle through {base}", source=path, line=doc.line_of("base"))
    if len(seen) >= MAX_BASE_DEPTH:
        raise FormatError(beyond_limit("'base' chain depth", len(seen) + 1, MAX_BASE_DEPTH),
                          source=path, line=doc.line_of("base"), key="base")
    if not base_path.is_file():
        raise FormatError(f"base file {base} not found", source=path, line=doc.line_of("base"))
    parent = _load_with_base(ctx, base_path, seen | {path.resolve()})
    merged = YMap(parent)
    merged.line = doc.line
    merged.key_lines = dict(getattr(parent, "key_lines", {}))
    merged.update({k: v for k, v in doc.items() if k != "base"})
    merged.key_lines.update(doc.key_lines)
    return merged


def build(doc: YMap, ctx: _Ctx, input_size: tuple[int, int] | None = None) -> Detector:
    """Turn a parsed spec into a Detector."""
    unknown = set(doc) - TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ctx.error(f"unknown top-level key {key!r}", doc, key, hint=_close(key, TOP_KEYS))
    for key in ("input", "layers", "levels"):
        if key not in doc:
            raise ctx.error(f"missing key {key!r}", doc, hint=_MISSING_HINTS[key])
    name = str(doc.get("name") or ctx.path.stem)
    size = input_size or _hw(ctx, doc["input"], doc, "input")
    in_channels = _int(ctx, doc.get("channels", 3), doc, "channels")
    builder = GraphBuilder(name)
    scope = _Scope()
    channels: dict[str, int] = {}
    scope.names["input"] = builder.input()
    scope.order.append("input")
    blocks = doc.get("blocks") or {}
    if not isinstance(blocks, dict):
        raise ctx.error("'blocks' maps block names to layer lists", doc, "blocks")
    layers = doc["layers"]
    if not isinstance(layers, list) or not layers:
        raise ctx.error("'layers' must be a non-empty list of layers", doc, "layers")
    for index, entry in enumerate(layers):
        _layer(ctx, builder, scope, entry, index, blocks, channels, prefix="")
    builder.output(scope.order[-1])
    graph = builder.build()
    default_assigner = _assigner(ctx, doc.get("assigner"), doc, Assigner())
    levels_doc = doc["levels"]
    if not isinstance(levels_doc, list) or not levels_doc:
        raise ctx.error("'levels' must be a non-empty list", doc, "levels")
    levels = [_level(ctx, entry, scope, default_assigner, i) for i, entry in enumerate(levels_doc)]
    graph.outputs[:] = list(dict.fromkeys(lv.node for lv in levels if lv.node))
    policy, params = _resize(ctx, doc.get("resize", "stretch"), doc)
    notes = [str(n) for n in doc.get("notes") or []]
    det = Detector(name, size, levels, policy, params, source=str(ctx.path),
                   num_classes=doc.get("classes"), notes=notes)
    if doc.get("source"):
        det.extra["cites"] = str(doc["source"])
    try:
        det.network = detector_network(name, graph, size, levels, channels=channels,
                                       in_channels=in_channels)
        det.network.analyze()
    except FormatError:
        raise
    except AnchorfitError as exc:  # e.g. a window larger than its input
        raise FormatError(exc.message, source=ctx.path, hint=exc.hint) from None
    return det


_MISSING_HINTS = {
    "input": "the network input size: 640 or [H, W]",
    "layers": "a list of layers such as {name: conv1, type: conv, k: 3, s: 1, p: 1}",
    "levels": "a list of detection levels such as {name: P3, from: conv3, sizes: [32]}",
}


# --------------------------------------------------------------------------- layers


def _layer(ctx: _Ctx, b: GraphBuilder, scope: _Scope, entry: Any, index: int,
           blocks: dict[str, Any], channels: dict[str, int], prefix: str,
           args: dict[str, Any] | None = None) -> None:
    if not isinstance(entry, YMap):
        raise ctx.error("each layer is a mapping such as {name: conv1, type: conv, k: 3}",
                        entry if line_of(entry) else None)
    entry = _substitute(ctx, entry, args or {})
    if "block" in entry:
        _block_call(ctx, b, scope, entry, index, blocks, channels, prefix)
        return
    if "type" not in entry:
        raise ctx.error("layer has no 'type'", entry, hint="one of " + ", ".join(LAYER_TYPES))
    raw = str(entry["type"])
    kind = ALIASES.get(raw, ALIASES.get(raw.lower(), raw))
    if kind not in LAYER_TYPES:
        raise ctx.error(f"unknown layer type {raw!r}", entry, "type",
                        hint=_close(raw, list(LAYER_TYPES) + list(ALIASES)))
    allowed = LAYER_TYPES[kind] | _COMMON
    extra = set(entry) - allowed
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"{kind} layer does not take {key!r}", entry, key,
                        hint="it takes " + ", ".join(sorted(allowed)))
    name = str(entry.get("name") or f"{kind}{index}")
    repeat = _repeats(ctx, entry.get("n", 1), entry, "n")
    inputs = _inputs(ctx, scope, entry, kind)
    for r in range(repeat):
        node_name = prefix + (name if r == repeat - 1 else f"{name}.{r}")
        node = _add_op(ctx, b, kind, entry, inputs, node_name)
        if "c" in entry:
            channels[node] = _int(ctx, entry["c"], entry, "c")
        inputs = [node]
    scope.names[name] = inputs[0]
    scope.order.append(inputs[0])


def _add_op(ctx: _Ctx, b: GraphBuilder, kind: str, e: YMap, inputs: list[str], name: str) -> str:
    try:
        if kind in _MERGES:
            if len(inputs) < 2:
                raise ctx.error(f"{kind} needs at least two inputs in 'from'", e, "from")
            return b.merge(inputs, kind, name=name)
        (x,) = inputs
        if kind in ("conv", "maxpool", "avgpool"):
            k = _pair(ctx, e, "k", None)
            stride_default = 1 if kind == "conv" else k
            s = _pair(ctx, e, "s", stride_default)
            p = e.get("p", 0)
            padding = p if isinstance(p, str) else _pair(ctx, e, "p", 0)
            p_end = _pair(ctx, e, "p_end", None) if "p_end" in e else None
            d = _pair(ctx, e, "d", 1)
            return b.conv(x, k, s, padding, d, p_end, name=name, kind=kind,
                          ceil_mode=bool(e.get("ceil", False)))
        if kind == "pad":
            top, left = _pair(ctx, e, "p", 0)
            bottom, right = _pair(ctx, e, "p_end", (top, left))
            return b.pad(x, top, bottom, left, right, name=name)
        if kind == "convT":
            return b.transposed(x, _pair(ctx, e, "k", None), _pair(ctx, e, "s", 1),
                                _pair(ctx, e, "p", 0), _pair(ctx, e, "output_padding", 0),
                                _pair(ctx, e, "d", 1), name=name)
        if kind == "upsample":
            return b.upsample(x, _pair(ctx, e, "scale", 2), mode=str(e.get("mode", "nearest")),
                              name=name, align_corners=bool(e.get("align_corners", False)))  # type: ignore[arg-type]
        if kind == "slice":
            start = _opt_pair(ctx, e, "start")
            stop = _opt_pair(ctx, e, "stop")
            return b.slice(x, start, _pair(ctx, e, "step", 1), stop, name=name)
        if kind in ("space_to_depth", "pixel_shuffle"):
            f = _int(ctx, e.get("f", 2), e, "f")
            return b.add(PixelShuffle(f, kind == "space_to_depth"), [x], name)
        if kind == "adaptive_pool":
            return b.add(Adaptive(_pair(ctx, e, "size", 1)), [x], name)
        if kind == "global_pool":
            return b.global_pool(x, name=name)
        if kind in ("pointwise", "global_context"):
            return b.add(Pointwise(str(e.get("kind", kind)), kind == "global_context"), [x], name)
    except FormatError:
        raise
    except AnchorfitError as exc:
        raise ctx.error(exc.message, e, hint=exc.hint) from None
    raise ctx.error(f"layer type {kind!r} is not implemented", e, "type")  # pragma: no cover


def _inputs(ctx: _Ctx, scope: _Scope, entry: YMap, kind: str) -> list[str]:
    raw = entry.get("from", -1)
    refs = list(raw) if isinstance(raw, list) else [raw]
    out = []
    for ref in refs:
        out.append(_resolve(ctx, scope, ref, entry))
    if kind not in _MERGES and len(out) != 1:
        raise ctx.error(f"{kind} takes one input, 'from' lists {len(out)}", entry, "from")
    return out


def _resolve(ctx: _Ctx, scope: _Scope, ref: Any, entry: YMap) -> str:
    """``from:`` reference: a layer name, ``in`` (a block's input), -k (k layers back), or index."""
    if isinstance(ref, bool):
        raise ctx.error(f"bad 'from' reference {ref!r}", entry, "from")
    if isinstance(ref, int):
        pos = len(scope.order) + ref if ref < 0 else ref + 1  # index 0 = first layer
        if not 0 <= pos < len(scope.order):
            raise ctx.error(f"'from: {ref}' points before the first layer", entry, "from")
        return scope.order[pos]
    name = str(ref)
    if name == "in" and scope.block_input is not None:
        return scope.block_input
    if name in scope.names:
        return scope.names[name]
    raise ctx.error(f"'from' refers to {name!r}, which is not defined before this layer", entry,
                    "from", hint=_close(name, scope.names))


def _block_call(ctx: _Ctx, b: GraphBuilder, scope: _Scope, entry: YMap, index: int,
                blocks: dict[str, Any], channels: dict[str, int], prefix: str) -> None:
    """Expand ``{name: layer1, block: bottleneck, first: bottleneck_down, n: 3, with: {s: 2}}``.

    ``first`` (optional) is the body of the first instance (a stage's strided block).

    Instance i's layers are named ``layer1.i.<local>``; the last layer of each instance is
    ``layer1.i`` and that of the last instance ``layer1``, which later layers refer to.
    """
    extra = set(entry) - {"name", "block", "first", "n", "from", "with"}
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"a block call does not take {key!r}", entry, key,
                        hint="it takes name, block, first, n, from, with")
    bodies = [_block_body(ctx, blocks, entry, key) for key in ("first", "block") if key in entry]
    name = str(entry.get("name") or f"{entry['block']}{index}")
    args = entry.get("with") or {}
    if not isinstance(args, dict):
        raise ctx.error("'with' maps block parameters to values", entry, "with")
    repeat = _repeats(ctx, entry.get("n", 1), entry, "n")
    (x,) = _inputs(ctx, scope, entry, "block")
    called = [str(entry[key]) for key in ("first", "block") if key in entry]
    loop = [c for c in called if c in ctx.blocks]
    if loop:
        raise ctx.error(f"block {loop[0]!r} calls itself (through "
                        f"{' → '.join([*ctx.blocks, loop[0]])})", entry, "block")
    if len(ctx.blocks) >= MAX_BLOCK_DEPTH:
        raise ctx.error(beyond_limit("block nesting depth", len(ctx.blocks) + 1, MAX_BLOCK_DEPTH),
                        entry, "block")
    ctx.blocks.append(called[-1])
    for r in range(repeat):
        inner = _Scope(block_input=x, order=[x])
        body = bodies[0] if r == 0 else bodies[-1]
        for j, layer in enumerate(body):
            _layer(ctx, b, inner, layer, j, blocks, channels, prefix=f"{prefix}{name}.{r}.",
                   args=args)
        last = prefix + (name if r == repeat - 1 else f"{name}.{r}")
        _rename_last(b, inner.order[-1], last, channels)
        x = last
    ctx.blocks.pop()
    scope.names[name] = x
    scope.order.append(x)


def _block_body(ctx: _Ctx, blocks: dict[str, Any], entry: YMap, key: str) -> list[Any]:
    block = str(entry[key])
    if block not in blocks:
        raise ctx.error(f"unknown block {block!r}", entry, key, hint=_close(block, blocks))
    body = blocks[block]
    if not isinstance(body, list) or not body:
        raise ctx.error(f"block {block!r} must be a non-empty list of layers", blocks, block)
    return body


def _rename_last(b: GraphBuilder, old: str, new: str, channels: dict[str, int]) -> None:
    """Rename the most recently added node (nothing refers to it yet)."""
    nodes = b.graph.nodes
    if new in nodes:
        raise AnchorfitError(f"duplicate layer name {new!r}")
    node = nodes.pop(old)
    node.name = new
    nodes[new] = node
    if old in channels:
        channels[new] = channels.pop(old)


def _substitute(ctx: _Ctx, entry: YMap, args: dict[str, Any]) -> YMap:
    """Replace ``$param`` values by the block call's ``with:`` values."""
    if not args and not any(isinstance(v, str) and v.startswith("$") for v in entry.values()):
        return entry
    out = YMap()
    out.line, out.key_lines = entry.line, getattr(entry, "key_lines", {})
    for key, value in entry.items():
        if isinstance(value, str) and value.startswith("$"):
            param = value[1:]
            if param not in args:
                raise ctx.error(f"block parameter {value} has no value", entry, key,
                                hint="give it in the call's 'with:'")
            value = args[param]
        out[key] = value
    return out


# --------------------------------------------------------------------------- levels


def _level(ctx: _Ctx, e: Any, scope: _Scope, default: Assigner, index: int) -> Level:
    if not isinstance(e, YMap):
        raise ctx.error("each level is a mapping such as {name: P3, from: conv3, sizes: [32]}",
                        e if line_of(e) else None)
    extra = set(e) - LEVEL_KEYS
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"level does not take {key!r}", e, key, hint=_close(key, LEVEL_KEYS))
    ref_key = "from" if "from" in e else "node" if "node" in e else None
    if ref_key is None:
        raise ctx.error("level has no 'from' (the layer whose feature map it reads)", e)
    node = _resolve(ctx, scope, e[ref_key], _keyed(e, ref_key))
    name = str(e.get("name") or e[ref_key])
    step = _step(ctx, e)
    anchors = _anchors(ctx, e, step)
    center = str(e.get("center", "cell-center"))
    densify = e.get("densify")
    if densify:
        if not isinstance(densify, dict):
            raise ctx.error("'densify' maps an anchor size to its densification n (n x n "
                            "copies per cell)", e, "densify")
        anchors = _densify(ctx, e, anchors, densify, center)
        center = "explicit"
    elif center not in CENTERS and center != "explicit":
        raise ctx.error(f"unknown centre convention {center!r}", e, "center",
                        hint="cell-center ((i+0.5)*step) or top-left (i*step)")
    level = Level(name, node, step=step, anchors=anchors, center=center,  # type: ignore[arg-type]
                  center_offset=CENTERS.get(center, 0.5),
                  head=_head(ctx, e), assigner=_assigner(ctx, e.get("assigner"), e, default))
    if "anchor_free" in e:
        lo, hi = _floats(ctx, e["anchor_free"], e, "anchor_free", 2)
        level.anchor_free_range = (lo, math.inf if hi < 0 else hi)
        level.range_measure = str(e.get("range_measure", "max-ltrb"))
        if level.range_measure not in RANGE_MEASURES:
            raise ctx.error(f"unknown range_measure {level.range_measure!r}", e, "range_measure",
                            hint=", ".join(RANGE_MEASURES))
    if "mask" in e:
        level.mask = [int(v) for v in e["mask"]]
    if "feature_size" in e:
        level.feature_size = _pair(ctx, e, "feature_size", None)
    if not level.anchors and level.anchor_free_range is None:
        raise ctx.error("level has no anchors", e, hint="give anchors, sizes (+ ratios), scales, "
                        "octave_base_scale, ssd, or anchor_free: [lo, hi]")
    return level


def _keyed(e: YMap, key: str) -> YMap:
    """A view of ``e`` whose 'from' line is ``key``'s line (for messages about node refs)."""
    view = YMap(e)
    view.line, view.key_lines = e.line, {**getattr(e, "key_lines", {}), "from": e.line_of(key)}
    return view


def _step(ctx: _Ctx, e: YMap) -> tuple[float, float] | None:
    if "step" not in e:
        return None
    sy, sx = _floats(ctx, e["step"], e, "step", 2, allow_scalar=True)
    return (sy, sx)


def _anchors(ctx: _Ctx, e: YMap, step: tuple[float, float] | None) -> list[Anchor]:
    ratios = _floats(ctx, e.get("ratios", [1.0]), e, "ratios")
    if "anchors" in e:
        raw = e["anchors"]
        if not isinstance(raw, list) or not all(
                isinstance(a, list) and len(a) == 2 for a in raw):
            raise ctx.error("'anchors' is a list of [w, h] pairs", e, "anchors")
        return [Anchor(float(w), float(h)) for w, h in raw]
    if "sizes" in e:
        return anchors_from_sizes(_floats(ctx, e["sizes"], e, "sizes"), ratios)
    if "scales" in e or "octave_base_scale" in e:
        if step is None:
            raise ctx.error("'scales' multiply the level's step: give 'step'", e)
        base = math.sqrt(step[0] * step[1])
        if "scales" in e:
            scales = _floats(ctx, e["scales"], e, "scales")
        else:
            octave = _floats(ctx, e["octave_base_scale"], e, "octave_base_scale", 1,
                             allow_scalar=True)[0]
            per = _int(ctx, e.get("scales_per_octave", 1), e, "scales_per_octave")
            scales = [octave * 2 ** (i / per) for i in range(per)]
        return anchors_from_sizes([base * s for s in scales], ratios)
    if "ssd" in e:
        ssd = e["ssd"]
        if not isinstance(ssd, dict) or "min" not in ssd:
            raise ctx.error("'ssd' is {min: size, max: size, ratios: [2, 3]}", e, "ssd")
        return ssd_anchors(float(ssd["min"]), None if ssd.get("max") is None else float(
            ssd["max"]), [float(r) for r in ssd.get("ratios", [])])
    return []


def _densify(ctx: _Ctx, e: YMap, anchors: list[Anchor], densify: dict[Any, Any],
             center: str) -> list[Anchor]:
    base = CENTERS.get(center, 0.5)
    out = []
    sizes = {float(k) for k in densify}
    for a in anchors:
        n = densify.get(a.w, densify.get(int(a.w) if float(a.w).is_integer() else a.w))
        if n is not None and a.w == a.h:
            out.append(densified(a, _int(ctx, n, e, "densify")))
            sizes.discard(a.w)
        else:
            out.append(Anchor(a.w, a.h, ((base, base),)))
    if sizes:
        raise ctx.error(f"'densify' names sizes with no square anchor: {sorted(sizes)}", e,
                        "densify")
    return out


def _head(ctx: _Ctx, e: YMap) -> list[Any]:
    raw = e.get("head", [])
    if isinstance(raw, dict):
        k = raw.get("k", 3)
        n = _repeats(ctx, raw.get("n", 1), e, "head")
        return head_convs([k] * n)
    if isinstance(raw, int):
        return head_convs([raw])
    if not isinstance(raw, list):
        raise ctx.error("'head' is a kernel, a list of kernels or {k: 3, n: 4}", e, "head")
    return head_convs(raw)


def _assigner(ctx: _Ctx, raw: Any, where: YMap, default: Assigner) -> Assigner:
    if raw is None:
        return default
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise ctx.error("'assigner' is a mapping such as {kind: iou, pos: 0.5, neg: 0.4}", where,
                        "assigner")
    extra = set(raw) - ASSIGNER_KEYS
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"assigner does not take {key!r}", raw if line_of(raw) else where, key,
                        hint=_close(key, ASSIGNER_KEYS))

    def get(*keys: str) -> Any:
        for k in keys:
            if k in raw:
                return None if raw[k] is None else float(raw[k])
        return getattr(default, {"pos": "pos_iou", "neg": "neg_iou", "anchor_t": "anchor_t",
                                 "ignore": "ignore_iou"}[keys[0]])

    kind = str(raw.get("kind", default.kind))
    if kind != default.kind and "pos" not in raw and "pos_iou" not in raw:
        # a different kind does not inherit IoU thresholds it does not use
        base = Assigner(kind, None, None) if kind in ("anchor-free", "darknet", "yolo-ratio") \
            else Assigner(kind)
        default = base
    return Assigner(kind, get("pos", "pos_iou"), get("neg", "neg_iou"), get("anchor_t"),
                    get("ignore", "ignore_iou"))


def _resize(ctx: _Ctx, raw: Any, doc: YMap) -> tuple[str, dict[str, Any]]:
    policies = ("letterbox", "stretch", "shortside", "fixed")
    if isinstance(raw, str):
        if raw not in policies:
            raise ctx.error(f"unknown resize policy {raw!r}", doc, "resize",
                            hint="one of " + ", ".join(policies))
        return raw, {}
    if isinstance(raw, dict) and raw.get("policy") in policies:
        return str(raw["policy"]), {k: v for k, v in raw.items() if k != "policy"}
    raise ctx.error("'resize' is letterbox, stretch, fixed or {policy: shortside, short: 800, "
                    "max: 1333}", doc, "resize")


# --------------------------------------------------------------------------- values


def _hw(ctx: _Ctx, value: Any, where: YMap, key: str) -> tuple[int, int]:
    try:
        h, w = pair(value if not isinstance(value, list) else [int(v) for v in value], key)
    except (AnchorfitError, TypeError, ValueError):
        raise ctx.error(f"'{key}' must be a size (640) or [H, W], got {value!r}", where, key) \
            from None
    if h <= 0 or w <= 0:
        raise ctx.error(f"'{key}' must be positive, got {value!r}", where, key)
    return h, w


def _pair(ctx: _Ctx, e: YMap, key: str, default: Any) -> tuple[int, int]:
    if key not in e:
        if default is None:
            raise ctx.error(f"missing key {key!r}", e)
        return pair(default) if not isinstance(default, tuple) else default
    value = e[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, list):
            value = [int(v) for v in value]
            if any(isinstance(v, float) and not float(v).is_integer() for v in e[key]):
                raise ValueError
        elif isinstance(value, float) and not value.is_integer():
            raise ValueError
        return pair(int(value) if not isinstance(value, list) else value, key)
    except (AnchorfitError, TypeError, ValueError):
        raise ctx.error(f"'{key}' must be an integer or [y, x] integers, got {value!r}", e, key) \
            from None


def _opt_pair(ctx: _Ctx, e: YMap, key: str) -> tuple[int | None, int | None]:
    value = e.get(key)
    if value is None:
        return (None, None)
    if isinstance(value, list) and len(value) == 2:
        return (None if value[0] is None else int(value[0]),
                None if value[1] is None else int(value[1]))
    return _pair(ctx, e, key, None)


def _int(ctx: _Ctx, value: Any, where: YMap, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or int(value) != value:
        raise ctx.error(f"'{key}' must be an integer, got {value!r}", where, key)
    return int(value)


def _repeats(ctx: _Ctx, value: Any, where: YMap, key: str) -> int:
    """A repeat count ``n``: an integer no larger than ``MAX_REPEATS``."""
    n = _int(ctx, value, where, key)
    if n > MAX_REPEATS:
        raise ctx.error(beyond_limit(f"repeat count '{key}:'", n, MAX_REPEATS), where, key)
    return n


def _floats(ctx: _Ctx, value: Any, where: YMap, key: str, count: int | None = None,
            allow_scalar: bool = False) -> list[float]:
    if allow_scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * (count or 1)
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ctx.error(f"'{key}' must be a list of numbers, got {value!r}", where, key)
    if count is not None and len(value) != count:
        raise ctx.error(f"'{key}' needs {count} numbers, got {len(value)}", where, key)
    return [float(Fraction(v).limit_denominator(10**9)) if isinstance(v, float) else float(v)
            for v in value]


def _close(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=0.6)
    return ("did you mean " + ", ".join(close) + "?") if close else None


register("anchorfit spec", (".yaml", ".yml"), load, sniff=sniff,
         expects="a top-level 'layers:' and 'levels:'")

__all__ = ["ALIASES", "LAYER_TYPES", "build", "load", "sniff"]
