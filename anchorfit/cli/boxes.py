"""``anchorfit boxes``: dataset box statistics and validation in network-input pixels."""

from __future__ import annotations

import argparse

from anchorfit.cli import validate
from anchorfit.cli.common import add_format_options, emit_sections
from anchorfit.cli.dataset import add_box_input_options, load_prepared

EXAMPLES = """examples:
  anchorfit boxes annotations/instances_train2017.json --input 640
  anchorfit boxes labels/train2017 --image-sizes image_sizes.csv --policy letterbox --plot sizes.png
  anchorfit boxes wider_face_train_bbx_gt.txt --policy none --format json -o wider.json
  anchorfit boxes coco128.yaml --split val
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "boxes", help="dataset box statistics and validation after resizing",
        description="Read an annotation set, resize its boxes the way the detector's data loader "
                    "does (--policy, --input) and report counts, rows dropped by reason, "
                    "w/h/area/aspect percentiles and COCO size buckets (small < 32², medium < "
                    "96², large) in input pixels.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_box_input_options(p)
    p.add_argument("--plot", metavar="PNG", type=validate.figure_file,
                   help="write a size histogram and w-h scatter (.png, .svg, .pdf)")
    add_format_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit.data.stats import box_stats

    prepared = load_prepared(args)
    stats = box_stats(prepared)
    if args.plot:
        from anchorfit.report.figures.boxes import plot_boxes

        plot_boxes(prepared.boxes.wh(), args.plot, seed=args.seed,
                   title=f"{stats.source} — {stats.space}")
    notes = [f"note: {n}" for n in stats.notes]
    if stats.synthetic:
        notes.append("note: SYNTHETIC boxes, not a real dataset")
    emit_sections(stats, args, [(f"box sizes, {stats.space}", stats.to_frame()),
                                ("counts", stats.counts_frame())], notes)
    return 0
