"""ERF estimator speed against the per-image, per-level loop (the RepLKNet way), same run.

    python benchmarks/bench_erf.py                    # SSD300, all six levels, 64 samples
    python benchmarks/bench_erf.py --samples 4        # shorter
    python benchmarks/bench_erf.py --variants default,joint,joint-batched,whole

Target (issue "Effective receptive field estimator"): >= 5x faster on CPU with identical maps.
Both sides use the same input size (the one ``anchorfit erf`` picks), the same cells, the same
seeded noise images and Rademacher cotangents, so the maps must agree up to float rounding.

The baseline is what RepLKNet/SLaK/OpenERF do: for every image and every level, a forward pass
of the network up to that level on the whole input, then one ``autograd.grad`` of the cell.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from anchorfit.design.erf_network import load_erf_network
from anchorfit.erf import ErfConfig, estimate
from anchorfit.erf.cells import plan_levels
from anchorfit.erf.passes import cotangents, outputs_module
from anchorfit.erf.sources import NoiseSource


def baseline(net, plans, samples: int, seed: int) -> tuple[float, list[np.ndarray]]:
    """Per image, per level: forward to the level on the whole input, backward from the cell."""
    h, w = net.input_size
    source = NoiseSource(net.in_channels, (h, w), seed)
    subs = [outputs_module(net.traced.gm, [p.node]).eval() for p in plans]
    for p in net.traced.gm.parameters():
        p.requires_grad_(False)
    sums = [np.zeros((h, w)) for _ in plans]
    start = time.perf_counter()
    for k in range(samples):
        image = source.batch([k])
        for lvl, (plan, sub) in enumerate(zip(plans, subs)):
            x = image.clone().requires_grad_(True)
            (feat,) = sub(x)
            v = cotangents(seed, 0, [k], lvl, feat.shape[1]).to(feat.dtype)
            (g,) = torch.autograd.grad((feat[:, :, plan.cell[0], plan.cell[1]] * v).sum(), x)
            sums[lvl] += g.square().sum(1)[0].double().numpy()
    return time.perf_counter() - start, [s / samples for s in sums]


VARIANTS = {
    "default": ("anchorfit default (auto schedule, cone crops)", {}),
    "per-level": ("anchorfit (one window per level, cone crops)", {"schedule": "per-level"}),
    "no-cone": ("anchorfit (auto schedule, no cone crops)", {"cone": False}),
    "channels-last": ("anchorfit (auto schedule, cone crops, channels-last)",
                      {"channels_last": True}),
    "joint": ("anchorfit (one window for all levels, loop backward)",
              {"schedule": "joint", "backward": "loop", "cone": False}),
    "joint-batched": ("anchorfit (one window for all levels, batched backward)",
                      {"schedule": "joint", "backward": "batched"}),
    "whole": ("anchorfit (whole input, loop backward)",
              {"schedule": "joint", "backward": "loop", "crop": False}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="torchvision:ssd300_vgg16")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="default",
                    help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    net = load_erf_network(args.model, seed=args.seed)
    plans = plan_levels(net, net.default_layers)
    print(f"{args.model} @ {net.input_size[0]}x{net.input_size[1]}, levels "
          f"{', '.join(p.name for p in plans)} (RF {', '.join(str(p.rf.rf[0]) for p in plans)}), "
          f"{args.samples} samples, {torch.get_num_threads()} threads")
    results = {}
    for key in args.variants.split(","):
        label, kw = VARIANTS[key]
        res = estimate(net, config=ErfConfig(samples=args.samples, seed=args.seed, weights="as_is",
                                             n_boot=200, **kw))
        results[label] = res
        print(f"  {label}: {res.seconds:.1f} s ({res.schedule}: {res.passes}, "
              f"channels-last {res.channels_last})", flush=True)
    base_time, base_maps = baseline(net, plans, args.samples, args.seed)
    print(f"\n| method | seconds | s/sample | speed-up | max abs diff / max |")
    print("|---|---|---|---|---|")
    print(f"| per-image, per-level loop (RepLKNet way) | {base_time:.1f} | "
          f"{base_time / args.samples:.2f} | 1.0x | - |")
    for label, res in results.items():
        secs = res.seconds
        diff = max(float(np.abs(lv.full_map(res.input_size) - ref).max() / ref.max())
                   for lv, ref in zip(res.levels, base_maps))
        print(f"| {label}, batch {res.batch_size}, bounds {res.window} | {secs:.1f} | "
              f"{secs / args.samples:.2f} | {base_time / secs:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
