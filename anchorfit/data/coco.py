"""COCO instances json (``images``, ``annotations``, ``categories``).

``bbox`` is ``[x, y, w, h]`` in pixels. ``iscrowd`` regions are skipped by default, as COCO
training pipelines do (mmdet, detectron2 ignore them as positives), and the count is reported.
"""

from __future__ import annotations

import json
from pathlib import Path

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
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit conversion limit
        raise FormatError(f"malformed JSON: {exc}", source=path) from None
    except RecursionError:
        raise FormatError("malformed JSON: nested too deeply", source=path) from None
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise FormatError("not a COCO instances file: expected a JSON object with 'images' and "
                          "'annotations'", source=path, key="annotations")
    for name in ("images", "annotations", "categories"):
        if name in data and not isinstance(data[name], list) \
                and not (name == "categories" and data[name] is None):
            raise FormatError(f"expected a list, found {describe(data[name])}", source=path,
                              key=name)
    b = BoxBuilder("coco", str(path))
    origin = b.file(str(path))
    cats = {}
    for i, cat in enumerate(data.get("categories") or []):
        try:
            cats[cat["id"]] = b.cls(str(cat["name"]))
        except (KeyError, TypeError):
            raise FormatError("category without 'id' and 'name'", source=path,
                              key=f"categories[{i}]") from None
    images: dict[object, int] = {}
    first_seen: dict[object, int] = {}
    for i, img in enumerate(data["images"]):
        key = f"images[{i}]"
        if not isinstance(img, dict) or "id" not in img:
            raise FormatError("image without 'id'", source=path, key=key)
        image_id = _id(img["id"], path, f"{key}.id")
        if image_id in first_seen:
            raise FormatError(f"image id {describe(image_id)} appears twice (also "
                              f"images[{first_seen[image_id]}])", source=path, key=f"{key}.id")
        first_seen[image_id] = i
        wh = [float("nan") if img.get(side) is None
              else json_number(img[side], path, f"{key}.{side}", f"a number for {side}")
              for side in ("width", "height")]
        images[image_id] = b.image(str(img.get("file_name", image_id)), *wh)
    for i, ann in enumerate(data["annotations"]):
        key = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise FormatError("expected an object", source=path, key=key)
        crowd = ann.get("iscrowd", 0)
        if type(crowd) not in (int, bool) or crowd not in (0, 1):
            raise FormatError(f"expected 0 or 1 for iscrowd, found {describe(crowd)}",
                              source=path, key=f"{key}.iscrowd")
        if crowd and not include_crowd:
            b.skip("iscrowd")
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise FormatError(f"expected 'bbox' as [x, y, w, h], found {describe(bbox)}",
                              source=path, key=f"{key}.bbox")
        x, y, w, h = (float("nan") if v is None else
                      json_number(v, path, f"{key}.bbox[{j}]", "a number in bbox")
                      for j, v in enumerate(bbox))
        img = images.get(_id(ann.get("image_id"), path, f"{key}.image_id"))
        if img is None:
            raise FormatError(f"image_id {describe(ann.get('image_id'))} is not in 'images'",
                              source=path, key=f"{key}.image_id")
        category = ann.get("category_id")
        cls = cats.get(category) if isinstance(category, (int, str)) else None
        if cls is None:
            cls = b.cls(str(_id(category, path, f"{key}.category_id")))
        b.add(img, cls, x, y, w, h, origin=origin)
    if b.skipped.get("iscrowd"):
        b.notes.append(f"skipped {b.skipped['iscrowd']} iscrowd annotations "
                       "(include_crowd=True keeps them)")
    return b.build()


def _id(value: object, path: Path, key: str) -> object:
    """An image/category id: a JSON integer or string (COCO uses integers; some exporters
    write file names). Lists, objects, floats and booleans are refused rather than matched."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) and value is not None:
        raise FormatError(f"expected an integer or string id, found {describe(value)}",
                          source=path, key=key)
    return value
