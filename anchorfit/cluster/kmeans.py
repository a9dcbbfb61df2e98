"""IoU k-means (distance 1 − shape IoU) on weighted points, all restarts at once.

The restarts run as one batch: centres are an (R, k, 2) array, so one numpy expression scores
every point against every centre of every restart. Seeding is k-means++ under the same distance
(D = 1 − best IoU, sampled ∝ weight · D²), each restart from its own stream of one seeded
generator, so results depend on the seed only. Updates are the weighted mean (Darknet, mmdet) or
the weighted median (k-medians, which lars76 found closer to the YOLO9000 numbers) of members.
Empty clusters are re-seeded with the worst-fitted point, so k distinct anchors always come back
when the data has k distinct sizes; with fewer, the distinct sizes are returned and a warning
says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anchorfit.cluster.geometry import shape_iou, sort_by_area


@dataclass
class KMeansFit:
    """Result of one IoU k-means call (anchors sorted by area)."""

    anchors: np.ndarray            # (k, 2)
    mean_iou: float                # weighted mean best IoU of the chosen restart
    restart_mean_iou: np.ndarray   # (R,) the same for every restart
    iterations: np.ndarray         # (R,) iterations until assignments stopped changing
    converged: np.ndarray          # (R,) bool
    best_restart: int
    warnings: list[str] = field(default_factory=list)


def _iou_batch(pw: np.ndarray, ph: np.ndarray, pa: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """IoU of M points against (R, k) centres → (R, M, k), float32 for speed."""
    cw = centres[:, None, :, 0].astype(np.float32)
    ch = centres[:, None, :, 1].astype(np.float32)
    inter = np.minimum(pw[None, :, None], cw)
    inter *= np.minimum(ph[None, :, None], ch)
    union = (cw * ch) + pa[None, :, None]
    union -= inter
    inter /= union
    return inter


def _seed_pp(points: np.ndarray, weight: np.ndarray, k: int, restarts: int,
             rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding under 1 − IoU for every restart: (R, k, 2)."""
    m = points.shape[0]
    pw, ph = points[:, 0].astype(np.float32), points[:, 1].astype(np.float32)
    pa = pw * ph
    centres = np.empty((restarts, k, 2))
    first = rng.choice(m, size=restarts, p=weight / weight.sum())
    centres[:, 0] = points[first]
    best = _iou_batch(pw, ph, pa, centres[:, :1])[:, :, 0]           # (R, M)
    for j in range(1, k):
        d2 = np.square(1.0 - best, dtype=np.float64) * weight[None, :]
        tot = d2.sum(1)
        for r in range(restarts):
            # all points on a centre already (tot 0): any point will do
            idx = rng.choice(m, p=d2[r] / tot[r]) if tot[r] > 0 else rng.integers(m)
            centres[r, j] = points[idx]
        best = np.maximum(best, _iou_batch(pw, ph, pa, centres[:, j:j + 1])[:, :, 0])
    return centres


