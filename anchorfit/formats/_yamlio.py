"""YAML loading that remembers line numbers, so errors can point at the offending row.

PyYAML's plain ``safe_load`` forgets where values came from. Here every list and mapping is a
subclass carrying ``.line`` (1-based), and detectron2's ``!!python/object/apply:eval [EXPR]``
(which ``safe_load`` rejects) is evaluated with the safe config evaluator instead of Python's
``eval``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from anchorfit.errors import FormatError
from anchorfit.formats._pyconfig import eval_expression


class LineList(list):  # type: ignore[type-arg]
    """A YAML sequence with the line it starts on."""

    line: int | None = None


class LineDict(dict):  # type: ignore[type-arg]
    """A YAML mapping with the line it starts on and the line of each key."""

    line: int | None = None
    key_lines: dict[Any, int]


def line_of(value: Any, default: int | None = None) -> int | None:
    return getattr(value, "line", None) or default


class _Loader(yaml.SafeLoader):
    source = "<yaml>"


def _seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


def _map(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _python_eval(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    """``!!python/object/apply:eval ["expr"]`` → the expression's value, evaluated safely."""
    line = node.start_mark.line + 1
    if suffix != "eval" or not isinstance(node, yaml.SequenceNode) or len(node.value) != 1:
        raise FormatError(f"unsupported YAML tag python/object/apply:{suffix}", source=loader.source,
                          line=line)
    expr = loader.construct_object(node.value[0])
    return eval_expression(str(expr), loader.source, line)


_Loader.add_constructor("tag:yaml.org,2002:seq", _seq)
_Loader.add_constructor("tag:yaml.org,2002:map", _map)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", _python_eval)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse ``path`` (or ``text``); YAML errors become ``FormatError`` with file and line."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FormatError(f"cannot read: {exc.strerror}", source=path) from None
        except UnicodeDecodeError:
            raise FormatError("not a UTF-8 text file", source=path) from None
    loader = _Loader(text)
    loader.source = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise FormatError(f"invalid YAML: {exc.problem or exc.context}", source=path,
                          line=line) from None
    except yaml.YAMLError as exc:
        raise FormatError(f"invalid YAML: {exc}", source=path) from None
    finally:
        loader.dispose()
