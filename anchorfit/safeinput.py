"""Bounded, safe reading of untrusted input files: size limits no real network or dataset reaches,
regular files only, and one YAML loader for the whole project.

anchorfit reads files people download from other projects. A hostile or broken file must end in
one clear message (``AnchorfitError``/``FormatError``, exit 2), never a hang, a traceback or an
exhausted memory. Every limit here is far above what a real detector or config uses, and each
message says so, so a user who hits one knows the file, not anchorfit, is at fault.

This module sits at the bottom of the import graph (it imports only ``anchorfit.errors`` and
PyYAML), so ``rf/``, ``data/``, ``cluster/`` and ``formats/`` can all share it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from anchorfit.errors import AnchorfitError, FormatError

# --------------------------------------------------------------------------- limits

#: A detector config (cfg, yaml, prototxt, mmdet .py): the largest real ones (ResNet-152 deploy
#: prototxts) are a few hundred KiB; the shared test data tops out at 47 KB.
MAX_CONFIG_BYTES = 2 << 20
#: Nesting of YAML collections; real configs nest fewer than 10 levels.
MAX_YAML_DEPTH = 100
#: Values a YAML document may expand to once aliases are followed; real configs have < 10⁴.
MAX_YAML_VALUES = 1_000_000
#: Nodes written in one YAML document (pure-Python PyYAML composes ~10⁵ per second); the
#: largest real file (Ultralytics' lvis.yaml, 30 KB) has a few thousand.
MAX_YAML_NODES = 100_000
#: Repeats of one row/block (YOLOv5 ``number`` x ``depth_multiple``, spec ``n``); the deepest
#: real networks repeat a block a few dozen times.
MAX_REPEATS = 1000
#: Kernel/pool/window taps per axis; real networks use at most a few hundred (global pooling
#: written as a kernel the size of the feature map).
MAX_KERNEL = 1 << 16
#: k-means restarts; the default is 10 and more than a few hundred never changes the result.
MAX_RESTARTS = 10_000
#: Depth of ``_base_`` / ``_BASE_`` / ``base:`` inheritance; real chains are under 10 deep.
MAX_BASE_DEPTH = 32
#: Cells per axis of a network input or any feature map; the largest real detector inputs are a
#: few thousand pixels a side (YOLOv5-P6 1280, Detectron2's 1333 long side, 4096 aerial tiles).
#: The RF engine keeps arrays per cell and layer, so 10⁸ would need gigabytes and seconds.
MAX_MAP_SIDE = 1 << 16
#: Cells x taps one op may enumerate (a transposed convolution's output cells times the taps
#: each reads); real ones stay near 10⁴-10⁶, and the engine's arrays are this big.
MAX_TAP_READS = 1 << 26
#: Input pixels between neighbouring cells of one feature map (the product of the strides up
#: to it); real detectors stop at 128 (RetinaNet's P7), and past 2**20 the exact intervals of
#: the RF engine would soon leave 64-bit integers (hundreds of stride-2 layers).
MAX_TOTAL_STRIDE = 1 << 20
#: Feature-map cells of all layers together, per axis (the RF engine keeps read arrays of every
#: cell of every layer): 2**23 is 128 full-size layers on a 65536-pixel input or 4096 layers at
#: 2048; real detectors (a few hundred layers, mostly at stride 8 or more) hold under 10⁶.
MAX_TOTAL_CELLS = 1 << 23
#: Map phases the RF engine builds one Python step at a time, all layers and both axes
#: together: a periodic map's period, a map with no period (after an adaptive pool or a resize
#: to a size that does not divide its input) its every cell. The real configs of the test data
#: need at most 3104 (yolov9s.yaml), torchvision's FPN detectors under 200.
MAX_TABLE_CELLS = 1 << 16

_BEYOND = "no real network comes near it"
_YAML_NOTE = "no real config or dataset file comes near it"


def beyond_limit(what: str, value: object, limit: int) -> str:
    """The one wording of a limit message: what, the value found, the limit and why."""
    return f"{what} {value} is beyond anchorfit's limit of {limit} ({_BEYOND})"


# --------------------------------------------------------------------------- files


def check_regular(path: Path, error: type[AnchorfitError] = FormatError) -> os.stat_result:
    """Refuse anything but a regular file (devices such as ``/dev/zero``, FIFOs, sockets and
    directories would hang or never end); return its ``stat``."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", source=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise error("cannot read: is a directory, not a file", source=path)
    if not stat.S_ISREG(st.st_mode):
        raise error("cannot read: not a regular file (a device, FIFO or socket); anchorfit reads "
                    "only regular files, which have an end", source=path)
    return st


