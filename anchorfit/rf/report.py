"""The result of ``anchorfit rf``: per-layer RF numbers for one model and input size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from anchorfit.rf.engine import CONVENTION, NodeRF, extend, fmt_axes
from anchorfit.rf.probe import LayerCheck


@dataclass
class LayerReport:
    """One reported layer: the user's name for it, the engine's numbers, and the head's RF."""

    name: str
    rf: NodeRF
    head: NodeRF | None = None
    check: LayerCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.rf.to_dict()
        data["node"] = data.pop("name")
        data = {"name": self.name, **data}
        data["head_rf"] = list(self.head.rf) if self.head is not None else None
        data["head_global_context"] = self.head.global_context if self.head is not None else None
        if self.check is not None:
            data["verified"] = self.check.agree
        return data


@dataclass
class RFReport:
    """RF of selected layers of a model (``anchorfit rf``)."""

    model: str
    input_size: tuple[int, int]
    layers: list[LayerReport]
    kind: str = "network"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": list(self.input_size),
            "convention": "index",
            "convention_text": CONVENTION,
            "kind": self.kind,
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": list(self.notes),
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        show_head = any(layer.head is not None for layer in self.layers)
        show_check = any(layer.check is not None for layer in self.layers)
        for layer in self.layers:
            rf = layer.rf
            row: dict[str, Any] = {
                "layer": layer.name,
                "rf": fmt_axes(*rf.rf),
                "stride": fmt_axes(*rf.stride),
                "padding": fmt_axes(*rf.padding),
                "center": fmt_axes(*rf.center),
                "map": f"{rf.y.size}x{rf.x.size}",
            }
            if show_head:
                head = layer.head
                row["head_rf"] = "-" if head is None else fmt_axes(*head.rf) + (
                    " (global)" if head.global_context and not rf.global_context else "")
            row["aligned"] = "yes" if rf.aligned else "NO"
            row["global"] = "yes" if rf.global_context else "no"
            if show_check:
                agree = layer.check.agree if layer.check is not None else None
                row["probe"] = {True: "agrees", False: "DIFFERS", None: "n/a"}[agree]
            rows.append(row)
        return pd.DataFrame(rows)


def build_report(net: Any, layers: Sequence[str], verify: bool = False) -> RFReport:
    """Analyse ``net`` (an ``anchorfit.rf.network.Network``) and report ``layers``."""
    from anchorfit.errors import AnchorfitError
    from anchorfit.rf.probe import verify as probe_verify

    analysis = net.analyze()
    reports = []
    for name in layers:
        rf = analysis[net.node(name)]
        head_ops = net.heads.get(name)
        head = extend(rf, head_ops) if head_ops else None
        reports.append(LayerReport(name, rf, head))
    notes = list(net.notes)
    if verify:
        traced_net = net
        if net.traced is None:
            from anchorfit.rf.network import as_traced

            if net.module is None:
                raise AnchorfitError(f"--verify needs a torch module; {net.name} has none")
            traced_net = as_traced(net)  # the file's layers built as a torch module
            notes.append(f"{net.name}: verified on a torch module built from the file's layers")
        # local=True: global-context layers are probed with their global paths cut, against
        # the local RF the engine reports (identical to the plain probe on every other layer)
        checks = probe_verify(traced_net.traced, traced_net.analyze(),
                              [traced_net.node(r.name) for r in reports], net.in_channels,
                              local=True)
        for rep, chk in zip(reports, checks):
            rep.check = chk
            if chk.agree is False:
                notes.append(f"probe disagrees on {rep.name}: {chk.detail}")
    for rep in reports:
        unread = rep.rf.unread(net.input_size)
        if unread:
            notes.append(f"{rep.name}: no cell reads input {', '.join(unread)}; the border cells' "
                         "rf/padding count padding pixels, JSON cell_reads gives what the first and "
                         "last cells really read")
    if any(r.head is not None and r.head.global_context and not r.rf.global_context
           for r in reports):
        notes.append("head_rf (global): the head has GroupNorm/LayerNorm over space or global "
                     "pooling, so its outputs depend on the whole image; head_rf is the local RF")
    if any(not r.rf.aligned for r in reports):
        notes.append("aligned=NO: paths into this layer disagree on stride or centre, or it is "
                     "upsampled; rf is the maximum over cell phases and JSON lists the per-phase "
                     "centres")
    if any(r.rf.global_context for r in reports):
        notes.append("global=yes: the layer also depends on the whole image (global pooling, "
                     "GroupNorm/LayerNorm statistics, SE/attention); rf is the local RF" +
                     ("; --verify probes it with the global paths cut" if verify else ""))
    return RFReport(net.name, net.input_size, reports, net.kind, notes)
