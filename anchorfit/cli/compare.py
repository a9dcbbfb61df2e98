"""``anchorfit compare``: default vs RF-derived vs k-means anchors on a dataset, and export."""

from __future__ import annotations

import argparse
import sys

from anchorfit.cli import validate
from anchorfit.cli.common import add_erf_input, add_format_options, add_input, add_model, \
    add_seed, emit_sections, flags, parse_optional_hw
from anchorfit.cli.dataset import add_dataset_options, dataset_note, load_dataset
from anchorfit.design.compare import RATIO, RESTARTS
from anchorfit.errors import AnchorfitError
from anchorfit.report.escape import terminal_safe

EXAMPLES = """examples:
  anchorfit compare configs/yolov3.yaml --boxes coco128/instances_train2017.json
  anchorfit compare s3fd --boxes wider_face_val_bbx_gt.txt --policy none --format md
  anchorfit compare yolov3-tiny.cfg --boxes labels/ --image-sizes sizes.csv \\
      --export "level-aware k-means" --export-to yolov3-tiny-fitted.cfg
"""


#: compare's parameters as this command's flags (errors from the library name the flag)
FLAGS = {"k": "-k", "ratio": "--ratio", "restarts": "--restarts", "export": "--export",
         "in_place": "--in-place"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.design.compare import metrics_help

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
    add_model(p)
    add_input(p)
    add_dataset_options(p, required=True)
    p.add_argument("-k", type=int, help="anchors to cluster (default: as many as the detector "
                                        "has, or one per level)")
    p.add_argument("--ratio", type=validate.finite_float(above=0), default=RATIO,
                   help=f"RF-derived anchors are RATIO x stride (default {RATIO:g}, S3FD)")
    p.add_argument("--restarts", type=int, default=RESTARTS,
                   help=f"k-means restarts (default {RESTARTS})")
    p.add_argument("--erf", action="store_true",
                   help="measure each level's ERF (2 noise samples, random weights, as anchorfit "
                        "plan) and cap level-aware k-means at it instead of the head RF")
    add_erf_input(p, help="with --erf: the input the ERF is measured on (default: the "
                          "detector's, or the canvas its deepest level's RF needs)")
    add_seed(p)
    p.add_argument("--plot-boxes", metavar="PNG", type=validate.figure_file,
                   help="box sizes with every anchor set")
    p.add_argument("--plot-recall", metavar="PNG", type=validate.figure_file,
                   help="grid recall by object size per set")
    p.add_argument("--export", metavar="SET",
                   help="write this anchor set (a column name, e.g. 'level-aware k-means', "
                        "or 'recommended') in the detector's format")
    p.add_argument("--export-to", metavar="FILE", type=validate.output_file,
                   help="where to write the export (default: standard error shows it); an "
                        "existing file is never replaced without --force, the detector's own "
                        "file never without --in-place")
    p.add_argument("--in-place", action="store_true",
                   help="replace the detector file itself (atomically, keeping the original as "
                        "FILE.bak, FILE.bak.1, ...; not for built-in zoo names)")
    p.add_argument("--force", action="store_true",
                   help="let --export-to replace an existing file (a numbered .bak of it is "
                        "kept)")
    add_format_options(p, format_help="output format of the comparison (default: table)",
                       output_help="write the comparison to FILE instead of standard output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit import load as models
    from anchorfit.data.progress import status
    from anchorfit.design.compare import check_options, compare, export_set

    with flags(FLAGS):  # before the slow part: reading the detector and the boxes
        check_options(k=args.k, ratio=args.ratio, restarts=args.restarts)
    from anchorfit.cluster.api import check_restarts

    check_restarts(args.restarts, "--restarts")
    if (args.export_to or args.in_place) and not args.export:
        raise AnchorfitError("--export-to/--in-place need --export SET", key="--export")
    if args.force and not args.export_to:
        raise AnchorfitError("--force is for --export-to FILE", key="--force")
    if args.erf_input and not args.erf:
        raise AnchorfitError("--erf-input needs --erf", key="--erf-input")
    erf_input = parse_optional_hw(args.erf_input, "--erf-input")
    size = parse_optional_hw(args.input)
    detector = models.load_detector(args.model, size)
    if args.in_place or args.export_to:  # refuse before the work, not after it
        from pathlib import Path

        from anchorfit.design.export import check_export_target, refuse_builtin

        source = Path(str(detector.source or ""))
        if args.in_place:
            refuse_builtin(source)
        else:
            check_export_target(args.export_to, source if detector.source else None,
                                force=args.force)
    prepared = load_dataset(args, detector)
    erf, erf_notes = None, []
    if args.erf:
        from anchorfit.design.plan import measure_erf

        sizes, erf_notes = measure_erf(detector, seed=args.seed, progress=True,
                                       erf_input=erf_input)
        erf = {name: s.value for name, s in sizes.items()}
    with status(f"comparing anchor sets on {len(prepared.boxes)} boxes"), flags(FLAGS):
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
        from anchorfit.report.figures.design import box_scatter

        box_scatter(prepared.boxes.wh(), {s.name: [a for lv in s.anchors for a in lv]
                                          for s in result.sets}, result.strides,
                    args.plot_boxes, title=f"{detector.name}: boxes and anchor sets",
                    seed=args.seed)
    if args.plot_recall:
        from anchorfit.report.figures.design import grid_recall_by_size

        pos = f"{result.positive_iou:g}"
        recall = {s.name: s.metrics.grid["recall"][pos] for s in result.sets if s.metrics.grid}
        grid_recall_by_size(recall, args.plot_recall,
                            title=f"{detector.name}: grid recall at IoU {pos} by object size")
    if args.export:
        with flags(FLAGS):
            done = export_set(result, detector, prepared.boxes.wh(), args.export,
                              target=args.export_to, in_place=args.in_place, force=args.force)
        out = done.export
        if done.target is not None:
            notes.append(f"wrote {done.name} anchors ({out.format}) to {done.target}")
        else:
            print(terminal_safe(f"# {done.name} anchors in {out.format} format:\n{out.text}"),
                  file=sys.stderr)
        notes += [f"export: {n}" for n in out.notes]
    sections = [("comparison", result.to_frame()),
                ("anchors per level", result.anchors_frame())]
    if result.coverage_frame is not None:  # anchor-free: assignment coverage by size bucket
        sections.append(("assignment coverage (boxes with a positive point at every position)",
                         result.coverage_frame))
    emit_sections(result, args, sections, notes)
    return 0
