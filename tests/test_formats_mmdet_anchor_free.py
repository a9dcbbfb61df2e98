"""mmdetection anchor-free and ATSS-family heads, and the backbones they use.

Gold numbers come from mmdet 3.3's source (defaults of FCOSHead, CenterNetUpdateHead, the
MlvlPointGenerator offsets of YOLOX/RTMDet/AutoAssign, VFNet's ATSS generator), from the configs
themselves, and from receptive fields worked out by hand layer by layer (CSPDarknet, CSPNeXt,
Res2Net stems); the RF engine's numbers for the backbones are also checked by the gradient probe
on a torch module built from the same IR.
"""

from __future__ import annotations

import math

import pytest

from anchorfit.formats import load_detector
from anchorfit.formats import mmdet_nets
from anchorfit.formats.mmdet import load_mmdet
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder
from formats_helpers import write

INF = math.inf


@pytest.fixture
def mmdet(shipped_data):
    return shipped_data / "configs" / "mmdet"


def _probe(graph, size, nodes):
    """Engine RF and probe agreement for ``nodes`` of an IR graph (one channel per layer)."""
    from anchorfit.rf.build import to_torch
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    module = to_torch(graph, size, default_channels=1, max_channels=1, outputs=list(nodes))
    traced = trace_module(module, size)
    tnodes = [traced.module_outputs[module.module_path(n)] for n in nodes]
    checks = verify(traced, traced.analysis, tnodes)
    return [(traced.analysis[t].rf, c.agree, c.detail) for t, c in zip(tnodes, checks)]


# --------------------------------------------------------------------------- point heads


def test_fcos_points_ranges_and_options(mmdet):
    det = load_mmdet(mmdet / "fcos" / "fcos_r50-caffe_fpn_gn-head_1x_coco.py")
    assert [lv.name for lv in det.levels] == ["P3", "P4", "P5", "P6", "P7"]
    assert [lv.step for lv in det.levels] == [(s, s) for s in (8.0, 16.0, 32.0, 64.0, 128.0)]
    assert [lv.anchor_free_range for lv in det.levels] == [
        (0, 64), (64, 128), (128, 256), (256, 512), (512, INF)]  # mmdet's default, -1 → 0
    assert all(not lv.anchors and lv.center == "cell-center" and lv.center_offset == 0.5
               for lv in det.levels)
    p3 = det.levels[0]
    assert p3.assigner.kind == "anchor-free" and p3.assigner.radius is None
    assert p3.extra["center_sampling"] is False and p3.extra["norm_on_bbox"] is False
    assert "max(l, t, r, b)" in p3.extra["range_measure"]
    assert len(p3.head) == 5  # 4 stacked convs + 3x3 predictor
    assert det.input_size == (800, 1344) and det.resize_policy == "shortside"
    # on_output extras: P6 = P5 + a 3x3 stride-2 conv reading stride 32, P7 the same at 64
    rf = [lv.rf.rf[0] for lv in det.levels]
    assert rf[3] == rf[2] + 2 * 32 and rf[4] == rf[3] + 2 * 64

    cs = load_mmdet(mmdet / "fcos" /
                    "fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py")
    lv = cs.levels[0]
    assert lv.assigner.radius == 1.5 and lv.extra["center_sampling"] is True
    assert lv.extra["norm_on_bbox"] is True and lv.extra["centerness_on_reg"] is True


def test_fcos_dcn_and_resnext_notes(mmdet):
    dcn = load_mmdet(mmdet / "fcos" /
                     "fcos_r50-dcn-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py")
    plain = load_mmdet(mmdet / "fcos" /
                       "fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py")
    assert any("deformable" in n and "C3, C4, C5" in n for n in dcn.notes)
    assert any("dcn_on_last_conv" in n for n in dcn.notes)
    # a deformable 3x3 is drawn as its regular grid: same RFs as without DCN
    assert [lv.rf.rf for lv in dcn.levels] == [lv.rf.rf for lv in plain.levels]