def _seed_random(points: np.ndarray, k: int, restarts: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """Darknet's seeding: k distinct random points per restart."""
    m = points.shape[0]
    return np.stack([points[rng.choice(m, size=k, replace=False)] for _ in range(restarts)])


def _weighted_median(values: np.ndarray, group: np.ndarray, weight: np.ndarray,
                     n_groups: int) -> np.ndarray:
    """Weighted median of values per group (NaN for empty groups): the first value whose
    cumulative weight within its group reaches half of the group's weight."""
    order = np.lexsort((values, group))
    g, v, w = group[order], values[order], weight[order]
    totals = np.bincount(g, weights=w, minlength=n_groups)
    start = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    hit = np.flatnonzero(np.cumsum(w) >= start[g] + totals[g] / 2 - 1e-9)
    uniq, pos = np.unique(g[hit], return_index=True)
    out = np.full(n_groups, np.nan)
    out[uniq] = v[hit[pos]]
    return out


def _step(points: np.ndarray, pw: np.ndarray, ph: np.ndarray, pa: np.ndarray,
          weight: np.ndarray, centres: np.ndarray, update: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One assignment + update for a batch of restarts: (new centres, assignment, weighted
    mean best IoU of the centres before the update)."""
    restarts, k = centres.shape[:2]
    iou = _iou_batch(pw, ph, pa, centres)
    assign = iou.argmax(2)                                       # (R, M)
    score = np.take_along_axis(iou, assign[..., None], 2)[..., 0].astype(np.float64) @ weight
    flat = (assign + (np.arange(restarts) * k)[:, None]).ravel()
    tw = np.tile(weight, restarts)
    mass = np.bincount(flat, weights=tw, minlength=restarts * k)
    if update == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            new_w = np.bincount(flat, weights=np.tile(weight * points[:, 0], restarts),
                                minlength=restarts * k) / mass
            new_h = np.bincount(flat, weights=np.tile(weight * points[:, 1], restarts),
                                minlength=restarts * k) / mass
    else:
        new_w = _weighted_median(np.tile(points[:, 0], restarts), flat, tw, restarts * k)
        new_h = _weighted_median(np.tile(points[:, 1], restarts), flat, tw, restarts * k)
    new = np.stack([new_w, new_h], axis=1).reshape(restarts, k, 2)
    empty = (mass == 0).reshape(restarts, k)
    if empty.any():
        best = iou.max(2)
        for r, j in zip(*np.nonzero(empty)):
            worst = int(np.argmin(best[r]))
            new[r, j] = points[worst]
            best[r, worst] = 2.0  # do not pick the same point twice
    return new, assign, score / weight.sum()


def iou_kmeans(points: np.ndarray, k: int, *, weight: np.ndarray | None = None,
               restarts: int = 10, seed: int = 0, update: str = "mean", init: str = "++",
               max_iter: int = 300, tol: float = 1e-4) -> KMeansFit:
    """Weighted IoU k-means, best of ``restarts`` by weighted mean best IoU.

    points (M, 2) sizes, weight (M,) multiplicities (1 when None). ``init`` is "++" or "random"
    (Darknet), ``update`` "mean" or "median". A restart stops when its assignments no longer
    change or its mean best IoU changes by less than ``tol`` in an iteration: the long tail of
    tiny moves k-means makes on 10⁴ weighted points takes 100+ iterations and, with the mean
    update, can even *lower* the mean IoU, so each restart also keeps its best iterate.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    weight = np.ones(points.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
    if update not in ("mean", "median"):
        raise ValueError(f"update must be 'mean' or 'median', not {update!r}")
    if init not in ("++", "random"):
        raise ValueError(f"init must be '++' or 'random', not {init!r}")
    pw, ph = points[:, 0].astype(np.float32), points[:, 1].astype(np.float32)
    pa = pw * ph
    warnings: list[str] = []
    distinct = np.unique(points, axis=0)
    if k >= distinct.shape[0]:
        if k > distinct.shape[0]:
            warnings.append(f"asked for k={k} anchors but the boxes have only "
                            f"{distinct.shape[0]} distinct sizes; returning those "
                            f"{distinct.shape[0]}")
        anchors = sort_by_area(distinct)
        mean = float(shape_iou(points, anchors).max(1) @ weight / weight.sum())
        return KMeansFit(anchors, mean, np.array([mean]), np.array([0]), np.array([True]), 0,
                         warnings)
    rng = np.random.default_rng(seed)
    centres = (_seed_pp(points, weight, k, restarts, rng) if init == "++"
               else _seed_random(points, k, restarts, rng))
    iterations = np.zeros(restarts, dtype=np.int64)
    converged = np.zeros(restarts, dtype=bool)
    prev = np.full((restarts, points.shape[0]), -1)
    prev_score = np.full(restarts, -np.inf)
    best_score = np.full(restarts, -np.inf)
    best_centres = centres.copy()
    for it in range(max_iter):
        active = np.flatnonzero(~converged)
        if active.size == 0:
            break
        iterations[active] = it + 1
        new, assign, score = _step(points, pw, ph, pa, weight, centres[active], update)
        same = (assign == prev[active]).all(1) | (np.abs(score - prev_score[active]) < tol)
        prev[active] = assign
        prev_score[active] = score
        better = (score > best_score[active]) & (it > 0)  # iterates, not the seeds
        best_score[active[better]] = score[better]
        best_centres[active[better]] = centres[active[better]]
        centres[active] = new
        converged[active[same]] = True
    if not converged.all():
        warnings.append(f"{int((~converged).sum())} of {restarts} restarts stopped at "
                        f"max_iter={max_iter} before the assignments settled")
    final = (shape_iou(points, centres).max(2) @ weight) / weight.sum()   # float64
    keep_best = (shape_iou(points, best_centres).max(2) @ weight) / weight.sum() > final
    centres = np.where(keep_best[:, None, None], best_centres, centres)
    scores = np.where(keep_best, (shape_iou(points, best_centres).max(2) @ weight)
                      / weight.sum(), final)
    best_r = int(np.argmax(scores))
    return KMeansFit(sort_by_area(centres[best_r]), float(scores[best_r]), scores, iterations,
                     converged, best_r, warnings)
