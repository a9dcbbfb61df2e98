"""One entry point for every annotation format, with format detection from the path.

Detection looks at the suffix and, where a suffix is shared (``.txt``, ``.xml``), at the first
lines or the root element, never at the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorfit.data.boxes import Boxes
from anchorfit.data.sizes import SizeTable, load_sizes
from anchorfit.errors import AnchorfitError
from anchorfit.safeinput import check_regular

FORMATS = ("coco", "voc", "yolo", "wider", "fddb", "csv", "cvat", "ultralytics")


def detect_format(path: str | Path) -> str:
    """Guess the annotation format of a file or folder (see FORMATS)."""
    path = Path(path)
    if not path.exists():
        raise AnchorfitError("no such file or folder", source=path)
    if path.is_dir():
        try:
            names = [p.suffix.lower() for p in path.rglob("*") if p.is_file()]
        except OSError as exc:
            raise AnchorfitError(f"cannot list folder: {exc.strerror or exc}",
                                 source=path) from None
        if names.count(".xml") > 0 and names.count(".xml") >= names.count(".txt"):
            return "voc"
        if ".txt" in names:
            return "yolo"
        raise AnchorfitError("cannot tell the annotation format of this folder: it holds no "
                             ".xml (Pascal VOC) or .txt (YOLO) files", source=path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "coco"
    if suffix == ".csv":
        return "csv"
    if suffix in (".yaml", ".yml"):
        from anchorfit.data.ultralytics import is_data_yaml

        if is_data_yaml(path):
            return "ultralytics"
        raise AnchorfitError("this yaml is not an Ultralytics data yaml (it has no train or "
                             "val key)", source=path,
                             hint="pass a data yaml, or an annotation file or folder")
    head = _head(path, 4096)
    if suffix == ".xml":
        return "cvat" if "<annotations" in head else "voc"
    if suffix == ".txt":
        lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
        if len(lines) >= 3 and lines[1].isdigit():
            if lines[0].lower().endswith((".jpg", ".jpeg", ".png")):
                return "wider"
            if len(lines[2].split()) == 6:
                return "fddb"
        return "yolo"
    raise AnchorfitError(f"cannot tell the annotation format from the suffix {suffix!r}",
                         source=path, hint="give --from " + "|".join(FORMATS))


def _head(path: Path, n: int) -> str:
    check_regular(path, AnchorfitError)  # opening a FIFO would wait for a writer forever
    try:
        with open(path, "rb") as fh:
            return fh.read(n).decode("utf-8", errors="replace")
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None


def read_annotations(path: str | Path, fmt: str | None = None, *,
                     image_sizes: str | Path | SizeTable | dict | None = None,
                     **options: Any) -> Boxes:
    """Read boxes in any supported format (auto-detected when ``fmt`` is None).

    ``image_sizes``: a size CSV/txt path, a SizeTable or {name: (w, h)}; used by formats that do
    not carry sizes (YOLO, WIDER, FDDB, Open Images CSV). Extra options go to the reader
    (``include_crowd`` for COCO, ``columns``/``normalized`` for CSV, ``image_size_wh`` for YOLO,
    ``split`` for an Ultralytics data yaml).
    """
    from anchorfit.data.coco_stream import read_coco_stream
    from anchorfit.data.csvfmt import read_csv
    from anchorfit.data.cvat_stream import read_cvat_stream
    from anchorfit.data.fddb import read_fddb
    from anchorfit.data.ultralytics import read_ultralytics
    from anchorfit.data.voc import read_voc
    from anchorfit.data.wider import read_wider
    from anchorfit.data.yolo_stream import read_yolo_stream

    path = Path(path)
    if not path.exists():
        raise AnchorfitError("no such file or folder", source=path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise AnchorfitError(f"unknown annotation format {fmt!r}; expected one of "
                             + ", ".join(FORMATS), key="format")
    split = options.pop("split", None)
    if split and fmt != "ultralytics":
        raise AnchorfitError(f"--split {split} applies to Ultralytics data yamls only, not to "
                             f"{fmt} annotations", key="--split")
    sizes = _size_table(image_sizes)
    if fmt == "ultralytics":
        return read_ultralytics(path, split=split, sizes=sizes, **options)
    if fmt == "coco":
        return read_coco_stream(path, **options)
    if fmt == "voc":
        return read_voc(path)
    if fmt == "cvat":
        return read_cvat_stream(path)
    if fmt == "yolo":
        return read_yolo_stream(path, sizes=sizes, **options)
    if fmt == "wider":
        return read_wider(path, sizes=sizes)
    if fmt == "fddb":
        return read_fddb(path, sizes=sizes)
    return read_csv(path, sizes=sizes, **options)


def _size_table(image_sizes: str | Path | SizeTable | dict | None) -> SizeTable | None:
    if image_sizes is None or isinstance(image_sizes, SizeTable):
        return image_sizes
    if isinstance(image_sizes, dict):
        return SizeTable(image_sizes)
    return load_sizes(image_sizes)
