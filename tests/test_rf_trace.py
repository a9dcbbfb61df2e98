"""torch.fx front end: torchvision backbones (research §2.4), functional ops, global context."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from anchorfit import load as models
from anchorfit.errors import AnchorfitError, TraceError, UnsupportedOpError
from anchorfit.rf import analyze
from anchorfit.rf.trace import trace_module

sys.path.insert(0, str(Path(__file__).parent))
from nets import small  # noqa: E402

pytest.importorskip("torchvision")


def stage(net, name):
    return net.analyze()[net.node(name)]


def test_resnet50_stages_at_1024():
    net = models.load("torchvision:resnet50", (1024, 1024))
    got = [(stage(net, f"layer{i}").rf[0], stage(net, f"layer{i}").stride[0],
            stage(net, f"layer{i}").padding[0]) for i in range(1, 5)]
    assert got == [(35, 4, 17), (91, 8, 45), (267, 16, 133), (427, 32, 213)]
    assert net.default_layers == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert stage(net, "layer4").center == (0, 0)
    assert stage(net, "layer4").feature_size == (32, 32)


def test_resnet18_stages():
    net = models.load("torchvision:resnet18")
    got = [stage(net, n).rf[0] for n in ["conv1", "maxpool", "layer1", "layer2", "layer3",
                                          "layer4"]]
    assert got == [7, 11, 43, 99, 211, 435]
    assert [stage(net, f"layer{i}").padding[0] for i in range(1, 5)] == [21, 49, 105, 217]


def test_vgg16_per_stage_including_half_centres():
    net = models.load("torchvision:vgg16")
    # features indices: conv1_2 relu=3, pool1=4, conv2_2=8, pool2=9, conv3_3=15, pool3=16,
    # conv4_3=22, pool4=23, conv5_3=29, pool5=30
    want = {3: (5, 1, 2, 0), 4: (6, 2, 2, Fraction(1, 2)), 8: (14, 2, 6, Fraction(1, 2)),
            9: (16, 4, 6, Fraction(3, 2)), 15: (40, 4, 18, Fraction(3, 2)),
            16: (44, 8, 18, Fraction(7, 2)), 22: (92, 8, 42, Fraction(7, 2)),
            23: (100, 16, 42, Fraction(15, 2)), 29: (196, 16, 90, Fraction(15, 2)),
            30: (212, 32, 90, Fraction(31, 2))}
    for idx, (r, s, p, c) in want.items():
        node = stage(net, f"features.{idx}")
        assert (node.rf[0], node.stride[0], node.padding[0], node.center[0]) == (r, s, p, c), idx


def test_classifier_output_is_global_context():
    net = models.load("torchvision:resnet18")
    analysis = net.analyze()
    fc = analysis[net.node("fc")]
    assert fc.global_context and fc.rf == (435, 435)


def test_functional_ops_and_sizes_match_pytorch():
    traced = trace_module(small.FunctionalNet(), (38, 62))  # check_sizes compares with PyTorch
    analysis = analyze(traced.graph, (38, 62))
    out = analysis[traced.output_names["output"]]
    assert out.feature_size == tuple(traced.shapes[out.name][-2:])
    # F.pad (left=1, top=2) moves the centre by one cell of its input's stride on each axis
    assert out.stride == (2, 4)
    assert not out.aligned  # the nearest-upsampled branch is phase dependent


def test_se_and_groupnorm_flag_global_context_but_keep_local_rf():
    traced = trace_module(small.SqueezeExcite(), 32)
    analysis = analyze(traced.graph, 32)
    out = analysis[traced.output_names["output"]]
    assert out.global_context
    assert out.rf == (5, 5)


def test_conv1d_network_uses_the_x_axis():
    traced = trace_module(small.Conv1dNet(), (1, 100), spatial_dims=1)
    out = analyze(traced.graph, (1, 100))[traced.output_names["output"]]
    assert out.rf == (1, 5 + 1 * 2 + (3 - 1) * 3 * 4)  # conv 5; pool k2 at S2: +2; d3 k3 at S4: +24
    assert out.stride == (1, 4)


def test_untraceable_module_names_the_failing_submodule():
    with pytest.raises(TraceError, match=r"inside module gate \(Gate\)"):
        trace_module(small.Untraceable(), 16)


def test_unknown_op_is_an_error_or_pointwise_on_request():
    with pytest.raises(UnsupportedOpError, match="roll"):
        trace_module(small.Rolled(), 16)
    with pytest.warns(UserWarning, match="roll"):
        traced = trace_module(small.Rolled(), 16, unknown="pointwise")
    assert analyze(traced.graph, 16)[traced.output_names["output"]].rf == (5, 5)


def test_unknown_torchvision_name_suggests():
    with pytest.raises(AnchorfitError, match="resnet50"):
        models.load("torchvision:resnet5O")


def test_detector_default_layers_are_head_inputs():
    net = models.load("torchvision:retinanet_resnet50_fpn")
    assert net.default_layers == ["0", "1", "2", "p6", "p7"]
    analysis = net.analyze()
    strides = [analysis[net.node(n)].stride[0] for n in net.default_layers]
    assert strides == [8, 16, 32, 64, 128]
    assert net.heads["0"] and len(net.heads["0"]) == 5


def test_meta_model_needs_no_memory_for_weights():
    net = models.load("torchvision:resnet152", (224, 224))
    assert all(p.is_meta for p in net.module.parameters())
    assert torch.device("meta") == next(net.module.parameters()).device
