"""Every audit check has a detector that triggers it and one that does not."""

from __future__ import annotations

import numpy as np
import pytest

from anchorfit.design.audit import CHECKS, audit
from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.load import Network
from anchorfit.rf import GraphBuilder
from anchorfit.rf.engine import head_window


def three_level_net(size: int = 256) -> Network:
    """A stride-4 stem and three stages (3x3 s2 + two 3x3): levels at strides 8, 16, 32 with
    feature RFs 47, 127, 287 and head RFs 63, 159, 351 (c0 = 0, aligned)."""
    b = GraphBuilder("toy")
    x = b.input()
    x = b.conv(x, 3, 2, 1)
    x = b.conv(x, 3, 2, 1)
    outs = []
    for name in ["p3", "p4", "p5"]:
        x = b.conv(b.conv(b.conv(x, 3, 2, 1), 3, 1, 1), 3, 1, 1, name=name)
        outs.append(x)
    b.output(*outs)
    return Network("toy", b.build(), (size, size), ["p3", "p4", "p5"])


def detector(anchors, *, step=None, center="top-left", offset=0.0, assigner=None,
             feature_size=None, size=256, **extra) -> Detector:
    net = three_level_net(size)
    levels = []
    for k, name in enumerate(["p3", "p4", "p5"]):
        levels.append(Level(name, node=name, anchors=[Anchor(w, h) for w, h in anchors[k]],
                            step=None if step is None else step[k], center=center,
                            center_offset=offset, head=head_window(3),
                            assigner=assigner or Assigner(),
                            feature_size=None if feature_size is None else feature_size[k]))
    det = Detector("toy", (size, size), levels, network=net, **extra)
    return det.analyze()


GOOD = [[(32, 32), (40, 40)], [(64, 64), (80, 80)], [(128, 128), (160, 160)]]


def codes(report):
    return report.codes()


def test_good_detector_has_no_warnings():
    report = audit(detector(GOOD))
    assert report.worst() in (None, "info")
    assert not report.fails("warning")


def test_af101_anchor_larger_than_rf():
    net = three_level_net()
    assert [net.analyze()[n].rf[0] for n in ["p3", "p4", "p5"]] == [47, 127, 287]
    report = audit(detector([[(70, 40)], *GOOD[1:]]))  # head RF of p3 is 63
    (f,) = [f for f in report.findings if f.code == "AF101"]
    assert f.measured["rf"] == [63, 63] and f.level == "p3"  # [y, x]
    assert "AF101" not in codes(audit(detector([[(60, 40)], *GOOD[1:]])))


def test_af102_erf_band_needs_erf():
    det = detector(GOOD)
    assert "AF102" not in audit(det).checks_run
    erf = {"p3": 20.0, "p4": 70.0, "p5": 150.0}
    report = audit(det, erf=erf)
    hits = [f for f in report.findings if f.code == "AF102"]
    assert {(f.level, f.anchor) for f in hits} == {("p3", 0), ("p3", 1), ("p4", 1),
                                                    ("p5", 1)}
    assert "AF102" not in codes(audit(det, erf={"p3": 50.0, "p4": 90.0, "p5": 170.0}))


def test_af103_sparse_tiling_and_densification_fixes_it():
    report = audit(detector([[(4, 4)], *GOOD[1:]]))
    (f,) = [f for f in report.findings if f.code == "AF103"]
    assert f.measured["density"] == pytest.approx(0.5) and "densify it 2x" in f.remedy
    dense = detector([[(4, 4)], *GOOD[1:]])
    dense.levels[0].anchors = [Anchor(4, 4, ((0, 0), (0, .5), (.5, 0), (.5, .5)))]
    assert "AF103" not in codes(audit(dense))


def test_af104_uneven_density():
    assert "AF104" in codes(audit(detector([[(8, 8)], [(64, 64)], [(256, 256)]])))
    assert "AF104" not in codes(audit(detector(GOOD)))


def test_af105_anchor_order_in_pixel_space():
    reversed_ = list(reversed(GOOD))
    report = audit(detector(reversed_))
    assert "AF105" in codes(report) and report.fails("error")
    assert "AF105" not in codes(audit(detector(GOOD)))


def test_af106_darknet_masks():
    det = detector(GOOD)
    for lv, mask in zip(det.levels, [[1, 2], [3, 4], [4, 5]]):  # anchor 0 unused, 4 shared
        lv.mask = mask
    det.extra["num_anchors"] = 6
    msgs = [f.message for f in audit(det).findings if f.code == "AF106"]
    assert any("anchors [0]" in m for m in msgs) and any("anchor 4 is used" in m for m in msgs)
    ok = detector(GOOD)
    for lv, mask in zip(ok.levels, [[0, 1], [2, 3], [4, 5]]):
        lv.mask = mask
    assert "AF106" not in codes(audit(ok))


