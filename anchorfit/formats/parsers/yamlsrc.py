"""YAML loading that remembers line numbers, so every error can say ``file:line``.

``yaml.safe_load`` forgets where a value came from. Here mappings load as ``YMap`` (a dict with
the line of the mapping and of each key) and sequences as ``YSeq`` (a list with its line), which
is all a reader needs to point at the offending entry. The loader subclasses
``safeinput.BoundedLoader``, so nesting depth, alias bombs and duplicate keys are refused with
``file:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from anchorfit.safeinput import BoundedLoader, load_yaml_text, read_config_text


class YMap(dict):  # type: ignore[type-arg]
    """A mapping from a YAML file with the line of the mapping and of each key (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class YSeq(list):  # type: ignore[type-arg]
    """A sequence from a YAML file with its line (1-based)."""

    line: int | None = None


class _LineLoader(BoundedLoader):
    """A safe loader whose mappings and sequences carry line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> YMap:
    loader.flatten_mapping(node)
    out = YMap()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> YSeq:
    out = YSeq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file; a syntax error or a limit becomes a FormatError with the file and line."""
    if text is None:
        text = read_config_text(path)
    return load_yaml_text(text, path, _LineLoader)


def line_of(value: Any, key: str | None = None) -> int | None:
    """The line of a loaded value (or of ``key`` inside a mapping), when known."""
    if isinstance(value, YMap) and key is not None:
        return value.line_of(key)
    return getattr(value, "line", None)
