"""The anchorfit YAML spec: layers, blocks, base files, anchors, and file:line errors."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest

from anchorfit import formats
from anchorfit import load as models
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.formats import load_detector, reader_for

HEAD = "input: 64\n"


def _spec(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_spec_and_defaults(tmp_path: Path) -> None:
    path = _spec(tmp_path, HEAD + """layers:
  - {name: c1, type: conv, k: 3, s: 2, p: 1}
  - {name: c2, type: conv, k: 3, s: 2, p: 1}
levels:
  - {from: c2, sizes: [16, 32], ratios: [0.5, 2], step: 4, head: [3, 3]}
""")
    det = load_detector(path)
    (level,) = det.levels
    assert level.name == "c2" and level.rf.rf == (7, 7) and level.rf.stride == (4, 4)
    assert level.head_rf.rf == (23, 23)
    assert [(a.w, a.h) for a in level.anchors][:2] == [
        pytest.approx((16 / math.sqrt(0.5), 16 * math.sqrt(0.5))),
        pytest.approx((16 / math.sqrt(2), 16 * math.sqrt(2)))]  # ratio = h / w
    assert det.resize_policy == "stretch" and det.name == "net"
    assert det.network.default_layers == ["c2"] and det.network.heads["c2"]
    assert level.assigner.kind == "iou"


def test_branches_merges_and_relative_from(tmp_path: Path) -> None:
    det = load_detector(_spec(tmp_path, "input: [64, 96]\n" + """layers:
  - {name: a, type: conv, k: 3, p: 1}
  - {name: b, type: conv, k: 5, p: 2, from: input}
  - {name: ab, type: add, from: [a, b]}
  - {name: up, type: upsample, scale: 2, from: -3}
  - {name: pooled, type: maxpool, k: 2, s: 2, from: 2}
  - {name: pd, type: pad, p: [0, 0], p_end: [1, 1]}
  - {name: p2, type: maxpool, k: 2, s: 1}
  - {name: g, type: gn}
levels:
  - {name: L, from: p2, anchors: [[10, 20]], center: top-left}
  - {name: U, from: up, anchor_free: [0, -1]}
"""))
    a = det.network.analyze()
    assert a["ab"].rf == (5, 5) and a["ab"].aligned
    assert a["up"].feature_size == (128, 192)
    lv, up = det.levels
    assert lv.rf.rf == (8, 8) and lv.rf.center == (Fraction(3, 2), Fraction(3, 2))
    assert lv.center_offset == 0 and lv.anchors[0].h == 20
    assert up.anchor_free_range == (0, math.inf)
    assert a["g"].global_context


def test_blocks_with_first_and_parameters(tmp_path: Path) -> None:
    det = load_detector(_spec(tmp_path, HEAD + """blocks:
  res:
    - {name: c1, type: conv, k: 1, c: $mid}
    - {name: c2, type: conv, k: 3, p: 1}
    - {name: add, type: add, from: [c2, in]}
  down:
    - {name: c1, type: conv, k: 3, s: $s, p: 1}
layers:
  - {name: stage, block: res, first: down, n: 3, with: {mid: 8, s: 2}}
levels:
  - {from: stage, sizes: [8]}
"""))
    nodes = list(det.network.graph.nodes)
    assert nodes == ["input", "stage.0", "stage.1.c1", "stage.1.c2", "stage.1",
                     "stage.2.c1", "stage.2.c2", "stage"]
    assert det.levels[0].rf.rf == (11, 11) and det.levels[0].rf.stride == (2, 2)
    assert det.network.channels["stage.1.c1"] == 8


def test_base_inheritance_and_ssd_and_densify(tmp_path: Path) -> None:
    _spec(tmp_path, HEAD + """layers:
  - {name: c, type: conv, k: 3, s: 8, p: 1}
levels:
  - {from: c, ssd: {min: 30, max: 60, ratios: [2, 3]}, step: 8}
