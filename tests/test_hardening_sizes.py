"""Issue 12: sizes a hostile file can ask the RF engine for, and the values the strict fuzz runs
(tests/test_fuzz.py, darknet/caffe/spec/yolov5 targets) found escaping as tracebacks.

An input side of 10⁸ made the engine allocate gigabytes and take 20+ s; a 10⁴⁰ one crashed in
numpy. Every input side is now refused past ``MAX_MAP_SIDE`` at the line that wrote it, every
feature map past it in the engine, and a window of tens of thousands of taps is read through a
sparse table instead of one numpy pass per tap (checked here against a brute force).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from anchorfit.rf import engine
from anchorfit.safeinput import MAX_MAP_SIDE

REPO = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).parent / "data" / "fuzz_seeds"
TINY_SPEC = REPO / "anchorfit" / "configs" / "yolov3-tiny.yaml"
S3FD_SPEC = REPO / "anchorfit" / "configs" / "s3fd.yaml"


def _mutated(src: Path, old: str, new: str, tmp_path: Path, name: str | None = None) -> Path:
    text = src.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / (name or src.name)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("src, old, new, expected, at", [
    (SEEDS / "yolov3-tiny.cfg", "width=416", "width=100000000",
     "input size 100000000 is beyond anchorfit's limit of 65536", "width=100000000"),
    (SEEDS / "yolov3-tiny.cfg", "height=416", "height=" + "9" * 60,
     "beyond anchorfit's limit of 65536", "height=999"),
    (SEEDS / "s3fd_deploy.prototxt", "dim: 640", "dim: 100000000",
     "input size 100000000 is beyond anchorfit's limit of 65536", "dim:"),
    (TINY_SPEC, "input: 416", "input: 1000000000",
     "'input' 1000000000 is beyond anchorfit's limit of 65536", "input: 1000000000"),
    (TINY_SPEC, "input: 416", "input: [416, .inf]", "'input' must be a size", "input: [416"),
    (TINY_SPEC, "input: 416", "input: [416.5, 416]", "'input' must be a size", "input: [416"),
    (TINY_SPEC, "ignore: 0.7}", "ignore: abc}", "assigner: 'abc' is not a number", "ignore: abc"),
    (S3FD_SPEC, "assigner: {kind: iou, pos: 0.35, neg: 0.35",
     "assigner: {kind: iou, pos: {a: 1}, neg: 0.35", "assigner: {'a': 1} is not a number",
     "pos: {a: 1}"),
    (TINY_SPEC, "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}",
     "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}\n"
     "  - {name: up22, type: upsample, scale: 4096}",
     "layer 'up22' (upsample nearest x4096): feature map size on the y axis 106496 is beyond "
     "anchorfit's limit of 65536", "name: up22"),
], ids=["darknet-width-1e8", "darknet-height-huge", "caffe-dim-1e8", "spec-input-1e9",
        "spec-input-inf", "spec-input-fraction", "spec-assigner-word", "spec-assigner-mapping",
        "spec-upsample-past-limit"])
def test_hostile_size_or_value_is_one_clear_error(src, old, new, expected, at, tmp_path,
                                                  run_cli):
    """Each once a traceback (ValueError 'Maximum allowed size exceeded', OverflowError, ...)
    or 20 s and gigabytes; now exit 2 naming the file and the line that wrote the value."""
    if not src.exists():
        pytest.skip(f"{src} absent")
    path = _mutated(src, old, new, tmp_path)
    if "up22" in new:  # hang a level on the new layer so the engine reaches it
        path.write_text(path.read_text().replace("from: conv21, step: 16", "from: up22, step: 16"))
    code, out, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, (code, err)
    assert expected in err, err
    match = re.search(re.escape(path.name) + r":(\d+):", err)
    assert match, err
    line = path.read_text(encoding="utf-8").splitlines()[int(match.group(1)) - 1]
    assert at in line, (line, err)


def test_largest_input_side_is_still_read(tmp_path, run_cli):
    """The limit refuses only what is past it: the spec at MAX_MAP_SIDE runs, and its P5 RF is
    the one at 416 (318, research/rf_tools.md 2.5) since the RF does not depend on the size."""
    path = _mutated(TINY_SPEC, "input: 416", f"input: {MAX_MAP_SIDE}", tmp_path)
    code, out, err = run_cli("rf", str(path), "--layers", "conv14")
    assert code == 0, err
    assert re.search(r"\b318\b", out), out


def _brute_reads(lo, hi, stride, taps, out_size):
    """Min of ``lo`` / max of ``hi`` over each cell's taps inside the array, by the definition."""
    n = len(lo)
    out_lo, out_hi = [], []
    for o in range(out_size):
        idx = [o * stride + t for t in taps if 0 <= o * stride + t < n]
        out_lo.append(min((int(lo[i]) for i in idx), default=int(engine._NONE_LO)))
        out_hi.append(max((int(hi[i]) for i in idx), default=int(engine._NONE_HI)))
    return np.array(out_lo, dtype=np.int64), np.array(out_hi, dtype=np.int64)


