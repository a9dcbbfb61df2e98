"""Ultralytics model ``.yaml`` (YOLOv3u/v5u/v6/v8/v9/v10/11/12/26, RT-DETR) → IR + Detector.

The rows are YOLOv5's ``[from, number, module, args]`` (parsed by the YOLOv5 reader's code), but
the package's ``parse_model`` differs in ways that change geometry or channels:

* ``scales:`` maps a letter to ``[depth, width, max_channels]``; the scale comes from the file
  name as Ultralytics' ``guess_model_scale`` reads it (``yolov8s.yaml`` → s), else the first
  scale (Ultralytics warns and does the same), recorded in the notes. Output channels are
  ``make_divisible(min(c2, max_channels) * width, 8)``.
* ``Bottleneck`` is 3x3 then 3x3 (YOLOv5's is 1x1 then 3x3), so YOLOv3u's residual blocks see
  more than YOLOv5's hub yolov3.yaml; ``C3`` still passes k=(1, 3) and matches YOLOv5.
* C3k2 is forced to C3k blocks at scales m/l/x, A2C2f gets a residual at l/x.
* The heads are anchor-free: ``Detect``/``OBB`` (DFL with ``reg_max`` bins, 16 unless the yaml
  says, 1 in YOLO26), ``v10Detect`` (end-to-end, one-to-one + one-to-many) and RT-DETR's
  ``RTDETRDecoder`` (a transformer decoder over all levels).

What a level stores for a DFL head: centres at ``(i + 0.5) * S`` (``make_anchors`` with offset
0.5); ``anchor_free_range = (0, 2 * (reg_max - 1) * S]``, the largest box side a cell at the box
centre can regress, since each side's distance is at most ``reg_max - 1`` strides
(``extra['side_reach']``); with ``reg_max = 1`` there is no DFL and the regression is unbounded, so
the range is the input's long side. The assigner is TaskAlignedAssigner (``extra``: topk 10,
alpha 0.5, beta 6; end-to-end heads add a one-to-one branch with topk 7 then 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchorfit.detector import Assigner, Detector, Level
from anchorfit.errors import FormatError
from anchorfit.formats import ultralytics_modules as um
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
    Ctx,
    Row,
    build_row,
    build_rows,
    class_count,
    make_divisible,
    multiples,
    parse_rows,
    row_error,
    row_where,
    sources,
    top_int,
    yaml_line,
)
from anchorfit.formats.validate import Where, integer, positive_finite
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder

DETECT_HEADS = {"Detect", "OBB", "OBB26", "v10Detect"}
HEADS = {*DETECT_HEADS, "RTDETRDecoder"}
#: Heads of other tasks: not detection levels anchorfit can read.
OTHER_HEADS = {"Segment": "segmentation", "Segment26": "segmentation", "Pose": "pose",
               "Pose26": "pose", "Classify": "classification", "WorldDetect": "open-vocabulary",
               "YOLOEDetect": "open-vocabulary", "YOLOESegment": "open-vocabulary"}
#: parse_model's base_modules: args[0] is c2, scaled by width and capped by max_channels.
_BASE = {"Conv", "ConvTranspose", "GhostConv", "Bottleneck", "GhostBottleneck", "SPP", "SPPF",
         "C2fPSA", "C2PSA", "DWConv", "Focus", "BottleneckCSP", "C1", "C2", "C2f", "C3k2",
         "RepNCSPELAN4", "ELAN1", "ADown", "AConv", "SPPELAN", "C2fAttn", "C3", "C3TR", "C3Ghost",
         "nn.ConvTranspose2d", "DWConvTranspose2d", "C3x", "RepC3", "PSA", "SCDown", "C2fCIB",
         "A2C2f"}
#: modules whose row ``number`` is a repeat count inside the block.
_REPEAT = {"BottleneckCSP", "C1", "C2", "C2f", "C3k2", "C2fAttn", "C3", "C3TR", "C3Ghost", "C3x",
           "RepC3", "C2fPSA", "C2fCIB", "C2PSA", "A2C2f"}
#: built by the YOLOv5 reader (same geometry in both code bases).
_FROM_V5 = {"C3", "C3x", "C3Ghost", "C3TR", "SPP", "Focus", "GhostConv", "GhostBottleneck",
            "Concat", "nn.Upsample", "nn.MaxPool2d", "nn.ZeroPad2d", "nn.Identity",
            "nn.BatchNorm2d", "nn.ReLU", "nn.SiLU", "nn.Dropout"}
_OWN = {"Conv", "DWConv", "nn.ConvTranspose2d", "ConvTranspose", "Bottleneck", "C2", "C2f", "C3k2",
        "C3k", "SPPF", "SPPELAN", "RepNCSPELAN4", "ELAN1", "ADown", "AConv", "SCDown", "C2fCIB",
        "RepVGGDW", "PSA", "C2PSA", "A2C2f", "AIFI", "HGStem", "HGBlock", "ResNetLayer", "RepC3"}
SUPPORTED = sorted(_FROM_V5 | _OWN | HEADS)

TAL = {"assigner": "TaskAlignedAssigner", "topk": 10, "alpha": 0.5, "beta": 6.0}
#: E2ELoss: one-to-many TAL topk 10 plus one-to-one TAL topk 7 then topk2 1.
E2E = {**TAL, "one2one": {"topk": 7, "topk2": 1}}
#: RTDETRDecoder._generate_anchors: proposal box side 0.05 * 2**level, in image units
RTDETR_GRID = 0.05


def is_ultralytics_yaml(keys: set[str]) -> bool:
    """Ultralytics package model yaml: rows plus ``scales:``, or rows without YOLOv5's
    ``anchors:`` (YOLOv3u/v9 files have neither, their Detect takes only ``nc``)."""
    return {"backbone", "head"} <= keys and ("scales" in keys or "anchors" not in keys)


def guess_scale(path: Path) -> str:
    """The scale letter in a file name, as Ultralytics' ``guess_model_scale`` reads it."""
    m = re.search(r"yolo(e-)?[v]?\d+([nslmx])", path.stem)
    return m.group(2) if m else ""


