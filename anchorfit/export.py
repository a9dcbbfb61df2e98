"""Write chosen anchors back in the detector's own format.

Edits are textual and minimal — the user's comments, layout and every other line stay as they
were — so the result diffs cleanly against the original:

- Darknet ``.cfg``: ``anchors=``, ``mask=`` and ``num=`` of every ``[yolo]``/``[Gaussian_yolo]``
  section and ``filters=`` of the ``[convolutional]`` feeding it ((classes + 5) x |mask|);
- YOLOv5 ``.yaml``: the ``anchors:`` block, one row per level (P3 first);
- mmdetection: a new config that inherits the original through ``_base_`` and overrides the
  head's ``anchor_generator`` (``YOLOAnchorGenerator`` base sizes, or ``AnchorGenerator``
  octave/ratio parameters when every level shares the same shapes);
- torchvision and Caffe: code/prototxt snippets to paste (their anchors live in code or repeat
  per layer).

Nothing overwrites the user's file unless ``in_place`` is asked, and then the file is replaced
atomically after a ``.bak`` copy.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.report.output import write_atomic

Anchors = Sequence[Sequence[Sequence[float]]]  # per level, (w, h) pairs

FORMATS = ("darknet", "yolov5", "mmdet", "torchvision", "caffe")


def _ints(anchors: Anchors) -> list[list[tuple[int, int]]]:
    return [[(max(int(round(w)), 1), max(int(round(h)), 1)) for w, h in level]
            for level in anchors]


def export_darknet(text: str, anchors: Anchors, *, source: str = "cfg",
                   yolo_order: Sequence[int] | None = None) -> str:
    """Rewrite a Darknet cfg's [yolo] sections for ``anchors`` (levels ordered by stride).

    The global anchor list is all levels' anchors, finest level first (Darknet's convention:
    mask 0,1,2 is the stride-8 head); ``yolo_order[i]`` is the level index of the i-th [yolo]
    section in the file (default: the file lists coarse heads first, as YOLOv3 does, i.e. the
    reverse of ``anchors``).
    """
    levels = _ints(anchors)
    flat = [a for level in levels for a in level]
    starts = np.cumsum([0] + [len(level) for level in levels])
    lines = text.splitlines(keepends=True)
    sections = [(i, line.strip().lower()) for i, line in enumerate(lines)
                if line.strip().startswith("[")]
    yolo_idx = [k for k, (_, name) in enumerate(sections)
                if name in ("[yolo]", "[gaussian_yolo]", "[region]")]
    if not yolo_idx:
        raise FormatError("no [yolo] section to write anchors into", source=source)
    if any(sections[k][1] == "[region]" for k in yolo_idx):
        raise FormatError("[region] (YOLOv2) layers tile anchors in grid units; export supports "
                          "[yolo] heads", source=source)
    order = list(yolo_order) if yolo_order is not None else list(range(len(levels)))[::-1]
    if len(order) != len(yolo_idx) or sorted(order) != list(range(len(levels))):
        raise FormatError(f"the cfg has {len(yolo_idx)} [yolo] heads but {len(levels)} anchor "
                          "levels were given", source=source)
    anchor_text = ",  ".join(f"{w},{h}" for w, h in flat)
    out = list(lines)
    for n, k in enumerate(yolo_idx):
        level = order[n]
        mask = list(range(starts[level], starts[level + 1]))
        begin = sections[k][0]
        end = sections[k + 1][0] if k + 1 < len(sections) else len(lines)
        classes = None
        seen = set()
        for i in range(begin + 1, end):
            key, sep, value = lines[i].partition("=")
            key = key.strip().lower()
            if not sep:
                continue
            newline = "\n" if lines[i].endswith("\n") else ""
            if key == "anchors":
                out[i] = f"anchors = {anchor_text}{newline}"
            elif key == "mask":
                out[i] = f"mask = {','.join(str(m) for m in mask)}{newline}"
            elif key == "num":
                out[i] = f"num={len(flat)}{newline}"
            elif key == "classes":
                classes = int(value.split("#")[0].strip())
            seen.add(key)
        missing = {"anchors", "mask"} - seen
        if missing:
            raise FormatError(f"[yolo] section has no {' or '.join(sorted(missing))}= line",
                              source=source, line=begin + 1)
        if classes is not None:
            conv = next((sections[j][0] for j in range(k - 1, -1, -1)
                         if sections[j][1] == "[convolutional]"), None)
            if conv is not None:
                conv_end = sections[[s for s, _ in sections].index(conv) + 1][0]
                for i in range(conv, conv_end):
                    key, sep, _ = lines[i].partition("=")
                    if sep and key.strip().lower() == "filters":
                        newline = "\n" if lines[i].endswith("\n") else ""
                        out[i] = f"filters={(classes + 5) * len(mask)}{newline}"
    return "".join(out)


def export_yolov5(text: str, anchors: Anchors, *, source: str = "yaml") -> str:
    """Replace the ``anchors:`` block of a YOLOv5 model yaml (P3 first), keeping the rest."""
    levels = _ints(anchors)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^anchors\s*:", line)), None)
    if start is None:
        raise FormatError("no top-level 'anchors:' key", source=source)
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t", "-")) or not lines[end].strip()):
        if not lines[end].strip() and end + 1 < len(lines) and not lines[end + 1].startswith(
                (" ", "\t", "-")):
            break
        end += 1
    block = ["anchors:\n"]
    for i, level in enumerate(levels):
        row = ", ".join(f"{w}, {h}" for w, h in level)
        block.append(f"  - [{row}]  # P{i + 3}, anchorfit\n")
    return "".join(lines[:start] + block + lines[end:])


def export_mmdet(base_config: str | Path, anchors: Anchors, strides: Sequence[float], *,
                 head: str = "bbox_head", generator: str = "auto",
                 center_offset: float | None = None) -> str:
    """A config inheriting ``base_config`` with the head's anchor generator replaced."""
    base = Path(base_config)
    levels = [[(float(w), float(h)) for w, h in level] for level in anchors]
    strides_text = ", ".join(f"{int(s) if float(s).is_integer() else s}" for s in strides)
    shared = _shared_shapes(levels, strides)
    if generator == "auto":
        generator = "AnchorGenerator" if shared is not None else "YOLOAnchorGenerator"
    if generator == "AnchorGenerator":
        if shared is None:
            raise AnchorfitError("AnchorGenerator needs the same scales and ratios on every "
                                 "level (relative to the stride); use YOLOAnchorGenerator")
        scales, ratios = shared
        body = (f"type='AnchorGenerator', scales={_list(scales)}, ratios={_list(ratios)}, "
                f"strides=[{strides_text}]")
        if center_offset is not None:
            body += f", center_offset={center_offset:g}"
    else:
        sizes = ", ".join("[" + ", ".join(f"({round(w)}, {round(h)})" for w, h in level) + "]"
                          for level in levels)
        body = f"type='YOLOAnchorGenerator', base_sizes=[{sizes}], strides=[{strides_text}]"
    return (f"# Generated by anchorfit: {base.name} with anchors fitted to your data.\n"
            f"_base_ = './{base.name}'\n"
            f"model = dict({head}=dict(anchor_generator=dict({body})))\n")


