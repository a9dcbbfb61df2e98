"""Pascal VOC XML: one file per image (a folder of them, or a single file).

Widths are ``xmax - xmin`` (the convention of COCO/CVAT exports of VOC and of mmdet), not the
1-based inclusive ``+ 1``; with it the VOC, COCO, CVAT, YOLO and Open Images copies of the same
boxes agree. ``difficult`` is kept as a flag: whether to train on it is the detector's business.
"""

from __future__ import annotations

from pathlib import Path

from anchorfit.data._parse import child_number, list_files, parse_xml
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.errors import FormatError


def read_voc(path: str | Path) -> Boxes:
    path = Path(path)
    files = [path] if path.is_file() else list_files(path, (".xml",))
    b = BoxBuilder("voc", str(path))
    for f in files:
        _read_one(f, b)
    return b.build()


def _read_one(path: Path, b: BoxBuilder) -> None:
    root = parse_xml(path)
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
