"""``anchorfit boxes``: dataset box statistics and validation in network-input pixels.

Also holds the input options that ``anchorfit kmeans`` shares (annotation file, format, image
sizes, resize policy) and a printer for results shown as several tables.
"""

from __future__ import annotations

import argparse

import pandas as pd

from anchorfit.cli import validate
from anchorfit.cli.common import add_format_options, parse_hw, print_notes, write_text
from anchorfit.data.boxes import POLICIES, POLICY_HELP, ResizeSpec
from anchorfit.data.io import FORMATS
from anchorfit.errors import AnchorfitError
from anchorfit.report.escape import markdown_safe
from anchorfit.report.output import Renderable, frame_to_csv, frame_to_markdown, frame_to_table, \
    to_json

EXAMPLES = """examples:
  anchorfit boxes annotations/instances_train2017.json --input 640
  anchorfit boxes labels/train2017 --image-sizes image_sizes.csv --policy letterbox --plot sizes.png
  anchorfit boxes wider_face_train_bbx_gt.txt --policy none --format json -o wider.json
  anchorfit boxes coco128.yaml --split val
"""


def add_box_input_options(p: argparse.ArgumentParser) -> None:
    """Options that say where the boxes come from and how images are resized."""
    p.add_argument("annotations", metavar="ANNOTATIONS",
                   help="annotation file or folder: COCO .json, VOC .xml folder, YOLO .txt "
                        "folder, WIDER/FDDB .txt, .csv, CVAT .xml, Ultralytics data .yaml")
    p.add_argument("--annotation-format", "--from", dest="annotation_format", choices=FORMATS,
                   help="annotation format (default: detected from the path)")
    p.add_argument("--image-sizes", metavar="CSV",
                   help="image sizes for formats without them: CSV image,width,height "
                        "(optional split column) or 'id height width' txt")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="Ultralytics data yaml: which split to read (default train)")
    p.add_argument("--input", "-i", default="640", metavar="HxW",
                   help="network input size, e.g. 640 or 384x640 (height first); for "
                        "--policy shortside: 800 or 800x1333 (short, max long side)")
    p.add_argument("--policy", choices=POLICIES, default="letterbox",
                   help="how the data loader resizes images: " +
                        "; ".join(f"{k}: {v}" for k, v in POLICY_HELP.items()))
    p.add_argument("--jitter", metavar="LO,HI",
                   help="per-image random scale factor range, e.g. 0.9,1.1 (YOLOv5 check)")
    p.add_argument("--seed", type=validate.seed, default=0,
                   help="seed of every random step (default 0)")
    p.add_argument("--min-size", type=validate.finite_float(at_least=0), default=2.0, metavar="PX",
                   help="drop boxes smaller than PX on both sides after resizing (default 2, "
                        "like YOLOv5)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first invalid box (zero/negative/NaN size, outside the "
                        "image, duplicate) instead of dropping and counting it")
    p.add_argument("--include-crowd", action="store_true",
                   help="COCO: keep iscrowd annotations (skipped and counted by default)")


def resize_spec(args: argparse.Namespace) -> ResizeSpec:
    size = parse_hw(args.input)
    if args.policy == "shortside" and "x" not in args.input.lower() and "," not in args.input:
        size = (size[0], round(size[0] * 1333 / 800))
    jitter = None
    if args.jitter:
        try:
            lo, hi = (float(v) for v in args.jitter.split(","))
        except ValueError:
            raise AnchorfitError(f"--jitter {args.jitter!r}: expected LO,HI such as 0.9,1.1",
                                 key="--jitter") from None
        if not 0 < lo <= hi < float("inf"):
            raise AnchorfitError(f"--jitter {args.jitter!r}: expected 0 < LO <= HI",
                                 key="--jitter")
        jitter = (lo, hi)
    return ResizeSpec(policy=args.policy, size=size, jitter=jitter, seed=args.seed)


def load_prepared(args: argparse.Namespace):
    from anchorfit.cli.dataset import split_option
    from anchorfit.data.prepare import prepare_boxes
    from anchorfit.data.progress import status

    options = {"include_crowd": True} if args.include_crowd else {}
    if args.include_crowd and (args.annotation_format or "") not in ("", "coco") \
            and not str(args.annotations).endswith(".json"):
        options = {}
    options.update(split_option(args))
    with status(f"reading {args.annotations}"):
        return prepare_boxes(args.annotations, fmt=args.annotation_format,
                             image_sizes=args.image_sizes, spec=resize_spec(args),
                             strict=args.strict, min_size=args.min_size, **options)


def emit_sections(result: Renderable, args: argparse.Namespace,
                  sections: list[tuple[str, pd.DataFrame]], notes: list[str]) -> None:
    """JSON: the whole result; CSV: the first table; table/Markdown: every table in turn."""
    if args.format == "json":
        text = to_json(result.to_dict())
    elif args.format == "csv":
        text = frame_to_csv(sections[0][1])
    elif args.format == "md":
        text = "\n".join(f"**{markdown_safe(title)}**\n\n{frame_to_markdown(frame)}"
                         for title, frame in sections)
    else:
        text = "\n".join(frame_to_table(frame, title=title) for title, frame in sections)
    write_text(text, args)
    print_notes(notes)


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
        from anchorfit.report.plots_boxes import plot_boxes

        plot_boxes(prepared.boxes.wh(), args.plot, seed=args.seed,
                   title=f"{stats.source} — {stats.space}")
    notes = [f"note: {n}" for n in stats.notes]
    if stats.synthetic:
        notes.append("note: SYNTHETIC boxes, not a real dataset")
    emit_sections(stats, args, [(f"box sizes, {stats.space}", stats.to_frame()),
                                ("counts", stats.counts_frame())], notes)
    return 0
