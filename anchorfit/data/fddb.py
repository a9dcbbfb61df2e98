"""FDDB ellipse lists: image path, face count, then ``major minor angle cx cy 1`` per face.

Each ellipse (semi-axes a, b, angle θ from the x axis, radians) becomes its exact axis-aligned
bounding box: half-width sqrt((a cosθ)² + (b sinθ)²), half-height sqrt((a sinθ)² + (b cosθ)²).
(Some tools use 2b × 2a instead, which ignores the tilt.)
"""

from __future__ import annotations

import math
from pathlib import Path

from anchorfit.data._parse import integer, number, read_text
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.sizes import SizeTable
from anchorfit.errors import FormatError


def ellipse_box(a: float, b: float, theta: float, cx: float, cy: float
                ) -> tuple[float, float, float, float]:
    """(x, y, w, h) of the bounding box of an ellipse; NaN when a value is not finite (math.cos
    raises on inf), so validation counts the row as ``nan_size`` like every other reader's."""
    if not all(math.isfinite(v) for v in (a, b, theta, cx, cy)):
        return (math.nan,) * 4
    hw = math.hypot(a * math.cos(theta), b * math.sin(theta))
    hh = math.hypot(a * math.sin(theta), b * math.cos(theta))
    return cx - hw, cy - hh, 2 * hw, 2 * hh


def read_fddb(path: str | Path, *, sizes: SizeTable | None = None) -> Boxes:
    path = Path(path)
    lines = read_text(path).splitlines()
    b = BoxBuilder("fddb", str(path))
    origin = b.file(str(path))
    cls = b.cls("face")
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        i += 1
        if not name:
            continue
        if i >= len(lines):
            raise FormatError("file ends early: expected a face count", source=path, line=i + 1)
        count = integer(lines[i], path, i + 1, "a face count")
        if count < 0:
            raise FormatError(f"expected a face count of 0 or more, found {count}", source=path,
                              line=i + 1)
        i += 1
        wh = sizes.get(name) if sizes else None
        img = b.image(name, *(wh or (float("nan"), float("nan"))))
        for _ in range(count):
            if i >= len(lines):
                raise FormatError("file ends early: expected an ellipse line", source=path,
                                  line=i + 1)
            parts = lines[i].split()
            if len(parts) < 5:
                raise FormatError(f"expected 'major minor angle cx cy 1', found {len(parts)} "
                                  "fields", source=path, line=i + 1)
            a, bb, theta, cx, cy = (number(p, path, i + 1) for p in parts[:5])
            b.add(img, cls, *ellipse_box(a, bb, theta, cx, cy), origin=origin, line=i + 1)
            i += 1
    return b.build()
