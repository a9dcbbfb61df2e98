"""Issue 12 item 1: hostile or broken values in real detector configs give one clear message
(file, line or key), exit status 2 and no traceback; valid oddities (a UTF-8 BOM, an mmdet
``model =`` past the first 64 KiB) are accepted.

Every case copies a real config (``shared/data/configs`` or the package's own spec files) into
``tmp_path``, changes one value, and runs the CLI on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "anchorfit" / "configs"


@dataclass(frozen=True)
class Case:
    id: str
    src: str  # relative to shared/data/configs, or "spec:NAME" for anchorfit/configs/NAME
    old: str  # a regular expression matched once in the file
    new: str
    expect: str  # a regular expression the message must match (names the key or the value)
    cmd: str = "show"
    line: bool = True  # the message names the line


DARKNET_TINY = "darknet/pjreddie/yolov3-tiny.cfg"
YOLOV5S = "yolov5/models/yolov5s.yaml"
CAFFE_SSD = "caffe/ssd300_vgg_voc0712/deploy.prototxt"
MMDET_RETINA = "mmdet/_base_/models/retinanet_r50_fpn.py"
D2_RETINA = "detectron2/Base-RetinaNet.yaml"
SPEC_RETINA = "spec:retinanet_r50_fpn.yaml"
SPEC_TINY = "spec:yolov3-tiny.yaml"

CASES = [
    # ---------------------------------------------------------------- Darknet
    Case("darknet-size-inf", DARKNET_TINY, r"size=3", "size=inf", r"size"),
    Case("darknet-size-3.7", DARKNET_TINY, r"size=3", "size=3.7", r"size.*integer"),
    Case("darknet-size-1e9", DARKNET_TINY, r"size=3", "size=1e9", r"size.*integer"),
    Case("darknet-filters-neg", DARKNET_TINY, r"filters=16", "filters=-1", r"filters"),
    Case("darknet-reorg-stride0", "darknet/pjreddie/yolov2.cfg", r"\[reorg\]\nstride=2",
         "[reorg]\nstride=0", r"stride"),
    Case("darknet-deconv-stride0", DARKNET_TINY, r"\[upsample\]\nstride=2",
         "[deconvolutional]\nstride=0", r"stride"),
    Case("darknet-anchors-zero-audit", DARKNET_TINY, r"anchors = 10,14,  23,27",
         "anchors = 0,0,  23,27", r"anchors", cmd="audit"),
    Case("darknet-anchors-nan", DARKNET_TINY, r"anchors = 10,14", "anchors = nan,14",
         r"anchors"),
    Case("darknet-anchors-inf", DARKNET_TINY, r"anchors = 10,14", "anchors = inf,14",
         r"anchors"),
    Case("darknet-anchors-negative", DARKNET_TINY, r"anchors = 10,14", "anchors = -10,14",
         r"anchors"),
    # ---------------------------------------------------------------- YOLOv5
    Case("yolov5-depth-nan", YOLOV5S, r"depth_multiple: 0.33", "depth_multiple: .nan",
         r"depth_multiple"),
    Case("yolov5-upsample-zero", YOLOV5S, r"nn.Upsample, \[None, 2, \"nearest\"\]",
         "nn.Upsample, [None, 0, \"nearest\"]", r"(scale|Upsample)"),
    Case("yolov5-channels-zero", YOLOV5S, r"\[-1, 1, Conv, \[128, 3, 2\]\]",
         "[-1, 1, Conv, [0, 3, 2]]", r"(channel|Conv)"),
    Case("yolov5-channels-negative", YOLOV5S, r"\[-1, 1, Conv, \[128, 3, 2\]\]",
         "[-1, 1, Conv, [-128, 3, 2]]", r"(channel|Conv)"),
    Case("yolov5-anchors-minus3", YOLOV5S,
         r"anchors:\n  - \[10, 13, 16, 30, 33, 23\].*\n  - .*\n  - .*\n", "anchors: -3\n",
         r"anchors"),
    Case("yolov5-anchors-zero", YOLOV5S, r"\[10, 13, 16, 30", "[0, 13, 16, 30", r"anchors"),
    Case("yolov5-anchors-nan", YOLOV5S, r"\[10, 13, 16, 30", "[.nan, 13, 16, 30", r"anchors"),
    Case("yolov5-anchors-negative", YOLOV5S, r"\[10, 13, 16, 30", "[-10, 13, 16, 30",
         r"anchors"),
    # ---------------------------------------------------------------- Caffe
    Case("caffe-bad-escape", CAFFE_SSD, r'name: "conv1_1"', r'name: "\x"', r"(escape|\\x)"),
    Case("caffe-aspect-ratio-zero", CAFFE_SSD, r"aspect_ratio: 2", "aspect_ratio: 0",
         r"aspect_ratio"),
    Case("caffe-kernel-abc", CAFFE_SSD, r"kernel_size: 3", "kernel_size: abc", r"kernel_size"),
    Case("caffe-kernel-2.5", CAFFE_SSD, r"kernel_size: 3", "kernel_size: 2.5",
         r"kernel_size.*integer"),
    Case("caffe-step-zero", CAFFE_SSD, r"step: 8", "step: 0", r"step"),
    Case("caffe-max-below-min", CAFFE_SSD, r"max_size: 60.0", "max_size: 20.0", r"max_size"),
    Case("caffe-min-size-nan", CAFFE_SSD, r"min_size: 30.0", "min_size: nan", r"min_size"),
    Case("caffe-min-size-negative", CAFFE_SSD, r"min_size: 30.0", "min_size: -30.0",
         r"min_size"),
    Case("caffe-min-size-zero", CAFFE_SSD, r"min_size: 30.0", "min_size: 0", r"min_size"),
    # ---------------------------------------------------------------- anchorfit spec
    Case("spec-ratios-zero", SPEC_RETINA, r"ratios: \[0.5, 1.0, 2.0\]", "ratios: [0]",
         r"ratios"),
    Case("spec-anchor-nan", SPEC_TINY, r"\[\[81, 82\]", "[[.nan, 82]", r"anchors"),
    Case("spec-anchor-inf", SPEC_TINY, r"\[\[81, 82\]", "[[.inf, 82]", r"anchors"),
    Case("spec-anchor-zero", SPEC_TINY, r"\[\[81, 82\]", "[[0, 82]", r"anchors"),
    Case("spec-anchor-negative", SPEC_TINY, r"\[\[81, 82\]", "[[-81, 82]", r"anchors"),
    Case("spec-octave-nan", SPEC_RETINA, r"octave_base_scale: 4", "octave_base_scale: .nan",
         r"octave_base_scale"),
    Case("spec-octave-inf", SPEC_RETINA, r"octave_base_scale: 4", "octave_base_scale: .inf",
         r"octave_base_scale"),
    Case("spec-upsample-cubicspline", "spec:faster_rcnn_r50_fpn.yaml",
         r"type: upsample, scale: 2", "type: upsample, scale: 2, mode: cubicspline", r"mode"),
    Case("spec-mask-99", SPEC_TINY, r"mask: \[3, 4, 5\]", "mask: [3, 4, 99]", r"mask"),
    Case("spec-n-zero", SPEC_RETINA, r"bottleneck_down, n: 3", "bottleneck_down, n: 0",
         r"'n'|\bn\b"),
    Case("spec-ssd-min-zero", "spec:ssd300_vgg16.yaml", r"ssd: \{min: \d+", "ssd: {min: 0",
         r"ssd"),
    Case("spec-ssd-max-below-min", "spec:ssd300_vgg16.yaml", r"max: \d+", "max: 1",
         r"ssd.*below"),
    Case("spec-step-nan", SPEC_TINY, r"step: 32", "step: .nan", r"step"),
    # ---------------------------------------------------------------- mmdet
    Case("mmdet-ratios-zero", MMDET_RETINA, r"ratios=\[0.5, 1.0, 2.0\]", "ratios=[0.0]",
         r"ratios"),
    Case("mmdet-strides-zero", MMDET_RETINA, r"strides=\[8, 16", "strides=[0, 16", r"strides"),
    Case("mmdet-strides-negative", MMDET_RETINA, r"strides=\[8, 16", "strides=[-8, 16",
         r"strides"),
    Case("mmdet-out-indices-10", MMDET_RETINA, r"out_indices=\(0, 1, 2, 3\)",
         "out_indices=(0, 1, 2, 10)", r"out_indices"),
    Case("mmdet-out-indices-negative", MMDET_RETINA, r"out_indices=\(0, 1, 2, 3\)",
         "out_indices=(-1, 1, 2, 3)", r"out_indices"),
    Case("mmdet-octave-nan", MMDET_RETINA, r"octave_base_scale=4",
         "octave_base_scale=float('nan')", r"octave_base_scale"),
    Case("mmdet-octave-negative", MMDET_RETINA, r"octave_base_scale=4",
         "octave_base_scale=-4", r"octave_base_scale"),
    # ---------------------------------------------------------------- detectron2
    Case("d2-model-alone", D2_RETINA, r"(?s)MODEL:.*\Z", "MODEL:\n", r"MODEL"),
    Case("d2-aspect-ratio-zero", D2_RETINA, r"  ANCHOR_GENERATOR:\n",
         "  ANCHOR_GENERATOR:\n    ASPECT_RATIOS: [[0.0]]\n", r"ASPECT_RATIOS"),
    Case("d2-aspect-ratio-string", D2_RETINA, r"  ANCHOR_GENERATOR:\n",
         "  ANCHOR_GENERATOR:\n    ASPECT_RATIOS: [['wide']]\n", r"ASPECT_RATIOS"),
    Case("d2-sizes-string", D2_RETINA, r"    SIZES: .*\n", "    SIZES: [['big']]\n",
         r"SIZES"),
    Case("d2-sizes-negative", D2_RETINA, r"    SIZES: .*\n",
         "    SIZES: [[-32], [64], [128], [256], [512]]\n",
         r"SIZES"),
    Case("d2-sizes-nan", D2_RETINA, r"    SIZES: .*\n",
         "    SIZES: [[.nan], [64], [128], [256], [512]]\n",
         r"SIZES"),
    Case("d2-depth-string", D2_RETINA, r"  RESNETS:\n", "  RESNETS:\n    DEPTH: fifty\n",
         r"DEPTH"),
    Case("d2-iou-thresholds-string", D2_RETINA, r"IOU_THRESHOLDS: \[0.4, 0.5\]",
         "IOU_THRESHOLDS: [low, high]", r"IOU_THRESHOLDS"),
    Case("d2-in-features-number", D2_RETINA, r"  FPN:\n    IN_FEATURES: .*\n",
         "  FPN:\n    IN_FEATURES: 5\n", r"IN_FEATURES"),
]


def _source(src: str, config_data: Path | None) -> Path:
    if src.startswith("spec:"):
        return SPEC / src[5:]
    assert config_data is not None
    return config_data / "configs" / src


def _mutated(case: Case, tmp_path: Path, config_data: Path | None) -> Path:
    original = _source(case.src, config_data)
    text = original.read_text(encoding="utf-8")
    new, count = re.subn(case.old, lambda _m: case.new, text, count=1)
    assert count == 1, f"{case.id}: pattern {case.old!r} not in {original}"
    assert new != text
    target = tmp_path / original.name
    target.write_text(new, encoding="utf-8")
    return target


@pytest.fixture
def data(request: pytest.FixtureRequest) -> Path | None:
    case: Case = request.node.callspec.params["case"]
    if case.src.startswith("spec:"):
        return None
    return request.getfixturevalue("config_data")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_value_is_one_clear_error(case: Case, tmp_path: Path, data: Path | None,
                                          run_cli) -> None:
    path = _mutated(case, tmp_path, data)
    code, out, err = run_cli(case.cmd, str(path))
    assert "Traceback" not in err, err
    assert code == 2, (code, out[-500:], err)
    message = err.strip()
    assert str(path) in message or path.name in message, message
    if case.line:
        assert re.search(re.escape(path.name) + r":\d+", message), message
    assert re.search(case.expect, message), message


def _shows_like(src: Path, target: Path, run_cli) -> None:
    """``anchorfit show -f json`` reads ``target`` (a rewritten copy of ``src``) as ``src``."""
    plain = run_cli("show", str(src), "-f", "json")
    code, out, err = run_cli("show", str(target), "-f", "json")
    assert code == 0, err
    assert out == plain[1].replace(str(src), str(target))


@pytest.mark.parametrize("rel, name", [(DARKNET_TINY, "yolov3-tiny.cfg"),
                                       (YOLOV5S, "yolov5s.yaml")], ids=["cfg", "yolov5-yaml"])
def test_file_with_utf8_bom_is_read(rel: str, name: str, config_data: Path, tmp_path: Path,
                                    run_cli) -> None:
    src = config_data / "configs" / rel
    target = tmp_path / name
    target.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    _shows_like(src, target, run_cli)


def test_mmdet_model_after_64_kib_is_read(config_data: Path, tmp_path: Path, run_cli) -> None:
    src = config_data / "configs" / MMDET_RETINA
    target = tmp_path / src.name
    padding = "".join(f"# padding line {i:05d} so that model = starts past 64 KiB\n"
                      for i in range(1500))
    assert len(padding) > 1 << 16
    target.write_text(padding + src.read_text(encoding="utf-8"), encoding="utf-8")
    _shows_like(src, target, run_cli)


def test_darknet_duplicate_key_warns_and_keeps_the_first(config_data: Path, tmp_path: Path) -> None:
    """Darknet's option_find returns the first match and real cfgs repeat keys (yolo9000.cfg
    repeats batch=); anchorfit keeps the first value too and says so in a note."""
    from anchorfit.load import load_detector

    src = config_data / "configs" / DARKNET_TINY
    text = src.read_text(encoding="utf-8")
    pool = "[maxpool]\nsize=2\nstride=2\n"
    mutated = text.replace(pool, pool + "stride=1\n", 1)
    assert mutated != text
    target = tmp_path / src.name
    target.write_text(mutated, encoding="utf-8")
    line = mutated[:mutated.index("[maxpool]\nsize=2\nstride=2\nstride=1")].count("\n") + 4
    plain, dup = load_detector(str(src)), load_detector(str(target))
    steps = [(32.0, 32.0), (16.0, 16.0)]
    assert [lv.step for lv in dup.levels] == [lv.step for lv in plain.levels] == steps
    assert any(n.startswith(f"{target}:{line}: [maxpool] stride=1 repeats line {line - 1}")
               for n in dup.notes), dup.notes


@pytest.mark.parametrize("src, layer, written", [
    (SPEC_TINY, "maxpool9", "name: maxpool9"),
    (CAFFE_SSD, "conv8_2", 'name: "conv8_2"'),
    (YOLOV5S, "model.16", "Concat"),
], ids=["spec", "caffe", "yolov5"])
def test_rf_engine_error_names_the_line_that_wrote_the_layer(src: str, layer: str, written: str,
                                                             request: pytest.FixtureRequest,
                                                             run_cli) -> None:
    """An input too small for the network fails in the RF engine, on an IR node; the message
    starts with the file and line of the entry that wrote that node (``Node.origin``)."""
    data = None if src.startswith("spec:") else request.getfixturevalue("config_data")
    path = _source(src, data)
    code, _, err = run_cli("show", str(path), "--input", "20")
    assert code == 2 and "Traceback" not in err, err
    match = re.search(re.escape(str(path)) + r":(\d+): layer '([^']+)'", err)
    assert match, err
    assert match.group(2) == layer
    lines = path.read_text(encoding="utf-8").splitlines()
    line = int(match.group(1))
    assert any(written in text for text in lines[line - 1:line + 2]), lines[line - 1:line + 2]


SEEDS = Path(__file__).parent / "data" / "fuzz_seeds"


@pytest.mark.parametrize("seed, old, new, expected", [
    # found by the strict fuzz run (tests/test_fuzz.py), each once a traceback
    ("yolov3-tiny.cfg", "filters=512\nsize=3\nstride=1", "filters=512\nsize=3\nstride=" + "9" * 60,
     "stride"),
    ("mmdet_retinanet_r50_fpn.py", "strides=[8, 16", "strides=[[], 16", "a stride is a number"),
    ("mmdet_retinanet_r50_fpn.py", "stacked_convs=4", "stacked_convs=100000000", "stacked_convs"),
    ("detectron2_Base-RetinaNet.yaml", "  META_ARCHITECTURE:", "  []:", "mapping key"),
    ("detectron2_Base-RetinaNet.yaml", '    NAME: "build_retinanet_resnet_fpn_backbone"\n', "",
     "must be a mapping"),
], ids=["darknet-huge-stride", "mmdet-empty-stride", "mmdet-huge-conv-count", "yaml-list-key", "detectron2-empty-section"])
def test_fuzz_findings_are_clear_errors(seed, old, new, expected, tmp_path, run_cli):
    text = (SEEDS / seed).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / seed.replace("detectron2_", "").replace("mmdet_", "")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err
    assert expected in err and path.name in err


def test_spec_head_kernel_must_be_a_kernel(tmp_path, run_cli):
    """Found by the strict fuzz run: ``head: [[]]`` or ``head: [null]`` crashed in head_convs."""
    text = (Path(__file__).resolve().parents[1] / "anchorfit" / "configs" / "s3fd.yaml").read_text()
    for bad in ("[[]]", "[null]", "[0]"):
        path = tmp_path / "s3fd.yaml"
        path.write_text(text.replace("sizes: [16], head: [3]}", f"sizes: [16], head: {bad}}}"))
        code, _, err = run_cli("show", str(path))
        assert code == 2 and "Traceback" not in err and "head kernel" in err, bad
        assert "s3fd.yaml:" in err


@pytest.mark.parametrize("old, new, expected", [
    ("[10, 13, 16, 30", "[1" + "0" * 400 + ", 13, 16, 30", "anchors level 0"),
    ("[-1, 1, Conv, [64, 6, 2, 2]]", "[-1, 1" + "0" * 400 + ", Conv, [64, 6, 2, 2]]", "repeat count"),
], ids=["anchor-past-float-range", "repeat-past-float-range"])
def test_yolov5_ints_past_float_range(old, new, expected, shipped_data, tmp_path, run_cli):
    """Found by the strict fuzz run: integers too large for a float raised OverflowError."""
    text = (shipped_data / "configs/yolov5/models/yolov5s.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "yolov5s.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err and expected in err and "yolov5s.yaml:" in err



def show_edited_seed(run_cli, tmp_path: Path, old: str, new: str, name: str = "retinanet.py"
                     ) -> str:
    """``anchorfit show`` on the mmdet fuzz seed with ``old`` replaced once by ``new``: asserts
    exit 2, nothing on stdout and no traceback, and returns stderr (the message)."""
    text = (SEEDS / "mmdet_retinanet_r50_fpn.py").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, out, err = run_cli("show", str(path))
    assert (code, out) == (2, "") and "Traceback" not in err, err
    return err

@pytest.mark.parametrize("old, new, expected", [
    # found by the strict fuzz census of branch fuzz-b, each once a traceback in mmdet.py/the engine
    ("start_level=1", "start_level=" + "1" + "0" * 40,
     "retinanet.py:24: model.neck.start_level: FPN: start_level 1" + "0" * 40
     + " is past the backbone's 4 outputs (levels 0..3)"),
    ("start_level=1", "start_level=None", "retinanet.py:24: model.neck.start_level: None is not"),
    ("start_level=1,", "start_level=2,\n        end_level=1,",
     "retinanet.py:25: model.neck.end_level: FPN: end_level 1 is before start_level 2"),
    ("num_outs=5", "num_outs={}", "retinanet.py:26: model.neck.num_outs: {} is not an integer"),
    ("pad_size_divisor=32", "pad_size_divisor=" + "1" + "0" * 40,
     "retinanet.py:9: model.data_preprocessor.pad_size_divisor: pad_size_divisor 1" + "0" * 40
     + " is beyond anchorfit's limit of 65536"),
    ("pos_iou_thr=0.5", "pos_iou_thr={}",
     "model.train_cfg.assigner.pos_iou_thr: {} is not a number"),
], ids=["fpn-start-huge", "fpn-start-none", "fpn-end-before-start", "fpn-num-outs-dict",
        "pad-divisor-huge", "iou-thr-dict"])
def test_mmdet_fuzz_b_findings(old, new, expected, tmp_path, run_cli):
    assert expected in show_edited_seed(run_cli, tmp_path, old, new)


@pytest.mark.parametrize("extra, expected", [
    # static sweep of branch fuzz-b: a hang (10**8 head convs), an engine error without the file
    # and a ValueError traceback, before each value went through validate with its key
    ("  RETINANET:\n    NUM_CONVS: 100000000\n",
     "retina.yaml:12: MODEL.RETINANET.NUM_CONVS: NUM_CONVS 100000000 is beyond anchorfit's limit "
     "of 1000"),
    ("INPUT:\n  MIN_SIZE_TEST: 100000000\n",
     "retina.yaml:12: INPUT.MIN_SIZE_TEST: MIN_SIZE_TEST 100000000 is beyond anchorfit's limit "
     "of 65536"),
    ("  RETINANET:\n    NUM_CLASSES: abc\n",
     "retina.yaml:12: MODEL.RETINANET.NUM_CLASSES: 'abc' is not a number"),
], ids=["num-convs-huge", "min-size-huge", "num-classes-word"])
def test_detectron2_fuzz_b_findings(extra, expected, tmp_path, run_cli):
    head = (SEEDS / "detectron2_Base-RetinaNet.yaml").read_text(encoding="utf-8").splitlines(True)
    path = tmp_path / "retina.yaml"
    path.write_text("".join(head[:10]) + extra, encoding="utf-8")
    code, out, err = run_cli("show", str(path))
    assert (code, out) == (2, "") and "Traceback" not in err, err
    assert expected in err, err


def test_mmdet_point_head_float_overflow_is_one_error(tmp_path, run_cli):
    """Static sweep of fuzz-b: a 1024-bit integer where a point head reads a float raised
    OverflowError past the reader's (ValueError, KeyError, TypeError) net."""
    err = show_edited_seed(run_cli, tmp_path, "type='RetinaHead',",
                           "type='FCOSHead', center_sampling=True, "
                           "center_sample_radius=(2**1023 - 1) * 2 + 1,", "fcos.py")
    assert "fcos.py:" in err and "model.bbox_head: int too large to convert to float" in err, err


