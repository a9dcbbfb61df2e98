"""COCO json read as a stream: memory in proportion to the boxes kept, not to the file.

``coco.read_coco`` turns the whole document into Python objects (a 10 M-box file: ~11 GB and
~70 s of ``json.loads`` on this project's 2-core machine) before keeping four floats a box. This
reader walks the document in 8 Mi-character windows and keeps, per image, its name and size, and
per box x, y, w, h (float32), image index (int32) and the raw category id (int64), packed into
numpy arrays every window.

How annotations are read (measured in benchmarks/bench_scale.py; no new dependency):

* the first annotation is decoded by the C json decoder and its keys, in order, become a
  *layout*: one compiled regular expression that matches an annotation with exactly those keys,
  captures ``bbox`` (four JSON numbers), ``image_id``/``category_id`` (JSON integers) and
  ``iscrowd``, and checks every other value against a strict JSON grammar (numbers, strings
  without escapes, literals, arrays up to depth 2, an object of those: polygons and RLE).
  ``re.split`` over a window gives the captures of a run of annotations in one C call, about 3x
  faster than ``json.loads`` on the same text (an incremental parser such as ijson's C backend
  would add a dependency and still build a dict per record).
* the run is trusted only where the matches tile the text with nothing between them, so every
  accepted record is valid JSON with its fields where the layout says. Anything else (another key
  order, escapes, NaN, floats as ids, a truncated or broken record) is decoded by
  ``json.JSONDecoder.raw_decode`` and checked by the very functions ``read_coco`` uses
  (``annotation_row``...), so rows and messages are the same.
* the top-level object, ``images`` (one ``raw_decode`` each), ``categories`` and any other key
  are read with the C decoder; JSON syntax errors carry the same message and line as
  ``json.loads`` of the whole text. Errors are raised in ``read_coco``'s order: syntax, not a
  COCO file, categories, images, annotations (first bad record).
* files outside this model fall back to ``read_coco`` itself: not UTF-8, a top level that is not
  an object, a repeated top-level key, ``images``/``annotations`` that are not arrays, or
  ``annotations`` before ``images`` (category ids are resolved at the end, so ``categories`` may
  come anywhere, as in COCO's own files).
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from anchorfit.data import progress as _progress
from anchorfit.data._parse import json_number
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.coco import (add_categories, add_image, annotation_row, crowd_note,
                                 read_coco, shared_name_note)
from anchorfit.errors import AnchorfitError, FormatError

BLOCK = 1 << 23            # characters decoded per read
_MAX_RUN = 1 << 24         # characters handed to one re.split
_MIN_RUN = 1 << 16
_SPECIAL = ("bbox", "image_id", "category_id", "iscrowd")

_WS = r"[ \t\n\r]*+"
_NUM = r"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+"
# "-0" decodes to the integer 0 (+0.0), float("-0") to -0.0: leave it to the exact path
_BOX_NUM = r"(?!-0(?![.eE]))" + _NUM
_STR = r'"[^"\\\x00-\x1f]*+"'
_SCALAR = rf"(?>{_NUM}|{_STR}|true|false|null)"
_ARR1 = rf"\[{_WS}(?:{_SCALAR}{_WS}(?:,{_WS}{_SCALAR}{_WS})*+)?+\]"
_ITEM = rf"(?>{_SCALAR}|{_ARR1})"
_ARR2 = rf"\[{_WS}(?:{_ITEM}{_WS}(?:,{_WS}{_ITEM}{_WS})*+)?+\]"
_OBJ1 = rf"\{{{_WS}(?:{_STR}{_WS}:{_WS}{_ITEM}{_WS}(?:,{_WS}{_STR}{_WS}:{_WS}{_ITEM}{_WS})*+)?+\}}"
_VALUE = rf"(?>{_SCALAR}|{_ARR2}|{_OBJ1})"
_INT = r"(0|-?[1-9][0-9]{0,17})"      # fits int64; "-0" is not canonical, left to the exact path
_CAPTURE = {
    "bbox": rf"\[{_WS}({_BOX_NUM}){_WS},{_WS}({_BOX_NUM}){_WS},{_WS}({_BOX_NUM}){_WS},"
            rf"{_WS}({_BOX_NUM}){_WS}\]",
    "image_id": _INT,
    "category_id": _INT,
    "iscrowd": r"(0|1|true|false|null)",   # anything else: the exact path refuses it
}
_GROUPS = {"bbox": 4, "image_id": 1, "category_id": 1, "iscrowd": 1}
_WS_RE = re.compile(_WS)
_SIMPLE_KEY = re.compile(r'[^"\\\x00-\x1f]*')
_CROWD = {"": False, "0": False, "1": True, "true": True, "false": False, "null": False}


class _Fallback(Exception):
    """The file is outside the streaming model: read it with the exact reader."""


class _Layout:
    """One regular expression for annotations with these keys in this order."""

    def __init__(self, keys: list[str]) -> None:
        parts, self.columns = [], {}
        group = 1
        for key in keys:
            value = _CAPTURE.get(key, _VALUE)
            if key in _CAPTURE:
                self.columns[key] = group
                group += _GROUPS[key]
            parts.append(rf'"{re.escape(key)}"{_WS}:{_WS}{value}')
        self.groups = group - 1
        self.regex = re.compile(r"\{" + _WS + f"{_WS},{_WS}".join(parts) + _WS + r"\}"
                                + f"{_WS},{_WS}")

    @staticmethod
    def learn(record: Any) -> "_Layout | None":
        if not isinstance(record, dict) or not all(k in record for k in _SPECIAL[:3]):
            return None
        keys = list(record)
        if not all(_SIMPLE_KEY.fullmatch(k) for k in keys):
            return None
        return _Layout(keys)


class _Text:
    """The file as a sliding window of text: ``buf[pos:]`` is unread, ``lines`` counts the
    newlines before ``buf``."""

    def __init__(self, path: Path, meter: _progress.Meter) -> None:
        self.path = path
        try:
            self.fh = open(path, "rb")
        except OSError as exc:
            raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf, self.pos, self.lines, self.eof = "", 0, 0, False
        self.meter = meter
        self.decode_json = json.JSONDecoder().raw_decode

    def close(self) -> None:
        self.fh.close()

    def more(self) -> bool:
        """Append the next block (dropping what is read); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(BLOCK)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise _Fallback from None  # read_coco names the byte
        self.meter.advance(len(data))
        self.lines += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        if not data:
            self.eof = True
        return True

    def ahead(self, n: int) -> None:
        while len(self.buf) - self.pos < n and self.more():
            pass

    def skip_ws(self) -> str:
        """Skip whitespace; the next character ('' at the end of the file)."""
        while True:
            self.pos = _WS_RE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos:self.pos + 1]

    def error(self, msg: str, pos: int) -> FormatError:
        """A JSON syntax error at ``buf[pos]``, as ``read_coco`` words it (after checking that
        the rest of the file decodes: a UTF-8 error anywhere comes first there)."""
        line = self.lines + self.buf.count("\n", 0, pos) + 1
        while self.more():
            self.lines += self.buf.count("\n")
            self.buf = ""
        return FormatError(f"malformed JSON: {msg}", source=self.path, line=line)

    def value(self) -> Any:
        """Decode one JSON value at pos, reading more while it may be cut by the window."""
        while True:
            try:
                obj, end = self.decode_json(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.buf) - 16 or exc.msg.startswith("Unterminated string")
                if cut and self.more():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            except (ValueError, RecursionError):  # the 4300-digit int limit, deep nesting:
                raise _Fallback from None         # read_coco words them
            if end >= len(self.buf) - 1 and self.more():
                continue  # a number or literal may go on in the next block
            self.pos = end
            return obj

    def closed(self, close: str) -> bool:
        """After an element of an array or a member of an object: True past ``close``, False
        past the ',' before the next one (and the whitespace after it); else json's error."""
        c = self.skip_ws()
        if c == close:
            self.pos += 1
            return True
        if c != ",":
            raise self.error("Expecting ',' delimiter", self.pos)
        self.pos += 1
        self.skip_ws()
        return False

    def expect(self, char: str, message: str) -> None:
        if self.skip_ws() != char:
            raise self.error(message, self.pos)
        self.pos += 1


