"""Any torchvision classifier (README's promise for ``anchorfit rf torchvision:NAME``).

Each family's default layers are checked against the gradient probe. The probe runs in float64
on a *narrow* copy of the named model: the same torchvision classes with the same kernels,
strides and depths (so the same geometry, which the test asserts by comparing the engine's
numbers for both) but a few channels, so a backward pass per cell stays cheap. Global-context
layers (SE gates, window attention) are probed with their global paths cut
(``verify(..., local=True)``), which checks the local RF the engine reports next to the flag.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

pytest.importorskip("torchvision")

import torchvision  # noqa: E402
from torchvision.models import convnext, efficientnet, regnet, swin_transformer  # noqa: E402

from anchorfit import load as models  # noqa: E402
from anchorfit.rf.probe import cells_to_probe, verify  # noqa: E402
from anchorfit.rf.trace import trace_module  # noqa: E402


# --------------------------------------------------------------------------- narrow twins


def _narrow_convnext_tiny() -> nn.Module:
    cfg = convnext.CNBlockConfig
    return convnext.ConvNeXt([cfg(8, 16, 3), cfg(16, 24, 3), cfg(24, 32, 9), cfg(32, None, 3)],
                             num_classes=10)


def _narrow_efficientnet_b0() -> nn.Module:
    setting, _ = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.1, depth_mult=1.0)
    return efficientnet.EfficientNet(setting, 0.2, num_classes=10)


def _narrow_regnet_y_400mf() -> nn.Module:
    ref = regnet.BlockParams.from_init_params(depth=16, w_0=48, w_a=27.89, w_m=2.09,
                                              group_width=8, se_ratio=0.25)
    params = regnet.BlockParams(depths=ref.depths, widths=[8, 16, 24, 32],
                                group_widths=[8] * len(ref.depths),
                                bottleneck_multipliers=ref.bottleneck_multipliers,
                                strides=ref.strides, se_ratio=ref.se_ratio)
    return regnet.RegNet(params, stem_width=8, num_classes=10)


def _narrow_swin_t() -> nn.Module:
    return swin_transformer.SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 2, 6, 2],
                                            num_heads=[1, 1, 1, 1], window_size=[7, 7],
                                            num_classes=10)


def _narrow_vit_b_16() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=224, patch_size=16, num_layers=1, num_heads=1,
                             hidden_dim=8, mlp_dim=8, num_classes=10)


class _LazyBasicConv(nn.Module):
    """Inception's conv+BN+ReLU with an eighth of the channels (input channels inferred)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.LazyConv2d(max(out_channels // 8, 2), bias=False, **kwargs)
        self.bn = nn.LazyBatchNorm2d(eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _lazy_ready(model: nn.Module, size: int) -> nn.Module:
    model.fc = nn.LazyLinear(10)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))  # materialise the lazy layers
    return model


def _narrow_inception_v3() -> nn.Module:
    from torchvision.models.inception import (
        InceptionA, InceptionAux, InceptionB, InceptionC, InceptionD, InceptionE, Inception3)

    blocks = [_LazyBasicConv] + [partial(b, conv_block=_LazyBasicConv) for b in (
        InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionAux)]
    return _lazy_ready(Inception3(aux_logits=False, init_weights=False, inception_blocks=blocks),
                       299)


def _narrow_googlenet() -> nn.Module:
    from torchvision.models.googlenet import GoogLeNet, Inception, InceptionAux

    blocks = [_LazyBasicConv, partial(Inception, conv_block=_LazyBasicConv), InceptionAux]
    return _lazy_ready(GoogLeNet(aux_logits=False, init_weights=False, blocks=blocks), 224)


#: family -> (named torchvision model, narrow twin, input size, expected global flags per layer)
FAMILIES: dict[str, tuple[str, Callable[[], nn.Module], int, list[bool]]] = {
    "convnext": ("convnext_tiny", _narrow_convnext_tiny, 224, [False] * 4),
    "efficientnet": ("efficientnet_b0", _narrow_efficientnet_b0, 224, [True] * 5),
    "regnet": ("regnet_y_400mf", _narrow_regnet_y_400mf, 224, [False] + [True] * 4),
    "mobilenet_v3": ("mobilenet_v3_small", partial(torchvision.models.mobilenet_v3_small,
                                                   width_mult=0.25, num_classes=10), 224,
                     [False] + [True] * 4),
    "swin": ("swin_t", _narrow_swin_t, 224, [True] * 4),
    "vit": ("vit_b_16", _narrow_vit_b_16, 224, [False]),
    "inception": ("inception_v3", _narrow_inception_v3, 299, [False] * 5),
    "googlenet": ("googlenet", _narrow_googlenet, 224, [False] * 5),
}


