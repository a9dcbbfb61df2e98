"""The ``--boxes`` options shared by plan, audit and compare: a dataset seen by a detector."""

from __future__ import annotations

import argparse
from typing import Any

from anchorfit.cli import validate
from anchorfit.data.boxes import POLICIES


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