class _Annotations:
    """Box columns packed per window, ids kept raw until the end."""

    def __init__(self, include_crowd: bool) -> None:
        self.include_crowd = include_crowd
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "y", "w", "h", "img",
                                                                  "cid")}
        self.special_cids: dict[int, Any] = {}     # row -> a category id that is not an int64
        self.rows = 0
        self.seen = 0                               # annotations read, crowds included
        self.crowd = 0
        self.error: FormatError | None = None
        self._slow: list[tuple] = []

    def add_fast(self, parts: list[str], n: int, layout: _Layout, image_of: dict[str, int]
                 ) -> None:
        """The captures of n tiled layout matches: ``re.split`` output, empty gaps included."""
        g = layout.groups + 1
        if not n:
            return
        self.flush_slow()
        cols = layout.columns

        def column(key: str, offset: int = 0) -> list[str]:
            return parts[cols[key] + offset:n * g:g]

        if "iscrowd" in cols:
            tokens = column("iscrowd")
            truth = {t: _CROWD[t] if t in _CROWD else float(t) != 0 for t in set(tokens)}
            crowd = np.fromiter(map(truth.__getitem__, tokens), bool, n)
        else:
            crowd = np.zeros(n, bool)
        keep = ~crowd if not self.include_crowd else np.ones(n, bool)
        self.crowd += int(n - keep.sum())
        box = [np.fromiter(map(float, column("bbox", k)), np.float64, n)[keep] for k in range(4)]
        ids = column("image_id")
        img = np.fromiter(map(image_of.get, ids, itertools.repeat(-1, n)), np.int64, n)[keep]
        huge = ~np.isfinite(box[0]) | ~np.isfinite(box[1]) | ~np.isfinite(box[2]) \
            | ~np.isfinite(box[3])   # 1e400 or a 400-digit integer: annotation_row refuses it
        if self.error is None and (huge | (img < 0)).any():
            j = int(np.argmax(huge | (img < 0)))
            first = int(np.flatnonzero(keep)[j])
            if huge[j]:
                k = next(k for k in range(4) if not np.isfinite(box[k][j]))
                self.error = _bbox_error(column("bbox", k)[first],
                                         f"annotations[{self.seen + first}].bbox[{k}]")
            else:
                self.error = FormatError(f"image_id {int(ids[first])!r} is not in 'images'",
                                         key=f"annotations[{self.seen + first}].image_id",
                                         source="")
        cid = np.fromiter(map(int, column("category_id")), np.int64, n)[keep]
        self._store(box, img, cid)
        self.seen += n

    def add_slow(self, record: Any, images: dict, path: Path) -> None:
        """One annotation decoded by json, checked by read_coco's own function."""
        i = self.seen
        self.seen += 1
        if self.error is not None:
            return
        try:
            row = annotation_row(record, i, images, path, self.include_crowd)
        except FormatError as exc:
            self.error = exc
            return
        if row is None:
            self.crowd += 1
            return
        x, y, w, h, img, cid = row
        if type(cid) is int and -(1 << 63) <= cid < (1 << 63):
            code = cid
        else:  # None, a float, a string, a bool...: resolved in Python at the end
            self.special_cids[self.rows + len(self._slow)] = cid
            code = 0
        self._slow.append((x, y, w, h, img, code))

    def flush_slow(self) -> None:
        if self._slow:
            x, y, w, h, img, cid = zip(*self._slow)
            self._slow = []
            self._store([np.array(v, np.float64) for v in (x, y, w, h)],
                        np.array(img, np.int64), np.array(cid, np.int64))

    def _store(self, box: list[np.ndarray], img: np.ndarray, cid: np.ndarray) -> None:
        with np.errstate(over="ignore"):  # past float32: inf, dropped as nan_size (counted)
            for name, v in zip("xywh", box):
                self.cols[name].append(v.astype(np.float32))
        self.cols["img"].append(img.astype(np.int32))
        self.cols["cid"].append(cid)
        self.rows += len(img)