@dataclass
class _Scale:
    name: str
    depth: float
    width: float
    max_channels: float


def _scale(data: YMap, path: Path, notes: list[str]) -> _Scale:
    scales = data.get("scales")
    if not scales:
        return _Scale("", *multiples(data, path), float("inf"))
    if not isinstance(scales, dict):
        raise FormatError("'scales' must map a letter to [depth, width, max_channels]",
                          source=path, line=data.key_lines.get("scales"), key="scales")
    want = str(data.get("scale") or guess_scale(path))
    if want and want not in scales:
        raise FormatError(f"scale {want!r} (from the file name) is not in scales: "
                          f"{', '.join(map(str, scales))}", source=path,
                          line=data.key_lines.get("scales"), key="scales")
    if not want:
        want = str(next(iter(scales)))
        if len(scales) == 1:
            notes.append(f"scale {want!r}: the only one in scales:")
        else:
            notes.append(f"no model scale in the file name; scale {want!r} assumed (the first "
                         f"in scales:, as Ultralytics does); name the file e.g. "
                         f"{path.stem}{'s' if want != 's' else 'm'}{path.suffix} for another")
    value = scales[want]
    if not isinstance(value, list) or len(value) != 3:
        raise FormatError(f"scale {want!r} must be [depth, width, max_channels], got {value!r}",
                          source=path, line=data.key_lines.get("scales"), key="scales")
    where = Where(path, yaml_line(value) or data.key_lines.get("scales"), f"scales.{want}")
    depth, width, most = (positive_finite(v, where) for v in value)
    return _Scale(want, depth, width, most)


def _arg(a: list[Any], i: int, default: Any) -> Any:
    return a[i] if len(a) > i and a[i] is not None else default


def _int(ctx: Ctx, row: Row, a: list[Any], i: int, default: int | None, what: str,
         minimum: int | None = 1) -> int:
    """Row argument ``i`` as an integer, positive unless ``minimum`` says otherwise
    (``default`` when absent; None: required)."""
    value = _arg(a, i, default)
    if value is None:
        raise row_error(ctx, row, f"missing argument {i} ({what}) in args {a!r}")
    return integer(value, row_where(ctx, row, what), minimum=minimum)