""", "base.yaml")
    child = _spec(tmp_path, """base: base.yaml
name: child
levels:
  - {from: c, sizes: [32, 64, 128], densify: {32: 4, 64: 2}, step: 8}
""")
    base = load_detector(tmp_path / "base.yaml")
    assert len(base.levels[0].anchors) == 6
    assert base.levels[0].anchors[1].w == pytest.approx(math.sqrt(1800))
    det = load_detector(child)
    assert det.name == "child" and det.levels[0].center == "explicit"
    assert [len(a.offsets) for a in det.levels[0].anchors] == [16, 4, 1]


def test_dispatch_by_content(tmp_path: Path) -> None:
    spec = _spec(tmp_path, HEAD + "layers: []\nlevels: []\n")
    assert reader_for(spec).name == "anchorfit spec"
    other = _spec(tmp_path, "foo: 1\n", "other.yaml")
    with pytest.raises(FormatError, match="cannot tell which .yaml format"):
        reader_for(other)


def test_builtin_name_and_models_load() -> None:
    assert "s3fd" in formats.builtin_names()
    net = models.load("s3fd")
    assert net.kind == "detector" and net.default_layers[0] == "conv3_3"
    assert net.heads["conv3_3"][0].kernel == (3, 3)
    with pytest.raises(AnchorfitError, match="did you mean s3fd"):
        formats.resolve("s3fb")


def test_module_is_built_lazily_and_runs() -> None:
    torch = pytest.importorskip("torch")
    det = load_detector("yolov3-tiny", (64, 64))
    assert "_module" in det.network.__dict__ and det.network.__dict__["_module"] is None
    module = det.network.module
    outputs = module(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape[-2:]) for o in outputs] == [lv.rf.feature_size for lv in det.levels]


@pytest.mark.parametrize("text,line,words", [
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3\nlevels: []\n", 4, "bad YAML"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3}\n  - {name: b, type: convv, k: 3}\n"
            "levels:\n  - {from: b, sizes: [8]}\n", 4, "unknown layer type 'convv'"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3}\n  - {name: b, type: add, from: [a, z]}\n"
            "levels:\n  - {from: b, sizes: [8]}\n", 4, "'from' refers to 'z'"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3}\nlevels:\n  - {from: q, sizes: [8]}\n", 5,
     "'from' refers to 'q'"),
    (HEAD + "layers:\n  - {name: a, type: conv}\nlevels:\n  - {from: a, sizes: [8]}\n", 3,
     "missing key 'k'"),
    ("layers:\n  - {name: a, type: conv, k: 1}\nlevels:\n  - {from: a, sizes: [8]}\n", 1,
     "missing key 'input'"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3, q: 1}\nlevels:\n  - {from: a}\n", 3,
     "does not take 'q'"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 3}\nlevels:\n  - {from: a}\n", 5,
     "level has no anchors"),
    (HEAD + "layers:\n  - {name: a, type: conv, k: 99}\nlevels:\n  - {from: a, sizes: [8]}\n",
     None, "smaller than its window"),
])
def test_malformed_spec_says_file_and_line(tmp_path: Path, run_cli, text: str,
                                           line: int | None, words: str) -> None:
    path = _spec(tmp_path, text, "bad.yaml")
    code, out, err = run_cli("show", str(path))
    assert code == 2 and out == "" and "Traceback" not in err
    assert words in err
    assert (f"{path}:{line}:" if line else f"{path}:") in err


def test_rf_command_reproduces_s3fd_table1(run_cli) -> None:
    root = Path(__file__).resolve().parents[1]
    code, out, _ = run_cli("rf", str(root / "anchorfit" / "configs" / "s3fd.yaml"), "--format", "csv")
    assert code == 0
    head_rf = [line.split(",")[6] for line in out.splitlines()[1:]]
    assert head_rf == ["48", "108", "228", "340", "468", "724"]