def test_resnext_rf_is_resnets(mmdet):
    x = load_mmdet(mmdet / "gfl" / "gfl_x101-32x4d_fpn_ms-2x_coco.py", (640, 640))
    r = load_mmdet(mmdet / "gfl" / "gfl_r101_fpn_ms-2x_coco.py", (640, 640))
    assert [(lv.rf.rf, lv.head_rf.rf, lv.rf.center) for lv in x.levels] == [
        (lv.rf.rf, lv.head_rf.rf, lv.rf.center) for lv in r.levels]
    assert any("ResNeXt (groups=32, base_width=4)" in n for n in x.notes)


def test_yolox_points_simota_and_input(mmdet):
    det = load_mmdet(mmdet / "yolox" / "yolox_s_8xb8-300e_coco.py")
    assert det.input_size == (640, 640) and det.resize_policy == "letterbox"
    assert [lv.step for lv in det.levels] == [(8.0, 8.0), (16.0, 16.0), (32.0, 32.0)]
    for lv in det.levels:
        assert lv.center == "top-left" and lv.center_offset == 0  # MlvlPointGenerator(offset=0)
        assert lv.anchor_free_range == (0, INF)  # SimOTA picks among all levels
        assert (lv.assigner.kind, lv.assigner.radius) == ("simota", 2.5)
        assert len(lv.head) == 3 and lv.head[-1].kernel == (1, 1)  # 2 stacked 3x3 + 1x1
    nano = load_mmdet(mmdet / "yolox" / "yolox_nano_8xb8-300e_coco.py")
    assert nano.input_size == (416, 416)


def test_rtmdet_points_assigner_and_attention(mmdet, tmp_path):
    det = load_mmdet(mmdet / "rtmdet" / "rtmdet_tiny_8xb32-300e_coco.py")
    assert det.input_size == (640, 640)
    for lv in det.levels:
        assert lv.center_offset == 0 and lv.anchor_free_range == (0, INF)
        assert (lv.assigner.kind, lv.assigner.topk, lv.assigner.radius) == (
            "dynamic-soft-label", 13, 3.0)
        assert lv.rf.global_context  # CSPNeXt's channel attention pools the whole map
    assert any("channel attention" in n for n in det.notes)
    # without the attention gate the local RFs are the same and the probe can see them
    path = write(tmp_path, "no_ca.py", f"_base_ = '{mmdet}/rtmdet/rtmdet_tiny_8xb32-300e_coco.py'\n"
                 "model = dict(backbone=dict(channel_attention=False))\n")
    plain = load_mmdet(path)
    assert [lv.rf.rf for lv in plain.levels] == [lv.rf.rf for lv in det.levels]
    assert not any(lv.rf.global_context for lv in plain.levels)
    p6 = load_mmdet(mmdet / "rtmdet" / "rtmdet_x_p6_4xb8-300e_coco.py")
    assert p6.input_size == (1280, 1280)
    assert [lv.step[0] for lv in p6.levels] == [8, 16, 32, 64]


def test_centernet_update_fovea_autoassign(mmdet):
    cn = load_mmdet(mmdet / "centernet" / "centernet-update_r50-caffe_fpn_ms-1x_coco.py")
    assert [lv.anchor_free_range for lv in cn.levels] == [
        (0, 80), (64, 160), (128, 320), (256, 640), (512, INF)]
    assert cn.levels[0].center_offset == 0.5 and cn.levels[0].assigner.topk == 9
    fv = load_mmdet(mmdet / "foveabox" / "fovea_r50_fpn_4xb4-1x_coco.py")
    assert [lv.anchor_free_range for lv in fv.levels] == [
        (1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)]
    assert fv.levels[0].extra["sigma"] == 0.4 and fv.levels[0].center_offset == 0.5
    assert "sqrt(w h)" in fv.levels[0].extra["range_measure"]
    aa = load_mmdet(mmdet / "autoassign" / "autoassign_r50-caffe_fpn_1x_coco.py")
    assert all(lv.center_offset == 0 and lv.anchor_free_range == (0, INF) for lv in aa.levels)
    ct = load_mmdet(mmdet / "centernet" / "centernet_r18_8xb16-crop512-140e_coco.py")
    # no Resize at test time: native pixels, analysed at the 512 training crop
    assert ct.input_size == (512, 512) and ct.resize_policy == "none"
    assert [lv.name for lv in ct.levels] == ["P2"]  # three x2 transposed convs from stride 32
    assert ct.levels[0].rf.feature_size == (128, 128) and ct.levels[0].center_offset == 0


