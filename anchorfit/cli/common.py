"""Options, parsers and printing shared by every subcommand.

Each argument the commands have in common (MODEL, --input, --seed, --erf-input, the output
options) is declared once here; a command passes only the help text that differs. Comma lists
are split by one parser, ``split_list``, whatever the items are.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from anchorfit.cli import validate
from anchorfit.errors import AnchorfitError
from anchorfit.report.escape import markdown_safe, terminal_safe
from anchorfit.report.output import FORMATS, Renderable, frame_to_csv, frame_to_markdown, \
    frame_to_table, render, to_json
from anchorfit.report.safe_write import write_output
from anchorfit.safeinput import MAX_MAP_SIDE

if TYPE_CHECKING:
    import pandas as pd

MAX_SIDE = MAX_MAP_SIDE  # px: no detector input comes near it; larger ones only exhaust memory
_HW = re.compile(r"\s*([0-9]{1,12})\s*(?:[x,*]\s*([0-9]{1,12})\s*)?")

MODEL_HELP = "detector file, zoo name (s3fd) or torchvision:NAME"
INPUT_HELP = "input size (default: the detector's)"
SEED_HELP = "seed of every random step (default 0)"
ERF_INPUT_HELP = ("input the ERF is measured on (default: the detector's, or the canvas its "
                  "deepest level's RF needs when that is larger)")


def add_model(p: argparse.ArgumentParser, help: str = MODEL_HELP, *, metavar: str = "MODEL",
              dest: str = "model", **kwargs) -> None:
    """The MODEL positional (``nargs``, ``default`` in ``kwargs`` where it is optional)."""
    p.add_argument(dest, metavar=metavar, help=help, **kwargs)


def add_input(p: argparse.ArgumentParser, help: str = INPUT_HELP, **kwargs) -> None:
    """--input/-i HxW (parsed by ``parse_hw``)."""
    p.add_argument("--input", "-i", metavar="HxW", help=help, **kwargs)


def add_seed(p: argparse.ArgumentParser, help: str = SEED_HELP) -> None:
    p.add_argument("--seed", type=validate.seed, default=0, help=help)


def add_erf_input(p: argparse.ArgumentParser, help: str = ERF_INPUT_HELP) -> None:
    p.add_argument("--erf-input", metavar="HxW", help=help)


def add_report(p: argparse.ArgumentParser) -> None:
    """--report FILE.html: one self-contained HTML page (tables, findings, figures inline)."""
    p.add_argument("--report", metavar="HTML", type=validate.output_file,
                   help="also write one self-contained HTML report (tables, findings with "
                        "remedies, figures inline; no external file, readable offline)")


def write_report(report: object, args: argparse.Namespace) -> None:
    """Write a ``report.html.Report`` to --report (never over one of the command's inputs)."""
    from anchorfit.report.html import write_report as write

    write(args.report, report, protect=input_paths(args))


def add_format_options(parser: argparse.ArgumentParser, *,
                       format_help: str = "output format: a terminal table (default), JSON for "
                                          "scripts, CSV or Markdown",
                       output_help: str = "write the output to FILE instead of standard output "
                                          "(a regular file is replaced atomically, keeping its "
                                          "mode; devices, FIFOs and '-' are written through)"
                       ) -> None:
    parser.add_argument("--format", "-f", choices=FORMATS, default="table", help=format_help)
    parser.add_argument("--output", "-o", metavar="FILE", type=validate.output_file,
                        help=output_help)


@contextmanager
def flags(mapping: dict[str, str]) -> Iterator[None]:
    """Say the flag the user typed where the library names its parameter.

    Library errors name parameters (``key="restarts"``, message "restarts 0: ..."); inside this
    block an error whose key is in ``mapping`` (parameter -> flag) is raised again with the flag
    as its key and at the start of its message ("--restarts 0: ...").
    """
    try:
        yield
    except AnchorfitError as exc:
        flag = mapping.get(exc.key or "")
        if flag is None:
            raise
        message, key = exc.message, exc.key or ""
        if message.startswith(key) and message[len(key):len(key) + 1] in ("", " ", "=", ":"):
            message = flag + message[len(key):]
        raise type(exc)(message, source=exc.source, line=exc.line, key=flag,
                        hint=exc.hint) from None


def split_list(text: str) -> list[str]:
    """The one comma-list parser: 'a, b,,c' -> ['a', 'b', 'c'] (items stripped, empties dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_optional_hw(text: str | None, option: str = "--input") -> tuple[int, int] | None:
    """``parse_hw`` of an optional size option (None when the option was not given)."""
    return parse_hw(text, option=option) if text else None


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
        values = [float(v) for v in split_list(text)]
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


def readable(frame: pd.DataFrame, args: argparse.Namespace, digits: int = 3) -> pd.DataFrame:
    """For the table and Markdown views: floats rounded to ``digits`` significant digits
    (406.942 -> 407, 0.104542 -> 0.105); CSV and JSON keep every digit for scripts."""
    if getattr(args, "format", "table") not in ("table", "md"):
        return frame
    from anchorfit.report.text import round_sig

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda v: round_sig(float(v), digits))
    return out


def emit_sections(result: Renderable, args: argparse.Namespace,
                  sections: list[tuple[str, pd.DataFrame]], notes: list[str]) -> None:
    """JSON: the whole result; CSV: the first table; table/Markdown: every table in turn."""
    if args.format == "json":
        text = to_json(result.to_dict())
    elif args.format == "csv":
        text = frame_to_csv(sections[0][1])
    elif args.format == "md":
        text = "\n".join(f"**{markdown_safe(title)}**\n\n{frame_to_markdown(frame)}"
                         for title, frame in sections)
    else:
        text = "\n".join(frame_to_table(frame, title=title) for title, frame in sections)
    write_text(text, args)
    print_notes(notes)
