"""Hostile inputs to the config evaluators, the YAML loader and the size limits (issue 12,
'Hangs and memory'): each ends in one message naming the file and line (or key), exit status 2,
no traceback, and quickly.

The inputs are the issue's examples, written as small files or as mutations of real configs
from ../shared/data and the packaged zoo. Every CLI call runs in-process under a SIGALRM
deadline, so a regression that hangs fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from anchorfit.errors import AnchorfitError, FormatError
from fuzz_helpers import time_budget

#: Wall-clock seconds one hostile input may take (they take well under one; the margin is for
#: two shared cores).
DEADLINE = 60

PKG_CONFIGS = Path(__file__).resolve().parent.parent / "anchorfit" / "configs"


def deadline(seconds: int = DEADLINE) -> AbstractContextManager[None]:
    """Fail (instead of hanging) when the body runs longer than ``seconds``."""
    return time_budget(seconds, lambda s: TimeoutError(f"still running after {s:g} s: a hang"))


def _bomb(levels: int = 9, indent: str = "") -> str:
    """A 'billion laughs' YAML block: level i lists level i-1 ten times (10^levels values)."""
    lines = [f"{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _xml_bomb() -> str:
    """XML's billion laughs: expat's amplification limit refuses it (a regression test)."""
    text = '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY l0 "lol">\n'
    for i in range(1, 10):
        text += f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">\n'
    return text + "]>\n<annotation><filename>&l9;</filename></annotation>\n"


def _chain(tmp: Path, n: int, name: str, ref: str, last: str, suffix: str) -> Path:
    """``n`` files, each inheriting the next through ``ref`` (a format string of the path)."""
    for i in range(n):
        body = ref.format(f"{name}{i + 1}{suffix}") if i < n - 1 else last
        (tmp / f"{name}{i}{suffix}").write_text(body)
    return tmp / f"{name}0{suffix}"


# --------------------------------------------------------------------------- the cases
# Each case: (id, file name, text or a function of (tmp_path, shared data) returning the text or
# the path to use, CLI args with {f} for the file, substrings the message must contain).

Maker = Callable[[Path, Path | None], "str | Path"]


def _yolov5(shared: Path | None, old: str, new: str) -> str:
    assert shared is not None
    text = (shared / "configs/yolov5/models/yolov5s.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


def _s3fd(old: str, new: str) -> str:
    text = (PKG_CONFIGS / "s3fd.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


def _darknet(shared: Path | None, old: str, new: str) -> str:
    assert shared is not None
    text = (shared / "configs/darknet/pjreddie/yolov3-tiny.cfg").read_text()
    assert old in text
    return text.replace(old, new, 1)


def _caffe(shared: Path | None, line: int, old: str, new: str) -> str:
    """FaceBoxes' deploy.prototxt with ``old`` replaced on ``line`` (1-based)."""
    assert shared is not None
    lines = (shared / "configs/caffe/faceboxes/deploy.prototxt").read_text().split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines)


