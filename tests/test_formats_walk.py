"""Walk every file under ../shared/data/configs: each detector loads (levels, RF joined,
anchors), every other file fails with a specific message that names it; and the same detector
read from several formats agrees."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from anchorfit.detector import RANGE_MEASURES
from anchorfit.formats import load_detector

# Collection needs the file list; the ``shared_data`` fixture still decides skipping.
_CONFIGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "configs"
FILES = sorted(str(p.relative_to(_CONFIGS)) for p in _CONFIGS.rglob("*") if p.is_file()) \
    if _CONFIGS.is_dir() else []

#: Files that are not detectors (or not in a format anchorfit reads), and what the user is told.
NOT_DETECTORS = {
    "caffe/*/labelmap*.prototxt": "a label map prototxt: no 'layer { }' blocks",
    "caffe/*/solver.prototxt": "a solver prototxt: no 'layer { }' blocks",
    "yolov5/data/hyps/*.yaml": "a YOLOv5 hyperparameter file, not a model",
    "yolov5/data/*.yaml": "a YOLOv5 dataset file, not a model",
    "yolov5/models/hub/anchors.yaml": "a YOLOv5 anchor-set collection, not a model",
    "mmdet/_base_/datasets/*.py": "no 'model' in this config",
    "mmdet/_base_/schedules/*.py": "no 'model' in this config",
    "mmdet/_base_/default_runtime.py": "no 'model' in this config",
    "mmdet/retinanet/retinanet_tta.py": "no 'model' in this config",
    "darknet/*.names": "unknown file type '.names'",
    "darknet/*.data": "unknown file type '.data'",
    "ssd_pytorch/coco_labels.txt": "unknown file type '.txt'",
    "tf_object_detection/*.config": "unknown file type '.config'",
    "tf_object_detection/object-detection.pbtxt": "a label map prototxt",
    # PyTorch re-implementations' prior dicts: Python data, but neither mmdet nor a network
    "*_pytorch/config.py": "cannot tell which .py format this is",
    "ultralytics/datasets/*.yaml": "an Ultralytics dataset file, not a model",
    "ultralytics/default.yaml": "an Ultralytics settings/hyperparameter file (default.yaml), not a model",
    # mmdetection model-zoo metafiles and test-time-augmentation bases (no model)
    "mmdet/*/metafile.yml": "an mmdetection model-zoo metafile, not a config",
    "mmdet/*/*_tta.py": "no 'model' in this config",
    "mmdet/_base_/models/fast-rcnn_r50_fpn.py":
        "Fast R-CNN takes proposals computed outside the model",
    # the large-scale-jitter configs inherit ../common/, which the shared data does not hold
    "mmdet/*/*_8xb8-amp-lsj-200e_coco.py":
        "_base_ file '../common/lsj-200e_coco-detection.py' not found",
    # RTMDet-L with a Swin transformer backbone: the one module not read is named
    "mmdet/rtmdet/rtmdet_l_swin_b_*.py": "backbone type 'SwinTransformer' is not supported",
}


def _expected_error(rel: str) -> str | None:
    for pattern, message in NOT_DETECTORS.items():
        if fnmatch.fnmatch(rel, pattern):
            return message
    return None


@pytest.mark.slow  # ~870 files of ../shared/data: the full run (README) walks them
@pytest.mark.parametrize("rel", FILES or ["<no shared data>"])
def test_every_config_file(shared_data, run_cli, rel):
    path = shared_data / "configs" / rel
    message = _expected_error(rel)
    if message is not None:
        code, out, err = run_cli("rf", str(path))
        assert code == 2 and out == "", err
        assert str(path) in err and message in err, err
        return
    det = load_detector(path)
    assert det.network is not None
    if rel.startswith("darknet/"):
        return  # backbones without levels, YOLOv1 grids: the Darknet reader's own tests
    assert det.levels, rel
    assert det.network is not None and det.network.default_layers
    for lv in det.levels:
        assert lv.rf is not None and lv.head_rf is not None, (rel, lv.name)
        assert lv.step is not None and min(lv.step) > 0
        has_anchors = bool(lv.anchors) or lv.anchor_free_range is not None or \
            lv.extra.get("anchors_to_fit") or det.extra.get("anchors_to_fit")
        assert has_anchors, (rel, lv.name)
        if lv.anchor_free_range is not None:  # every reader says what its range bounds
            assert lv.range_measure in RANGE_MEASURES, (rel, lv.name)


def test_walk_covers_every_detector_family():
    families = {rel.split("/")[0] for rel in FILES if _expected_error(rel) is None}
    if FILES:
        assert {"caffe", "yolov5", "mmdet", "detectron2", "darknet"} <= families


def _levels(det):
    return sorted(det.levels, key=lambda lv: lv.rf.stride)


def test_yolov3_four_formats_agree(shipped_data):
    """YOLOv3 from the Darknet cfg, the packaged zoo spec, the YOLOv5 hub yaml and the mmdet
    config: same strides, anchors per level, prediction RF (head_rf) and RF centres."""
    cfg = shipped_data / "configs"
    sources = {
        "yolov5": cfg / "yolov5" / "models" / "hub" / "yolov3.yaml",
        "mmdet": cfg / "mmdet" / "yolo" / "yolov3_d53_8xb8-ms-608-273e_coco.py",
        "darknet": cfg / "darknet" / "pjreddie" / "yolov3.cfg",
        "zoo": "yolov3",
    }
    dets = {}
    for name, src in sources.items():
        try:
            dets[name] = load_detector(src, (608, 608))
        except Exception as exc:  # part A's readers may be absent in a partial tree
            msg = str(exc)
            if name in ("darknet", "zoo") and ("no such file" in msg or "unknown file type" in msg):
                continue
            raise
    assert {"yolov5", "mmdet"} <= set(dets)
    assert set(dets) == set(sources) or not (shipped_data / "configs" / "darknet").is_dir() or \
        "zoo" not in dets
    ref = _levels(dets["yolov5"])
    for name, det in dets.items():
        got = _levels(det)
        assert [lv.rf.stride for lv in got] == [lv.rf.stride for lv in ref], name
        assert [[a.to_list() for a in lv.anchors] for lv in got] == [
            [a.to_list() for a in lv.anchors] for lv in ref], name
        assert [lv.head_rf.rf for lv in got] == [lv.head_rf.rf for lv in ref], name
        assert [lv.head_rf.center for lv in got] == [lv.head_rf.center for lv in ref], name
        assert [lv.center for lv in got] == ["cell-center"] * 3, name
    assert [lv.head_rf.rf[0] for lv in ref] == [981, 949, 917]


def test_ssd300_three_formats_agree(shipped_data):
    """SSD300 from Caffe, mmdet and the packaged zoo: RF, head RF, steps."""
    cfg = shipped_data / "configs"
    caffe = load_detector(cfg / "caffe" / "ssd300_vgg_voc0712" / "deploy.prototxt")
    mm = load_detector(cfg / "mmdet" / "pascal_voc" / "ssd300_voc0712.py")
    rows = [[(lv.rf.rf, lv.head_rf.rf, lv.rf.center, lv.step) for lv in d.levels]
            for d in (caffe, mm)]
    assert rows[0] == rows[1]
    try:
        zoo = load_detector("ssd300_vgg16")
    except Exception:  # the packaged zoo is part A's
        return
    assert [(lv.rf.rf, lv.head_rf.rf, lv.step) for lv in zoo.levels] == [
        (r[0], r[1], r[3]) for r in rows[0]]
