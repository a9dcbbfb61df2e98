"""The real files shipped in tests/data: each has its origin and licence in tests/data/SOURCES.md,
the folder stays small, and each copy equals its original in ../shared/data (the one reduced file
equals it without segmentation polygons)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from anchorfit.data.imagesize import image_size

DATA = Path(__file__).resolve().parent / "data"
SOURCES = DATA / "SOURCES.md"
#: shipped with a change, said in SOURCES.md: the COCO json without its segmentation polygons
REDUCED = {"annotations/coco128_cocojson/instances_train2017.json"}
COCO8 = DATA / "ultralytics_coco8"  # its own SOURCES.md: labels copied, image headers generated


def _shipped() -> list[str]:
    return sorted(str(p.relative_to(DATA)) for top in ("configs", "annotations")
                  for p in (DATA / top).rglob("*") if p.is_file())


def test_every_shipped_file_has_origin_and_licence():
    """Every file falls under a row of SOURCES.md's table (its path or a folder above it), and
    every row names a licence and a commit."""
    rows = [line for line in SOURCES.read_text().splitlines() if line.startswith("| `")]
    covered = {m for line in rows for m in re.findall(r"`([^`]+)`", line.split("|")[1])}
    assert covered
    files = _shipped()
    assert len(files) > 500
    for rel in files:
        assert any(rel == c or (c.endswith("/") and rel.startswith(c)) for c in covered), rel
    for line in rows:
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert re.search(r"\b[0-9a-f]{40}\b|release", cells[1]), line  # commit or PyPI release
        assert re.search(r"MIT|Apache|BSD|CC BY|public domain|AGPL", cells[2], re.I), line


def test_shipped_data_stays_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 3_000_000, f"tests/data holds {total:,} bytes"


def test_shipped_copies_equal_the_shared_files(shared_data):
    for rel in _shipped():
        got, want = (DATA / rel).read_bytes(), (shared_data / rel).read_bytes()
        if rel in REDUCED:
            original = json.loads(want)
            for ann in original["annotations"]:
                del ann["segmentation"]
            assert json.loads(got) == original, rel
        else:
            assert got == want, rel
    # tests/data/ultralytics_coco8: the labels are copies, the JPEG headers have the real sizes
    src = shared_data / "annotations/coco128_yolo"
    sizes = {r["image"]: (int(r["width"]), int(r["height"]))
             for r in csv.DictReader(open(src / "image_sizes.csv")) if r["split"] == "train2017"}
    labels = sorted((COCO8 / "labels").rglob("*.txt"))
    assert len(labels) == 8
    for lab in labels:
        assert lab.read_bytes() == (src / "labels/train2017" / lab.name).read_bytes()
        img = COCO8 / "images" / lab.parent.name / f"{lab.stem}.jpg"
        assert image_size(img) == sizes[img.name]