def _numbers(net: models.Network, layer: str) -> tuple:
    rf = net.analyze()[net.node(layer)]
    return rf.rf, rf.stride, rf.padding, rf.center, rf.feature_size, rf.global_context


def _probe_cells(rf, size: tuple[int, int]) -> list[tuple[int, int]]:
    """The first cell (its RF end, r - 1 - P, when inside the image), one cell whose RF lies
    inside the image if there is one (r and its start), else the last cell (its start)."""
    inside = cells_to_probe(rf, size, extra=0)[:1]
    return [(0, 0)] + (inside or [(rf.y.size - 1, rf.x.size - 1)])


#: probing these whole networks takes 5-20 s each on 2 cores: the full run (README) does them
SLOW_FAMILIES = {"convnext", "efficientnet", "inception", "mobilenet_v3", "regnet", "swin"}


@pytest.mark.parametrize("family", [
    pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FAMILIES else f for f in sorted(FAMILIES)])
def test_default_layers_against_the_probe(family):
    name, build, size, flags = FAMILIES[family]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = models.load(f"torchvision:{name}")
        torch.manual_seed(0)
        twin = models.load_torch_network(build().eval(), f"narrow {name}", (size, size))
    assert named.input_size == (size, size)
    assert named.kind == "classifier"
    layers = named.default_layers
    assert twin.default_layers == layers
    # the narrow twin has the named model's geometry
    assert [_numbers(twin, layer) for layer in layers] == [_numbers(named, layer)
                                                          for layer in layers]
    assert [named.analyze()[named.node(layer)].global_context for layer in layers] == flags
    checks = verify(twin.traced, twin.analyze(), [twin.node(layer) for layer in layers],
                    local=True, cells=_probe_cells)
    measured = 0
    for layer, check in zip(layers, checks):
        assert check.agree is True, f"{layer}: {check.detail}"
        # the probe saw a non-empty window on each probed cell
        assert all(c.rows is not None and c.cols is not None for c in check.cells), layer
        rsp = _probe_rsp(check, size)
        if rsp is not None:  # r, S, P read off the probe alone
            rf = twin.analyze()[twin.node(layer)]
            assert rsp == (rf.rf, rf.stride, rf.padding), layer
            measured += 1
    assert measured >= 1  # at least the first stage is measured, not only clipped


