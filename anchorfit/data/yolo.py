"""YOLO/Darknet label folders: one ``.txt`` per image, ``class cx cy w h`` normalised to [0, 1].

The labels alone cannot give pixels. Image sizes come, in this order, from a fixed size given by
the caller, a size table (``--image-sizes``), or the image's own PNG/JPEG header found next to the
label (same folder, or ``labels`` → ``images`` like YOLOv5). Boxes of images whose size stays
unknown are counted as ``no_image_size``; if *no* size is known, the boxes stay normalised, which
only the stretch policy can use (that is what Darknet's calc_anchors does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anchorfit.data._parse import integer, list_files, number, read_text
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.imagesize import image_size
from anchorfit.data.sizes import SizeTable
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import safe_load

MAX_CLASS_ID = 1 << 31      # class ids are stored as int32; negative ids name no class
LIST_FILES = {"train.txt", "val.txt", "valid.txt", "test.txt", "classes.txt", "labels.txt"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


def read_yolo(path: str | Path, *, sizes: SizeTable | None = None,
              image_size_wh: tuple[float, float] | None = None) -> Boxes:
    path = Path(path)
    if path.is_file():
        files, root = [path], path.parent
    else:
        files = [f for f in list_files(path, (".txt",)) if f.name not in LIST_FILES]
        root = path
    b = BoxBuilder("yolo", str(path))
    b.set_classes(class_names(root))
    images = []
    for f in files:
        wh = image_size_wh or (sizes.get(str(f.with_suffix(""))) if sizes else None) \
            or _header_size(f)
        name = str(f.relative_to(root).with_suffix("")) if f != path else f.stem
        images.append(LabelledImage(name, wh, f, parse_labels(f)))
    return pack_labels(b, images, "no image file next to the label and no --image-sizes entry")


@dataclass
class LabelledImage:
    """One image of a YOLO-style dataset: its name, size if known, label file and parsed rows."""

    name: str
    wh: tuple[float, float] | None
    label: Path | None                       # None: an image without a label file (background)
    rows: list[tuple] = field(default_factory=list)


def pack_labels(b: BoxBuilder, images: list[LabelledImage], unknown_why: str) -> Boxes:
    """Normalised label rows → a Boxes table, in pixels when any image size is known.

    Shared by the YOLO folder reader and the Ultralytics data-yaml reader so both count the same
    drops the same way: boxes of images of unknown size are skipped as ``no_image_size`` (with
    ``unknown_why`` in the note); with no size at all the boxes stay normalised.
    """
    placed = []
    any_known = False
    for im in images:
        any_known |= im.wh is not None
        img = b.image(im.name, *(im.wh if im.wh else (float("nan"), float("nan"))))
        placed.append((img, b.file(str(im.label)) if im.label else 0, im.rows))
    units = "px" if any_known else "normalized"
    for img, origin, rows in placed:
        iw, ih = b._iw[img], b._ih[img]
        if units == "px" and iw != iw:  # NaN: this image's size is unknown
            if rows:   # an empty label file skips nothing (the streaming reader agrees)
                b.skip("no_image_size", len(rows))
            continue
        sx, sy = (iw, ih) if units == "px" else (1.0, 1.0)
        for line, cls, cx, cy, w, h in rows:
            b.add(img, b.cls(str(cls)) if cls >= len(b.classes) else cls,
                  (cx - w / 2) * sx, (cy - h / 2) * sy, w * sx, h * sy,
                  origin=origin, line=line)
    if b.skipped.get("no_image_size"):
        b.notes.append(f"{b.skipped['no_image_size']} boxes skipped: their image's size is "
                       f"unknown ({unknown_why})")
    return b.build(units=units)


def parse_labels(path: Path, pose_fields: int | None = None) -> list[tuple]:
    """(line, class, cx, cy, w, h) rows of one label file; segments become their bounding box.

    ``pose_fields``: rows with exactly this many fields are pose labels (box + keypoints, as an
    Ultralytics ``kpt_shape`` says); their box is the first five fields.
    """
    return parse_label_text(read_text(path), path, pose_fields)


def parse_label_text(content: str, path: Path, pose_fields: int | None = None) -> list[tuple]:
    """``parse_labels`` on text already read (the folder stream reads files in threads)."""
    rows = []
    for i, text in enumerate(content.splitlines(), 1):
        parts = text.split()
        if not parts:
            continue
        if pose_fields and len(parts) == pose_fields:
            parts = parts[:5]
        cls = integer(parts[0], path, i, "an integer class id")
        if not 0 <= cls < MAX_CLASS_ID:
            raise FormatError(f"expected a class id from 0 to {MAX_CLASS_ID - 1}, found "
                              f"{parts[0]!r}", source=path, line=i)
        if len(parts) == 5:
            cx, cy, w, h = (number(p, path, i) for p in parts[1:])
        elif len(parts) >= 7 and len(parts) % 2 == 1:
            # YOLOv5 segment labels: class x1 y1 x2 y2 ... → the polygon's bounding box
            xs = [number(p, path, i) for p in parts[1::2]]
            ys = [number(p, path, i) for p in parts[2::2]]
            cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
            w, h = max(xs) - min(xs), max(ys) - min(ys)
        else:
            raise FormatError(f"expected 'class cx cy w h' (5 fields), found {len(parts)}",
                              source=path, line=i)
        rows.append((i, cls, cx, cy, w, h))
    return rows


def _header_size(label: Path) -> tuple[float, float] | None:
    candidates = [label.parent]
    parts = list(label.parent.parts)
    if "labels" in parts:
        j = len(parts) - 1 - parts[::-1].index("labels")
        candidates.append(Path(*parts[:j], "images", *parts[j + 1:]))
    for folder in candidates:
        for suffix in IMAGE_SUFFIXES:
            img = folder / (label.stem + suffix)
            if img.is_file():
                size = image_size(img)
                if size:
                    return float(size[0]), float(size[1])
    return None


def class_names(root: Path) -> list[str]:
    """Class names from obj.names / classes.txt / *.names or a data yaml near the labels."""
    for folder in (root, root.parent, root.parent.parent):
        for name in ("obj.names", "classes.txt", "classes.names"):
            if (folder / name).is_file():
                return [ln.strip() for ln in read_text(folder / name).splitlines() if ln.strip()]
        for f in sorted(folder.glob("*.names")):
            return [ln.strip() for ln in read_text(f).splitlines() if ln.strip()]
        for f in sorted(folder.glob("*.yaml")):
            try:
                names = (safe_load(read_text(f), f) or {}).get("names")
            except (AnchorfitError, AttributeError):
                continue
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
    return []