MMDET = [
    ("pow-chain", "a = 10**64\nb = a**64\nc = b**64\n",
     ["m.py:2", "'a ** 64'", "bits", "limit of 1024 bits"]),
    ("mul-chain", "a = 10**300\na1 = a*a\na2 = a1*a1\na3 = a2*a2\n",
     ["m.py:2", "'a * a'", "1994 bits"]),
    ("nested-comprehensions",
     "x = [[[0 for a in range(100)] for b in range(100)] for c in range(100)]\n",
     ["m.py:1", "comprehensions iterate more than 100000 times in all"]),
    ("int-times-str", "x = 10**9 * 'x'\n", ["m.py:1", "1000000000 characters"]),
    ("str-times-int", "pad = 'ab'\nx = pad * 10**9\n", ["m.py:2", "2000000000 characters"]),
    ("percent-width", "x = '%0999999999d' % 1\n", ["m.py:1", "width or precision 999999999"]),
    ("shared-repeats", "a = [0] * 1000\nb = [a] * 1000\nc = [b] * 1000\nd = str(c)\n",
     ["m.py:2", "'[a] * 1000'", "repeat a value 1000 times"]),
    ("range-huge", "x = list(range(10**12))\n", ["m.py:1", "1000000000000 items"]),
    ("round-digits", "x = round(5, -10**8)\n", ["m.py:1", "round() to -100000000 digits"]),
    ("sum-of-lists", "x = sum([[0]] * 1000, [])\n", ["m.py:1", "sum() of sequences"]),
    ("hash-work", "t = tuple(range(100000))\nd = {t: i for i in range(100)}\n",
     ["m.py:2", "steps to evaluate"]),
    ("deep-brackets", "x = " + "[" * 150 + "]" * 150 + "\n",
     ["m.py:1", "nested more than 100 levels"]),
    ("long-sum", "x = " + "+".join(["1"] * 20000) + "\n", ["m.py", "too deeply nested to parse"]),
    ("type-error", "model = dict(a=1 < 'x')\n", ["m.py:1", "TypeError"]),
    ("unhashable", "x = {[1]: 2}\n", ["m.py:1", "unhashable"]),
    ("base-device", "_base_ = '/dev/zero'\n", ["m.py:1", "_base_", "not a regular file"]),
]


def _mmdet_over(shared: Path | None, text: str) -> str:
    """A config inheriting the real RetinaNet config (by absolute path), then ``text``."""
    assert shared is not None
    real = shared / "configs/mmdet/retinanet/retinanet_r50_fpn_1x_coco.py"
    return f"_base_ = {str(real)!r}\n{text}\n"


def _invert(tmp: Path, shared: Path | None) -> str:
    return "model = dict(a=~1)\n"


def _mmdet_base_chain(tmp: Path, shared: Path | None) -> Path:
    return _chain(tmp, 40, "m", "_base_ = '{}'\n", "model = dict(type='RetinaNet')\n", ".py")


def _d2_base_chain(tmp: Path, shared: Path | None) -> Path:
    return _chain(tmp, 40, "d", "_BASE_: {}\n", "MODEL:\n  META_ARCHITECTURE: RetinaNet\n",
                  ".yaml")


def _spec_base_chain(tmp: Path, shared: Path | None) -> Path:
    return _chain(tmp, 40, "s", "base: {}\n", (PKG_CONFIGS / "s3fd.yaml").read_text(), ".yaml")


def _fifo(name: str) -> Maker:
    def make(tmp: Path, shared: Path | None) -> Path:
        path = tmp / name
        os.mkfifo(path)
        return path
    return make