def _probe_rsp(check, size: int) -> tuple | None:
    """(r, S, P) per axis from the probe: cell 0's RF end and an inside cell's interval."""
    first, other = check.cells[0], check.cells[-1]
    out = []
    for lo_hi0, lo_hi, i in ((first.rows, other.rows, other.i), (first.cols, other.cols, other.j)):
        lo, hi = lo_hi
        if i == 0 or lo == 0 or hi == size - 1 or lo_hi0[1] == size - 1:
            return None  # clipped: the interval does not give r, S and P exactly
        r = hi - lo + 1
        p = r - 1 - lo_hi0[1]
        out.append((r, (lo + p) // i, p, (lo + p) % i))
    if any(rem for *_, rem in out):
        return None
    return tuple(tuple(v[k] for v in out) for k in range(3))


def test_stage_names_follow_the_main_blocks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inception = models.load("torchvision:inception_v3")
        googlenet = models.load("torchvision:googlenet")
    assert inception.default_layers == ["Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e",
                                        "Mixed_7c"]
    assert inception.input_size == (299, 299)
    assert googlenet.default_layers == ["conv1", "conv3", "inception3b", "inception4e",
                                        "inception5b"]
    # Mixed_6a is a stride-2 block: the stride-8 output is Mixed_5d, 35x35 at 299 px
    assert _numbers(inception, "Mixed_5d")[1:5] == ((8, 8), (50, 50), (13, 13), (35, 35))


class _Wrapper(nn.Module):
    """A user's classifier around a backbone, with a forward of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.head = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return self.head(x.mean((2, 3)))


def test_stages_inside_a_wrapper_are_still_found():
    with torch.device("meta"):
        module = _Wrapper()
    net = models.load_torch_network(module, "wrapper", (224, 224))
    assert net.default_layers == ["backbone.relu"] + [f"backbone.layer{i}" for i in range(1, 5)]
    assert _numbers(net, "backbone.layer4")[:3] == ((435, 435), (32, 32), (217, 217))


def test_vit_reports_the_patch_embedding_and_says_why():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = models.load("torchvision:vit_b_16")
    assert net.default_layers == ["conv_proj"]
    assert _numbers(net, "conv_proj")[:3] == ((16, 16), (16, 16), (0, 0))
    assert any("token sequence" in note and "self-attention" in note for note in net.notes)
    logits = net.analyze()[net.graph.outputs[0]]
    assert logits.global_context


def test_vit_at_another_size_is_a_message(run_cli):
    code, _, err = run_cli("rf", "torchvision:vit_b_16", "--input", "256")
    assert code == 2 and "takes 224x224 inputs only" in err and "--input 224" in err


# --------------------------------------------------------------------------- channel LayerNorm


def _narrow_convnext_at_512():
    torch.manual_seed(0)
    module = _narrow_convnext_tiny().eval()
    return models.load_torch_network(module, "narrow convnext_tiny", (512, 512))


@pytest.mark.slow
def test_convnext_tiny_channel_layernorm_is_local_at_512():
    """Issue 16 oracle: features.1 76/4/36, features.3 224/8/108, aligned, not global."""
    named = models.load("torchvision:convnext_tiny", (512, 512))
    got = {layer: _numbers(named, layer) for layer in ("features.1", "features.3")}
    assert got["features.1"][:3] == ((76, 76), (4, 4), (36, 36))
    assert got["features.3"][:3] == ((224, 224), (8, 8), (108, 108))
    for layer in ("features.1", "features.3"):
        rf = named.analyze()[named.node(layer)]
        assert rf.aligned and not rf.global_context, layer
    twin = _narrow_convnext_at_512()
    analysis = twin.analyze()
    nodes = [twin.node("features.1"), twin.node("features.3")]
    # plain probe (nothing cut): LayerNorm over channels really is per pixel
    checks = verify(twin.traced, analysis, nodes, cells=lambda rf, size: [(0, 0), (20, 21)])
    assert [c.agree for c in checks] == [True, True], [c.detail for c in checks]
    assert checks[0].cells[0].rows == (0, 39) and checks[0].cells[0].cols == (0, 39)
    # r/S/P read off the probe alone
    assert _probe_rsp(checks[0], 512) == ((76, 76), (4, 4), (36, 36))
    assert _probe_rsp(checks[1], 512) == ((224, 224), (8, 8), (108, 108))


def test_convnext_tiny_unknown_pointwise_runs(run_cli):
    code, out, err = run_cli("rf", "torchvision:convnext_tiny", "--unknown", "pointwise",
                             "--input", "512", "--format", "json")
    assert code == 0, err
    layers = {row["name"]: row for row in json.loads(out)["layers"]}
    assert layers["features.1"]["rf"] == [76, 76]
    assert layers["features.1"]["global_context"] is False


class _LayerNorm2d(nn.LayerNorm):
    """Channel LayerNorm as ConvNeXt writes it: NHWC permute, F.layer_norm, permute back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _ChannelsLast(nn.Module):
    """conv -> NHWC -> a per-pixel op over the last dim -> NCHW -> conv."""

    def __init__(self, middle: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.middle = middle
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).permute(0, 2, 3, 1)
        return self.conv2(self.middle(x).permute(0, 3, 1, 2))


class _Sandwich(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = norm
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.norm(self.conv1(x)))


class _PixelGate(nn.Module):
    """Channel attention without spatial pooling: each pixel gates itself (per-cell)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x))


class _SqueezeExcite(nn.Module):
    """SE: a gate from the spatial mean (global context, local RF unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


@pytest.mark.parametrize("make, is_global", [
    (lambda: _Sandwich(_PixelGate(8)), False),
    (lambda: _Sandwich(_SqueezeExcite(8)), True),
    (lambda: _Sandwich(_LayerNorm2d(8)), False),
    (lambda: _Sandwich(convnext.LayerNorm2d(8)), False),
    (lambda: _ChannelsLast(nn.LayerNorm(8)), False),
    (lambda: _ChannelsLast(nn.RMSNorm(8)), False),
    (lambda: _ChannelsLast(nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))), False),
    (lambda: _Sandwich(nn.GroupNorm(2, 8)), True),
    (lambda: _Sandwich(nn.LayerNorm([8, 64, 8])), True),  # over C, H, W: statistics over space
], ids=["pixel_gate", "squeeze_excite", "layernorm2d_functional", "torchvision_layernorm2d",
        "nhwc_layernorm", "nhwc_rmsnorm", "nhwc_mlp", "groupnorm", "layernorm_over_space"])
def test_channel_norms_are_per_pixel_and_space_norms_global(make, is_global):
    torch.manual_seed(0)
    module = make().eval()
    traced = trace_module(module, (128, 16))  # the 64x8 map after conv1
    analysis = traced.analysis
    out = analysis[traced.graph.outputs[0]]
    assert (out.rf, out.stride, out.padding, out.feature_size) == ((7, 7), (2, 2), (3, 3),
                                                                   (64, 8))
    assert out.global_context is is_global
    (check,) = verify(traced, analysis, [traced.graph.outputs[0]], local=is_global)
    assert check.agree is True, check.detail


def test_a_permute_that_swaps_y_and_x_is_refused():
    class Transposer(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.transpose(2, 3)

    from anchorfit.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match="swaps the y and x axes"):
        trace_module(Transposer(), (32, 16))


# --------------------------------------------------------------------------- every model name

CLASSIFIERS = torchvision.models.list_models(module=torchvision.models)
#: One per family; the whole list runs under -m slow.
FAST = ["alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s",
        "googlenet", "inception_v3", "maxvit_t", "mnasnet0_5", "mobilenet_v2",
        "mobilenet_v3_large", "regnet_x_400mf", "regnet_y_400mf", "resnet18",
        "resnext50_32x4d", "shufflenet_v2_x0_5", "squeezenet1_1", "swin_t", "swin_v2_t", "vgg11",
        "vit_b_32", "wide_resnet50_2"]


def _check_cli(run_cli, name: str) -> None:
    code, out, err = run_cli("rf", f"torchvision:{name}", "--format", "json")
    assert "Traceback" not in err
    if code == 0:
        doc = json.loads(out)
        assert doc["layers"], name
        assert all(math.prod(row["feature_size"]) >= 1 for row in doc["layers"])
    else:
        assert code == 2, (name, err)
        assert err.startswith("anchorfit: error:") and "unsupported op" in err, (name, err)
        assert "misread" not in err, (name, err)


def test_fast_subset_covers_every_family():
    families = {n.rstrip("0123456789_").split("_")[0] for n in CLASSIFIERS}
    assert {n.split("_")[0].rstrip("0123456789") for n in FAST} >= {
        f.rstrip("0123456789") for f in families}
    assert set(FAST) <= set(CLASSIFIERS)


@pytest.mark.parametrize("name", FAST)
def test_cli_on_a_model_of_each_family(run_cli, name):
    _check_cli(run_cli, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(CLASSIFIERS) - set(FAST)))
