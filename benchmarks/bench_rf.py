"""RF engine speed against the gradient probe, measured in the same run.

    python benchmarks/bench_rf.py            # resnet152 @1024 and a 10,000-node DAG
    python benchmarks/bench_rf.py --quick    # resnet50 @224 and a 2,000-node DAG
    python benchmarks/bench_rf.py --size 224 --probe-layers layer1,layer2,layer3,layer4

Targets (issues "Package foundation and the exact receptive-field engine" and 16): whole-graph
analysis >= 100x faster than the probe on the same layers; resnet152, all nodes, at 1024x1024 in
about 4 s on 2 cores including tracing (the engine's own propagation is well under 0.1 s; tracing
and shape propagation are the rest). The probe cost counted is what verifying the listed layers
takes: linearising the network, one float64 forward and one backward per probed cell (every phase
plus one repeat). At 1024 px the full-width float64 probe of layer3/layer4 takes minutes on 2 cores,
so by default it is measured on layer1 and layer2 and extrapolated per layer (which flatters the
probe: deeper layers cost it more).
"""

from __future__ import annotations

import argparse
import random
import time

import torch
import torch.nn as nn

from anchorfit import load as models
from anchorfit.rf import analyze
from anchorfit.rf.probe import linearize, probe_cells
from anchorfit.rf.trace import trace_module


class SyntheticDAG(nn.Module):
    """A random DAG of 3x3 convs, adds and channel concats (seeded), ~``nodes`` fx nodes."""

    def __init__(self, nodes: int, seed: int = 0) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.plan: list[tuple[str, int, int]] = []
        self.convs = nn.ModuleList()
        count = 0
        while count < nodes:
            kind = rng.choice(["conv", "conv", "add", "cat"])
            a = rng.randrange(len(self.plan) + 1)
            b = rng.randrange(len(self.plan) + 1)
            if kind == "conv":
                self.convs.append(nn.Conv2d(2, 2, 3, 1, 1))
            elif kind == "cat":
                self.convs.append(nn.Conv2d(4, 2, 1))
                count += 1
            self.plan.append((kind, a, b))
            count += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        convs = iter(self.convs)
        for kind, a, b in self.plan:
            if kind == "conv":
                outs.append(next(convs)(outs[a]))
            elif kind == "add":
                outs.append(outs[a] + outs[b])
            else:
                outs.append(next(convs)(torch.cat([outs[a], outs[b]], 1)))
        return outs[-1]


def best_of(repeats: int, fn):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def time_probe(traced, analysis, layers, size, channels) -> tuple[float, int]:
    """Seconds the probe needs for ``layers`` (every phase + one repeat each), and cells probed."""
    from anchorfit.rf.probe import cells_to_probe

    start = time.perf_counter()
    lin = linearize(traced)
    cells_done = 0
    for layer in layers:
        rf = analysis[layer]
        cells = cells_to_probe(rf, size) or [(rf.y.size // 2, rf.x.size // 2)]
        probe_cells(traced, size, layer, cells, channels, lin)
        cells_done += len(cells)
    return time.perf_counter() - start, cells_done


def bench(case: str, build, size, channels: int, probe_layers) -> dict:
    build()  # warm-up: imports, dispatcher caches
    engine_s, (traced, analysis) = best_of(3, lambda: (lambda t: (t, analyze(t.graph, size)))(
        build()))
    analyze_s, _ = best_of(3, lambda: analyze(traced.graph, size))
    layers = probe_layers(traced)
    probe_s, cells = time_probe(traced, analysis, layers, size, channels)
    per_layer = probe_s / len(layers)
    n = len(analysis)
    return {"case": case, "nodes": n, "engine": engine_s, "analyze": analyze_s,
            "layers": len(layers), "cells": cells, "probe": probe_s,
            "probe_all": per_layer * (n - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models, for a smoke run")
    parser.add_argument("--size", type=int, default=None,
                        help="input side of the torchvision case (default 1024, --quick 224)")
    parser.add_argument("--probe-layers", default="layer1,layer2",
                        help="layers the probe is measured on (default layer1,layer2)")
    args = parser.parse_args()
    name = "resnet50" if args.quick else "resnet152"
    dag_nodes = 2000 if args.quick else 10000
    side = args.size or (224 if args.quick else 1024)
    size = (side, side)

    def tv_build():
        return models.load(f"torchvision:{name}", size).traced

    def tv_layers(traced):
        return [traced.resolve(layer.strip()) for layer in args.probe_layers.split(",")]

    with torch.device("meta"):  # as anchorfit builds models for RF analysis: no weights
        dag = SyntheticDAG(dag_nodes).eval()
    dsize = (32, 32)
    rng = random.Random(0)

    def dag_layers(traced):
        nodes = [n for n in traced.graph.nodes if n != traced.graph.input_names[0]]
        return sorted(rng.sample(nodes, 8), key=nodes.index)

    rows = [bench(f"torchvision {name} @{side}", tv_build, size, 3, tv_layers),
            bench(f"synthetic {dag_nodes}-node DAG @32", lambda: trace_module(
                dag, dsize, in_channels=2), dsize, 2, dag_layers)]
    head = (f"{'case':30} {'nodes':>6} {'engine s':>9} {'analyze s':>10} {'probe s':>8} "
            f"{'on':>16} {'x (layers)':>11} {'x analyze':>10} {'probe all s':>12} {'x (all)':>8}")
    print("engine s = build/trace + shapes + RF of every node (best of 3); analyze s = RF "
          "propagation alone; x analyze = probe s / analyze s")
    print("probe s = gradient probe measured on the listed layers; probe all s = that per-layer "
          "cost x every node (extrapolated)")
    print(head)
    for r in rows:
        print(f"{r['case']:30} {r['nodes']:>6} {r['engine']:>9.3f} {r['analyze']:>10.4f} "
              f"{r['probe']:>8.2f} {str(r['layers']) + ' layers/' + str(r['cells']) + ' cells':>16} "
              f"{r['probe'] / r['engine']:>10.0f}x {r['probe'] / r['analyze']:>9.0f}x "
              f"{r['probe_all']:>12.0f} "
              f"{r['probe_all'] / r['engine']:>7.0f}x")
    print("targets: >= 100x faster than the probe; resnet152 all nodes @1024 about 4 s including "
          "tracing on 2 cores")


if __name__ == "__main__":
    main()
