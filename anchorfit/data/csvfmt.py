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

import numpy as np

from anchorfit.data import progress as _progress
from anchorfit.data._parse import Utf8Lines, number
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


def read_csv(path: str | Path, *, columns: dict[str, str] | None = None,
             normalized: bool | None = None, sizes: SizeTable | None = None) -> Boxes:
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
        col = _map_columns([c.strip() for c in header], columns, path)
        corner, has_img_size = "x2" in col, "image_width" in col
        b = BoxBuilder("csv", str(path))
        origin = b.file(str(path))
        biggest = 0.0
        meter = _progress.current()
        meter.start(f"reading {path.name}", _size(path), "B")
        told = 0
        try:
            for row in reader:
                if reader.line_num & 0xFFFF == 0:  # rows stream through; report bytes read
                    now = fh.buffer.tell()
                    meter.advance(now - told)
                    told = now
                if not row or all(not c.strip() for c in row):
                    continue
                line = reader.line_num
                if len(row) < len(header):
                    raise FormatError(f"expected {len(header)} fields, found {len(row)}",
                                      source=path, line=line)
                v = {k: number(row[i], path, line, f"a number in column {header[i]!r}")
                     for k, i in col.items() if k not in ("image", "class")}
                name = row[col["image"]].strip()
                if has_img_size:
                    iw, ih = v["image_width"], v["image_height"]
                else:
                    iw, ih = (sizes.get(name) if sizes else None) or (float("nan"),) * 2
                if corner:
                    x, y, w, h = v["x1"], v["y1"], v["x2"] - v["x1"], v["y2"] - v["y1"]
                else:
                    x, y, w, h = v["x"], v["y"], v["w"], v["h"]
                biggest = max(biggest, abs(x), abs(y), abs(x + w), abs(y + h))
                cls = b.cls(row[col["class"]].strip()) if "class" in col else -1
                b.add(b.image(name, iw, ih), cls, x, y, w, h, origin=origin, line=line)
        except csv.Error as exc:
            raise FormatError(f"malformed CSV: {exc}", source=path, line=reader.line_num) from None
        finally:
            meter.finish()
    boxes = b.build()
    if not len(boxes):
        raise FormatError("CSV file has a header but no rows", source=path, line=2)
    if normalized is None:
        normalized = not has_img_size and biggest <= 1.0
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