def _build(ctx: Ctx, row: Row, x: str | list[str], c1: int, sc: _Scale) -> tuple[str, int]:
    """One row's subgraph and output channels, following parse_model."""
    m, a, p = row.module, row.args, f"model.{row.index}"
    n = row.number
    c2 = c1
    if m in _BASE:
        if not a or not isinstance(a[0], (int, float)):
            raise row_error(ctx, row, f"expected the output channels first in args, got {a!r}")
        positive_finite(a[0], row_where(ctx, row, "channels"))
        c2 = make_divisible(min(float(a[0]), sc.max_channels) * sc.width)
    inner_n = n if m in _REPEAT else 1
    copies = 1 if m in _REPEAT or m == "HGBlock" else n

    def rep(one: Any, first: str) -> str:
        y = first
        for i in range(copies):
            y = one(y, p if copies == 1 else f"{p}.{i}")
        return y

    if m in _FROM_V5:
        v5row = Row(row.index, row.frm, n, m, a, row.line)
        out, ch = build_row(ctx, v5row, x, c1, sc.width)
        return out, (c2 if m in _BASE else ch)
    assert isinstance(x, str)
    c = ctx
    if m in ("Conv", "DWConv"):
        k, s = _arg(a, 1, 1), _arg(a, 2, 1)
        pad, d = (None, _arg(a, 3, 1)) if m == "DWConv" else (_arg(a, 3, None), _arg(a, 5, 1))
        return rep(lambda y, q: um.conv(c, y, q, k, s, pad, d), x), c2
    if m in ("nn.ConvTranspose2d", "ConvTranspose"):
        default = 2 if m == "ConvTranspose" else 1  # ConvTranspose(k=2, s=2); torch's k has none
        k, s, pad = _arg(a, 1, default), _arg(a, 2, default), _arg(a, 3, 0)
        return rep(lambda y, q: c.b.transposed(y, k, s, pad, name=q), x), c2
    if m == "Bottleneck":
        shortcut = bool(_arg(a, 1, True))
        k = _arg(a, 3, (3, 3))
        out, ch = x, c1
        for i in range(n):
            out = um.bottleneck(c, out, p if n == 1 else f"{p}.{i}", shortcut and ch == c2, k)
            ch = c2
        return out, c2
    if m == "C2":
        return um.c2(c, x, p, inner_n, bool(_arg(a, 1, True))), c2
    if m == "C2f":
        shortcut = bool(_arg(a, 1, False))
        return um.c2f(c, x, p, inner_n, lambda y, q: um.bottleneck(c, y, q, shortcut)), c2
    if m == "C3k2":
        use_c3k = bool(_arg(a, 1, False)) or sc.name in ("m", "l", "x")
        attn, shortcut = bool(_arg(a, 3, False)), bool(_arg(a, 5, True))
        return um.c3k2(c, x, p, inner_n, use_c3k, attn, shortcut), c2
    if m == "C2fCIB":
        shortcut, lk = bool(_arg(a, 1, False)), bool(_arg(a, 2, False))
        return um.c2f(c, x, p, inner_n, lambda y, q: um.cib(c, y, q, shortcut, lk)), c2
    if m == "SPPF":
        k, reps, sc_ = _arg(a, 1, 5), _arg(a, 2, 3), bool(_arg(a, 3, False))
        return rep(lambda y, q: um.sppf(c, y, q, k, reps, sc_ and c1 == c2), x), c2
    if m == "SPPELAN":
        return rep(lambda y, q: um.sppelan(c, y, q, _arg(a, 2, 5)), x), c2
    if m == "RepNCSPELAN4":
        return rep(lambda y, q: um.rep_ncsp_elan4(c, y, q, _arg(a, 3, 1)), x), c2
    if m == "ELAN1":
        return rep(lambda y, q: um.elan1(c, y, q), x), c2
    if m == "ADown":
        return rep(lambda y, q: um.adown(c, y, q), x), c2
    if m == "AConv":
        return rep(lambda y, q: um.aconv(c, y, q), x), c2
    if m == "SCDown":
        return rep(lambda y, q: um.scdown(c, y, q, a[1], a[2]), x), c2
    if m == "RepVGGDW":
        return rep(lambda y, q: um.rep_vgg_dw(c, y, q), x), c1
    if m == "PSA":
        return rep(lambda y, q: um.psa(c, y, q), x), c2
    if m == "C2PSA":
        return um.c2psa(c, x, p, inner_n), c2
    if m == "A2C2f":
        a2, area = bool(_arg(a, 1, True)), _int(ctx, row, a, 2, 1, "area", None)  # -1: no areas
        residual = bool(_arg(a, 3, False)) or (a2 and sc.name in ("l", "x"))
        return um.a2c2f(c, x, p, inner_n, a2, area, residual), c2
    if m == "C3k":
        inner, k = _int(ctx, row, a, 1, 1, "n"), _int(ctx, row, a, 5, 3, "k")
        return rep(lambda y, q: um.c3k(c, y, q, inner, bool(_arg(a, 2, True)), k), x), \
            _int(ctx, row, a, 0, None, "channels")
    if m == "RepC3":
        return um.rep_c3(c, x, p, inner_n), c2
    if m == "AIFI":
        return rep(lambda y, q: um.aifi(c, y, q), x), c1
    if m == "HGStem":
        return rep(lambda y, q: um.hg_stem(c, y, q), x), _int(ctx, row, a, 1, None, "channels")
    if m == "HGBlock":
        c2 = _int(ctx, row, a, 1, None, "channels")
        k, light, short = _arg(a, 2, 3), bool(_arg(a, 3, False)), bool(_arg(a, 4, False))
        return um.hg_block(c, x, p, k, n, light, short and c1 == c2), c2
    if m == "ResNetLayer":
        cin, cmid = _int(ctx, row, a, 0, None, "c1"), _int(ctx, row, a, 1, None, "c2")
        s, first = _int(ctx, row, a, 2, 1, "stride"), bool(_arg(a, 3, False))
        blocks, e = _int(ctx, row, a, 4, 1, "n"), _int(ctx, row, a, 5, 4, "expansion")
        out = rep(lambda y, q: um.resnet_layer(c, y, q, cin, cmid, s, first, blocks, e), x)
        return out, cmid if first else cmid * e
    if m in OTHER_HEADS:
        raise row_error(ctx, row, f"a {OTHER_HEADS[m]} head, not a detection head anchorfit "
                                   "reads (Detect, OBB, v10Detect, RTDETRDecoder)")
    raise row_error(ctx, row, f"unknown module {m!r}; anchorfit reads {', '.join(SUPPORTED)}")