CASES: list[tuple[str, str, "str | Maker", list[str], list[str], bool]] = [
    # (id, file, text/maker, args, expected substrings, needs shared data)
    *[(f"mmdet-{cid}", "m.py", text + "model = dict(type='RetinaNet')\n", ["show", "{f}"], want,
       False) for cid, text, want in MMDET],
    ("mmdet-invert", "m.py", _invert, ["show", "{f}"], ["m.py"], False),
    ("mmdet-fpn-num-outs", "m.py", lambda t, s: _mmdet_over(s, "model = dict(neck=dict(num_outs="
                                                              "10**6))"),
     ["show", "{f}"], ["m.py:2", "model.neck", "layer count over 20000"], True),
    ("mmdet-base-then-pow", "m.py", lambda t, s: _mmdet_over(s, "a = 10**64\nb = a**64"),
     ["show", "{f}"], ["m.py:3", "bits"], True),
    ("mmdet-base-depth", "m0.py", _mmdet_base_chain, ["show", "{f}"],
     ["_base_ chain depth 33", "limit of 32"], False),
    # detectron2 YAML
    ("d2-alias-bomb", "d.yaml", "MODEL:\n  META_ARCHITECTURE: RetinaNet\n" + _bomb(9),
     ["show", "{f}"], ["d.yaml:", "alias bomb"], False),
    ("d2-eval-huge", "d.yaml",
     "MODEL:\n  META_ARCHITECTURE: RetinaNet\n  ANCHOR_GENERATOR:\n    SIZES: "
     "!!python/object/apply:eval [\"[[i] for i in range(10**6)]\"]\n",
     ["show", "{f}"], ["d.yaml:4", "1000000 items"], False),
    ("d2-eval-pow", "d.yaml",
     "MODEL:\n  META_ARCHITECTURE: RetinaNet\n  ANCHOR_GENERATOR:\n    SIZES: "
     "!!python/object/apply:eval [\"[[(10**64)**64]]\"]\n",
     ["show", "{f}"], ["d.yaml:4", "bits"], False),
    ("d2-deep-brackets", "d.yaml", "MODEL: " + "[" * 3000 + "\n", ["show", "{f}"],
     ["d.yaml:1", "nested more than 100 levels"], False),
    ("d2-duplicate-key", "d.yaml",
     "MODEL:\n  META_ARCHITECTURE: RetinaNet\nMODEL:\n  META_ARCHITECTURE: GeneralizedRCNN\n",
     ["show", "{f}"], ["d.yaml:3", "MODEL: duplicate key (first at line 1)"], False),
    ("d2-recursive-alias", "d.yaml", "MODEL: &m\n  X: *m\n", ["show", "{f}"],
     ["d.yaml:", "recursive YAML alias"], False),
    ("d2-base-depth", "d0.yaml", _d2_base_chain, ["show", "{f}"],
     ["_BASE_ chain depth 33", "limit of 32"], False),
    # YOLOv5 / Ultralytics YAML
    ("yolov5-repeats", "y.yaml",
     lambda t, s: _yolov5(s, "[-1, 3, C3, [128]]", "[-1, 100000000, C3, [128]]"),
     ["show", "{f}"], ["y.yaml:", "(C3): repeat count 100000000 x depth 0.33", "limit of 1000"],
     True),
    ("yolov5-depth-multiple", "y.yaml",
     lambda t, s: _yolov5(s, "depth_multiple: 0.33", "depth_multiple: 100000"),
     ["show", "{f}"], ["y.yaml:", "repeat count 3 x depth 100000", "limit of 1000"], True),
    ("yolov5-depth-nan", "y.yaml",
     lambda t, s: _yolov5(s, "depth_multiple: 0.33", "depth_multiple: .nan"),
     ["show", "{f}"], ["y.yaml:10:", "depth_multiple", "not a finite number"], True),
    ("yolov5-alias-bomb", "y.yaml",
     lambda t, s: _yolov5(s, "nc: 80", "nc: 80\n" + _bomb(9)),
     ["show", "{f}"], ["y.yaml:", "alias bomb"], True),
    ("yolov5-deep-brackets", "y.yaml", "backbone: " + "[" * 3000 + "\nhead: []\n",
     ["show", "{f}"], ["y.yaml:1", "nested more than 100 levels"], False),
    ("yolov5-duplicate-key", "y.yaml",
     lambda t, s: _yolov5(s, "nc: 80", "nc: 80\nnc: 20"),
     ["show", "{f}"], ["y.yaml:", "nc: duplicate key"], True),
    # anchorfit spec
    ("spec-repeats", "s.yaml",
     lambda t, s: _s3fd("{name: conv1_2, type: conv, k: 3, p: 1, c: 64}",
                        "{name: conv1_2, type: conv, k: 3, p: 1, c: 64, n: 100000000}"),
     ["show", "{f}"], ["s.yaml:17", "repeat count 'n:' 100000000", "limit of 1000"], False),
    ("spec-kernel", "s.yaml",
     lambda t, s: _s3fd("{name: conv1_2, type: conv, k: 3, p: 1, c: 64}",
                        "{name: conv1_2, type: conv, k: 1000000000, p: 1, c: 64}"),
     ["show", "{f}"], ["s.yaml:17", "kernel size 1000000000", "limit of 65536"], False),
    ("spec-pool", "s.yaml",
     lambda t, s: _s3fd("{name: pool1, type: maxpool, k: 2, s: 2}",
                        "{name: pool1, type: maxpool, k: 1000000000, s: 2, p: same}"),
     ["show", "{f}"], ["s.yaml:18", "kernel size 1000000000"], False),
    ("spec-block-calls-itself", "s.yaml",
     "input: 64\nblocks:\n  loop:\n    - {type: conv, k: 3, p: 1}\n    - {block: loop}\n"
     "layers:\n  - {name: a, block: loop}\nlevels:\n  - {from: a, step: 1, sizes: [4]}\n",
     ["show", "{f}"], ["s.yaml:5", "block 'loop' calls itself"], False),
    ("spec-nested-repeats", "s.yaml",
     "input: 64\nblocks:\n  inner:\n    - {type: conv, k: 1}\n  mid:\n"
     "    - {name: x, block: inner, n: 1000}\n  outer:\n    - {name: y, block: mid, n: 1000}\n"
     "layers:\n  - {name: a, block: outer, n: 1000}\nlevels:\n  - {from: a, step: 1, sizes: [4]}\n",
     ["show", "{f}"], ["s.yaml:4", "layer count over 20000", "limit of 20000"], False),
    ("spec-base-depth", "s0.yaml", _spec_base_chain, ["show", "{f}"],
     ["'base' chain depth 33", "limit of 32"], False),
    # Darknet
    ("darknet-conv-size", "c.cfg",
     lambda t, s: _darknet(s, "size=3", "size=1000000000"),
     ["show", "{f}"], ["c.cfg:", "size 1000000000 is beyond", "limit of 65536"], True),
    ("darknet-pool-size", "c.cfg",
     lambda t, s: _darknet(s, "[maxpool]\nsize=2", "[maxpool]\nsize=1000000000"),
     ["show", "{f}"], ["c.cfg:", "size 1000000000 is beyond"], True),
    ("yolov5-conv-kernel", "y.yaml",
     lambda t, s: _yolov5(s, "Conv, [64, 6, 2, 2]", "Conv, [64, 1000000000, 2, 2]"),
     ["show", "{f}"], ["y.yaml:21", "row 0 (Conv): kernel size 1000000000"], True),
    # Caffe
    ("caffe-kernel", "p.prototxt", lambda t, s: _caffe(s, 79, "kernel_size: 3",
                                                      "kernel_size: 1000000000"),
     ["show", "{f}"], ["p.prototxt:79", "kernel_size 1000000000 is beyond"], True),
    ("caffe-deep-blocks", "p.prototxt", "layer {\n" + "a {\n" * 3000, ["show", "{f}"],
     ["p.prototxt:100", "nested more than 100 levels"], False),
    ("caffe-bad-escape", "p.prototxt", 'name: "\\x"\nlayer {\n  name: "a"\n}\n',
     ["show", "{f}"], ["p.prototxt:1", "bad escape"], False),
    # special files and counts
    ("kmeans-dev-zero", "-", lambda t, s: Path("/dev/zero"),
     ["kmeans", "{f}", "--from", "coco"], ["/dev/zero", "not a regular file"], False),
    ("kmeans-fifo-csv", "boxes.csv", _fifo("boxes.csv"),
     ["kmeans", "{f}", "--from", "csv"], ["boxes.csv", "not a regular file"], False),
    ("config-too-big", "big.cfg", "[net]\nwidth=416\n" + "# padding\n" * 300_000,
     ["show", "{f}"], ["big.cfg", "more than the 2097152 bytes a config may have"], False),
    ("kmeans-fifo-sniffed", "labels.txt", _fifo("labels.txt"), ["kmeans", "{f}"],
     ["labels.txt", "not a regular file"], False),
    ("kmeans-fifo-data-yaml", "data.yaml", _fifo("data.yaml"), ["kmeans", "{f}"],
     ["data.yaml", "not a regular file"], False),
    ("show-fifo", "net.cfg", _fifo("net.cfg"), ["show", "{f}"],
     ["net.cfg", "not a regular file"], False),
    ("kmeans-restarts", "-",
     lambda t, s: s / "annotations/coco128_cocojson/instances_train2017.json",  # type: ignore
     ["kmeans", "{f}", "--restarts", "100000000"],
     ["--restarts", "100000000 restarts is beyond the limit of 10000"], True),
    ("coco-deep-json", "deep.json", "[" * 100_000, ["kmeans", "{f}", "--from", "coco"],
     ["deep.json", "JSON nested too deeply"], False),
    ("voc-entity-bomb", "bomb.xml", lambda t, s: _xml_bomb(), ["kmeans", "{f}", "--from", "voc"],
     ["bomb.xml:", "amplification"], False),
    ("data-yaml-alias-bomb", "data.yaml", "path: .\ntrain: images\nnames: [a]\n" + _bomb(9),
     ["kmeans", "{f}", "--from", "ultralytics"], ["data.yaml:", "alias bomb"], False),
]