# --------------------------------------------------------------------------- ATSS family


@pytest.mark.parametrize("config, kind, topk", [
    ("atss/atss_r50_fpn_1x_coco.py", "atss", 9),
    ("gfl/gfl_r50_fpn_1x_coco.py", "atss", 9),
    ("ddod/ddod_r50_fpn_1x_coco.py", "atss", 9),
    ("vfnet/vfnet_r50_fpn_1x_coco.py", "atss", 9),  # no generator in the config: VFNet's own
    ("tood/tood_r50_fpn_1x_coco.py", "task-aligned", 13),
])
def test_atss_family_octave_anchors(mmdet, config, kind, topk):
    det = load_mmdet(mmdet / config)
    sizes = [[a.to_list() for a in lv.anchors] for lv in det.levels]
    assert sizes == [[[8 * s, 8 * s]] for s in (8, 16, 32, 64, 128)]  # octave_base_scale 8
    for lv in det.levels:
        assert lv.center == "top-left" and lv.center_offset == 0
        assert (lv.assigner.kind, lv.assigner.topk) == (kind, topk)


def test_tood_ddod_paa_fsaf_assigner_details(mmdet):
    tood = load_mmdet(mmdet / "tood" / "tood_r50_fpn_1x_coco.py").levels[0]
    assert (tood.extra["initial_assigner"], tood.extra["initial_topk"],
            tood.extra["initial_epoch"], tood.extra["anchor_type"]) == (
        "ATSSAssigner", 9, 4, "anchor_free")
    assert len(tood.head) == 8  # 6 stacked 3x3, the task decomposition 1x1, 3x3 predictors
    ddod = load_mmdet(mmdet / "ddod" / "ddod_r50_fpn_1x_coco.py").levels[0]
    assert ddod.extra["alpha"] == 0.8 and ddod.extra["reg_assigner"]["alpha"] == 0.5
    paa = load_mmdet(mmdet / "paa" / "paa_r50_fpn_1x_coco.py").levels[0]
    assert (paa.assigner.kind, paa.assigner.pos_iou, paa.assigner.neg_iou) == ("iou", 0.1, 0.1)
    fsaf = load_mmdet(mmdet / "fsaf" / "fsaf_r50_fpn_1x_coco.py")
    assert [a.to_list() for a in fsaf.levels[0].anchors] == [[8, 8]]  # octave_base_scale 1
    assert fsaf.levels[0].assigner.kind == "center-region"
    assert fsaf.levels[0].extra["pos_scale"] == 0.2


# --------------------------------------------------------------------------- backbones


@pytest.mark.parametrize("spec, rfs", [
    # Focus (2) + 3x3 → 6; each stage: 3x3/s2 (+2s), blocks 1x1+3x3 (+2s each), SPP 13 (+12s)
    (mmdet_nets.CSPSpec("CSPDarknet", "P5", 0.33), [6, 18, 74, 186, 666]),  # YOLOX-s/tiny
    (mmdet_nets.CSPSpec("CSPDarknet", "P5", 1.0), [6, 34, 186, 490, 1098]),  # YOLOX-l
    # stem 3x3/s2, 3x3, 3x3 → 11; CSPNeXt blocks 3x3 + 5x5 (+2s +4s)
    (mmdet_nets.CSPSpec("CSPNeXt", "P5", 0.167), [11, 39, 95, 207, 815]),  # RTMDet-tiny
    (mmdet_nets.CSPSpec("CSPNeXt", "P5", 0.33), [11, 39, 143, 351, 959]),  # RTMDet-s
])
def test_csp_backbone_rf_by_hand(spec, rfs):
    b = GraphBuilder()
    outs = mmdet_nets.csp_backbone(b, b.input(), spec)
    a = analyze(b.build(), (1024, 1024))
    assert [a[o].rf[0] for o in outs] == rfs
    assert [int(a[o].stride[0]) for o in outs] == [2, 4, 8, 16, 32]


