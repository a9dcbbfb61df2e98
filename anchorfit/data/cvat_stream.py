"""CVAT for images XML read as a stream: memory in proportion to the boxes kept, not the file.

``cvat.read_cvat`` holds the whole text and its element tree (a CVAT export of a million images
is gigabytes of XML). This reader decodes the file in 256 KiB pieces, feeds them to the standard
library's expat-backed ``XMLPullParser`` (no new dependency), hands each finished ``<image>`` to
the same ``cvat.add_image`` and drops it from the tree, so only the elements of the piece being read are held.

The outcome is ``read_cvat``'s, message for message, in its order of precedence: a file that is
not UTF-8 first (wherever the byte is), then an XML syntax error (the parser's own message and
line), then a root that is not ``<annotations>``, then the first bad image. An error found while
reading is therefore held until the rest of the file has been decoded and parsed. Two layouts
the stream cannot reproduce without the whole tree go to ``read_cvat`` itself: an ``<image>``
inside another (``read_cvat`` counts its boxes twice) and task labels after the first image
(``read_cvat`` registers all labels before any box).
"""

from __future__ import annotations

import codecs
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from anchorfit.data import progress as _progress
from anchorfit.data._parse import xml_error
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.cvat import LABEL_PATH, add_image, add_label, check_root, read_cvat
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular, not_utf8

#: bytes decoded and parsed per step; the parser holds the elements of one piece at a time
CHUNK = 1 << 18


class _Fallback(Exception):
    """The layout needs the whole tree: read the file with ``read_cvat``."""


def read_cvat_stream(path: str | Path) -> Boxes:
    path = Path(path)
    check_regular(path, AnchorfitError)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise AnchorfitError(f"cannot read: {exc.strerror or exc}", source=path) from None
    meter = _progress.current()
    meter.start(f"reading {path.name}", _size(fh), "B")
    try:
        with fh:
            return _Reader(path).run(fh, meter)
    except _Fallback:
        return read_cvat(path)
    finally:
        meter.finish()


def _size(fh) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except OSError:
        return 0


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.b = BoxBuilder("cvat", str(path))
        self.origin = self.b.file(str(path))
        self.stack: list[ET.Element] = []
        self.in_image = False  # inside an <image> (one level: a nested one falls back)
        self.seen_image = False
        self.held: FormatError | None = None  # the first root or image error, raised at the end

    def run(self, fh, meter: _progress.Meter) -> Boxes:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        parser: ET.XMLPullParser | None = ET.XMLPullParser(events=("start", "end"))
        syntax: FormatError | None = None
        offset = 0
        while True:
            data = fh.read(CHUNK)
            final = not data
            text = self._decode(decoder, data, final, offset)
            offset += len(data)
            meter.advance(len(data))
            if parser is not None:
                try:
                    parser.feed(text)
                    if final:
                        parser.close()
                    self._events(parser)
                except ET.ParseError as exc:
                    syntax, parser = xml_error(exc, self.path), None
            if final:
                break
        if syntax is not None:
            raise syntax
        if self.held is not None:
            raise self.held
        return self.b.build()

    def _decode(self, decoder, data: bytes, final: bool, offset: int) -> str:
        try:
            return decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            # read_text's message counts the byte from after a BOM, over the whole file; the
            # decoder's object is the tail of what was fed (its held bytes, then this piece)
            start = offset + len(data) - len(exc.object) + exc.start - 3 * self._bom()
            raise not_utf8(exc.reason, start, self.path) from None

    def _bom(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                return int(fh.read(3) == codecs.BOM_UTF8)
        except OSError:
            return 0

    def _events(self, parser: ET.XMLPullParser) -> None:
        for event, elem in parser.read_events():
            if event == "start":
                self._start(elem)
            else:
                self._end(elem)

    def _start(self, elem: ET.Element) -> None:
        if not self.stack:
            try:
                check_root(elem.tag, self.path)
            except FormatError as exc:
                self._hold(exc)
        self.stack.append(elem)
        if elem.tag == "image":
            if self.in_image:
                raise _Fallback
            self.in_image = True

    def _end(self, elem: ET.Element) -> None:
        self.stack.pop()
        depth = len(self.stack)
        if elem.tag == "image":
            self.in_image = False
            self.seen_image = True
            if self.held is None:
                try:
                    add_image(self.b, elem, self.path, self.origin)
                except FormatError as exc:
                    self._hold(exc)
        elif (elem.tag == LABEL_PATH[-1] and depth == len(LABEL_PATH)
              and tuple(e.tag for e in self.stack[1:]) == LABEL_PATH[:-1]):
            if self.seen_image:
                raise _Fallback
            add_label(self.b, elem)
        if not self.in_image and depth >= 1 and (elem.tag == "image" or depth == 1):
            parent = self.stack[-1]
            elem.clear()
            if len(parent) and parent[-1] is elem:
                del parent[-1]

    def _hold(self, exc: FormatError) -> None:
        if self.held is None:
            self.held = exc
