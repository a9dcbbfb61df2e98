"""Probe helper for the spec/Darknet/zoo tests: torch build + trace + probe of a loaded Detector."""

from __future__ import annotations

from anchorfit.detector import Detector


def probe_levels(detector: Detector, input_size: tuple[int, int] | None = None) -> dict[str, tuple]:
    """Build the detector's IR as a torch module, trace it, and probe every level.

    Returns level name -> (IR rf, traced rf, IR centre, traced centre, probe agreement). One
    channel everywhere: the probe only needs the support of the gradient, not capacity.
    """
    from anchorfit.rf.build import to_torch
    from anchorfit.rf.engine import analyze
    from anchorfit.rf.probe import verify
    from anchorfit.rf.trace import trace_module

    graph = detector.network.graph
    size = input_size or detector.input_size
    module = to_torch(graph, size, default_channels=1, max_channels=1,
                      outputs=[lv.node for lv in detector.levels])
    traced = trace_module(module, size)
    ir = analyze(graph, size)
    tr = analyze(traced.graph, size)
    nodes = [traced.module_outputs[module.module_path(lv.node)] for lv in detector.levels]
    checks = verify(traced, tr, nodes)
    out = {}
    for lv, node, check in zip(detector.levels, nodes, checks):
        a, b = ir[lv.node], tr[node]
        out[lv.name] = (a.rf, b.rf, a.center, b.center, a.stride, b.stride, check.agree,
                        check.detail)
    return out


def assert_probe_agrees(detector: Detector, input_size: tuple[int, int] | None = None) -> None:
    for name, (rf_ir, rf_tr, c_ir, c_tr, s_ir, s_tr, agree, detail) in probe_levels(
            detector, input_size).items():
        assert (rf_ir, c_ir, s_ir) == (rf_tr, c_tr, s_tr), name
        assert agree is True, f"{name}: {detail}"
