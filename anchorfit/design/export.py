"""Write chosen anchors back in the detector's own format, so the result loads and means the same.

Edits are textual and minimal — the user's comments, layout and every other line stay as they
were — so the result diffs cleanly against the original:

- Darknet ``.cfg``: ``anchors=``, ``mask=`` and ``num=`` of every ``[yolo]``/``[Gaussian_yolo]``
  section and ``filters=`` of the ``[convolutional]`` feeding it ((classes + 5) x |mask|);
- YOLOv5 ``.yaml``: the ``anchors:`` block, one row per level (P3 first);
- anchorfit spec: the ``levels:`` block (added when inherited), ``base:`` re-pointed;
- mmdetection: a new config that inherits the original through ``_base_`` (relative to where it
  is written, or absolute) and replaces the head's generator whole (``_delete_=True``: mmengine
  would otherwise merge the old generator's keys into the new one); ``AnchorGenerator`` is kept
  when every level is one scales x ratios grid, so centres stay at ``center_offset`` x base;
  other sets need ``YOLOAnchorGenerator``, whose centres are (i + 0.5) x stride — the
  ``Export`` says so (``changes_centers``) and ``compare`` scores the set with those centres;
- Caffe: the prototxt with each PriorBox's size/ratio lines replaced (only sets a PriorBox tiles
  exactly: its ratios are shared by all its sizes);
- torchvision: an ``AnchorGenerator`` snippet (exact ``cell_anchors`` when not a grid).

Nothing overwrites the user's file unless ``in_place`` is asked, and then the file is replaced
atomically after a backup copy (``.bak``; mmdet ``NAME.bak.py``, which the override inherits,
since a config cannot inherit itself). Backups are numbered and never overwritten (``.bak.1``,
``NAME.bak.1.py``, ...); an export never replaces another existing file unless ``force`` is
given (then that file is backed up the same way), and built-in zoo configs, which live inside the
installed package, are never changed: they need a target. Files are written by
``report.safe_write`` (modes kept, symlinks followed, devices and FIFOs written through).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.report.safe_write import (backup_names, check_output, make_backup, next_backup,
                                         write_output)

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


def export_mmdet(base_config: str | Path, anchors: Anchors, strides: Sequence[Any], *,
                 head: str = "bbox_head", generator: str = "auto",
                 center_offset: float | None = None, gen_key: str = "anchor_generator",
                 original: dict[str, Any] | None = None, base_ref: str | None = None) -> str:
    """A config inheriting ``base_config`` whose head gets a new anchor generator.

    ``base_ref`` is what ``_base_`` says (default: the absolute path of ``base_config``, which
    loads from any folder; ``make_export`` writes it relative to where the file goes). The new
    generator replaces the old one whole (``_delete_=True``): mmengine otherwise merges the old
    generator's keys (octave_base_scale, scales_per_octave, ...) into the new dict and mmdet
    cannot build it. ``original`` is the old generator (its base_sizes, centers and strides are
    kept when the new one is an ``AnchorGenerator``).
    """
    base = Path(base_config)
    body, _, _ = _mmdet_generator(anchors, strides, generator=generator,
                                  center_offset=center_offset, original=original)
    ref = base_ref if base_ref is not None else str(base.resolve()).replace("\\", "/")
    return (f"# Generated by anchorfit: {base.name} with anchors fitted to your data.\n"
            f"_base_ = {ref!r}\n"
            f"model = dict({head}=dict({gen_key}=dict(_delete_=True, {body})))\n")


def _mmdet_generator(anchors: Anchors, strides: Sequence[Any], *, generator: str = "auto",
                     center_offset: float | None = None,
                     original: dict[str, Any] | None = None
                     ) -> tuple[str, str, list[float]]:
    """(dict body, generator type, centre offset in cells per level) of the new generator.

    ``auto`` keeps an ``AnchorGenerator`` when the old one is one (or there is none) and every
    level is the same scales x ratios grid (relative to its base size), so the centres stay where
    they were (``center_offset`` x base); any other set needs ``YOLOAnchorGenerator`` (explicit
    (w, h) per level), whose centres are at (i + 0.5) x stride.
    """
    levels = [[(float(w), float(h)) for w, h in level] for level in anchors]
    old = dict(original or {})
    old_type = old.get("type")
    strides_text = _py(list(old.get("strides") or strides))
    sq = [float(s if isinstance(s, (int, float)) else min(s)) for s in strides]
    bases = [float(b) for b in old.get("base_sizes") or sq] \
        if old_type in (None, "AnchorGenerator") else sq
    shared = _shared_shapes(levels, bases)
    if generator == "auto":
        generator = "AnchorGenerator" if (shared is not None and old_type in (
            None, "AnchorGenerator")) else "YOLOAnchorGenerator"
    if generator == "AnchorGenerator":
        if shared is None:
            raise AnchorfitError("AnchorGenerator needs the same scales and ratios on every "
                                 "level (relative to the stride); use YOLOAnchorGenerator")
        scales, ratios = shared
        body = (f"type='AnchorGenerator', scales={_list(scales)}, ratios={_list(ratios)}, "
                f"strides={strides_text}")
        if old_type == "AnchorGenerator" and old.get("base_sizes") is not None:
            body += f", base_sizes={_py(list(old['base_sizes']))}"
        offset = float(old.get("center_offset", 0.0) if old_type == "AnchorGenerator" else
                       (center_offset or 0.0))
        centers = old.get("centers") if old_type == "AnchorGenerator" else None
        if centers is not None:
            body += f", centers={_py(list(centers))}"
            offsets = [float(c[0]) / s for c, s in zip(centers, sq)]
        else:
            if offset:
                body += f", center_offset={offset:g}"
            offsets = [offset * b / s for b, s in zip(bases, sq)]
        return body, generator, offsets
    sizes = ", ".join("[" + ", ".join(f"({w}, {h})" for w, h in level) + "]"
                      for level in _ints(levels))
    body = f"type='YOLOAnchorGenerator', base_sizes=[{sizes}], strides={strides_text}"
    return body, generator, [0.5] * len(levels)


def _py(value: Any) -> str:
    """A Python literal of plain config data (lists, tuples, numbers)."""
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_py(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _shared_shapes(levels: list[list[tuple[float, float]]], bases: Sequence[float]
                   ) -> tuple[list[float], list[float]] | None:
    """(scales, ratios) when each level is exactly {base x scale} x {ratio h/w}, same lists."""
    found = None
    for level, b in zip(levels, bases):
        scales = sorted({round(math.sqrt(w * h) / b, 4) for w, h in level})
        ratios = sorted({round(h / w, 4) for w, h in level})
        if len(scales) * len(ratios) != len(level):
            return None
        grid = sorted((b * s / math.sqrt(r), b * s * math.sqrt(r)) for s in scales for r in ratios)
        if any(abs(gw - w) > 0.5 or abs(gh - h) > 0.5
               for (gw, gh), (w, h) in zip(grid, sorted(level))):
            return None
        if found is None:
            found = (scales, ratios)
        elif found != (scales, ratios):
            return None
    return found


def _list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def export_torchvision(anchors: Anchors) -> str:
    """A torchvision ``AnchorGenerator`` holding exactly ``anchors`` (centres at i x stride).

    torchvision tiles every size with every aspect ratio (h/w) on a level and rounds each box's
    corners to integers. When each level is such a grid (after that rounding) the snippet is the
    plain ``AnchorGenerator(sizes, aspect_ratios)``; otherwise the generator is built with one
    placeholder size per anchor (so the head predicts the right number per cell) and its
    ``cell_anchors`` are set to the fitted boxes, which is what torchvision tiles at run time.
    """
    grid = [_torchvision_grid(level) for level in anchors]
    head = "from torchvision.models.detection.anchor_utils import AnchorGenerator\n"
    if all(g is not None for g in grid):
        sizes = tuple(g[0] for g in grid if g is not None)
        ratios = tuple(g[1] for g in grid if g is not None)
        return (head + "# torchvision tiles every size with every ratio (h/w) on a level "
                "(len(sizes) x len(ratios) anchors per cell)\n"
                f"anchor_generator = AnchorGenerator(sizes={sizes!r},\n"
                f"                                   aspect_ratios={ratios!r})\n")
    levels = [[(float(w), float(h)) for w, h in level] for level in anchors]
    rows = ",\n           ".join("[" + ", ".join(f"({w:g}, {h:g})" for w, h in level) + "]"
                                 for level in levels)
    return ("import torch\n" + head +
            "# anchorfit: these anchors are not a sizes x aspect_ratios grid, so the generator\n"
            "# gets one placeholder size per anchor (the head's anchors per cell) and its cell\n"
            "# anchors are replaced by the fitted (w, h), centred on the cell origin as\n"
            "# torchvision's own are\n"
            f"ANCHORS = [{rows}]\n"
            "anchor_generator = AnchorGenerator(\n"
            "    sizes=tuple(tuple(float(i + 1) for i in range(len(lv))) for lv in ANCHORS),\n"
            "    aspect_ratios=tuple((1.0,) for _ in ANCHORS))\n"
            "anchor_generator.cell_anchors = [\n"
            "    torch.tensor([[-w / 2, -h / 2, w / 2, h / 2] for w, h in lv],\n"
            "                 dtype=torch.float32)\n"
            "    for lv in ANCHORS]\n")


def _torchvision_box(size: float, ratio: float) -> tuple[float, float]:
    """torchvision ``generate_anchors``: w = size/sqrt(r), h = size*sqrt(r), corners rounded."""
    hr = math.sqrt(ratio)
    w, h = size / hr, size * hr
    return (float(round(w / 2) - round(-w / 2)), float(round(h / 2) - round(-h / 2)))


def _groups(values: list[float], tol: float = 0.06) -> list[float]:
    """Values within ``tol`` (relative) of their sorted neighbour, merged to their mean:
    the sizes/ratios a rounded grid came from."""
    out: list[list[float]] = []
    for v in sorted(values):
        if out and v <= out[-1][-1] * (1 + tol):
            out[-1].append(v)
        else:
            out.append([v])
    return [sum(g) / len(g) for g in out]


def _torchvision_grid(level: Sequence[Sequence[float]]
                      ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(sizes, ratios h/w) whose torchvision grid (corners rounded as torchvision rounds them)
    is ``level`` as a multiset, to the pixel; round values are preferred when they also fit."""
    want = sorted((float(round(w)), float(round(h))) for w, h in level)
    sizes = _groups([math.sqrt(w * h) for w, h in level])
    ratios = _groups([h / w for w, h in level])
    if len(sizes) * len(ratios) != len(level):
        return None

    def fits(ss: Sequence[float], rr: Sequence[float]) -> bool:
        grid = sorted(_torchvision_box(s, r) for r in rr for s in ss)
        return all(abs(a - c) <= 1.0 and abs(b - d) <= 1.0
                   for (a, b), (c, d) in zip(grid, want))

    for ss, rr in (([float(round(s)) for s in sizes], [round(r * 4) / 4 for r in ratios]),
                   ([float(round(s)) for s in sizes], [round(r, 3) for r in ratios]),
                   ([round(s, 1) for s in sizes], [round(r, 3) for r in ratios])):
        if min(rr) > 0 and len(set(rr)) == len(rr) and fits(ss, rr):
            return tuple(ss), tuple(rr)
    return None


