"""Generic box CSVs: one row per box, columns found by name (or given by the caller).

Recognised out of the box: TensorFlow/raccoon style ``filename,width,height,class,xmin,ymin,
xmax,ymax`` (pixels), Open Images ``ImageID,LabelName,XMin,XMax,YMin,YMax`` (normalised), and
``x,y,w,h`` layouts. Numbers may use a decimal comma (``"0,358"``, a real Open Images export
quirk); a ``;`` delimiter is detected. Normalised coordinates are detected when every coordinate
is within [0, 1] and the file has no image-size columns (override with ``normalized=``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from anchorfit.data import progress as _progress
from anchorfit.data._parse import Utf8Lines, number
from anchorfit.data.csv_blocks import Block, parse_block
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.sizes import SizeTable
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular

ALIASES = {
    "image": ("image", "filename", "file_name", "file", "imageid", "image_id", "path", "img"),
    "class": ("class", "label", "labelname", "category", "class_name", "category_id", "name"),
    "x1": ("xmin", "x1", "left", "xtl"),
    "y1": ("ymin", "y1", "top", "ytl"),
    "x2": ("xmax", "x2", "right", "xbr"),
    "y2": ("ymax", "y2", "bottom", "ybr"),
    "x": ("x",),
    "y": ("y",),
    "w": ("w", "box_width", "bbox_width", "bw"),
    "h": ("h", "box_height", "bbox_height", "bh"),
    "image_width": ("width", "image_width", "img_width", "imagewidth"),
    "image_height": ("height", "image_height", "img_height", "imageheight"),
}


#: bytes of whole lines handed to the C parsers at a time (csv_blocks)
BLOCK = 1 << 22


def read_csv(path: str | Path, *, columns: dict[str, str] | None = None,
             normalized: bool | None = None, sizes: SizeTable | None = None) -> Boxes:
    """Read a box CSV. Plain blocks of lines are parsed in C (``csv_blocks``); from the first
    block that is not plain (quotes, blank lines, a decimal comma...) to the end of the file,
    rows are read one by one; both give the same rows and messages."""
    path = Path(path)
    check_regular(path, AnchorfitError)  # a device or FIFO would be read forever
    try:
        fh = Utf8Lines(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
    with fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise FormatError("empty CSV file", source=path, line=1) from None
        except csv.Error as exc:
            raise FormatError(f"malformed CSV: {exc}", source=path, line=reader.line_num) from None
        col = _map_columns([c.strip() for c in header], columns, path)
        rows = _Rows(path, header, col, sizes)
        meter = _progress.current()
        meter.start(f"reading {path.name}", _size(path), "B")
        try:
            taken = _blocks(path, rows, delimiter, meter) if reader.line_num == 1 else 2
            if taken is not None:  # the same reader goes on: its decoding is the reference's
                _read_rows(fh, reader, rows, taken, meter)
        finally:
            meter.finish()
    boxes = rows.b.build()
    if not len(boxes):
        raise FormatError("CSV file has a header but no rows", source=path, line=2)
    if normalized is None:
        normalized = not rows.has_img_size and rows.biggest <= 1.0
    if not normalized:
        return boxes
    if not np.isfinite(boxes.image_width).any():
        boxes.units = "normalized"
        return boxes
    iw, ih = boxes.image_width[boxes.image], boxes.image_height[boxes.image]
    known = np.isfinite(iw)
    boxes.x, boxes.w = (boxes.x * iw).astype(np.float32), (boxes.w * iw).astype(np.float32)
    boxes.y, boxes.h = (boxes.y * ih).astype(np.float32), (boxes.h * ih).astype(np.float32)
    if not known.all():
        boxes = boxes.select(known)
        boxes.skipped["no_image_size"] = int((~known).sum())
        boxes.notes.append(f"{int((~known).sum())} normalised boxes skipped: image size unknown")
    return boxes


class _Rows:
    """What one row means (image, class, box, the largest coordinate seen), row by row or a
    parsed block at a time; both store exactly the same rows."""

    def __init__(self, path: Path, header: list[str], col: dict[str, int],
                 sizes: SizeTable | None) -> None:
        self.path, self.header, self.col, self.sizes = path, header, col, sizes
        self.corner, self.has_img_size = "x2" in col, "image_width" in col
        self.b = BoxBuilder("csv", str(path))
        self.origin = self.b.file(str(path))
        self.biggest = 0.0

    def _image(self, name: str, iw: float, ih: float) -> int:
        if not self.has_img_size:
            iw, ih = (self.sizes.get(name) if self.sizes else None) or (float("nan"),) * 2
        return self.b.image(name, iw, ih)

    def _xywh(self, v: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        """x, y, w, h from a row's numbers (floats) or a block's columns (arrays), by role."""
        if self.corner:
            return v["x1"], v["y1"], v["x2"] - v["x1"], v["y2"] - v["y1"]
        return v["x"], v["y"], v["w"], v["h"]

    def add_row(self, row: list[str], line: int) -> None:
        header, col, path = self.header, self.col, self.path
        if len(row) < len(header):
            raise FormatError(f"expected {len(header)} fields, found {len(row)}",
                              source=path, line=line)
        v = {k: number(row[i], path, line, f"a number in column {header[i]!r}")
             for k, i in col.items() if k not in ("image", "class")}
        name = row[col["image"]].strip()
        x, y, w, h = self._xywh(v)
        self.biggest = max(self.biggest, abs(x), abs(y), abs(x + w), abs(y + h))
        cls = self.b.cls(row[col["class"]].strip()) if "class" in col else -1
        self.b.add(self._image(name, v.get("image_width", 0.0), v.get("image_height", 0.0)),
                   cls, x, y, w, h, origin=self.origin, line=line)

    def add_block(self, block: Block, first_line: int) -> None:
        v = block.numbers
        iw, ih = v.get("image_width"), v.get("image_height")
        first = block.image_first
        widths = iw[first].tolist() if iw is not None else [0.0] * len(first)
        heights = ih[first].tolist() if ih is not None else [0.0] * len(first)
        image = self._image
        images = np.array([image(name.strip(), w, h) for name, w, h
                           in zip(block.image_names, widths, heights)],
                          dtype=np.int32)[block.image_codes]
        if block.class_codes is not None:
            cls = np.array([self.b.cls(c.strip()) for c in block.class_names],
                           dtype=np.int32)[block.class_codes]
        else:
            cls = np.full(block.rows, -1, dtype=np.int32)
        with np.errstate(invalid="ignore"):  # inf - inf is NaN here as in add_row
            x, y, w, h = self._xywh(v)
            reach = np.abs(np.concatenate([x, y, x + w, y + h]))
        reach = reach[~np.isnan(reach)]  # NaN never wins Python's max() in add_row either
        if reach.size:
            self.biggest = max(self.biggest, float(reach.max()))
        lines = np.arange(first_line, first_line + block.rows, dtype=np.int32)
        self.b.add_columns(images, cls, x, y, w, h, origin=self.origin, line=lines)


def _blocks(path: Path, rows: _Rows, delimiter: str, meter: _progress.Meter) -> int | None:
    """Parse plain blocks from line 2 on; returns the line from which the row reader must add
    rows, or None when every row was read here."""
    try:
        fb = open(path, "rb")
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
    with fb:
        head = fb.readline()
        if b'"' in head or head.count(b"\r") != head.endswith(b"\r\n"):
            return 2  # the header's line is not a plain line: every row one by one
        line = 2
        meter.advance(len(head))
        while True:
            block = fb.read(BLOCK)
            if not block:
                return None
            if not block.endswith(b"\n"):
                block += fb.readline()
            if not fb.peek(1):  # the last block: blank lines at the end are skipped rows
                block = _without_blank_tail(block)
            parsed = parse_block(block, delimiter, len(rows.header), rows.col, rows.has_img_size)
            if parsed is None:
                return line
            rows.add_block(parsed, line)
            line += parsed.rows
            meter.advance(len(block))


def _without_blank_tail(block: bytes) -> bytes:
    """``block`` without the empty lines that end the file (the row reader skips them)."""
    end = len(block)
    while True:
        if block.endswith(b"\n\n", 0, end):
            end -= 1
        elif block.endswith(b"\n\r\n", 0, end):
            end -= 2
        else:
            return block[:end]


def _read_rows(fh: Utf8Lines, reader, rows: _Rows, first_line: int,
               meter: _progress.Meter) -> None:
    """Rows one by one to the end of the file, adding those from ``first_line`` on (the lines
    before were added a block at a time and are only passed over)."""
    told = max(fh.buffer.tell(), meter.done)  # the blocks reported the bytes they read
    try:
        for row in reader:
            if reader.line_num & 0xFFFF == 0:  # rows stream through; report bytes read
                now = fh.buffer.tell()
                meter.advance(max(0, now - told))
                told = max(told, now)
            if reader.line_num < first_line or not row or all(not c.strip() for c in row):
                continue
            rows.add_row(row, reader.line_num)
        meter.advance(max(0, fh.buffer.tell() - told))  # the last lines, up to the end
    except csv.Error as exc:
        raise FormatError(f"malformed CSV: {exc}", source=rows.path,
                          line=reader.line_num) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _map_columns(header: list[str], given: dict[str, str] | None, path: Path) -> dict[str, int]:
    lower = [h.lower() for h in header]
    col: dict[str, int] = {}
    for role, names in ALIASES.items():
        if given and role in given:
            if given[role] not in header:
                raise FormatError(f"column {given[role]!r} (for {role}) is not in the header "
                                  f"{','.join(header)}", source=path, line=1)
            col[role] = header.index(given[role])
            continue
        for n in names:
            if n in lower:
                col[role] = lower.index(n)
                break
    corner = all(r in col for r in ("x1", "y1", "x2", "y2"))
    xywh = all(r in col for r in ("x", "y", "w", "h"))
    if not corner and not xywh and all(r in col for r in ("x1", "y1", "w", "h")):
        col["x"], col["y"] = col.pop("x1"), col.pop("y1")
        xywh = True
    if "image" not in col or not (corner or xywh):
        raise FormatError("cannot find the image and box columns in the header "
                          f"{','.join(header)}; expected an image column and xmin,ymin,xmax,ymax "
                          "or x,y,w,h", source=path, line=1,
                          hint="map them with columns={'image': ..., 'x1': ...}")
    if corner:
        for r in ("x", "y", "w", "h"):
            col.pop(r, None)
    else:
        for r in ("x1", "y1", "x2", "y2"):
            col.pop(r, None)
    if ("image_width" in col) != ("image_height" in col):
        col.pop("image_width", None)
        col.pop("image_height", None)
    return col