@pytest.mark.parametrize("old, new, expected", [
    # strict fuzz census of fuzz-b: an IndexError in the generator and Python's own TypeError text
    ("strides=[8, 16", "strides=['7', 16",
     "retinanet.py:38: model.bbox_head.anchor_generator.strides: '7' is a string, not a number"),
    ("stacked_convs=4", "stacked_convs=None",
     "retinanet.py:31: model.bbox_head.stacked_convs: None is not an integer"),
], ids=["generator-stride-string", "stacked-convs-none"])
def test_mmdet_head_fuzz_b_findings(old, new, expected, tmp_path, run_cli):
    assert expected in show_edited_seed(run_cli, tmp_path, old, new)


def test_mmdet_scales_per_octave_is_capped(tmp_path, run_cli):
    """Strict fuzz census of fuzz-b: scales_per_octave=1e9 built 10**9 anchor scales (a hang)."""
    err = show_edited_seed(run_cli, tmp_path, "scales_per_octave=3", "scales_per_octave=1e9")
    assert ("retinanet.py:36: model.bbox_head.anchor_generator.scales_per_octave: "
            "scales_per_octave 1000000000 is beyond anchorfit's limit of 1000") in err, err


@pytest.mark.parametrize("old, new, expected", [
    # strict fuzz census of fuzz-b: the type name went into the line-finding regex unescaped
    ("type='FPN'", "type='((FPN'", "retinanet.py:21: model.neck: neck type '((FPN' is not"),
    ("type='ResNet'", "type='Res[Net'", "retinanet.py:11: model.backbone: backbone type 'Res[Net'"),
], ids=["neck", "backbone"])
def test_mmdet_type_with_regex_characters(old, new, expected, tmp_path, run_cli):
    assert expected in show_edited_seed(run_cli, tmp_path, old, new)