def test_csp_blocks_follow_mmdet_rounding():
    assert mmdet_nets.CSPSpec("CSPNeXt", "P5", 0.167).blocks() == [1, 1, 1, 1]
    assert mmdet_nets.CSPSpec("CSPDarknet", "P5", 0.67).blocks() == [2, 6, 6, 2]
    assert mmdet_nets.CSPSpec("CSPNeXt", "P6", 1.33).blocks() == [4, 8, 8, 4, 4]


@pytest.mark.parametrize("kind, deepen", [("CSPDarknet", 0.33), ("CSPNeXt", 0.167),
                                          ("CSPNeXt", 0.33)])
def test_csp_backbone_probe(kind, deepen):
    """C3/C4 of YOLOX-s/tiny and RTMDet-tiny/s at 384x384, engine vs gradient probe."""
    b = GraphBuilder()
    outs = mmdet_nets.csp_backbone(b, b.input(), mmdet_nets.CSPSpec(kind, "P5", deepen))
    for rf, agree, detail in _probe(b.build(), (384, 384), outs[2:4]):
        assert agree is True, detail


@pytest.mark.slow
def test_csp_pafpn_probe():
    """The YOLOXPAFPN / CSPNeXtPAFPN wiring, on a small stand-in backbone (three strided convs)
    so the P3..P5 outputs fit a 384x384 probe."""
    for cspnext in (False, True):
        b = GraphBuilder()
        x = b.conv(b.input(), 3, 2, 1)
        x = b.conv(x, 3, 2, 1)
        c3 = b.conv(x, 3, 2, 1)
        c4 = b.conv(c3, 3, 2, 1)
        c5 = b.conv(c4, 3, 2, 1)
        outs = mmdet_nets.csp_pafpn(b, [c3, c4, c5], 1, cspnext)
        # CSPNeXt's 5x5 blocks at stride 32 give P5 an RF of 607: probe P3, P4 there
        checks = _probe(b.build(), (384, 384), outs[:2] if cspnext else outs)
        assert all(agree is True for _, agree, _ in checks), [c[2] for c in checks]


def test_res2net_rf_by_hand_and_probe():
    """Deep stem 3x3/s2, 3x3, 3x3 → 11, max-pool 3/s2 → 15 at stride 4; layer1's first block
    (parallel 3x3s, stride 1) → 23; the two hierarchical blocks chain three 3x3s each → 71."""
    b = GraphBuilder()
    outs = mmdet_nets.res2net(b, b.input(), 101, 4)
    a = analyze(b.build(), (512, 512))
    assert a[outs[0]].rf == (71, 71) and a[outs[0]].stride == (4, 4)
    b2 = GraphBuilder()
    outs2 = mmdet_nets.res2net(b2, b2.input(), 50, 4)
    for rf, agree, detail in _probe(b2.build(), (288, 288), outs2[:2]):
        assert agree is True, detail


def test_convnext_rf_by_hand_and_probe(mmdet):
    """ConvNeXt-B (RTMDet-L variant): 4x4/s4 patchify → 4; 3 blocks of 7x7 at stride 4 → 76;
    2x2/s2 → 80; 3 blocks at 8 → 224 (C3); 2x2 → 232, 27 blocks at 16 → 2824 (C4); 2x2 → 2840,
    3 blocks at 32 → 3416 (C5)."""
    b = GraphBuilder()
    outs = mmdet_nets.convnext(b, b.input(), mmdet_nets.CONVNEXT_DEPTHS["base"])
    a = analyze(b.build(), (1024, 1024))
    assert [a[o].rf[0] for o in outs] == [76, 224, 2824, 3416]
    det = load_mmdet(mmdet / "rtmdet" / "rtmdet_l_convnext_b_4xb32-100e_coco.py")
    assert [lv.step[0] for lv in det.levels] == [8, 16, 32]
    assert not any(lv.rf.global_context for lv in det.levels)  # LayerNorm is per pixel
    for rf, agree, detail in _probe(b.graph, (288, 288), outs[1:2]):
        assert agree is True, detail


