"""ERF statistics: T9 (synthetic Gaussian), closed-form conversions, bootstrap, RepLKNet ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorfit.erf import stats as st


def gaussian_map(sigma: float, size: int = 121, center: float = 60.0) -> np.ndarray:
    y = np.arange(size) - center
    g = np.exp(-0.5 * (y / sigma) ** 2)
    return np.outer(g, g)


def test_conversions():
    assert [round(st.gaussian_square_halfwidth(q), 3) for q in (0.2, 0.3, 0.5, 0.9, 0.9545, 0.99)
            ] == [0.594, 0.752, 1.052, 1.949, 2.273, 2.806]
    assert [round(st.gaussian_hdr_radius(q), 3) for q in (0.5, 0.9, 0.9545, 0.99)] == [
        1.177, 2.146, 2.486, 3.035]


@pytest.mark.parametrize("sigma", [6.0, 9.5])
def test_t9_synthetic_gaussian(sigma):
    pmap = gaussian_map(sigma)
    c2 = (120, 120)
    rows = st.sample_rows(torch.from_numpy(pmap)[None], (0, 0), c2)
    s = st.summarize(rows[0], c2)
    np.testing.assert_allclose(s.sigma, sigma, rtol=1e-3)
    np.testing.assert_allclose(s.centroid, 60.0, atol=1e-9)
    assert 4 * s.sigma[0] == pytest.approx(4 * sigma, rel=1e-3)
    for q, side in zip(st.SQUARE_LEVELS, s.squares):
        want = 2 * st.gaussian_square_halfwidth(q) * sigma + 1
        assert abs(side - want) <= 2, (q, side, want)
    luo = st.threshold_region(pmap, (0, 0), c2)
    assert luo["diameter"] == pytest.approx(2 * st.gaussian_hdr_radius(0.9545) * sigma, abs=1.0)
    fit = st.gaussian_fit(pmap, (0, 0))
    assert fit["r2"] > 0.999 and fit["sigma"] == pytest.approx([sigma, sigma], rel=1e-3)


def test_half_integer_centre_gives_even_squares():
    pmap = np.zeros((10, 10))
    pmap[4:6, 4:6] = 1.0  # centre 4.5
    s = st.summarize(st.sample_rows(torch.from_numpy(pmap)[None], (0, 0), (9, 9))[0], (9, 9))
    assert s.squares.tolist() == [2.0, 2.0, 2.0]
    assert st.center_value(pmap, (0, 0), (9, 9)) == 1.0


def test_bootstrap_is_seeded_and_hierarchical():
    rng = np.random.default_rng(0)
    rows = rng.random((12, 7))
    a = st.bootstrap_sums(rows, np.zeros(12), 50, seed=1)
    b = st.bootstrap_sums(rows, np.zeros(12), 50, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 7)
    np.testing.assert_allclose(a[:, 0].mean(), rows[:, 0].sum(), rtol=0.1)
    draws = np.repeat(np.arange(3), 4)
    h = st.bootstrap_sums(rows, draws, 50, seed=1)
    assert h.shape == (50, 7) and not np.allclose(h, a)
    with pytest.raises(ValueError):
        st.bootstrap_sums(rows, np.r_[np.zeros(5), np.ones(7)], 10, seed=0)


def test_replknet_area_ratio_fixture():
    data = np.zeros((9, 9))
    data[4, 4] = 5.0
    data[3:6, 3:6] += 1.0
    data[0, 0] = 4.0  # total 18: the 3x3 square holds 14/18 = 0.78
    assert st.replknet_area_ratio(data, 0.5) == (3, 9 / 81)
    assert st.replknet_area_ratio(data, 0.8) is None  # needs the corner: never reached below h//2
    norm = st.replknet_normalise(data)
    assert norm.max() == 1.0 and norm[4, 4] == 1.0
