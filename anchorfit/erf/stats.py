"""ERF statistics: per-sample sufficient statistics, the summaries built on them, bootstrap
intervals, and the closed-form conversions of research/erf.md §4.2.

Every summary is a function of the *mean* map over samples, and every one we bootstrap is a
function of additive per-sample quantities. So each sample is reduced once to a row

    [m0, Σ(y-cy)A, Σ(y-cy)²A, Σ(x-cx)A, Σ(x-cx)²A, C(0), C(1), ..., C(K)]

(total mass, first and second moments about the cell's RF centre c, and the mass C(k) of the
centred square of half-width k/2, i.e. of pixels with 2·max(|y-cy|, |x-cx|) <= k). A bootstrap
resample is then a weighted sum of rows: no maps are kept per sample.

Coordinates are input pixels in the index convention (pixel k at k); c may be a half-integer, so
radii are handled doubled (integers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: Mass levels of the centred squares (50 %, 90 %, Luo's 95.45 % = ±2σ of a Gaussian).
SQUARE_LEVELS: tuple[float, ...] = (0.5, 0.9, 0.9545)
#: Luo et al.'s threshold: pixels above (1 - 95.45 %) of the centre value.
LUO_FRACTION = 0.0455
#: Number of moment columns before the square-mass columns.
N_MOMENTS = 5


def square_key(q: float) -> str:
    """JSON key of a mass level: 0.5 -> '50', 0.9545 -> '95.45'."""
    return f"{q * 100:g}"


# --------------------------------------------------------------------------- per-sample rows


def chebyshev_index(shape: tuple[int, int], origin: tuple[int, int], center2: tuple[int, int],
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Doubled Chebyshev distance ``2·max(|y-cy|, |x-cx|)`` of every pixel of a window, as int64.

    ``origin`` is the window's top-left pixel in input coordinates, ``center2`` the doubled centre.
    """
    h, w = shape
    ys = torch.arange(h, device=device) * 2 + 2 * origin[0] - center2[0]
    xs = torch.arange(w, device=device) * 2 + 2 * origin[1] - center2[1]
    return torch.maximum(ys.abs()[:, None], xs.abs()[None, :]).to(torch.int64)


def sample_rows(maps: torch.Tensor, origin: tuple[int, int], center2: tuple[int, int],
                kindex: torch.Tensor | None = None) -> np.ndarray:
    """Sufficient statistics of a batch of maps ``(B, H, W)`` as rows ``(B, 5 + K + 1)`` (float64)."""
    maps = maps.to(torch.float64)
    b, h, w = maps.shape
    dev = maps.device
    dy = (torch.arange(h, device=dev, dtype=torch.float64) + origin[0]) - center2[0] / 2
    dx = (torch.arange(w, device=dev, dtype=torch.float64) + origin[1]) - center2[1] / 2
    rows_y = maps.sum(2)  # (B, H): mass per row
    cols_x = maps.sum(1)  # (B, W)
    m0 = rows_y.sum(1)
    moments = torch.stack([m0, rows_y @ dy, rows_y @ dy.square(), cols_x @ dx, cols_x @ dx.square()],
                          1)
    if kindex is None:
        kindex = chebyshev_index((h, w), origin, center2, dev)
    k_max = int(kindex.max())
    ring = torch.zeros(b, k_max + 1, dtype=torch.float64, device=dev)
    ring.scatter_add_(1, kindex.reshape(1, -1).expand(b, -1), maps.reshape(b, -1))
    return torch.cat([moments, ring.cumsum(1)], 1).cpu().numpy()


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Summary:
    """Statistics of summed rows (any leading shape): centroid, σ and square sides per level."""

    centroid: np.ndarray  # (..., 2) y, x in input pixels
    sigma: np.ndarray  # (..., 2)
    squares: np.ndarray  # (..., len(levels)) side in pixels


