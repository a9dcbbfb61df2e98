"""User-facing errors.

Anything the user can fix (a malformed file, an unknown model name, a bad option value) raises
``AnchorfitError`` or a subclass. The CLI turns it into one message on stderr and exit status 2,
never a traceback. Messages name the file, line or key and say what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class AnchorfitError(Exception):
    """An error caused by the user's input, reported without a traceback (exit status 2)."""

    def __init__(self, message: str, *, source: str | Path | None = None, line: int | None = None,
                 key: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


def suggest(word: object, choices: Iterable[object], *, n: int = 3, cutoff: float = 0.6,
            otherwise: str | None = None) -> str | None:
    """A "did you mean a, b?" hint for an unknown ``word`` among ``choices`` (``otherwise`` when
    nothing is close). The one helper every "unknown name" message uses, so they read alike."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)
    if close:
        return "did you mean " + ", ".join(close) + "?"
    return otherwise


class UnsupportedOpError(AnchorfitError):
    """A network operation the RF engine has no geometry rule for."""


class TraceError(AnchorfitError):
    """A network that torch.fx cannot trace."""


class FormatError(AnchorfitError):
    """A malformed or unsupported file in a foreign format (cfg, yaml, prototxt, json, xml, csv)."""
