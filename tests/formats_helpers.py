"""Helpers for the foreign-format reader tests: probe a loaded detector's levels, run the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorfit.detector import Detector


def probe_levels(detector: Detector) -> dict[str, Any]:
    """Gradient-probe every level of a detector read from a file.

    The network is rebuilt as a torch module from its IR with one channel per layer (the support
    of a gradient does not depend on channel counts, and the probe stays cheap), traced back, and
    each level's map is compared with the engine. Returns level name -> LayerCheck.
    """
    from anchorfit.rf.build import to_torch
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    net = detector.network
    size = tuple(net.input_size)
    module = to_torch(net.graph, size, default_channels=1, max_channels=1)
    traced = trace_module(module, size)
    nodes = [traced.module_outputs[module.module_path(lv.node)] for lv in detector.levels]
    checks = verify(traced, traced.analysis, nodes)
    for lv, node in zip(detector.levels, nodes):  # the traced copy has the reader's numbers
        assert traced.analysis[node].rf == lv.rf.rf, lv.name
    return {lv.name: c for lv, c in zip(detector.levels, checks)}


def rf_row(detector: Detector, name: str) -> tuple[Any, ...]:
    """(rf, stride, padding, centre) of one level, x axis, as plain numbers."""
    lv = next(lv for lv in detector.levels if lv.name == name)
    return (lv.rf.rf[1], float(lv.rf.stride[1]), lv.rf.padding[1], float(lv.rf.center[1]))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
