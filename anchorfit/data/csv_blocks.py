"""Plain blocks of a box CSV parsed in C: the fast path of ``csvfmt.read_csv``.

An Open Images box file has 15 M rows; ``csv.reader`` plus a Python ``float()`` per cell reads
about 140,000 rows a second on this project's machine (~105 s for the file). Here a block of a
few MiB of whole lines is handed to ``numpy.loadtxt`` for the coordinates and to pandas' C
tokenizer for the image and class names (both already dependencies), about ten times faster.

Exactness comes first, so a block is taken only when its meaning cannot differ from the
row-by-row reader's:

* numbers: ``numpy.loadtxt`` converts with ``PyOS_string_to_double``, the routine behind
  Python's ``float()``, so every value it accepts is the same double; what it refuses (a decimal
  comma, ``1_000``, an empty cell, a word) sends the block to the row reader, which accepts or
  names it exactly as before;
* lines: no quote, NUL, blank line or lone ``\\r`` anywhere in the block, no byte-order mark
  at its start, and exactly ``columns - 1`` delimiters on every line, so every line is one row
  with every field where the header says;
* names and sizes: image and class names are stripped as the row reader strips them, and a block
  where an image-size cell is NaN goes to the row reader (whose first-known-size rule then
  applies row by row).

``parse_block`` returns None for anything else; the caller then reads from that block to the end
of the file row by row, so quoted files (the shared Open Images sample's ``"0,358"``) keep the
exact path throughout.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: pandas drops a byte-order mark at the start of what it parses, csv.reader keeps it in the field
BOM = codecs.BOM_UTF8


@dataclass
class Block:
    """The rows of one block: numbers by column role, names as first-appearance uniques."""

    rows: int
    numbers: dict[str, np.ndarray]       # role → float64 column
    image_codes: np.ndarray              # int, index into image_names
    image_names: list[str]               # raw (unstripped) names, in order of first appearance
    image_first: np.ndarray              # row of each name's first appearance
    class_codes: np.ndarray | None
    class_names: list[str]


def plain(block: bytes, delimiter: bytes, columns: int) -> int | None:
    """The number of rows if ``block`` (whole lines) is plain in the sense above, else None."""
    rows = block.count(b"\n") + (not block.endswith(b"\n"))
    if (b'"' in block or b"\x00" in block or block.startswith((b"\n", b"\r\n", BOM))
            or b"\n\n" in block or b"\n\r\n" in block
            or block.count(b"\r") != block.count(b"\r\n")
            or not _fields_everywhere(block, delimiter, columns)):
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return rows


def _fields_everywhere(block: bytes, delimiter: bytes, columns: int) -> bool:
    """Whether every line has exactly ``columns - 1`` delimiters. Counting per line matters: a
    long line beside a short one keeps the total right, and neither C parser refuses a long
    line when only some columns are asked for."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    marks = np.flatnonzero(data == delimiter[0])
    if len(marks) != len(ends) * (columns - 1):
        return False
    per_line = np.diff(np.searchsorted(marks, ends), prepend=0)
    return bool((per_line == columns - 1).all())


def parse_block(block: bytes, delimiter: str, columns: int, col: dict[str, int],
                sizes_in_file: bool) -> Block | None:
    """Parse a plain block (see module docstring), or None to leave it to the row reader."""
    rows = plain(block, delimiter.encode(), columns)
    if not rows:
        return None
    roles = [r for r in col if r not in ("image", "class")]
    named = [col["image"]] + ([col["class"]] if "class" in col else [])
    try:
        values = np.loadtxt(io.BytesIO(block), delimiter=delimiter, comments=None,
                            quotechar=None, usecols=[col[r] for r in roles], dtype=np.float64,
                            ndmin=2, encoding="utf-8")
        names = pd.read_csv(io.BytesIO(block), sep=delimiter, header=None,
                            names=list(range(columns)), usecols=named,
                            dtype={i: str for i in named}, na_filter=False,
                            quoting=csv.QUOTE_NONE, skip_blank_lines=False, engine="c",
                            encoding="utf-8")
    except Exception:  # any refusal of either parser: the row reader decides, exactly
        return None
    if values.shape != (rows, len(roles)) or len(names) != rows:
        return None
    numbers = {r: values[:, i] for i, r in enumerate(roles)}
    if sizes_in_file and (np.isnan(numbers["image_width"]).any()
                          or np.isnan(numbers["image_height"]).any()):
        return None
    image_codes, image_names = pd.factorize(names[col["image"]].to_numpy(), sort=False)
    image_first = np.unique(image_codes, return_index=True)[1]
    class_codes, class_names = None, []
    if "class" in col:
        class_codes, uniques = pd.factorize(names[col["class"]].to_numpy(), sort=False)
        class_names = list(uniques)
    return Block(rows, numbers, image_codes, list(image_names), image_first, class_codes,
                 class_names)
