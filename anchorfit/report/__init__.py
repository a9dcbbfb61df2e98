"""Rendering results: terminal tables, JSON, CSV and Markdown writers, figures."""

from anchorfit.report.output import FORMATS, render, write_atomic

__all__ = ["FORMATS", "render", "write_atomic"]