def read_coco_stream(path: str | Path, *, include_crowd: bool = False,
                     meter: _progress.Meter | None = None) -> Boxes:
    """Boxes of a COCO instances json, read in bounded memory (same result as ``read_coco``)."""
    path = Path(path)
    meter = meter or _progress.current()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
    meter.start(f"reading {path.name}", size, "B")
    try:
        text = _Text(path, meter)
        try:
            return _read(text, path, include_crowd)
        finally:
            text.close()
    except _Fallback:
        return read_coco(path, include_crowd=include_crowd)
    finally:
        meter.finish()


def _bbox_error(token: str, key: str) -> FormatError:
    """The exact path's error for a bbox number that is no finite float (same message)."""
    try:
        json_number(json.loads(token), "", key, "a number in bbox")
    except ValueError as exc:  # past the 4300-digit limit: json.loads of the file says so
        return FormatError(f"malformed JSON: {exc}", source="")
    except FormatError as exc:
        return exc
    raise AssertionError(f"{token!r} is a finite float")


def _read(t: _Text, path: Path, include_crowd: bool) -> Boxes:
    b = BoxBuilder("coco", str(path))
    b.file(str(path))
    images: dict = {}
    image_error: FormatError | None = None
    anns = _Annotations(include_crowd)
    categories: Any = None
    seen: set[str] = set()
    first = t.skip_ws()
    if first != "{":
        raise _Fallback  # empty, an array, garbage: read_coco says which
    t.pos += 1
    if t.skip_ws() == "}":
        t.pos += 1
    else:
        while True:
            if t.skip_ws() != '"':
                raise t.error("Expecting property name enclosed in double quotes", t.pos)
            key = t.value()
            if key in seen:
                raise _Fallback  # json keeps the last value of a repeated key
            seen.add(key)
            t.expect(":", "Expecting ':' delimiter")
            nxt = t.skip_ws()
            if key in ("images", "annotations") and nxt != "[":
                raise _Fallback
            if key == "images":
                image_error = _images(t, b, images, path)
            elif key == "annotations":
                if "images" not in seen:
                    raise _Fallback  # ids could not be resolved while streaming
                _annotations(t, anns, images, path)
            elif key == "categories":
                categories = t.value()
            else:
                t.value()
            if t.closed("}"):
                break
    if t.skip_ws():
        raise t.error("Extra data", t.pos)
    if "annotations" not in seen or "images" not in seen:
        raise FormatError("not a COCO instances file: expected a JSON object with 'images' and "
                          "'annotations'", source=path, key="annotations")
    cats = add_categories(b, categories, path)
    if image_error is not None:
        raise image_error
    if anns.error is not None:
        raise FormatError(anns.error.message, source=path, key=anns.error.key)
    anns.flush_slow()
    if anns.crowd:
        b.skip("iscrowd", anns.crowd)
    shared_name_note(b, images)
    crowd_note(b)
    return _build(b, anns, cats)


