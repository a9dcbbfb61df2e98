"""Detector file readers and the registry that picks one for a file.

Every reader turns a file in some detector format into an ``anchorfit.detector.Detector`` whose
``.network`` is an ``anchorfit.models.Network``. Readers register themselves here with the file
suffixes they read and, where a suffix is shared, a *sniffer* that looks at the file's text:
``.yaml`` is used by anchorfit specs (top-level ``layers:``/``levels:``), Ultralytics YOLOv5 model
files (``backbone:`` + ``head:``) and detectron2 configs (``MODEL:``); ``.py`` by mmdetection
configs and anything else. Dispatching by content instead of by name lets a user type
``anchorfit rf my_model.yaml`` without saying which kind of YAML it is.

Sniffers look at the raw text (top-level keys found with a regular expression), not at parsed
YAML, so a file with a syntax error still reaches the reader that can report the error with its
line number.

Reader modules are imported at the bottom of this file. A module that does not exist yet is
skipped (the readers are written independently); any other import error propagates.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular

if TYPE_CHECKING:  # pragma: no cover
    from anchorfit.detector import Detector
    from anchorfit.models import Network

InputSize = tuple[int, int] | None
#: loader(path, input_size or None) -> Detector
DetectorLoader = Callable[[Path, InputSize], "Detector"]
#: sniff(path, text) -> True when this reader claims the file. ``text`` is the file's first 64 KiB.
Sniffer = Callable[[Path, str], bool]

SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Reader:
    """One registered format reader."""

    name: str  # short format name shown in messages: "anchorfit spec", "Darknet cfg", ...
    suffixes: tuple[str, ...]  # lower-case, with the dot: (".yaml", ".yml")
    load: DetectorLoader
    sniff: Sniffer | None = None  # None: claims every file with one of its suffixes
    expects: str = ""  # what the sniffer looks for, for the "cannot tell" message


_READERS: list[Reader] = []


def register(name: str, suffixes: tuple[str, ...] | list[str] | str, loader: DetectorLoader, *,
             sniff: Sniffer | None = None, expects: str = "") -> Reader:
    """Register ``loader`` for files ending in ``suffixes``.

    ``sniff(path, text)`` decides between readers that share a suffix; readers with a sniffer are
    tried first (in registration order), a reader without one is the fallback for its suffixes.
    Registering the same name again replaces the earlier entry (module reloads in tests).
    """
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    norm = tuple(s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes)
    reader = Reader(name, norm, loader, sniff, expects)
    _READERS[:] = [r for r in _READERS if r.name != name]
    _READERS.append(reader)
    _register_file_loaders(norm)
    return reader


def readers() -> list[Reader]:
    """The registered readers, in registration order."""
    return list(_READERS)


def _register_file_loaders(suffixes: tuple[str, ...]) -> None:
    """Make ``anchorfit.models.load`` (and so ``anchorfit rf FILE``) reach these readers."""
    from anchorfit.models import FILE_LOADERS

    for suffix in suffixes:
        FILE_LOADERS[suffix] = load_network


# --------------------------------------------------------------------------- sniffing helpers

_TOP_KEY = re.compile(r"^([A-Za-z_][\w\-]*)\s*:", re.MULTILINE)


def top_level_keys(text: str) -> set[str]:
    """Keys that start a line at column 0 followed by ``:`` (YAML top-level mapping keys).

    A regular expression instead of a YAML parse: it works on files that do not parse (so the
    right reader can report the syntax error) and on files with tags ``yaml.safe_load`` refuses
    (detectron2's ``!!python/object/apply:eval``).
    """
    return set(_TOP_KEY.findall(text))


def read_head(path: Path) -> str:
    """The first ``SNIFF_BYTES`` of a file as text (undecodable bytes replaced)."""
    check_regular(path)  # opening a FIFO would wait for a writer forever
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=path) from None


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
    import difflib

    close = difflib.get_close_matches(name, builtin_names(), n=3, cutoff=0.6)
    hint = ("did you mean " + ", ".join(close) + "?" if close else
            "builtin configs: " + ", ".join(builtin_names()))
    raise AnchorfitError(f"{source}: no such file", hint=hint)


def reader_for(path: Path) -> Reader:
    """The registered reader for ``path``: by suffix, then by sniffing the content."""
    suffix = path.suffix.lower()
    candidates = [r for r in _READERS if suffix in r.suffixes]
    if not candidates:
        known = sorted({s for r in _READERS for s in r.suffixes})
        raise FormatError(f"unknown file type {suffix or '(no suffix)'!r}", source=path,
                          hint="supported: " + ", ".join(known))
    sniffers = [r for r in candidates if r.sniff is not None]
    if sniffers:
        text = read_head(path)
        for reader in sniffers:
            if reader.sniff(path, text):  # type: ignore[misc]
                return reader
    fallback = [r for r in candidates if r.sniff is None]
    if fallback:
        return fallback[0]
    expected = "; ".join(f"{r.name}: {r.expects}" for r in candidates if r.expects)
    raise FormatError(f"cannot tell which {suffix} format this is", source=path, line=1,
                      hint=f"expected {expected}" if expected else None)


def load_detector(source: str | Path, input_size: InputSize = None) -> Detector:
    """Read a detector file (or a packaged zoo name) into a Detector with RF numbers joined."""
    _import_readers()
    path = resolve(source)
    detector = reader_for(path).load(path, input_size)
    return detector.analyze()


def load_network(source: str | Path, input_size: InputSize = None) -> Network:
    """The ``Network`` of a detector file: what ``anchorfit rf FILE`` analyses."""
    detector = load_detector(source, input_size)
    if detector.network is None:
        raise FormatError("describes anchors only, no network to analyse", source=str(source))
    return detector.network


# --------------------------------------------------------------------------- reader modules

#: Reader modules under anchorfit.formats, imported on first use so they register themselves.
READER_MODULES = ("spec", "darknet", "ultralytics", "ultralytics_modern", "caffe", "mmdet",
                  "detectron2", "torchvision")

_imported = False


def _import_readers() -> None:
    global _imported
    if _imported:
        return
    _imported = True
    for short in READER_MODULES:
        name = f"{__name__}.{short}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside an existing reader: report it
                raise


_import_readers()

__all__ = ["BUILTIN_DIR", "DetectorLoader", "Reader", "Sniffer", "builtin_names", "load_detector",
           "load_network", "read_head", "reader_for", "readers", "register", "resolve",
           "top_level_keys"]
