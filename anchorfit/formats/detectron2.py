"""detectron2 ``.yaml`` configs (GeneralizedRCNN, ProposalNetwork, RetinaNet) → IR + Detector.

A detectron2 yaml only states what differs from detectron2's built-in defaults, through a chain of
``_BASE_`` files. The defaults that decide anchors and geometry are restated here (``DEFAULTS``),
so ``Base-RCNN-C4.yaml``, which names no anchors at all, still reads as RPN on res4 with sizes
32…512 and ratios 0.5/1/2. Facts encoded (detectron2's ``config/defaults.py`` and modeling code):

- ``DefaultAnchorGenerator``: for each size, for each aspect ratio h/w: ``w = sqrt(size²/r)``,
  ``h = r*w``; centred at ``(i + OFFSET) * stride`` with ``OFFSET`` 0 (top-left) by default; one
  size list is broadcast to every feature map.
- ResNet puts the stride in the 1x1 conv (``STRIDE_IN_1X1: True``, the MSRA weights); res5 may be
  dilated (``RES5_DILATION``).
- FPN upsamples by 2 (nearest); RPN's FPN adds P6 as a stride-2 1x1 max-pool of P5; RetinaNet's
  adds P6/P7 as 3x3 stride-2 convs starting from res5; FPN models pad the input to a multiple
  of 32.
- Heads: RPN one 3x3 conv; RetinaNet ``NUM_CONVS`` (4) 3x3 convs plus the 3x3 predictor.
- The ``!!python/object/apply:eval`` tag (Base-RetinaNet's sizes) is evaluated safely.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from anchorfit.detector import Assigner, Detector, Level
from anchorfit.errors import FormatError
from anchorfit.formats import nets as _nets
from anchorfit.formats.anchors import cell_anchors
from anchorfit.formats.base import (
    Format,
    finish,
    head_convs,
    make_network,
    read_text,
    top_level_keys,
)
from anchorfit.formats.parsers.pyconfig import Budget, eval_expression
from anchorfit.formats.parsers.yamlsrc import YMap, load_yaml
from anchorfit.formats.validate import (
    Where,
    finite,
    integer,
    non_negative_finite,
    positive_int,
    positive_list,
)
from anchorfit.safeinput import MAX_BASE_DEPTH, MAX_MAP_SIDE, MAX_REPEATS, beyond_limit, locate
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder

DEFAULTS: dict[str, Any] = {
    "MODEL": {
        "META_ARCHITECTURE": "GeneralizedRCNN",
        "BACKBONE": {"NAME": "build_resnet_backbone"},
        "RESNETS": {"DEPTH": 50, "OUT_FEATURES": ["res4"], "STRIDE_IN_1X1": True,
                    "RES5_DILATION": 1},
        "FPN": {"IN_FEATURES": []},
        "ANCHOR_GENERATOR": {"NAME": "DefaultAnchorGenerator", "SIZES": [[32, 64, 128, 256, 512]],
                             "ASPECT_RATIOS": [[0.5, 1.0, 2.0]], "OFFSET": 0.0},
        "RPN": {"HEAD_NAME": "StandardRPNHead", "IN_FEATURES": ["res4"],
                "IOU_THRESHOLDS": [0.3, 0.7]},
        "RETINANET": {"NUM_CLASSES": 80, "IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
                      "NUM_CONVS": 4, "IOU_THRESHOLDS": [0.4, 0.5]},
        "ROI_HEADS": {"NUM_CLASSES": 80},
    },
    "INPUT": {"MIN_SIZE_TEST": 800, "MAX_SIZE_TEST": 1333},
}
_ARCHS = ("GeneralizedRCNN", "ProposalNetwork", "RetinaNet")
_BACKBONES = ("build_resnet_backbone", "build_resnet_fpn_backbone",
              "build_retinanet_resnet_fpn_backbone")


def _merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_EVAL_TAG = re.compile(r"!!python/object/apply:eval\s*\[\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*')\s*\]")
_EVAL_MARK = "\x00eval:"


def _load(path: Path, budget: Budget | None = None) -> Any:
    """YAML with detectron2's ``!!python/object/apply:eval ["EXPR"]`` evaluated safely.

    ``yaml.safe_load`` rejects the tag; it is rewritten (on its own line, so line numbers stay
    true) into a marked string, and marked strings are evaluated by the safe config evaluator.
    """
    text = read_text(path)
    lines = {}

    def mark(m: re.Match[str]) -> str:
        line = text.count("\n", 0, m.start()) + 1
        try:
            expr = str(yaml.safe_load(m.group(1)))  # one quoted scalar: no aliases, no nesting
        except yaml.YAMLError as exc:
            raise FormatError(f"bad quoted expression after !!python/object/apply:eval: "
                              f"{getattr(exc, 'problem', None) or exc}", source=path,
                              line=line) from None
        lines[expr] = line
        return yaml.safe_dump(_EVAL_MARK + expr, default_style='"').strip()

    data = load_yaml(path, _EVAL_TAG.sub(mark, text))

    def walk(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_EVAL_MARK):
            expr = value[len(_EVAL_MARK):]
            return eval_expression(expr, path, lines.get(expr), budget)
        if isinstance(value, dict):
            for k in list(value):
                value[k] = walk(value[k])
        elif isinstance(value, list):
            value[:] = [walk(v) for v in value]
        return value

    return walk(data)


def load_config(path: Path, _stack: tuple[Path, ...] = (), _budget: Budget | None = None
                ) -> tuple[dict, dict[str, tuple[Path, int]]]:
    """The merged config of ``path`` and its ``_BASE_`` chain, and where each top key was set.

    ``_BASE_`` is followed wherever it points (relative to the file, or absolute), as detectron2
    does; bases are only read as YAML data. Chains deeper than ``MAX_BASE_DEPTH`` are refused,
    and one evaluation ``Budget`` covers every ``!!python/object/apply:eval`` of the chain.
    """
    budget = Budget() if _budget is None else _budget
    data = _load(path, budget)
    if not isinstance(data, YMap):
        raise FormatError("expected a YAML mapping", source=path, line=1)
    where = _key_lines(data, path)
    base_ref = data.pop("_BASE_", None)
    merged: dict = {}
    if base_ref is not None:
        line = data.key_lines.get("_BASE_")
        if not isinstance(base_ref, str):
            raise FormatError(f"_BASE_ must be a file path, not {type(base_ref).__name__}",
                              source=path, line=line, key="_BASE_")
        if len(_stack) >= MAX_BASE_DEPTH:
            raise FormatError(beyond_limit("_BASE_ chain depth", len(_stack) + 1, MAX_BASE_DEPTH),
                              source=path, line=line, key="_BASE_")
        bpath, what = locate(path.parent, base_ref)
        here = path.resolve()
        if bpath in (*_stack, here):
            chain = " → ".join(p.name for p in (*_stack, here, bpath))
            raise FormatError(f"_BASE_ cycle: {chain}", source=path, line=line, key="_BASE_")
        if what:
            raise FormatError(f"_BASE_ file {base_ref!r} {what}", source=path, line=line,
                              key="_BASE_")
        merged, base_where = load_config(bpath, (*_stack, here), budget)
        where = {**base_where, **where}
    return _merge(merged, dict(data)), where


def _key_lines(data: YMap, path: Path, prefix: str = "") -> dict[str, tuple[Path, int]]:
    """File and line of every key, top-level (``MODEL``) and nested (``MODEL.RPN.IN_FEATURES``),
    so that a message about a nested value points at its own line."""
    out: dict[str, tuple[Path, int]] = {}
    for key, line in data.key_lines.items():
        out[prefix + key] = (path, line)
        value = data.get(key)
        if isinstance(value, YMap):
            out.update(_key_lines(value, path, f"{prefix}{key}."))
    return out


def _located(where: dict[str, tuple[Path, int]], key: str, path: Path) -> tuple[Path, int | None]:
    """The line of ``key``, else of its nearest enclosing key that the files set."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in where:
            return where[".".join(parts[:n])]
    return path, None