def locate(parent: Path, name: str) -> tuple[Path, str | None]:
    """``parent / name`` resolved (a ``_base_``, ``_BASE_`` or ``base:`` reference), and why it
    cannot be read as a file, or None for a regular file; never raises for a strange name."""
    if "\x00" in name:  # Path.resolve raises ValueError
        return parent / name.replace("\x00", "\\x00"), "is not a usable path (it holds a NUL byte)"
    try:
        path = (parent / name).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        return parent / name, f"cannot be looked up ({exc})"
    return path, file_problem(path)


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file named by another file (a ``_base_``), or None for
    a regular file. ``Path.is_file()`` lets some lookup errors escape (a name past NAME_MAX is
    ``OSError: File name too long``); here every one becomes words for a message."""
    try:
        st = os.stat(path)
    except ValueError:  # an embedded NUL byte
        return "is not a usable path (it holds a NUL byte)"
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "not found"
        return f"cannot be looked up ({exc.strerror or exc})"
    return None if stat.S_ISREG(st.st_mode) else "not a regular file"


def read_bytes_limited(path: Path, limit: int = MAX_CONFIG_BYTES,
                       error: type[AnchorfitError] = FormatError, what: str = "a config") -> bytes:
    """A regular file's bytes, refusing files over ``limit`` (read at most ``limit + 1`` bytes,
    so a file that grows or lies about its size cannot exhaust memory)."""
    st = check_regular(path, error)
    if st.st_size > limit:
        raise error(f"file is {st.st_size} bytes, more than the {limit} bytes {what} may have "
                    f"(no real {what.removeprefix('a ')} comes near it)", source=path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", source=path) from None
    if len(data) > limit:
        raise error(f"file is more than the {limit} bytes {what} may have (no real "
                    f"{what.removeprefix('a ')} comes near it)", source=path)
    return data


def read_config_text(path: Path, encoding: str = "utf-8") -> str:
    """A config file's text: a regular file of at most ``MAX_CONFIG_BYTES``, valid UTF-8."""
    data = read_bytes_limited(Path(path))
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise not_utf8(exc.reason, exc.start, path) from None


def not_utf8(reason: str, byte: int, path: Path) -> FormatError:
    """The message for invalid UTF-8 at ``byte`` (counted after a BOM, over the whole file),
    the same for configs and annotation files, read whole or streamed."""
    return FormatError(f"not a UTF-8 text file ({reason} at byte {byte})", source=path)


# --------------------------------------------------------------------------- YAML