@pytest.mark.parametrize("cid,name,make,args,want,needs_shared", CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_input_is_one_message(cid: str, name: str, make: "str | Maker", args: list[str],
                                      want: list[str], needs_shared: bool, tmp_path: Path,
                                      request: pytest.FixtureRequest, run_cli) -> None:
    shared = request.getfixturevalue("config_data") if needs_shared else None
    made = make if isinstance(make, str) else make(tmp_path, shared)
    if isinstance(made, Path):
        path = made
    else:
        path = tmp_path / name
        path.write_text(made)
    argv = [a.replace("{f}", str(path)) for a in args]
    t0 = time.perf_counter()
    with deadline():
        code, out, err = run_cli(*argv)
    elapsed = time.perf_counter() - t0
    assert code == 2, (code, out[-500:], err[-2000:])
    assert err.startswith("anchorfit: error: "), err
    assert "Traceback" not in err
    for text in want:
        assert text in err, (text, err)
    assert elapsed < DEADLINE


def test_alias_bomb_and_deep_nesting_are_refused_fast() -> None:
    """The YAML checks look at each node once: a 10^9-value bomb, 3000 brackets and 300000
    values are refused quickly (before: a hang, a MemoryError, a RecursionError, minutes)."""
    from anchorfit.safeinput import safe_load

    for text in (_bomb(9), "[" * 3000, "a: " + "{b: " * 3000, "[" + "1," * 300_000 + "1]"):
        t0 = time.perf_counter()
        with pytest.raises(FormatError):
            safe_load(text, "x.yaml")
        assert time.perf_counter() - t0 < DEADLINE  # 0.3-1.5 s of CPU each


def test_aliases_still_load_once() -> None:
    """Valid aliases and merge keys keep working and construct one shared object."""
    from anchorfit.safeinput import safe_load

    data = safe_load("base: &b {k: 3, s: 1}\nconv: {<<: *b, s: 2}\nboth: [*b, *b]\n")
    assert data["conv"] == {"k": 3, "s": 2}
    assert data["both"][0] is data["both"][1] is data["base"]


def test_duplicate_key_message_names_both_lines() -> None:
    from anchorfit.safeinput import safe_load

    with pytest.raises(FormatError) as info:
        safe_load("a: 1\nb: 2\na: 3\n", "x.yaml")
    assert info.value.line == 3 and info.value.key == "a"
    assert "first at line 1" in str(info.value)


def test_evaluator_keeps_real_arithmetic() -> None:
    """The budget refuses blow-ups, not ordinary config arithmetic."""
    from anchorfit.formats.parsers.pyconfig import SafeEvaluator

    got = SafeEvaluator("c.py").run_module(
        "a = dict(x=[1, 2, 3], y=(4, 5))\nb = [i * 2 for i in a['x'] if i > 1]\nc = ~a.x[0]\n"
        "d = 2 ** 1000\ne = 'lr%05d' % 3\nf = 1 and 0 or 5\ng = [8 * 2 ** i for i in range(5)]\n"
        "h = sum(x for x in range(10))\ni = max(0, 1) if a else 2\n")
    assert got["b"] == [4, 6] and got["c"] == -2 and got["d"] == 2 ** 1000
    assert got["e"] == "lr00003" and got["f"] == 5 and got["g"] == [8, 16, 32, 64, 128]
    assert got["h"] == 45 and got["i"] == 1


def test_mmdet_base_diamond_22_levels_reads_each_file_once(tmp_path: Path, config_data: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A diamond 22 levels deep (each level's two files both inherit both files of the next
    level: 2^22 paths) is read once per file, and the model of the real config at its bottom
    comes through the merge."""
    from anchorfit.formats import mmdet_config as mmdet

    real = config_data / "configs/mmdet/retinanet/retinanet_r50_fpn_1x_coco.py"
    depth = 22
    for i in range(depth):
        for side in "ab":
            if i == depth - 1:
                body = f"_base_ = [{str(real)!r}]\nlevel_{i}_{side} = {i}\n"
            else:
                body = f"_base_ = ['l{i + 1}a.py', 'l{i + 1}b.py']\nlevel_{i}_{side} = {i}\n"
            (tmp_path / f"l{i}{side}.py").write_text(body)
    top = tmp_path / "top.py"
    top.write_text("_base_ = ['l0a.py', 'l0b.py']\n")
    reads: list[Path] = []
    original = mmdet.read_text

    def counting(path: Path) -> str:
        reads.append(Path(path).resolve())
        return original(path)

    monkeypatch.setattr(mmdet, "read_text", counting)
    t0 = time.perf_counter()
    with deadline():
        cfg = mmdet.load_config(top)
    assert time.perf_counter() - t0 < DEADLINE
    assert len(reads) == len(set(reads))  # every file once
    assert {p.name for p in reads} >= {f"l{i}{s}.py" for i in range(depth) for s in "ab"}
    assert cfg.data["model"]["type"] == "RetinaNet"
    assert cfg.data["level_0_a"] == 0 and cfg.data[f"level_{depth - 1}_b"] == depth - 1


def test_engine_refuses_a_billion_taps() -> None:
    """The RF engine refuses a kernel of 10^9 before listing its taps, also for graphs that did
    not come through GraphBuilder (e.g. traced ones)."""
    from anchorfit.rf.engine import analyze
    from anchorfit.rf.graph import Graph, Input, Node, Window

    g = Graph(name="g")
    g.add(Node("input", Input(), ()))
    g.add(Node("pool", Window((1, 10**9), (1, 1), "same", (1, 1), kind="maxpool"), ("input",)))
    with deadline(), pytest.raises(AnchorfitError, match="kernel on the x axis 1000000000"):
        analyze(g, (64, 64))


def test_restart_limit_in_the_library() -> None:
    import numpy as np

    from anchorfit.cluster.api import cluster_anchors

    wh = np.array([[10, 20], [30, 40], [50, 60], [70, 80]], dtype=float)
    with pytest.raises(AnchorfitError, match="100000000 restarts is beyond the limit"):
        cluster_anchors(wh, 2, restarts=100_000_000)
    assert re.search("restart", str(cluster_anchors(wh, 2, restarts=3).to_dict()))


def test_python_warnings_about_the_config_text_stay_quiet(tmp_path):
    """An invalid escape in a config string (``'\\:'``) made ast.parse warn (a SyntaxWarning on
    the user's terminal from Python 3.12 on); the config is data, read without such noise."""
    import warnings

    from anchorfit.load import load_detector

    seed = Path(__file__).resolve().parent / "data" / "fuzz_seeds" / "mmdet_retinanet_r50_fpn.py"
    path = tmp_path / "m.py"
    path.write_text("note = 'C:\\:'\n" + seed.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector = load_detector(path)
    assert len(detector.levels) == 5