def test_af107_filters():
    det = detector(GOOD, num_classes=80)
    for lv in det.levels:
        lv.mask = [0, 1]
        lv.extra["filters"] = 255
    (f, *_) = [f for f in audit(det).findings if f.code == "AF107"]
    assert f.measured == {"filters": 255, "expected": 170}
    for lv in det.levels:
        lv.extra["filters"] = 170
    assert "AF107" not in codes(audit(det))


def test_af108_step_not_stride():
    det = detector(GOOD, step=[(8, 8), (16, 16), (30, 30)])
    (f,) = [f for f in audit(det).findings if f.code == "AF108"]
    assert f.level == "p5" and f.measured["drift"] == pytest.approx(7 * -2)
    assert "AF108" not in codes(audit(detector(GOOD, step=[(8, 8), (16, 16), (32, 32)])))


def test_af109_centre_offset():
    # this toy net has c0 = 0 (RF centre 0.5 in continuous coordinates): top-left i*S is aligned,
    # (i + 0.5)*S is S/2 off
    assert "AF109" in codes(audit(detector(GOOD, center="cell-center", offset=0.5)))
    assert "AF109" not in codes(audit(detector(GOOD, center="top-left", offset=0.0)))


def test_dataset_checks_af110_af111_af112():
    rng = np.random.default_rng(0)
    wh = rng.uniform(20, 30, size=(200, 2))
    det = detector(GOOD, assigner=Assigner("yolo-ratio", None, None, anchor_t=4.0))
    report = audit(det, wh)
    dead = {(f.level, f.anchor) for f in report.findings if f.code == "AF110"}
    assert dead == {("p5", 0), ("p5", 1)}  # 128 and 160 are more than 4x any box
    empty = [f.level for f in report.findings if f.code == "AF112"]
    assert empty == ["p5"]
    tiny = np.vstack([wh, np.full((50, 2), 3.0)])
    assert "AF111" in codes(audit(det, tiny))
    assert "AF111" not in codes(report)
    spread = np.exp(rng.uniform(np.log(20), np.log(200), size=(300, 2)))
    full = audit(det, spread)
    assert not {"AF110", "AF112"} & codes(full)


def test_af111_names_the_finest_level_when_heads_are_listed_coarse_first():
    # Darknet cfgs list their [yolo] heads coarse first: the finding belongs to the finest level
    det = detector(GOOD)
    det.levels.reverse()
    tiny = np.vstack([np.random.default_rng(0).uniform(20, 30, size=(200, 2)),
                      np.full((50, 2), 3.0)])
    (f,) = [f for f in audit(det, tiny).findings if f.code == "AF111"]
    assert f.level == "p3"


def test_af113_prior_count():
    det = detector(GOOD, feature_size=[(32, 32), (16, 16), (8, 8)], size=256)
    assert "AF113" not in codes(audit(det))
    det = detector(GOOD, feature_size=[(38, 38), (16, 16), (8, 8)], size=256)
    (f,) = [f for f in audit(det).findings if f.code == "AF113"]
    assert f.measured == {"config": [38, 38], "network": [32, 32]}


def test_af114_af115_misaligned_and_global():
    b = GraphBuilder()
    x = b.input()
    c = b.conv(x, 3, 2, 1, name="c")
    up = b.upsample(b.conv(c, 3, 2, 1), 2)
    m = b.add_(c, up, name="m")
    g = b.pointwise(c, "GroupNorm", global_context=True, name="g")
    net = Network("n", b.build(), (64, 64), ["m", "g", "c"])
    levels = [Level(n, node=n, anchors=[Anchor(8, 8)], center="top-left", center_offset=0)
              for n in ["m", "g", "c"]]
    report = audit(Detector("n", (64, 64), levels, network=net).analyze())
    assert [f.level for f in report.findings if f.code == "AF114"] == ["m"]
    assert [f.level for f in report.findings if f.code == "AF115"] == ["g"]
    # a misaligned level has no single RF centre per cell: AF109 stays quiet there
    assert "m" not in [f.level for f in report.findings if f.code == "AF109"]


def test_catalogue_codes_are_stable_and_documented():
    assert sorted(CHECKS) == [f"AF1{n:02d}" for n in range(1, 16)] + [
        f"AF2{n:02d}" for n in range(1, 8)] + [f"AF3{n:02d}" for n in range(1, 6)]
    assert all(c.summary and c.severity in ("info", "warning", "error") for c in CHECKS.values())