def test_fcos_caffe_backbone_probe(mmdet):
    """FCOS's ResNet-50 caffe C3 and C4 read from the config, probed at 320x320."""
    det = load_mmdet(mmdet / "fcos" / "fcos_r50-caffe_fpn_gn-head_1x_coco.py", (320, 320))
    graph = det.network.graph
    nodes = ["backbone.layer2.3.add", "backbone.layer3.5.add"]
    for rf, agree, detail in _probe(graph, (320, 320), nodes):
        assert agree is True, detail


@pytest.mark.slow
def test_ct_resnet_neck_probe(mmdet):
    det = load_mmdet(mmdet / "centernet" / "centernet_r18_8xb16-crop512-140e_coco.py", (704, 704))
    [(rf, agree, detail)] = _probe(det.network.graph, (704, 704), [det.levels[0].node])
    assert agree is True, detail
    assert rf == det.levels[0].rf.rf


# --------------------------------------------------------------------------- messages


def test_messages_for_unsupported_and_non_detectors(mmdet, run_cli):
    cases = {
        mmdet / "rtmdet" / "rtmdet_l_swin_b_4xb32-100e_coco.py":
            "backbone type 'SwinTransformer' is not supported (windowed self-attention",
        mmdet / "yolox" / "metafile.yml": "an mmdetection model-zoo metafile, not a config",
        mmdet / "_base_" / "models" / "fast-rcnn_r50_fpn.py":
            "Fast R-CNN takes proposals computed outside the model",
    }
    for path, message in cases.items():
        code, out, err = run_cli("rf", str(path))
        assert code == 2 and out == "" and message in err and "Traceback" not in err, err


def test_error_in_a_base_names_the_file_given(mmdet, run_cli):
    """The swin P6 config inherits the backbone from another file: both are named."""
    path = mmdet / "rtmdet" / "rtmdet_l_swin_b_p6_4xb16-100e_coco.py"
    code, _, err = run_cli("rf", str(path))
    assert code == 2 and "rtmdet_l_swin_b_4xb32-100e_coco.py:" in err and str(path) in err


def test_load_detector_dispatches_anchor_free(mmdet):
    det = load_detector(mmdet / "yolox" / "yolox_tiny_8xb8-300e_coco.py")
    assert det.to_frame()["anchors (w x h)"].tolist() == ["anchor-free (0, inf]"] * 3
    assert det.to_frame()["assigner"].tolist() == ["simota top10"] * 3


@pytest.mark.parametrize("override, line, message", [
    ("model = dict(bbox_head=dict(regress_ranges=((-1, 64), (64, 1e8))))\n", 2,
     "2 regress_ranges for 5 levels"),
    ("model = dict(bbox_head=dict(strides=[8, 16, 32],\n"
     "  regress_ranges=((-1, 64), (64, 128), (128, 1e8))))\n", 2,
     "FCOSHead has 3 strides but the backbone/neck gives 5 feature maps"),
    ("model = dict(backbone=dict(type='CSPNeXt', arch='P7'), neck=None)\n", 2,
     "CSPNeXt: arch 'P7' is not one of ['P5', 'P6']"),
])
def test_malformed_anchor_free_configs(tmp_path, mmdet, run_cli, override, line, message):
    path = write(tmp_path, "bad.py",
                 f"_base_ = '{mmdet}/fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'\n{override}")
    code, out, err = run_cli("rf", str(path))
    assert code == 2 and out == "" and message in err and "Traceback" not in err, err
    assert f":{line}:" in err, err
