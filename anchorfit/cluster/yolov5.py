"""YOLOv5-compatible anchor evolution (research §1.3), on weighted points.

Same algorithm and defaults as YOLOv5 v7.0's ``kmean_anchors``: drop labels under 2 px on both
sides (warn under 3 px), Euclidean k-means on std-whitened (w, h) with ``scipy.cluster.vq.kmeans``
semantics (30 runs from random boxes, each until its mean distance changes by at most 1e-5, the
lowest mean distance wins), then 1000 generations of a (1+1) mutation search (each coordinate
mutated with probability 0.9 by a factor 1 + u·N(0, 1)·0.1, u ~ U(0, 1) per generation, factor
clipped to [0.3, 3], anchors ≥ 2 px) that keeps a candidate only if YOLOv5's fitness improves.
The fitness is ``mean(best_x · [best_x > 1/anchor_t])`` with the ratio metric ``x = min(w/a_w,
a_w/w, h/a_h, a_h/h)``. On distinct sizes with counts (``compress`` exact mode) every step is the
one on the boxes (tests/test_cluster_yolov5.py checks both stages against a reference written
from YOLOv5's code); a size histogram (millions of boxes) changes the objective by its bin width.
Random numbers come from one seeded numpy Generator, so runs repeat exactly for a seed (they do
not reproduce YOLOv5's unseeded draws). The search is a local one: over seeds YOLOv5's own
algorithm spreads by about ±0.002 fitness on WIDER FACE val (bench_kmeans.py --yolov5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from anchorfit.cluster.geometry import sort_by_area


def ratio_metric(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """YOLOv5's x_ij = min over w,h of min(r, 1/r), r = box/anchor: (N, K) in (0, 1]."""
    r = wh[:, None, :] / anchors[None, :, :]
    return np.minimum(r, 1.0 / r).min(2)


def yolov5_fitness(wh: np.ndarray, anchors: np.ndarray, anchor_t: float = 4.0,
                   weight: np.ndarray | None = None) -> float:
    """mean_i best_x_i · [best_x_i > 1/anchor_t] (YOLOv5 ``anchor_fitness``)."""
    best = ratio_metric(wh, anchors).max(1)
    val = best * (best > 1.0 / anchor_t)
    return float(val.mean() if weight is None else val @ weight / weight.sum())


@dataclass
class Yolov5Fit:
    anchors: np.ndarray
    fitness: float
    kmeans_fitness: float      # fitness of the k-means start, before evolution
    generations: int
    improvements: int
    dropped_under_2px: float
    under_3px: float
    warnings: list[str] = field(default_factory=list)


