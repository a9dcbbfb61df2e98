"""Image-size tables: ``image,width,height`` CSVs (optionally with a ``split`` column) and the
``id height width`` text files of Caffe-SSD (``test_name_size.txt``).

Lookups try the full name, then ``parent/stem``, then the bare stem, because label files, CSVs and
annotation files spell the same image differently (``0--Parade/x.jpg``, ``train2017/x``, ``x``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

from anchorfit.data._parse import integer, number, read_text
from anchorfit.errors import FormatError


class SizeTable:
    """Maps image names to (width, height) with forgiving name matching."""

    def __init__(self, sizes: dict[str, tuple[float, float]], source: str = "<given>") -> None:
        self.source = source
        self._exact: dict[str, tuple[float, float]] = {}
        self._parent_stem: dict[str, tuple[float, float]] = {}
        self._stem: dict[str, tuple[float, float] | None] = {}
        for name, wh in sizes.items():
            self.add(name, wh)

    def add(self, name: str, wh: tuple[float, float]) -> None:
        p = PurePosixPath(name.replace("\\", "/"))
        self._exact[str(p)] = wh
        stem_key = str(p.with_suffix("")) if p.suffix.lower() in _IMG_SUFFIXES else str(p)
        self._exact[stem_key] = wh
        stem = PurePosixPath(stem_key).name
        self._parent_stem[f"{p.parent.name}/{stem}"] = wh
        # an ambiguous stem (two splits, same stem) must not be guessed
        self._stem[stem] = None if stem in self._stem and self._stem[stem] != wh else wh

    def __len__(self) -> int:
        return len([v for v in self._stem.values() if v])

    def get(self, name: str) -> tuple[float, float] | None:
        p = PurePosixPath(name.replace("\\", "/"))
        for key in (str(p), str(p.with_suffix("")) if p.suffix.lower() in _IMG_SUFFIXES else None):
            if key and key in self._exact:
                return self._exact[key]
        stem = p.stem if p.suffix.lower() in _IMG_SUFFIXES else p.name
        return self._parent_stem.get(f"{p.parent.name}/{stem}") or self._stem.get(stem)


_IMG_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".txt", ".xml"}


def load_sizes(path: str | Path) -> SizeTable:
    """Read an image-size CSV (image,width,height [,split]) or an ``id height width`` txt."""
    path = Path(path)
    text = read_text(path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise FormatError("empty image-size file", source=path)
    table = SizeTable({}, str(path))
    if "," not in lines[0]:
        # Caffe-SSD name_size file: "id height width" per line
        for i, ln in enumerate(text.splitlines(), 1):
            parts = ln.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise FormatError(f"expected 'image height width', found {len(parts)} fields",
                                  source=path, line=i)
            h = integer(parts[1], path, i, "an integer height")
            w = integer(parts[2], path, i, "an integer width")
            table.add(parts[0], (float(w), float(h)))
        return table
    reader = csv.reader(io.StringIO(text))
    header = [c.strip().lower() for c in next(reader)]
    name_col = _find(header, ("image", "filename", "file_name", "file", "name", "imageid",
                              "image_id"))
    w_col = _find(header, ("width", "w", "image_width"))
    h_col = _find(header, ("height", "h", "image_height"))
    if None in (name_col, w_col, h_col):
        raise FormatError("expected a header with image, width and height columns, found "
                          + ",".join(header), source=path, line=1)
    split_col = _find(header, ("split", "subset", "folder"))
    for i, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) != len(header):
            raise FormatError(f"expected {len(header)} fields, found {len(row)}", source=path,
                              line=i)
        name = row[name_col].strip()
        if split_col is not None and row[split_col].strip():
            name = f"{row[split_col].strip()}/{name}"
        table.add(name, (number(row[w_col], path, i, "a width"),
                         number(row[h_col], path, i, "a height")))
    return table


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    for n in names:
        if n in header:
            return header.index(n)
    return None
