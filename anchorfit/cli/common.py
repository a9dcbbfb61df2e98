"""Options and printing shared by every subcommand."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable

from anchorfit.cli.validate import output_file
from anchorfit.errors import AnchorfitError
from anchorfit.report.escape import terminal_safe
from anchorfit.report.output import FORMATS, Renderable, render
from anchorfit.report.safe_write import write_output

MAX_SIDE = 65536  # px: no detector input comes near it; larger sizes only exhaust memory
_HW = re.compile(r"\s*([0-9]{1,12})\s*(?:[x,*]\s*([0-9]{1,12})\s*)?")


def add_format_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=FORMATS, default="table",
                        help="output format: a terminal table (default), JSON for scripts, CSV or "
                             "Markdown")
    parser.add_argument("--output", "-o", metavar="FILE", type=output_file,
                        help="write the output to FILE instead of standard output (a regular "
                             "file is replaced atomically, keeping its mode; devices, FIFOs "
                             "and '-' are written through)")


def parse_hw(text: str, *, option: str = "--input") -> tuple[int, int]:
    """Parse '640', '640x480' or '640,480' as (H, W); H first, like every (y, x) pair here."""
    match = _HW.fullmatch(text.lower())
    values = [int(v) for v in match.groups() if v is not None] if match else []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise AnchorfitError(f"{option} {text!r} is not a size; expected HxW with positive "
                             "integers, e.g. 640 or 480x640 (height first)", key=option)
    if max(values) > MAX_SIDE:
        raise AnchorfitError(f"{option} {text!r}: a side above {MAX_SIDE} px; no detector "
                             "input is that large", key=option)
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


def input_paths(args: argparse.Namespace) -> list[str]:
    """The files a command reads (detector, annotations, image sizes, weights): outputs must
    never replace them."""
    names = ("file", "model", "annotations", "boxes", "image_sizes", "weights")
    return [str(v) for v in (getattr(args, n, None) for n in names) if v]


def write_text(text: str, args: argparse.Namespace) -> None:
    """The command's output on standard output, or written to ``--output`` (report.safe_write)."""
    if getattr(args, "output", None):
        write_output(args.output, text, what="--output", protect=input_paths(args))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def print_notes(notes: Iterable[str]) -> None:
    """Notes on stderr, control characters escaped (they quote names from config files)."""
    for note in notes:
        print(terminal_safe(note), file=sys.stderr)


def emit(result: Renderable, args: argparse.Namespace, *, title: str | None = None,
         caption: str | None = None, notes: list[str] | None = None) -> None:
    """Print (or write) a result in the format the user asked for; notes go to stderr."""
    write_text(render(result, args.format, title=title, caption=caption), args)
    print_notes(notes or [])
