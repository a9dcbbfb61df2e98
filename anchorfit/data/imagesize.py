"""Image width and height from PNG/JPEG headers, without Pillow.

YOLO label folders carry only normalised coordinates; the letterbox policy needs each image's
aspect ratio, and reading two header fields is all it takes.
"""

from __future__ import annotations

import struct
from pathlib import Path

# JPEG start-of-frame markers (baseline, progressive, lossless, ...); not DHT/JPG/DAC (C4, C8, CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, or None when the file is neither or truncated."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:2] == b"\xff\xd8":
                fh.seek(2)
                return _jpeg_size(fh)
    except OSError:
        return None
    return None


def _jpeg_size(fh) -> tuple[int, int] | None:
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
            return int(w), int(h)
        fh.seek(length - 2, 1)