def _shared_shapes(levels: list[list[tuple[float, float]]], strides: Sequence[float]
                   ) -> tuple[list[float], list[float]] | None:
    """(scales, ratios) when each level is {stride x scale} x {ratio} with the same lists."""
    found = None
    for level, s in zip(levels, strides):
        scales = sorted({round(math.sqrt(w * h) / s, 4) for w, h in level})
        ratios = sorted({round(h / w, 4) for w, h in level})
        if len(scales) * len(ratios) != len(level):
            return None
        if found is None:
            found = (scales, ratios)
        elif found != (scales, ratios):
            return None
    return found


def _list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def export_torchvision(anchors: Anchors) -> str:
    """``AnchorGenerator(sizes, aspect_ratios)`` per level (sizes x ratios per level)."""
    sizes, ratios = [], []
    for level in anchors:
        sizes.append(tuple(sorted({round(math.sqrt(w * h), 1) for w, h in level})))
        ratios.append(tuple(sorted({round(h / w, 3) for w, h in level})))
    return ("from torchvision.models.detection.anchor_utils import AnchorGenerator\n"
            "# torchvision tiles every size with every ratio on a level "
            "(len(sizes) x len(ratios) anchors per cell)\n"
            f"anchor_generator = AnchorGenerator(sizes={tuple(sizes)!r},\n"
            f"                                   aspect_ratios={tuple(ratios)!r})\n")


def export_caffe(anchors: Anchors, layer_names: Sequence[str]) -> str:
    """PriorBox fields per layer: each anchor's sqrt(w h) as min_size and its ratio w/h."""
    parts = []
    for name, level in zip(layer_names, anchors):
        fields = [f"    min_size: {math.sqrt(w * h):.1f}" for w, h in level]
        ratios = sorted({round(w / h, 3) for w, h in level if abs(w / h - 1) > 1e-3})
        fields += [f"    aspect_ratio: {r:g}" for r in ratios]
        parts.append(f"# {name}\nprior_box_param {{\n" + "\n".join(fields) +
                     "\n    flip: false\n}\n")
    return "".join(parts)


