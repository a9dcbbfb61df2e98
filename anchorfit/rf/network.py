"""The ``Network`` every analysis takes, and the helpers that trace a torch module into one.

A Network is the RF engine's view of a model: its IR (``rf.graph``) for one input size, the
user-facing names of its layers, the heads' own convolutions, and the torch module when there is
one. It lives in ``rf/`` because the engine, the probe and the ERF estimator all consume it and
none of them may import the readers above (``formats/``) or the MODEL resolver
(``anchorfit.load``), which produce it. ``GraphNetwork`` is the Network of a file-read detector:
its torch module is built from the IR (``rf.build``) on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import RFAnalysis, analyze
from anchorfit.rf.graph import Graph, Window, suggest_layer


@dataclass
class Network:
    """A network ready for analysis: its IR for one input size, and how to name its layers."""

    name: str
    graph: Graph
    input_size: tuple[int, int]
    default_layers: list[str]  # user-facing names, in order
    layer_nodes: dict[str, str] = field(default_factory=dict)  # user-facing name -> IR node
    heads: dict[str, list[Window]] = field(default_factory=dict)  # layer -> head's own convs
    module: Any = None  # the torch module when there is one
    traced: Any = None  # TracedGraph when built by tracing
    kind: str = "network"  # classifier | detector | backbone | network
    in_channels: int = 3
    notes: list[str] = field(default_factory=list)

    def node(self, layer: str) -> str:
        if layer in self.layer_nodes:
            return self.layer_nodes[layer]
        if self.traced is not None:
            return self.traced.resolve(layer)
        if layer in self.graph.nodes:
            return layer
        raise AnchorfitError(f"no layer named {layer!r} in {self.name}",
                             hint=suggest_layer(layer, [*self.layer_nodes, *self.graph.nodes]))

    def analyze(self) -> RFAnalysis:
        cached = getattr(self.traced, "analysis", None)
        if cached is not None and cached.graph is self.graph and cached.input_size == tuple(
                self.input_size):
            return cached
        return analyze(self.graph, self.input_size)


class GraphNetwork(Network):
    """A Network read from a file; ``module`` is built from the IR when first asked for.

    Building a torch module needs torch and costs time, and ``anchorfit rf`` never needs it, so
    it is deferred. ``channels`` (node -> output channels, where the file says) sizes the convs.
    """

    channels: dict[str, int]

    @property  # type: ignore[override]
    def module(self) -> Any:
        if self.__dict__.get("_module") is None:
            from anchorfit.rf.build import to_torch

            self.__dict__["_module"] = to_torch(self.graph, self.input_size,
                                                channels=getattr(self, "channels", {}),
                                                in_channels=self.in_channels)
        return self.__dict__["_module"]

    @module.setter
    def module(self, value: Any) -> None:
        self.__dict__["_module"] = value


def stage_outputs(traced: Any, analysis: RFAnalysis, module: Any = None) -> list[str]:
    """A classifier's stage outputs: the last module output at each stride, before global ops.

    Candidates are the outputs of modules at depth 1 and 2 (``layer3``, ``features.16``); the
    shortest name wins when several modules end at the same node. Inside a block with its own
    ``forward`` (not a ``Sequential``/``ModuleList``), a depth-2 module is a stage output only at
    a stride where no top-level module ends: Inception's ``Mixed_6a.branch3x3dbl_2`` (stride 8)
    loses to ``Mixed_5d``, while a wrapper's ``backbone.layer1`` is still found. Pure layout
    modules (torchvision's ``Permute``) are skipped. ``module`` is the traced module (the
    GraphModule keeps only plain stand-ins for its containers).
    """
    import torch.nn as nn

    root = module if module is not None else traced.gm
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    by_node: dict[str, str] = {}
    inner: set[str] = set()  # depth-2 modules inside a block with its own forward
    for qual, node in traced.module_outputs.items():
        if qual.count(".") > 1 or _is_layout_module(root, qual):
            continue
        parent = qual.rpartition(".")[0]
        if parent and not _is_container(root, parent, containers):
            inner.add(qual)
        if node not in by_node or len(qual) < len(by_node[node]):
            by_node[node] = qual
    order = {name: i for i, name in enumerate(traced.graph.nodes)}
    candidates = []
    for node, qual in by_node.items():
        rf = analysis.nodes[node]
        if rf.y.size * rf.x.size <= 1 < analysis.input_size[0] * analysis.input_size[1]:
            continue  # after global pooling
        candidates.append((rf.stride, order[node], qual))
    top_strides = {stride for stride, _, qual in candidates if "." not in qual}
    last_at_stride: dict[tuple[Fraction, Fraction], tuple[int, str]] = {}
    for stride, position, qual in candidates:
        if qual in inner and stride in top_strides:
            continue
        if stride not in last_at_stride or position > last_at_stride[stride][0]:
            last_at_stride[stride] = (position, qual)
    return [q for _, q in sorted(last_at_stride.values())]


def _is_layout_module(root: Any, qual: str) -> bool:
    """A module that only moves dims around (torchvision's ``Permute``, ``nn.Flatten``)."""
    try:
        module = root.get_submodule(qual)
    except AttributeError:
        return False
    return type(module).__name__ in ("Permute", "Flatten", "Unflatten")


def _is_container(root: Any, qual: str, containers: tuple[type, ...]) -> bool:
    """Whether module ``qual`` of ``root`` just runs its children (``Sequential.forward``)."""
    import torch.nn as nn

    try:
        module = root.get_submodule(qual)
    except AttributeError:
        return True
    if type(module) is nn.Module:
        return True  # a GraphModule's stand-in for a container: no forward of its own
    return isinstance(module, containers) and (
        not isinstance(module, nn.Sequential) or type(module).forward is nn.Sequential.forward)


def _token_notes(name: str, traced: Any) -> list[str]:
    """Say where a transformer turns its feature map into tokens (no map, no local RF after)."""
    from anchorfit.rf.graph import Global

    nodes = list(traced.graph.nodes.values())
    if not any(isinstance(n.op, Global) and n.op.kind == "attention" for n in nodes):
        return []
    for node in nodes:
        if isinstance(node.op, Global) and node.op.kind in ("reshape mixing spatial axes",
                                                            "attention"):
            return [f"{name}: node {node.name!r} ({node.source}) flattens the feature map into "
                    "a token sequence for global self-attention; later layers have no feature "
                    "map and depend on the whole image, so the default layers stop before it"]
    return []


def load_torch_network(module: Any, name: str, input_size: tuple[int, int],
                       unknown: str = "error", in_channels: int = 3,
                       kind: str | None = None) -> Network:
    """Trace a torch module (or a detector's backbone) into a Network with default layers."""
    from anchorfit.rf.trace import trace_module

    backbone_of_detector = hasattr(module, "backbone") and hasattr(module, "transform")
    target = module.backbone if backbone_of_detector else module
    traced = trace_module(target, input_size, in_channels=in_channels, name=name,
                          unknown=unknown)  # type: ignore[arg-type]
    net = Network(name, traced.graph, input_size, [], module=module, traced=traced,
                  in_channels=in_channels, notes=list(traced.warnings))
    if backbone_of_detector:
        net.kind = kind or "detector"
        net.layer_nodes = dict(traced.output_names)
        net.default_layers = list(traced.output_names)
        # prefix so module paths typed against the whole detector resolve too
        for qual, node in list(traced.module_outputs.items()):
            traced.module_outputs.setdefault(f"backbone.{qual}", node)
        net.notes.append(f"{name}: analysed its backbone (the feature maps its head reads); "
                         "the head's own convolutions are counted in head_rf")
    else:
        analysis = net.analyze()
        outputs = traced.output_names
        single_out = len(outputs) == 1 and analysis.nodes[next(iter(outputs.values()))]
        if single_out and (single_out.global_context or single_out.spatial_dims == 0):
            net.kind = kind or "classifier"
            net.default_layers = stage_outputs(traced, analysis, target) or list(outputs)
            net.notes.extend(_token_notes(name, traced))
            net.layer_nodes = {q: traced.module_outputs[q] for q in net.default_layers
                               if q in traced.module_outputs}
        else:
            net.kind = kind or "backbone"
            net.layer_nodes = dict(outputs)
            net.default_layers = list(outputs)
    return net


def layer_names(net: Network, requested: Sequence[str] | None) -> list[str]:
    """The user's ``--layers`` (validated) or the network's default layers."""
    names = list(requested) if requested else list(net.default_layers)
    if not names:
        names = list(net.graph.outputs) or [list(net.graph.nodes)[-1]]
    for n in names:
        net.node(n)  # raises a helpful error for unknown names
    return names



def as_traced(net: Network, unknown: str = "error", seed: int | None = 0) -> Network:
    """A copy of a file-read ``net`` whose torch module (built from the IR) is traced.

    The ERF estimator and the probe need a traced torch module; formats build one from the IR on
    demand (``Network.module``). Level names keep pointing at the same feature maps, now as
    nodes of the traced graph, and the traced RFs are checked against the file's. The module is
    (re)built under ``seed`` so its random weights, and any ERF measured on them, repeat
    (``None``: the caller has seeded torch's generator).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if "_module" in net.__dict__:  # a lazily built module (formats): rebuild it seeded
            net.__dict__["_module"] = None
        module = net.module
    if module is None:
        raise AnchorfitError(f"{net.name} has no torch module to trace")
    traced = load_torch_network(module, net.name, net.input_size, unknown,
                                in_channels=net.in_channels, kind=net.kind).traced
    layer_nodes = {}
    ours = net.analyze()
    theirs = traced.analysis or analyze(traced.graph, net.input_size)
    for layer in net.default_layers or list(net.layer_nodes):
        node = net.node(layer)
        qual = module.module_path(node) if hasattr(module, "module_path") else node
        target = traced.resolve(qual)
        a, b = ours[node], theirs[target]
        if (a.rf, a.stride, a.center) != (b.rf, b.stride, b.center):
            raise AnchorfitError(f"{net.name}: the torch module built for layer {layer!r} has RF "
                                 f"{b.rf} but the file describes {a.rf}",
                                 hint="please report this with the file")
        layer_nodes[layer] = target
    return Network(net.name, traced.graph, net.input_size, list(net.default_layers),
                   layer_nodes, dict(net.heads), module, traced, net.kind, net.in_channels,
                   list(net.notes) + [f"{net.name}: a torch module was built from the file's "
                                      "layers (channel widths capped) for gradient work"])


__all__ = ["GraphNetwork", "Network", "as_traced", "layer_names", "load_torch_network",
           "stage_outputs"]
