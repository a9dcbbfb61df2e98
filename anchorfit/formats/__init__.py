"""Detector file readers, listed in the order they sniff a file.

Every reader turns a file in some detector format into an ``anchorfit.detector.Detector`` whose
``.network`` is an ``anchorfit.rf.network.Network``. Each reader module declares one ``Format``
(``anchorfit.formats.base``: name, suffixes, sniff, load, export); ``FORMATS`` below lists them
explicitly, in sniff order. Where a suffix is shared a *sniffer* looks at the file's text:
``.yaml`` is used by anchorfit specs (top-level ``layers:``/``levels:``), Ultralytics YOLOv5
model files (``backbone:`` + ``head:``), newer Ultralytics files, mmdetection metafiles and
detectron2 configs (``MODEL:``); ``.py`` by mmdetection configs. Dispatching by content instead of
by name lets a user type ``anchorfit rf my_model.yaml`` without saying which kind of YAML it is.

Sniffers look at the raw text (top-level keys found with a regular expression), not at parsed
YAML, so a file with a syntax error still reaches the reader that can report the error with its
line number.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from anchorfit.errors import AnchorfitError, FormatError, suggest
from anchorfit.formats import caffe, darknet, detectron2, mmdet, spec, ultralytics
from anchorfit.formats import ultralytics_modern
from anchorfit.formats.base import (
    DetectorLoader,
    Format,
    InputSize,
    Sniffer,
    read_head,
    top_level_keys,
)

if TYPE_CHECKING:  # pragma: no cover
    from anchorfit.detector import Detector
    from anchorfit.rf.network import Network

#: Every file format, in sniff order: the first whose sniffer claims a file reads it; a format
#: without a sniffer is the fallback for its suffixes.
FORMATS: tuple[Format, ...] = (
    spec.FORMAT,
    darknet.FORMAT,
    ultralytics.FORMAT,
    ultralytics_modern.FORMAT,
    caffe.FORMAT,
    mmdet.FORMAT,
    mmdet.METAFILE_FORMAT,
    detectron2.FORMAT,
)

#: kept for callers of the former name
Reader = Format


def readers() -> list[Format]:
    """The file formats, in sniff order."""
    return list(FORMATS)


def suffixes() -> list[str]:
    """Every file suffix some reader takes, sorted (``.cfg``, ``.py``, ``.yaml``, ...)."""
    return sorted({s for f in FORMATS for s in f.suffixes})


# --------------------------------------------------------------------------- dispatch

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "configs"


def builtin_names() -> list[str]:
    """Names of the packaged zoo configs (``s3fd``, ``ssd300_vgg16``, ...)."""
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve(source: str | Path) -> Path:
    """A path for ``source``: an existing file, or a packaged zoo name such as ``s3fd``."""
    path = Path(source)
    if path.is_file():
        return path
    if path.exists():
        raise FormatError("is a directory, not a detector file" if path.is_dir() else
                          "not a regular file (a device, FIFO or socket), not a detector file",
                          source=path)
    name = str(source)
    if "/" not in name and "\\" not in name:
        stem = name[:-5] if name.endswith(".yaml") else name
        packaged = BUILTIN_DIR / f"{stem}.yaml"
        if packaged.is_file():
            return packaged
    hint = suggest(name, builtin_names(),
                   otherwise="builtin configs: " + ", ".join(builtin_names()))
    raise AnchorfitError(f"{source}: no such file", hint=hint)


def reader_for(path: Path) -> Format:
    """The format of ``path``: by suffix, then by sniffing the content."""
    suffix = path.suffix.lower()
    candidates = [f for f in FORMATS if suffix in f.suffixes]
    if not candidates:
        raise FormatError(f"unknown file type {suffix or '(no suffix)'!r}", source=path,
                          hint="supported: " + ", ".join(suffixes()))
    sniffers = [f for f in candidates if f.sniff is not None]
    if sniffers:
        text = read_head(path)
        for fmt in sniffers:
            if fmt.sniff(path, text):  # type: ignore[misc]
                return fmt
    fallback = [f for f in candidates if f.sniff is None]
    if fallback:
        return fallback[0]
    expected = "; ".join(f"{f.name}: {f.expects}" for f in candidates if f.expects)
    raise FormatError(f"cannot tell which {suffix} format this is", source=path, line=1,
                      hint=f"expected {expected}" if expected else None)


def load_detector(source: str | Path, input_size: InputSize = None) -> Detector:
    """Read a detector file (or a packaged zoo name) into a Detector with RF numbers joined."""
    path = resolve(source)
    detector = reader_for(path).load(path, input_size)
    return detector.analyze()


def load_network(source: str | Path, input_size: InputSize = None) -> Network:
    """The ``Network`` of a detector file: what ``anchorfit rf FILE`` analyses."""
    detector = load_detector(source, input_size)
    if detector.network is None:
        raise FormatError("describes anchors only, no network to analyse", source=str(source))
    return detector.network


__all__ = ["BUILTIN_DIR", "FORMATS", "DetectorLoader", "Format", "Reader", "Sniffer",
           "builtin_names", "load_detector", "load_network", "read_head", "reader_for",
           "readers", "resolve", "suffixes", "top_level_keys"]