def _images(t: _Text, b: BoxBuilder, images: dict, path: Path) -> FormatError | None:
    """Stream the images array; the first bad record's error (raised later, in order)."""
    error = None
    for i, record in enumerate(_elements(t)):
        if error is None:
            try:
                add_image(b, images, record, i, path)
            except FormatError as exc:
                error = exc
    return error


def _elements(t: _Text):
    """Decode the elements of the array at pos one at a time (the C decoder's messages)."""
    t.pos += 1  # '['
    if t.skip_ws() == "]":
        t.pos += 1
        return
    while True:
        t.skip_ws()
        yield t.value()
        if t.closed("]"):
            return


def _annotations(t: _Text, anns: _Annotations, images: dict, path: Path) -> None:
    """Stream the annotations array: layout runs where they tile, json elsewhere."""
    image_of = {str(int(k)): v for k, v in images.items()
                if type(k) in (int, bool) or (type(k) is float and k.is_integer())}
    layout: _Layout | None = None
    misses = 0
    run = _MIN_RUN
    t.pos += 1  # '['
    if t.skip_ws() == "]":
        t.pos += 1
        return
    while True:
        if layout is not None:
            t.ahead(run + 1)
            region = t.buf[t.pos:t.pos + run]
            parts = layout.regex.split(region)
            g = layout.groups + 1
            gaps = parts[0::g]
            if any(gaps[:-1]):
                j = next(i for i, gap in enumerate(gaps) if gap)
                parts = layout.regex.split(region, maxsplit=j) if j else [region]
            n = (len(parts) - 1) // g
            if n:
                anns.add_fast(parts, n, layout, image_of)
                t.pos += len(region) - len(parts[-1])
                run = min(run * 2, _MAX_RUN)
                misses = 0
                continue
            run = _MIN_RUN
        t.skip_ws()
        record = t.value()
        anns.add_slow(record, images, path)
        misses += 1
        if layout is None or misses >= 64:
            layout = _Layout.learn(record) or layout
            misses = 0
        if t.closed("]"):
            return