def test_sparse_window_reads_match_the_definition():
    """The sparse-table path (kernels past ``_SPARSE_TAPS`` taps) against a brute force, on
    unsorted reads with cells that read nothing, any stride, dilation, padding and taps
    running either way (a transposed convolution lists them downwards)."""
    rng = random.Random(12)
    sparse = 0
    for _ in range(300):
        n = rng.randint(1, 120)
        lo = np.array([rng.randint(-50, 300) for _ in range(n)], dtype=np.int64)
        hi = lo + np.array([rng.randint(0, 40) for _ in range(n)], dtype=np.int64)
        for i in range(n):
            if rng.random() < 0.1:
                lo[i], hi[i] = engine._NONE_LO, engine._NONE_HI
        stride, dil = rng.randint(1, 5), rng.randint(1, 4)
        k, first = rng.randint(1, 70), rng.randint(-100, 30)
        taps = [first + t * dil for t in range(k)]
        if rng.random() < 0.3:
            taps.reverse()
        out = rng.randint(1, 100)
        sparse += k > engine._SPARSE_TAPS
        got = engine._window_reads(lo, hi, stride, taps, out)
        want = _brute_reads(lo, hi, stride, taps, out)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), \
            (n, stride, dil, k, first, out)
    assert sparse > 100  # the sparse path was exercised, not only the per-tap loop


def test_kernel_of_65535_taps_on_a_large_map_is_exact(tmp_path):
    """Two 65535-tap convolutions on a 32768-pixel input (each once ~1.5 s per analysis):
    the RF grows by (k - 1) x stride per conv, exactly."""
    from anchorfit.load import load

    path = _mutated(TINY_SPEC, "  - {name: conv2, type: conv, k: 3, p: 1, c: 32}",
                    "  - {name: conv2, type: conv, k: 65535, p: 32767, c: 32}\n"
                    "  - {name: conv2b, type: conv, k: 65535, p: 32767, c: 32}", tmp_path)
    path.write_text(path.read_text().replace("input: 416", "input: 32768"))
    analysis = load(path).analyze()
    # conv0 3 -> maxpool1 (k2 s2) 4 -> conv2 + (65534 * 2) -> conv2b + (65534 * 2)
    assert analysis["conv2"].rf == (4 + 2 * 65534, 4 + 2 * 65534)
    assert analysis["conv2b"].rf == (4 + 4 * 65534, 4 + 4 * 65534)
    assert analysis["conv2b"].y.size == 16384


def test_spec_sizes_past_float_range(tmp_path, run_cli):
    """Found by the strict fuzz census: an integer of 400 digits in a level's ``sizes`` raised
    OverflowError from math.isfinite."""
    path = _mutated(S3FD_SPEC, "sizes: [16]", "sizes: [" + "9" * 400 + "]", tmp_path)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err
    assert "'sizes' must be finite numbers" in err and "s3fd.yaml:" in err


def test_yolov5_thousand_stride_2_convs_stop_at_the_stride_limit(shipped_data, tmp_path,
                                                                  run_cli):
    """Found by the strict fuzz census: ``[-1, 1_000, Conv, [256, 3, 2]]`` (330 stride-2 convs
    at depth_multiple 0.33) made a stride of 2**330 that overflowed int64 in the engine. The
    row is refused at the first conv past 2**20, naming the row's line."""
    src = shipped_data / "configs/yolov5/models/yolov5n.yaml"
    text = src.read_text(encoding="utf-8")
    old = "[-1, 1, Conv, [256, 3, 2]], # 3-P3/8"
    assert old in text
    path = tmp_path / "yolov5n.yaml"
    path.write_text(text.replace(old, "[-1, 1_000, Conv, [256, 3, 2]], # 3-P3/8"),
                    encoding="utf-8")
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    # 2**2 before the row (two stride-2 convs), so its conv index j makes 2**(3 + j): 2**21 at 18
    assert "layer 'model.3.18'" in err and "stride on the y axis 2097152 is beyond" in err, err
    line = int(re.search(r"yolov5n\.yaml:(\d+):", err).group(1))
    assert "1_000, Conv" in path.read_text().splitlines()[line - 1]