def _per_feature(values: list, n: int, what: str) -> list:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{what}: {len(values)} lists for {n} feature maps")
    return values


def _thresholds(section: dict, where: Where) -> tuple[float, float]:
    """``IOU_THRESHOLDS``: [negative below, positive from], finite numbers."""
    value = section.get("IOU_THRESHOLDS")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise where.error(f"expected [low, high] IoU thresholds, got {value!r}")
    return finite(value[0], where), finite(value[1], where)


def _check_sections(defaults: dict, own: dict, prefix: str,
                    where: dict[str, tuple[Path, int]], path: Path) -> None:
    """Every key whose default is a section (``MODEL.BACKBONE``) must be a mapping in the file
    too: ``BACKBONE:`` left empty reads as None, which would otherwise fail far from its line."""
    for key, value in own.items():
        default = defaults.get(key)
        full = f"{prefix}{key}"
        if isinstance(default, dict):
            if not isinstance(value, dict):
                src, line = _located(where, full, path)
                raise FormatError(f"must be a mapping of options, got {value!r}",
                                  source=src, line=line, key=full)
            _check_sections(default, value, full + ".", where, path)


def load_detectron2(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """Read a detectron2 yaml (with ``_BASE_`` chain and built-in defaults) into a Detector."""
    path = Path(path)
    own, where = load_config(path)
    if "MODEL" not in own:
        raise FormatError("no MODEL section: not a detectron2 model config", source=path, line=1)
    _check_sections(DEFAULTS, own, "", where, path)
    cfg = _merge(DEFAULTS, own)
    model = cfg["MODEL"]

    def err(message: str, key: str) -> FormatError:
        src, line = _located(where, key, path)
        return FormatError(message, source=src, line=line, key=key)

    arch = model["META_ARCHITECTURE"]
    if arch not in _ARCHS:
        raise err(f"META_ARCHITECTURE {arch!r} is not supported ({', '.join(_ARCHS)})",
                  "MODEL.META_ARCHITECTURE")
    backbone = model["BACKBONE"]["NAME"]
    if backbone not in _BACKBONES:
        raise err(f"backbone {backbone!r} is not supported ({', '.join(_BACKBONES)})",
                  "MODEL.BACKBONE.NAME")
    res = model["RESNETS"]

    def where_of(key: str) -> Where:
        src, line = _located(where, key, path)
        return Where(src, line, key)

    def names(value: Any, key: str) -> list[str]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise err(f"expected a list of feature names such as ['p3', 'p4'], got {value!r}",
                      key)
        return list(value)

    dil = positive_int(res.get("RES5_DILATION", 1), where_of("MODEL.RESNETS.RES5_DILATION"))
    spec = _nets.ResNetSpec(depth=positive_int(res.get("DEPTH", 50),
                                               where_of("MODEL.RESNETS.DEPTH")),
                            strides=(1, 2, 2, 1 if dil == 2 else 2), dilations=(1, 1, 1, dil),
                            stride_in_1x1=bool(res.get("STRIDE_IN_1X1", True)))
    retina = arch == "RetinaNet"
    features = names(model["RETINANET"]["IN_FEATURES"] if retina else model["RPN"]["IN_FEATURES"],
                     "MODEL.RETINANET.IN_FEATURES" if retina else "MODEL.RPN.IN_FEATURES")
    fpn = backbone != "build_resnet_backbone"
    divisor = 32 if fpn else 0
    def at_most(value: int, limit: int, key: str) -> int:
        """``value`` up to ``limit``: an input side past 65536 px (the CLI's --input limit)
        only exhausts memory in the RF engine; a conv count past 1000 builds 10**8 layers."""
        if value > limit:
            raise where_of(key).error(beyond_limit(key.rsplit(".", 1)[-1], value, limit))
        return value

    short = at_most(positive_int(cfg["INPUT"]["MIN_SIZE_TEST"], where_of("INPUT.MIN_SIZE_TEST")),
                    MAX_MAP_SIDE, "INPUT.MIN_SIZE_TEST")
    long = at_most(positive_int(cfg["INPUT"]["MAX_SIZE_TEST"], where_of("INPUT.MAX_SIZE_TEST")),
                   MAX_MAP_SIDE, "INPUT.MAX_SIZE_TEST")
    size = input_size or (short, long)
    notes = []
    if divisor and (size[0] % divisor or size[1] % divisor):
        padded = (-(-size[0] // divisor) * divisor, -(-size[1] // divisor) * divisor)
        notes.append(f"input {size[0]}x{size[1]} padded to {padded[0]}x{padded[1]} "
                     "(size_divisibility 32)")
        size = padded
    b = GraphBuilder(path.stem)
    stages = _nets.resnet(b, b.input("input"), spec, "backbone.bottom_up.")
    maps = {f"res{i + 2}": node for i, node in enumerate(stages)}
    if fpn:
        in_feats = names(model["FPN"]["IN_FEATURES"], "MODEL.FPN.IN_FEATURES")
        if not in_feats or any(f not in maps for f in in_feats):
            raise err(f"FPN.IN_FEATURES {in_feats!r} must name res2..res5", "MODEL.FPN")
        extras = 2 if backbone == "build_retinanet_resnet_fpn_backbone" else 1
        outs = _nets.fpn(b, [maps[f] for f in in_feats], size, len(in_feats) + extras,
                         add_extra_convs="on_input" if extras == 2 else False,
                         extra_source=maps["res5"], prefix="backbone.fpn.")
        first = int(in_feats[0][3:])
        maps = {f"p{first + i}": node for i, node in enumerate(outs)}
    missing = [f for f in features if f not in maps]
    if missing:
        raise err(f"IN_FEATURES {missing} are not produced by {backbone} (it gives "
                  f"{', '.join(maps)})", "MODEL.RETINANET" if retina else "MODEL.RPN")
    gen = model["ANCHOR_GENERATOR"]
    if gen.get("NAME", "DefaultAnchorGenerator") != "DefaultAnchorGenerator":
        raise err(f"anchor generator {gen['NAME']!r} is not supported "
                  "(DefaultAnchorGenerator)", "MODEL.ANCHOR_GENERATOR")
    try:
        sizes = _per_feature([list(s) for s in gen["SIZES"]], len(features), "SIZES")
        ratios = _per_feature([list(r) for r in gen["ASPECT_RATIOS"]], len(features),
                              "ASPECT_RATIOS")
    except (ValueError, TypeError) as exc:
        raise err(str(exc), "MODEL.ANCHOR_GENERATOR") from None
    for key, lists in (("SIZES", sizes), ("ASPECT_RATIOS", ratios)):
        for values in lists:
            positive_list(values, where_of(f"MODEL.ANCHOR_GENERATOR.{key}"))
    offset = non_negative_finite(gen.get("OFFSET", 0.0), where_of("MODEL.ANCHOR_GENERATOR.OFFSET"))
    graph = b.build()
    analysis = analyze(graph, size)
    if retina:
        lo, hi = _thresholds(model["RETINANET"], where_of("MODEL.RETINANET.IOU_THRESHOLDS"))
        convs = integer(model["RETINANET"].get("NUM_CONVS", 4),
                        where_of("MODEL.RETINANET.NUM_CONVS"), minimum=0)
        kernels = [3] * (at_most(convs, MAX_REPEATS, "MODEL.RETINANET.NUM_CONVS") + 1)
    else:
        lo, hi = _thresholds(model["RPN"], where_of("MODEL.RPN.IOU_THRESHOLDS"))
        kernels = [3]
    assigner = Assigner("iou", float(hi), float(lo))
    levels = []
    for i, feat in enumerate(features):
        node = maps[feat]
        stride = analysis[node].stride
        levels.append(Level(feat, node, stride, (float(stride[0]), float(stride[1])),
                            cell_anchors([float(s) for s in sizes[i]], [float(r) for r in ratios[i]]),
                            None, "top-left" if offset == 0 else "cell-center" if offset == 0.5
                            else "explicit", offset, head_convs(kernels), assigner))
    classes_key = "MODEL.RETINANET.NUM_CLASSES" if retina else "MODEL.ROI_HEADS.NUM_CLASSES"
    num_classes = None if arch == "ProposalNetwork" else positive_int(
        model["RETINANET"]["NUM_CLASSES"] if retina else model["ROI_HEADS"]["NUM_CLASSES"],
        where_of(classes_key))
    network = make_network(path.stem, graph, size, levels, notes=notes)
    det = Detector(path.stem, size, levels, "shortside", {"short": short, "max": long}, str(path),
                   network, num_classes, notes,
                   extra={"format": "detectron2", "meta_architecture": arch})
    return finish(det)


def _sniff(path: Path, text: str) -> bool:

    return bool({"MODEL", "_BASE_"} & top_level_keys(text))


FORMAT = Format("detectron2 config", (".yaml", ".yml"), load_detectron2, sniff=_sniff,
                expects="a top-level 'MODEL:' or '_BASE_:'", export="detectron2")

__all__ = ["DEFAULTS", "FORMAT", "cell_anchors", "load_config", "load_detectron2"]
