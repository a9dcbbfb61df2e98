"""Dataset statistics after resizing: counts, dropped rows by reason, size percentiles and
COCO size buckets — what ``anchorfit boxes`` prints before anyone clusters anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.data.prepare import PreparedBoxes

PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)
SIZE_BUCKETS = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2),
                ("large", 96.0 ** 2, float("inf")))


@dataclass
class BoxStats:
    """Statistics of one prepared box set (see ``box_stats``)."""

    source: str
    format: str
    synthetic: bool
    space: str
    images: int
    rows_read: int
    boxes: int
    dropped: dict[str, int]
    issues: dict[str, int]
    first: dict[str, str]
    percentiles: dict[str, dict[str, float]]    # quantity -> {"p50": v, ..., "mean": v}
    buckets: dict[str, int]
    classes: dict[str, int]
    seed: int
    notes: list[str]

    def to_frame(self) -> pd.DataFrame:
        rows = [{"quantity": q, **v} for q, v in self.percentiles.items()]
        return pd.DataFrame(rows)

    def counts_frame(self) -> pd.DataFrame:
        rows = [("images", self.images), ("rows read", self.rows_read),
                ("boxes kept", self.boxes)]
        rows += [(f"dropped: {k}", v) for k, v in self.dropped.items()]
        rows += [(f"issue: {k}", v) for k, v in self.issues.items()]
        rows += [(f"bucket: {k}", v) for k, v in self.buckets.items()]
        return pd.DataFrame(rows, columns=["count", "value"])

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "synthetic": self.synthetic,
                "space": self.space, "seed": self.seed,
                "counts": {"images": self.images, "rows_read": self.rows_read,
                           "boxes": self.boxes},
                "dropped": self.dropped, "issues": self.issues, "first": self.first,
                "percentiles": self.percentiles, "buckets": self.buckets,
                "classes": self.classes, "notes": self.notes}


def box_stats(prepared: PreparedBoxes) -> BoxStats:
    b = prepared.boxes
    w, h = b.w.astype(np.float64), b.h.astype(np.float64)
    area = w * h
    quantities = {"w": w, "h": h, "sqrt_area": np.sqrt(area), "aspect_w/h": w / h}
    pct = {}
    for name, v in quantities.items():
        q = np.percentile(v, PERCENTILES)
        pct[name] = {**{f"p{p}": float(x) for p, x in zip(PERCENTILES, q)},
                     "mean": float(v.mean())}
    buckets = {name: int(((area >= lo) & (area < hi)).sum()) for name, lo, hi in SIZE_BUCKETS}
    counts = np.bincount(b.cls[b.cls >= 0], minlength=len(b.classes))
    classes = {name: int(c) for name, c in zip(b.classes, counts) if c}
    return BoxStats(source=b.source, format=b.format, synthetic=b.synthetic, space=b.space,
                    images=b.n_images, rows_read=prepared.rows_read, boxes=len(b),
                    dropped=prepared.dropped, issues=prepared.issues, first=prepared.first,
                    percentiles=pct, buckets=buckets, classes=classes,
                    seed=prepared.spec.seed, notes=prepared.notes)
