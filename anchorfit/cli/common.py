"""Options and printing shared by every subcommand."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from anchorfit.errors import AnchorfitError
from anchorfit.report.output import FORMATS, Renderable, render, write_atomic


def add_format_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=FORMATS, default="table",
                        help="output format: a terminal table (default), JSON for scripts, CSV or "
                             "Markdown")
    parser.add_argument("--output", "-o", metavar="FILE", type=Path,
                        help="write the output to FILE (atomically) instead of standard output")


def parse_hw(text: str, *, option: str = "--input") -> tuple[int, int]:
    """Parse '640', '640x480' or '640,480' as (H, W); H first, like every (y, x) pair here."""
    raw = text.lower().replace(",", "x").replace("*", "x")
    parts = [p for p in raw.split("x") if p != ""]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise AnchorfitError(f"{option} {text!r} is not a size; expected HxW with positive "
                             "integers, e.g. 640 or 480x640 (height first)")
    return values[0], values[1]


def parse_floats(text: str, option: str) -> list[float]:
    """Parse a comma list of positive, finite numbers ('0.5,1,2'); the message names ``option``."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise AnchorfitError(f"{option} {text!r}: expected positive numbers separated by commas",
                             key=option)
    return values


def emit(result: Renderable, args: argparse.Namespace, *, title: str | None = None,
         caption: str | None = None, notes: list[str] | None = None) -> None:
    """Print (or write) a result in the format the user asked for; notes go to stderr."""
    text = render(result, args.format, title=title, caption=caption)
    if getattr(args, "output", None):
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    for note in notes or []:
        print(note, file=sys.stderr)
