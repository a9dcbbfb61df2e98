"""Synthetic boxes for benchmarks and demos, clearly labelled as such.

Scales (sqrt of area) and aspect ratios (w / h) are log-normal mixtures, like real datasets whose
scales span decades. Generated in chunks straight into float32 columns so 10 M boxes take
~40 MB of geometry plus the fixed Boxes columns.
"""

from __future__ import annotations

import numpy as np

from anchorfit.data.boxes import Boxes

# (weight, median scale px, sigma of log scale, median aspect w/h, sigma of log aspect)
DEFAULT_MIXTURE = ((0.5, 24.0, 0.6, 0.8, 0.25), (0.35, 80.0, 0.5, 1.0, 0.4),
                   (0.15, 250.0, 0.45, 1.3, 0.5))


def synthetic_wh(n: int, *, seed: int = 0, mixture=DEFAULT_MIXTURE,
                 max_size: float = 640.0) -> np.ndarray:
    """(n, 2) float32 (w, h) drawn from a log-normal mixture, clipped to [1, max_size]."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 2), dtype=np.float32)
    weights = np.array([m[0] for m in mixture], dtype=np.float64)
    chunk = 1 << 20
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        comp = rng.choice(len(mixture), size=m, p=weights / weights.sum())
        params = np.asarray(mixture, dtype=np.float64)[comp]
        log_s = np.log(params[:, 1]) + params[:, 2] * rng.standard_normal(m)
        log_a = np.log(params[:, 3]) + params[:, 4] * rng.standard_normal(m)
        out[start:start + m, 0] = np.exp(log_s + log_a / 2)
        out[start:start + m, 1] = np.exp(log_s - log_a / 2)
    np.clip(out, 1.0, max_size, out=out)
    return out


def synthetic_boxes(n: int, *, seed: int = 0, image_size: tuple[int, int] = (640, 640),
                    per_image: int = 10) -> Boxes:
    """A Boxes table of n synthetic boxes placed at random inside image_size (H, W) images."""
    wh = synthetic_wh(n, seed=seed, max_size=float(min(image_size)))
    rng = np.random.default_rng(seed + 1)
    H, W = image_size
    n_img = max(1, -(-n // per_image))
    x = (rng.random(n, dtype=np.float32) * (W - wh[:, 0])).astype(np.float32)
    y = (rng.random(n, dtype=np.float32) * (H - wh[:, 1])).astype(np.float32)
    return Boxes(image=(np.arange(n, dtype=np.int64) // per_image).astype(np.int32),
                 cls=np.zeros(n, dtype=np.int32), x=x, y=y,
                 w=np.ascontiguousarray(wh[:, 0]), h=np.ascontiguousarray(wh[:, 1]),
                 difficult=np.zeros(n, dtype=bool), flagged=np.zeros(n, dtype=bool),
                 origin=np.zeros(n, dtype=np.int32), line=np.zeros(n, dtype=np.int32),
                 image_names=[f"synthetic_{i}" for i in range(n_img)],
                 image_width=np.full(n_img, float(W)), image_height=np.full(n_img, float(H)),
                 classes=["synthetic"], files=[f"<synthetic n={n} seed={seed}>"],
                 format="synthetic", source=f"SYNTHETIC log-normal mixture, n={n}, seed={seed}",
                 synthetic=True,
                 notes=["SYNTHETIC boxes (log-normal scale/aspect mixture), not a real dataset"])
