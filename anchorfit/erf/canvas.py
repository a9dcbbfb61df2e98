"""Which input the ERF of a detector is measured on: its *canvas*.

The estimator measures, per level, the cell nearest the image centre whose whole RF lies inside
the input (``cells.choose_cell``). A detector's native input can be smaller than its deepest
level's RF (SSD300's fc7 sees 420 px of a 300 px image, YOLOv3's P5 far more than 416/608 px):
no cell qualifies there. Such a level still has an ERF; it just needs a larger canvas, the one
``anchorfit erf`` picks without ``--input`` (``cells.required_input``: the largest RF plus two
margins of two strides, rounded up to the largest stride). For a network without global context
a cell's map depends only on the pixels of its RF (the compute-window argument,
``anchorfit.erf.window``), so the ERF measured on the larger canvas is the ERF of that cell at
the native input too; RF, strides and anchors keep being reported at the native input.

``plan``, ``audit --erf`` and ``compare --erf`` measure on ``choose_canvas``: the native input when
every level fits there, else the canvas, or the size the user asks for (``--erf-input``); the
network rebuilt at that size comes from ``anchorfit.design.erf_network``, which reads files. A
level after a global op reads the whole input at any size (``choose_cell`` takes its centre
cell), so it never asks for a larger canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anchorfit.erf.cells import choose_cell, nearest_fitting, required_input, size_multiple
from anchorfit.errors import AnchorfitError


@dataclass(frozen=True)
class Canvas:
    """The input size the ERF runs on, the detector's own, and why they differ."""

    size: tuple[int, int]
    native: tuple[int, int]
    reason: str = ""  # empty when size == native and nobody asked for it
    requested: bool = False

    @property
    def moved(self) -> bool:
        return self.size != self.native

    def to_dict(self) -> dict[str, Any]:
        return {"input": list(self.size), "native_input": list(self.native),
                "requested": self.requested, "reason": self.reason or None}

    def describe(self) -> str:
        """Where the ERF is measured and why, for the one line on standard error."""
        if not self.moved:
            return f"canvas {_fmt(self.size)} (the detector's input)"
        return (f"canvas {_fmt(self.size)} ({self.reason}; rf, strides and anchors are at the "
                f"detector's {_fmt(self.native)})")


def _fmt(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def short_levels(net: Any, layers: Sequence[str], size: tuple[int, int] | None = None,
                 analysis: Any = None) -> list[str]:
    """The layers of ``net`` that have no cell whose whole RF lies inside ``size`` (default: the
    network's input), i.e. whose ERF cannot be measured there."""
    analysis = analysis or net.analyze()
    hw = size or (int(net.input_size[0]), int(net.input_size[1]))
    return [n for n in layers if choose_cell(analysis[net.node(n)], hw) is None]


def canvas_for(net: Any, layers: Sequence[str], analysis: Any = None) -> tuple[int, int]:
    """The size ``anchorfit erf`` picks for ``layers``: the largest RF plus margins, rounded up to
    the largest stride and to what the network's top-down merges need (``size_multiple``)."""
    analysis = analysis or net.analyze()
    nodes = [net.node(n) for n in layers]
    return required_input([analysis[n] for n in nodes],
                          multiple=size_multiple(net.graph, analysis, nodes))


def choose_canvas(net: Any, layers: Sequence[str],
                  requested: tuple[int, int] | None = None) -> Canvas:
    """The canvas for the ERF of ``layers`` of ``net`` (analysed at its native input).

    ``requested`` (``--erf-input``) wins; it is checked later, on the network built at that size
    (``check_canvas``). Otherwise the native input when every level has a cell whose RF fits
    there, else, on each axis where a level does not fit, the size ``anchorfit erf`` would pick.
    """
    native = (int(net.input_size[0]), int(net.input_size[1]))
    if requested is not None:
        size = (int(requested[0]), int(requested[1]))
        return Canvas(size, native, "--erf-input" if size != native else "", True)
    analysis = net.analyze()
    rfs = {n: analysis[net.node(n)] for n in layers}
    short = short_levels(net, layers, native, analysis)
    if not short:
        return Canvas(native, native)
    need = canvas_for(net, layers, analysis)
    size = list(native)
    for axis in range(2):
        if any(nearest_fitting(rfs[n].axes[axis], native[axis]) is None for n in layers):
            size[axis] = max(native[axis], need[axis])
    deepest = max(short, key=lambda n: max(rfs[n].rf))
    rf = rfs[deepest].rf
    reason = (f"the detector's {_fmt(native)} input is too small for level {deepest!r}, "
              f"RF {rf[0]}x{rf[1]}")
    if any(r.global_context for r in rfs.values()):
        reason += "; a global op makes its ERF depend on the canvas"
    return Canvas((size[0], size[1]), native, reason)


def check_canvas(net: Any, layers: Sequence[str], flag: str = "--erf-input") -> None:
    """Raise a clear error when a level of ``net`` (built at the canvas) has no cell whose RF lies
    inside it; the hint names the size that works (``required_input``)."""
    short = short_levels(net, layers)
    if not short:
        return
    analysis = net.analyze()
    need = canvas_for(net, layers, analysis)
    rf = analysis[net.node(short[0])].rf
    h, w = net.input_size
    raise AnchorfitError(f"{flag} {h}x{w} is smaller than layer {short[0]!r} needs: its RF is "
                         f"{rf[0]}x{rf[1]} and no cell's RF lies inside it",
                         hint=f"use {flag} {need[0]}x{need[1]} or larger, or leave {flag} out",
                         key=flag)


__all__ = ["Canvas", "canvas_for", "check_canvas", "choose_canvas", "short_levels"]
