"""WIDER FACE ``wider_face_*_bbx_gt.txt``: image path, box count, then one line per box
``x y w h blur expression illumination invalid occlusion pose``.

Quirks handled (SOURCES.md W1/W2): an image with count ``0`` is followed by one all-zero
placeholder line, which is not a box; in the val file some images keep count ``1`` with a
``0 0 0 0`` box, which is read as a (zero-size) box so validation can report it. The ``invalid``
attribute is kept as ``flagged``.
"""

from __future__ import annotations

from pathlib import Path

from anchorfit.data._parse import Utf8Lines, integer, number
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.sizes import SizeTable
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular


def read_wider(path: str | Path, *, sizes: SizeTable | None = None) -> Boxes:
    path = Path(path)
    b = BoxBuilder("wider", str(path))
    origin = b.file(str(path))
    cls = b.cls("face")
    check_regular(path, AnchorfitError)  # a device or FIFO would be read forever
    try:
        fh = Utf8Lines(path)
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
    with fh:
        lineno = 0

        def next_line(what: str) -> str:
            nonlocal lineno
            text = fh.readline()
            lineno += 1
            if not text:
                raise FormatError(f"file ends early: expected {what}", source=path, line=lineno)
            return text

        while True:
            name = fh.readline()
            lineno += 1
            if not name:
                break
            name = name.strip()
            if not name:
                continue
            if not name.lower().endswith((".jpg", ".jpeg", ".png")):
                raise FormatError(f"expected an image path, found {name!r}", source=path,
                                  line=lineno)
            count = integer(next_line("a box count"), path, lineno, "a box count")
            if count < 0:
                raise FormatError(f"expected a box count of 0 or more, found {count}",
                                  source=path, line=lineno)
            wh = sizes.get(name) if sizes else None
            img = b.image(name, *(wh or (float("nan"), float("nan"))))
            for _ in range(max(count, 1)):
                parts = next_line("a box line 'x y w h ...'").split()
                if len(parts) < 4:
                    raise FormatError(f"expected 'x y w h' and 6 attributes, found "
                                      f"{len(parts)} fields", source=path, line=lineno)
                if count == 0:
                    continue  # placeholder line of an image without faces
                x, y, w, h = (number(p, path, lineno) for p in parts[:4])
                invalid = len(parts) >= 8 and parts[7] == "1"
                b.add(img, cls, x, y, w, h, origin=origin, line=lineno, flagged=invalid)
    return b.build()
