"""Read → validate → resize → size filter: the path every command takes from a file to box sizes
in network-input pixels, with every dropped row counted by reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchorfit.data.boxes import Boxes, ResizeSpec, to_input, validate
from anchorfit.data.io import read_annotations
from anchorfit.errors import AnchorfitError


@dataclass
class PreparedBoxes:
    """Boxes in input pixels plus the bookkeeping of how they got there."""

    boxes: Boxes
    rows_read: int
    dropped: dict[str, int]         # every row not in ``boxes``, by reason
    issues: dict[str, int]          # counted, kept
    first: dict[str, str]           # reason -> file:line of the first such row
    spec: ResizeSpec
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "boxes_kept": len(self.boxes),
                "dropped": dict(self.dropped), "issues": dict(self.issues),
                "first": dict(self.first)}


def prepare_boxes(path: str | Path | Boxes, *, fmt: str | None = None, image_sizes=None,
                  spec: ResizeSpec = ResizeSpec(), strict: bool = False,
                  min_size: float | None = 2.0, warn_size: float | None = 3.0,
                  **reader_options: Any) -> PreparedBoxes:
    """Boxes of an annotation file (or a Boxes table) in input pixels, validated.

    Drops (and counts) NaN/negative/zero sizes, boxes entirely outside their image, exact
    duplicates, boxes of images of unknown size and, after resizing, boxes under ``min_size``
    on both sides. Raises when nothing is left, naming why.
    """
    raw = path if isinstance(path, Boxes) else read_annotations(
        path, fmt, image_sizes=image_sizes, **reader_options)
    read = len(raw) + sum(raw.skipped.values())
    source, notes = raw.source, list(raw.notes)
    clean, rep = validate(raw, strict=strict)
    del raw  # at 10 M boxes each copy is ~350 MB: keep at most two alive
    resized = to_input(clean, spec)
    del clean
    dropped = dict(resized.skipped)  # the reader's skips plus images of unknown size
    for reason, n in rep.dropped.items():
        dropped[reason] = dropped.get(reason, 0) + n
    final, rep2 = validate(resized, strict=strict, drop_duplicates=False, min_size=min_size,
                           warn_size=warn_size)
    for reason, n in rep2.dropped.items():
        dropped[reason] = dropped.get(reason, 0) + n
    issues = {**rep.issues, **{k: v for k, v in rep2.issues.items()
                               if k not in ("flagged_by_format", "difficult",
                                            "partly_outside_image")}}
    if len(final) == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "the file has no boxes"
        raise AnchorfitError(f"no usable boxes ({detail})", source=source,
                             hint="check the format (--from) and image sizes (--image-sizes)")
    return PreparedBoxes(final, read, dropped, issues, {**rep.first, **rep2.first}, spec, notes)


def resize_spec_for(detector: Any, policy: str | None = None, seed: int = 0) -> ResizeSpec:
    """The ResizeSpec a detector's data loader uses (or ``policy`` when the user overrides it).

    Detector policies map onto box policies: ``fixed`` (SSD's square resize) is ``stretch``;
    ``shortside`` uses the detector's short/max sides (800/1333 by default).
    """
    chosen = policy or {"fixed": "stretch"}.get(detector.resize_policy, detector.resize_policy)
    if chosen == "shortside":
        short = detector.resize_params.get("short", min(detector.input_size))
        long_ = detector.resize_params.get("max", max(round(short * 1333 / 800), short))
        return ResizeSpec(policy="shortside", size=(int(short), int(long_)), seed=seed)
    return ResizeSpec(policy=chosen, size=tuple(detector.input_size), seed=seed)