def caffe_prior_fields(level: Sequence[Sequence[float]]
                       ) -> tuple[list[float], list[float], list[float]] | None:
    """(min_sizes, max_sizes, aspect_ratios (w/h)) of a PriorBox (``flip: false``) whose boxes
    are ``level``, or None when no PriorBox tiles exactly these boxes.

    Caffe SSD's PriorBox gives, for every min_size m, the square m, the square sqrt(m x max)
    when max_size is set, and m·sqrt(r) x m/sqrt(r) for every aspect ratio r: the ratios are
    shared by all min sizes.
    """
    boxes = [(float(w), float(h)) for w, h in level]
    non_square = [(w, h) for w, h in boxes if abs(w / h - 1) > 1e-3]
    squares = sorted(math.sqrt(w * h) for w, h in boxes if abs(w / h - 1) <= 1e-3)
    ratios = sorted({round(w / h, 4) for w, h in non_square})
    if non_square:
        mins = sorted({round(math.sqrt(w * h), 2) for w, h in non_square})
    else:
        mins = [round(s, 2) for s in squares]
    rest = list(squares)
    for m in mins:
        hit = next((s for s in rest if abs(s - m) <= 0.05), None)
        if hit is None:
            return None
        rest.remove(hit)
    maxs: list[float] = []
    if rest:
        if len(rest) != len(mins):
            return None
        maxs = [round(s * s / m, 2) for s, m in zip(sorted(rest), mins)]
    grid = []
    for i, m in enumerate(mins):
        grid.append((m, m))
        if maxs:
            grid.append((math.sqrt(m * maxs[i]),) * 2)
        grid += [(m * math.sqrt(r), m / math.sqrt(r)) for r in ratios]
    if len(grid) != len(boxes) or any(
            abs(a - c) > 0.5 or abs(b - d) > 0.5
            for (a, b), (c, d) in zip(sorted(grid), sorted(boxes))):
        return None
    return mins, maxs, ratios


