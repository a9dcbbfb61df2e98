"""Image width and height from file headers, without Pillow and without decoding pixels.

YOLO label folders and Ultralytics datasets carry only normalised coordinates; the letterbox
policy needs each image's aspect ratio, and reading a few header fields is all it takes (a
100 k-image dataset is read in seconds, not the minutes a full decode would take).

Formats: PNG, JPEG/MPO, BMP, GIF, WebP (VP8, VP8L, VP8X), TIFF and JPEG 2000 (JP2 boxes or a raw
codestream). HEIC/HEIF/AVIF and DNG are not read (their size sits deep in a box tree or a
sub-IFD): such images need an ``--image-sizes`` entry.

EXIF orientation: Ultralytics (``exif_size``) and OpenCV's ``imread`` show an image rotated by
its EXIF orientation tag, and the normalised labels refer to that rotated image, so orientations
5-8 (a quarter turn) swap width and height. The tag is read from JPEG APP1, PNG ``eXIf``, WebP
``EXIF`` chunks and TIFF's first IFD.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

# JPEG start-of-frame markers (baseline, progressive, lossless, ...); not DHT/JPG/DAC (C4, C8, CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_ORIENTATION_TAG = 274
_QUARTER_TURNS = {5, 6, 7, 8}      # EXIF orientations that transpose the image
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_JP2_SIG = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def image_size(path: str | Path, *, exif_orientation: bool = True) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when the format is unknown or truncated.

    With ``exif_orientation`` (default) the size is that of the image as displayed, i.e. after
    the EXIF rotation that Ultralytics and OpenCV apply when loading it.
    """
    try:
        with open(path, "rb") as fh:
            found = _read(fh)
    except (OSError, struct.error):
        return None
    if found is None:
        return None
    w, h, orientation = found
    if w <= 0 or h <= 0:
        return None
    if exif_orientation and orientation in _QUARTER_TURNS:
        w, h = h, w
    return int(w), int(h)


