"""Darknet ``.cfg`` reader (pjreddie/darknet and the AlexeyAB fork): network and anchors.

A cfg is a list of ``[section]``s of ``key=value`` options; ``[net]`` holds the input size and
every following section is one layer, numbered from 0, which ``[route] layers=`` and
``[shortcut] from=`` refer to (negative: relative). Each layer becomes one IR node named
``<type><index>`` (``conv81``, ``route83``), so a node is easy to find in the cfg.

Geometry follows Darknet's own code, not its RF printer (``show_receptive_field`` grows the RF by
``size + 2*(dilation-1) - 1`` per layer, right only for 3x3 kernels):

* ``[convolutional]``/``[local]``: ``pad=1`` means padding ``size/2`` (overriding ``padding=``);
  a dilated conv pads ``padding*dilation`` (AlexeyAB passes ``l.pad * l.dilation`` to im2col);
  ``stride_x``/``stride_y`` override ``stride``.
* ``[maxpool]``/``[local_avgpool]``: total padding defaults to ``size-1``, of which
  ``padding/2`` goes left/top, so a 2x2/s1 pool (YOLOv3-tiny) pads 0 left and 1 right and moves
  RF centres by half a pixel.
* ``[avgpool]`` is global; ``[connected]`` is a fully connected layer (global).
* ``[route]`` concatenates (``groups``/``group_id`` split channels only); ``[shortcut]`` adds;
  ``[sam]`` multiplies element-wise; ``[scale_channels]`` multiplies by a 1x1 gate (global
  context); ``[upsample]`` is nearest; ``[reorg]`` is space-to-depth.

Each ``[yolo]``/``[Gaussian_yolo]`` layer is a level with anchors ``anchors[mask]`` in pixels,
read from the feature map that its 1x1 predictor conv reads; ``[region]`` (YOLOv2) anchors are in
grid cells and are scaled by the level's step; ``[detection]`` (YOLOv1) is an anchor-free grid
predicted by a fully connected layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.errors import AnchorfitError, FormatError, suggest
from anchorfit.formats.base import Format, detector_network, read_text
from anchorfit.formats.validate import Where, finite, input_side, integer, positive_finite
from anchorfit.rf.graph import (
    Global,
    GraphBuilder,
    Merge,
    PixelShuffle,
    Pointwise,
    Resample,
    Transposed,
    Window,
)
from anchorfit.safeinput import MAX_KERNEL, beyond_limit

#: per-cell sections (no geometry)
POINTWISE = {"dropout", "batchnorm", "activation", "softmax", "cost", "l2norm", "logistic",
             "normalization", "empty", "silence", "crop"}
DETECTION = {"yolo", "gaussian_yolo", "region", "detection"}
KNOWN = ({"net", "network", "convolutional", "conv", "local", "deconvolutional", "deconv",
          "maxpool", "max", "local_avgpool", "avgpool", "avg", "connected", "conn", "route",
          "shortcut", "upsample", "reorg", "reorg3d", "sam", "scale_channels"}
         | POINTWISE | DETECTION)
#: real Darknet layers anchorfit does not model (recurrent layers have no fixed RF)
UNSUPPORTED = {"rnn": "recurrent", "gru": "recurrent", "lstm": "recurrent",
               "conv_lstm": "recurrent", "crnn": "recurrent", "history": "recurrent",
               "contrastive": "training-only", "implicit_add": "implicit", "implicit_mul":
               "implicit", "dropblock": "training-only", "iseg": "segmentation"}
#: options that must be positive / non-negative integers (Darknet reads them with atoi; a
#: ``3.7`` or ``1e9`` there is a typo, not a number to truncate)
POSITIVE = {"size", "stride", "stride_x", "stride_y", "dilation", "filters", "groups", "height",
            "width", "channels", "side"}
NON_NEGATIVE = {"pad", "padding", "num", "classes", "reverse", "antialiasing", "maxpool_depth",
                "letter_box"}


@dataclass
class Section:
    """One ``[type]`` block with its options and the line of each (1-based)."""

    type: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    index: int = -1  # layer index (the [net] section is -1)
    duplicates: list[str] = field(default_factory=list)  # warnings: keys given twice

    def where(self, key: str | None = None) -> int:
        return self.lines.get(key, self.line) if key else self.line


_HEADER = re.compile(r"^\[\s*([A-Za-z_0-9]+)\s*\]$")


def parse_cfg(text: str, path: Path) -> list[Section]:
    """Split a cfg into sections; anything that is not a header or key=value is an error."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _HEADER.match(line)
            if not match:
                raise FormatError(f"bad section header {line!r}", source=path, line=number,
                                  hint="expected [name], e.g. [convolutional]")
            sections.append(Section(match.group(1).lower(), number))
            continue
        if "=" not in line:
            raise FormatError(f"expected key=value, got {line!r}", source=path, line=number,
                              hint="a truncated or corrupted cfg?")
        if not sections:
            raise FormatError("option before the first [section]", source=path, line=number)
        key, value = (s.strip() for s in line.split("=", 1))
        value = value.split("#", 1)[0].strip()
        if key in sections[-1].options:
            # Darknet's option_find returns the first match, and real cfgs repeat keys
            # (yolo9000.cfg: batch= for testing, then for training): keep the first, as Darknet
            # does, and warn (a note), since the second line looks meant to win.
            sections[-1].duplicates.append(
                f"{path}:{number}: [{sections[-1].type}] {key}={value} repeats line "
                f"{sections[-1].lines[key]} ({key}={sections[-1].options[key]}); Darknet uses "
                "the first value, and so does anchorfit")
            continue
        sections[-1].options[key] = value
        sections[-1].lines[key] = number
    if not sections:
        raise FormatError("no [sections]: not a Darknet cfg", source=path, line=1)
    if sections[0].type not in ("net", "network"):
        raise FormatError(f"the first section is [{sections[0].type}], expected [net]",
                          source=path, line=sections[0].line)
    for i, sec in enumerate(sections[1:]):
        sec.index = i
    return sections