def export_caffe(anchors: Anchors, layer_names: Sequence[str], *,
                 text: str | None = None, source: str = "prototxt") -> str:
    """Caffe PriorBox fields for ``anchors``: the whole prototxt with each PriorBox layer's
    min_size/max_size/aspect_ratio/flip lines replaced when ``text`` is given (everything else,
    step, offset, variance and the comments, stays), else ``prior_box_param`` snippets per layer.

    Anchors a PriorBox cannot tile exactly (see ``caffe_prior_fields``) are refused, naming the
    level, rather than written as a different set.
    """
    fields = []
    for name, level in zip(layer_names, anchors):
        f = caffe_prior_fields(level)
        if f is None:
            raise AnchorfitError(
                f"PriorBox {name}: these {len(level)} anchors are not min_size x aspect_ratio "
                "boxes (Caffe shares every aspect ratio among a layer's min sizes), so no "
                "PriorBox holds them", hint="export a set whose levels are such grids (the "
                "RF-derived or default set), or edit the PriorBox layers by hand")
        fields.append(f)
    if text is None:
        parts = []
        for name, (mins, maxs, ratios) in zip(layer_names, fields):
            parts.append(f"# {name}\nprior_box_param {{\n" +
                         "".join(f"    {line}\n" for line in _prior_lines(mins, maxs, ratios)) +
                         "}\n")
        return "".join(parts)
    return _rewrite_priorboxes(text, layer_names, fields, source)


