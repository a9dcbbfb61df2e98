"""CVAT for images 1.1 XML: ``<image name width height>`` with ``<box label xtl ytl xbr ybr>``."""

from __future__ import annotations

from pathlib import Path

from anchorfit.data._parse import number, parse_xml
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.errors import FormatError


def read_cvat(path: str | Path) -> Boxes:
    path = Path(path)
    root = parse_xml(path)
    if root.tag != "annotations":
        raise FormatError(f"expected a CVAT <annotations> root, found <{root.tag}>", source=path)
    b = BoxBuilder("cvat", str(path))
    origin = b.file(str(path))
    for label in root.iterfind("meta/task/labels/label"):
        b.cls((label.findtext("name") or "").strip())
    for image in root.iter("image"):
        name = image.get("name")
        if name is None:
            raise FormatError("<image> without a name attribute", source=path, key="image")
        img = b.image(name, *(number(image.get(a, "nan"), path, None, f"a number in {a}=")
                              for a in ("width", "height")))
        for box in image.iter("box"):
            try:
                x1, y1, x2, y2 = (number(box.attrib[a], path, None, f"a number in {a}=")
                                  for a in ("xtl", "ytl", "xbr", "ybr"))
            except KeyError as exc:
                raise FormatError(f"<box> without {exc.args[0]}=", source=path,
                                  key=f"image {name}") from None
            b.add(img, b.cls(box.get("label")), x1, y1, x2 - x1, y2 - y1, origin=origin)
    return b.build()
