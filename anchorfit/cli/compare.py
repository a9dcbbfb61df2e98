"""``anchorfit compare``: default vs RF-derived vs k-means anchors on a dataset, and export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anchorfit.cli.common import parse_hw
from anchorfit.cli.dataset import add_dataset_options, dataset_note, load_dataset
from anchorfit.errors import AnchorfitError
from anchorfit.report.output import FORMATS

EXAMPLES = """examples:
  anchorfit compare configs/yolov3.yaml --boxes coco128/instances_train2017.json
  anchorfit compare s3fd --boxes wider_face_val_bbx_gt.txt --policy none --format md
  anchorfit compare yolov3-tiny.cfg --boxes labels/ --image-sizes sizes.csv \\
      --export "level-aware k-means" --export-to yolov3-tiny-fitted.cfg
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.compare import metrics_help

    p = sub.add_parser(
        "compare", help="default vs RF-derived vs k-means anchors, every metric side by side",
        description="Compare the detector's default anchors with RF-derived anchors (--ratio x "
                    "stride), IoU k-means (dealt to levels by area) and level-aware k-means "
                    "(each level clusters its own scale range, capped by its head RF), and for "
                    "YOLO heads YOLOv5's algorithm. Rows are the metrics assigners use: mean "
                    "best IoU, IoU recall, YOLOv5 BPR/aat/fitness, dead anchors and grid recall "
                    "of tiled anchors by COCO size bucket; the last rows give the anchor count "
                    "and the seconds each set took; the best value of each row is named in "
                    "the 'best' column. Each set is audited (the anchor checks of 'anchorfit "
                    "audit') and one is recommended for the detector's assigner: the metric "
                    "that assigner trains on, by size bucket. --export writes one set (or "
                    "'recommended') back in the detector's own format.",
        epilog=EXAMPLES + "\nmetrics:\n" + metrics_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="detector file, zoo name (s3fd) or torchvision:NAME")
    p.add_argument("--input", "-i", metavar="HxW", help="input size (default: the detector's)")
    add_dataset_options(p, required=True)
    p.add_argument("-k", type=int, help="anchors to cluster (default: as many as the detector "
                                        "has, or one per level)")
    p.add_argument("--ratio", type=float, default=4.0,
                   help="RF-derived anchors are RATIO x stride (default 4, S3FD)")
    p.add_argument("--restarts", type=int, default=10, help="k-means restarts (default 10)")
    p.add_argument("--erf", action="store_true",
                   help="measure each level's ERF (2 noise samples, random weights, as anchorfit "
                        "plan) and cap level-aware k-means at it instead of the head RF")
    p.add_argument("--erf-input", metavar="HxW",
                   help="with --erf: the input the ERF is measured on (default: the detector's, "
                        "or the canvas its deepest level's RF needs)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--plot-boxes", metavar="PNG", help="box sizes with every anchor set")
    p.add_argument("--plot-recall", metavar="PNG", help="grid recall by object size per set")
    p.add_argument("--export", metavar="SET",
                   help="write this anchor set (a column name, e.g. 'level-aware k-means', "
                        "or 'recommended') in the detector's format")
    p.add_argument("--export-to", metavar="FILE", type=Path,
                   help="where to write the export (default: standard error shows it; the "
                        "original file is never overwritten without --in-place)")
    p.add_argument("--in-place", action="store_true",
                   help="replace the detector file itself (atomically, keeping FILE.bak)")
    p.add_argument("--format", "-f", choices=FORMATS, default="table",
                   help="output format of the comparison (default: table)")
    p.add_argument("--output", "-o", metavar="FILE", type=Path,
                   help="write the comparison to FILE instead of standard output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit import models
    from anchorfit.cli.boxes import emit_sections
    from anchorfit.compare import compare
    from anchorfit.data.progress import status

    if args.restarts < 1:
        raise AnchorfitError(f"--restarts {args.restarts}: expected at least 1", key="--restarts")
    from anchorfit.cluster.api import check_restarts

    check_restarts(args.restarts, "--restarts")
    if args.ratio <= 0:
        raise AnchorfitError(f"--ratio {args.ratio}: expected a positive number", key="--ratio")
    if args.k is not None and args.k < 1:
        raise AnchorfitError(f"-k {args.k}: expected at least 1", key="-k")
    if (args.export_to or args.in_place) and not args.export:
        raise AnchorfitError("--export-to/--in-place need --export SET", key="--export")
    if args.erf_input and not args.erf:
        raise AnchorfitError("--erf-input needs --erf", key="--erf-input")
    erf_input = parse_hw(args.erf_input, option="--erf-input") if args.erf_input else None
    size = parse_hw(args.input) if args.input else None
    detector = models.load_detector(args.model, size)
    prepared = load_dataset(args, detector)
    erf, erf_notes = None, []
    if args.erf:
        from anchorfit.plan import measure_erf

        sizes, erf_notes = measure_erf(detector, seed=args.seed, progress=True,
                                       erf_input=erf_input)
        erf = {name: s.value for name, s in sizes.items()}
    with status(f"comparing anchor sets on {len(prepared.boxes)} boxes"):
        result = compare(detector, prepared.boxes.wh(), k=args.k, ratio=args.ratio, erf=erf,
                         seed=args.seed, restarts=args.restarts,
                         dataset={"source": prepared.boxes.source, **prepared.to_dict()})
    notes = erf_notes + [dataset_note(prepared)] + result.notes
    if result.verdict is not None:
        v = result.verdict
        notes.append(f"recommended: {v.reason}" if v.recommended else
                     f"no recommendation: {v.reason}")
        notes.append(f"assigner: {v.assigner}")
    for s in result.sets:
        notes += [f"{s.name}: {n}" for n in s.notes]
    if args.plot_boxes:
        from anchorfit.report.figures import box_scatter

        box_scatter(prepared.boxes.wh(), {s.name: [a for lv in s.anchors for a in lv]
                                          for s in result.sets}, result.strides,
                    args.plot_boxes, title=f"{detector.name}: boxes and anchor sets",
                    seed=args.seed)
    if args.plot_recall:
        from anchorfit.report.figures import grid_recall_by_size

        pos = f"{result.positive_iou:g}"
        recall = {s.name: s.metrics.grid["recall"][pos] for s in result.sets if s.metrics.grid}
        grid_recall_by_size(recall, args.plot_recall,
                            title=f"{detector.name}: grid recall at IoU {pos} by object size")
    if args.export == "recommended":
        if result.verdict is None or result.verdict.recommended is None:
            raise AnchorfitError("--export recommended: no set is recommended for this "
                                 "detector", key="--export")
        args.export = result.verdict.recommended
    if args.export:
        names = [s.name for s in result.sets]
        if args.export not in names:
            raise AnchorfitError(f"--export {args.export!r} is not a compared set",
                                 hint="one of: " + ", ".join(names))
        from anchorfit.compare import score_as_exported
        from anchorfit.export import make_export, save_export

        chosen = next(s for s in result.sets if s.name == args.export)
        anchors = [a.tolist() for a in chosen.anchors]
        if args.in_place or args.export_to:
            out, target = save_export(detector, anchors, target=args.export_to,
                                      in_place=args.in_place)
            notes.append(f"wrote {args.export} anchors ({out.format}) to {target}")
        else:
            out = make_export(detector, anchors)
            print(f"# {args.export} anchors in {out.format} format:\n{out.text}", file=sys.stderr)
        result.notes += [f"export: {n}" for n in out.notes]
        notes += [f"export: {n}" for n in out.notes]
        if out.changes_centers:
            result.sets.append(score_as_exported(result, prepared.boxes.wh(), args.export,
                                                 out.center_offsets))
    sections = [("comparison", result.to_frame()),
                ("anchors per level", result.anchors_frame())]
    if result.coverage_frame is not None:  # anchor-free: assignment coverage by size bucket
        sections.append(("assignment coverage (boxes with a positive point at every position)",
                         result.coverage_frame))
    emit_sections(result, args, sections, notes)
    return 0
