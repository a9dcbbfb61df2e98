"""torch.fx front end: any ``nn.Module`` -> ``Graph`` (tracing and shapes).

Module hooks miss functional ops (``F.max_pool2d`` in FaceBoxes, ``F.interpolate`` in FPN, ``+``,
``torch.cat``, slicing) and get reused modules wrong; an fx graph has every op exactly once, in
topological order. Shapes come from running the traced graph on meta (or fake) tensors, so no
real computation happens and no weights are needed.

This module traces and records shapes; ``anchorfit.rf.convert`` holds the rules that turn each fx
node into an IR op. ``check_against_torch`` closes the loop: every feature-map size the engine
computes must equal PyTorch's, which catches any op the rules would misread.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
import torch.nn as nn

from anchorfit.errors import AnchorfitError, TraceError, UnsupportedOpError
from anchorfit.rf.convert import (
    SHAPE_PRESERVING,
    Converter,
    UnknownPolicy,
    tokens_to_map_above,
)
from anchorfit.rf.graph import Global, Graph, Merge, Op, Pointwise, Window


@dataclass
class TracedGraph:
    """The IR of a traced module plus what ties it back to the module."""

    graph: Graph
    gm: torch.fx.GraphModule
    module_outputs: dict[str, str]  # qualified module name -> IR node name of its output
    shapes: dict[str, tuple[int, ...]]  # IR node name -> PyTorch's output shape
    output_names: dict[str, str] = field(default_factory=dict)  # user-facing name -> node
    warnings: list[str] = field(default_factory=list)
    analysis: Any = None  # the RFAnalysis at the traced input size, once computed
    #: IR node -> which dims of its PyTorch tensor are (y, x) (just x for sequences; empty once
    #: space is mixed away). Missing nodes: the trailing dims.
    spatial_pos: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """Node for a user's layer name: an output key, a module path, or an fx node name."""
        if name in self.output_names:
            return self.output_names[name]
        if name in self.module_outputs:
            return self.module_outputs[name]
        if name in self.graph.nodes:
            return name
        alt = name.replace(".", "_")
        if alt in self.graph.nodes:
            return alt
        from anchorfit.rf.graph import suggest_layer as _suggest

        candidates = list(self.output_names) + list(self.module_outputs)
        raise AnchorfitError(f"no layer named {name!r} in {self.graph.name}",
                             hint=_suggest(name, candidates))


# --------------------------------------------------------------------------- tracing


class _RecordingTracer(torch.fx.Tracer):
    """A tracer that remembers which fx node is each module's output, and where tracing failed."""

    def __init__(self, leaf_types: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.leaf_types = leaf_types
        self.module_outputs: dict[str, torch.fx.Node] = {}
        self.stack: list[tuple[str, str]] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        qualname = self.path_of_module(m)
        self.stack.append((qualname, type(m).__name__))
        out = super().call_module(m, forward, args, kwargs)
        self.stack.pop()
        if isinstance(out, torch.fx.Proxy) and qualname:
            self.module_outputs[qualname] = out.node
        return out


def fx_trace(module: nn.Module, name: str = "module") -> tuple[torch.fx.GraphModule, dict[str, str]]:
    """Trace ``module`` with torch.fx; failures name the sub-module where tracing stopped."""
    tracer = _RecordingTracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, RuntimeError...)
        where = tracer.stack[-1] if tracer.stack else ("", type(module).__name__)
        path = where[0] or "<top level>"
        children = [n for n, _ in module.named_children()][:6]
        raise TraceError(
            f"torch.fx cannot trace {name}: it failed inside module {path} ({where[1]}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="data-dependent control flow cannot be traced; pass a traceable sub-module such as "
                 + (", ".join(f"'{name}.{c}'" for c in children) if children else "its backbone")
                 + " (e.g. torchvision:resnet50 or mypkg.models:make_backbone)",
        ) from None
    gm = torch.fx.GraphModule(tracer.root, graph, type(module).__name__)
    outputs = {q: n.name for q, n in tracer.module_outputs.items()}
    return gm, outputs