_MERGE_TAG = "tag:yaml.org,2002:merge"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with limits: nesting depth (checked while composing, before the
    recursive composer can overflow the stack), alias expansion (a "billion laughs" document is
    refused after looking at each node once), recursive aliases, and duplicate keys (YAML
    forbids them; PyYAML would keep the last one silently). Every alias still constructs to the
    one shared object, so an accepted document is built once."""

    source: str | None = None

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - PyYAML hook
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_YAML_NODES:
                mark = self.peek_event().start_mark
                raise FormatError(f"YAML document of more than {MAX_YAML_NODES} values "
                                  f"({_YAML_NOTE})", source=self.source, line=mark.line + 1)
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise FormatError(f"YAML nested more than {MAX_YAML_DEPTH} levels deep "
                                  f"({_YAML_NOTE})", source=self.source, line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:  # noqa: D102 - PyYAML hook
        node = super().get_single_node()
        if node is not None:
            check_nodes(node, self.source)
        return node


def check_nodes(root: yaml.Node, source: str | None) -> None:
    """Count the values ``root`` expands to (each node visited once, aliases by memo) and report
    duplicate keys and recursive aliases."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # iterative post-order walk: (node, children pushed?)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            active.discard(key)
            total = 1
            for child in _children(node):
                total += sizes[id(child)]
            sizes[key] = total
            if total > MAX_YAML_VALUES:
                raise FormatError(
                    f"YAML aliases expand to more than {MAX_YAML_VALUES} values (an 'alias "
                    f"bomb'); {_YAML_NOTE}", source=source, line=node.start_mark.line + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            raise FormatError("recursive YAML alias (a collection that contains itself)",
                              source=source, line=node.start_mark.line + 1)
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, source)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise FormatError("recursive YAML alias (a collection that contains itself)",
                                  source=source, line=child.start_mark.line + 1)
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicates(node: yaml.MappingNode, source: str | None) -> None:
    first: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        if not isinstance(key_node, yaml.ScalarNode):  # a list or mapping as a key: unhashable
            raise FormatError("a mapping key must be a plain value, not a list or mapping",
                              source=source, line=key_node.start_mark.line + 1)
        ident = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if ident in first:
            raise FormatError(f"duplicate key (first at line {first[ident]}); YAML allows each "
                              "key once and the later value would silently replace the earlier",
                              source=source, line=line, key=key_node.value)
        first[ident] = line


def load_yaml_text(text: str, source: str | Path | None = None,
                   loader: type[BoundedLoader] = BoundedLoader) -> Any:
    """Parse YAML text with ``loader`` (a ``BoundedLoader``); every YAML problem or limit is a
    ``FormatError`` naming ``source`` and the line."""
    src = None if source is None else str(source)
    try:
        ld = loader(text)   # PyYAML's reader refuses control characters here, before parsing
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or " ")
        raise FormatError(f"bad YAML: unacceptable character #x{char:04x} ({exc.reason})",
                          source=src, line=text.count("\n", 0, exc.position) + 1) from None
    ld.source = src
    try:
        return ld.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "syntax error"
        raise FormatError(f"bad YAML: {problem}" + (f" ({exc.context})" if exc.context else ""),
                          source=src, line=line) from None
    except yaml.YAMLError as exc:
        raise FormatError(f"bad YAML: {exc}", source=src) from None
    except RecursionError:  # a last guard; the depth limit normally fires first
        raise FormatError(f"YAML nested too deeply ({_YAML_NOTE})", source=src) from None
    finally:
        ld.dispose()


def safe_load(text: str, source: str | Path | None = None) -> Any:
    """``yaml.safe_load`` with the limits above (plain dicts and lists)."""
    return load_yaml_text(text, source)


# A scalar PyYAML resolves but cannot build raises a bare ValueError/OverflowError from its
# constructor: a date that does not exist (2001-02-30), an integer of more than Python's 4300
# digits, ``!!int abc``. Every node is built through ``construct_object``, so wrapping it once
# turns those into a FormatError at the node's line (an inner node's FormatError passes through).
_construct_object = BoundedLoader.construct_object


def _construct_object_or_error(self: BoundedLoader, node: yaml.Node, deep: bool = False) -> Any:
    try:
        return _construct_object(self, node, deep)
    except (ValueError, OverflowError) as exc:
        raise FormatError(f"bad YAML value {str(node.value)[:40]!r}: {str(exc)[:120]}",
                          source=self.source, line=node.start_mark.line + 1) from None


BoundedLoader.construct_object = _construct_object_or_error  # type: ignore[method-assign]
