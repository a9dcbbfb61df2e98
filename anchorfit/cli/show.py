"""``anchorfit show``: the detector a file describes, level by level, with its RF numbers."""

from __future__ import annotations

import argparse

from anchorfit.cli.common import add_format_options, add_input, add_model, emit, \
    parse_optional_hw

EXAMPLES = """examples:
  anchorfit show configs/s3fd.yaml
  anchorfit show s3fd                       (a config shipped with anchorfit)
  anchorfit show yolov3.cfg --input 416 --format json
  anchorfit show configs/faceboxes.yaml --format md
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show", help="print the detector a file describes: levels, anchors, strides, RF",
        description="Read a detector file (anchorfit .yaml spec, Darknet .cfg, YOLOv5 .yaml, "
                    "Caffe .prototxt, mmdetection config, or a builtin config name such as "
                    "s3fd) and print every level: the feature map it reads, its true stride and "
                    "the step its anchor generator uses, its anchors (w x h, input pixels), "
                    "feature RF and RF including the head's own convs, the RF centre of cell 0 "
                    "(index convention: pixel k at k) and where the anchor generator puts "
                    "anchor centres.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "detector file or builtin config name", metavar="FILE", dest="file")
    add_input(p, "analyse at this input size instead of the file's (height first)")
    add_format_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit.load import load_detector

    size = parse_optional_hw(args.input)
    detector = load_detector(args.file, size)
    h, w = detector.input_size
    resize = detector.resize_policy + "".join(
        f" {k}={v}" for k, v in detector.resize_params.items())
    notes = list(detector.notes)
    if not detector.levels:
        notes.append("no detection levels: run 'anchorfit rf' for its layers")
    emit(detector, args, title=f"{detector.name} @ {h}x{w} ({resize})",
         caption="stride = true stride from the RF engine, step = what the anchor generator "
                 "uses; rf/head_rf/rf_center in input pixels, index convention (pixel k at k; "
                 "RF centre of cell i = rf_center + i*stride)",
         notes=notes)
    return 0