def write_export(target: Path, text: str, *, in_place: bool = False,
                 original: Path | None = None) -> Path:
    """Write an export; with ``in_place`` replace ``original`` atomically after a .bak copy."""
    if in_place:
        if original is None:
            raise AnchorfitError("--in-place needs the original file")
        backup = original.with_name(original.name + ".bak")
        shutil.copy2(original, backup)
        write_atomic(original, text)
        return original
    if original is not None and target.resolve() == original.resolve():
        raise AnchorfitError(f"refusing to overwrite {original}; pass --in-place to replace it "
                             "(a .bak copy is kept)")
    write_atomic(target, text)
    return target


def detector_format(detector: object) -> str:
    """Which of FORMATS (or 'spec') a detector was read from, by its reader."""
    source = str(getattr(detector, "source", "") or "")
    if source.startswith("torchvision:") or getattr(detector, "name", "").startswith(
            "torchvision:"):
        return "torchvision"
    if not source:
        raise AnchorfitError("the detector has no source file to export into")
    from anchorfit.formats import reader_for

    name = reader_for(Path(source)).name.lower()
    for key, fmt in (("darknet", "darknet"), ("yolov5", "yolov5"), ("ultralytics", "yolov5"),
                     ("mmdet", "mmdet"), ("caffe", "caffe"), ("spec", "spec"),
                     ("anchorfit", "spec"), ("detectron2", "detectron2")):
        if key in name:
            return fmt
    raise AnchorfitError(f"no exporter for {reader_for(Path(source)).name} files")


def export_for(detector: object, anchors: Anchors) -> tuple[str, str]:
    """(format, text) of ``anchors`` written in the format ``detector`` was read from."""
    fmt = detector_format(detector)
    levels = detector.levels  # type: ignore[attr-defined]
    if len(anchors) != len(levels):
        raise AnchorfitError(f"{len(anchors)} anchor levels for a detector with {len(levels)}")
    source = Path(str(getattr(detector, "source", "")))
    strides = [lv.stride_px() for lv in levels]
    if fmt == "darknet":
        # the i-th [yolo] section in the file is the level whose yolo_index is i
        order = [lv.extra.get("yolo_index", i) for i, lv in enumerate(levels)]
        ranks = sorted(range(len(levels)), key=lambda i: order[i])
        by_stride = sorted(range(len(levels)), key=lambda i: strides[i])
        sorted_anchors = [anchors[i] for i in by_stride]
        yolo_order = [by_stride.index(i) for i in ranks]
        return fmt, export_darknet(source.read_text(), sorted_anchors, source=str(source),
                                   yolo_order=yolo_order)
    if fmt == "yolov5":
        return fmt, export_yolov5(source.read_text(), anchors, source=str(source))
    if fmt == "mmdet":
        head = detector.extra.get("head_key", "bbox_head")  # type: ignore[attr-defined]
        offset = levels[0].center_offset
        return fmt, export_mmdet(source, anchors, strides, head=head, center_offset=offset)
    if fmt == "torchvision":
        return fmt, export_torchvision(anchors)
    if fmt == "caffe":
        return fmt, export_caffe(anchors, [lv.name for lv in levels])
    if fmt == "spec":
        return fmt, export_spec(source.read_text(), anchors, [lv.name for lv in levels],
                                source=str(source))
    raise AnchorfitError(f"no exporter for {fmt} files")


_ANCHOR_KEYS = ("anchors", "sizes", "ratios", "scales", "octave_base_scale",
                "scales_per_octave", "ssd", "densify", "anchor_free")


def _flow(value: object) -> str:
    """A YAML flow-style rendering (one line) of plain data."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        import yaml

        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def export_spec(text: str, anchors: Anchors, level_names: Sequence[str], *,
                source: str = "spec") -> str:
    """Replace every level's anchor keys of an anchorfit YAML spec with explicit ``anchors``.

    The ``levels:`` block is rewritten, one flow mapping per level (the other keys of each level
    are kept); everything outside it is left as it was, comments included.
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(f"not valid YAML: {exc}", source=source) from None
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, list):
        raise FormatError("no 'levels:' list to write anchors into (inherited through base:? "
                          "export into the base file)", source=source)
    if len(levels) != len(anchors):
        raise FormatError(f"the spec has {len(levels)} levels but {len(anchors)} anchor levels "
                          "were given", source=source)
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.match(r"^levels\s*:", line))
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-#"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    block = ["levels:\n"]
    for level, new in zip(levels, _ints(anchors)):
        kept = {k: v for k, v in level.items() if k not in _ANCHOR_KEYS}
        items = list(kept.items())
        at = next((i for i, (k, _) in enumerate(items) if k in ("step", "from", "node", "name")),
                  0)
        items.insert(at + 1, ("anchors", [list(a) for a in new]))
        block.append(f"  - {_flow(dict(items))}\n")
    return "".join(lines[:start] + block + lines[end:])
