"""CVAT for images 1.1 XML: ``<image name width height>`` with ``<box label xtl ytl xbr ybr>``.

``read_cvat`` parses the whole document into a tree: simple, and the reference. ``cvat_stream``
reads the same file in bounded memory with the very ``add_image`` below, so both give the same
rows and messages.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from anchorfit.data._parse import number, parse_xml
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.errors import FormatError

#: where the task's labels sit under the root; they name the classes, in order, before any box
LABEL_PATH = ("meta", "task", "labels", "label")


def read_cvat(path: str | Path) -> Boxes:
    path = Path(path)
    root = parse_xml(path)
    check_root(root.tag, path)
    b = BoxBuilder("cvat", str(path))
    origin = b.file(str(path))
    for label in root.iterfind("/".join(LABEL_PATH)):
        add_label(b, label)
    for image in root.iter("image"):
        add_image(b, image, path, origin)
    return b.build()


def check_root(tag: str, path: Path) -> None:
    if tag != "annotations":
        raise FormatError(f"expected a CVAT <annotations> root, found <{tag}>", source=path)


def add_label(b: BoxBuilder, label: ET.Element) -> None:
    b.cls((label.findtext("name") or "").strip())


def add_image(b: BoxBuilder, image: ET.Element, path: Path, origin: int) -> None:
    """One ``<image>`` and every ``<box>`` under it."""
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
