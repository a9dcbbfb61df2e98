"""Render any result object as a table, JSON, CSV or Markdown, and write files safely.

Every result in anchorfit is a dataclass with ``to_frame()`` (a pandas DataFrame for the table,
CSV and Markdown views) and ``to_dict()`` (a JSON-ready dict that scripts rely on). This module is
the single place that turns those into text, so all commands look and behave alike. Names from
other people's files are escaped here (``report.escape``) and files are written by
``report.safe_write`` (devices and FIFOs written through, modes kept, atomic replacement).
"""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from anchorfit.report.escape import csv_safe, markdown_safe, terminal_safe
from anchorfit.report.safe_write import save_figure

FORMATS = ("table", "json", "csv", "md")


class Renderable(Protocol):
    def to_frame(self) -> pd.DataFrame: ...

    def to_dict(self) -> dict[str, Any]: ...


def json_default(value: Any) -> Any:
    """Make numpy scalars, Fractions and paths JSON-serialisable (halves stay exact as floats)."""
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(_clean_nan(data), indent=2, default=json_default) + "\n"


def _clean_nan(value: Any) -> Any:
    """JSON has no NaN; scripts expect null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_nan(v) for v in value]
    return value


def frame_to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table without the optional ``tabulate`` dependency."""
    cols = [markdown_safe(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(markdown_safe(_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value)


def frame_to_table(frame: pd.DataFrame, title: str | None = None, caption: str | None = None,
                   width: int | None = None) -> str:
    """A rich terminal table rendered to text (no colour codes when not on a terminal)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text objects, not strings: cells such as "[yolo]" or "[12, 16]" are data, not markup.
    # Names from config files are escaped: no escape sequence reaches the terminal.
    table = Table(title=None if title is None else Text(terminal_safe(title)),
                  caption=None if caption is None else Text(terminal_safe(caption)),
                  show_lines=False)
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(Text(terminal_safe(col, one_line=True)),
                         justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(terminal_safe(_cell(v), one_line=True)) for v in row))
    buf = io.StringIO()
    console = Console(file=buf, width=width or 200, force_terminal=False, color_system=None)
    console.print(table)
    return buf.getvalue()


def frame_to_csv(frame: pd.DataFrame) -> str:
    """CSV whose text cells and header are escaped (``csv_safe``): no control characters, and
    no cell a spreadsheet would run as a formula."""
    columns = [frame.iloc[:, i] if pd.api.types.is_numeric_dtype(frame.iloc[:, i])
               else frame.iloc[:, i].map(csv_safe) for i in range(frame.shape[1])]
    if not columns:
        return frame.to_csv(index=False)
    safe = pd.concat(columns, axis=1, ignore_index=True)
    safe.columns = [csv_safe(str(c)) for c in frame.columns]
    return safe.to_csv(index=False)


def render(result: Renderable, fmt: str, *, title: str | None = None,
           caption: str | None = None) -> str:
    """Text of ``result`` in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return to_json(result.to_dict())
    frame = result.to_frame()
    if fmt == "csv":
        return frame_to_csv(frame)
    if fmt == "md":
        return frame_to_markdown(frame)
    if fmt == "table":
        return frame_to_table(frame, title=title, caption=caption)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def save_figure_atomic(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """Save a matplotlib figure (the format follows the suffix: png, svg, pdf) by the rules of
    ``report.safe_write``."""
    save_figure(fig, path, **kwargs)
