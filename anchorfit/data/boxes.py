"""The ``Boxes`` table: every annotation reader returns one, every clustering step consumes one.

Columns are flat numpy arrays (float32 geometry, int32 indices) rather than a DataFrame of Python
objects, so that 10 M boxes take about 350 MB. Image names and class names live once in side
tables and rows point to them by index. Geometry is kept in the units the file gave: original
pixels (``units == "px"``), or normalised [0, 1] coordinates when a YOLO/Open Images file comes
without image sizes (``units == "normalized"``; only the *stretch* policy can use those, which is
exactly what Darknet's ``calc_anchors`` does).

Nothing is ever silently lost: rows a reader skips (COCO ``iscrowd``, boxes of images without a
known size, ...) are counted in ``Boxes.skipped`` by reason, and the validation step reports the
rows it drops in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.errors import AnchorfitError

POLICIES = ("letterbox", "stretch", "shortside", "none")
POLICY_HELP = {
    "letterbox": "scale so the long side fits the input, keep aspect (YOLOv5, mmdet keep_ratio)",
    "stretch": "scale each axis to the input size independently (Darknet, SSD)",
    "shortside": "short side to S, long side at most L (Faster R-CNN 800/1333)",
    "none": "keep original pixels",
}
_CHUNK = 1 << 18


@dataclass
class Boxes:
    """A table of boxes with their images and classes (see module docstring for units)."""

    image: np.ndarray          # int32 index into image_names
    cls: np.ndarray            # int32 index into classes, -1 when the format has no class
    x: np.ndarray              # float32 left edge (NaN when unknown)
    y: np.ndarray              # float32 top edge (NaN when unknown)
    w: np.ndarray              # float32 width
    h: np.ndarray              # float32 height
    difficult: np.ndarray      # bool: VOC `difficult`, kept as a flag, never dropped
    flagged: np.ndarray        # bool: the format marks the box invalid (WIDER `invalid`)
    origin: np.ndarray         # int32 index into files (for messages)
    line: np.ndarray           # int32 1-based line in that file (0 when not line-based)
    image_names: list[str]
    image_width: np.ndarray    # float64, NaN when unknown
    image_height: np.ndarray   # float64, NaN when unknown
    classes: list[str]
    files: list[str]
    format: str
    source: str
    units: str = "px"
    space: str = "original"
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False

    def __len__(self) -> int:
        return int(self.w.shape[0])

    @property
    def n_images(self) -> int:
        return len(self.image_names)

    def wh(self) -> np.ndarray:
        """(N, 2) float32 array of (w, h), the input of every clustering function."""
        return np.stack([self.w, self.h], axis=1)

    def image_sizes(self) -> dict[str, tuple[float, float]]:
        """{image name: (width, height)} for images whose size is known."""
        return {n: (float(w), float(h)) for n, w, h in
                zip(self.image_names, self.image_width, self.image_height)
                if np.isfinite(w) and np.isfinite(h)}

    def select(self, mask: np.ndarray) -> "Boxes":
        """The rows where ``mask`` is true (side tables unchanged)."""
        cols = {name: getattr(self, name)[mask] for name in _ROW_COLUMNS}
        return replace(self, **cols, skipped=dict(self.skipped), notes=list(self.notes))

    def to_frame(self) -> pd.DataFrame:
        names = np.asarray(self.image_names, dtype=object)
        classes = np.asarray(self.classes + [""], dtype=object)
        return pd.DataFrame({
            "image": names[self.image] if len(names) else [],
            "image_width": self.image_width[self.image],
            "image_height": self.image_height[self.image],
            "class": classes[self.cls],
            "x": self.x, "y": self.y, "w": self.w, "h": self.h,
            "difficult": self.difficult, "flagged": self.flagged,
        })

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "source": self.source, "units": self.units,
                "space": self.space, "synthetic": self.synthetic, "boxes": len(self),
                "images": self.n_images, "skipped": dict(self.skipped),
                "rows": self.to_frame().to_dict(orient="records")}


_ROW_COLUMNS = ("image", "cls", "x", "y", "w", "h", "difficult", "flagged", "origin", "line")


class BoxBuilder:
    """Collects rows from a streaming reader and packs them into numpy chunks as it goes.

    Python lists of floats cost ~32 bytes per value; flushing every 2^18 rows into float32/int32
    arrays keeps a 10 M-row read under the memory budget.
    """

    def __init__(self, fmt: str, source: str) -> None:
        self.fmt, self.source = fmt, source
        self._rows: list[tuple] = []
        self._chunks: list[np.ndarray] = []
        self._images: dict[str, int] = {}
        self.image_names: list[str] = []
        self._iw: list[float] = []
        self._ih: list[float] = []
        self._classes: dict[str, int] = {}
        self.classes: list[str] = []
        self._files: dict[str, int] = {}
        self.files: list[str] = []
        self.skipped: dict[str, int] = {}
        self.notes: list[str] = []

    def image(self, name: str, width: float = float("nan"), height: float = float("nan")) -> int:
        idx = self._images.get(name)
        if idx is None:
            idx = self._images[name] = len(self.image_names)
            self.image_names.append(name)
            self._iw.append(float(width))
            self._ih.append(float(height))
        elif math.isnan(self._iw[idx]) and not math.isnan(width):  # math: 10x np.isnan's speed
            self._iw[idx], self._ih[idx] = float(width), float(height)
        return idx

    def set_classes(self, names: list[str]) -> None:
        for name in names:
            self.cls(name)

    def cls(self, name: str | None) -> int:
        if name is None:
            return -1
        idx = self._classes.get(name)
        if idx is None:
            idx = self._classes[name] = len(self.classes)
            self.classes.append(name)
        return idx

    def file(self, path: str) -> int:
        idx = self._files.get(path)
        if idx is None:
            idx = self._files[path] = len(self.files)
            self.files.append(path)
        return idx

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def add(self, image: int, cls: int, x: float, y: float, w: float, h: float, *,
            origin: int = 0, line: int = 0, difficult: bool = False,
            flagged: bool = False) -> None:
        self._rows.append((image, cls, x, y, w, h, difficult, flagged, origin, line))
        if len(self._rows) >= _CHUNK:
            self._flush()

    def add_columns(self, image: np.ndarray, cls: np.ndarray, x: np.ndarray, y: np.ndarray,
                    w: np.ndarray, h: np.ndarray, *, origin: int, line: np.ndarray) -> None:
        """Many rows at once, as ``add`` would store them one by one (float64 geometry is
        rounded to float32 the same way), for readers that parse a block of rows in C."""
        self._flush()
        rows = np.zeros(len(x), dtype=_ROW_DTYPE)
        rows["image"], rows["cls"], rows["origin"], rows["line"] = image, cls, origin, line
        with np.errstate(over="ignore"):
            for name, values in (("x", x), ("y", y), ("w", w), ("h", h)):
                rows[name] = np.asarray(values, dtype=np.float64).astype(np.float32)
        self._chunks.append(rows)

    def _flush(self) -> None:
        if self._rows:
            # a coordinate beyond float32 becomes inf (validation drops it as nan_size, counted)
            with np.errstate(over="ignore"):
                self._chunks.append(np.array(self._rows, dtype=_ROW_DTYPE))
            self._rows = []

    def build(self, units: str = "px", synthetic: bool = False) -> Boxes:
        self._flush()
        rows = np.concatenate(self._chunks) if self._chunks else np.zeros(0, _ROW_DTYPE)
        self._chunks = []
        return Boxes(**{name: np.ascontiguousarray(rows[name]) for name in _ROW_COLUMNS},
                     image_names=self.image_names,
                     image_width=np.asarray(self._iw, dtype=np.float64),
                     image_height=np.asarray(self._ih, dtype=np.float64),
                     classes=self.classes, files=self.files, format=self.fmt,
                     source=self.source, units=units, skipped=self.skipped, notes=self.notes,
                     synthetic=synthetic)


_ROW_DTYPE = np.dtype([("image", np.int32), ("cls", np.int32), ("x", np.float32),
                       ("y", np.float32), ("w", np.float32), ("h", np.float32),
                       ("difficult", np.bool_), ("flagged", np.bool_), ("origin", np.int32),
                       ("line", np.int32)])


def concat(parts: list[Boxes], source: str) -> Boxes:
    """Join several Boxes (e.g. one per file) into one, re-indexing images/classes/files."""
    builder = BoxBuilder(parts[0].format if parts else "unknown", source)
    cols: dict[str, list[np.ndarray]] = {n: [] for n in _ROW_COLUMNS}
    for part in parts:
        img_map = np.array([builder.image(n, w, h) for n, w, h in
                            zip(part.image_names, part.image_width, part.image_height)] or [0],
                           dtype=np.int32)
        cls_map = np.array([builder.cls(c) for c in part.classes] + [-1], dtype=np.int32)
        file_map = np.array([builder.file(f) for f in part.files] or [0], dtype=np.int32)
        for name in _ROW_COLUMNS:
            cols[name].append(getattr(part, name))
        cols["image"][-1] = img_map[part.image]
        cols["cls"][-1] = cls_map[part.cls]
        cols["origin"][-1] = file_map[part.origin]
        for reason, n in part.skipped.items():
            builder.skip(reason, n)
        builder.notes.extend(part.notes)
    out = builder.build(units=parts[0].units if parts else "px")
    for name in _ROW_COLUMNS:
        if cols[name]:
            setattr(out, name, np.concatenate(cols[name]))
    return out


# --------------------------------------------------------------------------- validation

@dataclass
class ValidationReport:
    """What validation found. ``dropped`` rows are removed; ``issues`` are counted, kept."""

    dropped: dict[str, int]
    issues: dict[str, int]
    first: dict[str, str]       # reason -> "file:line" of the first offending row

    def to_dict(self) -> dict[str, Any]:
        return {"dropped": dict(self.dropped), "issues": dict(self.issues),
                "first": dict(self.first)}


#: the largest box side kept (pixels, or the same number in normalised units): past it float32
#: loses whole pixels and the areas k-means multiplies overflow float32 (1e37 px boxes did)
MAX_SIDE = float(1 << 24)

DROP_REASONS = {
    "nan_size": "width or height is NaN or infinite",
    "negative_size": "width or height is negative",
    "zero_size": "width or height is zero",
    "too_large": "width or height beyond 16,777,216 (2^24) px, where float32 no longer holds "
                 "whole pixels; no camera or slide scanner comes near it",
    "outside_image": "box lies entirely outside its image",
    "duplicate": "exact duplicate of another row (same image, class and coordinates)",
    "under_min_size": "smaller than the minimum size on both sides after resizing",
}


def _first_row(boxes: Boxes, mask: np.ndarray) -> str:
    idx = int(np.argmax(mask))
    where = boxes.files[boxes.origin[idx]] if boxes.files else boxes.source
    line = int(boxes.line[idx])
    return f"{where}:{line}" if line else where


def validate(boxes: Boxes, *, strict: bool = False, drop_duplicates: bool = True,
             min_size: float | None = None, warn_size: float | None = None
             ) -> tuple[Boxes, ValidationReport]:
    """Drop rows that cannot be clustered, count everything else that looks wrong.

    ``strict`` turns the first dropped row into an error naming its file and line. ``min_size``
    (pixels, after resizing) drops boxes smaller on *both* sides, like YOLOv5's ``wh0 >= 2`` filter;
    ``warn_size`` counts boxes smaller on *either* side (YOLOv5 warns under 3 px).
    """
    w, h = boxes.w, boxes.h
    checks: list[tuple[str, np.ndarray]] = []
    nan = ~(np.isfinite(w) & np.isfinite(h))
    checks.append(("nan_size", nan))
    with np.errstate(invalid="ignore"):
        neg = ~nan & ((w < 0) | (h < 0))
        zero = ~nan & ~neg & ((w == 0) | (h == 0))
        huge = ~nan & ~neg & ~zero & ((w > MAX_SIDE) | (h > MAX_SIDE))
    checks += [("negative_size", neg), ("zero_size", zero), ("too_large", huge)]
    bad = nan | neg | zero | huge
    issues: dict[str, int] = {}
    first: dict[str, str] = {}
    iw = boxes.image_width[boxes.image] if len(boxes) else np.zeros(0)
    ih = boxes.image_height[boxes.image] if len(boxes) else np.zeros(0)
    if boxes.units == "normalized":
        iw, ih = np.ones_like(iw), np.ones_like(ih)
    known = np.isfinite(iw) & np.isfinite(boxes.x) & np.isfinite(boxes.y) & ~bad
    with np.errstate(invalid="ignore"):
        x2, y2 = boxes.x + w, boxes.y + h
        tol = 1e-3 if boxes.units == "normalized" else 0.5
        partly = known & ((boxes.x < -tol) | (boxes.y < -tol) | (x2 > iw + tol) | (y2 > ih + tol))
        fully = known & ((x2 <= 0) | (y2 <= 0) | (boxes.x >= iw) | (boxes.y >= ih))
    checks.append(("outside_image", fully))
    bad |= fully
    if (partly & ~fully).any():
        issues["partly_outside_image"] = int((partly & ~fully).sum())
        first["partly_outside_image"] = _first_row(boxes, partly & ~fully)
    if min_size is not None:
        small = ~bad & (w < min_size) & (h < min_size)
        checks.append(("under_min_size", small))
        bad |= small
    if warn_size is not None:
        tiny = ~bad & ((w < warn_size) | (h < warn_size))
        if tiny.any():
            issues[f"under_{warn_size:g}px"] = int(tiny.sum())
    if drop_duplicates and len(boxes):
        dup = ~bad & _duplicates(boxes)
        checks.append(("duplicate", dup))
        bad |= dup
    if boxes.flagged.any():
        issues["flagged_by_format"] = int(boxes.flagged.sum())
    if boxes.difficult.any():
        issues["difficult"] = int(boxes.difficult.sum())
    dropped: dict[str, int] = {}
    for reason, mask in checks:
        n = int(mask.sum())
        if n:
            dropped[reason] = n
            first[reason] = _first_row(boxes, mask)
    if strict and dropped:
        # the earliest offending row in file order, whatever its reason
        row, reason = min((int(np.argmax(m)), r) for r, m in checks if m.any())
        src = boxes.files[boxes.origin[row]] if boxes.files else boxes.source
        raise AnchorfitError(f"{DROP_REASONS[reason]} ({dropped[reason]} rows like this)",
                             source=src, line=int(boxes.line[row]) or None,
                             hint="drop --strict to skip such rows and count them")
    kept = boxes.select(~bad) if bad.any() else boxes
    return kept, ValidationReport(dropped=dropped, issues=issues, first=first)


def _duplicates(boxes: Boxes) -> np.ndarray:
    """True for every row that repeats an earlier identical row.

    Rows are compared as raw bytes (NaN positions, i.e. unknown, then match each other, which is
    what we want). A 64-bit hash of each row is sorted once; only rows whose hash occurs twice
    or more (the duplicates and rare collisions) go through the exact byte comparison. At 10 M
    rows that is several times faster, and much smaller, than ``np.unique`` on 24-byte records.
    """
    n = len(boxes)
    if n < 2:
        return np.zeros(n, dtype=bool)
    u64 = np.uint64

    def word(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        return (hi.view(np.uint32).astype(u64) << u64(32)) | lo.view(np.uint32).astype(u64)

    h = word(boxes.image.astype(np.int32), boxes.cls.astype(np.int32))
    with np.errstate(over="ignore"):
        for hi, lo in ((boxes.x, boxes.y), (boxes.w, boxes.h)):
            h *= u64(0x9E3779B97F4A7C15)
            h ^= word(hi.astype(np.float32), lo.astype(np.float32))
            h ^= h >> u64(29)
    s = np.sort(h)
    repeated = s[1:][s[1:] == s[:-1]]
    del s
    dup = np.zeros(n, dtype=bool)
    if len(repeated):
        rows = np.flatnonzero(np.isin(h, repeated))
        dup[rows] = _duplicates_reference(boxes.select(rows))
    return dup


def _duplicates_reference(boxes: Boxes) -> np.ndarray:
    """The void-record np.unique version _duplicates replaces (kept for its test)."""
    keys = np.empty(len(boxes), dtype=[("i", np.int32), ("c", np.int32), ("x", np.float32),
                                       ("y", np.float32), ("w", np.float32), ("h", np.float32)])
    keys["i"], keys["c"] = boxes.image, boxes.cls
    keys["x"], keys["y"], keys["w"], keys["h"] = boxes.x, boxes.y, boxes.w, boxes.h
    raw = keys.view(f"V{keys.dtype.itemsize}")
    _, first_idx = np.unique(raw, return_index=True)
    dup = np.ones(len(boxes), dtype=bool)
    dup[first_idx] = False
    return dup


# --------------------------------------------------------------------------- resizing

@dataclass(frozen=True)
class ResizeSpec:
    """How the detector's data loader resizes images (see POLICY_HELP)."""

    policy: str = "letterbox"
    size: tuple[int, int] = (640, 640)      # (H, W); for shortside: (short, max long side)
    jitter: tuple[float, float] | None = None
    seed: int = 0

    def describe(self) -> str:
        if self.policy == "none":
            return "original pixels"
        if self.policy == "shortside":
            return f"shortside {min(self.size)}/{max(self.size)}"
        text = f"{self.policy} {self.size[0]}x{self.size[1]} (HxW)"
        if self.jitter:
            text += f", scale jitter U({self.jitter[0]:g}, {self.jitter[1]:g}) seed {self.seed}"
        return text


