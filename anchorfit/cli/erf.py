"""``anchorfit erf``: effective receptive field of a network's detection levels, with intervals."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from anchorfit.cli import validate
from anchorfit.cli.common import add_format_options, emit, input_paths, parse_hw, split_list
from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import CONVENTION
from anchorfit.report.text import plural

if TYPE_CHECKING:
    from anchorfit.erf.config import ErfConfig

EXAMPLES = """examples:
  anchorfit erf torchvision:resnet50 --layers layer1,layer2,layer3,layer4 --samples 16
  anchorfit erf torchvision:ssd300_vgg16 --until-ci --plot erf.png --save erf.npz
  anchorfit erf torchvision:resnet18 --weights uniform --mode abs --format json
  anchorfit erf mypackage.models:build_backbone --weights trained.pt --images val/ --fit
  anchorfit erf configs/s3fd.yaml --device cuda
  anchorfit erf yolov3-tiny --samples 8
"""

#: ErfConfig field -> the flag that sets it (the CLI only maps; the library validates)
FLAGS = {"samples": "--samples", "until_ci": "--until-ci", "max_samples": "--max-samples",
         "ci_target": "--ci-target", "mode": "--mode", "weights": "--weights",
         "images": "--images", "seed": "--seed", "device": "--device",
         "batch_size": "--batch-size", "weight_draws": "--weight-draws",
         "backward": "--backward", "crop": "--no-crop", "schedule": "--schedule",
         "channels_last": "--channels-last", "fit": "--fit"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.erf.config import BACKWARDS, DEFAULT_SAMPLES, MODES, UNIFORM_SAMPLES, ErfConfig
    from anchorfit.erf.window import SCHEDULES

    d = ErfConfig  # the library's defaults, shown in the help

    p = sub.add_parser(
        "erf", help="effective receptive field (ERF) of every detection level",
        description="Measure where each detection level really looks: the input-gradient energy "
                    "of the level's centre cell (the one whose RF centre is nearest the image "
                    "centre, with its whole RF inside the input), averaged over seeded samples. "
                    "Reports per axis the centroid, sigma, 4*sigma (the ERF size), the centred "
                    "squares holding 50/90/95.45 % of the mass, Luo's threshold region, the "
                    "ratios 4sigma/RF and anchor/4sigma (anchor = 4 x stride unless --anchors), "
                    "with percentile-bootstrap 95 % intervals. " + CONVENTION + ".",
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
                          help=f"number of input samples (default {DEFAULT_SAMPLES}, a few "
                               "minutes for a large detector on a CPU, the interval as wide as "
                               f"{DEFAULT_SAMPLES} samples make it; {UNIFORM_SAMPLES} with "
                               "--weights uniform, whose maps do not depend on the input). A "
                               "run expected to take over 30 s says so after its first sample, "
                               "with ways to shorten it")
    how_many.add_argument("--until-ci", action="store_true",
                          help="keep sampling until every sigma's 95%% CI half-width is under "
                               "--ci-target of sigma, or --max-samples")
    p.add_argument("--ci-target", type=validate.finite_float(above=0, below=1), default=None,
                   help=f"relative half-width that stops --until-ci (default {d.ci_target})")
    p.add_argument("--max-samples", type=int, default=None,
                   help=f"sample cap of --until-ci (default {d.max_samples})")
    p.add_argument("--weights", "-w", default=None, metavar="random|uniform|FILE",
                   help="random: seeded initialisation, BatchNorm statistics recalibrated on the "
                        "samples (default); uniform: all-positive linear copy (Luo's analytic "
                        "baseline); FILE: a state dict saved with torch.save")
    p.add_argument("--weight-draws", type=int, default=None,
                   help="with random weights: seeded weight redraws (bootstrapped "
                        f"hierarchically; default {d.weight_draws})")
    p.add_argument("--images", metavar="DIR",
                   help="a folder of images (resized to the input, normalised) instead of "
                        "seeded Gaussian noise")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="energy: sum over channels of squared gradients with a random +-1 "
                        "cotangent (default); abs: |g| summed over channels, all-ones cotangent "
                        "(Luo); replknet: ReLU of the centre, ReLU of the gradient, log10 "
                        "pictures (RepLKNet/SLaK)")
    p.add_argument("--fit", action="store_true",
                   help="also fit a 2-D Gaussian to each map and report its R2")
    p.add_argument("--anchors", metavar="A,B,...",
                   help="anchor side per level (S or HxW) for anchor/4sigma; default 4 x stride")
    p.add_argument("--seed", type=validate.seed, default=None,
                   help=f"seed of weights, inputs, cotangents and bootstrap (default {d.seed})")
    p.add_argument("--device", default=None, help=f"{d.device} (default) or cuda[:N]")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per forward pass (default: from a memory budget per pass; "
                        "on CPU few, since larger batches measured slower there)")
    p.add_argument("--backward", choices=BACKWARDS, default=None,
                   help="levels' backward passes: one vmapped pass (batched, is_grads_batched) "
                        "or a loop; auto picks the loop on CPU, batched on CUDA")
    p.add_argument("--no-crop", action="store_true",
                   help="run on the whole input instead of the window holding the cells' RFs")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
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
    for part in split_list(text):
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
        raise AnchorfitError(f"--anchors gives {plural(len(values), 'size')} for "
                             f"{plural(len(layers), 'level')} "
                             f"({', '.join(layers)})")
    return dict(zip(layers, values))


def erf_config(args: argparse.Namespace) -> ErfConfig:
    """The ``ErfConfig`` the flags ask for (a flag left out: the library's default). A bad value
    is reported under its flag: "--samples 0: must be positive"."""
    from anchorfit.erf.config import ConfigError, ErfConfig

    given = {field: getattr(args, field) for field in FLAGS if field != "crop"}
    given["crop"] = not args.no_crop
    try:
        return ErfConfig(**{k: v for k, v in given.items() if v is not None})
    except ConfigError as exc:
        flag = FLAGS.get(exc.param, exc.param)
        raise AnchorfitError(f"{flag} {exc.value}: {exc.requirement}", hint=exc.hint) from None


def run(args: argparse.Namespace) -> int:
    from anchorfit import load as models
    from anchorfit.design.erf_network import load_erf_network
    from anchorfit.erf import estimate
    from anchorfit.report.figures.erf import save_erf_figure
    from anchorfit.report.maps import maps_npz
    from anchorfit.report.safe_write import write_output

    config = erf_config(args)
    requested = split_list(args.layers) if args.layers else None
    size = parse_hw(args.input) if args.input else None
    net = load_erf_network(args.model, size, requested, seed=config.seed, unknown=args.unknown)
    layers = models.layer_names(net, requested)
    if args.anchors:
        config = config.replace(anchors=parse_anchors(args.anchors, layers))
    result = estimate(net, layers, config, progress=True, options=FLAGS)
    h, w = result.input_size
    try:
        emit(result, args, title=f"{result.model} @ {h}x{w}: ERF ({result.mode}, "
                                 f"{plural(result.samples, 'sample')}, seed {result.seed})",
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
