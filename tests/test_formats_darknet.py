"""Darknet .cfg reader: every shared cfg loads, geometry follows Darknet's code, errors say file:line."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from anchorfit.errors import FormatError
from anchorfit.formats import load_detector
from probe_helpers import assert_probe_agrees

ROOT = Path(__file__).resolve().parents[1]
BACKBONES = {"darknet19", "darknet53", "csdarknet53-omega", "efficientnet_b0"}


def _cfgs(shipped_data: Path) -> list[Path]:
    return sorted((shipped_data / "configs" / "darknet").rglob("*.cfg"))


def test_every_shared_cfg_loads(shipped_data: Path) -> None:
    """The whole darknet folder (all 37 shared cfgs are shipped): detectors get levels;
    classifier/backbone cfgs say so."""
    cfgs = _cfgs(shipped_data)
    assert len(cfgs) >= 30
    for path in cfgs:
        det = load_detector(path)
        if path.stem in BACKBONES:
            assert not det.levels and any("no [yolo]" in n for n in det.notes), path.name
            assert det.network.kind == "classifier"
            continue
        assert det.levels, path.name
        for level in det.levels:
            assert level.rf is not None and level.rf.rf[0] > 0, (path.name, level.name)
            assert level.step is not None
            if not level.name.startswith("detection"):
                assert level.anchors, (path.name, level.name)


def test_yolov3_cfg_agrees_with_the_spec(shipped_data: Path) -> None:
    cfg = load_detector(shipped_data / "configs/darknet/pjreddie/yolov3.cfg", (416, 416))
    spec = load_detector(ROOT / "anchorfit" / "configs" / "yolov3.yaml")
    assert cfg.input_size == spec.input_size == (416, 416)
    assert len(cfg.levels) == len(spec.levels) == 3
    for a, b in zip(cfg.levels, spec.levels):
        assert a.rf.stride == b.rf.stride
        assert [(x.w, x.h) for x in a.anchors] == [(x.w, x.h) for x in b.anchors]
        assert a.mask == b.mask
        assert (a.rf.rf, a.rf.center, a.rf.aligned) == (b.rf.rf, b.rf.center, b.rf.aligned)
        assert a.head_rf.rf == b.head_rf.rf
        assert a.rf.y.centers() == b.rf.y.centers()
    assert [x.rf.stride[0] for x in cfg.levels] == [32, 16, 8]
    assert cfg.levels[0].assigner.kind == "darknet"
    assert cfg.levels[0].assigner.ignore_iou == 0.7
    assert cfg.num_classes == 80


def test_yolov3_tiny_cfg_gold_and_probe(shipped_data: Path) -> None:
    det = load_detector(shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg")
    p5, p4 = det.levels
    assert (p5.rf.rf[0], p5.rf.center[0], p5.rf.stride[0]) == (318, Fraction(63, 2), 32)
    assert [c - 16 * i for i, c in enumerate(p4.rf.x.centers())] == [Fraction(31, 2),
                                                                     Fraction(63, 2)]
    assert [(a.w, a.h) for a in p5.anchors] == [(81, 82), (135, 169), (344, 319)]
    assert p5.mask == [3, 4, 5] and p4.mask == [0, 1, 2]
    assert p5.center == "cell-center" and p5.step == (32, 32)
    assert_probe_agrees(det)


def test_yolov4_options(shipped_data: Path) -> None:
    det = load_detector(shipped_data / "configs/darknet/alexeyab/yolov4.cfg")
    assert [lv.rf.stride[0] for lv in det.levels] == [8, 16, 32]
    assert det.levels[0].assigner.pos_iou == 0.213
    assert det.levels[0].extra["scale_x_y"] == "1.2"
    csp = load_detector(shipped_data / "configs/darknet/alexeyab/yolov4-csp.cfg")
    assert csp.resize_policy == "letterbox"


def test_region_anchors_are_grid_units(shipped_data: Path) -> None:
    det = load_detector(shipped_data / "configs/darknet/pjreddie/yolov2-voc.cfg")
    (level,) = det.levels
    assert level.rf.stride[0] == 32 and len(level.anchors) == 5
    assert level.anchors[0].w == pytest.approx(1.3221 * 32)


def _write(tmp_path: Path, body: str, name: str = "net.cfg") -> Path:
    path = tmp_path / name
    path.write_text("[net]\nwidth=64\nheight=64\nchannels=3\n\n" + body)
    return path


def test_maxpool_size2_stride1_pads_right_only(tmp_path: Path) -> None:
    det = load_detector(_write(tmp_path, "[maxpool]\nsize=2\nstride=1\n\n"))
    rf = det.network.analyze()["maxpool0"]
    assert rf.rf == (2, 2) and rf.padding == (0, 0) and rf.feature_size == (64, 64)
    det = load_detector(_write(tmp_path, "[maxpool]\nsize=3\nstride=2\n\n"))
    rf = det.network.analyze()["maxpool0"]
    assert rf.padding == (1, 1) and rf.feature_size == (32, 32)


def test_conv_options(tmp_path: Path) -> None:
    body = ("[convolutional]\nsize=5\ndilation=2\npad=1\nfilters=8\n\n"  # pads 2*2 = 4
            "[convolutional]\nsize=3\nstride_x=2\nstride_y=1\npad=1\nfilters=8\ngroups=8\n\n"
            "[convolutional]\nsize=3\npadding=0\nfilters=4\n\n")
    analysis = load_detector(_write(tmp_path, body)).network.analyze()
    first = analysis["conv0"]
    # Darknet's show_receptive_field would say 1 + (5 + 2*(2-1) - 1) = 7; the truth is 9
    assert first.rf == (9, 9) and first.padding == (4, 4) and first.feature_size == (64, 64)
    second = analysis["conv1"]
    assert second.stride == (1, 2) and second.feature_size == (64, 32)
    assert analysis["conv2"].feature_size == (62, 30)


def test_route_shortcut_reorg_and_global_context(tmp_path: Path) -> None:
    body = ("[convolutional]\nsize=3\nstride=2\npad=1\nfilters=8\n\n"          # 0: 32x32
            "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n\n"                    # 1
            "[convolutional]\nsize=3\npad=1\nfilters=4\n\n"                    # 2
            "[route]\nlayers=-1,1\n\n"                                        # 3: concat
            "[shortcut]\nfrom=-4\n\n"                                         # 4: add with 0
            "[reorg]\nstride=2\n\n"                                           # 5: 16x16
            "[avgpool]\n\n"                                                   # 6: global
            "[convolutional]\nsize=1\nfilters=32\n\n"                          # 7
            "[scale_channels]\nfrom=-3\n\n"                                   # 8: reorg * gate
            "[sam]\nfrom=-4\n\n")                                             # 9
    analysis = load_detector(_write(tmp_path, body)).network.analyze()
    assert analysis["route3"].rf == (7, 7)
    assert analysis["reorg5"].stride == (4, 4) and analysis["reorg5"].feature_size == (16, 16)
    assert analysis["scale_channels8"].global_context
    assert not analysis["reorg5"].global_context


@pytest.mark.parametrize("body,line,words", [
    ("[convolutional]\nsize=3\nfilt", 8, "expected key=value"),
    ("[convolutional]\nsize=3\n\n[convolushional]\nsize=1\n", 9, "unknown section [convolushional]"),
    ("[route]\nlayers=4\n", 7, "refers to layer 4"),
    ("[convolutional]\nsize=1\nfilters=8\n\n[yolo]\nmask=0,7\nanchors=1,2,3,4\nnum=2\n", 11,
     "mask= index 7"),
    ("[convolutional]\nsize=one\n", 7, "is not a number"),
    ("[lstm]\noutput=4\n", 6, "recurrent layer [lstm] is not supported"),
    ("[convolu\n", 6, "bad section header"),
])
def test_malformed_cfg_says_file_and_line(tmp_path: Path, run_cli, body: str, line: int,
                                          words: str) -> None:
    path = _write(tmp_path, body, "bad.cfg")
    code, out, err = run_cli("show", str(path))
    assert code == 2 and out == ""
    assert f"{path}:{line}:" in err and words in err
    assert "Traceback" not in err


def test_cfg_without_net_section(tmp_path: Path) -> None:
    path = tmp_path / "x.cfg"
    path.write_text("# comment\n[convolutional]\nsize=3\n")
    with pytest.raises(FormatError, match="expected \\[net\\]") as info:
        load_detector(path)
    assert info.value.line == 2


def test_rf_command_on_a_cfg(shipped_data: Path, run_cli) -> None:
    code, out, err = run_cli("rf", str(shipped_data / "configs/darknet/pjreddie/yolov3-tiny.cfg"),
                             "--format", "csv")
    assert code == 0
    assert out.splitlines()[1].startswith("yolo16,318,32,127,31.5,13x13")
