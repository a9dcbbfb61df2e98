"""Small wording helpers shared by every command's messages and figures.

One place for plurals ("1 box", "2 boxes"), thousands separators and short titles, so that
"1 boxes" cannot come back in one corner while fixed in another. Imports nothing from anchorfit.
"""

from __future__ import annotations

import math
from pathlib import PurePath

#: irregular plurals of the nouns anchorfit counts
_IRREGULAR = {"box": "boxes", "anchor box": "anchor boxes", "is": "are", "was": "were",
              "this": "these", "match": "matches", "sigma": "sigmas"}


def plural(n: float, noun: str, plural_form: str | None = None, *, sep: bool = True) -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is exactly 1:
    ``plural(1, "box") == "1 box"``, ``plural(39695, "box") == "39,695 boxes"``
    (``sep=False``: no thousands separator)."""
    if plural_form is None:
        plural_form = _IRREGULAR.get(noun, noun + "s")
    word = noun if n == 1 else plural_form
    return f"{thousands(n) if sep else _number(n)} {word}"


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def thousands(n: float) -> str:
    """An integer with thousands separators (39,695); other numbers as ``:g``."""
    return f"{int(n):,}" if float(n).is_integer() else f"{n:g}"


def round_sig(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits, but never below 0.01 px resolution
    for values of 1 and above (sizes in pixels: 12.3, 156, 1234)."""
    if value == 0 or not math.isfinite(value):
        return value
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0) if abs(value) >= 1 else digits - 1 - magnitude
    return round(value, decimals)


def short_title(name: object) -> str:
    """A short name for a figure title: the file name of a path (``/a/b/yolov3.yaml`` ->
    ``yolov3.yaml``), otherwise the text unchanged."""
    text = str(name)
    if "/" in text or "\\" in text:
        return PurePath(text).name or text
    return text
