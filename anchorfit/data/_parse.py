"""Small parsing helpers shared by the readers, so every malformed value reads the same way:
file, line, what was found and what was expected."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular, not_utf8


def number(token: str, source: str | Path, line: int | None, what: str = "a number") -> float:
    """Parse a number, tolerating a decimal comma ("0,358" as written by some CSV exporters)."""
    text = token.strip().strip('"')
    try:
        return float(text)
    except ValueError:
        pass
    if text.count(",") == 1 and "." not in text:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            pass
    raise FormatError(f"expected {what}, found {token.strip()!r}", source=source, line=line)


def integer(token: str, source: str | Path, line: int | None, what: str = "an integer") -> int:
    value = number(token, source, line, what)
    if not math.isfinite(value) or value != int(value):
        raise FormatError(f"expected {what}, found {token.strip()!r}", source=source, line=line)
    return int(value)


def read_text(path: Path) -> str:
    """The whole file as text; unreadable or binary files, devices and FIFOs (``/dev/zero``
    never ends) become user errors."""
    check_regular(path, AnchorfitError)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(exc.reason, exc.start, path) from None
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None


def parse_xml(path: Path, text: str | None = None) -> ET.Element:
    """Parse an XML file (or its text, already read); a syntax error names the line."""
    text = read_text(path) if text is None else text
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise xml_error(exc, path) from None


def xml_error(exc: ET.ParseError, path: Path) -> FormatError:
    """The message for an XML syntax error: expat's words and its line."""
    line = exc.position[0] if getattr(exc, "position", None) else None
    return FormatError(f"malformed XML: {exc}", source=path, line=line)


def child_number(elem: ET.Element, tag: str, source: Path, what: str) -> float:
    """Number in <tag> under elem; a missing tag or a non-number names the element."""
    node = elem.find(tag)
    if node is None or node.text is None:
        raise FormatError(f"missing <{tag}> in {what}", source=source, key=tag)
    return number(node.text, source, None, f"a number in <{tag}>")


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under folder (recursive) with one of the suffixes, sorted; unreadable → error."""
    try:
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    except OSError as exc:
        raise AnchorfitError(f"cannot list folder: {exc.strerror or exc}", source=folder) from None
    if not found:
        raise AnchorfitError(f"no {'/'.join(suffixes)} files found", source=folder)
    return found


def describe(value: object, limit: int = 40) -> str:
    """A short, always-computable repr for messages (a 10,000-digit int has no str())."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def json_number(value: object, source: str | Path, key: str, what: str = "a number") -> float:
    """A JSON number as a finite float. Booleans and strings are refused (``true`` is not 1,
    ``"12"`` is not 12: both mean the file was written by something else than it claims), and
    so are values that do not fit a float (``1e400``, which json reads as inf, or a 400-digit
    integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(f"expected {what}, found {describe(value)}", source=source, key=key)
    try:
        number_ = float(value)
    except OverflowError:
        number_ = math.inf
    if not math.isfinite(number_):
        raise FormatError(f"expected {what}, found {describe(value)} (not a finite float)",
                          source=source, key=key)
    return number_


def decode_error(exc: UnicodeDecodeError, source: Path) -> FormatError:
    """The message for invalid UTF-8 met while streaming a file. A text stream decodes in
    chunks, so its error knows neither the line nor the file offset: find them once, here."""
    reason, line = exc.reason, None
    try:
        data = source.read_bytes()
        data.decode("utf-8-sig")
    except UnicodeDecodeError as full:
        reason, line = full.reason, data.count(b"\n", 0, full.start) + 1
    except OSError:
        pass
    return FormatError(f"not a UTF-8 text file ({reason})", source=source, line=line)


class Utf8Lines:
    """A text file opened for streaming whose invalid UTF-8 is a FormatError naming the line
    (``decode_error``), wherever the read happens: ``readline``, iteration (``csv.reader``).
    Everything else (``seek``, ``buffer``, the context manager) is the file's own."""

    def __init__(self, path: Path, encoding: str = "utf-8", newline: str | None = None) -> None:
        self.path = path
        self._fh = open(path, encoding=encoding, newline=newline)

    def readline(self) -> str:
        try:
            return self._fh.readline()
        except UnicodeDecodeError as exc:
            raise decode_error(exc, self.path) from None

    def __iter__(self) -> "Utf8Lines":
        return self

    def __next__(self) -> str:
        try:
            return next(self._fh)
        except UnicodeDecodeError as exc:
            raise decode_error(exc, self.path) from None

    def __enter__(self) -> "Utf8Lines":
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._fh, name)