def _prior_lines(mins: list[float], maxs: list[float], ratios: list[float]) -> list[str]:
    return ([f"min_size: {m:g}" for m in mins] + [f"max_size: {m:g}" for m in maxs] +
            [f"aspect_ratio: {r:g}" for r in ratios] + ["flip: false"])


def _rewrite_priorboxes(text: str, layer_names: Sequence[str],
                        fields: list[tuple[list[float], list[float], list[float]]],
                        source: str) -> str:
    from anchorfit.formats.parsers.prototxt import Message, parse_prototxt

    net = parse_prototxt(text, source)
    priors = [layer for layer in net.getall("layer") if layer.get("type") == "PriorBox"]
    by_name = {str(layer.get("name")): layer for layer in priors}
    lines = text.splitlines(keepends=True)
    edits: dict[int, list[str] | None] = {}
    for name, (mins, maxs, ratios) in zip(layer_names, fields):
        layer = by_name.get(str(name))
        p = layer.get("prior_box_param") if layer is not None else None
        if not isinstance(p, Message):
            raise FormatError(f"no PriorBox layer {name!r} with a prior_box_param", source=source)
        at = [line for key, _, line in p if key in ("min_size", "max_size", "aspect_ratio",
                                                   "flip")]
        keys = {lines[i - 1].strip().split(":")[0] for i in at}
        if not at or len(set(at)) != len(at) or keys - {"min_size", "max_size", "aspect_ratio",
                                                         "flip"}:
            raise FormatError(f"PriorBox {name}: expected one field per line to rewrite",
                              source=source, line=p.line)
        first = lines[at[0] - 1]
        indent = first[:len(first) - len(first.lstrip())]
        newline = "\n" if first.endswith("\n") else ""
        edits[at[0]] = [f"{indent}{line}{newline or chr(10)}"
                        for line in _prior_lines(mins, maxs, ratios)]
        for i in at[1:]:
            edits[i] = None
    out = []
    for i, line in enumerate(lines, 1):
        if i in edits:
            out.extend(edits[i] or [])
        else:
            out.append(line)
    return "".join(out)


