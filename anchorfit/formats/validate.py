"""The value checks every detector reader shares (issue 12 item 1: one validation layer).

Readers parse text their own way (Darknet ``key=value``, YAML, prototxt, Python literals) but the
values they hand on must mean the same thing everywhere: a kernel size is a positive integer, an
anchor side a positive finite number, a mask an index into the anchors. Each check here raises a
``FormatError`` naming the file, line and key, so a bad value stops at the line that wrote it
instead of surfacing later as a traceback in the RF engine or as silent garbage in a plan.
``Where`` carries that location so call sites stay one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchorfit.errors import FormatError
from anchorfit.safeinput import MAX_MAP_SIDE, beyond_limit


@dataclass(frozen=True)
class Where:
    """File, line and key of a value, for messages (``prefix`` e.g. ``"[yolo] (layer 16): "``)."""

    source: str | Path | None
    line: int | None = None
    key: str | None = None
    prefix: str = ""

    def error(self, message: str, hint: str | None = None) -> FormatError:
        return FormatError(self.prefix + message, source=self.source, line=self.line,
                           key=self.key, hint=hint)


_INT_TEXT = re.compile(r"^[+-]?\d+$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(value: Any, where: Where, *, minimum: int | None = None) -> int:
    """An integer (a string of digits, an int, or an integral float such as YAML's ``3.0``);
    ``3.7``, ``1e9`` as text, NaN, inf, booleans and strings are errors, never truncated."""
    if isinstance(value, str):
        text = value.strip()
        if not _INT_TEXT.match(text):
            try:
                float(text)
            except ValueError:
                raise where.error(f"{value!r} is not a number") from None
            raise where.error(f"{value!r} is not an integer")
        if len(text) > 4000:  # past Python's int() digit limit; no real value has 10⁴ digits
            raise where.error(f"an integer of {len(text)} digits is not a size any network has")
        number = int(text)
    elif isinstance(value, bool) or not _is_number(value):
        raise where.error(f"{value!r} is not an integer")
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise where.error(f"{value!r} is not an integer")
        number = int(value)
    else:
        number = int(value)
    if minimum is not None and number < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise where.error(f"{number} must be {what}")
    return number


def positive_int(value: Any, where: Where) -> int:
    """A positive integer: kernel sizes, strides, dilations, channel counts, repeats."""
    return integer(value, where, minimum=1)


def finite(value: Any, where: Where) -> float:
    """A finite number (text such as ``"0.5"`` is parsed; ``nan``/``inf`` are errors)."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise where.error(f"{value!r} is not a number") from None
    elif _is_number(value):
        try:
            number = float(value)
        except OverflowError:  # an int past float range: not a size any network has
            raise where.error(f"{value!r} is not a finite number") from None
    else:
        raise where.error(f"{value!r} is not a number")
    if not math.isfinite(number):
        raise where.error(f"{value!r} is not a finite number")
    return number


def positive_finite(value: Any, where: Where) -> float:
    """A positive finite number: anchor sides, sizes, scales, ratios, steps."""
    number = finite(value, where)
    if number <= 0:
        raise where.error(f"{value!r} must be positive")
    return number


def non_negative_finite(value: Any, where: Where) -> float:
    """A finite number >= 0 (offsets, thresholds)."""
    number = finite(value, where)
    if number < 0:
        raise where.error(f"{value!r} must not be negative")
    return number


def positive_list(values: Any, where: Where, *, what: str = "numbers") -> list[float]:
    """A non-empty list of positive finite numbers (anchor sizes, aspect ratios)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise where.error(f"expected a list of positive {what}, got {values!r}")
    out = [positive_finite(v, where) for v in values]
    if not out:
        raise where.error(f"expected at least one of the positive {what}, got an empty list")
    return out


def index_in_range(value: Any, count: int, where: Where, *, what: str = "items") -> int:
    """An index into ``count`` things (a mask into the anchors, an out_index into the stages);
    negative indices are refused: configs number from 0 and Python's wrap-around is a typo."""
    index = integer(value, where)
    if not 0 <= index < count:
        raise where.error(f"index {index} is outside the {count} {what} (0..{count - 1})")
    return index


def ordered(low: float, high: float, where: Where, low_name: str, high_name: str) -> None:
    """``high`` must not be below ``low`` (max_size below min_size)."""
    if high < low:
        raise where.error(f"{high_name} {high:g} is below {low_name} {low:g}")


def one_of(value: Any, choices: Sequence[str], where: Where) -> str:
    """A name from a fixed list (an upsampling mode): an unknown name is an error, not the
    nearest known one."""
    text = str(value)
    if text not in choices:
        raise where.error(f"{value!r} is not one of {', '.join(choices)}")
    return text


def input_side(value: Any, where: Where) -> int:
    """One side of a network input (Darknet ``width=``, a spec's ``input``, Caffe's ``dim``):
    a positive integer up to ``MAX_MAP_SIDE``; the RF engine keeps arrays per cell, so a side
    of 10⁸ would take gigabytes and seconds where no real network is above a few thousand."""
    side = positive_int(value, where)
    if side > MAX_MAP_SIDE:
        raise where.error(beyond_limit("input size", side, MAX_MAP_SIDE))
    return side


__all__ = ["Where", "finite", "index_in_range", "input_side", "integer", "non_negative_finite",
           "one_of", "ordered", "positive_finite", "positive_int", "positive_list"]
