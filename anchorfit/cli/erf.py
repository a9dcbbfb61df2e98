"""``anchorfit erf``: effective receptive field of a network's detection levels, with intervals."""

from __future__ import annotations

import argparse
import math
import sys

from anchorfit.cli import validate
from anchorfit.cli.common import add_format_options, emit, input_paths, parse_hw
from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import CONVENTION

EXAMPLES = """examples:
  anchorfit erf torchvision:resnet50 --layers layer1,layer2,layer3,layer4 --samples 16
  anchorfit erf torchvision:ssd300_vgg16 --until-ci --plot erf.png --save erf.npz
  anchorfit erf torchvision:resnet18 --weights uniform --mode abs --format json
  anchorfit erf mypackage.models:build_backbone --weights trained.pt --images val/ --fit
  anchorfit erf configs/s3fd.yaml --device cuda
  anchorfit erf yolov3-tiny --samples 8
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.erf.estimator import BACKWARDS, MODES
    from anchorfit.erf.window import SCHEDULES

    p = sub.add_parser(
        "erf", help="effective receptive field (ERF) of every detection level",
        description="Measure where each detection level really looks: the input-gradient energy "
                    "of the level's centre cell (the one whose RF centre is nearest the image "
                    "centre, with its whole RF inside the input), averaged over seeded samples. "
                    "Reports per axis the centroid, sigma, 4*sigma (the ERF size), the centred "
                    "squares holding 50/90/95.45 %% of the mass, Luo's threshold region, the "
                    "ratios 4sigma/RF and anchor/4sigma (anchor = 4 x stride unless --anchors), "
                    "with percentile-bootstrap 95 %% intervals. " + CONVENTION + ".",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="torchvision:NAME, package.module:factory, file.py:factory, a detector "
                        "file whose reader builds a torch module, or a zoo name (s3fd)")
    p.add_argument("--input", "-i", "--erf-input", metavar="HxW",
                   help="input size (height first); default: the largest RF + 2 x 2 strides on "
                        "each side, rounded up to the largest stride (--erf-input: the same, "
                        "spelled as in plan, audit and compare)")
    p.add_argument("--layers", "-l", metavar="A,B,...",
                   help="comma-separated layer names (default: the detection levels, or a "
                        "classifier's stage outputs)")
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument("--samples", "-n", type=int, default=None,
                          help="number of input samples (default 32; 1 with --weights uniform, "
                               "whose maps do not depend on the input)")
    how_many.add_argument("--until-ci", action="store_true",
                          help="keep sampling until every sigma's 95%% CI half-width is under "
                               "--ci-target of sigma, or --max-samples")
    p.add_argument("--ci-target", type=validate.finite_float(above=0, below=1), default=0.02,
                   help="relative half-width that stops --until-ci (default 0.02)")
    p.add_argument("--max-samples", type=int, default=512,
                   help="sample cap of --until-ci (default 512)")
    p.add_argument("--weights", "-w", default="random", metavar="random|uniform|FILE",
                   help="random: seeded initialisation, BatchNorm statistics recalibrated on the "
                        "samples (default); uniform: all-positive linear copy (Luo's analytic "
                        "baseline); FILE: a state dict saved with torch.save")
    p.add_argument("--weight-draws", type=int, default=1,
                   help="with random weights: seeded weight redraws (bootstrapped "
                        "hierarchically; default 1)")
    p.add_argument("--images", metavar="DIR",
                   help="a folder of images (resized to the input, normalised) instead of "
                        "seeded Gaussian noise")
    p.add_argument("--mode", choices=MODES, default="energy",
                   help="energy: sum over channels of squared gradients with a random +-1 "
                        "cotangent (default); abs: |g| summed over channels, all-ones cotangent "
                        "(Luo); replknet: ReLU of the centre, ReLU of the gradient, log10 "
                        "pictures (RepLKNet/SLaK)")
    p.add_argument("--fit", action="store_true",
                   help="also fit a 2-D Gaussian to each map and report its R2")
    p.add_argument("--anchors", metavar="A,B,...",
                   help="anchor side per level (S or HxW) for anchor/4sigma; default 4 x stride")
    p.add_argument("--seed", type=validate.seed, default=0,
                   help="seed of weights, inputs, cotangents and bootstrap (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per forward pass (default: from a memory budget per pass; "
                        "on CPU few, since larger batches measured slower there)")
    p.add_argument("--backward", choices=BACKWARDS, default="auto",
                   help="levels' backward passes: one vmapped pass (batched, is_grads_batched) "
                        "or a loop; auto picks the loop on CPU, batched on CUDA")
    p.add_argument("--no-crop", action="store_true",
                   help="run on the whole input instead of the window holding the cells' RFs")
    p.add_argument("--schedule", choices=SCHEDULES, default="auto",
                   help="joint: one forward pass for all levels on the window holding every "
                        "cell's RF; per-level: each level on its own, smaller window; auto "
                        "(default): levels with about the same window share a pass, the "
                        "grouping with the least work (window area x passes). The maps are the "
                        "same either way")
    p.add_argument("--channels-last", action="store_true",
                   help="run in channels-last memory format: about 15%% faster on CPU, but the "
                        "float rounding changes, and with it which pixel a max-pool near-tie "
                        "sends the gradient to (per-sample maps differ by a few %% of the peak)")
    p.add_argument("--unknown", choices=("error", "pointwise"), default="error",
                   help="what to do with an op anchorfit has no geometry rule for")
    add_format_options(p)
    p.add_argument("--plot", metavar="PNG", type=validate.figure_file,
                   help="save heatmaps (one panel per level) to this .png/.svg/.pdf")
    p.add_argument("--save", metavar="NPZ", type=validate.output_file,
                   help="save the mean maps to this .npz")
    p.set_defaults(handler=run)


def parse_anchors(text: str, layers: list[str]) -> dict[str, tuple[float, float]]:
    values = []
    for part in (s.strip() for s in text.split(",")):
        if not part:
            continue
        try:
            sides = [float(v) for v in part.lower().split("x")]
        except ValueError:
            sides = []
        if len(sides) == 1:
            sides = sides * 2
        if len(sides) != 2 or not all(0 < s < math.inf for s in sides):
            raise AnchorfitError(f"--anchors {text!r}: {part!r} is not a side (S or HxW)")
        values.append((sides[0], sides[1]))
    if len(values) != len(layers):
        raise AnchorfitError(f"--anchors gives {len(values)} sizes for {len(layers)} levels "
                             f"({', '.join(layers)})")
    return dict(zip(layers, values))


def run(args: argparse.Namespace) -> int:
    from anchorfit import models
    from anchorfit.erf.estimator import estimate, load_network
    from anchorfit.erf.plots import maps_npz, save_erf_figure
    from anchorfit.report.safe_write import write_output

    if args.samples is not None and args.samples < 1:
        raise AnchorfitError(f"--samples {args.samples}: must be at least 1")
    if not 0 < args.ci_target < 1:
        raise AnchorfitError(f"--ci-target {args.ci_target}: expected a fraction, e.g. 0.02")
    requested = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    size = parse_hw(args.input) if args.input else None
    net = load_network(args.model, size, requested, seed=args.seed, unknown=args.unknown)
    layers = models.layer_names(net, requested)
    anchors = parse_anchors(args.anchors, layers) if args.anchors else None
    samples = args.samples if args.samples is not None else (
        1 if args.weights == "uniform" else 32)
    if args.images and args.weights == "uniform" and args.samples is None:
        samples = 1
    result = estimate(
        net, layers, samples=samples, until_ci=args.until_ci, max_samples=args.max_samples,
        ci_target=args.ci_target, mode=args.mode, weights=args.weights, images=args.images,
        seed=args.seed, device=args.device, batch_size=args.batch_size,
        weight_draws=args.weight_draws, backward=args.backward, crop=not args.no_crop,
        schedule=args.schedule, channels_last=args.channels_last,
        fit=args.fit, anchors=anchors, progress=sys.stderr.isatty())
    h, w = result.input_size
    try:
        emit(result, args, title=f"{result.model} @ {h}x{w}: ERF ({result.mode}, "
                                 f"{result.samples} samples, seed {result.seed})",
             caption="sigma, 4sigma (ERF size), squares (side holding 50/90/95.45 % of the "
                     "mass) and luo (Luo's 0.0455 x centre region, equivalent diameter) in input "
                     "pixels, index convention; 95 % bootstrap CI",
             notes=result.notes)
        if args.plot is not None:
            save_erf_figure(result, args.plot)
        if args.save is not None:
            write_output(args.save, maps_npz(result), what="--save",
                         protect=input_paths(args))
    except OSError as exc:
        raise AnchorfitError(f"cannot write {exc.filename or 'output'}: {exc.strerror}") from None
    return 0