def _build(b: BoxBuilder, anns: _Annotations, cats: dict) -> Boxes:
    """Resolve category ids to classes in first-appearance order, as read_coco meets them."""
    def cat(name: str, dtype: type) -> np.ndarray:
        parts = anns.cols[name]
        out = np.concatenate(parts) if parts else np.zeros(0, dtype)
        parts.clear()
        return out

    x, y, w, h = (cat(k, np.float32) for k in "xywh")
    img = cat("img", np.int32)
    cid = cat("cid", np.int64)
    n = len(x)
    special = np.zeros(n, bool)
    if anns.special_cids:
        special[list(anns.special_cids)] = True
    plain = np.flatnonzero(~special)
    uniq, first, inverse = np.unique(cid[plain], return_index=True, return_inverse=True)
    keys: list[tuple[int, Any]] = [(int(plain[f]), int(u)) for u, f in zip(uniq, first)]
    by_repr: dict[tuple[str, str], tuple[int, Any]] = {}
    for row, key in sorted(anns.special_cids.items()):
        by_repr.setdefault((type(key).__name__, repr(key)), (row, key))
    keys += list(by_repr.values())
    keys.sort(key=lambda item: item[0])
    resolved: dict[Any, int] = {}
    for _, key in keys:
        c = cats.get(key)
        resolved[(type(key).__name__, repr(key))] = b.cls(str(key)) if c is None else c
    cls = np.empty(n, np.int32)
    if len(plain):
        lut = np.array([resolved[("int", repr(int(u)))] for u in uniq], np.int32)
        cls[plain] = lut[inverse.reshape(-1)]
    for row, key in anns.special_cids.items():
        cls[row] = resolved[(type(key).__name__, repr(key))]
    zeros = np.zeros(n, np.int32)
    return Boxes(image=img, cls=cls, x=x, y=y, w=w, h=h, difficult=np.zeros(n, bool),
                 flagged=np.zeros(n, bool), origin=zeros, line=zeros.copy(),
                 image_names=b.image_names, image_width=np.asarray(b._iw, np.float64),
                 image_height=np.asarray(b._ih, np.float64), classes=b.classes, files=b.files,
                 format=b.fmt, source=b.source, skipped=b.skipped, notes=b.notes)
