"""Ultralytics YOLOv5 model ``.yaml`` → IR + Detector.

A YOLOv5 model yaml lists rows ``[from, number, module, args]`` under ``backbone:`` and ``head:``;
``depth_multiple`` scales ``number`` and ``width_multiple`` the channels, and the last row is a
``Detect`` over some earlier rows with the ``anchors`` (pixels, one flat ``w,h,...`` list per
level, or a bare count that AutoAnchor fills in before training).

Only geometry matters for receptive fields, but the internals of the blocks do: a ``C3`` is two
1x1 branches, ``n`` bottlenecks (1x1 then 3x3, with a residual add) and a 1x1 merge; ``SPPF`` chains
three stride-1 max-pools; ``Focus`` is four stride-2 slices concatenated. Each row becomes a small
subgraph named after YOLOv5's own module path (``model.17``), so users can name layers as YOLOv5
does. Channels are tracked because a ``Bottleneck`` adds its shortcut only when in == out.

Conventions recorded on the levels: YOLOv5 decodes centres as ``(2*sigmoid - 0.5 + i) * S`` (the
nominal centre, sigmoid = 0.5, is the cell centre ``(i + 0.5) * S``); its assigner is the ratio test
``max(w/aw, aw/w, h/ah, ah/h) < anchor_t`` with the ``hyp.scratch-low.yaml`` default 4.0; and it
reverses the anchor order at build when it contradicts the stride order (``check_anchor_order``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.errors import FormatError
from anchorfit.formats.base import (
    Format,
    finish,
    head_convs,
    make_network,
    pyramid_name,
    top_level_keys,
    unique_names,
)
from anchorfit.formats.parsers.yamlsrc import YMap, load_yaml
from anchorfit.formats.ultralytics_rows import (
    DEFAULT_INPUT,
    SUPPORTED,
    Ctx,
    build_row,
    build_rows,
    class_count,
    multiples,
    parse_rows,
    resolve_arg,
    row_error,
    sources,
    top_int,
    yaml_line,
)
from anchorfit.formats.validate import Where, positive_int
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder

DEFAULT_ANCHOR_T = 4.0  # hyp.scratch-low.yaml (the default hyperparameters)


def is_yolov5_yaml(data: Any) -> bool:
    """A YOLOv5 model yaml has ``backbone:`` and ``head:`` row lists."""
    return isinstance(data, dict) and "backbone" in data and "head" in data


def _anchor_levels(anchors: Any, count: int, source: Path, line: int | None) -> list[list[Anchor]] | None:
    """Per-level anchors from the yaml, or None when only a count per level is given."""
    if isinstance(anchors, (int, float)) and not isinstance(anchors, bool):
        positive_int(anchors, Where(source, line, "anchors", "a count of anchors per level: "))
        return None
    if not isinstance(anchors, list) or len(anchors) != count:
        raise FormatError(f"anchors must be a count or one list per Detect input ({count}), got "
                          f"{anchors!r}", source=source, line=line, key="anchors")
    levels = []
    for i, flat in enumerate(anchors):
        if not isinstance(flat, list) or len(flat) % 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                and 0 < v < 1e300 for v in flat):  # also NaN, inf and ints past float range
            raise FormatError(f"anchors level {i}: expected w1,h1,w2,h2,... positive numbers, got "
                              f"{flat!r}", source=source, line=yaml_line(flat) or line, key="anchors")
        levels.append([Anchor(float(flat[j]), float(flat[j + 1])) for j in range(0, len(flat), 2)])
    return levels


def load_yolov5(path: Path, input_size: tuple[int, int] | None = None, *,
                data: Any = None, anchor_t: float = DEFAULT_ANCHOR_T) -> Detector:
    """Read a YOLOv5 model yaml into a Detector whose network is the IR of the whole model."""
    path = Path(path)
    if data is None:
        data = load_yaml(path)
    if not isinstance(data, YMap):
        raise FormatError("expected a YAML mapping with backbone: and head:", source=path)
    if not is_yolov5_yaml(data):
        raise FormatError(f"{_not_a_model(path, data)}, not a model: a YOLOv5 or Ultralytics "
                          "model yaml has 'backbone:' and 'head:' row lists", source=path,
                          line=data.line)
    from anchorfit.formats.ultralytics_modern import is_ultralytics_yaml, load_ultralytics

    if is_ultralytics_yaml({str(k) for k in data}):
        return load_ultralytics(path, input_size, data=data)  # the package's yamls: own rules
    gd, gw = multiples(data, path)
    nc = data.get("nc", 80)
    anchors_value = data.get("anchors")
    rows = parse_rows(data, path)
    if not rows or rows[-1].module not in ("Detect", "Segment"):
        last = rows[-1] if rows else None
        raise FormatError("the last head row must be Detect(nc, anchors)", source=path,
                          line=last.line if last else data.key_lines.get("head"), key="head")
    size = input_size or (DEFAULT_INPUT, DEFAULT_INPUT)
    ctx = Ctx(GraphBuilder(path.stem), path)
    image = ctx.b.input("images")
    in_ch = top_int(data, "ch", 3, path)
    names = {"nc": nc, "anchors": anchors_value}
    layer_names: dict[str, str] = {}
    detect_row = rows[-1]
    build_rows(ctx, rows[:-1], image, in_ch, names, gd, layer_names,
               lambda c, row, x, c1: build_row(c, row, x, c1, gw))
    # Detect
    srcs = sources(detect_row, ctx, path)
    if any(j == -1 for j in srcs):
        raise row_error(ctx, detect_row, "Detect must read earlier rows")
    det_args = resolve_arg(detect_row.args, names)
    det_anchors = det_args[1] if len(det_args) > 1 else anchors_value
    per_level = _anchor_levels(det_anchors, len(srcs), path,
                               data.key_lines.get("anchors", detect_row.line))
    graph = ctx.b.build()
    analysis = analyze(graph, size)
    strides = [analysis[ctx.outputs[j]].stride for j in srcs]
    notes = list(ctx.notes)
    if per_level is None:
        na = int(det_anchors) if isinstance(det_anchors, (int, float)) else 3
        notes.append(f"anchors: to be fitted ({path.name} gives only a count, {det_anchors!r} per "
                     "level; YOLOv5 runs AutoAnchor before training)")
    else:
        per_level, flipped = _check_anchor_order(per_level, [float(s[1]) for s in strides])
        if flipped:
            notes.append("anchor order contradicts the stride order; YOLOv5 reverses it at build "
                         "(check_anchor_order) and so does anchorfit")
    if ctx.global_context:
        notes.append("C3TR holds a transformer block: those levels depend on the whole image "
                     "(global_context); rf is the local RF")
    level_names = unique_names([pyramid_name(s[1]) for s in strides])
    levels = []
    for i, (j, stride) in enumerate(zip(srcs, strides)):
        step = (float(stride[0]), float(stride[1]))
        levels.append(Level(
            name=level_names[i], node=ctx.outputs[j], stride=stride, step=step,
            anchors=list(per_level[i]) if per_level is not None else [],
            center="cell-center", center_offset=0.5, head=head_convs([1]),
            assigner=Assigner("yolo-ratio", None, None, anchor_t=anchor_t),
            extra={"row": j, **({"anchors_to_fit": na} if per_level is None else {})}))
    net = make_network(path.stem, graph, size, levels, notes, layer_names)
    det = Detector(path.stem, size, levels, "letterbox", {"long": max(size)}, str(path), net,
                   class_count(data, path), notes,
                   extra={"format": "yolov5", "depth_multiple": gd, "width_multiple": gw,
                          "anchors_to_fit": per_level is None})
    return finish(det)


def _not_a_model(path: Path, data: YMap) -> str:
    """What a YOLOv5/Ultralytics yaml without rows is. Dataset files have one format in both
    code bases; the usage comment says which one a file was written for (YOLOv5's
    ``python train.py --data``, the package's ``yolo train data=``)."""
    if "anchor_t" in data:
        return "a YOLOv5 hyperparameter file"
    if {"task", "mode"} <= set(data):
        return "an Ultralytics settings/hyperparameter file (default.yaml)"
    if "names" in data or "train" in data:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        return ("a YOLOv5 dataset file" if "train.py" in text or "yolo train" not in text
                else "an Ultralytics dataset file")
    if any(str(k).startswith("anchors_") for k in data):
        return "a YOLOv5 anchor-set collection"
    return "no network"


def _check_anchor_order(levels: list[list[Anchor]], strides: list[float]
                        ) -> tuple[list[list[Anchor]], bool]:
    """YOLOv5's check_anchor_order: flip whole levels if mean area order ≠ stride order."""
    areas = [sum(a.w * a.h for a in lv) / len(lv) for lv in levels]
    da, ds = areas[-1] - areas[0], strides[-1] - strides[0]
    if da and ds and (da > 0) != (ds > 0):
        return list(reversed(levels)), True
    return levels, False


__all__ = ["DEFAULT_ANCHOR_T", "FORMAT", "SUPPORTED", "is_yolov5_yaml", "load_yolov5"]


def _sniff(path: Path, text: str) -> bool:
    """A YOLOv5 model (backbone + head), or a YOLOv5 file that is not a model (hyp, anchor
    sets, dataset), so the user hears what the file is instead of "unknown format"."""
    from anchorfit.formats.ultralytics_modern import is_ultralytics_yaml

    keys = top_level_keys(text)
    if is_ultralytics_yaml(keys):
        return False  # the Ultralytics package reader's
    return ({"backbone", "head"} <= keys or {"anchor_t", "lr0"} <= keys
            or {"task", "mode", "lr0"} <= keys
            or any(k.startswith("anchors_p") for k in keys)
            or ("names" in keys and bool({"train", "val"} & keys)))


FORMAT = Format("YOLOv5 model yaml", (".yaml", ".yml"), load_yolov5, sniff=_sniff,
                expects="top-level 'backbone:' and 'head:' row lists", export="yolov5")
