"""Resolve a MODEL argument to a network anchorfit can analyse.

MODEL is one of:

- ``torchvision:NAME`` (``torchvision:resnet50``, ``torchvision:retinanet_resnet50_fpn``, ...),
  always built with ``weights=None`` (nothing is downloaded);
- ``package.module:callable`` or ``path/to/file.py:callable``: a user's factory (or ``nn.Module``
  class) called without arguments;
- a file in a detector format (anchorfit YAML spec, Darknet ``.cfg``, YOLOv5 ``.yaml``, Caffe
  ``.prototxt``, mmdetection config): handled by ``anchorfit.formats`` readers registered in
  ``FILE_LOADERS``.

For the RF engine no weights are needed, so torch models are built on the ``meta`` device (fast, no
memory); the ERF estimator asks for real tensors with ``materialize=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from anchorfit.errors import AnchorfitError, TraceError
from anchorfit.rf.engine import RFAnalysis, analyze
from anchorfit.rf.graph import Graph, Window


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
        from anchorfit.rf.graph import _suggest

        raise AnchorfitError(f"no layer named {layer!r} in {self.name}",
                             hint=_suggest(layer, list(self.layer_nodes) + list(self.graph.nodes)))

    def analyze(self) -> RFAnalysis:
        cached = getattr(self.traced, "analysis", None)
        if cached is not None and cached.graph is self.graph and cached.input_size == tuple(
                self.input_size):
            return cached
        return analyze(self.graph, self.input_size)


#: File suffix -> loader(path, input_size or None) -> Network. Filled by anchorfit.formats.
FILE_LOADERS: dict[str, Callable[[Path, tuple[int, int] | None], Network]] = {}


# Default input sizes and head convolutions of torchvision detectors (their own code: RPN head
# is one 3x3 conv; RetinaNet and FCOS heads are 4 stacked 3x3 convs plus a 3x3 predictor; SSD300
# predicts with one 3x3 conv; SSDlite with a depthwise 3x3 then a 1x1).
_TV_DETECTORS: dict[str, tuple[tuple[int, int], int]] = {
    "fasterrcnn": ((800, 800), 1),
    "maskrcnn": ((800, 800), 1),
    "keypointrcnn": ((800, 800), 1),
    "retinanet": ((800, 800), 5),
    "fcos": ((800, 800), 5),
    "ssd300": ((300, 300), 1),
    "ssdlite320": ((320, 320), 1),
}


def _tv_detector_family(name: str) -> str | None:
    for prefix in _TV_DETECTORS:
        if name.startswith(prefix):
            return prefix
    return None


def build_torchvision(name: str, *, materialize: bool = False) -> Any:
    """``torchvision.models.get_model(name, weights=None)``; on the meta device unless asked."""
    try:
        import torchvision
    except ImportError:
        raise AnchorfitError("torchvision is not installed",
                             hint="pip install 'anchorfit[torchvision]'") from None
    import torch

    available = set(torchvision.models.list_models())
    if name not in available:
        from anchorfit.rf.graph import _suggest

        raise AnchorfitError(f"unknown torchvision model {name!r}", hint=_suggest(name, sorted(available)))
    kwargs: dict[str, Any] = {"weights": None}
    if _tv_detector_family(name) or name.startswith(("deeplab", "fcn", "lraspp")):
        kwargs["weights_backbone"] = None
    if materialize:
        return torchvision.models.get_model(name, **kwargs).eval()
    try:
        with torch.device("meta"):
            return torchvision.models.get_model(name, **kwargs).eval()
    except NotImplementedError as exc:
        if "meta" not in str(exc):
            raise
    # RegNet computes its widths with torch ops (``.tolist()`` of a meta tensor has no data):
    # only the weights go to the meta device, the arithmetic stays on the CPU.
    with _weights_on_meta():
        return torchvision.models.get_model(name, **kwargs).to("meta").eval()


def _weights_on_meta() -> Any:
    """A torch function mode that allocates only empty/zeros/ones/full/random tensors on meta."""
    import torch
    from torch.overrides import TorchFunctionMode

    allocators = {torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full,
                  torch.rand, torch.randn}

    class WeightsOnMeta(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func in allocators and kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return func(*args, **kwargs)

    return WeightsOnMeta()


def tv_classifier_size(name: str, module: Any = None) -> tuple[int, int]:
    """The input size a torchvision classifier is meant for (224 unless it says otherwise).

    A ViT is built for one ``image_size`` and accepts no other; the others are evaluated at their
    default weights' crop size (Inception-v3 299, EfficientNet-B7 600, Swin-V2 256), which is read
    from torchvision's own weight tables, not downloaded.
    """
    image_size = getattr(module, "image_size", None)
    if isinstance(image_size, int):
        return (image_size, image_size)
    try:
        import torchvision

        if name not in torchvision.models.list_models(module=torchvision.models):
            return (224, 224)
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms
        crop = getattr(transforms, "keywords", {}).get("crop_size")
    except (ImportError, ValueError, AttributeError, KeyError):
        return (224, 224)
    if isinstance(crop, int):
        return (crop, crop)
    if isinstance(crop, (list, tuple)) and len(crop) in (1, 2):
        return (int(crop[0]), int(crop[-1]))
    return (224, 224)


def load_factory(spec: str, *, materialize: bool = False) -> Any:
    """Call ``module.path:callable`` or ``file.py:callable`` and return the module it builds."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise AnchorfitError(f"{spec!r} is not MODULE:CALLABLE")
    path = Path(target)
    try:
        if target.endswith(".py"):
            if not path.is_file():
                raise AnchorfitError(f"no such file: {target}")
            mod_name = f"anchorfit_user_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(mod_name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[mod_name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except AnchorfitError:
        raise
    except ImportError as exc:
        raise AnchorfitError(f"cannot import {target!r}: {exc}",
                             hint="is the package installed, or is the path right?") from None
    except Exception as exc:
        raise AnchorfitError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise AnchorfitError(f"{target!r} has no callable {attr!r}")
    import torch

    try:
        if materialize:
            built = factory()
        else:
            with torch.device("meta"):
                built = factory()
    except Exception as exc:
        raise AnchorfitError(f"calling {spec}() failed: {type(exc).__name__}: {exc}",
                             hint="the factory must build the network without arguments") from None
    if not isinstance(built, torch.nn.Module):
        raise AnchorfitError(f"{spec}() returned {type(built).__name__}, not a torch.nn.Module")
    return built.eval()


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


