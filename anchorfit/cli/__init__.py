"""The ``anchorfit`` command: parse arguments, call the library, print.

Each subcommand lives in its own module here with two functions: ``add_parser(subparsers)`` and
``run(args) -> int``. Nothing in this package computes anything the library could not give a
Python user directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

from anchorfit import __version__
from anchorfit.errors import AnchorfitError
from anchorfit.report.escape import terminal_safe


def _command_modules() -> list[ModuleType]:
    from anchorfit.cli import audit, boxes, compare, erf, kmeans, plan, rf, show

    return [rf, show, erf, boxes, kmeans, plan, audit, compare]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anchorfit",
        description=(
            "Choose detector anchors from exact receptive fields (RF), effective receptive fields "
            "(ERF) and your dataset's boxes. Coordinates use the index convention: input pixel k "
            "sits at coordinate k; the RF of cell i spans [-P + i*S, -P + i*S + r - 1]."
        ),
        epilog="Run 'anchorfit COMMAND --help' for each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"anchorfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _command_modules():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (2: a user error, 130: interrupted).

    Everything that can take time, imports of the command modules included, runs inside the
    ``try``: Ctrl-C at any point after this module is imported exits 130 without a traceback.
    """
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            # the library warns Python users; the CLI prints the same text as notes on stderr
            warnings.filterwarnings("ignore", category=UserWarning, module=r"anchorfit\.")
            return int(args.handler(args) or 0)
    except AnchorfitError as exc:
        print(f"anchorfit: error: {terminal_safe(exc.format())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("anchorfit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `anchorfit ... | head`: the reader left; exit quietly like other Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # the disk, the permissions or the network, not a bug: one line naming the file
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(terminal_safe(f"anchorfit: error: {where}{exc.strerror or exc}"), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
