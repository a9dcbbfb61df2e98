"""Rendering results: terminal tables, JSON, CSV and Markdown writers, figures.

The names below load on first use: ``report.escape`` and ``report.safe_write`` are needed by
the CLI before any command runs and must not pull in pandas with them.
"""

from typing import Any

__all__ = ["FORMATS", "render"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from anchorfit.report import output

        return getattr(output, name)
    raise AttributeError(f"module 'anchorfit.report' has no attribute {name!r}")