class _ShapeRecorder(torch.fx.Interpreter):
    """Runs the graph and keeps each node's output shape (``node.meta["val"]``), quietly."""

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        n.meta["val"] = _shapes_of(result)
        return result

    def call_module(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Shape-preserving modules need not run (BatchNorm on meta tensors is the slow part).
        if isinstance(self.fetch_attr(target), SHAPE_PRESERVING) and args and isinstance(
                args[0], torch.Tensor):
            return args[0]
        return super().call_module(target, args, kwargs)


def _shapes_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _ShapeOnly(value.shape)
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return type(value)(_shapes_of(v) for v in value) if not hasattr(value, "_fields") else tuple(
            _shapes_of(v) for v in value)
    if isinstance(value, dict):
        return {k: _shapes_of(v) for k, v in value.items()}
    return None  # sizes, ints, None: no geometry


def _propagate_shapes(gm: torch.fx.GraphModule, example: torch.Tensor) -> None:
    """Run the graph on meta tensors (meta-built modules) or fake tensors (real weights).

    Neither computes anything: only shapes flow, so a 1024x1024 ResNet-152 costs milliseconds.
    """
    on_meta = any(p.is_meta for p in gm.parameters()) or any(b.is_meta for b in gm.buffers())
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # torch logs its own traceback when an op fails
    try:
        with torch.no_grad():
            if on_meta:
                _ShapeRecorder(gm).run(example.to("meta"))
            else:
                from torch._subclasses.fake_tensor import FakeTensorMode

                with FakeTensorMode(allow_non_fake_inputs=True):
                    fake = torch.empty(example.shape, dtype=example.dtype)
                    _ShapeRecorder(gm).run(fake)
    except Exception as exc:
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        first = str(root).strip().splitlines()[0] if str(root).strip() else ""
        raise TraceError(f"running {gm.__class__.__name__} on a {tuple(example.shape)} input "
                         f"failed: {type(root).__name__}: {first}",
                         hint="check --input (height x width) and the number of input channels"
                         ) from None
    finally:
        logger.setLevel(level)


class _ShapeOnly:
    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = torch.Size(shape)


# --------------------------------------------------------------------------- public API


def trace_module(module: nn.Module, input_size: int | Sequence[int], *, in_channels: int = 3,
                 name: str | None = None, unknown: UnknownPolicy = "error",
                 check_sizes: bool = True, spatial_dims: int = 2) -> TracedGraph:
    """Trace ``module`` and convert it to the RF IR for an input of ``input_size`` (H, W).

    ``unknown="pointwise"`` treats ops without a geometry rule as per-cell ops (with a warning)
    instead of failing. ``spatial_dims=1`` traces a sequence network (input N x C x W, with H
    = 1). With ``check_sizes`` the engine's feature-map sizes are compared with
    PyTorch's, which catches any op anchorfit would misread.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    name = name or type(module).__name__
    was_training = module.training
    module.eval()  # BatchNorm in train mode would be global context; analyse inference behaviour
    try:
        gm, module_outputs = fx_trace(module, name)
        example = (torch.empty(1, in_channels, w) if spatial_dims == 1 else
                   torch.empty(1, in_channels, h, w))
        _propagate_shapes(gm, example)
        conv = Converter(gm, name, unknown)
        conv.run()
    finally:
        module.train(was_training)
    if not conv.graph.input_names:
        raise TraceError(f"{name} has no tensor input")
    traced = TracedGraph(conv.graph, gm, {}, conv.shapes, getattr(conv, "output_names", {}),
                         conv.warnings,
                         spatial_pos={n: conv.positions(n) if conv.layout.get(n) else ()
                                      for n in conv.graph.nodes})
    for qual, node in module_outputs.items():
        target = conv.alias.get(node)
        if target is not None:
            traced.module_outputs[qual] = target
    for msg in conv.warnings:
        warnings.warn(msg, stacklevel=2)
    if check_sizes:
        traced.analysis = check_against_torch(traced, (h, w))
    return traced


def _per_cell(op: Op) -> bool:
    """Ops that read each cell alone: they keep a context map a context map."""
    if isinstance(op, (Pointwise, Merge)):
        return True
    return isinstance(op, Window) and op.kernel == (1, 1) and op.stride == (1, 1) and (
        op.padding == (0, 0) and op.padding_end in (None, (0, 0)))


def check_against_torch(traced: TracedGraph, input_size: tuple[int, int]) -> Any:
    """Raise if the engine's feature-map size differs from PyTorch's anywhere; return the RFs."""
    from anchorfit.rf.engine import analyze

    analysis = analyze(traced.graph, input_size)
    for name, shape in traced.shapes.items():
        node = traced.graph.nodes[name]
        rf = analysis.nodes[name]
        pos = traced.spatial_pos.get(name)
        if pos is None:
            pos = tuple(range(len(shape) - (1 if node.spatial_dims == 1 else 2), len(shape)))
        if node.spatial_dims == 0 or len(shape) < 3 or not pos:
            continue  # no spatial dims left (flattened tokens, logits)
        torch_size = (shape[pos[0]], shape[pos[1]]) if len(pos) == 2 else (1, shape[pos[0]])
        ours = (rf.y.size, rf.x.size)
        if isinstance(node.op, Global) or math.prod(torch_size) == 1 and math.prod(ours) == 1:
            continue
        if torch_size != ours:
            tokens = tokens_to_map_above(traced.graph, name) if ours == (1, 1) else None
            if tokens is not None and _per_cell(node.op):
                continue  # per-cell ops on a context map (a non-local block's 1x1 conv, BN)
            if tokens is not None:
                src = traced.graph.nodes[tokens].source
                raise UnsupportedOpError(
                    f"node {tokens!r} ({src}) reshapes a token sequence (no spatial axes left) "
                    f"back into a 4-D tensor, and layer {name!r} ({node.source}) reads it as a "
                    f"{torch_size[0]}x{torch_size[1]} map cell by cell",
                    hint="the tokens were mixed (window partition, attention or a linear layer "
                         "over space), so no cell has a local RF after it; analyse a layer "
                         "before it with --layers")
            raise AnchorfitError(
                f"layer {name!r} ({node.describe()}, {node.source}): anchorfit computes a "
                f"{ours[0]}x{ours[1]} map but PyTorch produces {torch_size[0]}x{torch_size[1]}",
                hint="this op's geometry is misread; please report it with the model")
    return analysis