@pytest.mark.parametrize("neck, expected", [
    # static sweep of fuzz-b: these lists went raw into the graph builder / int()
    ("type='SSDNeck', level_strides=(2, None),",
     "retinanet.py:21: model.neck.level_strides: None is not an integer"),
    ("type='SSDNeck', level_paddings=7,",
     "retinanet.py:21: model.neck.level_paddings: expected a list of integers, got 7"),
    ("type='CTResNetNeck', num_deconv_kernels=(4, 'x', 4),",
     "retinanet.py:21: model.neck.num_deconv_kernels: 'x' is not a number"),
], ids=["ssd-stride-none", "ssd-paddings-int", "ct-kernel-word"])
def test_mmdet_neck_lists_are_checked(neck, expected, tmp_path, run_cli):
    assert expected in show_edited_seed(run_cli, tmp_path, "type='FPN',", neck)


def test_mmdet_point_head_stride_written_as_text(tmp_path, run_cli):
    """Static sweep of fuzz-b: a stride '8' was indexed as a (w, h) pair (IndexError)."""
    err = show_edited_seed(run_cli, tmp_path, "type='RetinaHead',",
                           "type='FCOSHead', strides=['8', 16, 32, 64, 128],", "fcos.py")
    assert "fcos.py:28: model.bbox_head: '8': a stride is a number or a (w, h) pair" in err, err


