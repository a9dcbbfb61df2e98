"""Datasets at full scale: wall time and peak memory of ``boxes`` and ``kmeans`` on a generated
10 M-box COCO json and a 1 M-file YOLO label folder, beside a ``json.load`` baseline.

    python benchmarks/bench_scale.py                 # 10 M boxes, 1 M label files
    python benchmarks/bench_scale.py --quick         # 1 M boxes, 100 k label files
    python benchmarks/bench_scale.py --boxes 3000000 --files 0 --keep /tmp/big
    python benchmarks/bench_scale.py --boxes 0 --files 0 --csv 15000000   # Open Images CSV

Inputs are generated deterministically (seed 0) into a temporary folder outside the repository
(``--dir``, default the system temp dir) and deleted afterwards unless ``--keep`` is given. The
COCO file looks like Objects365/COCO: ``images`` with file names and sizes first, then
``annotations`` with ``id``, ``image_id``, ``category_id``, ``bbox`` (two decimals), ``area``,
``iscrowd`` (1 % crowd) and an empty ``segmentation``, ~150 bytes a box as in the issue's 3 M-box
file. The YOLO folder holds 1 M ``.txt`` files of 1-8 rows under 1,000 sub-folders, plus an
``image_sizes.csv``; no images (1 M image files would only measure the disk).

Every measured step runs in a child process; its peak memory is the child's ``ru_maxrss`` from
``resource.getrusage(RUSAGE_CHILDREN)`` (read in a fresh intermediate process so earlier children
do not mask it), its wall time the parent's clock, and its CPU time user + system, which is the
figure to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

N_CATEGORIES = 365


# --------------------------------------------------------------------------- generators

def write_coco(path: Path, n_boxes: int, *, boxes_per_image: int = 15, seed: int = 0,
               batch: int = 200_000) -> dict[str, int]:
    """A COCO-style json of ``n_boxes`` boxes, written in batches (bounded memory)."""
    rng = np.random.default_rng(seed)
    n_images = max(1, n_boxes // boxes_per_image)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"info": {"description": "anchorfit bench_scale synthetic", "seed": %d},\n'
                 '"licenses": [],\n"categories": [' % seed)
        fh.write(",\n".join('{"id": %d, "name": "class_%d", "supercategory": "thing"}'
                            % (i + 1, i) for i in range(N_CATEGORIES)))
        fh.write('],\n"images": [\n')
        widths = rng.choice([640, 800, 1024, 1280, 1920], size=n_images)
        heights = (widths * rng.choice([0.5625, 0.75, 1.0, 1.333], size=n_images)).astype(int)
        for start in range(0, n_images, batch):
            stop = min(n_images, start + batch)
            fh.write(",\n".join(
                '{"id": %d, "file_name": "images/train/%08d.jpg", "width": %d, "height": %d}'
                % (i + 1, i + 1, widths[i], heights[i]) for i in range(start, stop)))
            fh.write(",\n" if stop < n_images else "\n")
        fh.write('],\n"annotations": [\n')
        for start in range(0, n_boxes, batch):
            stop = min(n_boxes, start + batch)
            n = stop - start
            img = rng.integers(0, n_images, size=n)
            iw, ih = widths[img], heights[img]
            w = np.minimum(np.exp(rng.normal(3.4, 1.0, size=n)), iw - 1).round(2)
            h = np.minimum(w * np.exp(rng.normal(0.0, 0.5, size=n)), ih - 1).round(2)
            x = (rng.random(n) * (iw - w)).round(2)
            y = (rng.random(n) * (ih - h)).round(2)
            cat = rng.integers(1, N_CATEGORIES + 1, size=n)
            crowd = (rng.random(n) < 0.01).astype(int)
            area = (w * h).round(2)
            fh.write(",\n".join(
                '{"id": %d, "image_id": %d, "category_id": %d, "bbox": [%.2f, %.2f, %.2f, %.2f],'
                ' "area": %.2f, "iscrowd": %d, "segmentation": []}'
                % (start + i + 1, img[i] + 1, cat[i], x[i], y[i], w[i], h[i], area[i], crowd[i])
                for i in range(n)))
            fh.write(",\n" if stop < n_boxes else "\n")
        fh.write("]}\n")
    return {"images": n_images, "boxes": n_boxes, "bytes": path.stat().st_size}


def write_yolo(folder: Path, n_files: int, *, seed: int = 0, per_folder: int = 1000
               ) -> dict[str, int]:
    """``n_files`` YOLO label files of 1-8 rows under sub-folders, and an image_sizes.csv."""
    rng = np.random.default_rng(seed)
    labels = folder / "labels"
    n_rows = rng.integers(1, 9, size=n_files)
    total = int(n_rows.sum())
    cls = rng.integers(0, 80, size=total)
    w = np.clip(np.exp(rng.normal(-2.5, 0.9, size=total)), 0.002, 0.98)
    h = np.clip(w * np.exp(rng.normal(0.0, 0.4, size=total)), 0.002, 0.98)
    cx = w / 2 + rng.random(total) * (1 - w)
    cy = h / 2 + rng.random(total) * (1 - h)
    widths = rng.choice([640, 800, 1024], size=n_files)
    ends = np.cumsum(n_rows)
    starts = ends - n_rows
    for sub in range((n_files + per_folder - 1) // per_folder):
        (labels / f"{sub:04d}").mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        text = "".join("%d %.6f %.6f %.6f %.6f\n" % (cls[r], cx[r], cy[r], w[r], h[r])
                       for r in range(starts[i], ends[i]))
        with open(labels / f"{i // per_folder:04d}" / f"{i:08d}.txt", "w") as fh:
            fh.write(text)

    with ThreadPoolExecutor(8) as pool:  # file creation is system calls: threads overlap them
        for _ in pool.map(write, range(n_files), chunksize=4096):
            pass
    sizes = ["image,width,height"] + [f"{i // per_folder:04d}/{i:08d},{widths[i]},"
                                      f"{widths[i] * 3 // 4}" for i in range(n_files)]
    (folder / "image_sizes.csv").write_text("\n".join(sizes) + "\n")
    return {"files": n_files, "boxes": total}


def write_open_images(path: Path, n_rows: int, *, seed: int = 0, batch: int = 500_000
                      ) -> dict[str, int]:
    """An Open Images ``*-annotations-bbox.csv``: rows grouped by 16-hex-digit image id (about
    8.8 boxes an image, as in Open Images v6 train), normalised coordinates to 6 decimals."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,"
                 "IsTruncated,IsGroupOf,IsDepiction,IsInside\n")
        image = 0
        for start in range(0, n_rows, batch):
            n = min(batch, n_rows - start)
            new_image = rng.random(n) < 1 / 8.8
            ids = image + np.cumsum(new_image)
            image = int(ids[-1])
            w = np.clip(np.exp(rng.normal(-1.8, 0.9, size=n)), 0.001, 1.0)
            h = np.clip(w * np.exp(rng.normal(0.0, 0.5, size=n)), 0.001, 1.0)
            x0, y0 = rng.random(n) * (1 - w), rng.random(n) * (1 - h)
            label = rng.integers(0, 600, size=n)
            flags = rng.integers(0, 2, size=(n, 3))
            fh.write("".join(
                "%016x,xclick,/m/0%04d,1,%.6f,%.6f,%.6f,%.6f,%d,%d,%d,0,0\n"
                % (int(ids[i]) * 2654435761 % (1 << 64), label[i], x0[i], x0[i] + w[i], y0[i],
                   y0[i] + h[i], flags[i, 0], flags[i, 1], flags[i, 2]) for i in range(n)))
    return {"rows": n_rows, "images": image + 1, "bytes": path.stat().st_size}


