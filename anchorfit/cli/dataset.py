"""Dataset options shared by the commands that read boxes.

``add_box_input_options``/``load_prepared``: ``anchorfit boxes`` and ``kmeans`` (an annotation
file resized at --input by --policy). ``add_dataset_options``/``load_dataset``: the ``--boxes``
of plan, audit and compare (a dataset seen by a detector, resized the way its loader does).
"""

from __future__ import annotations

import argparse
from typing import Any

from anchorfit.cli import validate
from anchorfit.cli.common import add_seed, parse_hw, split_list
from anchorfit.data.boxes import POLICIES, POLICY_HELP, ResizeSpec
from anchorfit.data.io import FORMATS
from anchorfit.errors import AnchorfitError


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
    add_seed(p)
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
            lo, hi = (float(v) for v in split_list(args.jitter))
        except ValueError:
            raise AnchorfitError(f"--jitter {args.jitter!r}: expected LO,HI such as 0.9,1.1",
                                 key="--jitter") from None
        if not 0 < lo <= hi < float("inf"):
            raise AnchorfitError(f"--jitter {args.jitter!r}: expected 0 < LO <= HI",
                                 key="--jitter")
        jitter = (lo, hi)
    return ResizeSpec(policy=args.policy, size=size, jitter=jitter, seed=args.seed)


def load_prepared(args: argparse.Namespace) -> Any:
    """PreparedBoxes of ANNOTATIONS resized by --policy at --input (boxes, kmeans)."""
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


def add_dataset_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--boxes", "-b", metavar="ANNOTATIONS", required=required,
                   help="the dataset's annotations (COCO .json, VOC/YOLO folder, WIDER/FDDB "
                        ".txt, .csv, CVAT .xml, Ultralytics data .yaml); boxes are resized the "
                        "way the detector's data loader does")
    p.add_argument("--from", dest="annotation_format", metavar="FORMAT",
                   help="annotation format (default: detected from the path)")
    p.add_argument("--image-sizes", metavar="CSV",
                   help="image sizes for formats without them (CSV image,width,height)")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="Ultralytics data yaml: which split to read (default train)")
    p.add_argument("--policy", choices=POLICIES,
                   help="override the detector's resize policy (letterbox: YOLOv5/mmdet; "
                        "stretch: Darknet/SSD; shortside: Faster R-CNN; none: original pixels)")
    p.add_argument("--min-size", type=validate.finite_float(at_least=0), default=2.0, metavar="PX",
                   help="drop boxes smaller than PX on both sides after resizing (default 2)")


def load_dataset(args: argparse.Namespace, detector: Any) -> Any:
    """PreparedBoxes of ``--boxes`` in the detector's input pixels (None without --boxes)."""
    if not args.boxes:
        return None
    from anchorfit.data.prepare import prepare_boxes, resize_spec_for
    from anchorfit.data.progress import status

    spec = resize_spec_for(detector, args.policy, getattr(args, "seed", 0))
    with status(f"reading {args.boxes}"):
        return prepare_boxes(args.boxes, fmt=args.annotation_format,
                             image_sizes=args.image_sizes, spec=spec, min_size=args.min_size,
                             **split_option(args))


def split_option(args: argparse.Namespace) -> dict[str, str]:
    """``{"split": ...}`` when --split was given, for the Ultralytics data-yaml reader."""
    split = getattr(args, "split", None)
    return {"split": split} if split else {}


def dataset_note(prepared: Any) -> str:
    dropped = ", ".join(f"{k} {v}" for k, v in prepared.dropped.items())
    return (f"{len(prepared.boxes)} boxes from {prepared.boxes.source} ({prepared.spec.describe()})"
            + (f"; dropped: {dropped}" if dropped else ""))
