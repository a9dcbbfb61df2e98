"""Small parsing helpers shared by the readers, so every malformed value reads the same way:
file, line, what was found and what was expected."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular


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
        raise FormatError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})",
                          source=path) from None
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None


def parse_xml(path: Path, text: str | None = None) -> ET.Element:
    """Parse an XML file (or its text, already read); a syntax error names the line."""
    text = read_text(path) if text is None else text
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise FormatError(f"malformed XML: {exc}", source=path, line=line) from None


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
