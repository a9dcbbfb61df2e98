"""argparse ``type=`` checks for numbers, seeds and output paths: bad values stop at parsing.

Python's ``float()`` accepts ``nan``, ``inf`` and ``1e999``; ``int()`` accepts any size; an
empty ``-o ""`` becomes ``Path(".")``, the current folder. Each check here raises
``argparse.ArgumentTypeError``, so argparse prints ``argument --FLAG: what was expected``
and exits with status 2 before any file is read or any work is done.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from anchorfit.errors import AnchorfitError
from anchorfit.report.safe_write import check_figure_path

SEED_MAX = 2**32 - 1  # numpy's legacy seeding and torch.manual_seed both take 0 .. 2**32 - 1


def finite_float(*, above: float | None = None, at_least: float | None = None,
                 below: float | None = None) -> Callable[[str], float]:
    """A float type that refuses nan, inf and values outside the bounds (``above`` and
    ``below`` exclusive, ``at_least`` inclusive)."""
    bounds = []
    if above is not None:
        bounds.append(f"above {above:g}")
    if at_least is not None:
        bounds.append(f"at least {at_least:g}")
    if below is not None:
        bounds.append(f"below {below:g}")
    wanted = "a finite number" + (" " + " and ".join(bounds) if bounds else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (above is not None and not value > above) or \
                (at_least is not None and not value >= at_least) or \
                (below is not None and not value < below):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def seed(text: str) -> int:
    """A random seed: an integer 0 .. 2**32 - 1 (what numpy and torch accept)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer seed from 0 to {SEED_MAX} "
                                         f"(2**32 - 1), got {text!r}")
    return value


def output_file(text: str) -> Path:
    """An output path: not empty ('-' is standard output), not a folder name ending in '/'
    (which ``Path`` would silently strip)."""
    if text == "":
        raise argparse.ArgumentTypeError("expected a file name, got an empty string "
                                         "('-' writes to standard output)")
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r}: it names a folder; give a file name")
    return Path(text)


def figure_file(text: str) -> str:
    """A figure path whose suffix matplotlib writes (.png, .svg, .pdf; none: PNG)."""
    try:
        check_figure_path(text)
    except AnchorfitError as exc:
        raise argparse.ArgumentTypeError(exc.message + (f" ({exc.hint})" if exc.hint else "")) \
            from None
    return text