def load(model: str | os.PathLike[str], input_size: tuple[int, int] | None = None, *,
         unknown: str = "error", materialize: bool = False) -> Network:
    """Resolve MODEL (see module docstring) for ``input_size`` (H, W) or the model's default."""
    model = os.fspath(model)
    if ":" not in model or Path(model).exists():
        path = Path(model)
        _ensure_formats()
        if not path.exists() and model in _builtin_configs():
            from anchorfit.formats import load_network

            net = load_network(model, input_size)
            if materialize and net.traced is None:  # as for the same file given by path
                net = as_traced(net, seed=None)  # callers seed (anchorfit.erf.load_network)
            return net
        if not path.exists():
            raise AnchorfitError(
                f"{model}: no such file",
                hint="MODEL is a detector file (.yaml, .cfg, .prototxt, mmdet .py), "
                     "torchvision:NAME (e.g. torchvision:resnet50), package.module:factory, "
                     "file.py:factory or a builtin config name (s3fd, ssd300_vgg16, ...)")
        loader = FILE_LOADERS.get(path.suffix.lower())
        if loader is None:
            raise AnchorfitError(f"{model}: unknown file type {path.suffix!r}",
                                 hint="supported: " + (", ".join(sorted(FILE_LOADERS)) or "none"))
        net = loader(path, input_size)
        if materialize and net.traced is None:
            net = as_traced(net, seed=None)  # callers seed (anchorfit.erf.load_network)
        return net
    if model.startswith("torchvision:"):
        name = model.split(":", 1)[1]
        family = _tv_detector_family(name)
        module = build_torchvision(name, materialize=materialize)
        size = input_size or (_TV_DETECTORS[family][0] if family else
                              tv_classifier_size(name, module))
        fixed = getattr(module, "image_size", None)
        if isinstance(fixed, int) and tuple(size) != (fixed, fixed):
            raise AnchorfitError(f"{model} takes {fixed}x{fixed} inputs only (its position "
                                 f"embedding fixes the number of patches), not "
                                 f"{size[0]}x{size[1]}",
                                 hint=f"drop --input or pass --input {fixed}")
        net = load_torch_network(module, model, size, unknown)
        if family:
            from anchorfit.rf.convert import context_ops
            from anchorfit.rf.engine import head_window

            count = _TV_DETECTORS[family][1]
            context = context_ops(module.head) if hasattr(module, "head") else []
            net.heads = {layer: [*head_window(3, count), *context]
                         for layer in net.default_layers}
        return net
    module = load_factory(model, materialize=materialize)
    return load_torch_network(module, model, input_size or (224, 224), unknown)


def _ensure_formats() -> None:
    """Import the format readers so they register their file suffixes."""
    try:
        importlib.import_module("anchorfit.formats")
    except ModuleNotFoundError as exc:  # pragma: no cover - formats ship with the package
        if exc.name != "anchorfit.formats":
            raise


def _builtin_configs() -> list[str]:
    """Names of the packaged zoo configs (``s3fd``...) that MODEL may name without a path."""
    try:
        from anchorfit.formats import builtin_names
    except ImportError:  # pragma: no cover
        return []
    return builtin_names()


def layer_names(net: Network, requested: Sequence[str] | None) -> list[str]:
    """The user's ``--layers`` (validated) or the network's default layers."""
    names = list(requested) if requested else list(net.default_layers)
    if not names:
        names = list(net.graph.outputs) or [list(net.graph.nodes)[-1]]
    for n in names:
        net.node(n)  # raises a helpful error for unknown names
    return names


__all__ = ["FILE_LOADERS", "Network", "TraceError", "build_torchvision", "layer_names", "load",
           "load_factory", "load_torch_network", "stage_outputs"]


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


def load_detector(model: str | os.PathLike[str], input_size: tuple[int, int] | None = None
                  ) -> Any:
    """A ``Detector`` (levels, anchors, RF joined) for MODEL (a string or a path).

    ``torchvision:NAME`` reads the built model's anchor generator (``anchorfit.formats.torchvision``);
    anything else is a detector file or a packaged zoo name (``s3fd``), read by
    ``anchorfit.formats``.
    """
    model = os.fspath(model)
    if model.startswith("torchvision:"):
        try:
            from anchorfit.formats.torchvision import load_torchvision_detector
        except ModuleNotFoundError as exc:  # pragma: no cover - ships with the package
            raise AnchorfitError("torchvision detectors are not readable in this build",
                                 hint=str(exc)) from None
        return load_torchvision_detector(model.split(":", 1)[1], input_size).analyze()
    from anchorfit.formats import load_detector as load_file

    return load_file(model, input_size)
