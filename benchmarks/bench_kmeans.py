"""Benchmark of anchor clustering against baselines measured in the same run.

    python benchmarks/bench_kmeans.py            # full: WIDER FACE train + synthetic 10 M boxes
    python benchmarks/bench_kmeans.py --quick    # WIDER FACE val + synthetic 1 M boxes

Baselines are written here, from the algorithms' descriptions (research §1.3, §2), not copied:

- darknet: Darknet ``calc_anchors`` — k random boxes as seeds, distance 1 − IoU, mean update,
  until assignments stop changing (≤ 1000 iterations), best of 10 restarts by mean IoU, on every
  box (numpy, vectorised over boxes);
- exact: anchorfit's own IoU k-means (k-means++, 10 restarts) on every box, uncompressed — the
  reference the compressed run must match within 0.002 mean IoU;
- yolov5: YOLOv5 v7.0 ``kmean_anchors`` — ``scipy.cluster.vq.kmeans(wh / s, n, iter=30)`` on
  std-whitened (w, h) as YOLOv5 calls it (scipy ships with scikit-learn; without it, the same
  procedure written out in numpy, ``_scipy_kmeans``), then 1000 generations of mutation with the
  fitness evaluated in float32 torch on every box, as YOLOv5 does; one seeded Generator for every
  draw. (tests/test_cluster_yolov5.py checks anchorfit's k-means and search step by step against
  a numpy reference of its own.)

``--yolov5 N`` runs only the YOLOv5 comparison on WIDER FACE val (original pixels, boxes >= 2 px):
anchorfit's yolov5 mode and the reference, seeds 0..N-1, fitness per seed and the means.

All anchor sets are scored with the same function on all boxes. Box sizes: WIDER FACE in original
pixels (its images have no sizes here); SYNTHETIC boxes are a seeded log-normal mixture.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anchorfit.cluster.compress import compress  # noqa: E402
from anchorfit.cluster.geometry import best_iou, sort_by_area  # noqa: E402
from anchorfit.cluster.kmeans import iou_kmeans  # noqa: E402
from anchorfit.cluster.yolov5 import ratio_metric, yolov5_anchors  # noqa: E402
from anchorfit.data import ResizeSpec  # noqa: E402
from anchorfit.data.prepare import prepare_boxes  # noqa: E402
from anchorfit.data.synthetic import synthetic_boxes  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "annotations" / "wider_face"


def darknet_reference(wh: np.ndarray, k: int, restarts: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wh = wh.astype(np.float32)
    area = wh[:, 0] * wh[:, 1]
    best, best_score = None, -1.0
    for _ in range(restarts):
        c = wh[rng.choice(len(wh), size=k, replace=False)].copy()
        prev = None
        for _ in range(1000):
            inter = np.minimum(wh[:, None, 0], c[None, :, 0]) * np.minimum(wh[:, None, 1],
                                                                          c[None, :, 1])
            iou = inter / (area[:, None] + (c[:, 0] * c[:, 1])[None] - inter)
            a = iou.argmax(1)
            if prev is not None and (a == prev).all():
                break
            prev = a
            for j in range(k):  # empty cluster keeps its centre, like darknet
                m = a == j
                if m.any():
                    c[j] = wh[m].mean(0)
        score = float(iou.max(1).mean())
        if score > best_score:
            best, best_score = c.copy(), score
    return sort_by_area(best)


def _scipy_kmeans(obs: np.ndarray, n: int, rng: np.random.Generator, runs: int = 30,
                  thresh: float = 1e-5) -> np.ndarray:
    """``scipy.cluster.vq.kmeans(obs, n, iter=runs)``, written out: each run starts from n
    distinct random observations, assigns every observation to its nearest centroid, moves the
    centroids to their members' mean (dropping empty ones) until the mean Euclidean distance
    changes by at most ``thresh``; the run with the lowest mean distance wins."""
    best, best_d = obs[:0], np.inf
    for _ in range(runs):
        book = obs[rng.choice(len(obs), n, replace=False)]
        prev, diff = np.inf, np.inf
        while diff > thresh:
            d = np.sqrt(np.square(obs[:, None, :] - book[None]).sum(2))
            code = d.argmin(1)
            avg = float(d.min(1).mean())
            count = np.bincount(code, minlength=len(book))
            sums = np.stack([np.bincount(code, obs[:, j], minlength=len(book))
                             for j in range(2)], 1)
            book = sums[count > 0] / count[count > 0, None]
            diff, prev = abs(prev - avg), avg
        if prev < best_d:
            best, best_d = book, prev
    return best


def yolov5_reference(wh: np.ndarray, n: int, thr: float = 4.0, gen: int = 1000,
                     seed: int = 0) -> np.ndarray:
    """YOLOv5 v7.0 ``kmean_anchors`` on box sizes, step by step, one seeded Generator for every
    draw (YOLOv5 draws from numpy's and Python's global generators, unseeded)."""
    import torch

    rng = np.random.default_rng(seed)
    wh = wh[(wh >= 2.0).any(1)].astype(np.float32)
    s = wh.std(0)
    try:  # YOLOv5's own call when scipy is there (it comes with scikit-learn): fast in C
        from scipy.cluster.vq import kmeans

        k = kmeans(wh / s, n, iter=30, rng=rng)[0] * s
    except ImportError:
        k = _scipy_kmeans((wh / s).astype(np.float64), n, rng) * s
    if len(k) != n:  # YOLOv5 falls back to a random start when kmeans lost a centroid
        k = np.sort(rng.random(n * 2)).reshape(n, 2) * 640
    t = torch.tensor(wh)
    inv = 1 / thr

    def fitness(kk: np.ndarray) -> float:
        r = t[:, None] / torch.tensor(kk, dtype=torch.float32)[None]
        x = torch.min(r, 1 / r).min(2)[0]
        best = x.max(1)[0]
        return float((best * (best > inv).float()).mean())

    f, sh = fitness(k), k.shape
    for _ in range(gen):
        v = np.ones(sh)
        while (v == 1).all():
            v = ((rng.random(sh) < 0.9) * rng.random() * rng.standard_normal(sh) * 0.1 + 1
                 ).clip(0.3, 3.0)
        kg = (k.copy() * v).clip(min=2.0)
        fg = fitness(kg)
        if fg > f:
            f, k = fg, kg.copy()
    return sort_by_area(k)


def scores(wh: np.ndarray, anchors: np.ndarray, thr: float = 4.0) -> dict[str, float]:
    """Mean best IoU, BPR and YOLOv5 fitness on all boxes (chunked)."""
    iou = best_iou(wh, anchors)[0]
    bx = np.concatenate([ratio_metric(wh[s:s + (1 << 18)].astype(np.float64), anchors).max(1)
                         for s in range(0, len(wh), 1 << 18)])
    kept = (wh >= 2.0).any(1)
    return {"mean_iou": float(iou.mean()), "bpr": float((bx > 1 / thr).mean()),
            "fitness": float((bx * (bx > 1 / thr))[kept].mean())}


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def anchorfit_iou(wh: np.ndarray, k: int, seed: int = 0):
    c = compress(wh)
    fit = iou_kmeans(c.wh, k, weight=c.weight, restarts=10, seed=seed)
    return fit.anchors, c


def anchorfit_yolov5(wh: np.ndarray, k: int, seed: int = 0):
    c = compress(wh)
    return yolov5_anchors(c.wh, k, weight=c.weight, seed=seed).anchors


class _Rows(list):
    """Rows that are also logged to stderr as they come (long references)."""

    def append(self, row: dict) -> None:
        super().append(row)
        print(f"#   {row['set']}: {row['method']}: {row['time_s']:.2f} s, mean IoU "
              f"{row['mean_iou']:.4f}, fitness {row['fitness']:.4f}", file=sys.stderr, flush=True)


def bench(name: str, wh: np.ndarray, k: int, *, exact: bool, refs: bool,
          yolo_seeds: int = 1) -> list[dict]:
    rows = _Rows()
    (anchors, comp), t_ours = timed(anchorfit_iou, wh, k)
    ours = scores(wh, anchors)
    rows.append({"set": name, "method": "anchorfit iou (compressed)", "time_s": t_ours, **ours,
                 "note": f"{comp.mode} {comp.n_points} points, bin {comp.bin_width:g}"})
    if exact:
        fit, t = timed(iou_kmeans, wh.astype(np.float64), k, restarts=10, seed=0)
        rows.append({"set": name, "method": "exact k-means best-of-10 (all boxes)", "time_s": t,
                     **scores(wh, fit.anchors), "note": "reference for the 0.002 IoU target"})
    if refs:
        a, t = timed(darknet_reference, wh, k)
        rows.append({"set": name, "method": "darknet-style reference", "time_s": t,
                     **scores(wh, a), "note": "random init, 1-IoU, mean, best of 10"})
    # the mutation search is stochastic: compare means over the same seeds
    seeds = range(yolo_seeds)
    rows.append(_mean_row(name, "anchorfit yolov5 (compressed)", wh,
                          [timed(anchorfit_yolov5, wh, k, seed=i) for i in seeds],
                          f"whitened k-means + 1000 generations, mean of {yolo_seeds} seeds"))
    if refs:
        rows.append(_mean_row(name, "YOLOv5 algorithm reference", wh,
                              [timed(yolov5_reference, wh, k, seed=i) for i in seeds],
                              f"scipy kmeans + torch float32 fitness on all boxes, mean of "
                              f"{yolo_seeds} seeds"))
    return rows


def _mean_row(name: str, method: str, wh: np.ndarray, runs: list, note: str) -> dict:
    per = [scores(wh, a) for a, _ in runs]
    row = {"set": name, "method": method, "time_s": float(np.mean([t for _, t in runs])),
           "note": note}
    for key in per[0]:
        row[key] = float(np.mean([p[key] for p in per]))
    return row


def _large(n: int) -> int:
    """Child process: the large synthetic set alone, rows and peak memory as JSON on stdout."""
    boxes, t_gen = timed(synthetic_boxes, n, seed=1)
    table = sum(getattr(boxes, c).nbytes for c in ("image", "cls", "x", "y", "w", "h",
                                                    "difficult", "flagged", "origin", "line"))
    rows = bench(f"SYNTHETIC {n // 1_000_000}M", boxes.wh(), 9, exact=False, refs=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": list(rows), "gen_s": t_gen, "table_mib": table / 2 ** 20,
                      "peak_mib": peak}))
    return 0


def yolov5_only(n_seeds: int) -> int:
    """YOLOv5 mode vs the reference on WIDER FACE val, per seed, on the same boxes."""
    gt = SHARED / "wider_face_val_bbx_gt.txt"
    wh = prepare_boxes(gt, spec=ResizeSpec(policy="none")).boxes.wh()
    kept = wh[(wh >= 2.0).any(1)]
    print(f"# WIDER FACE val, original pixels: {len(wh)} boxes, {len(kept)} with a side >= 2 px;"
          f" anchor_t 4, 9 anchors, 1000 generations")
    print("| seed | anchorfit yolov5 mode | YOLOv5 algorithm (reference) | time ours / ref s |")
    print("|---|---|---|---|")
    ours, refs = [], []
    for seed in range(n_seeds):
        a, t_a = timed(anchorfit_yolov5, wh, 9, seed=seed)
        r, t_r = timed(yolov5_reference, wh, 9, seed=seed)
        ours.append(scores(wh, a)["fitness"])
        refs.append(scores(wh, r)["fitness"])
        print(f"| {seed} | {ours[-1]:.4f} | {refs[-1]:.4f} | {t_a:.1f} / {t_r:.1f} |", flush=True)
    print(f"| mean | {np.mean(ours):.4f} | {np.mean(refs):.4f} | |")
    print(f"| min..max | {min(ours):.4f}..{max(ours):.4f} | {min(refs):.4f}..{max(refs):.4f} | |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="WIDER val and 1 M synthetic boxes")
    ap.add_argument("--yolov5", type=int, metavar="N",
                    help="only YOLOv5 mode vs YOLOv5's algorithm on WIDER val, N seeds")
    ap.add_argument("--only-large", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only_large:
        return _large(args.only_large)
    if args.yolov5:
        return yolov5_only(args.yolov5)
    print(f"# bench_kmeans  python {platform.python_version()}  numpy {np.__version__}  "
          f"cpus {len(__import__('os').sched_getaffinity(0))}  quick={args.quick}")
    rows: list[dict] = []
    gt = SHARED / ("wider_face_val_bbx_gt.txt" if args.quick else "wider_face_train_bbx_gt.txt")
    if gt.exists():
        wider = prepare_boxes(gt, spec=ResizeSpec(policy="none")).boxes.wh()
        rows += bench(f"WIDER {'val' if args.quick else 'train'} ({len(wider)} boxes)", wider, 9,
                      exact=True, refs=True, yolo_seeds=3)
    else:
        print(f"# {gt} not found: WIDER rows skipped")
    small = synthetic_boxes(200_000, seed=0).wh()
    rows += bench("SYNTHETIC 200k", small, 9, exact=True, refs=True)
    n_big = 1_000_000 if args.quick else 10_000_000
    # the large set runs in a child process so its peak memory is its own
    child = subprocess.run([sys.executable, __file__, "--only-large", str(n_big)],
                           capture_output=True, text=True, check=True)
    big = json.loads(child.stdout)
    rows += big["rows"]
    cols = ["set", "method", "time_s", "mean_iou", "bpr", "fitness", "note"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c])
                                for c in cols) + " |")
    print("\n## ratios (same run)")
    by = {(r["set"], r["method"]): r for r in rows}
    for s in dict.fromkeys(r["set"] for r in rows):
        ours, y = by.get((s, "anchorfit iou (compressed)")), by.get((s, "anchorfit yolov5 (compressed)"))
        ex, dk = by.get((s, "exact k-means best-of-10 (all boxes)")), by.get((s, "darknet-style reference"))
        yr = by.get((s, "YOLOv5 algorithm reference"))
        parts = [f"{s}: anchorfit iou {ours['time_s']:.2f} s"]
        if ex:
            parts.append(f"mean IoU - exact = {ours['mean_iou'] - ex['mean_iou']:+.4f}")
        if dk:
            parts.append(f"vs darknet {dk['time_s'] / ours['time_s']:.1f}x faster, "
                         f"IoU {ours['mean_iou'] - dk['mean_iou']:+.4f}")
        if yr:
            parts.append(f"yolov5 mode vs YOLOv5 {yr['time_s'] / y['time_s']:.1f}x faster, "
                         f"fitness {y['fitness'] - yr['fitness']:+.4f}, BPR {y['bpr'] - yr['bpr']:+.4f}")
        print("- " + "; ".join(parts))
    print(f"- SYNTHETIC {n_big} boxes (Boxes table: {big['table_mib']:.0f} MiB) generated in "
          f"{big['gen_s']:.1f} s; peak RSS of that whole run (generate, compress, both "
          f"methods, scoring): {big['peak_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
