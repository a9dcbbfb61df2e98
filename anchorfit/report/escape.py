"""Text from other people's files, made safe for a terminal and for a spreadsheet.

Layer, level, blob and file names come from configs anchorfit did not write. Printed raw, an
escape sequence in a name can clear the screen, retitle the window or hide text (and bidi
controls can reorder what is shown); written raw into a CSV cell, a name such as ``=cmd|...``
runs as a formula when the file is opened in a spreadsheet. Two helpers, used by every writer:

- ``terminal_safe``: control characters (C0 except newline and tab in free text, DEL, C1),
  bidi controls and lone surrogates are shown as visible escapes (``\\x1b``, ``\\u202e``);
- ``csv_safe``: the same for one cell, then a cell that starts with ``=``, ``+``, ``-`` or
  ``@`` gets a leading ``'`` (OWASP's CSV-injection advice), unless it is a plain number
  or only dashes, which no spreadsheet evaluates.

JSON output needs neither: ``json.dumps`` escapes every control character already.
"""

from __future__ import annotations

import re

_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE}]")
_UNSAFE_CELL = re.compile(f"[\t\n{_UNSAFE}]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|-+")
_FORMULA_START = ("=", "+", "-", "@")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object, *, one_line: bool = False) -> str:
    """``str(text)`` with control characters shown as escapes; newlines and tabs are kept
    unless ``one_line`` (table cells, CSV cells, titles)."""
    pattern = _UNSAFE_CELL if one_line else _UNSAFE_TEXT
    return pattern.sub(_visible, str(text))


def csv_safe(value: object) -> object:
    """One CSV cell: strings escaped for the terminal and guarded against formulas; numbers
    and other values unchanged."""
    if not isinstance(value, str):
        return value
    text = terminal_safe(value, one_line=True)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def markdown_safe(value: object) -> str:
    """One Markdown table cell: terminal-safe, on one line, with ``|`` escaped."""
    return terminal_safe(value, one_line=True).replace("|", "\\|")
