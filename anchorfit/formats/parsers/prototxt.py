"""A small parser for protobuf text format (Caffe ``.prototxt``), with line numbers.

No protobuf dependency and no schema: a message is an ordered list of ``name: value`` fields and
``name { ... }`` sub-messages, which is all a reader of network definitions needs. Every field
keeps its line so a reader can say *where* an unsupported layer or a bad value is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from anchorfit.errors import FormatError
from anchorfit.formats.base import read_text

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+) |
    (?P<nl>\n) |
    (?P<comment>\#[^\n]*) |
    (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*') |
    (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fF]?(?![\w.])) |
    (?P<ident>[A-Za-z_][\w.]*|[-+]?(?:inf|nan)\b) |
    (?P<punct>[{}<>:\[\],;])
""", re.VERBOSE)

Scalar = Union[str, int, float, bool]
#: Nesting of ``{ }`` blocks; Caffe's deepest messages (layer > param > filler) nest 3 or 4.
MAX_DEPTH = 100


@dataclass
class Message:
    """A protobuf text message: ordered fields, each ``(name, value, line)``."""

    fields: list[tuple[str, Union[Scalar, "Message"], int]] = field(default_factory=list)
    line: int = 1

    def getall(self, name: str) -> list[Any]:
        return [v for n, v, _ in self.fields if n == name]

    def get(self, name: str, default: Any = None) -> Any:
        for n, v, _ in self.fields:
            if n == name:
                return v
        return default

    def line_of(self, name: str) -> int:
        for n, _, line in self.fields:
            if n == name:
                return line
        return self.line

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.fields)

    def __iter__(self) -> Iterator[tuple[str, Any, int]]:
        return iter(self.fields)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.tokens = list(self._tokenize(text))
        self.pos = 0
        self.depth = 0

    def _tokenize(self, text: str) -> Iterator[tuple[str, str, int]]:
        line, pos = 1, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise FormatError(f"prototxt syntax error: unexpected character {text[pos]!r}",
                                  source=self.source, line=line)
            kind = m.lastgroup or ""
            if kind == "nl":
                line += 1
            elif kind not in ("ws", "comment"):
                yield kind, m.group(), line
            pos = m.end()

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1][2] if self.tokens else 1
            raise FormatError(f"prototxt syntax error: file ends where {what} was expected "
                              "(unbalanced braces?)", source=self.source, line=last)
        self.pos += 1
        return tok

    def message(self, closing: str | None, line: int) -> Message:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:  # the parser recurses per block: stop before the stack
                raise FormatError(f"prototxt blocks nested more than {MAX_DEPTH} levels deep (no "
                                  "real network comes near it)", source=self.source, line=line)
            return self._message(closing, line)
        finally:
            self.depth -= 1

    def _message(self, closing: str | None, line: int) -> Message:
        msg = Message(line=line)
        while True:
            tok = self.peek()
            if tok is None:
                if closing is not None:
                    raise FormatError(f"prototxt syntax error: '{closing}' missing for the block "
                                      f"opened on line {line}", source=self.source, line=line)
                return msg
            kind, text, tline = tok
            if closing is not None and kind == "punct" and text == closing:
                self.pos += 1
                return msg
            if kind == "punct" and text in ",;":
                self.pos += 1
                continue
            if kind != "ident":
                raise FormatError(f"prototxt syntax error: expected a field name, got {text!r}",
                                  source=self.source, line=tline)
            self.pos += 1
            self.field(msg, text, tline)

    def field(self, msg: Message, name: str, line: int) -> None:
        kind, text, tline = self.next(f"a value for {name!r}")
        if kind == "punct" and text == ":":
            kind, text, tline = self.next(f"a value for {name!r}")
            if kind == "punct" and text == "[":
                self.list_value(msg, name, tline)
                return
        if kind == "punct" and text in "{<":
            msg.fields.append((name, self.message("}" if text == "{" else ">", tline), line))
            return
        if kind == "punct":
            raise FormatError(f"prototxt syntax error: expected a value for {name!r}, got "
                              f"{text!r}", source=self.source, line=tline)
        msg.fields.append((name, self.scalar(kind, text), line))

    def list_value(self, msg: Message, name: str, line: int) -> None:
        while True:
            kind, text, tline = self.next("a list value or ']'")
            if kind == "punct" and text == "]":
                return
            if kind == "punct" and text == ",":
                continue
            msg.fields.append((name, self.scalar(kind, text), tline))

    def scalar(self, kind: str, text: str) -> Scalar:
        if kind == "string":
            value = self._unescape(text)
            # adjacent string literals concatenate
            while (tok := self.peek()) is not None and tok[0] == "string":
                self.pos += 1
                value += self._unescape(tok[1])
            return value
        if kind == "number":
            t = text.rstrip("fF")
            try:
                return int(t)
            except ValueError:
                return float(t)
        if text in ("true", "True"):
            return True
        if text in ("false", "False"):
            return False
        return text  # an enum value such as MAX or SOFTMAX


    def _unescape(self, text: str) -> str:
        """A quoted string's value; a bad escape (``"\\x"``) is a syntax error with its line."""
        try:
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        except UnicodeDecodeError as exc:
            line = self.tokens[self.pos - 1][2] if 0 < self.pos <= len(self.tokens) else None
            raise FormatError(f"prototxt syntax error: bad escape in the string {text[:40]}: "
                              f"{exc.reason}", source=self.source, line=line) from None


def parse_prototxt(text: str, source: str | Path = "<prototxt>") -> Message:
    """Parse protobuf text format; syntax errors are ``FormatError`` with the line."""
    return _Parser(text, str(source)).message(None, 1)


def read_prototxt(path: Path) -> Message:
    text = read_text(path)
    return parse_prototxt(text, path)
