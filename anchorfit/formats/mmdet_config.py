"""Reading an mmdetection (2.x/3.x dict-style) config ``.py`` without running it.

Configs are Python files, but only as a notation for data. They are read with the safe AST
evaluator (``parsers.pyconfig``), with mmengine's inheritance rules: ``_base_`` (a path or a list,
relative to the file) is loaded first, dicts merge key by key, ``_delete_=True`` replaces instead
of merging, lists replace, and ``{{_base_.x}}`` / ``_base_.x`` read a value of the merged bases.
What the merged config means for a detector is ``anchorfit.formats.mmdet``'s business.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from anchorfit.errors import FormatError
from anchorfit.formats.base import read_text
from anchorfit.formats.parsers.pyconfig import (
    AttrDict,
    Budget,
    SafeEvaluator,
    find_line,
    substitute_base_refs,
)
from anchorfit.safeinput import MAX_BASE_DEPTH, beyond_limit, locate

BASE_VAR = "__base__"
_VIA = "read as a _base_ of "
_BARE_BASE = re.compile(r"\b_base_\.(?=[A-Za-z_])")


class MMDetConfig:
    """A merged config plus the text of every file, to find lines for messages."""

    def __init__(self, path: Path, data: AttrDict, texts: dict[Path, str]) -> None:
        self.path, self.data, self.texts = path, data, texts

    def line(self, pattern: str) -> tuple[Path, int | None]:
        """The file and line where ``pattern`` first occurs (the file itself, then its bases)."""
        for p, text in self.texts.items():
            line = find_line(text, pattern)
            if line is not None:
                return p, line
        return self.path, None

    def error(self, message: str, pattern: str | None = None, key: str | None = None) -> FormatError:
        src, line = self.line(pattern) if pattern else (self.path, None)
        hint = f"inherited by {self.path}" if src != self.path else None
        return FormatError(message, source=src, line=line, key=key, hint=hint)


def merge(base: Any, child: Any) -> Any:
    """mmengine's merge: dicts recursively (unless ``_delete_=True``), everything else replaces."""
    if isinstance(base, dict) and isinstance(child, dict):
        if child.get("_delete_"):
            return AttrDict({k: v for k, v in child.items() if k != "_delete_"})
        out = AttrDict(base)
        for k, v in child.items():
            out[k] = merge(base[k], v) if k in base else _strip_delete(v)
        return out
    return _strip_delete(child)


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return AttrDict({k: _strip_delete(v) for k, v in value.items() if k != "_delete_"})
    return value


def load_config(path: Path, _stack: tuple[Path, ...] = (),
                _memo: dict[Path, MMDetConfig] | None = None, _budget: Budget | None = None
                ) -> MMDetConfig:
    """Read an mmdet config with its ``_base_`` chain (cycles and missing bases are errors).

    Bases are followed wherever they point, as mmengine does (relative to the including file,
    or absolute); they are only read as data by the safe evaluator, never run. Each base file
    is evaluated once per load (``_memo``), so diamonds of shared bases cost one read per file;
    chains deeper than ``MAX_BASE_DEPTH`` are refused, and one ``Budget`` covers the config and
    all its bases.
    """
    path = Path(path)
    memo: dict[Path, MMDetConfig] = {} if _memo is None else _memo
    budget = Budget() if _budget is None else _budget
    text = read_text(path)
    code = _BARE_BASE.sub(f"{BASE_VAR}.", substitute_base_refs(text))
    ev = SafeEvaluator(path, budget=budget)
    tree = ev.parse(code)
    base_paths: list[str] = []
    base_line = None
    for stmt in getattr(tree, "body", []):
        targets = getattr(stmt, "targets", [])
        if any(getattr(t, "id", None) == "_base_" for t in targets):
            value = ev.eval(stmt.value)  # type: ignore[attr-defined]
            base_line = stmt.lineno
            base_paths = [value] if isinstance(value, str) else \
                list(value) if isinstance(value, (list, tuple)) else [value]
            if not all(isinstance(b, str) for b in base_paths):
                raise FormatError("_base_ must be a path or a list of paths", source=path,
                                  line=base_line, key="_base_")
    merged = AttrDict()
    texts: dict[Path, str] = {path: text}
    resolved = path.resolve()
    if base_paths and len(_stack) >= MAX_BASE_DEPTH:
        raise FormatError(beyond_limit("_base_ chain depth", len(_stack) + 1, MAX_BASE_DEPTH),
                          source=path, line=base_line, key="_base_")
    for rel in base_paths:
        bpath, what = locate(path.parent, rel)
        if bpath in (*_stack, resolved):
            chain = " → ".join(p.name for p in (*_stack, resolved, bpath))
            raise FormatError(f"_base_ cycle: {chain}", source=path, line=base_line, key="_base_")
        if what:
            raise FormatError(f"_base_ file {rel!r} {what} (looked for {bpath})", source=path,
                              line=base_line, key="_base_")
        sub = memo.get(bpath)
        if sub is None:
            try:
                sub = load_config(bpath, (*_stack, resolved), memo, budget)
            except FormatError as exc:  # name the file the user gave too, not only the base
                own, _, inner = (exc.hint or "").partition(_VIA)  # one 'via', the outermost
                own = own.removesuffix("; ")
                via = f"{_VIA}a _base_ of {path}" if inner else f"{_VIA}{path}"
                exc.hint = f"{own}; {via}" if own else via
                exc.args = (exc.format(),)
                raise
            memo[bpath] = sub
        merged = merge(merged, sub.data)
        for p, t in sub.texts.items():
            texts.setdefault(p, t)
    ev.scope[BASE_VAR] = merged
    own = ev.run_module(code)
    own.pop("_base_", None)
    return MMDetConfig(path, merge(merged, AttrDict(own)), texts)


__all__ = ["BASE_VAR", "MMDetConfig", "load_config", "merge"]