def summarize(sums: np.ndarray, center2: tuple[int, int],
              levels: Sequence[float] = SQUARE_LEVELS) -> Summary:
    """Centroid, per-axis σ and the sides of the smallest centred squares holding each level."""
    sums = np.asarray(sums, dtype=np.float64)
    m0 = sums[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        my, mx = sums[..., 1] / m0, sums[..., 3] / m0
        vy = np.maximum(sums[..., 2] / m0 - my**2, 0.0)
        vx = np.maximum(sums[..., 4] / m0 - mx**2, 0.0)
    centroid = np.stack([my + center2[0] / 2, mx + center2[1] / 2], -1)
    sigma = np.sqrt(np.stack([vy, vx], -1))
    cum = sums[..., N_MOMENTS:]
    total = cum[..., -1:]
    sides = []
    for q in levels:
        # smallest doubled radius k with C(k) >= q * total; side = k + 1 pixels
        reached = cum >= q * total * (1 - 1e-12)
        k = np.argmax(reached, axis=-1)
        sides.append(np.where(total[..., 0] > 0, k + 1, 0))
    return Summary(centroid, sigma, np.stack(sides, -1).astype(np.float64))


def bootstrap_sums(rows: np.ndarray, draws: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of summed rows, hierarchical over weight draws.

    ``rows`` is ``(N, D)``; ``draws`` gives each row's weight draw (every draw has the same number
    of rows). A resample picks the draws with replacement and, inside each picked draw, its rows
    with replacement. Returns ``(n_boot, D)``.
    """
    rng = np.random.default_rng(seed)
    n = rows.shape[0]
    draws = np.asarray(draws)
    labels, inverse = np.unique(draws, return_inverse=True)
    if len(labels) == 1:
        idx = rng.integers(0, n, size=(n_boot, n))
        flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
        weights = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
        return weights @ rows
    order = np.argsort(inverse, kind="stable")
    per = n // len(labels)
    if per * len(labels) != n or np.any(np.bincount(inverse) != per):
        raise ValueError("every weight draw needs the same number of samples")
    grouped = rows[order].reshape(len(labels), per, -1)  # (S, n_s, D)
    picks = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    out = np.zeros((n_boot, rows.shape[1]))
    for slot in range(len(labels)):
        idx = rng.integers(0, per, size=(n_boot, per))
        counts = np.zeros((n_boot, per))
        np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
        out += np.einsum("bi,bid->bd", counts, grouped[picks[:, slot]])
    return out


def percentile_ci(values: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval over axis 0: returns ``(..., 2)`` [lo, hi]."""
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(values, [alpha, 1 - alpha], axis=0)
    return np.stack([lo, hi], -1)


# --------------------------------------------------------------------------- map-level statistics


def center_value(pmap: np.ndarray, origin: tuple[int, int], center2: tuple[int, int]) -> float:
    """Map value at the RF centre: the mean of the 1, 2 or 4 pixels nearest a half-integer centre."""
    ys = {(center2[0] - 2 * origin[0]) // 2, (center2[0] - 2 * origin[0] + 1) // 2}
    xs = {(center2[1] - 2 * origin[1]) // 2, (center2[1] - 2 * origin[1] + 1) // 2}
    vals = [pmap[y, x] for y in ys for x in xs
            if 0 <= y < pmap.shape[0] and 0 <= x < pmap.shape[1]]
    return float(np.mean(vals)) if vals else float("nan")


def threshold_region(pmap: np.ndarray, origin: tuple[int, int], center2: tuple[int, int],
                     fraction: float = LUO_FRACTION) -> dict[str, float]:
    """Luo's region {p: P(p) >= fraction·P(c)}: its area and equivalent diameter 2·sqrt(area/π)."""
    ref = center_value(pmap, origin, center2)
    if not ref > 0:
        return {"fraction": fraction, "area": 0.0, "diameter": 0.0}
    area = float(np.count_nonzero(pmap >= fraction * ref))
    return {"fraction": fraction, "area": area, "diameter": 2 * math.sqrt(area / math.pi)}


def gaussian_fit(pmap: np.ndarray, origin: tuple[int, int]) -> dict[str, object] | None:
    """Least-squares axis-aligned 2-D Gaussian on the normalised map, with R² (a Gaussianity check).

    Returns centre, σ (y, x), amplitude and R², or None when the fit fails.
    """
    from scipy.optimize import least_squares

    total = pmap.sum()
    if not total > 0:
        return None
    p = pmap / total
    h, w = p.shape
    yy = np.arange(h, dtype=np.float64) + origin[0]
    xx = np.arange(w, dtype=np.float64) + origin[1]
    my, mx = (p.sum(1) * yy).sum(), (p.sum(0) * xx).sum()
    sy = math.sqrt(max((p.sum(1) * (yy - my) ** 2).sum(), 0.25))
    sx = math.sqrt(max((p.sum(0) * (xx - mx) ** 2).sum(), 0.25))
    # fit on the region that holds the mass (4 σ around the centroid) to keep it cheap
    y0, y1 = max(int(my - 4 * sy) - origin[0], 0), min(int(my + 4 * sy) + 2 - origin[0], h)
    x0, x1 = max(int(mx - 4 * sx) - origin[1], 0), min(int(mx + 4 * sx) + 2 - origin[1], w)
    sub = p[y0:y1, x0:x1]
    gy, gx = yy[y0:y1][:, None], xx[x0:x1][None, :]

    def model(theta: np.ndarray) -> np.ndarray:
        a, cy, cx, ly, lx = theta
        return a * np.exp(-0.5 * ((gy - cy) / np.exp(ly)) ** 2 - 0.5 * ((gx - cx) / np.exp(lx)) ** 2)

    start = np.array([sub.max(), my, mx, math.log(sy), math.log(sx)])
    try:
        res = least_squares(lambda t: (model(t) - sub).ravel(), start, method="lm", max_nfev=400)
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not res.success:
        return None
    fitted = model(res.x)
    ss_res = float(((sub - fitted) ** 2).sum()) + float((p**2).sum() - (sub**2).sum())
    ss_tot = float(((p - p.mean()) ** 2).sum())
    a, cy, cx, ly, lx = res.x
    return {"center": [float(cy), float(cx)], "sigma": [float(np.exp(ly)), float(np.exp(lx))],
            "amplitude": float(a), "r2": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


# --------------------------------------------------------------------------- closed forms


def gaussian_square_halfwidth(q: float) -> float:
    """Half-width, in σ, of the centred square holding mass q of a separable Gaussian:
    Φ⁻¹((1 + √q) / 2) (0.5 -> 1.052, 0.9 -> 1.949, 0.9545 -> 2.273)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf((1 + math.sqrt(q)) / 2)


def gaussian_hdr_radius(q: float) -> float:
    """Radius, in σ, of the disc holding mass q of an isotropic 2-D Gaussian: √(-2 ln(1-q)).

    It is also the radius of Luo's region {P >= (1-q)·P(c)} (0.9545 -> 2.486)."""
    return math.sqrt(-2 * math.log(1 - q))


# --------------------------------------------------------------------------- RepLKNet compatibility


def replknet_normalise(pmap: np.ndarray) -> np.ndarray:
    """RepLKNet/SLaK figure normalisation: log10(map + 1), then divided by its maximum.

    Scale dependent (research/erf.md §2.1): use it only to compare with their pictures."""
    data = np.log10(np.asarray(pmap, dtype=np.float64) + 1)
    peak = data.max()
    return data / peak if peak > 0 else data


def replknet_area_ratio(data: np.ndarray, thresh: float) -> tuple[int, float] | None:
    """RepLKNet's "high-contribution area ratio": the smallest odd square centred on the *array*
    centre (side >= 3) whose share of the total exceeds ``thresh``; returns (side, side²/(H·W)),
    or None when no square below half the map reaches it (as their script, which then crashes)."""
    h, w = data.shape
    total = float(data.sum())
    for i in range(1, h // 2):
        square = data[h // 2 - i:h // 2 + 1 + i, w // 2 - i:w // 2 + 1 + i]
        if float(square.sum()) / total > thresh:
            side = 2 * i + 1
            return side, side / h * side / w
    return None