class _Reader:
    """Builds the IR and levels section by section."""

    def __init__(self, path: Path, sections: list[Section]) -> None:
        self.path = path
        self.sections = sections
        self.builder = GraphBuilder(path.stem)
        self.nodes: list[str] = []  # layer index -> IR node
        self.channels: dict[str, int] = {}
        self.pending: list[tuple[Section, str, list[Window]]] = []  # detection sections
        self.notes: list[str] = [d for sec in sections for d in sec.duplicates]

    # -- option access ----------------------------------------------------------------------

    def error(self, sec: Section, message: str, key: str | None = None,
              hint: str | None = None) -> FormatError:
        return FormatError(f"[{sec.type}] (layer {sec.index}): {message}" if sec.index >= 0
                           else f"[{sec.type}]: {message}", source=self.path,
                           line=sec.where(key), hint=hint)

    def where(self, sec: Section, key: str) -> Where:
        prefix = (f"[{sec.type}] (layer {sec.index}): " if sec.index >= 0 else f"[{sec.type}]: ")
        return Where(self.path, sec.where(key), key, prefix)

    def int_(self, sec: Section, key: str, default: int | None = None) -> int:
        """An integer option; keys in POSITIVE / NON_NEGATIVE are range-checked too."""
        if key not in sec.options:
            if default is None:
                raise self.error(sec, f"missing {key}=")
            return default
        minimum = 1 if key in POSITIVE else 0 if key in NON_NEGATIVE else None
        return integer(sec.options[key], self.where(sec, key), minimum=minimum)

    def side(self, sec: Section, key: str) -> int:
        """``[net]`` ``height=``/``width=`` (416 when absent), at most ``MAX_MAP_SIDE``."""
        if key not in sec.options:
            return 416
        return input_side(sec.options[key], self.where(sec, key))

    def kernel(self, sec: Section, k: int) -> int:
        """``size=``, refused beyond ``MAX_KERNEL`` (the RF engine walks every tap)."""
        if k > MAX_KERNEL:
            raise self.error(sec, beyond_limit("size", k, MAX_KERNEL), "size")
        return k

    def float_(self, sec: Section, key: str) -> float | None:
        if key not in sec.options:
            return None
        return finite(sec.options[key], self.where(sec, key))

    def ints(self, sec: Section, key: str) -> list[int]:
        return self.numbers(sec, key, int, "integers")  # type: ignore[return-value]

    def floats(self, sec: Section, key: str) -> list[float]:
        return self.numbers(sec, key, float, "numbers")  # type: ignore[return-value]

    def numbers(self, sec: Section, key: str, cast: type, what: str) -> list[int | float]:
        """A comma-separated option (``layers=-1,61``, ``anchors=10,13, 16,30``): integers
        where Darknet wants integers, positive finite numbers for anchors."""
        where = self.where(sec, key)
        values = [v for v in sec.options[key].split(",") if v.strip()]
        if cast is int:
            return [integer(v, where) for v in values]
        if key == "anchors":
            return [positive_finite(v, where) for v in values]
        return [finite(v, where) for v in values]

    def ref(self, sec: Section, value: int, key: str) -> str:
        """Node of a layer reference: negative = relative to this layer, else absolute."""
        target = sec.index + value if value < 0 else value
        if not 0 <= target < sec.index:
            raise self.error(sec, f"{key}={value} refers to layer {target}, which is not an "
                             f"earlier layer (this is layer {sec.index})", key)
        return self.nodes[target]

    def prev(self, sec: Section) -> str:
        return self.nodes[-1] if self.nodes else "input"

    # -- layers -----------------------------------------------------------------------------

    def add(self, sec: Section, op: Any, inputs: list[str]) -> str:
        name = f"{_SHORT.get(sec.type, sec.type)}{sec.index}"
        try:
            self.builder.add(op, inputs, name, source=f"{self.path.name}:{sec.line}",
                             origin=f"{self.path}:{sec.line}")
        except AnchorfitError as exc:
            raise self.error(sec, exc.message, hint=exc.hint) from None
        return name

    def read(self) -> None:
        self.builder.input()
        for sec in self.sections[1:]:
            if sec.type in UNSUPPORTED:
                raise self.error(sec, f"{UNSUPPORTED[sec.type]} layer [{sec.type}] is not "
                                 "supported: anchorfit models feed-forward conv networks")
            if sec.type not in KNOWN:
                raise self.error(sec, f"unknown section [{sec.type}]",
                                 hint=suggest(sec.type, sorted(KNOWN),
                                              otherwise="not a Darknet layer type"))
            self.nodes.append(self.layer(sec))

    def layer(self, sec: Section) -> str:
        t = sec.type
        x = self.prev(sec)
        if t in ("convolutional", "conv", "local"):
            return self.conv(sec, x)
        if t in ("deconvolutional", "deconv"):
            k = self.kernel(sec, self.int_(sec, "size", 1))
            s = self.int_(sec, "stride", 1)
            p = k // 2 if self.int_(sec, "pad", 0) else self.int_(sec, "padding", 0)
            return self.with_channels(sec, self.add(sec, Transposed((k, k), (s, s), (p, p)), [x]))
        if t in ("maxpool", "max", "local_avgpool"):
            return self.pool(sec, x)
        if t in ("avgpool", "avg"):
            return self.add(sec, Global("global_avgpool"), [x])
        if t in ("connected", "conn"):
            return self.add(sec, Global("fc"), [x])
        if t == "route":
            if "layers" not in sec.options:
                raise self.error(sec, "missing layers=")
            srcs = [self.ref(sec, v, "layers") for v in self.ints(sec, "layers")]
            groups = self.int_(sec, "groups", 1)
            if groups > 1:
                self.notes.append(f"layer {sec.index} [route] groups={groups}: a channel split, "
                                  "no change in geometry")
            if len(srcs) == 1:
                return self.add(sec, Pointwise("route"), srcs)
            return self.add(sec, Merge("concat"), srcs)
        if t == "shortcut":
            if "from" not in sec.options:
                raise self.error(sec, "missing from=")
            srcs = [self.ref(sec, v, "from") for v in self.ints(sec, "from")]
            return self.add(sec, Merge("add"), [x, *srcs])
        if t in ("sam", "scale_channels"):
            if "from" not in sec.options:
                raise self.error(sec, "missing from=")
            (src,) = [self.ref(sec, v, "from") for v in self.ints(sec, "from")[:1]]
            return self.add(sec, Merge("mul"), [src, x])
        if t == "upsample":
            s = self.int_(sec, "stride", 2)
            if s < 1:
                raise self.error(sec, f"stride={s}: a down-sampling [upsample] (negative stride) "
                                 "is not supported", "stride")
            return self.add(sec, Resample("nearest", (Fraction(s), Fraction(s))), [x])
        if t in ("reorg", "reorg3d"):
            s = self.int_(sec, "stride", 2)
            if self.int_(sec, "reverse", 0):
                return self.add(sec, PixelShuffle(s, unshuffle=False), [x])
            return self.add(sec, PixelShuffle(s, unshuffle=True), [x])
        if t in DETECTION:
            node = self.add(sec, Pointwise(t), [x])
            self.pending.append((sec, *self.feature_of(sec)))
            return node
        return self.add(sec, Pointwise(t), [x])  # POINTWISE

    def conv(self, sec: Section, x: str) -> str:
        k = self.kernel(sec, self.int_(sec, "size", 1))
        s = self.int_(sec, "stride", 1)
        sy, sx = self.int_(sec, "stride_y", s), self.int_(sec, "stride_x", s)
        d = self.int_(sec, "dilation", 1) if k > 1 else 1
        p = k // 2 if self.int_(sec, "pad", 0) else self.int_(sec, "padding", 0)
        if k < 1 or sy < 1 or sx < 1 or d < 1:
            raise self.error(sec, "size, stride and dilation must be positive")
        if self.int_(sec, "antialiasing", 0):
            raise self.error(sec, "antialiasing=1 (a blur pool after the conv) is not supported",
                             "antialiasing")
        op = Window((k, k), (sy, sx), (p * d, p * d), (d, d), kind="conv")
        return self.with_channels(sec, self.add(sec, op, [x]))

    def pool(self, sec: Section, x: str) -> str:
        s = self.int_(sec, "stride", 1)
        sy, sx = self.int_(sec, "stride_y", s), self.int_(sec, "stride_x", s)
        k = self.kernel(sec, self.int_(sec, "size", s))
        total = self.int_(sec, "padding", k - 1)
        left = total // 2
        if self.int_(sec, "maxpool_depth", 0):
            raise self.error(sec, "maxpool_depth=1 (pooling across channels) is not supported",
                             "maxpool_depth")
        kind = "avgpool" if sec.type == "local_avgpool" else "maxpool"
        op = Window((k, k), (sy, sx), (left, left), padding_end=(total - left, total - left),
                    kind=kind)
        return self.add(sec, op, [x])

    def with_channels(self, sec: Section, node: str) -> str:
        if "filters" in sec.options:
            self.channels[node] = self.int_(sec, "filters")
        return node

    def feature_of(self, sec: Section) -> tuple[str, list[Window]]:
        """The feature map a detection layer's predictor reads, and the predictor's window."""
        if sec.index == 0:
            raise self.error(sec, "a detection layer needs a layer before it")
        before = self.sections[sec.index]  # sections[0] is [net]; this is layer index-1
        node = self.nodes[sec.index - 1]
        op = self.builder.graph[node].op
        if before.type in ("convolutional", "conv") and isinstance(op, Window):
            (src,) = self.builder.graph[node].inputs
            return src, [Window(op.kernel, op.stride, op.padding, op.dilation, kind="head")]
        return node, []


