"""The traced network an ERF runs on, from a MODEL string or a detector: the resolver's side of
the ERF (``anchorfit.erf`` measures a network it is handed and never reads a file).

``load_erf_network`` serves ``anchorfit erf`` (a MODEL string, at the size asked for or at the
canvas the levels need); ``erf_network`` serves the planner, ``audit --erf`` and ``compare
--erf`` (a detector already read, at ``anchorfit.erf.canvas.choose_canvas``'s canvas, read again
at that size when it moved). Both seed the weights they build, so an ERF repeats.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from anchorfit import load as models
from anchorfit.erf.canvas import Canvas, check_canvas, choose_canvas
from anchorfit.erf.cells import required_input, size_multiple
from anchorfit.errors import AnchorfitError


def load_erf_network(model: str, input_size: tuple[int, int] | None = None,
                 layers: Sequence[str] | None = None, *, seed: int = 0,
                 unknown: str = "error") -> Any:
    """``models.load(model, ..., materialize=True)`` with the weights drawn under ``seed``, at
    ``input_size`` or, without one, at the size the levels need (``required_input``)."""

    def build(size: tuple[int, int] | None) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return models.load(model, size, unknown=unknown, materialize=True)  # type: ignore[arg-type]

    if input_size is not None:
        return build(input_size)
    probe = models.load(model, None, unknown=unknown)  # type: ignore[arg-type]
    analysis = probe.analyze()
    names = models.layer_names(probe, layers)
    nodes = [probe.node(n) for n in names]
    size = required_input([analysis[n] for n in nodes],
                          multiple=size_multiple(probe.graph, analysis, nodes))
    return build(size)


def _fmt(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def detector_at(detector: Any, size: tuple[int, int]) -> Any:
    """The same detector read again at input ``size`` (its source file, packaged zoo name or
    ``torchvision:NAME``): readers resolve size-dependent layers ('same' padding, fixed resample
    sizes) for that input. Without a source, a file network's IR is rebuilt at ``size``."""
    if tuple(detector.input_size) == tuple(size):
        return detector
    if detector.source:
        return models.load_detector(str(detector.source), size)
    net = detector.network
    if net is None or not hasattr(net, "channels"):
        raise AnchorfitError(f"{detector.name}: cannot rebuild the network at {_fmt(size)} for "
                             "the ERF (no source file)", hint="measure it with anchorfit erf")
    moved = copy.copy(detector)
    twin = copy.copy(net)
    twin.__dict__.pop("_module", None)
    twin.input_size = tuple(size)
    moved.network, moved.input_size = twin, tuple(size)
    return moved


def erf_network(detector: Any, layers: Sequence[str], requested: tuple[int, int] | None = None,
                *, seed: int = 0) -> tuple[Any, Canvas]:
    """The traced network the ERF of ``detector``'s ``layers`` runs on, and its canvas.

    File networks get a torch module built from their IR under ``seed`` (``models.as_traced``),
    so the weights, and the ERF, repeat."""
    net = detector.network
    if net is None:
        raise AnchorfitError(f"{detector.name} has no network, so no ERF can be measured",
                             hint="plan: use --no-erf; audit: give sizes with --erf L=PX,...; "
                                  "compare: drop --erf")
    canvas = choose_canvas(net, layers, requested)
    if canvas.size != tuple(net.input_size):
        net = detector_at(detector, canvas.size).network
    if canvas.requested:
        check_canvas(net, layers)
    if net.traced is None:
        net = models.as_traced(net, seed=seed)
    return net, canvas



__all__ = ["detector_at", "erf_network", "load_erf_network"]
