"""Pascal VOC XML: one file per image (a folder of them, or a single file).

Widths are ``xmax - xmin`` (the convention of COCO/CVAT exports of VOC and of mmdet), not the
1-based inclusive ``+ 1``; with it the VOC, COCO, CVAT, YOLO and Open Images copies of the same
boxes agree. ``difficult`` is kept as a flag: whether to train on it is the detector's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from anchorfit.data import progress as _progress
from anchorfit.data._parse import child_number, list_files, parse_xml, read_text
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.errors import AnchorfitError, FormatError


def read_voc(path: str | Path) -> Boxes:
    path = Path(path)
    files = [path] if path.is_file() else list_files(path, (".xml",))
    b = BoxBuilder("voc", str(path))
    meter = _progress.current()
    meter.start(f"reading {path.name}", len(files), "files")
    try:
        for f, text in zip(files, _texts(files)):
            _read_one(f, b, text)
            meter.advance(1)
    finally:
        meter.finish()
    return b.build()


def _texts(files: list[Path], batch: int = 256) -> Iterator[str | AnchorfitError]:
    """The files' texts in order, read by threads a few batches ahead (an unreadable file
    yields its error, raised in turn by parse_xml's caller)."""
    def run(chunk: list[Path]) -> list[str | AnchorfitError]:
        out: list[str | AnchorfitError] = []
        for f in chunk:
            try:
                out.append(read_text(f))
            except AnchorfitError as exc:
                out.append(exc)
        return out

    if len(files) < 2 * batch:
        yield from run(files)
        return
    with ThreadPoolExecutor(4) as pool:
        pending: list = []
        for start in range(0, len(files), batch):
            pending.append(pool.submit(run, files[start:start + batch]))
            if len(pending) > 8:
                yield from pending.pop(0).result()
        for future in pending:
            yield from future.result()


def _read_one(path: Path, b: BoxBuilder, text: str | AnchorfitError | None = None) -> None:
    if isinstance(text, AnchorfitError):
        raise text
    root = parse_xml(path, text)
    if root.tag != "annotation":
        raise FormatError(f"expected a Pascal VOC <annotation> root, found <{root.tag}>",
                          source=path)
    name = (root.findtext("filename") or path.stem).strip()
    size = root.find("size")
    w = h = float("nan")
    if size is not None:
        w = child_number(size, "width", path, "<size>")
        h = child_number(size, "height", path, "<size>")
    img = b.image(name, w, h)
    origin = b.file(str(path))
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            raise FormatError("<object> without <bndbox>", source=path, key="bndbox")
        x1, y1, x2, y2 = (child_number(box, t, path, "<bndbox>")
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        b.add(img, b.cls((obj.findtext("name") or "").strip()), x1, y1, x2 - x1, y2 - y1,
              origin=origin, difficult=difficult)
