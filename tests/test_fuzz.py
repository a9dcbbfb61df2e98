"""Fuzz suite (issue 12, item 4): mutated real files of every format through every reader.

Each target takes a seed file (tests/data/fuzz_seeds/, plus real files from ../shared/data when
present), mutates it (tests/fuzz_helpers.py) and runs the reader and what the CLI runs next:
detector files through ``load_detector`` → ``show``'s dict → ``audit`` (no ERF) and ``load`` →
the RF report; annotation files through the reader, format detection, ``prepare_boxes`` (the
validation and resize every box command runs) and a tiny k-means. A case passes when it ends in
a result or an ``AnchorfitError``; any other exception or a hang (per-case SIGALRM budget) fails.

Profiles (tests/conftest.py): the default ``fuzz-ci`` is derandomized (same cases every run, the
whole file well under a minute on 2 cores); ``ANCHORFIT_FUZZ=long`` or
``--hypothesis-profile=long`` runs ANCHORFIT_FUZZ_EXAMPLES (default 2000) random cases per target.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import traceback
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorfit.cluster.api import cluster_anchors
from anchorfit.data import ResizeSpec, detect_format, read_annotations
from anchorfit.data import csvfmt
from anchorfit.data.coco import read_coco
from anchorfit.data.coco_stream import read_coco_stream
from anchorfit.data.cvat import read_cvat
from anchorfit.data.cvat_stream import read_cvat_stream
from anchorfit.data.prepare import prepare_boxes
from anchorfit.data.yolo import read_yolo
from anchorfit.data.yolo_stream import read_yolo_stream
from anchorfit.design.audit import audit
from anchorfit.errors import AnchorfitError
from anchorfit.load import layer_names, load, load_detector
from anchorfit.rf.report import build_report
from fuzz_helpers import SEEDS, CaseTimeout, mutate, outcome

# imported above, outside the per-case budget: the first import of torch takes seconds

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: configs and annotations the repository ships too (same relative paths as ../shared/data)
DATA = SHARED if SHARED.is_dir() else Path(__file__).resolve().parent / "data"
_LONG = os.environ.get("ANCHORFIT_FUZZ") == "long" \
    or getattr(settings, "_current_profile", None) == "long"
FUZZ = settings(settings.get_profile("long" if _LONG else "fuzz-ci"))
#: outcomes per target, for the closing line of a long run (pytest -s shows it)
COUNTS: Counter[str] = Counter()
WH = np.array([[10.0, 12.0], [40.0, 30.0], [100.0, 160.0], [7.0, 5.0]], dtype=np.float32)


def _seed(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"seed {path} not found (../shared/data absent)")
    return path


def _head(path: Path, lines: int, tmp: Path) -> Path:
    """The first ``lines`` lines of a (large) real file, as a seed in ``tmp``; for WIDER/FDDB
    cut before the last image path, so the seed itself ends with a whole record."""
    src = _seed(path)
    with open(src, "rb") as fh:
        head = [fh.readline() for _ in range(lines)]
    paths = [i for i, ln in enumerate(head) if b"/" in ln and b" " not in ln.strip()]
    text = b"".join(head[:paths[-1]] if len(paths) > 1 else head)
    out = tmp / f"head_{src.name}"
    out.write_bytes(text)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    if COUNTS:
        total = sum(COUNTS.values())
        print(f"\nfuzz cases: {total} ("
              + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())) + ")")


# --------------------------------------------------------------------------- detector files

# Crashes of the detector-file readers that this suite found and that wait for their reader's
# validation: (exception, file, function) of the innermost anchorfit frame. A case ending at one of
# these sites counts as "known" rather than failing; delete an entry once its fix lands
# (ANCHORFIT_FUZZ_STRICT=1 ignores the list, to check). Empty: every crash found so far is fixed,
# each with a test in tests/test_hardening_*.py.
KNOWN_FORMAT_CRASHES: frozenset[tuple[str, str, str]] = frozenset()  # every one found is fixed
_STRICT = os.environ.get("ANCHORFIT_FUZZ_STRICT") == "1"


def _known_site(exc: BaseException) -> tuple[str, str, str] | None:
    import yaml

    kind = "YAMLError" if isinstance(exc, yaml.YAMLError) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/anchorfit/" in f.filename]
    if not frames:
        return None
    last = frames[-1]
    return (kind, "anchorfit/" + last.filename.rsplit("/anchorfit/", 1)[1],
            last.name)


def _detector_case(path: Path) -> str:
    try:
        return outcome(lambda: _detector_pipeline(path))
    except (Exception, CaseTimeout) as exc:
        site = _known_site(exc)
        if _STRICT or site not in KNOWN_FORMAT_CRASHES:
            raise
        return "known:" + site[0]


def _detector_pipeline(path: Path) -> None:
    detector = load_detector(path)
    detector.to_dict()
    audit(detector, WH, None)
    net = load(path)
    build_report(net, layer_names(net, None))


CONFIG_SEEDS = [
    pytest.param(SEEDS / "yolov3-tiny.cfg", "net.cfg", id="darknet"),
    pytest.param(SEEDS / "s3fd_deploy.prototxt", "deploy.prototxt", id="caffe"),
    pytest.param(SEEDS / "mmdet_retinanet_r50_fpn.py", "retinanet.py", id="mmdet"),
    pytest.param(SEEDS / "detectron2_Base-RetinaNet.yaml", "retina.yaml", id="detectron2"),
    pytest.param(Path(__file__).resolve().parents[1] / "anchorfit" / "configs" / "s3fd.yaml",
                 "spec.yaml", id="spec-s3fd"),
    pytest.param(Path(__file__).resolve().parents[1] / "anchorfit" / "configs"
                 / "yolov3-tiny.yaml", "spec2.yaml", id="spec-yolov3-tiny"),
    pytest.param(DATA / "configs" / "yolov5" / "models" / "yolov5n.yaml", "yolo5.yaml",
                 id="yolov5"),
    pytest.param(DATA / "configs" / "ultralytics" / "models" / "v8" / "yolov8.yaml",
                 "yolov8s.yaml", id="ultralytics-yolov8"),
    pytest.param(DATA / "configs" / "ultralytics" / "models" / "26" / "yolo26.yaml",
                 "yolo26n.yaml", id="ultralytics-yolo26"),
    # mmdet leaves with their _base_ chain: the mutated leaf is written beside a copy of the
    # shipped config tree, so its relative bases resolve (see _in_config_tree)
    pytest.param(DATA / "configs" / "mmdet" / "fcos" / "fcos_r50-caffe_fpn_gn-head_1x_coco.py",
                 "mmdet/fcos/fuzz_fcos.py", id="mmdet-fcos"),
    pytest.param(DATA / "configs" / "mmdet" / "rtmdet" / "rtmdet_tiny_8xb32-300e_coco.py",
                 "mmdet/rtmdet/fuzz_rtmdet.py", id="mmdet-rtmdet"),
]


def _in_config_tree(work: Path, name: str) -> Path:
    """``work/name``; for a name under ``mmdet/``, a copy of the shipped mmdet config tree is
    made in ``work`` first (once), so the mutated leaf finds its ``_base_`` files."""
    if name.startswith("mmdet/"):
        tree = work / "mmdet"
        if not tree.exists():
            shutil.copytree(DATA / "configs" / "mmdet", tree)
    return work / name


@pytest.mark.parametrize("seed, name", CONFIG_SEEDS)
@FUZZ
@given(data=st.data())
def test_fuzz_detector_files(seed: Path, name: str, work: Path, data: st.DataObject) -> None:
    blob = data.draw(mutate(_seed(seed).read_bytes()), label="mutated")
    path = _in_config_tree(work, name)
    path.write_bytes(blob)
    COUNTS[f"{name}:{_detector_case(path)}"] += 1


# --------------------------------------------------------------------------- annotation files

# The streaming readers (what the CLI uses) and the plain ones must agree on every input: the
# same boxes, or the same message.
PLAIN_AND_STREAM = {"coco": (read_coco, read_coco_stream), "yolo": (read_yolo, read_yolo_stream)}


def _read_csv_rows(path: Path) -> object:
    """The row-by-row CSV reader alone (no block ever parsed in C)."""
    original = csvfmt.parse_block
    csvfmt.parse_block = lambda *a, **k: None
    try:
        return csvfmt.read_csv(path)
    finally:
        csvfmt.parse_block = original


def _read_csv_small_blocks(path: Path) -> object:
    """The block reader with blocks of a few dozen bytes, so odd lines meet block edges."""
    original = csvfmt.BLOCK
    csvfmt.BLOCK = 61
    try:
        return csvfmt.read_csv(path)
    finally:
        csvfmt.BLOCK = original


# read_annotations reads CVAT as a stream and CSVs a block at a time: both must give what the
# tree reader / the row reader gives.
PLAIN_AND_STREAM.update({"cvat": (read_cvat, read_cvat_stream),
                         "csv": (_read_csv_rows, csvfmt.read_csv)})
CSV_SMALL_BLOCKS = _read_csv_small_blocks


def _result_or_message(read, path: Path) -> object:
    try:
        boxes = read(path)
    except AnchorfitError as exc:
        return str(exc)
    return len(boxes), dict(boxes.skipped), boxes.units, boxes.image_names, boxes.classes, \
        np.stack([boxes.x, boxes.y, boxes.w, boxes.h]).round(3)


def _same(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[:-1] == b[:-1] and np.array_equal(a[-1], b[-1], equal_nan=True)
    return a == b


def _boxes_pipeline(path: Path, fmt: str, policy: str, image_sizes: Path | None = None) -> None:
    if fmt in PLAIN_AND_STREAM and image_sizes is None:
        plain, stream = (_result_or_message(r, path) for r in PLAIN_AND_STREAM[fmt])
        if fmt == "csv":
            small = _result_or_message(CSV_SMALL_BLOCKS, path)
            assert _same(plain, small), f"row reader: {plain}\n61-byte blocks: {small}"
        if path.is_file() and b"\r" in path.read_bytes() and isinstance(plain, str):
            # known: a lone CR is a line break to the plain reader (universal newlines), not
            # to coco_stream, so their line numbers differ (left to the stream's author)
            plain, stream = (re.sub(r":\d+: ", ": ", str(m), count=1) for m in (plain, stream))
        assert _same(plain, stream), f"plain reader: {plain}\nstreaming reader: {stream}"
    read_annotations(path, fmt, image_sizes=image_sizes)
    detect_format(path)
    prepared = prepare_boxes(path, fmt=fmt, image_sizes=image_sizes,
                             spec=ResizeSpec(policy=policy, size=(64, 96)))
    cluster_anchors(prepared.boxes.wh(), 2, restarts=1, seed=0, grid=None)


ANNOTATION_SEEDS = [
    pytest.param(SEEDS / "coco_voc2012_first4.json", "coco", "letterbox", id="coco"),
    pytest.param(SEEDS / "voc_2007_000032.xml", "voc", "letterbox", id="voc"),
    pytest.param(SEEDS / "cvat_first3.xml", "cvat", "stretch", id="cvat"),
    pytest.param(SEEDS / "raccoon_test_labels_head10.csv", "csv", "letterbox", id="csv"),
    pytest.param(SEEDS / "openimages_head8.csv", "csv", "none", id="csv-openimages"),
    pytest.param(SEEDS / "wider_generated.txt", "wider", "none", id="wider"),
    pytest.param(SEEDS / "fddb_generated.txt", "fddb", "none", id="fddb"),
    pytest.param(SEEDS / "yolo" / "2007_000032.txt", "yolo", "stretch", id="yolo-file"),
]


@pytest.mark.parametrize("seed, fmt, policy", ANNOTATION_SEEDS)
@FUZZ
@given(data=st.data())
def test_fuzz_annotation_files(seed: Path, fmt: str, policy: str, work: Path,
                               data: st.DataObject) -> None:
    blob = data.draw(mutate(_seed(seed).read_bytes()), label="mutated")
    path = work / seed.stem / f"{fmt}_case{seed.suffix}"   # a folder each: YOLO reads its
    path.parent.mkdir(exist_ok=True)                        # neighbours (class names)
    path.write_bytes(blob)
    COUNTS[f"{fmt}:{outcome(lambda: _boxes_pipeline(path, fmt, policy))}"] += 1


# WIDER FACE and FDDB cannot be shipped: their real heads join the generated seeds of the same
# formats (wider_generated.txt, fddb_generated.txt) only where ../shared/data is present.
REAL_HEADS = [
    *([pytest.param(SHARED / "annotations/wider_face/wider_face_val_bbx_gt.txt", "wider", 160,
                    id="wider-real"),  # 1st image: 126 faces
       pytest.param(SHARED / "annotations/fddb/FDDB_annotation_ellipseList_new.txt", "fddb", 40,
                    id="fddb-real")] if SHARED.is_dir() else []),
    pytest.param(DATA / "annotations/coco128_yolo/image_sizes.csv", "sizes", 12,
                 id="sizes-real"),
]


@pytest.mark.parametrize("source, fmt, lines", REAL_HEADS)
@FUZZ
@given(data=st.data())
def test_fuzz_real_heads(source: Path, fmt: str, lines: int, work: Path,
                         data: st.DataObject) -> None:
    """The heads of the big real files (not redistributable, so not in fuzz_seeds)."""
    seed = _head(source, lines, work)
    blob = data.draw(mutate(seed.read_bytes()), label="mutated")
    path = work / f"real_{fmt}_case{seed.suffix}"
    path.write_bytes(blob)
    if fmt == "sizes":
        # a mutated size table beside an unmutated YOLO folder of those images
        labels = _seed(DATA / "annotations/coco128_yolo/labels/train2017")
        COUNTS["sizes:" + outcome(lambda: _boxes_pipeline(labels, "yolo", "letterbox",
                                                           image_sizes=path))] += 1
        return
    COUNTS[f"{fmt}-real:{outcome(lambda: _boxes_pipeline(path, fmt, 'none'))}"] += 1


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (no pixels): all the size reader looks at."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk \
        + struct.pack(">I", zlib.crc32(chunk))


@FUZZ
@given(data=st.data())
def test_fuzz_yolo_folder_with_image_headers(work: Path, data: st.DataObject) -> None:
    """A YOLO folder (labels, obj.names, a PNG header next to a label), every file mutated."""
    folder = work / "yolo_folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for f in ("2007_000032.txt", "2007_000033.txt", "obj.names"):
        seed = (SEEDS / "yolo" / f).read_bytes()
        blob = data.draw(st.one_of(st.just(seed), mutate(seed)), label=f)
        (folder / f).write_bytes(blob)
    png = data.draw(st.one_of(st.just(_png_header(500, 281)), mutate(_png_header(500, 281))),
                    label="png")
    (folder / "2007_000032.png").write_bytes(png)
    COUNTS["yolo-folder:" + outcome(lambda: _boxes_pipeline(folder, "yolo", "letterbox"))] += 1


@FUZZ
@given(data=st.data())
def test_fuzz_ultralytics_data_yaml(work: Path, data: st.DataObject) -> None:
    """The Ultralytics coco8 layout of tests/data with a mutated data.yaml."""
    src = Path(__file__).resolve().parent / "data" / "ultralytics_coco8"
    folder = work / "coco8"
    if not folder.is_dir():
        shutil.copytree(src, folder)
    blob = data.draw(mutate((src / "data.yaml").read_bytes()), label="mutated")
    path = folder / "data.yaml"
    path.write_bytes(blob)
    COUNTS["ultralytics:" + outcome(lambda: _boxes_pipeline(path, "ultralytics",
                                                            "letterbox"))] += 1
