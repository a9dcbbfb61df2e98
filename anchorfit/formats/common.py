"""What every reader needs once it has an IR and levels: the Network, anchors from sizes/ratios.

Readers differ in how they spell a detector; they agree on what comes out. ``detector_network``
turns an IR plus levels into the ``Network`` that ``anchorfit rf FILE`` analyses (its default
layers are the detection levels, its heads the levels' own convolutions), with a torch module
built from the IR on first use so the ERF estimator can run the same network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from anchorfit.detector import Anchor, Level
from anchorfit.models import Network
from anchorfit.rf.graph import Graph, Window


class GraphNetwork(Network):
    """A Network read from a file; ``module`` is built from the IR when first asked for.

    Building a torch module needs torch and costs time, and ``anchorfit rf`` never needs it, so
    it is deferred. ``channels`` (node -> output channels, where the file says) sizes the convs.
    """

    channels: dict[str, int]

    @property  # type: ignore[override]
    def module(self) -> Any:
        if self.__dict__.get("_module") is None:
            from anchorfit.formats.torch_build import to_torch

            self.__dict__["_module"] = to_torch(self.graph, self.input_size,
                                                channels=getattr(self, "channels", {}),
                                                in_channels=self.in_channels)
        return self.__dict__["_module"]

    @module.setter
    def module(self, value: Any) -> None:
        self.__dict__["_module"] = value


def detector_network(name: str, graph: Graph, input_size: tuple[int, int], levels: list[Level],
                     *, channels: Mapping[str, int] | None = None, in_channels: int = 3,
                     notes: Sequence[str] = ()) -> GraphNetwork:
    """The Network of a detector: default layers are the levels, heads their own convs."""
    net = GraphNetwork(name, graph, tuple(input_size), [lv.name for lv in levels],  # type: ignore[arg-type]
                       layer_nodes={lv.name: lv.node for lv in levels if lv.node},
                       heads={lv.name: list(lv.head) for lv in levels if lv.head},
                       kind="detector", in_channels=in_channels, notes=list(notes))
    net.channels = dict(channels or {})
    return net


def head_convs(kernels: Sequence[int | Sequence[int]]) -> list[Window]:
    """Stride-1, same-padded convs of the given kernels (a head's own layers)."""
    out = []
    for k in kernels:
        ky, kx = (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))
        out.append(Window((ky, kx), (1, 1), ((ky - 1) // 2, (kx - 1) // 2), kind="head"))
    return out


def anchors_from_sizes(sizes: Sequence[float], ratios: Sequence[float] = (1.0,)) -> list[Anchor]:
    """Anchors of every size x ratio, ratio = h / w (mmdetection and torchvision's convention).

    Sizes are the square root of the area: w = size / sqrt(ratio), h = size * sqrt(ratio).
    Ordered ratio-major within each size, like mmdetection's generator.
    """
    out = []
    for size in sizes:
        for ratio in ratios:
            root = math.sqrt(float(ratio))
            out.append(Anchor(_clean(size / root), _clean(size * root)))
    return out


def ssd_anchors(min_size: float, max_size: float | None, ratios: Sequence[float]) -> list[Anchor]:
    """SSD priors of one level: min square, sqrt(min*max) square, then min with each ar, 1/ar.

    The order of Caffe's PriorBox with ``flip: true`` (and ssd.pytorch's prior_box.py); ``ar`` is
    w / h here as in SSD, but every ratio comes with its inverse so the set is the same.
    """
    out = [Anchor(float(min_size), float(min_size))]
    if max_size is not None:
        s = math.sqrt(float(min_size) * float(max_size))
        out.append(Anchor(_clean(s), _clean(s)))
    for ar in ratios:
        root = math.sqrt(float(ar))
        out.append(Anchor(_clean(min_size * root), _clean(min_size / root)))
        out.append(Anchor(_clean(min_size / root), _clean(min_size * root)))
    return out


def densified(anchor: Anchor, n: int) -> Anchor:
    """FaceBoxes densification: n x n copies at offsets (i/n, j/n) of a cell, in cells."""
    steps = [k / n for k in range(n)]
    return Anchor(anchor.w, anchor.h, tuple((oy, ox) for oy in steps for ox in steps))


def _clean(value: float) -> float:
    """Round away float noise (64.00000000001) without losing real fractions."""
    r = round(float(value), 9)
    return float(int(r)) if r.is_integer() else r