# --------------------------------------------------------------------------- measuring

_MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_mb": ru.ru_maxrss / 1024, "rc": proc.returncode,
                  "stderr": proc.stderr[-2000:]}))
"""

_JSON_LOAD = "import json, sys\nwith open(sys.argv[1], 'rb') as fh:\n    json.load(fh)\n"
_READ_FILES = r"""
import os, sys
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for f in sorted(files):
        if f.endswith('.txt'):
            with open(os.path.join(root, f), 'rb') as fh:
                n += len(fh.read())
"""


_CSV_READER = "import csv, sys\nwith open(sys.argv[1], newline='') as fh:\n    for row in csv.reader(fh):\n        pass\n"
_CSV_BLOCKS = "import sys\nfrom anchorfit.data import csvfmt\ncsvfmt.read_csv(sys.argv[1])\n"
_CSV_ROWS = ("import sys\nfrom anchorfit.data import csvfmt\n"
             "csvfmt.parse_block = lambda *a, **k: None  # every row through csv.reader\n"
             "csvfmt.read_csv(sys.argv[1])\n")


_JSON_GB_PER_MBOX = 0.97   # json.load peak per million boxes of this generator (3 M: 2.9 GB)


def _available_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    return 8.0


def measure(label: str, argv: list[str]) -> dict:
    """Wall, CPU and peak RSS of one command, run as the only child of a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    result = json.loads(out.stdout)
    result["label"] = label
    status = "" if result["rc"] == 0 else f"  (exit {result['rc']}: {result['stderr'][-300:]})"
    print(f"  {label:<44} {result['wall_s']:7.1f} s wall {result['cpu_s']:7.1f} s cpu "
          f"{result['peak_mb']:8.0f} MB peak{status}", flush=True)
    return result