def write_export(target: Path, text: str, *, in_place: bool = False,
                 original: Path | None = None, backup: Path | None = None,
                 force: bool = False, kept: list[Path] | None = None) -> Path:
    """Write an export (``report.safe_write`` rules); backups written are appended to ``kept``.

    ``in_place``: replace ``original`` atomically after a backup copy: to ``backup`` when it does
    not exist yet (mmdet: the base the new text inherits), else to the next free numbered name
    (``FILE.bak``, ``FILE.bak.1``, ...; an existing backup is never overwritten). Built-in zoo
    configs are refused. Otherwise ``target`` must not be ``original`` and must not exist, unless
    ``force``, which replaces it after a numbered backup.
    """
    if in_place:
        if original is None:
            raise AnchorfitError("in_place needs the original file", key="in_place")
        refuse_builtin(original)
        check_output(original, what="--in-place")  # every refusal before the backup is made
        if backup is not None and not os.path.lexists(backup):
            saved = make_backup(original, backup)
        else:  # the inherited mmdet base stays; the file replaced is kept beside it
            saved = make_backup(original, keep_suffix=backup is not None)
        if kept is not None:
            kept.append(saved)
        write_output(original, text, what="--in-place")
        return original
    kind = check_export_target(target, original, force=force)
    if kind == "replace":  # only with force
        saved = make_backup(target, what="--export-to")
        if kept is not None:
            kept.append(saved)
    write_output(target, text, what="--export-to", existing="replace" if force else "refuse",
                 refuse_hint=_EXISTS_HINT)
    return target


_EXISTS_HINT = "pass --force to replace it (a numbered .bak copy is kept), or choose another name"


def check_export_target(target: Path, original: Path | None, *, force: bool = False) -> str:
    """Refuse an export target before any work is done: the detector's own file (that is
    ``--in-place``), or any existing file without ``force``. Returns ``check_output``'s kind."""
    if original is not None and os.path.lexists(original) and _same_file(target, original):
        raise AnchorfitError(f"refusing to overwrite {original}; pass --in-place to replace it "
                             "(a .bak copy is kept)")
    kind, _, _ = check_output(target, what="--export-to",
                              existing="replace" if force else "refuse",
                              refuse_hint=_EXISTS_HINT)
    return kind


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (symlinks and hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)).resolve() == Path(os.path.abspath(b)).resolve()


def refuse_builtin(original: Path) -> None:
    """Built-in zoo configs live inside the installed package: never changed in place."""
    package = Path(__file__).resolve().parents[1]  # anchorfit/, above design/
    real = Path(os.path.abspath(original)).resolve()
    if package in real.parents:
        raise AnchorfitError(f"{original.name} is a built-in zoo config inside the installed "
                             f"anchorfit package ({real}), which --in-place never changes",
                             key="--in-place",
                             hint="built-in zoo names need --export-to FILE")


def _inherited_backup(source: Path) -> Path:
    """Where an mmdet in-place export keeps the original: the backup ``source`` already
    inherits (a second in-place export keeps inheriting the first original), else the first
    free ``NAME.bak.py``, ``NAME.bak.1.py``, ..."""
    for name in backup_names(source, keep_suffix=True):
        if not os.path.lexists(name):
            break
        if name.is_file() and _inherits(source, name):
            return name
    return next_backup(source, keep_suffix=True)


def _inherits(path: Path, base: Path) -> bool:
    """Whether ``path`` is an anchorfit override whose ``_base_`` is ``base`` (a second
    in-place export must not back the override up over the original it inherits)."""
    try:
        head = path.read_text(errors="replace")[:4096]
    except OSError:
        return False
    return head.startswith("# Generated by anchorfit") and (
        f"'./{base.name}'" in head or repr(str(base.resolve())) in head)


@dataclass
class Export:
    """Anchors written in a detector's format, and what the written file means."""

    format: str
    text: str
    center_offsets: list[float]          # per level, in cells, of the anchors as written
    notes: list[str] = field(default_factory=list)
    changes_centers: bool = False        # the written generator moves the anchor centres
    backup: Path | None = None           # in-place: where the original is kept

    @property
    def suffix(self) -> str:
        return {"darknet": ".cfg", "mmdet": ".py", "torchvision": ".py",
                "caffe": ".prototxt"}.get(self.format, ".yaml")


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
    """(format, text) of ``anchors`` written in the format ``detector`` was read from (paths
    inside the text absolute, so it loads from any folder); see ``make_export``."""
    out = make_export(detector, anchors)
    return out.format, out.text