def load_ultralytics(path: Path, input_size: tuple[int, int] | None = None, *,
                     data: Any = None) -> Detector:
    """Read an Ultralytics package model yaml into a Detector (IR of the whole model)."""
    path = Path(path)
    if data is None:
        data = load_yaml(path)
    if not isinstance(data, YMap) or "backbone" not in data or "head" not in data:
        raise FormatError("expected an Ultralytics model yaml with 'backbone:' and 'head:' rows",
                          source=path, line=getattr(data, "line", None))
    notes: list[str] = []
    sc = _scale(data, path, notes)
    nc = data.get("nc", 80)
    reg_max = top_int(data, "reg_max", 16, path)
    end2end = bool(data.get("end2end", False))
    rows = parse_rows(data, path)
    head = rows[-1] if rows else None
    if head is None or head.module not in HEADS:
        if head is not None and head.module in OTHER_HEADS:
            raise FormatError(f"row {head.index} ({head.module}): a {OTHER_HEADS[head.module]} "
                              "model, not a detector", source=path, line=head.line)
        raise FormatError("the last head row must be a detection head (Detect, OBB, v10Detect, "
                          "RTDETRDecoder)", source=path,
                          line=head.line if head else data.key_lines.get("head"), key="head")
    size = input_size or (DEFAULT_INPUT, DEFAULT_INPUT)
    ctx = Ctx(GraphBuilder(path.stem), path)
    image = ctx.b.input("images")
    in_ch = top_int(data, "ch", 3, path)
    names = {"nc": nc}
    layer_names: dict[str, str] = {}
    build_rows(ctx, rows[:-1], image, in_ch, names, sc.depth, layer_names,
               lambda c, row, x, c1: _build(c, row, x, c1, sc))
    srcs = sources(head, ctx, path)
    if any(j == -1 for j in srcs):
        raise row_error(ctx, head, f"{head.module} must read earlier rows")
    if head.module == "v10Detect":
        end2end = True
    p = f"model.{head.index}"
    level_nodes = [ctx.outputs[j] for j in srcs]
    if head.module == "RTDETRDecoder":
        # input_proj (1x1 conv per level), then the decoder's attention over every level
        level_nodes = [ctx.b.pointwise(ctx.b.conv(node, 1, name=f"{p}.input_proj.{i}"),
                                       "decoder", global_context=True, name=f"{p}.decoder.{i}")
                       for i, node in enumerate(level_nodes)]
    graph = ctx.b.build()
    analysis = analyze(graph, size)
    strides = [analysis[node].stride for node in level_nodes]
    if ctx.global_context:
        notes.append("attention blocks (PSA/C2PSA/A2C2f/AIFI) mix the whole map: levels after "
                     "them depend on the whole image (global_context); rf is the local RF")
    level_names = unique_names([pyramid_name(s[1]) for s in strides])
    levels = []
    for i, (j, node, stride) in enumerate(zip(srcs, level_nodes, strides)):
        step = (float(stride[0]), float(stride[1]))
        extra: dict[str, Any] = {"row": j, "head": head.module}
        if head.module == "RTDETRDecoder":
            side = RTDETR_GRID * 2 ** i
            extra.update(assigner="HungarianMatcher", decoder="deformable attention over all "
                         "levels (global)", proposal_box=(side * size[1], side * size[0]))
            level = Level(name=level_names[i], node=node, stride=stride, step=step,
                          anchor_free_range=(0.0, float(max(size))), center="cell-center",
                          center_offset=0.5, head=[],
                          assigner=Assigner("hungarian", None, None), extra=extra,
                          range_measure="none")
        else:
            reach = (reg_max - 1) * max(step)
            hi = 2 * reach if reg_max > 1 else float(max(size))
            extra.update(reg_max=reg_max, side_reach=reach if reg_max > 1 else None,
                         end2end=end2end, **(E2E if end2end else TAL))
            level = Level(name=level_names[i], node=node, stride=stride, step=step,
                          anchor_free_range=(0.0, float(hi)), center="cell-center",
                          center_offset=0.5, head=head_convs([3, 3, 1]),
                          assigner=Assigner("task-aligned", None, None), extra=extra,
                          range_measure="box-side")
        levels.append(level)
    if head.module == "RTDETRDecoder":
        notes.append("RTDETRDecoder: a 1x1 input projection per level, then a transformer "
                     "decoder whose deformable attention samples every level: global context; "
                     "queries start from the top-scoring cells with boxes of side "
                     f"{RTDETR_GRID:g}*2^level of the image; Hungarian matching, no NMS")
    else:
        if reg_max > 1:
            notes.append(f"anchor-free DFL head, reg_max {reg_max}: each side reaches at most "
                         f"{reg_max - 1} strides, so anchor_free_range is (0, "
                         f"{2 * (reg_max - 1)}*stride] (the largest box a centred cell regresses)")
        else:
            notes.append("reg_max 1: no DFL, box sides are unbounded regressions; "
                         "anchor_free_range is capped at the input's long side")
        if head.module in ("OBB", "OBB26"):
            notes.append(f"{head.module}: oriented boxes (Detect + an angle branch); levels "
                         "are read as for Detect, sizes are of the rotated box")
        if end2end:
            notes.append("end-to-end head: a one-to-many branch (TAL topk 10) and a one-to-one "
                         "branch (TAL topk 7 then 1) on the same levels; inference uses the "
                         "one-to-one branch without NMS")
    net = make_network(path.stem, graph, size, levels, notes, layer_names)
    det = Detector(path.stem, size, levels, "letterbox", {"long": max(size)}, str(path), net,
                   class_count(data, path), notes,
                   extra={"format": "ultralytics", "scale": sc.name or None,
                          "depth_multiple": sc.depth, "width_multiple": sc.width,
                          "max_channels": (None if sc.max_channels == float("inf")
                                           else int(sc.max_channels)),
                          "reg_max": reg_max, "end2end": end2end, "head": head.module,
                          "channels": {f"model.{j}": ctx.channels[j] for j in srcs}})
    return finish(det)


def _sniff(path: Path, text: str) -> bool:

    return is_ultralytics_yaml(top_level_keys(text))


FORMAT = Format("Ultralytics model yaml", (".yaml", ".yml"), load_ultralytics, sniff=_sniff,
                expects="top-level 'backbone:' and 'head:' rows with 'scales:' (or without "
                        "YOLOv5's 'anchors:')", export="yolov5")

__all__ = ["FORMAT", "SUPPORTED", "guess_scale", "is_ultralytics_yaml", "load_ultralytics"]