def image_scales(iw: np.ndarray, ih: np.ndarray, spec: ResizeSpec
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-image (scale_x, scale_y, canvas_w, canvas_h) for a resize policy."""
    H, W = spec.size
    if spec.policy == "letterbox":
        s = np.minimum(H / ih, W / iw)
        sx, sy, cw, ch = s, s, np.full_like(iw, W), np.full_like(ih, H)
    elif spec.policy == "stretch":
        sx, sy = W / iw, H / ih
        cw, ch = np.full_like(iw, W), np.full_like(ih, H)
    elif spec.policy == "shortside":
        short, long_ = min(spec.size), max(spec.size)
        s = np.minimum(short / np.minimum(iw, ih), long_ / np.maximum(iw, ih))
        sx, sy, cw, ch = s, s, iw * s, ih * s
    elif spec.policy == "none":
        sx, sy, cw, ch = np.ones_like(iw), np.ones_like(ih), iw, ih
    else:
        raise AnchorfitError(f"unknown resize policy {spec.policy!r}; expected one of "
                             + ", ".join(POLICIES), key="policy")
    if spec.jitter is not None and spec.policy != "none":
        rng = np.random.default_rng(spec.seed)
        j = rng.uniform(spec.jitter[0], spec.jitter[1], size=iw.shape)
        sx, sy = sx * j, sy * j
    return sx, sy, cw, ch


def to_input(boxes: Boxes, spec: ResizeSpec) -> Boxes:
    """The boxes in network-input pixels, the way the detector's data loader resizes images.

    Rows of images without a known size are dropped and counted as ``no_image_size`` (the policy
    ``none`` needs no size). Letterbox centres the image on the canvas, so x, y gain the padding.
    """
    if boxes.units == "normalized" and spec.policy != "stretch":
        raise AnchorfitError(
            f"the boxes are normalised and no image sizes are known, so the {spec.policy!r} "
            "policy cannot be applied", source=boxes.source,
            hint="give --image-sizes CSV (image,width,height) or use --policy stretch, which "
                 "multiplies normalised sizes by the input size like Darknet's calc_anchors")
    if spec.policy == "none":
        return replace(boxes, space=spec.describe(), skipped=dict(boxes.skipped))
    iw, ih = boxes.image_width, boxes.image_height
    if boxes.units == "normalized":
        iw, ih = np.ones_like(iw), np.ones_like(ih)
    known_img = np.isfinite(iw) & np.isfinite(ih) & (iw > 0) & (ih > 0)
    if len(boxes) and not known_img.any():
        raise AnchorfitError(
            f"image sizes are unknown for all {len(boxes)} boxes, so the {spec.policy!r} policy "
            "cannot be applied", source=boxes.source,
            hint="give --image-sizes CSV (image,width,height), or --policy none to use original "
                 "pixels")
    sx, sy, cw, ch = image_scales(np.where(known_img, iw, 1.0), np.where(known_img, ih, 1.0), spec)
    out = boxes
    known_row = known_img[boxes.image]
    if not known_row.all():
        out = boxes.select(known_row)
        out.skipped["no_image_size"] = out.skipped.get("no_image_size", 0) + int((~known_row).sum())
    img = out.image
    px = ((cw - iw * sx) / 2)[img] if spec.policy == "letterbox" else 0.0
    py = ((ch - ih * sy) / 2)[img] if spec.policy == "letterbox" else 0.0
    f32 = np.float32
    return replace(out, x=(out.x * sx[img] + px).astype(f32), y=(out.y * sy[img] + py).astype(f32),
                   w=(out.w * sx[img]).astype(f32), h=(out.h * sy[img]).astype(f32),
                   image_width=np.where(known_img, cw, np.nan),
                   image_height=np.where(known_img, ch, np.nan),
                   units="px", space=spec.describe())
