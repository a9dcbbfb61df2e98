"""The network part of an anchorfit spec: ``layers:`` (and ``blocks:``) into the IR.

Each entry is one operation with its window keys (``k``, ``s``, ``p``, ``d``...), per axis where a
pair is given; ``from:`` names earlier layers (default: the previous one), blocks are reusable
layer lists instantiated with arguments. Unknown types and keys are errors naming the line, with
a "did you mean" hint.
"""

from __future__ import annotations

from typing import Any

from anchorfit.errors import AnchorfitError, FormatError, suggest
from anchorfit.formats.parsers.yamlsrc import YMap, line_of
from anchorfit.formats.spec_values import (
    repeats,
    Scope,
    SpecContext,
    int_pair,
    int_value,
    opt_int_pair,
    resolve_ref,
)
from anchorfit.rf.graph import (
    Adaptive,
    GraphBuilder,
    PixelShuffle,
    Pointwise,
)
from anchorfit.safeinput import beyond_limit

#: Nesting of block calls (a block whose body calls a block ...); real specs nest 2 or 3.
MAX_BLOCK_DEPTH = 16

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


def layer(ctx: SpecContext, b: GraphBuilder, scope: Scope, entry: Any, index: int,
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
                        hint=suggest(raw, list(LAYER_TYPES) + list(ALIASES)))
    allowed = LAYER_TYPES[kind] | _COMMON
    extra = set(entry) - allowed
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"{kind} layer does not take {key!r}", entry, key,
                        hint="it takes " + ", ".join(sorted(allowed)))
    name = str(entry.get("name") or f"{kind}{index}")
    repeat = repeats(ctx, entry.get("n", 1), entry, "n")
    inputs = _inputs(ctx, scope, entry, kind)
    for r in range(repeat):
        node_name = prefix + (name if r == repeat - 1 else f"{name}.{r}")
        node = _add_op(ctx, b, kind, entry, inputs, node_name)
        if "c" in entry:
            channels[node] = int_value(ctx, entry["c"], entry, "c")
        inputs = [node]
    scope.names[name] = inputs[0]
    scope.order.append(inputs[0])


def _add_op(ctx: SpecContext, b: GraphBuilder, kind: str, e: YMap, inputs: list[str], name: str) -> str:
    try:
        if kind in _MERGES:
            if len(inputs) < 2:
                raise ctx.error(f"{kind} needs at least two inputs in 'from'", e, "from")
            return b.merge(inputs, kind, name=name)
        (x,) = inputs
        if kind in ("conv", "maxpool", "avgpool"):
            k = int_pair(ctx, e, "k", None)
            stride_default = 1 if kind == "conv" else k
            s = int_pair(ctx, e, "s", stride_default)
            p = e.get("p", 0)
            padding = p if isinstance(p, str) else int_pair(ctx, e, "p", 0)
            p_end = int_pair(ctx, e, "p_end", None) if "p_end" in e else None
            d = int_pair(ctx, e, "d", 1)
            return b.conv(x, k, s, padding, d, p_end, name=name, kind=kind,
                          ceil_mode=bool(e.get("ceil", False)))
        if kind == "pad":
            top, left = int_pair(ctx, e, "p", 0)
            bottom, right = int_pair(ctx, e, "p_end", (top, left))
            return b.pad(x, top, bottom, left, right, name=name)
        if kind == "convT":
            return b.transposed(x, int_pair(ctx, e, "k", None), int_pair(ctx, e, "s", 1),
                                int_pair(ctx, e, "p", 0), int_pair(ctx, e, "output_padding", 0),
                                int_pair(ctx, e, "d", 1), name=name)
        if kind == "upsample":
            return b.upsample(x, int_pair(ctx, e, "scale", 2), mode=str(e.get("mode", "nearest")),
                              name=name, align_corners=bool(e.get("align_corners", False)))  # type: ignore[arg-type]
        if kind == "slice":
            start = opt_int_pair(ctx, e, "start")
            stop = opt_int_pair(ctx, e, "stop")
            return b.slice(x, start, int_pair(ctx, e, "step", 1), stop, name=name)
        if kind in ("space_to_depth", "pixel_shuffle"):
            f = int_value(ctx, e.get("f", 2), e, "f")
            return b.add(PixelShuffle(f, kind == "space_to_depth"), [x], name)
        if kind == "adaptive_pool":
            return b.add(Adaptive(int_pair(ctx, e, "size", 1)), [x], name)
        if kind == "global_pool":
            return b.global_pool(x, name=name)
        if kind in ("pointwise", "global_context"):
            return b.add(Pointwise(str(e.get("kind", kind)), kind == "global_context"), [x], name)
    except FormatError:
        raise
    except AnchorfitError as exc:
        raise ctx.error(exc.message, e, hint=exc.hint) from None
    raise ctx.error(f"layer type {kind!r} is not implemented", e, "type")  # pragma: no cover


def _inputs(ctx: SpecContext, scope: Scope, entry: YMap, kind: str) -> list[str]:
    raw = entry.get("from", -1)
    refs = list(raw) if isinstance(raw, list) else [raw]
    out = []
    for ref in refs:
        out.append(resolve_ref(ctx, scope, ref, entry))
    if kind not in _MERGES and len(out) != 1:
        raise ctx.error(f"{kind} takes one input, 'from' lists {len(out)}", entry, "from")
    return out


def _block_call(ctx: SpecContext, b: GraphBuilder, scope: Scope, entry: YMap, index: int,
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
    repeat = repeats(ctx, entry.get("n", 1), entry, "n")
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
        inner = Scope(block_input=x, order=[x])
        body = bodies[0] if r == 0 else bodies[-1]
        for j, item in enumerate(body):
            layer(ctx, b, inner, item, j, blocks, channels, prefix=f"{prefix}{name}.{r}.",
                  args=args)
        last = prefix + (name if r == repeat - 1 else f"{name}.{r}")
        _rename_last(b, inner.order[-1], last, channels)
        x = last
    ctx.blocks.pop()
    scope.names[name] = x
    scope.order.append(x)


def _block_body(ctx: SpecContext, blocks: dict[str, Any], entry: YMap, key: str) -> list[Any]:
    block = str(entry[key])
    if block not in blocks:
        raise ctx.error(f"unknown block {block!r}", entry, key, hint=suggest(block, blocks))
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


def _substitute(ctx: SpecContext, entry: YMap, args: dict[str, Any]) -> YMap:
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


__all__ = ["ALIASES", "LAYER_TYPES", "layer"]
