"""Cone crops (anchorfit.erf.cone) and per-level windows: where crops go, that the cell keeps its
RF, and that the maps are exactly those of the uncropped network (float64: bit for bit up to
summation order)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn as nn

from anchorfit.design.erf_network import load_erf_network
from anchorfit.erf import ErfConfig, estimate
from anchorfit.erf.cells import plan_levels
from anchorfit.erf.cone import cut_nodes, plan_cone
from anchorfit.erf.window import compute_window, window_analysis
from anchorfit.load import load_torch_network
from anchorfit.rf import GraphBuilder


def test_cut_nodes_of_a_chain_and_of_a_residual_block():
    b = GraphBuilder()
    x = b.input()
    a = b.conv(x, 3, padding=1, name="a")
    c = b.conv(a, 3, padding=1, name="c")
    d = b.merge([a, c], name="d")
    e = b.conv(d, 3, stride=2, padding=1, name="e")
    order = list(b.graph.nodes)
    # c is bypassed by the skip a -> d: not a cut; everything else is
    assert cut_nodes(b.graph, order) == [x, a, d, e]


def _cone(net, layer):
    analysis = net.analyze()
    (plan,) = plan_levels(net, [layer], analysis)
    win = compute_window(net, analysis, [plan])
    graph, sub = window_analysis(net, [plan], win)
    box = tuple((plan.box[a][0] - win.origin[a], plan.box[a][1] - win.origin[a]) for a in range(2))
    return plan, win, plan_cone(graph, sub, [plan.node], win.cells, [box])


def test_ssd300_fc7_cone_ends_in_a_single_fc6_cell():
    net = load_erf_network("torchvision:ssd300_vgg16")
    plan, win, cone = _cone(net, "1")  # fc7: RF 420, stride 16, window 430 x 430
    assert win.shape == (430, 430)
    assert cone is not None and len(cone.crops) >= 3
    # crops start at multiples of what later strides need: at stride 8 (features_17 = conv4_1),
    # an offset of 2 cells keeps the stride-16 grid in phase
    by_node = {c.node: c for c in cone.crops}
    assert by_node["features_17"].y0 % 2 == 0
    # fc7 = extra_0_7_3 is 1x1 after fc6 (3x3 dilation 6): one fc6 cell is all the cone
    last = cone.crops[-1]
    assert (last.y1 - last.y0, last.x1 - last.x0) == (1, 1)
    assert cone.cells == ((0, 0),)


def test_cone_of_two_valid_convs_and_no_cone_for_one():
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    net = load_torch_network(body, "valid", (24, 24))
    _, win, cone = _cone(net, net.default_layers[0])
    # window: RF 5 + 4 px each side = 13; the first conv's 11 x 11 map keeps the 3 x 3 cells
    # the cell reads, starting at cell 4 (stride 1: any offset keeps the grid)
    assert win.shape == (13, 13)
    assert cone is not None and [(c.y0, c.y1, c.x0, c.x1) for c in cone.crops] == [(4, 7, 4, 7)]
    assert cone.cells == ((0, 0),)
    single = load_torch_network(nn.Sequential(nn.Conv2d(3, 4, 3)), "one", (24, 24))
    assert _cone(single, single.default_layers[0])[2] is None  # nothing between input and level


@pytest.mark.parametrize("name, layers, size, schedule", [
    # ResNet-18 at 288 px in float64 is the slowest case of the default run: the full run does it
    pytest.param("torchvision:resnet18", ["layer2", "layer3"], (288, 288), "per-level",
                 marks=pytest.mark.slow),
    ("tests/nets/erf_nets.py:s3fd", ["relu4_3", "fc7"], None, "per-level"),
    ("tests/nets/erf_nets.py:s3fd", ["relu3_3", "relu4_3", "fc7"], None, "joint"),
])
def test_cone_crops_leave_the_maps_unchanged_in_float64(name, layers, size, schedule):
    net = load_erf_network(name, size, layers)
    kw = dict(samples=2, n_boot=20, dtype=torch.float64, schedule=schedule)
    plain = estimate(net, layers, ErfConfig(cone=False, **kw))
    cropped = estimate(net, layers, ErfConfig(**kw))
    assert any(lv.cone_crops for lv in cropped.levels)
    assert not any(lv.cone_crops for lv in plain.levels)
    for a, b in zip(cropped.levels, plain.levels):
        assert a.window == b.window
        np.testing.assert_allclose(a.mean_map, b.mean_map, rtol=0, atol=1e-12 * b.mean_map.max())
        np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-12)


def test_per_level_window_still_catches_train_mode_batchnorm():
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1))
    net = load_torch_network(body, "stuck", (32, 32))
    body[1].train = types.MethodType(lambda self, mode=True: nn.Module.train(self, True), body[1])
    result = estimate(net, config=ErfConfig(samples=2, weights="as_is", n_boot=20))
    lv = result.levels[0]
    assert result.cropped and lv.window != ((0, 32), (0, 32))  # RF 5 + 4 px each side
    assert lv.zero_outside_rf is False and lv.outside_rf_mass > 0