@pytest.mark.parametrize("old, new, expected", [
    ("nc: 80", "nc: .inf", "nc: inf is not an integer"),
    ("nc: 80", "ch: abc", "ch: 'abc' is not a number"),
    ("nc: 80", "ch: .inf", "ch: inf is not an integer"),
    ("[-1, 1, Conv, [64, 6, 2, 2]]", "[-1, 1, Contract, [.inf]]", "Contract gain"),
], ids=["nc-inf", "ch-word", "ch-inf", "contract-gain-inf"])
def test_yolov5_top_level_and_gain_values(old, new, expected, shipped_data, tmp_path, run_cli):
    """Found while sweeping ultralytics*.py for raw int(): each was a ValueError or
    OverflowError; now a message at the line (``ch``, ``nc``, a Contract row's gain)."""
    text = (shipped_data / "configs/yolov5/models/yolov5n.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "yolov5n.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert expected in err, err
    line = int(re.search(r"yolov5n\.yaml:(\d+):", err).group(1))
    assert new.split(",")[0].split(" [")[0].strip("[") in path.read_text().splitlines()[line - 1]


@pytest.mark.parametrize("new, expected", [
    ("overlap_threshold: abc", "overlap_threshold: 'abc' is not a number"),
    ("overlap_threshold { }", "overlap_threshold: "),
    ("overlap_threshold: inf", "overlap_threshold: 'inf' is not a finite number"),
    ("overlap_threshold: -1", "overlap_threshold: -1 must not be negative"),
], ids=["word", "message", "inf", "negative"])
def test_caffe_multibox_thresholds_are_checked(new, expected, shipped_data, tmp_path, run_cli):
    """Found while sweeping caffe.py for raw float(): MultiBoxLoss thresholds raised
    ValueError/TypeError (or an infinite IoU threshold was accepted)."""
    path = _mutated(shipped_data / "configs/caffe/ssd300_vgg_voc0712/train.prototxt",
                    "overlap_threshold: 0.5", new, tmp_path)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert expected in err, err
    line = int(re.search(r"train\.prototxt:(\d+):", err).group(1))
    assert "overlap_threshold" in path.read_text().splitlines()[line - 1]


@pytest.mark.parametrize("src, old, new, expected", [
    (REPO / "anchorfit/configs/faceboxes.yaml", "densify: {32: 4, 64: 2}",
     "densify: {abc: 4, 64: 2}", "'densify' maps anchor sizes (numbers) to densities"),
    (TINY_SPEC, "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}",
     "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}\n"
     "  - {name: cut, type: slice, start: [.inf, null]}", "'start' must be integers or null"),
    (TINY_SPEC, "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}",
     "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}\n"
     "  - {name: cut, type: slice, start: [abc, null]}", "'start' must be integers or null"),
], ids=["densify-word", "slice-start-inf", "slice-start-word"])
def test_spec_keys_and_slices_are_checked(src, old, new, expected, tmp_path, run_cli):
    """Found while sweeping spec*.py for raw int()/float(): a word as a densify size or a
    slice start raised ValueError, ``.inf`` OverflowError."""
    path = _mutated(src, old, new, tmp_path)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert expected in err and f"{path.name}:" in err, err


def test_spec_slice_with_open_ends_still_reads(tmp_path):
    """The valid form ``start: [1, null]`` keeps working: a slice from cell 1 of y, all of x."""
    from anchorfit.load import load

    path = _mutated(TINY_SPEC, "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}",
                    "  - {name: conv21, type: conv, k: 3, p: 1, c: 256}\n"
                    "  - {name: cut, type: slice, start: [1, null]}", tmp_path)
    analysis = load(path).analyze()
    assert (analysis["cut"].y.size, analysis["cut"].x.size) == (25, 26)


@pytest.mark.parametrize("new, expected", [
    ("n: [abc, 0.25, 1024]", "scales.n: 'abc' is not a number"),
    ("n: [0.50, .inf, 1024]", "scales.n: inf is not a finite number"),
    ("n: [0.50, 0.25, null]", "scales.n: None is not a number"),
], ids=["word", "inf", "null"])
def test_ultralytics_scales_are_checked(new, expected, shipped_data, tmp_path, run_cli):
    """Found while sweeping ultralytics_modern.py: float() on a scale row raised ValueError or
    TypeError, and an infinite width was accepted."""
    path = _mutated(shipped_data / "configs/ultralytics/models/11/yolo11.yaml",
                    "n: [0.50, 0.25, 1024]", new, tmp_path, "yolo11n.yaml")
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert expected in err, err
    line = int(re.search(r"yolo11n\.yaml:(\d+):", err).group(1))
    assert new.split(":")[0] in path.read_text().splitlines()[line - 1]


@pytest.mark.parametrize("src, old, new, expected", [
    (TINY_SPEC, "classes: 80", "classes: 2001-02-30",
     "bad YAML value '2001-02-30': day is out of range for month"),
    (TINY_SPEC, "input: 416", "input: !!int abc", "bad YAML value 'abc'"),
    (TINY_SPEC, "input: 416", "input: " + "9" * 5000, "Exceeds the limit (4300 digits)"),
    (SEEDS / "yolov3-tiny.cfg", "width=416", "width=" + "9" * 5000,
     "an integer of 5000 digits is not a size any network has"),
], ids=["yaml-impossible-date", "yaml-int-tag-word", "yaml-int-5000-digits",
        "darknet-int-5000-digits"])
def test_values_python_cannot_build_are_clear_errors(src, old, new, expected, tmp_path, run_cli):
    """Found while sweeping: PyYAML's constructors (dates, ``!!int``, integers past Python's
    4300-digit limit) and validate.integer raised a bare ValueError."""
    path = _mutated(src, old, new, tmp_path)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert expected in err, err
    line = int(re.search(re.escape(path.name) + r":(\d+):", err).group(1))
    assert new[:6] in path.read_text().splitlines()[line - 1]


def _spec_with(tmp_path, first_layers: str, size: int) -> Path:
    """yolov3-tiny.yaml with ``first_layers`` before conv0 and an input of ``size``."""
    path = _mutated(TINY_SPEC, "  - {name: conv0, type: conv, k: 3, p: 1, c: 16}",
                    first_layers + "\n  - {name: conv0, type: conv, k: 3, p: 1, c: 16}",
                    tmp_path)
    path.write_text(path.read_text().replace("input: 416", f"input: {size}"))
    return path


def test_many_full_size_layers_stop_at_the_cell_limit(tmp_path, run_cli):
    """1000 stride-1 convs on a 65536-pixel input held 2 GB and took 10 s; the engine stops
    at the layer where the cells of all maps pass MAX_TOTAL_CELLS (2**23 = 128 layers of
    65536, the input included)."""
    path = _spec_with(tmp_path, "  - {name: c, type: conv, k: 3, p: 1, c: 16, n: 1000}", 65536)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert "layer 'c.127'" in err and "is beyond anchorfit's limit of 8388608" in err, err


@pytest.mark.parametrize("first, size, layer", [
    ("  - {name: ad, type: adaptive_pool, size: 16381}\n"
     "  - {name: c, type: conv, k: 3, p: 1, c: 16, n: 20}", 16384, "c.1"),
    ("  - {name: ad, type: adaptive_pool, size: 4093}\n"
     "  - {name: c, type: conv, k: 3, p: 1, c: 16, n: 1000}", 65536, "c."),
], ids=["no-period", "period-4093"])
def test_long_periods_stop_at_the_phase_limit(first, size, layer, tmp_path, run_cli):
    """An adaptive pool to a size that does not divide its input leaves a map the engine builds
    one Python step per phase: 20 convs after one of 16381 cells took 21 s, 2000 after a
    period of 4093 4 s per analysis. The count (phases of both axes of each layer that builds
    a map) passes MAX_TABLE_CELLS (65536): with no period, 16381 x 2 per layer, so the pool
    and c.0 stay under it and c.1 goes over; the periodic case stops in the conv row."""
    path = _spec_with(tmp_path, first, size)
    code, _, err = run_cli("show", str(path))
    assert code == 2 and "Traceback" not in err, err
    assert f"layer '{layer}" in err and "is beyond anchorfit's limit of 65536" in err, err
    count = int(re.search(r"up to here \([^)]*\): (\d+) is beyond", err).group(1))
    assert 65536 < count <= 65536 + 2 * 16381, count
