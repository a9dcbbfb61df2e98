"""Closed-form ERF tests of research/erf.md §4.6 (T1-T8, T10-T12), exact in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from anchorfit.erf import ErfConfig, estimate, level_maps
from anchorfit.erf import stats as st
from anchorfit.load import load_torch_network


def box(k: int, stride: int = 1, dilation: int = 1, padding: int = 0, channels: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, k, stride, padding, dilation, bias=False,
                     dtype=torch.float64)
    nn.init.constant_(conv.weight, 1 / (channels * k * k))
    return conv


def network(module: nn.Module, size: int, channels: int = 1):
    return load_torch_network(module.double(), "test", (size, size), in_channels=channels)


def run(module: nn.Module, size: int, mode: str = "abs", **kw):
    kw.setdefault("samples", 1)
    kw.setdefault("weights", "as_is")
    net = network(module, size, kw.pop("channels", 1))
    result = estimate(net, config=ErfConfig(mode=mode, dtype=torch.float64, n_boot=50, **kw))
    return result.levels[0]


def marginal(level, axis: int) -> np.ndarray:
    p = level.mean_map / level.mean_map.sum()
    return p.sum(1 - axis)


@pytest.mark.parametrize("n, k", [(4, 3), (3, 5), (6, 2), (10, 3)])
def test_t1_box_stack_variance_and_support(n, k):
    rf = n * (k - 1) + 1
    lv = run(nn.Sequential(*[box(k) for _ in range(n)]), rf + 6)
    assert lv.rf.rf == (rf, rf)
    np.testing.assert_allclose(lv.sigma**2, n * (k * k - 1) / 12, rtol=1e-12)
    assert np.count_nonzero(marginal(lv, 0)) == rf  # support = RF
    assert lv.zero_outside_rf is True
    if k == 2:  # map * 2^n = C(n, t)
        m = marginal(lv, 0)
        m = m[m > 0] * 2**n
        np.testing.assert_allclose(m, [math.comb(n, t) for t in range(n + 1)], rtol=1e-12)


@pytest.mark.parametrize("n, d", [(3, 2), (4, 3)])
def test_t2_dilation(n, d):
    lv = run(nn.Sequential(*[box(3, dilation=d) for _ in range(n)]), 2 * n * d + 8)
    np.testing.assert_allclose(lv.sigma**2, n * d * d * 8 / 12, rtol=1e-12)
    m = marginal(lv, 1)
    start = lv.box[1][0] - lv.origin[1]
    offsets = np.flatnonzero(m) - start
    assert np.all(offsets % d == 0)


def test_t3_strided_pair():
    lv = run(nn.Sequential(box(3, 2), box(3)), 15)
    assert lv.rf.rf == (7, 7)
    m = marginal(lv, 0)
    np.testing.assert_allclose(m[m > 0] * 9, [1, 1, 2, 1, 2, 1, 1], rtol=1e-12)
    np.testing.assert_allclose(lv.sigma**2, 40 / 12, rtol=1e-12)


def test_t4_resnet_like_stem():
    pool = nn.AvgPool2d(3, 2)
    lv = run(nn.Sequential(box(7, 2), pool, box(3), box(3)), 47)
    assert lv.rf.rf == (27, 27)
    np.testing.assert_allclose(lv.sigma**2, 28.0, rtol=1e-12)


def test_t5_energy_mode_binomial_squared():
    n = 10
    lv = run(nn.Sequential(*[box(2) for _ in range(n)]), 20, mode="energy")
    np.testing.assert_allclose(lv.sigma**2, n * n / (4 * (2 * n - 1)), rtol=1e-12)
    assert round(float(lv.sigma[0] ** 2), 4) == 1.3158


@pytest.mark.parametrize("n, ratio", [(5, 0.541), (20, 0.510)])
def test_t6_energy_over_abs_variance_ratio(n, ratio):
    net = nn.Sequential(*[box(3) for _ in range(n)])
    size = 2 * n + 5
    energy = run(net, size, mode="energy")
    absolute = run(net, size, mode="abs")
    assert round(float(energy.sigma[0] ** 2 / absolute.sigma[0] ** 2), 3) == ratio


class Residual(nn.Module):
    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a
        self.conv = box(3, padding=1)

    def forward(self, x):
        return x + self.a * self.conv(x)


@pytest.mark.parametrize("a, var", [(1.0, 8 / 3), (0.5, 16 / 9), (3.0, 4.0)])
def test_t7_residual_mixture(a, var):
    lv = run(nn.Sequential(*[Residual(a) for _ in range(8)]), 33)
    np.testing.assert_allclose(lv.sigma**2, var, rtol=1e-12)


def test_t8_random_linear_chain_within_bootstrap_interval():
    torch.manual_seed(0)
    n, k, c = 8, 3, 4
    net = nn.Sequential(*[nn.Conv2d(c, c, k, bias=False) for _ in range(n)])
    lv = run(net, 2 * n + 5, mode="energy", channels=c, samples=2, weight_draws=400,
             weights="random")
    want = math.sqrt(n * (k * k - 1) / 12)
    ci = lv.sigma_ci
    assert np.all(ci[:, 0] <= want) and np.all(want <= ci[:, 1]), (lv.sigma, ci)
    assert np.all(ci[:, 1] - ci[:, 0] < 0.1 * want)  # and the interval is informative


def test_t10_stride_invariance_and_t11_centre_on_even_and_odd_inputs():
    body = nn.Sequential(box(3, 2, padding=1), box(3, 2, padding=1), box(3))
    for size in (40, 41):
        net = network(body, size)
        lv = estimate(net, config=ErfConfig(samples=1, weights="as_is", mode="abs",
                                            dtype=torch.float64, n_boot=20)).levels[0]
        assert tuple(lv.centroid) == pytest.approx(tuple(float(c) for c in lv.center), abs=1e-9)
        jump = 4
        x = torch.randn(1, 1, size, size, dtype=torch.float64)
        i, j = lv.cell
        maps = torch.cat([level_maps(body, x, [(i, j)], [None], "abs"),
                          level_maps(body, x, [(i + 1, j)], [None], "abs")], 1)[0]
        c2 = (int(2 * lv.center[0]), int(2 * lv.center[1]))
        rows = st.sample_rows(maps, (0, 0), c2)
        first, second = (st.summarize(r, c2) for r in rows)
        assert second.centroid[0] - first.centroid[0] == pytest.approx(jump, abs=1e-9)
        assert second.centroid[1] == pytest.approx(first.centroid[1], abs=1e-9)
        np.testing.assert_allclose(second.sigma, first.sigma, rtol=1e-12)


def test_t12_separability():
    lv = run(nn.Sequential(box(3, 2), box(5), box(3)), 31)
    p = lv.mean_map / lv.mean_map.sum()
    np.testing.assert_allclose(p, np.outer(p.sum(1), p.sum(0)), atol=1e-15)
    assert lv.sigma[0] == pytest.approx(lv.sigma[1], rel=1e-12)
