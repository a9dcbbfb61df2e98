"""``anchorfit kmeans``: cluster a dataset's boxes into anchors and print every metric."""

from __future__ import annotations

import argparse

from anchorfit.cli import validate
from anchorfit.cli.common import add_format_options, emit_sections, parse_floats
from anchorfit.cli.dataset import add_box_input_options, load_prepared
from anchorfit.errors import AnchorfitError

EXAMPLES = """examples:
  anchorfit kmeans instances_train2017.json -k 9 --levels 8,16,32
  anchorfit kmeans labels/train2017 --image-sizes sizes.csv --method yolov5 --levels 8,16,32
  anchorfit kmeans wider_face_train_bbx_gt.txt --policy none -k 6 --format json -o anchors.json
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.cluster.api import METHODS

    p = sub.add_parser(
        "kmeans", help="cluster dataset boxes into anchors (IoU k-means, YOLOv5, sklearn)",
        description="Cluster box sizes in input pixels into k anchors and report, side by side, "
                    "mean best IoU, IoU recall, YOLOv5 BPR/aat/fitness at --anchor-t, anchor "
                    "utilisation, size coverage and (with --levels) grid recall of tiled anchors "
                    "by COCO size bucket. Deterministic for a --seed.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_box_input_options(p)
    p.add_argument("-k", type=int, default=9, help="number of anchors in all (default 9)")
    p.add_argument("--method", choices=METHODS, default="iou",
                   help="iou: k-means on 1 - IoU (default); yolov5: YOLOv5 AutoAnchor "
                        "(whitened k-means + 1000-generation evolution); sklearn: KMeans on "
                        "(log w, log h), a baseline")
    p.add_argument("--levels", metavar="S1,S2,...",
                   help="strides of the detection levels, e.g. 8,16,32: anchors are grouped per "
                        "level and grid recall is computed")
    p.add_argument("--assign", choices=("auto", "range", "area"), default="auto",
                   help="with --levels: range clusters each level inside [lo, hi] x stride "
                        "(default for iou/sklearn); area sorts by area and splits evenly "
                        "(YOLOv5's rule, default for yolov5)")
    p.add_argument("--level-range", default="2,8", metavar="LO,HI",
                   help="anchor sqrt-area range per level in strides (default 2,8)")
    p.add_argument("--restarts", type=int, default=10, help="k-means restarts (default 10)")
    p.add_argument("--update", choices=("mean", "median"), default="mean",
                   help="k-means centre update (default mean, like Darknet)")
    p.add_argument("--anchor-t", type=validate.finite_float(above=1), default=4.0,
                   help="YOLOv5 anchor_t: ratio threshold of BPR/aat/fitness (default 4.0)")
    p.add_argument("--offset", choices=("center", "top-left"), default="center",
                   help="anchor centre convention for grid recall: (i+0.5)*S or i*S")
    p.add_argument("--grid-positions", choices=("random", "actual"), default="random",
                   help="grid recall: random sub-stride box positions (default) or the boxes' "
                        "own positions with the image border")
    p.add_argument("--compression", choices=("auto", "exact", "histogram"), default="auto",
                   help="cluster exact distinct sizes or a 0.01 log-size histogram (auto)")
    p.add_argument("--plot", metavar="PNG", type=validate.figure_file,
                   help="write boxes and anchors as a w-h scatter (.png, .svg, .pdf)")
    add_format_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit.cluster.api import cluster_anchors
    from anchorfit.cluster.metrics import GridSpec
    from anchorfit.data.progress import status

    if args.k < 1:
        raise AnchorfitError(f"-k {args.k}: expected at least 1 anchor", key="-k")
    if args.restarts < 1:
        raise AnchorfitError(f"--restarts {args.restarts}: expected at least 1", key="--restarts")
    from anchorfit.cluster.api import check_restarts

    check_restarts(args.restarts, "--restarts")
    if args.anchor_t <= 1:
        raise AnchorfitError(f"--anchor-t {args.anchor_t}: expected a ratio above 1",
                             key="--anchor-t")
    strides = parse_floats(args.levels, "--levels") if args.levels else None
    lo_hi = parse_floats(args.level_range, "--level-range")
    if len(lo_hi) != 2 or lo_hi[0] >= lo_hi[1]:
        raise AnchorfitError(f"--level-range {args.level_range!r}: expected LO,HI with LO < HI",
                             key="--level-range")
    prepared = load_prepared(args)
    boxes = prepared.boxes
    grid = None
    xy = None
    if strides:
        image_size = None
        if args.grid_positions == "actual":
            if args.policy not in ("letterbox", "stretch"):
                raise AnchorfitError("--grid-positions actual needs a fixed canvas: use "
                                     "--policy letterbox or stretch", key="--grid-positions")
            image_size = prepared.spec.size
            xy = boxes.wh() / 2
            xy[:, 0] += boxes.x
            xy[:, 1] += boxes.y
        grid = GridSpec(offset=args.offset, positions=args.grid_positions,
                        image_size=image_size, seed=args.seed)
    with status(f"clustering {len(boxes)} boxes"):
        result = cluster_anchors(boxes.wh(), args.k, method=args.method, strides=strides,
                                 assign=args.assign, restarts=args.restarts, seed=args.seed,
                                 update=args.update, anchor_t=args.anchor_t,
                                 compression=args.compression, level_range=tuple(lo_hi),
                                 grid=grid, xy=xy)
    result.boxes = {"source": boxes.source, "format": boxes.format, "space": boxes.space,
                    "synthetic": boxes.synthetic, **prepared.to_dict()}
    if args.plot:
        from anchorfit.report.figures.boxes import plot_boxes

        plot_boxes(boxes.wh(), args.plot, seed=args.seed, anchors=result.anchors,
                   strides=result.strides, title=f"{boxes.source} — {args.method} k={args.k}")
    notes = [f"warning: {w}" for w in result.warnings]
    dropped = ", ".join(f"{k} {v}" for k, v in prepared.dropped.items())
    notes.append(f"{len(boxes)} boxes ({boxes.space}), seed {args.seed}, "
                 f"{result.runtime_s:.2f} s" + (f"; dropped: {dropped}" if dropped else ""))
    emit_sections(result, args, [
        (f"anchors ({args.method}, k={args.k}, seed {args.seed})", result.to_frame()),
        ("metrics (all boxes)", result.metrics.to_frame())], notes)
    return 0