def whitened_kmeans(points: np.ndarray, k: int, *, weight: np.ndarray, runs: int = 30,
                    seed: int = 0, thresh: float = 1e-5, max_iter: int = 1000,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """``scipy.cluster.vq.kmeans(wh / s, k, iter=runs)`` on weighted points, times ``s``.

    YOLOv5 whitens by ``s = wh.std(0)`` (population std of the kept boxes), starts each of
    ``runs`` runs from k distinct random boxes and iterates Lloyd steps until the *absolute*
    change of the mean Euclidean distance is at most ``thresh``, each run on its own; the run
    with the lowest mean distance wins. The mean (unsquared) distance is not monotone under
    mean updates, so a run whose distance goes up has not converged: stopping there (as this
    function did before) froze runs early and cost 0.001 mean distance and 0.003–0.005 final
    fitness on WIDER FACE val. Points are used as given (no binning): weighted points from
    ``compress`` give the same Lloyd steps as the boxes they stand for. Empty clusters are
    re-seeded at the farthest point instead of dropped, so k centroids always come back
    (scipy drops them and YOLOv5 then falls back to a random start, #3482).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    weight = np.asarray(weight, dtype=np.float64)
    mean = weight @ points / weight.sum()
    sigma = np.sqrt(weight @ np.square(points - mean) / weight.sum())
    sigma[sigma == 0] = 1.0
    x = points / sigma
    m = x.shape[0]
    rng = np.random.default_rng(seed) if rng is None else rng
    p = weight / weight.sum()
    init = np.stack([x[rng.choice(m, size=k, replace=m < k, p=p)] for _ in range(runs)])
    centroids, dist = lloyd_runs(x, weight, init, thresh=thresh, max_iter=max_iter)
    return centroids[int(np.argmin(dist))] * sigma


def lloyd_runs(x: np.ndarray, weight: np.ndarray, init: np.ndarray, *, thresh: float = 1e-5,
               max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Batched weighted Lloyd runs with scipy ``_kmeans`` semantics: (centroids, distance).

    ``init`` is (runs, k, 2). Each run assigns points to the nearest centroid, records the
    weighted mean Euclidean distance, moves centroids to their members' weighted mean, and stops
    once ``|previous distance - distance| <= thresh``; its distance is the one recorded last
    (of the centroids before that final move, as scipy returns it).
    """
    c = np.array(init, dtype=np.float64)
    runs, k, _ = c.shape
    p = weight / weight.sum()
    xx = np.square(x).sum(1)
    last = np.full(runs, np.inf)
    dist = np.full(runs, np.inf)
    active = np.arange(runs)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ca = c[active]
        d2 = xx[None, :, None] - 2 * np.einsum("md,rkd->rmk", x, ca) \
            + np.square(ca).sum(2)[:, None]
        a = d2.argmin(2)
        dmin = np.sqrt(np.maximum(np.take_along_axis(d2, a[..., None], 2)[..., 0], 0))
        dist[active] = dmin @ p
        flat = (a + (np.arange(active.size) * k)[:, None]).ravel()
        size = active.size * k
        mass = np.bincount(flat, weights=np.tile(weight, active.size),
                           minlength=size).reshape(-1, k)
        for j in range(2):
            s = np.bincount(flat, weights=np.tile(weight * x[:, j], active.size),
                            minlength=size).reshape(-1, k)
            ca[..., j] = np.where(mass > 0, s / np.maximum(mass, 1e-300), ca[..., j])
        for r, j in zip(*np.nonzero(mass == 0)):
            ca[r, j] = x[int(np.argmax(dmin[r]))]
        c[active] = ca
        done = np.abs(last[active] - dist[active]) <= thresh
        last[active] = dist[active]
        active = active[~done]
    return c, dist


class _LogFitness:
    """YOLOv5 fitness in log space: best_x = exp(−min_j max(|Δlog w|, |Δlog h|)), with
    preallocated float32 buffers; 5× faster than the ratio form and the same value."""

    def __init__(self, points: np.ndarray, weight: np.ndarray, k: int, anchor_t: float) -> None:
        logs = np.log(points).astype(np.float32)
        self.lw, self.lh = logs[:, :1].copy(), logs[:, 1:].copy()
        self.w = weight / weight.sum()
        self.b1 = np.empty((points.shape[0], k), np.float32)
        self.b2 = np.empty_like(self.b1)
        self.log_t = np.float32(np.log(anchor_t))

    def __call__(self, anchors: np.ndarray) -> float:
        la = np.log(anchors).astype(np.float32)
        np.subtract(self.lw, la[:, 0], out=self.b1)
        np.abs(self.b1, out=self.b1)
        np.subtract(self.lh, la[:, 1], out=self.b2)
        np.abs(self.b2, out=self.b2)
        np.maximum(self.b1, self.b2, out=self.b1)
        d = self.b1.min(1)
        best = np.exp(-d.astype(np.float64)) * (d < self.log_t)
        return float(best @ self.w)


def yolov5_anchors(points: np.ndarray, n: int = 9, *, weight: np.ndarray | None = None,
                   anchor_t: float = 4.0, gen: int = 1000, seed: int = 0,
                   mutation_prob: float = 0.9, sigma: float = 0.1) -> Yolov5Fit:
    """YOLOv5 ``kmean_anchors`` on (weighted) sizes already in input pixels."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    weight = np.ones(points.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
    warnings: list[str] = []
    under3 = float(weight[(points < 3.0).any(1)].sum())
    if under3:
        warnings.append(f"extremely small objects: {under3:g} of {weight.sum():g} labels are "
                        "under 3 pixels in size")
    keep = (points >= 2.0).any(1)
    dropped = float(weight[~keep].sum())
    points, weight = points[keep], weight[keep]
    if points.shape[0] < n:
        raise ValueError(f"YOLOv5 mode needs at least n={n} distinct box sizes of 2 px or more, "
                         f"found {points.shape[0]}")
    rng = np.random.default_rng(seed)  # one stream for both stages, as YOLOv5's global one
    k = whitened_kmeans(points, n, weight=weight, rng=rng)
    fitness = _LogFitness(points, weight, n, anchor_t)
    k, f, f0, improvements = evolve(k, fitness, rng=rng, gen=gen,
                                    mutation_prob=mutation_prob, sigma=sigma)
    return Yolov5Fit(sort_by_area(k), f, f0, gen, improvements, dropped, under3, warnings)


def evolve(k: np.ndarray, fitness: Callable[[np.ndarray], float], *, rng: np.random.Generator,
           gen: int = 1000, mutation_prob: float = 0.9, sigma: float = 0.1
           ) -> tuple[np.ndarray, float, float, int]:
    """YOLOv5's (1+1) mutation search: (anchors, fitness, start fitness, improvements).

    Each generation draws, in YOLOv5's order, a mask ``U(0,1) < mutation_prob`` per coordinate,
    one scale ``U(0,1)`` and ``N(0,1)`` per coordinate; the factor ``1 + mask·scale·N·sigma`` is
    clipped to [0.3, 3] (redrawn while it changes nothing), the candidate clipped to ≥ 2 px and
    kept only if its fitness is strictly higher.
    """
    f = f0 = fitness(k)
    improvements = 0
    for _ in range(gen):
        v = np.ones(k.shape)
        while (v == 1).all():  # mutate until something changes
            v = ((rng.random(k.shape) < mutation_prob) * rng.random() * rng.standard_normal(
                k.shape) * sigma + 1).clip(0.3, 3.0)
        kg = (k * v).clip(min=2.0)
        fg = fitness(kg)
        if fg > f:
            f, k = fg, kg
            improvements += 1
    return k, f, f0, improvements