def test_cli_on_every_other_classifier(run_cli, name):
    _check_cli(run_cli, name)


def test_only_maxvit_is_refused(run_cli):
    """The one classifier whose window partition cannot be followed says which op stops it."""
    code, _, err = run_cli("rf", "torchvision:maxvit_t")
    assert code == 2 and "unsupported op function einsum" in err
    code, _, err = run_cli("rf", "torchvision:maxvit_t", "--unknown", "pointwise")
    assert code == 2 and "reshapes a token sequence" in err and "cell by cell" in err
    assert "misread" not in err


class _NonLocal(nn.Module):
    """A non-local block: attention over all HW positions, reshaped back, W_z, added to x."""

    def __init__(self, conv_after: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 8, 3, padding=1) if conv_after else nn.Sequential(
            nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8))  # a 3x3 conv reads cells, W_z and BN do not

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, c, h, w = x.shape
        tokens = x.flatten(2)
        attn = torch.softmax(tokens.transpose(1, 2) @ tokens, dim=-1)
        return x + self.out((tokens @ attn).view(n, c, h, w))


def test_non_local_block_is_global_with_local_rf_kept():
    traced = trace_module(_NonLocal(conv_after=False), (32, 24))
    out = traced.analysis[traced.graph.outputs[0]]
    assert (out.rf, out.padding, out.feature_size) == ((3, 3), (1, 1), (32, 24))
    assert out.global_context


def test_a_conv_on_tokens_reshaped_to_a_map_names_the_reshape():
    from anchorfit.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match="reshapes a token sequence") as info:
        trace_module(_NonLocal(conv_after=True), (32, 24))
    assert "node 'view'" in str(info.value) and "misread" not in str(info.value)
