"""COCO instances json (``images``, ``annotations``, ``categories``).

``bbox`` is ``[x, y, w, h]`` in pixels. ``iscrowd`` regions are skipped by default, as COCO
training pipelines do (mmdet, detectron2 ignore them as positives), and the count is reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anchorfit.data._parse import describe, json_number, read_text
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.errors import FormatError


def read_coco(path: str | Path, *, include_crowd: bool = False) -> Boxes:
    path = Path(path)
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"malformed JSON: {exc.msg}", source=path, line=exc.lineno) from None
    except RecursionError:  # the C decoder recurses per nesting level ('[' * 100000)
        raise FormatError("JSON nested too deeply (no real annotation file comes near it)",
                          source=path) from None
    except ValueError as exc:  # an integer past Python's 4300-digit conversion limit
        raise FormatError(f"malformed JSON: {exc}", source=path) from None
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise FormatError("not a COCO instances file: expected a JSON object with 'images' and "
                          "'annotations'", source=path, key="annotations")
    for name in ("images", "annotations"):
        if not isinstance(data[name], list):
            raise FormatError(f"expected a list, found {describe(data[name])}", source=path,
                              key=name)
    b = BoxBuilder("coco", str(path))
    origin = b.file(str(path))
    cats = add_categories(b, data.get("categories"), path)
    images: dict = {}
    for i, img in enumerate(data["images"]):
        add_image(b, images, img, i, path)
    for i, ann in enumerate(data["annotations"]):
        row = annotation_row(ann, i, images, path, include_crowd)
        if row is None:
            b.skip("iscrowd")
            continue
        x, y, w, h, img, cid = row
        cls = cats.get(cid)
        if cls is None:
            cls = b.cls(str(cid))
        b.add(img, cls, x, y, w, h, origin=origin)
    shared_name_note(b, images)
    crowd_note(b)
    return b.build()


# One function per record kind, shared with the streaming reader (coco_stream.py), so both give
# the same rows and the same message for the same bad record.

def add_categories(b: BoxBuilder, categories: Any, path: Path) -> dict:
    """{category id: class index}, classes named and ordered as in ``categories``."""
    if categories is not None and not isinstance(categories, list):
        raise FormatError(f"expected a list, found {describe(categories)}", source=path,
                          key="categories")
    cats = {}
    for i, cat in enumerate(categories or []):
        try:
            cats[cat["id"]] = b.cls(str(cat["name"]))
        except (KeyError, TypeError):
            raise FormatError("category without 'id' and 'name'", source=path,
                              key=f"categories[{i}]") from None
    return cats


def add_image(b: BoxBuilder, images: dict, img: Any, i: int, path: Path) -> None:
    """Register ``images[i]`` (its id maps to an image index of ``b``). A repeated id is an
    error: merging two images' boxes silently would change the statistics."""
    key = f"images[{i}]"
    if not isinstance(img, dict) or "id" not in img:
        raise FormatError("image without 'id'", source=path, key=key)
    image_id = check_id(img["id"], path, f"{key}.id")
    if image_id in images:
        raise FormatError(f"image id {describe(image_id)} appears twice in 'images'",
                          source=path, key=f"{key}.id")
    width, height = (float("nan") if img.get(side) is None
                     else json_number(img[side], path, f"{key}.{side}", f"a number for {side}")
                     for side in ("width", "height"))
    images[image_id] = b.image(str(img.get("file_name", image_id)), width, height)


def check_id(value: Any, path: Path, key: str) -> Any:
    """An image/category id: a JSON integer or string (COCO writes integers, some exporters
    file names) or null. Lists, objects, floats and booleans are refused, not matched."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
        raise FormatError(f"expected an integer or string id, found {describe(value)}",
                          source=path, key=key)
    return value


def annotation_row(ann: Any, i: int, images: dict, path: Path, include_crowd: bool
                   ) -> tuple[float, float, float, float, int, Any] | None:
    """(x, y, w, h, image index, category id) of ``annotations[i]``; None for a skipped crowd."""
    key = f"annotations[{i}]"
    if not isinstance(ann, dict):
        raise FormatError("expected an object", source=path, key=key)
    crowd = ann.get("iscrowd", 0)
    if crowd is not None and (type(crowd) not in (int, bool) or crowd not in (0, 1)):
        raise FormatError(f"expected 0 or 1 for iscrowd, found {describe(crowd)}", source=path,
                          key=f"{key}.iscrowd")
    if crowd and not include_crowd:
        return None
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise FormatError(f"expected 'bbox' as [x, y, w, h], found {describe(bbox)}",
                          source=path, key=f"{key}.bbox")
    x, y, w, h = (float("nan") if v is None else
                  json_number(v, path, f"{key}.bbox[{j}]", "a number in bbox")
                  for j, v in enumerate(bbox))
    image_id = check_id(ann.get("image_id"), path, f"{key}.image_id")
    img = images.get(image_id)
    if img is None:
        raise FormatError(f"image_id {describe(image_id)} is not in 'images'",
                          source=path, key=f"{key}.image_id")
    return x, y, w, h, img, check_id(ann.get("category_id"), path, f"{key}.category_id")


def shared_name_note(b: BoxBuilder, images: dict) -> None:
    """COCO links boxes to images by id, the Boxes table by file name: records with different ids
    and the same ``file_name`` (one picture listed twice, or two folders' ``0001.jpg``) become one
    image, whose box count and size are then both records'. Say so rather than merge silently."""
    merged = len(images) - len(set(images.values()))
    if merged:
        verb = "shares" if merged == 1 else "share"
        b.notes.append(f"{merged} image record{'s' * (merged > 1)} {verb} a file_name with a "
                       "record of another id: their boxes are counted as one image's")


def crowd_note(b: BoxBuilder) -> None:
    if b.skipped.get("iscrowd"):
        b.notes.append(f"skipped {b.skipped['iscrowd']} iscrowd annotations "
                       "(include_crowd=True keeps them)")
