"""``anchorfit rf``: exact receptive field, stride, padding and centre of a network's layers."""

from __future__ import annotations

import argparse

from anchorfit.cli.common import add_format_options, add_input, add_model, emit, \
    parse_optional_hw, split_list
from anchorfit.rf.engine import CONVENTION

EXAMPLES = """examples:
  anchorfit rf torchvision:resnet50 --input 1024x1024 --layers layer1,layer2,layer3,layer4
  anchorfit rf torchvision:retinanet_resnet50_fpn --format json
  anchorfit rf mypackage.models:build_backbone --input 512 --verify
  anchorfit rf configs/s3fd.yaml
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rf", help="exact receptive field of every detection layer",
        description="Exact theoretical receptive field (rf), effective stride, left/top padding "
                    "and RF centre of a network's layers, per axis (y x shown when they differ). "
                    "Without --layers a classifier reports its stage outputs and a detector the "
                    "feature maps its head reads. " + CONVENTION + ".",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "torchvision:NAME, package.module:factory, file.py:factory, or a detector "
                 "file (.yaml spec, Darknet .cfg, YOLOv5 .yaml, .prototxt, mmdet .py)")
    add_input(p, "input size, e.g. 640 or 480x640 (height first; default: the model's own, 224 "
                 "for classifiers)")
    p.add_argument("--layers", "-l", metavar="A,B,...",
                   help="comma-separated layer names: module paths (layer3, features.16), "
                        "output keys of a detector backbone, or node names")
    p.add_argument("--verify", action="store_true",
                   help="check every layer against the gradient probe (slow: real backward "
                        "passes on a linearised copy)")
    p.add_argument("--unknown", choices=("error", "pointwise"), default="error",
                   help="what to do with an op anchorfit has no geometry rule for: stop with an "
                        "error (default) or treat it as per-cell with a warning")
    add_format_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit import load as models
    from anchorfit.rf.report import build_report

    size = parse_optional_hw(args.input)
    net = models.load(args.model, size, unknown=args.unknown)
    layers = models.layer_names(net, split_list(args.layers) if args.layers else None)
    report = build_report(net, layers, verify=args.verify)
    h, w = report.input_size
    emit(report, args, title=f"{report.model} @ {h}x{w}",
         caption="rf/stride/padding/center in input pixels, index convention (pixel k at k; "
                 "centre of cell i = center + i*stride)",
         notes=report.notes)
    if args.verify and any(r.check is not None and r.check.agree is False for r in report.layers):
        return 1
    return 0
