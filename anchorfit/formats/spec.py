"""anchorfit's own YAML detector spec: a readable layer list plus levels and anchors.

A spec file describes a detector without any framework: the layers that matter for geometry
(conv, pool, pad, upsample, merges...) with their kernel, stride, padding and dilation, the
levels that read feature maps, and the anchors each level tiles. It builds the RF IR directly, so
``anchorfit rf configs/s3fd.yaml`` needs no torch. The schema is documented in ``docs/spec.md``;
the shipped zoo lives in ``configs/`` (and, byte-identical, in the package's ``anchorfit/configs``
so a builtin name such as ``s3fd`` works from an installed package).

Every error names the file and line of the offending entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorfit.detector import Assigner, Detector, Level
from anchorfit.errors import AnchorfitError, FormatError, suggest
from anchorfit.formats.base import Format, detector_network, set_origin, top_level_keys
from anchorfit.formats.parsers.yamlsrc import YMap, line_of, load_yaml
from anchorfit.formats.spec_levels import assigner, level, resize
from anchorfit.formats.spec_network import ALIASES, LAYER_TYPES, layer
from anchorfit.formats.spec_values import Scope, SpecContext, hw, int_value
from anchorfit.formats.validate import Where, index_in_range
from anchorfit.rf.graph import GraphBuilder
from anchorfit.safeinput import MAX_BASE_DEPTH, beyond_limit, locate

TOP_KEYS = {"name", "base", "source", "input", "channels", "resize", "classes", "blocks",
            "layers", "levels", "assigner", "notes"}

def sniff(path: Path, text: str) -> bool:
    """An anchorfit spec has a top-level ``layers:`` or ``levels:`` (or inherits a ``base:``)."""
    keys = top_level_keys(text)
    return bool(keys & {"layers", "levels"}) or ("base" in keys and "backbone" not in keys)


def _check_masks(ctx: SpecContext, docs: list[Any], levels: list[Level]) -> None:
    """A Darknet-style ``mask`` indexes the anchors of all masked levels in file order (the
    cfg's one ``anchors=`` list): each index must be in range and one per anchor of its level."""
    masked = [(doc, lv) for doc, lv in zip(docs, levels) if lv.mask]
    total = sum(len(lv.anchors) for _, lv in masked)
    for doc, lv in masked:
        where = Where(ctx.path, line_of(doc, "mask"), "mask", f"level {lv.name}: ")
        if len(lv.mask) != len(lv.anchors):
            raise where.error(f"{len(lv.mask)} mask indices for {len(lv.anchors)} anchors")
        for m in lv.mask:
            index_in_range(m, total, where, what="anchors of the masked levels")


def load(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """Read a spec file into a Detector (RF numbers are joined by ``Detector.analyze``)."""
    ctx = SpecContext(Path(path))
    doc = _load_with_base(ctx, Path(path), set())
    return build(doc, ctx, input_size)


def _load_with_base(ctx: SpecContext, path: Path, seen: set[Path]) -> YMap:
    """Load a spec; ``base: other.yaml`` supplies every top-level key the file does not set."""
    doc = load_yaml(path)
    if not isinstance(doc, YMap):
        raise FormatError("an anchorfit spec is a mapping with 'input', 'layers' and 'levels'",
                          source=path, line=line_of(doc) or 1)
    base = doc.get("base")
    if base is None:
        return doc
    if not isinstance(base, str):
        raise FormatError("'base' names another spec file", source=path, line=doc.line_of("base"))
    base_path, what = locate(path.parent, base)
    if base_path in seen or base_path == path.resolve():
        raise FormatError(f"'base' cycle through {base}", source=path, line=doc.line_of("base"))
    if len(seen) >= MAX_BASE_DEPTH:
        raise FormatError(beyond_limit("'base' chain depth", len(seen) + 1, MAX_BASE_DEPTH),
                          source=path, line=doc.line_of("base"), key="base")
    if what:
        raise FormatError(f"base file {base} {what}", source=path, line=doc.line_of("base"),
                          key="base")
    parent = _load_with_base(ctx, base_path, seen | {path.resolve()})
    merged = YMap(parent)
    merged.line = doc.line
    merged.key_lines = dict(getattr(parent, "key_lines", {}))
    merged.update({k: v for k, v in doc.items() if k != "base"})
    merged.key_lines.update(doc.key_lines)
    return merged


def build(doc: YMap, ctx: SpecContext, input_size: tuple[int, int] | None = None) -> Detector:
    """Turn a parsed spec into a Detector."""
    unknown = set(doc) - TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ctx.error(f"unknown top-level key {key!r}", doc, key, hint=suggest(key, TOP_KEYS))
    for key in ("input", "layers", "levels"):
        if key not in doc:
            raise ctx.error(f"missing key {key!r}", doc, hint=_MISSING_HINTS[key])
    name = str(doc.get("name") or ctx.path.stem)
    size = input_size or hw(ctx, doc["input"], doc, "input")
    in_channels = int_value(ctx, doc.get("channels", 3), doc, "channels")
    builder = GraphBuilder(name)
    scope = Scope()
    channels: dict[str, int] = {}
    scope.names["input"] = builder.input()
    scope.order.append("input")
    blocks = doc.get("blocks") or {}
    if not isinstance(blocks, dict):
        raise ctx.error("'blocks' maps block names to layer lists", doc, "blocks")
    layers = doc["layers"]
    if not isinstance(layers, list) or not layers:
        raise ctx.error("'layers' must be a non-empty list of layers", doc, "layers")
    for index, entry in enumerate(layers):
        before = len(builder.graph.nodes)
        layer(ctx, builder, scope, entry, index, blocks, channels, prefix="")
        set_origin(builder.graph, before, f"{ctx.path}:{line_of(entry) or '?'}")
    builder.output(scope.order[-1])
    graph = builder.build()
    default_assigner = assigner(ctx, doc.get("assigner"), doc, Assigner())
    levels_doc = doc["levels"]
    if not isinstance(levels_doc, list) or not levels_doc:
        raise ctx.error("'levels' must be a non-empty list", doc, "levels")
    levels = [level(ctx, entry, scope, default_assigner, i) for i, entry in enumerate(levels_doc)]
    _check_masks(ctx, levels_doc, levels)
    graph.outputs[:] = list(dict.fromkeys(lv.node for lv in levels if lv.node))
    policy, params = resize(ctx, doc.get("resize", "stretch"), doc)
    notes = [str(n) for n in doc.get("notes") or []]
    det = Detector(name, size, levels, policy, params, source=str(ctx.path),
                   num_classes=doc.get("classes"), notes=notes)
    if doc.get("source"):
        det.extra["cites"] = str(doc["source"])
    try:
        det.network = detector_network(name, graph, size, levels, channels=channels,
                                       in_channels=in_channels)
        det.network.analyze()
    except FormatError:
        raise
    except AnchorfitError as exc:  # e.g. a window larger than its input
        if exc.source is not None:  # the engine located it at the layer entry (Node.origin)
            raise
        raise FormatError(exc.message, source=ctx.path, hint=exc.hint) from None
    return det


_MISSING_HINTS = {
    "input": "the network input size: 640 or [H, W]",
    "layers": "a list of layers such as {name: conv1, type: conv, k: 3, s: 1, p: 1}",
    "levels": "a list of detection levels such as {name: P3, from: conv3, sizes: [32]}",
}


FORMAT = Format("anchorfit spec", (".yaml", ".yml"), load, sniff=sniff,
                expects="a top-level 'layers:' and 'levels:'", export="spec")

__all__ = ["ALIASES", "FORMAT", "LAYER_TYPES", "build", "load", "sniff"]