def _read(fh: BinaryIO) -> tuple[int, int, int | None] | None:
    head = fh.read(32)
    if head[:8] == _PNG_SIG:
        return _png(fh, head)
    if head[:2] == b"\xff\xd8":
        fh.seek(2)
        return _jpeg(fh)
    if head[:2] == b"BM" and len(head) >= 26:
        return _bmp(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return w, h, None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fh.seek(12)
        return _webp(fh)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        fh.seek(0)
        return _tiff(fh.read(1 << 16), want_size=True)
    if head[:12] == _JP2_SIG:
        fh.seek(12)
        return _jp2(fh)
    if head[:4] == b"\xff\x4f\xff\x51":  # raw JPEG 2000 codestream: SOC then SIZ
        return _j2k_siz(head[4:])
    return None


# --------------------------------------------------------------------------- per format

def _png(fh: BinaryIO, head: bytes) -> tuple[int, int, int | None] | None:
    if head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    # an eXIf chunk, if any, comes before the first IDAT; walk chunk headers only
    fh.seek(8)
    for _ in range(64):
        raw = fh.read(8)
        if len(raw) < 8:
            break
        length, kind = struct.unpack(">I4s", raw)
        if kind == b"eXIf":
            return w, h, _tiff_orientation(fh.read(length))
        if kind in (b"IDAT", b"IEND"):
            break
        fh.seek(length + 4, 1)  # data and CRC
    return w, h, None


def _jpeg(fh: BinaryIO) -> tuple[int, int, int | None] | None:
    orientation = None
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":
            byte = fh.read(1)
        while byte == b"\xff":
            byte = fh.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length field
        raw = fh.read(2)
        if len(raw) < 2:
            return None
        (length,) = struct.unpack(">H", raw)
        if marker in _SOF:
            data = fh.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return w, h, orientation
        if marker == 0xE1 and orientation is None:
            data = fh.read(length - 2)
            if data[:6] == b"Exif\x00\x00":
                orientation = _tiff_orientation(data[6:])
            continue
        fh.seek(length - 2, 1)


def _bmp(head: bytes) -> tuple[int, int, int | None] | None:
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # BITMAPCOREHEADER: unsigned 16-bit sizes
        w, h = struct.unpack("<HH", head[18:22])
    else:          # BITMAPINFOHEADER and later: signed 32-bit, negative height = top-down rows
        w, h = struct.unpack("<ii", head[18:26])
    return abs(w), abs(h), None


def _webp(fh: BinaryIO) -> tuple[int, int, int | None] | None:
    size: tuple[int, int] | None = None     # VP8X canvas, final unless an EXIF chunk follows
    orientation = None
    for _ in range(64):
        raw = fh.read(8)
        if len(raw) < 8:
            break
        kind, length = struct.unpack("<4sI", raw)
        data = fh.read(min(length, 1 << 16))
        if kind == b"VP8X" and len(data) >= 10:
            size = (int.from_bytes(data[4:7], "little") + 1,
                    int.from_bytes(data[7:10], "little") + 1)
            if not data[0] & 0x08:  # no EXIF flag
                return size[0], size[1], None
        elif kind == b"EXIF":
            orientation = _tiff_orientation(data[6:] if data[:6] == b"Exif\x00\x00" else data)
            if size:
                return size[0], size[1], orientation
        elif size is None and kind == b"VP8 " and len(data) >= 10 \
                and data[3:6] == b"\x9d\x01\x2a":   # simple lossy file
            w, h = struct.unpack("<HH", data[6:10])
            return w & 0x3FFF, h & 0x3FFF, None
        elif size is None and kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
            bits = int.from_bytes(data[1:5], "little")   # simple lossless file
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, None
        fh.seek(length - len(data) + (length & 1), 1)  # rest of the chunk and its pad byte
    return (size[0], size[1], orientation) if size else None


def _jp2(fh: BinaryIO) -> tuple[int, int, int | None] | None:
    for _ in range(64):
        raw = fh.read(8)
        if len(raw) < 8:
            return None
        length, kind = struct.unpack(">I4s", raw)
        if kind == b"jp2h":   # superbox: its first child is ihdr
            continue
        if kind == b"ihdr":
            h, w = struct.unpack(">II", fh.read(8))
            return w, h, None
        if length < 8:
            return None
        fh.seek(length - 8, 1)
    return None


def _j2k_siz(data: bytes) -> tuple[int, int, int | None] | None:
    # SIZ: Lsiz(2) Rsiz(2) Xsiz(4) Ysiz(4) XOsiz(4) YOsiz(4)
    if len(data) < 20:
        return None
    xs, ys, xo, yo = struct.unpack(">IIII", data[4:20])
    return xs - xo, ys - yo, None


# --------------------------------------------------------------------------- TIFF / EXIF

def _tiff(data: bytes, want_size: bool) -> tuple[int, int, int | None] | None:
    """Width, height and orientation from the first IFD of a TIFF structure."""
    tags = _ifd0(data, {256, 257, _ORIENTATION_TAG})
    if want_size and (256 not in tags or 257 not in tags):
        return None
    return tags.get(256, 0), tags.get(257, 0), tags.get(_ORIENTATION_TAG)


def _tiff_orientation(data: bytes) -> int | None:
    """EXIF orientation (1-8) from an Exif payload (a TIFF header and IFDs), None if absent."""
    return _ifd0(data, {_ORIENTATION_TAG}).get(_ORIENTATION_TAG)


def _ifd0(data: bytes, wanted: set[int]) -> dict[int, int]:
    if data[:2] == b"II":
        e = "<"
    elif data[:2] == b"MM":
        e = ">"
    else:
        return {}
    try:
        (offset,) = struct.unpack(e + "I", data[4:8])
        (count,) = struct.unpack(e + "H", data[offset:offset + 2])
        found: dict[int, int] = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i: offset + 14 + 12 * i]
            tag, kind, n = struct.unpack(e + "HHI", entry[:8])
            if tag not in wanted or n != 1:
                continue
            if kind == 3:    # SHORT
                found[tag] = struct.unpack(e + "H", entry[8:10])[0]
            elif kind == 4:  # LONG
                found[tag] = struct.unpack(e + "I", entry[8:12])[0]
        return found
    except struct.error:
        return {}
