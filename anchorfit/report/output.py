"""Render any result object as a table, JSON, CSV or Markdown, and write files atomically.

Every result in anchorfit is a dataclass with ``to_frame()`` (a pandas DataFrame for the table,
CSV and Markdown views) and ``to_dict()`` (a JSON-ready dict that scripts rely on). This module is
the single place that turns those into text, so all commands look and behave alike.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

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
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
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
    table = Table(title=None if title is None else Text(title),
                  caption=None if caption is None else Text(caption), show_lines=False)
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(Text(str(col)), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(_cell(v)) for v in row))
    buf = io.StringIO()
    console = Console(file=buf, width=width or 200, force_terminal=False, color_system=None)
    console.print(table)
    return buf.getvalue()


def render(result: Renderable, fmt: str, *, title: str | None = None,
           caption: str | None = None) -> str:
    """Text of ``result`` in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return to_json(result.to_dict())
    frame = result.to_frame()
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "md":
        return frame_to_markdown(frame)
    if fmt == "table":
        return frame_to_table(frame, title=title, caption=caption)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_figure_atomic(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically; the format follows the suffix (png, svg, pdf)."""
    path = Path(path)
    buf = io.BytesIO()
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig.savefig(buf, format=fmt, **kwargs)
    write_atomic(path, buf.getvalue())