_SHORT = {"convolutional": "conv", "local_avgpool": "avgpool", "gaussian_yolo": "yolo"}


def _levels(reader: _Reader, size: tuple[int, int]) -> list[Level]:
    analysis = reader.builder.graph
    from anchorfit.rf.engine import analyze

    rf = analyze(analysis, size)
    levels = []
    for sec, node, head in reader.pending:
        grid = rf[node].feature_size
        for window in head:  # a strided predictor would change the grid
            grid = tuple(-(-g // s) for g, s in zip(grid, window.stride))  # type: ignore[assignment]
        step = (size[0] / grid[0], size[1] / grid[1])
        level = Level(f"{_SHORT.get(sec.type, sec.type)}{sec.index}", node, step=step,
                      head=head, center="cell-center", center_offset=0.5)
        level.extra["section"] = f"[{sec.type}] line {sec.line}"
        if sec.type == "detection":
            side = reader.int_(sec, "side", 7)
            level.feature_size = (side, side)
            level.step = (size[0] / side, size[1] / side)
            level.assigner = Assigner("darknet", None, None)
            level.extra["num"] = reader.int_(sec, "num", 1)
        else:
            _anchors(reader, sec, level, size)
        for key in ("classes", "scale_x_y", "iou_thresh", "ignore_thresh", "truth_thresh",
                    "new_coords", "iou_loss"):
            if key in sec.options:
                level.extra[key] = sec.options[key]
        levels.append(level)
    return levels


def _anchors(reader: _Reader, sec: Section, level: Level, size: tuple[int, int]) -> None:
    num = reader.int_(sec, "num", 1)
    if "anchors" not in sec.options:
        raise reader.error(sec, "missing anchors=")
    values = reader.floats(sec, "anchors")
    if len(values) % 2:
        raise reader.error(sec, f"anchors= has {len(values)} numbers; expected w,h pairs",
                           "anchors")
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    if len(pairs) < num:
        raise reader.error(sec, f"num={num} but anchors= lists only {len(pairs)} pairs",
                           "anchors")
    if sec.type == "region":  # YOLOv2: anchors in grid cells of this level
        sy, sx = level.step or (1.0, 1.0)
        level.anchors = [Anchor(w * sx, h * sy) for w, h in pairs[:num]]
        level.mask = list(range(num))
        level.assigner = Assigner("darknet", None, None, None, reader.float_(sec, "thresh"))
        level.extra["anchor_units"] = "grid cells (scaled by the step)"
        return
    mask = reader.ints(sec, "mask") if "mask" in sec.options else list(range(num))
    bad = [m for m in mask if not 0 <= m < len(pairs)]
    if bad:
        raise reader.error(sec, f"mask= index {bad[0]} is outside the {len(pairs)} anchors",
                           "mask")
    level.mask = mask
    level.anchors = [Anchor(*pairs[m]) for m in mask]
    level.extra["all_anchors"] = [list(p) for p in pairs[:num]]
    level.assigner = Assigner("darknet", reader.float_(sec, "iou_thresh"), None, None,
                              reader.float_(sec, "ignore_thresh"))


def sniff(path: Path, text: str) -> bool:
    """A Darknet cfg starts (after comments) with ``[net]`` or ``[network]``."""
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return line.lower().replace(" ", "") in ("[net]", "[network]")
    return False


def load(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """Read a Darknet cfg into a Detector (network, levels, anchors, masks)."""
    path = Path(path)
    text = read_text(path, errors="replace")
    sections = parse_cfg(text, path)
    reader = _Reader(path, sections)
    net = sections[0]
    h = reader.side(net, "height")
    w = reader.side(net, "width")
    in_channels = reader.int_(net, "channels", 3)
    size = input_size or (h, w)
    reader.read()
    reader.builder.output(reader.nodes[-1] if reader.nodes else "input")
    try:
        levels = _levels(reader, size)
    except FormatError:
        raise
    except AnchorfitError as exc:  # e.g. a map smaller than a window at this input size
        if exc.source is not None:  # located by the engine at the section that wrote the node
            raise
        raise FormatError(exc.message, source=path, hint=exc.hint) from None
    graph = reader.builder.build()
    if levels:
        graph.outputs[:] = list(dict.fromkeys(lv.node for lv in levels if lv.node))
    letterbox = reader.int_(net, "letter_box", 0)
    notes = list(reader.notes)
    if not levels:
        notes.append(f"{path.name} has no [yolo], [region] or [detection] layer: a classifier or "
                     "backbone cfg, read as a network without detection levels")
    classes = next((reader.int_(sec, "classes", 0) for sec, _, _ in reader.pending
                    if "classes" in sec.options), None)
    det = Detector(path.stem, size, levels, "letterbox" if letterbox else "stretch",
                   source=str(path), num_classes=classes, notes=notes)
    det.network = detector_network(path.stem, graph, size, levels, channels=reader.channels,
                                   in_channels=in_channels, notes=notes)
    if not levels:
        det.network.kind = "classifier"
        det.network.default_layers = []
    return det


FORMAT = Format("Darknet cfg", (".cfg",), load, export="darknet")

__all__ = ["FORMAT", "Section", "load", "parse_cfg", "sniff"]
