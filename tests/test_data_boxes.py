"""Resize policies, validation and the synthetic generator, on hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest

from anchorfit.data import ResizeSpec, to_input, validate
from anchorfit.data.boxes import BoxBuilder
from anchorfit.data.synthetic import synthetic_boxes, synthetic_wh
from anchorfit.errors import AnchorfitError


def _table(rows, size=(1000.0, 500.0)):
    """rows of (x, y, w, h) on one image of size (w, h)."""
    b = BoxBuilder("test", "t.txt")
    img = b.image("img", *size)
    f = b.file("t.txt")
    for i, (x, y, w, h) in enumerate(rows, 1):
        b.add(img, b.cls("c"), x, y, w, h, origin=f, line=i)
    return b.build()


def test_letterbox_keeps_aspect_and_pads():
    b = to_input(_table([(100, 50, 200, 100)]), ResizeSpec("letterbox", (640, 640)))
    # long side 1000 → 640: scale 0.64; image 640 x 320 centred: 160 px padding on top
    assert (b.w[0], b.h[0]) == pytest.approx((128.0, 64.0))
    assert (b.x[0], b.y[0]) == pytest.approx((64.0, 50 * 0.64 + 160))


def test_stretch_scales_axes_independently():
    b = to_input(_table([(0, 0, 200, 100)]), ResizeSpec("stretch", (416, 416)))
    assert (b.w[0], b.h[0]) == pytest.approx((200 * 0.416, 100 * 0.832))


def test_shortside_800_1333():
    # 1000 x 500: short side 500 → 800 gives long 1600 > 1333, so scale = 1333/1000
    b = to_input(_table([(0, 0, 300, 30)]), ResizeSpec("shortside", (800, 1333)))
    assert b.w[0] == pytest.approx(300 * 1.333)
    b = to_input(_table([(0, 0, 300, 30)], size=(600.0, 500.0)), ResizeSpec("shortside", (800, 1333)))
    assert b.w[0] == pytest.approx(300 * 1.6)


def test_jitter_is_seeded_and_bounded():
    t = _table([(0, 0, 100, 100)])
    a = to_input(t, ResizeSpec("letterbox", (640, 640), jitter=(0.9, 1.1), seed=3))
    b = to_input(t, ResizeSpec("letterbox", (640, 640), jitter=(0.9, 1.1), seed=3))
    assert a.w[0] == b.w[0] and 57.6 <= a.w[0] <= 70.4 and a.w[0] != 64.0


def test_unknown_sizes_are_counted_or_refused():
    b = BoxBuilder("t", "t")
    known, unknown = b.image("a", 100, 100), b.image("b")
    b.add(known, -1, 0, 0, 10, 10)
    b.add(unknown, -1, 0, 0, 10, 10)
    b.add(unknown, -1, 0, 0, 20, 10)
    out = to_input(b.build(), ResizeSpec("letterbox", (200, 200)))
    assert len(out) == 1 and out.skipped == {"no_image_size": 2} and out.w[0] == 20.0
    only_unknown = BoxBuilder("t", "t")
    only_unknown.add(only_unknown.image("x"), -1, 0, 0, 10, 10)
    with pytest.raises(AnchorfitError, match="--policy none"):
        to_input(only_unknown.build(), ResizeSpec("letterbox"))


def test_validation_drops_and_counts_each_reason():
    t = _table([(0, 0, 10, 10), (0, 0, 0, 5), (0, 0, -3, 5), (0, 0, float("nan"), 5),
                (2000, 0, 10, 10), (0, 0, 10, 10), (995, 0, 10, 10)])
    kept, rep = validate(t)
    assert rep.dropped == {"zero_size": 1, "negative_size": 1, "nan_size": 1,
                           "outside_image": 1, "duplicate": 1}
    assert rep.issues["partly_outside_image"] == 1 and len(kept) == 2
    assert rep.first["negative_size"] == "t.txt:3"
    with pytest.raises(AnchorfitError) as exc:
        validate(t, strict=True)
    assert exc.value.line == 2 and "zero" in exc.value.message


def test_min_size_drops_only_when_both_sides_small():
    kept, rep = validate(_table([(0, 0, 1, 1), (0, 0, 1, 30), (0, 0, 2.5, 2.5)]), min_size=2,
                         warn_size=3)
    assert rep.dropped == {"under_min_size": 1} and rep.issues["under_3px"] == 2


def test_synthetic_is_seeded_and_labelled():
    a, b = synthetic_wh(1000, seed=1), synthetic_wh(1000, seed=1)
    assert (a == b).all() and not (a == synthetic_wh(1000, seed=2)).all()
    assert a.dtype == np.float32 and a.min() >= 1.0
    s = synthetic_boxes(100, seed=0)
    assert s.synthetic and "SYNTHETIC" in s.source and len(s) == 100 and s.n_images == 10


def test_boxes_past_float32_whole_pixels_are_dropped_not_clustered(tmp_path):
    """A 1e37 px box (a fuzz-style input) was kept and overflowed k-means' float32 areas into
    NaN IoUs with RuntimeWarnings; now it is dropped and counted, and k-means runs on the rest."""
    import warnings

    from anchorfit.cluster.api import cluster_anchors
    from anchorfit.data.csvfmt import read_csv

    path = tmp_path / "huge.csv"
    path.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                    "a.jpg,1e38,1e38,c,0,0,1e37,2e37\n"
                    "b.jpg,640,480,c,0,0,30,40\nc.jpg,640,480,c,0,0,60,50\n"
                    "d.jpg,640,480,c,0,0,10,12\ne.jpg,40000000,480,c,0,0,16777216,12\n")
    kept, rep = validate(read_csv(path))
    assert rep.dropped == {"too_large": 1} and rep.first["too_large"] == f"{path}:2"
    assert len(kept) == 4  # 2^24 itself is kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cluster_anchors(kept.wh(), k=2, seed=0)
    assert np.isfinite(result.anchors).all()