def _relative_ref(path: Path, folder: Path | None) -> str:
    """``path`` as a reference from a file in ``folder``: relative (./x, ../x) when both are on
    one drive, else absolute; absolute when the folder is not known."""
    path = path.resolve()
    if folder is None:
        return path.as_posix()
    try:
        rel = Path(os.path.relpath(path, folder.resolve())).as_posix()
    except ValueError:  # another drive
        return path.as_posix()
    return rel if rel.startswith("../") else f"./{rel}"


def make_export(detector: object, anchors: Anchors, *, target: Path | None = None,
                in_place: bool = False) -> Export:
    """``anchors`` (per level, in the detector's level order) written in the detector's format.

    ``target`` is where the text will be written (references to other files, mmdet ``_base_``
    and spec ``base:``, are made relative to its folder; absolute without a target); with
    ``in_place`` the original file itself is the target, and an mmdet override inherits the
    original kept beside it as ``NAME.bak.py`` (a config cannot inherit itself).
    """
    fmt = detector_format(detector)
    levels = detector.levels  # type: ignore[attr-defined]
    if len(anchors) != len(levels):
        raise AnchorfitError(f"{len(anchors)} anchor levels for a detector with {len(levels)}")
    source = Path(str(getattr(detector, "source", "")))
    kept = [float(lv.center_offset) for lv in levels]
    strides = [lv.stride_px() for lv in levels]
    folder = (source.parent if in_place else target.parent) if (in_place or target) else None
    if fmt == "darknet":
        # the i-th [yolo] section in the file is the level whose yolo_index is i
        order = [lv.extra.get("yolo_index", i) for i, lv in enumerate(levels)]
        ranks = sorted(range(len(levels)), key=lambda i: order[i])
        by_stride = sorted(range(len(levels)), key=lambda i: strides[i])
        sorted_anchors = [anchors[i] for i in by_stride]
        yolo_order = [by_stride.index(i) for i in ranks]
        return Export(fmt, export_darknet(source.read_text(), sorted_anchors, source=str(source),
                                          yolo_order=yolo_order), kept)
    if fmt == "yolov5":
        return Export(fmt, export_yolov5(source.read_text(), anchors, source=str(source)), kept)
    if fmt == "mmdet":
        return _make_mmdet(source, anchors, kept, folder, in_place)
    if fmt == "torchvision":
        return Export(fmt, export_torchvision(anchors), kept)
    if fmt == "caffe":
        names = [str(lv.extra.get("prior_layer") or lv.name) for lv in levels]
        return Export(fmt, export_caffe(anchors, names, text=source.read_text(),
                                        source=str(source)), kept)
    if fmt == "spec":
        return Export(fmt, export_spec(source.read_text(), anchors, [lv.name for lv in levels],
                                       source=str(source), path=source, folder=folder), kept)
    raise AnchorfitError(f"no exporter for {fmt} files")


def _make_mmdet(source: Path, anchors: Anchors, kept: list[float], folder: Path | None,
                in_place: bool) -> Export:
    from anchorfit.formats.mmdet import load_config

    model = load_config(source).data.get("model") or {}
    head = "rpn_head" if isinstance(model.get("rpn_head"), dict) else "bbox_head"
    hd = model.get(head) or {}
    gen_key = next((k for k in ("anchor_generator", "prior_generator", "approx_anchor_generator")
                    if isinstance(hd.get(k), dict)), "anchor_generator")
    if gen_key == "approx_anchor_generator":
        raise AnchorfitError(f"{source.name}: guided anchoring (approx_anchor_generator and "
                             "square_anchor_generator) is not exported; edit the config by hand")
    old = dict(hd.get(gen_key) or {})
    backup = _inherited_backup(source) if in_place else None
    ref = _relative_ref(backup or source, folder)
    strides = list(old.get("strides") or [])
    _, gtype, offsets = _mmdet_generator(anchors, strides, original=old)
    text = export_mmdet(source, anchors, strides, head=head, gen_key=gen_key, original=old,
                        base_ref=ref)
    notes = []
    moved = any(abs(a - b) > 1e-9 for a, b in zip(offsets, kept))
    if moved:
        notes.append(f"mmdet: {old.get('type')} cannot hold these anchors (not one scales x "
                     f"ratios grid on every level), so the export uses {gtype}: anchor centres "
                     f"move from {_centre_text(kept[0])} to {_centre_text(offsets[0])}")
    if in_place:
        notes.append(f"the original config is kept as {backup.name if backup else ''}, which the "
                     "new file inherits")
    return Export("mmdet", text, offsets, notes, moved, backup)


