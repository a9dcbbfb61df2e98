"""Anchor-free planning (anchorfit.design.anchor_free) against real configs and COCO128.

Independent checks: the positive-point probabilities are brute-forced by placing boxes at a grid
of positions over a cell and testing every lattice point with the assigners' own conditions
(written here from the sources: Ultralytics ``select_candidates_in_gts``, mmdet FCOS centre
sampling, SimOTA ``is_in_gts | is_in_cts``, FoveaHead's shrunk box, CenterNetUpdateHead's 3x3
cells); box counts are recomputed with plain numpy from the boxes' sides.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from anchorfit.design import anchor_free as af
from anchorfit.design.audit import audit
from anchorfit.data.prepare import prepare_boxes, resize_spec_for
from anchorfit.formats.mmdet import load_mmdet
from anchorfit.load import load_detector
from anchorfit.design.plan import object_side, plan

NO_ERF = "--no-erf"
SCHEMAS = {name: json.loads((Path(__file__).resolve().parents[1] / "anchorfit" / "schemas" /
                             f"{name}.schema.json").read_text()) for name in ("plan", "compare")}


@pytest.fixture(scope="module")
def paths(shipped_data):
    ultra = shipped_data / "configs" / "ultralytics" / "models"
    return {"v8": ultra / "v8" / "yolov8.yaml", "y26": ultra / "26" / "yolo26.yaml",
            "mmdet": shipped_data / "configs" / "mmdet",
            "labels": shipped_data / "annotations" / "coco128_yolo" / "labels" / "train2017",
            "sizes": shipped_data / "annotations" / "coco128_yolo" / "image_sizes.csv",
            "json": shipped_data / "annotations" / "coco128_cocojson" / "instances_train2017.json"}


@pytest.fixture(scope="module")
def v8(paths):
    return load_detector(str(paths["v8"]))


@pytest.fixture(scope="module")
def coco_wh(paths, v8):
    """COCO128 (YOLO labels) letterboxed to 640 as the CLI prepares them."""
    prepared = prepare_boxes(paths["labels"], image_sizes=paths["sizes"],
                             spec=resize_spec_for(v8, None, 0), min_size=2.0)
    return prepared.boxes.wh().astype(np.float64)


# --------------------------------------------------------------------------- the unit of ranges


def test_every_reader_says_what_its_ranges_bound(paths, v8):
    m = paths["mmdet"]
    assert {lv.range_measure for lv in v8.levels} == {"box-side"}
    cases = {"fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py": "max-ltrb",
             "centernet/centernet-update_r50-caffe_fpn_ms-1x_coco.py": "half-diagonal",
             "foveabox/fovea_r50_fpn_4xb4-1x_coco.py": "sqrt-area",
             "yolox/yolox_s_8xb8-300e_coco.py": "none",
             "rtmdet/rtmdet_s_8xb32-300e_coco.py": "none"}
    for rel, measure in cases.items():
        det = load_mmdet(m / rel)
        assert {lv.range_measure for lv in det.levels} == {measure}, rel
    spec = load_detector("fcos_r50_fpn")
    assert {lv.range_measure for lv in spec.levels} == {"max-ltrb"}
    assert spec.to_dict()["levels"][0]["range_measure"] == "max-ltrb"


def test_torchvision_fcos_samples_centres_and_bounds_max_ltrb():
    from anchorfit.formats.torchvision import load_torchvision_detector

    det = load_torchvision_detector("fcos_resnet50_fpn")
    specs = af.specs_from_levels(det.levels)
    assert {s.measure for s in specs} == {"max-ltrb"}
    assert {(s.rule.kind, s.rule.radius) for s in specs} == {("centre-sampling", 1.5)}
    assert specs[1].stride == (16.0, 16.0) and (specs[1].lo, specs[1].hi) == (64.0, 128.0)  # (4s, 8s]


def test_spec_range_measure_key(tmp_path, run_cli):
    base = Path(__file__).resolve().parents[1] / "anchorfit" / "configs" / "fcos_r50_fpn.yaml"
    src = base.read_text().replace("anchor_free: [0, 64],", "anchor_free: [0, 64], "
                                   "range_measure: sqrt-area,")
    cfg = tmp_path / "fcos_area.yaml"
    cfg.write_text(src)
    det = load_detector(str(cfg))
    assert det.levels[0].range_measure == "sqrt-area" and det.levels[1].range_measure == \
        "max-ltrb"
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.read_text().replace("anchor_free: [0, 64],", "anchor_free: [0, 64], "
                                            "range_measure: diagonal,"))
    code, _, err = run_cli("show", str(bad))
    assert code == 2 and "range_measure" in err and "diagonal" in err
    assert "Traceback" not in err


def test_range_to_sides_inverts_each_measure():
    rng = np.random.default_rng(0)
    wh = rng.uniform(3, 300, size=(200, 2))
    for measure in ("max-ltrb", "half-diagonal", "sqrt-area", "box-side"):
        values = af.measure_of(wh, measure)
        sides = [af.side_of(v, measure, h / w) for v, (w, h) in zip(values, wh)]
        np.testing.assert_allclose(sides, np.sqrt(wh[:, 0] * wh[:, 1]), rtol=1e-9)
    # FCOS (64, 128] of max(l, t, r, b) is squares of side (128, 256]; a box-side range is sides
    assert af.range_sides((64, 128)) == (128, 256)
    assert af.range_sides((0, 240), "box-side") == (0, 240)
    assert af.range_sides((64, 160), "half-diagonal")[1] == pytest.approx(320 / math.sqrt(2))
    # the plan's nominal object of a YOLOv8 P3 range: half an octave under 240, not under 480
    assert object_side((0, 240), "box-side") == pytest.approx(240 / math.sqrt(2))
    assert object_side((64, 128)) == pytest.approx(math.sqrt(128 * 256))


# --------------------------------------------------------------------------- brute force


def _brute(condition, w: float, h: float, s: float, n: int = 48) -> float:
    """Fraction of n x n box positions (top-left corner uniform over one cell, midpoints) for
    which some lattice point (i + 0.5) s satisfies ``condition(px, py, box)``."""
    u = (np.arange(n) + 0.5) / n * s + 40 * s
    pts = (np.arange(0, 120) + 0.5) * s
    hits = 0
    for x1 in u:
        for y1 in u:
            box = (x1, y1, x1 + w, y1 + h)
            px, py = np.meshgrid(pts, pts, indexing="xy")
            hits += bool(np.any(condition(px, py, box)))
    return hits / n ** 2


def _in_box(px, py, b):  # ultralytics select_candidates_in_gts: min(l, t, r, b) > eps
    return np.minimum.reduce([px - b[0], py - b[1], b[2] - px, b[3] - py]) > 1e-9


def _centre_sampling(r, s):  # mmdet FCOSHead: inside the box clipped to centre +- r*stride
    def cond(px, py, b):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0, y0 = max(cx - r * s, b[0]), max(cy - r * s, b[1])
        x1, y1 = min(cx + r * s, b[2]), min(cy + r * s, b[3])
        return np.minimum.reduce([px - x0, py - y0, x1 - px, y1 - py]) > 0
    return cond


def _simota(r, s):  # mmdet SimOTAAssigner: is_in_gts | is_in_cts
    def cond(px, py, b):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        cts = np.minimum.reduce([px - (cx - r * s), py - (cy - r * s), cx + r * s - px,
                                 cy + r * s - py]) > 0
        return _in_box(px, py, b) | cts
    return cond


def _fovea(sigma, s):  # mmdet FoveaHead: ceil(c - sigma*hw - .5) <= j <= floor(c + sigma*hw - .5)
    def cond(px, py, b):
        out = np.ones(px.shape, dtype=bool)
        for p, lo, hi in ((px, b[0], b[2]), (py, b[1], b[3])):
            c, half = (lo + hi) / 2 / s, (hi - lo) / 2 / s
            j = p / s - 0.5
            out &= (j >= np.ceil(c - sigma * half - 0.5)) & (j <= np.floor(c + sigma * half - 0.5))
        return out
    return cond


def _tal_floor(floor):  # ultralytics 8.4: sides under stride[1] enlarged about the centre
    def cond(px, py, b):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        w, h = max(b[2] - b[0], floor), max(b[3] - b[1], floor)
        return _in_box(px, py, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return cond


def _centernet_update(s):  # inside the box and within one stride of the centre's cell point
    def cond(px, py, b):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        dx, dy = int(cx / s) * s + s / 2, int(cy / s) * s + s / 2
        return _in_box(px, py, b) & (np.abs(px - dx) <= s) & (np.abs(py - dy) <= s)
    return cond


@pytest.mark.parametrize("w,h", [(4.0, 6.0), (8.0, 3.0), (12.0, 10.0), (2.5, 20.0)])
def test_positive_point_probability_matches_brute_force(w, h):
    s = 8.0
    cases = [(af.CandidateRule("in-box"), _in_box),
             (af.CandidateRule("centre-sampling", radius=1.5), _centre_sampling(1.5, s)),
             (af.CandidateRule("centre-sampling", radius=0.3), _centre_sampling(0.3, s)),
             (af.CandidateRule("box-or-centre", radius=2.5), _simota(2.5, s)),
             (af.CandidateRule("fovea", sigma=0.4), _fovea(0.4, s)),
             (af.CandidateRule("in-box"), _centernet_update(s)),
             (af.CandidateRule("in-box", floor=6.0), _tal_floor(6.0))]
    for rule, cond in cases:
        ours = float(rule.probability_2d(np.array([[w, h]]), (s, s))[0])
        assert _brute(cond, w, h, s) == pytest.approx(ours, abs=0.05), (rule, w, h)
    # a box is certain of a point exactly from one stride per side (in-box)
    assert af.CandidateRule("in-box").certain_side(s) == s
    assert af.CandidateRule("fovea", sigma=0.4).certain_side(s) == 20
    assert math.isinf(af.CandidateRule("centre-sampling", radius=0.3).certain_side(s))


def test_simota_with_a_small_radius_is_a_lower_bound():
    s, rule = 8.0, af.CandidateRule("box-or-centre", radius=0.3)
    ours = float(rule.probability_2d(np.array([[12.0, 2.0]]), (s, s))[0])
    assert _brute(_simota(0.3, s), 12.0, 2.0, s) >= ours - 0.02


# --------------------------------------------------------------------------- YOLOv8 / YOLO26


def test_yolov8_plan_ranges_unlearnable_and_remedies(run_cli, paths, coco_wh):
    code, out, err = run_cli("plan", str(paths["v8"]), "--boxes", str(paths["labels"]),
                             "--image-sizes", str(paths["sizes"]), NO_ERF, "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    jsonschema.validate(res, SCHEMAS["plan"])
    levels = res["anchor_free"]["levels"]
    # TAL: a grid point inside the box (side >= stride); DFL: each side <= 15 strides
    assert [lv["learnable_side"] for lv in levels] == [
        {"min": [8, 8], "max": [240, 240]}, {"min": [16, 16], "max": [480, 480]},
        {"min": [32, 32], "max": [960, 960]}]
    assert "DFL reg_max 16" in levels[0]["upper_bound"]
    w, h = coco_wh[:, 0], coco_wh[:, 1]
    small = int(np.sum((w < 8) | (h < 8)))
    counts = res["anchor_free"]["counts"]
    assert counts["boxes"] == len(coco_wh) == 928
    assert counts["small"] == small == 83 and counts["too_large"] == counts["gap"] == 0
    miss = float(np.sum(1 - np.minimum(w / 8, 1) * np.minimum(h / 8, 1)))
    assert counts["expected_without_positive"] == pytest.approx(miss)
    remedies = {r["key"]: r for r in res["anchor_free"]["remedies"]}
    assert remedies["add-p2"]["unlearnable"] == int(np.sum((w < 4) | (h < 4))) == 3
    assert remedies["add-p2"]["levels"][0]["stride"] == [4, 4]
    f = remedies["input"]["scale"]
    assert remedies["input"]["unlearnable"] == int(np.sum((w * f < 8) | (h * f < 8)) +
                                                   np.sum((w * f > 960) | (h * f > 960)))
    assert res["anchor_free"]["recommended"] == "add-p2"
    assert {w["code"] for w in res["warnings"]} >= {"AF301"}
    assert "AF302" not in {w["code"] for w in res["warnings"]}
    assert "unlearnable: 83 of 928 boxes" in err and "remedy (recommended): add P2" in err


def _header_jpeg(width: int, height: int) -> bytes:
    """A header-only JPEG (SOI, JFIF APP0, SOF0, EOI) of the given size: no pixels."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00"
    sof = (b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") +
           b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_acceptance_yolov8_on_an_ultralytics_dataset(tmp_path, run_cli, paths):
    """`anchorfit plan yolov8.yaml --boxes data.yaml`: COCO128's labels with generated
    header-only images of the listed sizes give the same boxes, ranges, counts and advice as
    the labels folder with the size table."""
    import csv
    import shutil

    images, labels = tmp_path / "images" / "train2017", tmp_path / "labels" / "train2017"
    images.mkdir(parents=True)
    shutil.copytree(paths["labels"], labels)
    with open(paths["sizes"], newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == "train2017":
                (images / row["image"]).write_bytes(_header_jpeg(int(row["width"]),
                                                                 int(row["height"])))
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: images/train2017\nnames:\n" +
        "".join(f"  {i}: c{i}\n" for i in range(80)))
    code, out, err = run_cli("plan", str(paths["v8"]), "--boxes", str(tmp_path / "data.yaml"),
                             NO_ERF, "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    code, ref_out, _ = run_cli("plan", str(paths["v8"]), "--boxes", str(paths["labels"]),
                               "--image-sizes", str(paths["sizes"]), NO_ERF, "--format", "json")
    ref = json.loads(ref_out)
    assert res["anchor_free"]["counts"] == ref["anchor_free"]["counts"]
    assert res["anchor_free"]["counts"]["unlearnable"] == 83
    assert [lv["learnable"] for lv in res["levels"]] == [lv["learnable"] for lv in ref["levels"]]
    assert res["anchor_free"]["recommended"] == "add-p2"
    assert "remedy (recommended): add P2 (stride 4)" in err


def test_yolov8_table_shows_learnable_sides(tmp_path, run_cli, paths):
    png = tmp_path / "boxes.png"  # an anchor-free plan has no anchors to draw: boxes only
    code, _, err = run_cli("plan", str(paths["v8"]), NO_ERF, "--boxes", str(paths["json"]),
                           "--plot-boxes", str(png))
    assert code == 0 and png.stat().st_size > 0, err
    code, out, _ = run_cli("plan", str(paths["v8"]), NO_ERF, "--format", "csv")
    assert code == 0
    assert "learnable side" in out.splitlines()[0]
    assert "16-480" in out and "grid point / DFL reach" in out


def test_yolo26_reg_max_1_is_unbounded(paths, coco_wh):
    p = plan(load_detector(str(paths["y26"])), wh=coco_wh)
    assert [lv.learnable["max"] for lv in p.levels] == [[math.inf, math.inf]] * 3
    assert all("unbounded" in lv.learnable["upper"] for lv in p.levels)
    assert p.anchor_free.counts["too_large"] == 0
    assert p.to_dict()["levels"][0]["learnable"]["max_side"] == [None, None]
    # reg_max 1 heads are Ultralytics 8.4's, whose TAL enlarges sides under stride[1] = 16 px:
    # no box is too small for a candidate (P3 and P4 take any size, P5 still needs 32 px)
    assert [lv.learnable["min"] for lv in p.levels] == [[0, 0], [0, 0], [32, 32]]
    assert p.anchor_free.counts["unlearnable"] == 0


def test_yolov8_notes_what_ultralytics_8_4_changes(v8, coco_wh):
    learn = af.analyse(af.specs_from_levels(v8.levels), coco_wh, v8.input_size)
    assert learn.counts["small"] == 83 and "unlearnable 0 instead of 83" in learn.notes[0]
    floored = af.analyse(af.specs_from_levels(v8.levels, tal_floor=True), coco_wh)
    assert floored.counts["unlearnable"] == 0


def test_small_reg_max_puts_boxes_beyond_reach(tmp_path, paths, coco_wh):
    src = paths["v8"].read_text()
    cfg = tmp_path / "yolov8_rm4.yaml"
    cfg.write_text("reg_max: 4\n" + src)
    det = load_detector(str(cfg))
    p = plan(det, wh=coco_wh)
    assert [lv.learnable["max"][0] for lv in p.levels] == [48, 96, 192]  # 2 * 3 * stride
    w, h = coco_wh[:, 0], coco_wh[:, 1]
    large = int(np.sum((w > 192) | (h > 192)))
    assert large > 0 and p.anchor_free.counts["too_large"] == large
    found = {f.code: f for f in p.warnings}
    assert found["AF302"].measured["boxes"] == large
    assert "AF304" in found  # reach 192 px < the 640 input
    rem = {r.key: r for r in p.anchor_free.remedies}
    need = max(np.max(w), np.max(h)) / 32
    assert rem["reg-max"].specs[0].reg_max == math.ceil(need / 2 + 1)
    assert rem["reg-max"].counts["too_large"] == 0
    assert rem["add-p6"].specs[-1].stride == (64.0, 64.0)
    assert rem["add-p6"].counts["too_large"] == int(np.sum((w > 384) | (h > 384)))
    # the stock yaml trips neither check
    stock = plan(load_detector(str(paths["v8"])), wh=coco_wh)
    assert not {"AF302", "AF304"} & {f.code for f in stock.warnings}


# --------------------------------------------------------------------------- mmdet / spec


def _fcos_point(lo, hi, inner):  # mmdet FCOSHead: a candidate and lo <= max(l,t,r,b) <= hi
    def cond(px, py, b):
        m = np.maximum.reduce([px - b[0], py - b[1], b[2] - px, b[3] - py])
        return inner(px, py, b) & (m > lo) & (m <= hi)
    return cond


@pytest.mark.parametrize("w,h", [(70.0, 70.0), (90.0, 40.0), (150.0, 20.0), (240.0, 250.0),
                                 (100.0, 100.0)])
def test_fcos_per_point_ranges_match_brute_force(w, h):
    s = 16.0
    for rule, inner in ((af.CandidateRule("in-box"), _in_box),
                        (af.CandidateRule("centre-sampling", radius=1.5),
                         _centre_sampling(1.5, s))):
        spec = af.LevelSpec("P4", (s, s), 64.0, 128.0, "max-ltrb", rule)
        ours = float(spec.probability(np.array([[w, h]]))[0])
        assert _brute(_fcos_point(64, 128, inner), w, h, s) == pytest.approx(ours, abs=0.05), \
            (rule.kind, w, h, ours)


def test_fcos_levels_overlap_per_point_and_a_real_gap(tmp_path, coco_wh):
    base = Path(__file__).resolve().parents[1] / "anchorfit" / "configs" / "fcos_r50_fpn.yaml"
    det = load_detector(str(base))
    learn = af.analyse(af.specs_from_levels(det.levels), coco_wh, det.input_size)
    # certain from lo + stride (a point near the box edge measures more than lo) up to
    # 2 hi - stride (a point within hi - side/2 of the centre); nominal 2 lo .. 2 hi
    assert [b["min"][0] for b in learn.bounds] == [8, 80, 160, 320, 640]
    assert [b["max"][0] for b in learn.bounds] == [120, 240, 480, 960, math.inf]
    assert "max(l,t,r,b) > 64" in learn.bounds[1]["lower"]
    assert learn.counts["gap"] == 0
    assert not any(f.code in ("AF303", "AF304") for f in af.findings(learn, det.input_size))
    # P4 from 160 (P5-P7 doubled): a box's points measure from max(w, h)/2 at its centre up to
    # max(w, h) at its edge, so boxes with max(w, h) in (128, 160] fit no level at any point
    gap = tmp_path / "fcos_gap.yaml"
    text = base.read_text()
    for old, new in (("[512, -1]", "[1024, -1]"), ("[256, 512]", "[512, 1024]"),
                     ("[128, 256]", "[256, 512]"), ("[64, 128]", "[160, 256]")):
        text = text.replace(f"anchor_free: {old}, head", f"anchor_free: {new}, head", 1)
    gap.write_text(text)
    det = load_detector(str(gap))
    assert [lv.anchor_free_range[0] for lv in det.levels] == [0, 160, 256, 512, 1024]
    learn = af.analyse(af.specs_from_levels(det.levels), coco_wh, det.input_size)
    found = {f.code: f for f in af.findings(learn, det.input_size)}
    longer = np.maximum(coco_wh[:, 0], coco_wh[:, 1])
    n = int(np.sum((longer > 128) & (longer <= 160)))
    assert n > 0 and learn.counts["gap"] == n and found["AF303"].measured["boxes"] == n
    assert "(64, 160]" in found["AF304"].message
    rem = {r.key: r for r in learn.remedies}
    assert rem["ranges"].counts["gap"] == 0 and rem["ranges"].gained >= n - 5


def test_fovea_needs_a_stride_over_sigma(paths, coco_wh):
    det = load_mmdet(paths["mmdet"] / "foveabox" / "fovea_r50_fpn_4xb4-1x_coco.py")
    learn = af.analyse(af.specs_from_levels(det.levels))
    assert learn.bounds[0]["min"] == [20, 20]  # stride 8 / sigma 0.4
    assert learn.specs[0].measure == "sqrt-area"
    learn = af.analyse(learn.specs, coco_wh, det.input_size)
    p2 = next(r for r in learn.remedies if r.key == "add-p2")
    assert "from 10 px" in p2.text and p2.specs[0].stride == (4.0, 4.0)  # 4 / 0.4


def test_centre_sampling_radius_check_both_ways(tmp_path, paths):
    cfg = paths["mmdet"] / "fcos" / \
        "fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py"
    ok = audit(load_mmdet(cfg), only=["AF305"])
    assert "AF305" not in ok.codes()
    narrow = tmp_path / "fcos_narrow.py"
    narrow.write_text(f"_base_ = '{cfg}'\nmodel = dict(bbox_head=dict(center_sample_radius=0.4))\n")
    bad = audit(load_mmdet(narrow), only=["AF305"])
    assert [f.level for f in bad.findings] == ["P3", "P4", "P5", "P6", "P7"]
    assert bad.findings[0].severity == "error"


def test_simota_gives_every_box_a_point(paths, coco_wh):
    det = load_mmdet(paths["mmdet"] / "yolox" / "yolox_s_8xb8-300e_coco.py")
    learn = af.analyse(af.specs_from_levels(det.levels), coco_wh, det.input_size)
    assert learn.counts["unlearnable"] == 0 and learn.bounds[0]["min"] == [0, 0]
    rtm = load_mmdet(paths["mmdet"] / "rtmdet" / "rtmdet_s_8xb32-300e_coco.py")
    learn = af.analyse(af.specs_from_levels(rtm.levels), coco_wh, rtm.input_size)
    assert learn.counts["small"] == int(np.sum((coco_wh[:, 0] < 8) | (coco_wh[:, 1] < 8)))


# --------------------------------------------------------------------------- audit / compare


def test_audit_runs_anchor_free_checks_only_on_anchor_free_detectors(shipped_data, v8, coco_wh):
    report = audit(v8, coco_wh)
    assert "AF301" in report.codes()
    assert "AF301" not in audit(v8).codes()  # needs boxes
    anchors = audit(load_detector("yolov3"), coco_wh)
    assert not {c for c in anchors.codes() if c.startswith("AF3")}
    # YOLOv5's 'anchors: 3' levels have no anchors yet but are not anchor-free
    hub = load_detector(str(shipped_data / "configs" / "yolov5" / "models" / "hub" /
                            "yolov5-p6.yaml"))
    assert all(lv.anchor_free for lv in hub.levels) and not af.is_anchor_free(hub)
    assert not {c for c in audit(hub, coco_wh).codes() if c.startswith("AF3")}


def test_compare_reports_assignment_coverage_by_bucket(run_cli, paths, v8):
    code, out, err = run_cli("compare", str(paths["v8"]), "--boxes", str(paths["json"]),
                             "--format", "json", "--restarts", "1")
    assert code == 0, err
    jsonschema.validate(json.loads(out), SCHEMAS["compare"])
    cov = json.loads(out)["coverage"]
    wh = prepare_boxes(paths["json"], spec=resize_spec_for(v8, None, 0),
                       min_size=2.0).boxes.wh().astype(np.float64)
    area = wh[:, 0] * wh[:, 1]
    ok = (wh[:, 0] >= 8) & (wh[:, 1] >= 8)
    ok2 = (wh[:, 0] >= 4) & (wh[:, 1] >= 4)
    small = area < 32 ** 2
    assert cov["current"]["small"]["covered"] == int(np.sum(ok & small))
    assert cov["current"]["all"]["covered"] == int(ok.sum())
    assert cov["remedy"] == "add-p2"
    assert cov["recommended"]["all"]["covered"] == int(ok2.sum())
    assert cov["current"]["large"]["covered"] == cov["current"]["large"]["boxes"]
    code, out, _ = run_cli("compare", str(paths["v8"]), "--boxes", str(paths["json"]),
                           "--restarts", "1")
    assert "assignment coverage" in out and "recommended (add-p2)" in out
