"""What every reader shares: the ``Format`` record, sniffing helpers, the text reader, and the
Network/level helpers a reader ends with.

Readers differ in how they spell a detector; they agree on what comes out. Each reader module
declares one ``Format`` (name, suffixes, sniff, load, export) at its end, and
``anchorfit.formats`` lists those in sniff order. ``detector_network``/``make_network`` turn an
IR plus levels into the ``Network`` that ``anchorfit rf FILE`` analyses (its default layers are
the detection levels, its heads the levels' own convolutions); the torch module is built from the
IR on first use (``anchorfit.rf.network.GraphNetwork``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from anchorfit.errors import FormatError
from anchorfit.safeinput import check_regular, read_bytes_limited
from anchorfit.rf.graph import Graph, Window
from anchorfit.rf.network import GraphNetwork, Network

if TYPE_CHECKING:  # pragma: no cover
    from anchorfit.detector import Detector, Level

InputSize = tuple[int, int] | None
#: load(path, input_size or None) -> Detector: every reader's one entry point
DetectorLoader = Callable[[Path, InputSize], "Detector"]
#: sniff(path, text) -> True when this reader claims the file. ``text`` is the file's first 64 KiB.
Sniffer = Callable[[Path, str], bool]

SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Format:
    """One detector file format, declared once by its reader module.

    ``sniff`` decides between formats that share a suffix (``.yaml``: anchorfit spec, YOLOv5,
    Ultralytics, detectron2, mmdet metafile); ``None`` claims every file with one of the suffixes
    and is tried after the sniffers. ``export`` names the writer in ``anchorfit.design.export`` that
    puts new anchors back into such a file (``None``: no exporter).
    """

    name: str  # short format name shown in messages: "anchorfit spec", "Darknet cfg", ...
    suffixes: tuple[str, ...]  # lower-case, with the dot: (".yaml", ".yml")
    load: DetectorLoader
    sniff: Sniffer | None = None
    expects: str = ""  # what the sniffer looks for, for the "cannot tell" message
    export: str | None = None  # "darknet", "yolov5", "mmdet", "caffe", "spec", "detectron2"

    def __post_init__(self) -> None:
        norm = tuple(s.lower() if s.startswith(".") else "." + s.lower() for s in self.suffixes)
        object.__setattr__(self, "suffixes", norm)


# --------------------------------------------------------------------------- reading text

_TOP_KEY = re.compile(r"^([A-Za-z_][\w\-]*)\s*:", re.MULTILINE)


def top_level_keys(text: str) -> set[str]:
    """Keys that start a line at column 0 followed by ``:`` (YAML top-level mapping keys).

    A regular expression instead of a YAML parse: it works on files that do not parse (so the
    right reader can report the syntax error) and on files with tags ``yaml.safe_load`` refuses
    (detectron2's ``!!python/object/apply:eval``).
    """
    return set(_TOP_KEY.findall(text))


def read_head(path: Path) -> str:
    """The first ``SNIFF_BYTES`` of a file as text (undecodable bytes replaced, BOM dropped)."""
    check_regular(path)  # opening a FIFO would wait for a writer forever
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=path) from None


def read_text(path: Path, *, errors: str = "strict") -> str:
    """A config file's text, UTF-8 with or without a byte-order mark.

    Unreadable files, and (with ``errors="strict"``) non-UTF-8 files, are a ``FormatError``
    naming the file; ``errors="replace"`` is for formats whose comments may carry other
    encodings (Darknet, YOLOv5 yamls). Devices and FIFOs (``/dev/zero`` never ends) and files
    over ``safeinput.MAX_CONFIG_BYTES`` are refused before reading.
    """
    data = read_bytes_limited(Path(path))
    try:
        return data.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError:
        raise FormatError("not a UTF-8 text file", source=path) from None


# --------------------------------------------------------------------------- levels and networks

def pyramid_name(stride: Fraction | float | int) -> str:
    """``P3`` for stride 8: the usual FPN/YOLO name for a level (``S100`` when not a power of 2)."""
    s = Fraction(stride)
    if s.denominator == 1 and s.numerator > 0 and s.numerator & (s.numerator - 1) == 0:
        return f"P{int(math.log2(s.numerator))}"
    return f"S{float(s):g}"


def unique_names(names: Sequence[str]) -> list[str]:
    """Make level names unique (two levels at one stride get ``P6``, ``P6b``)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}{chr(ord('a') + k)}")
        seen[n] = k + 1
    return out


def finish(detector: Detector) -> Detector:
    """Join RF numbers to the levels and return the detector (readers end with this)."""
    return detector.analyze()


def detector_network(name: str, graph: Graph, input_size: tuple[int, int], levels: list[Level],
                     *, channels: Mapping[str, int] | None = None, in_channels: int = 3,
                     notes: Sequence[str] = ()) -> GraphNetwork:
    """The Network of a detector: default layers are the levels, heads their own convs."""
    net = GraphNetwork(name, graph, tuple(input_size), [lv.name for lv in levels],  # type: ignore[arg-type]
                       layer_nodes={lv.name: lv.node for lv in levels if lv.node},
                       heads={lv.name: list(lv.head) for lv in levels if lv.head},
                       kind="detector", in_channels=in_channels, notes=list(notes))
    net.channels = dict(channels or {})
    return net


def make_network(name: str, graph: Graph, input_size: tuple[int, int], levels: Sequence[Level],
                 notes: Sequence[str] = (), extra_layers: Mapping[str, str] | None = None
                 ) -> Network:
    """``detector_network`` with the level nodes as the graph's outputs (so the torch module
    built from the IR returns them) and extra user-facing layer names."""
    graph.outputs = list(dict.fromkeys(lv.node for lv in levels if lv.node is not None))
    net = detector_network(name, graph, input_size, list(levels), notes=notes)
    for layer, node in (extra_layers or {}).items():
        net.layer_nodes.setdefault(layer, node)
    return net


def head_convs(kernels: Sequence[int | Sequence[int]]) -> list[Window]:
    """Stride-1, same-padded convs of the given kernels (a head's own layers)."""
    out = []
    for k in kernels:
        ky, kx = (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))
        out.append(Window((ky, kx), (1, 1), ((ky - 1) // 2, (kx - 1) // 2), kind="head"))
    return out


__all__ = ["SNIFF_BYTES", "DetectorLoader", "Format", "InputSize", "Sniffer", "detector_network",
           "finish", "head_convs", "make_network", "pyramid_name", "read_head", "read_text",
           "top_level_keys", "unique_names"]
