"""Probe walk (issue 16): torchvision detectors and classifiers at 512², 481x643 and 600x800.

Every reported layer (a detector's FPN levels, a classifier's stage outputs) is checked against
the gradient probe in float64, on a one-channel twin of the named model (tests/slim_helpers.py:
the same torchvision modules with every conv replaced by a lazy one-channel conv of the same
geometry). The engine must give the twin exactly the named model's numbers (r, S, P, centre,
period, per-phase centres, map size, the flags and every cell's read interval), and then the
probe must find, on the first cell, the last cell and one cell of every phase inside the image,
exactly the input rows and columns the engine says each cell reads. Odd sizes are where FPN
upsampling to a size differs from x2 and where the last row or column is never read.

One detector and one classifier at the odd sizes run by default; the whole walk is ``slow``.
"""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("torchvision")

from anchorfit import load as models  # noqa: E402
from anchorfit.rf.probe import border_and_inside, verify  # noqa: E402
from slim_helpers import materialise, one_channel  # noqa: E402

SIZES = [(512, 512), (481, 643), (600, 800)]
DETECTORS = ["fcos_resnet50_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
             "fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn",
             "fasterrcnn_mobilenet_v3_large_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large"]
CLASSIFIERS = ["resnet18", "resnet50", "resnext50_32x4d", "vgg11", "alexnet", "densenet121",
               "googlenet", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "mnasnet0_5",
               "regnet_y_400mf", "squeezenet1_1"]
FAST = {("fcos_resnet50_fpn", (600, 800)), ("resnet18", (481, 643))}
CASES = [pytest.param(name, size, marks=() if (name, size) in FAST else pytest.mark.slow,
                      id=f"{name}-{size[0]}x{size[1]}")
         for name in DETECTORS + CLASSIFIERS for size in SIZES]


def _twin(name: str, size: tuple[int, int]) -> models.Network:
    torch.manual_seed(0)
    built = models.build_torchvision(name, materialize=True)
    target = built.backbone if hasattr(built, "backbone") else built
    one_channel(target)
    materialise(target, size, in_channels=1)
    return models.load_torch_network(built, f"one-channel {name}", size, in_channels=1)


def _numbers(net: models.Network, layer: str) -> dict:
    rf = net.analyze()[net.node(layer)]
    data = rf.to_dict()
    for key in ("name", "op"):
        data.pop(key)
    data["reads"] = [[rf.y.read(o) for o in range(rf.y.size)],
                     [rf.x.read(o) for o in range(rf.x.size)]]
    return data


@pytest.mark.parametrize("name, size", CASES)
def test_every_reported_layer_against_the_probe(name, size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = models.load(f"torchvision:{name}", size)
        twin = _twin(name, size)
    layers = named.default_layers
    assert layers and twin.default_layers == layers
    for layer in layers:
        assert _numbers(twin, layer) == _numbers(named, layer), layer
    analysis = twin.analyze()
    checks = verify(twin.traced, analysis, [twin.node(layer) for layer in layers], in_channels=1,
                    local=True, cells=border_and_inside)
    for layer, check in zip(layers, checks):
        assert check.agree is True, f"{name} {size} {layer}: {check.detail}"
        rf = analysis[twin.node(layer)]
        # at least the first and the last cell
        assert len(check.cells) >= min(2, rf.y.size * rf.x.size), layer
