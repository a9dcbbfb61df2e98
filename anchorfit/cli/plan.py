"""``anchorfit plan``: per-level anchors from stride, RF, ERF and (optionally) a dataset."""

from __future__ import annotations

import argparse

from anchorfit.cli import validate
from anchorfit.cli.common import add_erf_input, add_format_options, add_input, add_model, \
    add_seed, emit, flags, parse_floats, parse_optional_hw
from anchorfit.cli.dataset import add_dataset_options, dataset_note, load_dataset
from anchorfit.design.plan import RATIO, RESTARTS, SAMPLES
from anchorfit.errors import AnchorfitError

EXAMPLES = """examples:
  anchorfit plan                                   # S3FD: Table 1 with its ERF column
  anchorfit plan configs/faceboxes.yaml --ratio 4 --no-erf
  anchorfit plan s3fd --boxes wider_face_val_bbx_gt.txt --policy none -k 6 --plot ladder.png
  anchorfit plan torchvision:retinanet_resnet50_fpn --rule octave --no-erf --format json
  anchorfit plan yolov8.yaml --boxes labels/train2017 --image-sizes sizes.csv --no-erf
"""


#: plan's parameters as this command's flags (errors from the library name the flag)
FLAGS = {"k": "-k", "ratio": "--ratio", "rule": "--rule", "aspect_ratios": "--aspect-ratios",
         "scales_per_octave": "--scales-per-octave", "samples": "--samples"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.design.plan import RULES

    p = sub.add_parser(
        "plan", help="propose anchors per level (S3FD rule, SSD, octave, FCOS; data-driven)",
        description="Propose anchors for every detection level and check them. The default "
                    "rule is S3FD's: anchor = --ratio x stride (equal-proportion tiling), "
                    "checked against anchor < ERF (4 sigma, measured) < RF (feature and head RF "
                    "shown). With --boxes, anchors are clustered per level (level-aware k-means, "
                    "capped by the level's ERF), boxes are assigned to levels, and the plan says "
                    "what the data needs that the network cannot give. Anchor-free detectors "
                    "(YOLOv8-YOLO26, FCOS, YOLOX, RTMDet, ...) get per level the object sizes "
                    "their assigner lets them learn and why (a grid point inside the box, DFL "
                    "reach, regress ranges); with --boxes, how many boxes no level learns and "
                    "the remedies (add P2/P6, input size, reg_max, ranges) with their numbers. "
                    "Without MODEL it plans the S3FD spec shipped with anchorfit.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "detector file, zoo name or torchvision:NAME (default: s3fd)", nargs="?",
              default="s3fd")
    add_input(p)
    p.add_argument("--rule", choices=RULES, default=None,
                   help="s3fd: ratio x stride; ssd / ssd-caffe: SSD scales over the levels with "
                        "each level's aspect ratios and the extra square; octave: RetinaNet's "
                        "scales per octave at ratio x stride, times each aspect ratio (9 "
                        "anchors a level); fcos: anchor-free ranges (the detector's own, else "
                        "(4s, 8s]) checked against ERF and head RF (default: fcos for "
                        "anchor-free detectors, else s3fd)")
    p.add_argument("--ratio", type=validate.finite_float(above=0), default=RATIO,
                   help="anchor/stride (S3FD: 4); the octave base for --rule octave")
    p.add_argument("--aspect-ratios", metavar="R1,R2,...",
                   help="anchor aspect ratios h/w for every level (default: the ratios each "
                        "level's anchors were designed with, e.g. SSD's 2 and 3, RetinaNet's "
                        "0.5,1,2; else 1 for s3fd and 0.5,1,2 for the other rules)")
    p.add_argument("--scales-per-octave", type=int, metavar="N",
                   help="--rule octave: scales per octave (default: the detector's, else 3)")
    add_dataset_options(p)
    p.add_argument("-k", type=int, help="anchors to cluster with --boxes (default: one per level)")
    p.add_argument("--restarts", type=int, default=RESTARTS,
                   help=f"k-means restarts (default {RESTARTS})")
    erf = p.add_mutually_exclusive_group()
    erf.add_argument("--no-erf", action="store_true",
                     help="skip the ERF measurement (faster; no anchor < ERF check)")
    erf.add_argument("--samples", type=int, default=SAMPLES,
                     help=f"noise samples for the ERF (default {SAMPLES}, about 20 s for S3FD "
                          "on a CPU; more samples narrow the intervals)")
    add_erf_input(p)
    add_seed(p)
    p.add_argument("--plot", metavar="PNG", type=validate.figure_file,
                   help="the per-level ladder: stride, anchor, ERF, RF")
    p.add_argument("--plot-boxes", metavar="PNG", type=validate.figure_file,
                   help="with --boxes: box sizes with the planned anchors and level boundaries")
    add_format_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from anchorfit import load as models
    from anchorfit.design.plan import check_options, measure_erf, plan

    with flags(FLAGS):  # before the slow part: reading the detector, measuring the ERF
        check_options(ratio=args.ratio, k=args.k, samples=args.samples,
                      scales_per_octave=args.scales_per_octave)
    from anchorfit.cluster.api import check_restarts

    check_restarts(args.restarts, "--restarts")
    if args.plot_boxes and not args.boxes:
        raise AnchorfitError("--plot-boxes needs --boxes", key="--plot-boxes")
    if args.erf_input and args.no_erf:
        raise AnchorfitError("--erf-input needs the ERF: drop --no-erf", key="--erf-input")
    erf_input = parse_optional_hw(args.erf_input, "--erf-input")
    size = parse_optional_hw(args.input)
    detector = models.load_detector(args.model, size)
    prepared = load_dataset(args, detector)
    notes: list[str] = []
    erf = None
    if not args.no_erf:
        with flags(FLAGS):
            erf, erf_notes = measure_erf(detector, samples=args.samples, seed=args.seed,
                                         progress=True, erf_input=erf_input)
        notes += erf_notes
    aspect = parse_floats(args.aspect_ratios, "--aspect-ratios") \
        if args.aspect_ratios else None
    with flags(FLAGS):
        result = plan(detector, rule=args.rule, ratio=args.ratio, aspect_ratios=aspect,
                      scales_per_octave=args.scales_per_octave,
                      wh=None if prepared is None else prepared.boxes.wh(), k=args.k, erf=erf,
                      seed=args.seed, restarts=args.restarts)
    if prepared is not None:
        notes.append(dataset_note(prepared))
    notes += result.notes
    for w in result.warnings:
        notes.append(f"{w.severity} {w.code} {w.level or ''}: {w.message} -> {w.remedy}")
    if args.plot:
        from anchorfit.report.figures.design import ladder

        ladder(result, args.plot)
    if args.plot_boxes:
        from anchorfit.report.figures.design import box_scatter

        planned = [a for lv in result.anchors_by_level() for a in lv]
        box_scatter(prepared.boxes.wh(), {"planned": planned} if planned else {},  # anchor-free
                    [lv.stride for lv in result.levels], args.plot_boxes,
                    title=f"{detector.name}: boxes and planned anchors", seed=args.seed)
    h, w = result.input_size
    kind = ("anchor-free plan (learnable sizes per level)" if result.anchor_free is not None
            else f"{result.rule} plan (ratio {result.ratio:g})")
    emit(result, args, title=f"{result.detector} @ {h}x{w}: {kind}",
         caption="sizes in input pixels; rf = feature-map RF, head_rf includes the head's convs; "
                 "erf = 4 sigma of the effective RF with its 95% interval",
         notes=notes)
    return 0