@pytest.mark.parametrize("spp, expected", [
    # static sweep of fuzz-b: int() of each spp kernel, tuple() of the value, raw
    ("(5, None, 13)", "csp.py:11: model.backbone.spp_kernel_sizes: None is not an integer"),
    ("7", "csp.py:11: model.backbone.spp_kernel_sizes: CSPNeXt: spp_kernel_sizes must be a list"),
], ids=["none-kernel", "not-a-list"])
def test_mmdet_csp_spp_kernels_are_checked(spp, expected, tmp_path, run_cli):
    assert expected in show_edited_seed(run_cli, tmp_path, "type='ResNet',",
                                        f"type='CSPNeXt', spp_kernel_sizes={spp},", "csp.py")


@pytest.mark.parametrize("fmt, text, key", [
    ("m.py", "_base_ = './{name}.py'\nmodel = dict(type='RetinaNet')\n", "_base_"),
    ("d2.yaml", '_BASE_: "{name}.yaml"\nMODEL:\n  META_ARCHITECTURE: RetinaNet\n', "_BASE_"),
    ("s.yaml", 'base: "{name}.yaml"\n', "base"),
])
@pytest.mark.parametrize("name, why", [("9" * 400, "File name too long"),
                                       ("a\\x00b", "NUL byte")])
def test_base_paths_the_os_cannot_look_up(tmp_path, fmt, text, key, name, why):
    """A base named past NAME_MAX made ``Path.is_file()`` raise OSError (found by the fuzz
    suite's mmdet FCOS target); a NUL byte (written as an escape) is refused the same way. The
    reader names its file, line and key."""
    from anchorfit.errors import FormatError
    from anchorfit.load import load_detector

    path = tmp_path / fmt
    if fmt.endswith(".yaml"):
        name = name.replace("\\x00", "\\0")  # YAML's escape for NUL in a quoted string
    path.write_text(text.format(name=name))
    with pytest.raises(FormatError) as info:
        load_detector(path)
    message = str(info.value)
    assert f"{fmt}:1" in message and key in message and why in message