def anchorfit(*args: str) -> list[str]:
    return [sys.executable, "-m", "anchorfit", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boxes", type=int, default=10_000_000, help="COCO boxes (0: skip)")
    ap.add_argument("--files", type=int, default=1_000_000, help="YOLO label files (0: skip)")
    ap.add_argument("--csv", type=int, default=0, metavar="ROWS",
                    help="also an Open Images box CSV of ROWS rows (15000000: Open Images v6 "
                         "train; 0: skip, the default)")
    ap.add_argument("--quick", action="store_true", help="1 M boxes, 100 k files")
    ap.add_argument("--dir", help="where to generate (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--with-sizes", action="store_true",
                    help="also read the YOLO folder with its 1 M-row image-size CSV")
    args = ap.parse_args()
    if args.quick:
        args.boxes, args.files = 1_000_000, 100_000
    work = Path(tempfile.mkdtemp(prefix="anchorfit-scale-", dir=args.dir))
    if ROOT in work.resolve().parents:
        raise SystemExit("generate outside the repository")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start; data in {work}")
    results: dict = {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()[0], "runs": []}
    try:
        if args.boxes:
            coco = work / "instances.json"
            t = time.perf_counter()
            info = write_coco(coco, args.boxes)
            print(f"COCO json: {info['boxes']:,} boxes, {info['images']:,} images, "
                  f"{info['bytes'] / 1e9:.2f} GB (generated in {time.perf_counter() - t:.0f} s)")
            results["coco"] = info
            common = ["--policy", "none"]
            base, base_n = coco, args.boxes
            fits = int(_available_gb() * 0.4 / _JSON_GB_PER_MBOX * 1e6)
            if fits < args.boxes:  # json.load of the whole file would crowd a shared machine
                base_n = max(100_000, fits // 100_000 * 100_000)
                base = work / "baseline.json"
                write_coco(base, base_n)
                print(f"json.load baseline on a {base_n:,}-box file from the same generator: the "
                      f"full file would need ~{_JSON_GB_PER_MBOX * args.boxes / 1e6:.0f} GB; "
                      "its figures are scaled linearly below")
            baseline = measure(f"baseline: json.load ({base_n:,} boxes)",
                               [sys.executable, "-c", _JSON_LOAD, str(base)])
            if base is not coco:
                scale = args.boxes / base_n
                print(f"  {'baseline scaled to ' + format(args.boxes, ',') + ' boxes':<44} "
                      f"{baseline['wall_s'] * scale:7.1f} s wall {baseline['cpu_s'] * scale:7.1f}"
                      f" s cpu {baseline['peak_mb'] * scale:8.0f} MB peak (extrapolated)")
                baseline["scaled_to"] = args.boxes
                base.unlink()
            results["runs"] += [
                baseline,
                measure("anchorfit boxes", anchorfit("boxes", str(coco), *common)),
                measure("anchorfit kmeans -k 9 --restarts 3",
                        anchorfit("kmeans", str(coco), "-k", "9", "--restarts", "3", *common)),
            ]
            coco.unlink()
        if args.files:
            folder = work / "yolo"
            t = time.perf_counter()
            info = write_yolo(folder, args.files)
            print(f"YOLO folder: {info['files']:,} label files, {info['boxes']:,} boxes "
                  f"(generated in {time.perf_counter() - t:.0f} s)")
            results["yolo"] = info
            labels = str(folder / "labels")
            sizes = str(folder / "image_sizes.csv")
            results["runs"] += [
                measure("baseline: read every file (os.walk)",
                        [sys.executable, "-c", _READ_FILES, labels]),
                measure("anchorfit boxes --policy stretch",
                        anchorfit("boxes", labels, "--policy", "stretch")),
                *([measure("anchorfit boxes --image-sizes CSV",
                           anchorfit("boxes", labels, "--image-sizes", sizes))]
                  if args.with_sizes else []),
                measure("anchorfit kmeans --policy stretch",
                        anchorfit("kmeans", labels, "-k", "9", "--restarts", "3",
                                  "--policy", "stretch")),
            ]
        if args.csv:
            table = work / "oidv6-train-annotations-bbox.csv"
            t = time.perf_counter()
            info = write_open_images(table, args.csv)
            print(f"Open Images CSV: {info['rows']:,} rows, {info['images']:,} images, "
                  f"{info['bytes'] / 1e9:.2f} GB (generated in {time.perf_counter() - t:.0f} s)")
            results["csv"] = info
            results["runs"] += [
                measure("baseline: csv.reader over every row",
                        [sys.executable, "-c", _CSV_READER, str(table)]),
                measure("read_csv, rows alone (csv.reader + float)",
                        [sys.executable, "-c", _CSV_ROWS, str(table)]),
                measure("read_csv (C blocks)", [sys.executable, "-c", _CSV_BLOCKS, str(table)]),
                measure("anchorfit boxes --policy stretch (C blocks)",
                        anchorfit("boxes", str(table), "--policy", "stretch")),
            ]
            table.unlink()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["load_at_end"] = os.getloadavg()[0]
    print(f"load average {results['load_at_end']:.1f} at the end (2 cores shared with other "
          "jobs: trust the CPU seconds more than the wall seconds)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
