"""The planner: S3FD rule on S3FD (Table 1), SSD/octave/FCOS rules, densification, datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anchorfit.detector import Detector, Level
from anchorfit.errors import AnchorfitError
from anchorfit.load import Network
from anchorfit.design.plan import ErfSize, densification, octave_sizes, plan, ssd_sizes
from anchorfit.rf.engine import head_window

from test_rf_engine import S3FD_LEVELS, s3fd_graph


def s3fd_detector() -> Detector:
    net = Network("s3fd", s3fd_graph(), (640, 640), S3FD_LEVELS)
    levels = [Level(n, node=n, head=head_window(3)) for n in S3FD_LEVELS]
    return Detector("s3fd", (640, 640), levels, network=net).analyze()


def test_s3fd_rule_reproduces_table_1():
    p = plan(s3fd_detector())
    assert [lv.stride for lv in p.levels] == [4, 8, 16, 32, 64, 128]
    assert [lv.anchors[0].w for lv in p.levels] == [16, 32, 64, 128, 256, 512]
    assert [lv.head_rf for lv in p.levels] == [48, 108, 228, 340, 468, 724]
    assert [lv.rf for lv in p.levels] == [40, 92, 196, 276, 340, 468]
    assert [lv.ratios()["anchor_stride"] for lv in p.levels] == pytest.approx([4] * 6)
    frame = p.to_frame()
    assert list(frame["head_rf"]) == [48, 108, 228, 340, 468, 724]
    assert not p.warnings


def test_erf_column_and_anchor_erf_warning():
    # conv4_3's anchor sits exactly at its ERF (as a dataset fit capped at the ERF leaves it)
    erf = {"conv3_3": ErfSize(14.0, 12.0, 16.0), "conv4_3": ErfSize(32.0)}
    p = plan(s3fd_detector(), erf=erf)
    first = p.levels[0]
    assert first.ratios()["anchor_erf"] == pytest.approx(16 / 14)
    assert first.ratios()["erf_rf"] == pytest.approx(14 / 40)  # feature RF: where the ERF is measured
    codes = [(w.code, w.level) for w in p.warnings]
    assert codes == [("AF201", "conv3_3")]  # 16 > 14; conv4_3's 32 at the ERF 32 is allowed
    assert "14 [12, 16]" in p.to_frame()["erf (4σ) [95% CI]"].iloc[0]


def test_ssd_caffe_sizes_reproduce_ssd300_voc():
    mins, maxs = ssd_sizes(300, 6, 0.2, 0.9, "caffe")
    assert mins == [30, 60, 111, 162, 213, 264]
    assert maxs == [60, 111, 162, 213, 264, 315]
    mins, _ = ssd_sizes(300, 6, 0.15, 0.9, "caffe")  # COCO
    assert [round(m) for m in mins] == [22, 45, 99, 153, 207, 261]


def test_ssd_paper_sizes_are_linear():
    mins, maxs = ssd_sizes(300, 6, 0.2, 0.9, "paper")
    assert mins == pytest.approx([60, 102, 144, 186, 228, 270])
    assert maxs[:-1] == pytest.approx(mins[1:])


def test_octave_sizes_match_mmdet_retinanet():
    assert octave_sizes(8) == pytest.approx([32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)])
    assert octave_sizes(128)[-1] == pytest.approx(812.7, abs=0.05)


def test_densification_faceboxes_numbers():
    n, offsets = densification(32, 32)
    assert n == 4 and len(offsets) == 16 and sorted({o[1] for o in offsets}) == [0, .25, .5, .75]
    n, offsets = densification(64, 32)
    assert n == 2 and sorted({o[0] for o in offsets}) == [0, .5]
    assert densification(128, 32) == (1, None)
    assert densification(3.97 * 32, 32) == (1, None)  # a 1 % shortfall is not densified 2x2
    assert densification(48, 32)[0] == 3  # anchor/stride 1.5: 4/1.5 = 2.67 -> 3 per axis


def test_fcos_rule_gives_ranges():
    p = plan(s3fd_detector(), rule="fcos")
    assert p.levels[1].anchor_free_range == (32, 64)
    assert p.levels[0].anchor_free_range[0] == 0 and math.isinf(p.levels[-1].anchor_free_range[1])


def test_dataset_plan_places_clusters_and_reports_what_is_missing():
    rng = np.random.default_rng(0)
    sides = np.exp(rng.uniform(np.log(6), np.log(200), 3000))
    wh = np.stack([sides, sides * rng.uniform(0.8, 1.25, 3000)], 1)
    wh = np.vstack([wh, [[0.5, 0.6]] * 20, [[900, 800]] * 5])  # too small, too large
    p = plan(s3fd_detector(), wh=wh, k=6, seed=0)
    assert sum(lv.boxes for lv in p.levels) == len(wh)
    sides_by_level = [lv.anchor_side for lv in p.levels]
    assert sides_by_level == sorted(sides_by_level)
    for lv in p.levels:  # level-aware: each level's anchor inside [2, 8] x stride
        assert 2 * lv.stride - 1e-6 <= lv.anchor_side <= 8 * lv.stride + 1e-6
    codes = {w.code for w in p.warnings}
    assert {"AF205", "AF206"} <= codes
    assert p.dataset["boxes"] == len(wh)


def test_bad_rule_and_ratio():
    with pytest.raises(AnchorfitError, match="unknown rule"):
        plan(s3fd_detector(), rule="magic")
    with pytest.raises(AnchorfitError, match="positive"):
        plan(s3fd_detector(), ratio=0)


@pytest.mark.slow
def test_measured_erf_repeats_for_a_seed():
    from anchorfit.load import load_detector
    from anchorfit.design.plan import measure_erf

    det = load_detector("s3fd")
    a, _ = measure_erf(det, samples=1, seed=0)
    b, _ = measure_erf(det, samples=1, seed=0)
    assert a == b
    assert list(a) == S3FD_LEVELS
    assert all(a[n].value < rf for n, rf in zip(S3FD_LEVELS, [40, 92, 196, 276, 340, 468]))


def test_planner_findings_af202_af203_af204_af207_both_ways():
    det = s3fd_detector()
    # AF202: a measured ERF at or above the feature RF (conv3_3's RF is 40)
    codes = {(w.code, w.level) for w in plan(det, erf={"conv3_3": ErfSize(41.0)}).warnings}
    assert ("AF202", "conv3_3") in codes
    assert "AF202" not in {w.code for w in plan(det, erf={"conv3_3": ErfSize(39.0)}).warnings}
    # AF203: anchor beyond the head RF (ratio 20: conv3_3 gets 80 px > 48)
    assert ("AF203", "conv3_3") in {(w.code, w.level) for w in plan(det, ratio=20).warnings}
    assert "AF203" not in {w.code for w in plan(det, ratio=4).warnings}
    # AF204 and AF207 come from a dataset fit: tiny boxes only, so anchors sit at 2 x stride
    # (densify 2x2) and the coarse levels get nothing
    rng = np.random.default_rng(1)
    small = rng.uniform(8, 12, size=(500, 2))
    p = plan(det, wh=small, k=6)
    codes = {(w.code, w.level) for w in p.warnings}
    assert ("AF204", "conv3_3") in codes and p.levels[0].densify == 2
    assert ("AF207", "conv7_2") in codes
    spread = np.exp(rng.uniform(np.log(16), np.log(512), size=(3000, 1))) * [1, 1]
    p = plan(det, wh=spread * rng.uniform(0.9, 1.1, size=(3000, 2)), k=6)
    assert not {"AF207"} & {w.code for w in p.warnings}
    assert all(lv.boxes > 0 for lv in p.levels)