def _centre_text(offset: float) -> str:
    return "i*S" if offset == 0 else "(i+0.5)*S" if offset == 0.5 else f"(i+{offset:g})*S"


def save_export(detector: object, anchors: Anchors, *, target: Path | None = None,
                in_place: bool = False, force: bool = False) -> tuple[Export, Path]:
    """``make_export`` and write it: to ``target`` (an existing file only with ``force``, which
    keeps a numbered backup of it), or over the detector's file with ``in_place`` (atomically,
    after a numbered backup copy); see ``write_export``."""
    source = Path(str(getattr(detector, "source", "")))
    original = source if source.is_file() else None
    if not in_place and target is None:
        raise AnchorfitError("an export needs a target file or in_place")
    if in_place and original is None:
        raise AnchorfitError("in_place needs the detector's own file (a torchvision model "
                             "has none); export to a target file instead", key="in_place")
    if in_place:
        refuse_builtin(source)
    out = make_export(detector, anchors, target=target, in_place=in_place)
    kept: list[Path] = []
    written = write_export(target or source, out.text, in_place=in_place,
                           original=original, backup=out.backup, force=force, kept=kept)
    out.notes += [f"the file replaced is kept as {p}" for p in kept if p != out.backup]
    return out, written


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
                source: str = "spec", path: Path | None = None,
                folder: Path | None = None) -> str:
    """Replace every level's anchor keys of an anchorfit YAML spec with explicit ``anchors``.

    The ``levels:`` block is rewritten, one flow mapping per level (the other keys of each level
    are kept); everything outside it is left as it was, comments included. A spec that inherits
    its levels through ``base:`` gets its own ``levels:`` block (the inherited levels with the
    new anchors). With ``path`` (the spec's file), ``base:`` is rewritten to point at the same
    file from ``folder`` (where the export goes; absolute when None).
    """
    from anchorfit.safeinput import safe_load

    data = safe_load(text, source)
    if not isinstance(data, dict):
        raise FormatError("not an anchorfit spec (a YAML mapping)", source=source)
    levels = data.get("levels")
    lines = text.splitlines(keepends=True)
    if path is not None and isinstance(data.get("base"), str):
        base_path = (path.parent / data["base"]).resolve()
        at = next(i for i, line in enumerate(lines) if re.match(r"^base\s*:", line))
        lines[at] = f"base: {_relative_ref(base_path, folder)}\n"
        if levels is None:
            levels = _inherited_levels(base_path, source)
    if not isinstance(levels, list):
        raise FormatError("no 'levels:' list to write anchors into", source=source)
    if len(levels) != len(anchors):
        raise FormatError(f"the spec has {len(levels)} levels but {len(anchors)} anchor levels "
                          "were given", source=source)
    block = ["levels:\n"]
    for level, new in zip(levels, _ints(anchors)):
        kept = {k: v for k, v in level.items() if k not in _ANCHOR_KEYS}
        items = list(kept.items())
        at = next((i for i, (k, _) in enumerate(items) if k in ("step", "from", "node", "name")),
                  0)
        items.insert(at + 1, ("anchors", [list(a) for a in new]))
        block.append(f"  - {_flow(dict(items))}\n")
    start = next((i for i, line in enumerate(lines) if re.match(r"^levels\s*:", line)), None)
    if start is None:
        tail = "" if not lines or lines[-1].endswith("\n") else "\n"
        return "".join(lines) + tail + "".join(block)
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-#"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:start] + block + lines[end:])


def _inherited_levels(path: Path, source: str, depth: int = 0) -> list | None:
    """The ``levels:`` a spec inherits through its ``base:`` chain (the nearest one)."""
    if depth > 20 or not path.is_file():
        raise FormatError(f"base file {path} not found (or a base: cycle)", source=source)
    from anchorfit.safeinput import read_config_text, safe_load

    data = safe_load(read_config_text(path), path) or {}
    if isinstance(data.get("levels"), list):
        return data["levels"]
    if isinstance(data.get("base"), str):
        return _inherited_levels((path.parent / data["base"]).resolve(), source, depth + 1)
    return None
