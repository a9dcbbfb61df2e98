"""The anchorfit spec's shared reading state and value checks: where we are in the file (for
messages), which names ``from:`` can see, and the checks every key's value goes through (sizes,
integer pairs, number lists). Used by ``spec_network`` (layers) and ``spec_levels`` (levels)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from anchorfit.errors import AnchorfitError, FormatError, suggest
from anchorfit.formats.parsers.yamlsrc import YMap, line_of
from anchorfit.rf.graph import pair
from anchorfit.safeinput import MAX_MAP_SIDE, MAX_REPEATS, beyond_limit


@dataclass
class SpecContext:
    """Where we are in the file, for messages."""

    path: Path
    blocks: list[str] = field(default_factory=list)  # block calls being expanded (outermost first)

    def error(self, message: str, where: Any = None, key: str | None = None,
              hint: str | None = None) -> FormatError:
        return FormatError(message, source=self.path, line=line_of(where, key), hint=hint)


@dataclass
class Scope:
    """Names visible to ``from:`` (the whole file, or one block instance)."""

    names: dict[str, str] = field(default_factory=dict)  # spec name -> IR node
    order: list[str] = field(default_factory=list)  # IR nodes in layer order (for ints)
    block_input: str | None = None


def resolve_ref(ctx: SpecContext, scope: Scope, ref: Any, entry: YMap) -> str:
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
                    "from", hint=suggest(name, scope.names))


def hw(ctx: SpecContext, value: Any, where: YMap, key: str) -> tuple[int, int]:
    try:
        h, w = pair(value if not isinstance(value, list) else [_whole(v) for v in value], key)
    except (AnchorfitError, TypeError, ValueError, OverflowError):
        raise ctx.error(f"'{key}' must be a size (640) or [H, W], got {value!r}", where, key) \
            from None
    if h <= 0 or w <= 0:
        raise ctx.error(f"'{key}' must be positive, got {value!r}", where, key)
    if max(h, w) > MAX_MAP_SIDE:
        raise ctx.error(beyond_limit(f"'{key}'", max(h, w), MAX_MAP_SIDE), where, key)
    return h, w


def _whole(v: Any) -> int:
    """An integral YAML number (``640`` or ``640.0``); 640.5, inf, nan and text are refused
    (ValueError/OverflowError, reported by the caller), never cut to an integer."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(v)
    if isinstance(v, float) and not v.is_integer():
        raise ValueError(v)
    return int(v)


def int_pair(ctx: SpecContext, e: YMap, key: str, default: Any) -> tuple[int, int]:
    if key not in e:
        if default is None:
            raise ctx.error(f"missing key {key!r}", e)
        return pair(default) if not isinstance(default, tuple) else default
    value = e[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, list):
            value = [_whole(v) for v in value]
        elif isinstance(value, float) and not value.is_integer():
            raise ValueError
        return pair(int(value) if not isinstance(value, list) else value, key)
    except (AnchorfitError, TypeError, ValueError, OverflowError):
        raise ctx.error(f"'{key}' must be an integer or [y, x] integers, got {value!r}", e, key) \
            from None


def opt_int_pair(ctx: SpecContext, e: YMap, key: str) -> tuple[int | None, int | None]:
    value = e.get(key)
    if value is None:
        return (None, None)
    if isinstance(value, list) and len(value) == 2 and None in value:
        try:
            return (None if value[0] is None else _whole(value[0]),
                    None if value[1] is None else _whole(value[1]))
        except (TypeError, ValueError, OverflowError):
            raise ctx.error(f"'{key}' must be integers or null, got {value!r}", e, key) from None
    return int_pair(ctx, e, key, None)


def int_value(ctx: SpecContext, value: Any, where: YMap, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)) or int(value) != value:
        raise ctx.error(f"'{key}' must be an integer, got {value!r}", where, key)
    return int(value)


def repeats(ctx: SpecContext, value: Any, where: YMap, key: str) -> int:
    """A repeat count ``n``: an integer no larger than ``MAX_REPEATS``."""
    n = int_value(ctx, value, where, key)
    if n > MAX_REPEATS:
        raise ctx.error(beyond_limit(f"repeat count '{key}:'", n, MAX_REPEATS), where, key)
    return n


def float_list(ctx: SpecContext, value: Any, where: YMap, key: str, count: int | None = None,
            allow_scalar: bool = False) -> list[float]:
    if allow_scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * (count or 1)
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ctx.error(f"'{key}' must be a list of numbers, got {value!r}", where, key)
    if count is not None and len(value) != count:
        raise ctx.error(f"'{key}' needs {count} numbers, got {len(value)}", where, key)
    if not all(math.isfinite(v) if isinstance(v, float) else abs(v) < 1 << 1000 for v in value):
        raise ctx.error(f"'{key}' must be finite numbers, got {value!r}", where, key)
    return [float(Fraction(v).limit_denominator(10**9)) if isinstance(v, float) else float(v)
            for v in value]


__all__ = ["Scope", "SpecContext", "float_list", "hw", "int_pair", "int_value", "opt_int_pair",
           "resolve_ref"]
