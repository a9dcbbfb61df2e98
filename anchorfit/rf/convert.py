"""Op conversion rules for the torch.fx front end: each fx node (module, function or method) -> IR op.

``anchorfit.rf.trace`` traces a module and records shapes; this module reads that fx graph node
by node and emits the ``Graph`` the engine works on. It holds every rule that says what an op does
to space: sliding windows, resampling, layout ops, per-cell ops, and the ops that make an output
depend on the whole image.

Tensors are tracked with a *layout*: the number of spatial dims (2 for images, 1 for NCL
sequences, 0 once flatten/reshape has mixed space into other dims), and where those dims sit:
trailing for NCHW, or wherever a permute moved them (ConvNeXt and Swin run their per-pixel
LayerNorm and MLP on NHWC tensors). Ops over the other dims only (a Linear or LayerNorm over the
channels of an NHWC tensor) are per-cell; ops over a spatial dim mix space: GroupNorm,
InstanceNorm and LayerNorm over space, global pooling, SE gates and attention are global context.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, Literal

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from anchorfit.errors import UnsupportedOpError
from anchorfit.rf.graph import (
    Adaptive,
    Global,
    Graph,
    Input,
    Merge,
    Node,
    Op,
    PixelShuffle,
    Pointwise,
    Resample,
    Slice,
    Transposed,
    Window,
    pair,
)

UnknownPolicy = Literal["error", "pointwise"]


# --------------------------------------------------------------------------- fx node metadata



def _makes_tensors(node: torch.fx.Node) -> bool:
    """False when the node is known to produce no tensor (``x.shape``, ``x.size(2)``, ints)."""
    if "val" not in node.meta:
        return True
    val = node.meta["val"]
    if val is None:
        return False

    def tensorish(v: Any) -> bool:
        if isinstance(v, (list, tuple)) and not isinstance(v, torch.Size):
            return any(tensorish(item) for item in v)
        if isinstance(v, dict):
            return any(tensorish(item) for item in v.values())
        return hasattr(v, "shape") and not isinstance(v, torch.Size)

    return tensorish(val)


def fx_shape(node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, torch.fx.Node):
        return None
    val = node.meta.get("val")
    if val is not None and hasattr(val, "shape") and not isinstance(val, (tuple, list)):
        return tuple(int(s) for s in val.shape)
    return None


# --------------------------------------------------------------------------- conversion

POINTWISE_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Softsign, nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink,
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.FeatureAlphaDropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.LocalResponseNorm,
    nn.ChannelShuffle,
)
GLOBAL_NORMS: tuple[type, ...] = (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
SHAPE_PRESERVING: tuple[type, ...] = tuple(
    t for t in POINTWISE_MODULES + GLOBAL_NORMS if t is not nn.ChannelShuffle)

POINTWISE_FUNCS: set[Any] = {
    F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, F.sigmoid, F.tanh, F.softplus, F.dropout,
    F.dropout2d, F.batch_norm, F.local_response_norm, F.prelu, F.logsigmoid, F.channel_shuffle,
    torch.relu, torch.relu_, torch.sigmoid, torch.tanh, torch.exp, torch.log, torch.abs,
    torch.sqrt, torch.clamp, torch.clip, torch.neg, torch.square, torch.pow, torch.erf,
    torch.nn.functional.normalize,
    operator.neg, operator.pos, operator.invert, operator.abs,
    torch.contiguous_format if False else torch.clone,
}
POINTWISE_METHODS = {
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "log", "abs", "sqrt", "clamp",
    "clamp_", "clamp_min", "clamp_max", "contiguous", "clone", "float", "double", "half", "to",
    "type_as", "neg", "pow", "square", "mul_", "add_", "sub_", "div_", "detach", "requires_grad_",
    "softmax_channels", "exp_", "abs_", "erf", "reciprocal", "rsqrt", "sign", "round", "floor",
    "ceil", "masked_fill", "expand_as",
}
#: Norms over their trailing ``normalized_shape``: per-cell when that holds only channels (NHWC
#: LayerNorm in ConvNeXt/Swin), global context when it reaches a spatial dim.
LAST_DIMS_NORMS: tuple[type, ...] = (nn.LayerNorm,) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm")
                                                         else ())
LAST_DIMS_NORM_FUNCS: set[Any] = {F.layer_norm} | ({F.rms_norm} if hasattr(F, "rms_norm")
                                                     else set())
#: Functions known by their qualified name (their packages are optional): identities at eval.
_POINTWISE_NAMES = {
    "torchvision.ops.stochastic_depth.stochastic_depth",  # drops whole samples, only in training
}
#: torchvision's Swin functions that torch.fx keeps as single calls (see Converter._context_op).
_CONTEXT_NAMES = {
    "torchvision.models.swin_transformer.shifted_window_attention",
    "torchvision.models.swin_transformer._patch_merging_pad",
}


#: Kind of the Global op for a token sequence reshaped back into a 4-D tensor.
TOKENS_TO_MAP = "reshape"


def _qualname(target: Any) -> str:
    """``module.function`` of a call target (empty for methods and odd callables)."""
    name = getattr(target, "__name__", None)
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if isinstance(name, str) and isinstance(module, str) else ""


_MERGE_FUNCS: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", operator.sub: "sub", operator.isub: "sub",
    operator.mul: "mul", operator.imul: "mul", operator.truediv: "div", operator.itruediv: "div",
    operator.floordiv: "div", operator.matmul: "matmul", torch.add: "add", torch.sub: "sub",
    torch.mul: "mul", torch.div: "div", torch.maximum: "max", torch.minimum: "min",
    torch.max: "max", torch.min: "min", torch.where: "where", torch.addcmul: "mul",
}
_MERGE_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "add_": "add",
                  "mul_": "mul", "sub_": "sub", "div_": "div", "expand_as": "broadcast",
                  "maximum": "max", "minimum": "min"}


class Converter:
    def __init__(self, gm: torch.fx.GraphModule, name: str, unknown: UnknownPolicy) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.graph = Graph(name=name)
        self.unknown = unknown
        self.layout: dict[str, int] = {}  # IR node -> number of spatial dims
        self.pos: dict[str, tuple[int, ...]] = {}  # IR node -> where they are, when not trailing
        self.alias: dict[str, str] = {}  # fx node -> IR node (for pass-through values)
        self.containers: dict[str, str] = {}  # fx node producing a tuple of tensors -> IR node
        self.warnings: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.input_seen = False

    # -- helpers -------------------------------------------------------------------------
    def ir(self, arg: Any) -> str | None:
        """IR node name for a tensor argument (None for constants, sizes, parameters)."""
        if isinstance(arg, torch.fx.Node):
            return self.alias.get(arg.name)
        return None

    def tensors(self, args: Sequence[Any]) -> list[str]:
        found: list[str] = []
        for a in args:
            if isinstance(a, (list, tuple)):
                found.extend(self.tensors(a))
            else:
                name = self.ir(a)
                if name is not None:
                    found.append(name)
        return found

    def emit(self, fx_node: torch.fx.Node, op: Op, inputs: Sequence[str], layout: int,
             source: str, pos: tuple[int, ...] | None = None) -> str:
        """Add the IR node for ``fx_node``; ``layout`` is its number of spatial dims.

        ``pos`` says where the spatial dims are; by default an op that keeps its input's rank and
        layout keeps their positions (a GELU on an NHWC tensor stays NHWC), others are trailing.
        """
        name = fx_node.name
        if layout == 1:
            spatial = 1
        elif layout == 0 and inputs:
            spatial = max(self.graph.nodes[i].spatial_dims for i in inputs)
        else:
            spatial = 2
        self.graph.add(Node(name, op, tuple(inputs), source, spatial_dims=spatial))
        self.layout[name] = layout
        self.alias[fx_node.name] = name
        shape = fx_shape(fx_node)
        if shape is not None:
            self.shapes[name] = shape
        if pos is None and layout and inputs and self.layout.get(inputs[0]) == layout and len(
                self.shapes.get(inputs[0], ())) == len(shape or ()):
            pos = self.positions(inputs[0])
        if pos is not None and layout and pos != self._trailing(name, layout):
            self.pos[name] = pos
        return name

    def _trailing(self, name: str, layout: int) -> tuple[int, ...]:
        rank = len(self.shapes.get(name, ())) or layout + 2
        return tuple(range(rank - layout, rank))

    def positions(self, x: str) -> tuple[int, ...]:
        """Dims of ``x`` that are spatial, in (y, x) order (just x for sequences)."""
        return self.pos.get(x) or self._trailing(x, self.layout[x])

    def fail(self, fx_node: torch.fx.Node, what: str, detail: str = "",
             hint: str | None = None) -> None:
        msg = f"node {fx_node.name!r}: unsupported op {what}" + (f" ({detail})" if detail else "")
        raise UnsupportedOpError(msg, hint=hint or (
            "use --unknown pointwise to treat it as a per-cell op (with a warning), or make it a "
            "leaf of a traceable module"))

    def spatial_axes(self, x: str, dims: Sequence[int]) -> list[int]:
        """Which of ``dims`` (negative or positive) of ``x`` are spatial; axis indices 0/1."""
        pos = self.positions(x) if self.layout.get(x) else ()
        rank = len(self.shapes.get(x, ())) or self.layout.get(x, 0) + 2
        axes = []
        for d in dims:
            d = d % rank if rank else d
            if d in pos:
                axes.append(pos.index(d) if len(pos) == 2 else 1)
        return axes

    def channel_only(self, x: str, dims: Sequence[int]) -> bool:
        """True when ``dims`` of ``x`` hold no spatial axis (an op over them is per-cell)."""
        return not self.spatial_axes(x, dims)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> None:
        for fx_node in self.gm.graph.nodes:
            if fx_node.op in ("call_module", "call_function", "call_method") and not _makes_tensors(
                    fx_node):
                continue  # sizes, shapes, Python values: no geometry
            if fx_node.op == "placeholder":
                self.placeholder(fx_node)
            elif fx_node.op == "get_attr":
                continue
            elif fx_node.op == "call_module":
                self.call_module(fx_node)
            elif fx_node.op in ("call_function", "call_method"):
                self.call_function(fx_node)
            elif fx_node.op == "output":
                self.output(fx_node)

    def placeholder(self, fx_node: torch.fx.Node) -> None:
        shape = fx_shape(fx_node)
        if self.input_seen:
            if fx_node.args:  # has a default value: not a tensor input
                return
            raise UnsupportedOpError(f"the module takes a second input {fx_node.name!r}; anchorfit "
                                     "analyses single-image networks",
                                     hint="wrap it in a module with one tensor argument")
        self.input_seen = True
        layout = 1 if shape is not None and len(shape) == 3 else 2
        node = Node(fx_node.name, Input(), (), "input", spatial_dims=1 if layout == 1 else 2)
        self.graph.add(node)
        self.layout[node.name] = layout
        self.alias[fx_node.name] = node.name
        if shape is not None:
            self.shapes[node.name] = shape

    def output(self, fx_node: torch.fx.Node) -> None:
        value = fx_node.args[0]
        names: dict[str, str] = {}

        def visit(v: Any, key: str) -> None:
            if isinstance(v, dict):
                for k, item in v.items():
                    visit(item, str(k))
            elif isinstance(v, (list, tuple)):
                for i, item in enumerate(v):
                    visit(item, f"{key}.{i}" if key else str(i))
            else:
                ir = self.ir(v)
                if ir is not None:
                    names[key or "output"] = ir

        visit(value, "")
        self.output_names = names
        self.graph.outputs = list(dict.fromkeys(names.values()))

    # -- modules -------------------------------------------------------------------------
    def call_module(self, fx_node: torch.fx.Node) -> None:
        mod = self.modules[fx_node.target]
        src = f"{type(mod).__name__} {fx_node.target}"
        ins = self.tensors(fx_node.args)
        if not ins:
            return
        x = ins[0]
        lay = self.layout[x]
        op: Op | None = None
        out_layout = lay
        out_pos: tuple[int, ...] | None = None
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            op = _conv_window(mod.kernel_size, mod.stride, mod.padding, mod.dilation, "conv")
        elif isinstance(mod, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
            op = Transposed(pair(mod.kernel_size), pair(mod.stride), pair(mod.padding),
                            pair(mod.dilation), pair(mod.output_padding))
        elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
            op = _pool(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode,
                       "maxpool")
        elif isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d)):
            op = _pool(mod.kernel_size, mod.stride, mod.padding, 1, mod.ceil_mode, "avgpool")
        elif isinstance(mod, (nn.LPPool1d, nn.LPPool2d)):
            op = _pool(mod.kernel_size, mod.stride, 0, 1, mod.ceil_mode, "lppool")
        elif isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
                              nn.AdaptiveMaxPool2d)):
            op = _adaptive(mod.output_size, lay)
        elif isinstance(mod, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d,
                              nn.ReplicationPad2d, nn.ConstantPad1d, nn.ReflectionPad1d,
                              nn.ReplicationPad1d, nn.ZeroPad1d)):
            op = _pad_window(mod.padding, lay)
        elif isinstance(mod, nn.Upsample):
            op = _resample(mod.size, mod.scale_factor, mod.mode, mod.align_corners, fx_node, self)
        elif isinstance(mod, nn.PixelShuffle):
            op = PixelShuffle(mod.upscale_factor)
        elif isinstance(mod, nn.PixelUnshuffle):
            op = PixelShuffle(mod.downscale_factor, unshuffle=True)
        elif isinstance(mod, nn.Flatten):
            op, out_layout, out_pos = self._flatten(fx_node, x, mod.start_dim)
        elif isinstance(mod, POINTWISE_MODULES):
            op = Pointwise(type(mod).__name__)
        elif isinstance(mod, GLOBAL_NORMS):
            op = Pointwise(type(mod).__name__, global_context=True)
        elif isinstance(mod, LAST_DIMS_NORMS):
            # normalises over its trailing normalized_shape: per pixel when those are channels
            dims = range(-len(mod.normalized_shape), 0)
            local = self.channel_only(x, dims)
            op = Pointwise(type(mod).__name__ + ("" if local else " over space"),
                           global_context=not local)
        elif isinstance(mod, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
            spatial = self.spatial_axes(x, [mod.dim if mod.dim is not None else 1])
            op = Pointwise(type(mod).__name__, global_context=bool(spatial))
        elif isinstance(mod, nn.Linear):
            if self.channel_only(x, [-1]):
                op = Pointwise("Linear")
            else:
                op, out_layout = Global("linear over a spatial axis"), 0
        elif isinstance(mod, nn.MultiheadAttention):
            op, out_layout = Global("attention"), 0
        if op is None:
            self.unknown_op(fx_node, ins, f"module {type(mod).__name__} ({fx_node.target})")
            return
        self.emit(fx_node, op, [x], out_layout, src, out_pos)

    def unknown_op(self, fx_node: torch.fx.Node, ins: list[str], what: str) -> None:
        if self.unknown == "error":
            self.fail(fx_node, what)
        in_shape = self.shapes.get(ins[0])
        out_shape = fx_shape(fx_node)
        lay = self.layout[ins[0]]
        pos = self.positions(ins[0]) if lay else ()
        if in_shape and out_shape and lay and len(in_shape) == len(out_shape):
            before = tuple(in_shape[p] for p in pos)
            after = tuple(out_shape[p] for p in pos)
        else:
            before, after = tuple(in_shape or ())[-lay:], tuple(out_shape or ())[-lay:]
        if in_shape and out_shape and lay and before != after:
            self.fail(fx_node, what, f"it changes the spatial size {before} -> {after}, so it "
                      "cannot be treated as pointwise")
        self.warnings.append(f"treated {what} at node {fx_node.name!r} as a per-cell op")
        op: Op = Merge("unknown") if len(ins) > 1 else Pointwise("unknown")
        self.emit(fx_node, op, ins, lay, what)

    # -- functions and methods -----------------------------------------------------------
    def call_function(self, fx_node: torch.fx.Node) -> None:
        target = fx_node.target
        is_method = fx_node.op == "call_method"
        args, kwargs = list(fx_node.args), dict(fx_node.kwargs)
        ins = self.tensors(args) + self.tensors(list(kwargs.values()))
        if not ins:
            return  # shape arithmetic, constants
        x = ins[0]
        lay = self.layout.get(x, 2)
        name = target if is_method else getattr(target, "__name__", str(target))
        src = f"{'.' if is_method else ''}{name}"

        def arg(i: int, key: str, default: Any = None) -> Any:
            if key in kwargs:
                return kwargs[key]
            return args[i] if len(args) > i else default

        if target is operator.getitem:
            self._getitem(fx_node, args)
            return
        if not is_method and target in _MERGE_FUNCS or is_method and target in _MERGE_METHODS:
            kind = _MERGE_FUNCS.get(target) if not is_method else _MERGE_METHODS[target]
            if len(ins) == 1:
                self.emit(fx_node, Pointwise(kind or "pointwise"), ins, lay, src)
            else:
                self.emit(fx_node, Merge(kind or "merge"), ins, max(self.layout[i] for i in ins), src)
            return
        if (not is_method and target in (torch.cat, torch.concat, torch.stack)) or (
                is_method and target == "cat"):
            tensors = self.tensors([arg(0, "tensors")])
            dim = arg(1, "dim", 0)
            rank = len(self.shapes.get(tensors[0], ())) if tensors else 0
            if rank and target is not torch.stack and self.spatial_axes(tensors[0], [dim]):
                self.fail(fx_node, "concatenation along a spatial axis")
            self.emit(fx_node, Merge("concat"), tensors, lay, src)
            return
        if not is_method and (target in POINTWISE_FUNCS or _qualname(target) in _POINTWISE_NAMES) \
                or is_method and target in POINTWISE_METHODS:
            self.emit(fx_node, Pointwise(name), [x], lay, src)
            if len(ins) > 1:  # e.g. torch.where, clamp with tensor bounds
                self.graph.nodes.pop(fx_node.name)
                self.emit(fx_node, Merge(name), ins, lay, src)
            return
        if not is_method and _qualname(target) in _CONTEXT_NAMES:
            self._context_op(fx_node, target, x, lay, src)
            return
        op = self._functional(fx_node, target, is_method, arg, x, lay)
        if op is None:
            self.unknown_op(fx_node, ins, f"{'method' if is_method else 'function'} {name}")
            return
        self.emit(fx_node, op[0], [x], op[1], src, op[2] if len(op) > 2 else None)

    def _context_op(self, fx_node: torch.fx.Node, target: Any, x: str, lay: int,
                    src: str) -> None:
        """torchvision's Swin functions, which fx keeps as single calls.

        ``shifted_window_attention`` mixes every token of a (shifted) window: the residual keeps
        each token's local RF, the window adds context, so it is per-cell with global context.
        ``_patch_merging_pad`` pads H and W to even sizes and stacks each 2x2 block of tokens along
        the channels (NHWC): space-to-depth by 2.
        """
        qual = _qualname(target)
        if qual.endswith("shifted_window_attention"):
            self.emit(fx_node, Pointwise("shifted window attention", global_context=True), [x],
                      lay, src)
            return
        shape = self.shapes.get(x)
        pos = self.positions(x)
        if shape is None or len(pos) != 2:
            self.fail(fx_node, f"function {target.__name__} on a tensor of unknown layout")
        pad = (shape[pos[0]] % 2, shape[pos[1]] % 2)
        inner = x
        if pad != (0, 0):
            inner = f"{fx_node.name}_pad"
            self.graph.add(Node(inner, Window((1, 1), (1, 1), (0, 0), (1, 1), pad, kind="pad"),
                                (x,), src, spatial_dims=2))
            self.layout[inner] = lay
            self.pos[inner] = pos
        self.emit(fx_node, PixelShuffle(2, unshuffle=True), [inner], lay, src, pos)

    def _functional(self, fx_node: torch.fx.Node, target: Any, is_method: bool,
                    arg: Callable[..., Any], x: str, lay: int
                    ) -> tuple[Op, int] | tuple[Op, int, tuple[int, ...] | None] | None:
        rank = len(self.shapes.get(x, ())) or lay + 2
        if not is_method:
            if target in (F.conv1d, F.conv2d, torch.conv2d, torch.conv1d):
                w = fx_shape(arg(1, "weight"))
                if w is None:
                    self.fail(fx_node, "convolution with a weight of unknown shape")
                k = w[2:] if len(w) > 3 else (1, w[2])
                return _conv_window(k, arg(3, "stride", 1), arg(4, "padding", 0),
                                    arg(5, "dilation", 1), "conv"), lay
            if target in (F.conv_transpose2d, F.conv_transpose1d):
                w = fx_shape(arg(1, "weight"))
                k = w[2:] if len(w) > 3 else (1, w[2])
                return Transposed(pair(k), pair(arg(3, "stride", 1)), pair(arg(4, "padding", 0)),
                                  pair(arg(7, "dilation", 1)),
                                  pair(arg(5, "output_padding", 0))), lay
            if target in (F.max_pool2d, F.max_pool1d, torch.max_pool2d, torch.max_pool1d):
                return _pool(arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0),
                             arg(4, "dilation", 1), arg(5, "ceil_mode", False), "maxpool"), lay
            if target in (F.avg_pool2d, F.avg_pool1d, torch.avg_pool1d):
                return _pool(arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0), 1,
                             arg(4, "ceil_mode", False), "avgpool"), lay
            if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.adaptive_avg_pool1d,
                          F.adaptive_max_pool1d, torch.adaptive_avg_pool1d):
                return _adaptive(arg(1, "output_size"), lay), lay
            if target is F.interpolate or target is F.upsample:
                return _resample(arg(1, "size"), arg(2, "scale_factor"), arg(3, "mode", "nearest"),
                                 arg(4, "align_corners"), fx_node, self), lay
            if target in (F.pixel_shuffle, torch.pixel_shuffle):
                return PixelShuffle(int(arg(1, "upscale_factor"))), lay
            if target in (F.pixel_unshuffle, torch.pixel_unshuffle):
                return PixelShuffle(int(arg(1, "downscale_factor")), unshuffle=True), lay
            if target is F.pad:
                return _pad_window(tuple(arg(1, "pad")), lay), lay
            if target in (F.group_norm, F.instance_norm):
                return Pointwise(target.__name__, global_context=True), lay
            if target in LAST_DIMS_NORM_FUNCS:
                shape = arg(1, "normalized_shape")
                count = 1 if isinstance(shape, int) else len(tuple(shape or ()))
                local = self.channel_only(x, range(-count, 0)) if count else True
                return Pointwise(target.__name__ + ("" if local else " over space"),
                                 global_context=not local), lay
            if target in (F.softmax, F.log_softmax, torch.softmax):
                spatial = self.spatial_axes(x, [arg(1, "dim", 1)])
                return Pointwise("softmax", global_context=bool(spatial)), lay
            if target is torch.flatten:
                return self._flatten(fx_node, x, arg(1, "start_dim", 0))
            if target is F.linear:
                return (Pointwise("linear"), lay) if self.channel_only(x, [-1]) else (
                    Global("linear"), 0)
            if target in (torch.mean, torch.sum, torch.amax, torch.amin):
                return self._reduce(fx_node, arg(1, "dim"), arg(2, "keepdim", False), rank, lay)
            if target in (torch.chunk, torch.split, torch.unbind):
                return self._split(fx_node, arg(2, "dim", 0), rank, lay)
            if target in (torch.transpose, torch.permute, torch.reshape, torch.squeeze,
                          torch.unsqueeze, torch.swapaxes, torch.swapdims):
                return self._reshape(fx_node, x, lay)
            return None
        # methods
        if target in ("view", "reshape", "permute", "transpose", "flatten", "squeeze", "unsqueeze",
                      "swapaxes", "swapdims"):
            if target == "flatten":
                return self._flatten(fx_node, x, arg(1, "start_dim", 0))
            return self._reshape(fx_node, x, lay)
        if target in ("mean", "sum", "amax", "amin", "max", "min"):
            return self._reduce(fx_node, arg(1, "dim"), arg(2, "keepdim", False), rank, lay)
        if target in ("chunk", "split", "unbind", "tensor_split"):
            return self._split(fx_node, arg(2, "dim", 0), rank, lay)
        if target in ("softmax", "log_softmax"):
            spatial = self.spatial_axes(x, [arg(1, "dim", 1)])
            return Pointwise("softmax", global_context=bool(spatial)), lay
        if target in ("expand", "repeat"):
            return self._reshape(fx_node, x, lay)
        return None

    def _flatten(self, fx_node: torch.fx.Node, x: str, start_dim: int
                 ) -> tuple[Op, int, tuple[int, ...] | None]:
        if self.layout[x]:
            kept = self._kept_positions(x, fx_shape(fx_node))
            if kept is not None:
                return Pointwise("flatten"), self.layout[x], kept
            return Global("flatten"), 0, None
        return Pointwise("flatten"), 0, None

    def _kept_positions(self, x: str, out_shape: tuple[int, ...] | None
                        ) -> tuple[int, ...] | None:
        """Where the spatial dims of ``x`` are after a reshape to ``out_shape``, if it keeps them.

        A row-major reshape that leaves every dim up to the last spatial one unchanged only
        regroups each pixel's channels; one that leaves every dim from the first spatial one on
        unchanged only regroups batch and channels. Anything else mixes space into other dims.
        """
        in_shape = self.shapes.get(x)
        if in_shape is None or out_shape is None:
            return None
        pos = self.positions(x)
        first, last = min(pos), max(pos)
        if len(out_shape) > last and out_shape[:last + 1] == in_shape[:last + 1]:
            return pos
        tail = len(in_shape) - first
        if len(out_shape) >= tail and tuple(out_shape[len(out_shape) - tail:]) == tuple(
                in_shape[first:]):
            return tuple(p - len(in_shape) + len(out_shape) for p in pos)
        return None

    def _permutation(self, fx_node: torch.fx.Node, x: str) -> list[int] | None:
        """The dim order of a permute/transpose node (None for other reshapes)."""
        rank = len(self.shapes.get(x, ()))
        target = fx_node.target
        args = list(fx_node.args[1:])
        if target in ("permute", torch.permute):
            dims = fx_node.kwargs.get("dims", args[0] if len(args) == 1 and isinstance(
                args[0], (list, tuple)) else args)
            return [int(d) % rank for d in dims] if rank and len(dims) == rank else None
        if target in ("transpose", "swapaxes", "swapdims", torch.transpose, torch.swapaxes,
                      torch.swapdims):
            d0 = fx_node.kwargs.get("dim0", args[0] if args else None)
            d1 = fx_node.kwargs.get("dim1", args[1] if len(args) > 1 else None)
            if not rank or not isinstance(d0, int) or not isinstance(d1, int):
                return None
            order = list(range(rank))
            order[d0 % rank], order[d1 % rank] = order[d1 % rank], order[d0 % rank]
            return order
        return None

    def _reshape(self, fx_node: torch.fx.Node, x: str, lay: int
                 ) -> tuple[Op, int] | tuple[Op, int, tuple[int, ...] | None]:
        """Layout ops that only move or regroup channels keep the spatial axes; others mix space.

        A permute to NHWC and back (ConvNeXt's LayerNorm2d, Swin's patch embedding) moves the
        spatial dims without touching them; a permute that swaps y and x would transpose the
        image, which no RF can describe.
        """
        order = self._permutation(fx_node, x) if lay else None
        if order is not None:
            new_pos = tuple(order.index(p) for p in self.positions(x))
            if list(new_pos) != sorted(new_pos):
                if tokens_to_map_above(self.graph, x) is not None:
                    return Global("reshape mixing spatial axes"), 0  # tokens, not an image
                self.fail(fx_node, "a permute/transpose that swaps the y and x axes",
                          hint="a transposed image has no receptive field in (y, x) terms; "
                               "analyse a layer before it with --layers")
            return Pointwise("permute"), lay, new_pos
        out_shape = fx_shape(fx_node)
        if lay:
            kept = self._kept_positions(x, out_shape)
            if kept is not None:
                return Pointwise("reshape"), lay, kept
        if lay == 0:
            # Back to an image layout after a global op (attention, flatten): context, not
            # locality. Read as a 1x1 map, it can gate or be added to a real map (a non-local
            # block); a layer that reads it cell by cell is refused by check_against_torch.
            if out_shape is not None and len(out_shape) == 4:
                return Global(TOKENS_TO_MAP), 2
            return Pointwise("reshape"), 0
        return Global("reshape mixing spatial axes"), 0

    def _reduce(self, fx_node: torch.fx.Node, dim: Any, keepdim: bool, rank: int,
                lay: int) -> tuple[Op, int]:
        dims = list(range(rank)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
        x = self.ir(fx_node.args[0])
        if x is not None and self.spatial_axes(x, dims):
            return Global("global_pool"), (lay if keepdim else 0)
        return Pointwise("reduce over channels"), lay

    def _split(self, fx_node: torch.fx.Node, dim: int, rank: int, lay: int) -> tuple[Op, int]:
        x = self.ir(fx_node.args[0])
        if x is not None and self.spatial_axes(x, [dim]):
            self.fail(fx_node, "split along a spatial axis")
        self.containers[fx_node.name] = fx_node.name
        return Pointwise("split"), lay

    def _getitem(self, fx_node: torch.fx.Node, args: list[Any]) -> None:
        container, index = args[0], args[1]
        src = self.ir(container)
        if src is None:
            return
        if container.name in self.containers or isinstance(index, int) and fx_shape(container) is None:
            # element of a channel split, or of a module's tuple output
            self.emit(fx_node, Pointwise("getitem"), [src], self.layout[src], "getitem")
            return
        lay = self.layout[src]
        shape = self.shapes.get(src)
        rank = len(shape) if shape else lay + 2
        idx = index if isinstance(index, tuple) else (index,)
        # expand Ellipsis
        if any(i is Ellipsis for i in idx):
            pos = [k for k, i in enumerate(idx) if i is Ellipsis][0]
            n_none = sum(1 for i in idx if i is None)
            fill = rank - (len(idx) - 1 - n_none)
            idx = idx[:pos] + (slice(None),) * fill + idx[pos + 1:]
        idx = tuple(i for i in idx) + (slice(None),) * (rank - len(idx))
        start: list[int | None] = [None, None]
        stop: list[int | None] = [None, None]
        step = [1, 1]
        sliced = False
        for d, item in enumerate(idx[:rank]):
            axes = self.spatial_axes(src, [d])
            if not axes:
                continue
            axis = axes[0]
            if isinstance(item, slice):
                if item != slice(None):
                    start[axis], stop[axis], step[axis] = item.start, item.stop, item.step or 1
                    sliced = True
            elif isinstance(item, torch.fx.Node) or not isinstance(item, slice):
                self.fail(fx_node, "indexing a single row/column of a feature map")
        if sliced:
            self.emit(fx_node, Slice(tuple(start), tuple(stop), tuple(step)), [src], lay, "slice")
        else:
            self.emit(fx_node, Pointwise("index channels"), [src], lay, "getitem")


def _conv_window(kernel: Any, stride: Any, padding: Any, dilation: Any, kind: str) -> Window:
    k, s, d = pair(kernel), pair(stride), pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            return Window(k, s, (0, 0), d, kind=kind)
        # PyTorch 'same' (stride 1 only): left = d(k-1)//2, the rest on the right
        total = (d[0] * (k[0] - 1), d[1] * (k[1] - 1))
        left = (total[0] // 2, total[1] // 2)
        return Window(k, s, left, d, (total[0] - left[0], total[1] - left[1]), kind=kind)
    return Window(k, s, pair(padding), d, kind=kind)


def _pool(kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
          kind: str) -> Window:
    k = pair(kernel)
    s = k if stride is None or stride == [] or stride == () else pair(stride)
    return Window(k, s, pair(padding), pair(dilation), None, bool(ceil_mode), kind)


def _adaptive(output_size: Any, lay: int) -> Op:
    if isinstance(output_size, int) or output_size is None:
        size = (output_size, output_size)
    else:
        size = tuple(output_size) if len(output_size) == 2 else (1, output_size[0])
    if lay == 1 and not isinstance(output_size, (tuple, list)):
        size = (1, output_size)
    if size == (1, 1):
        return Global("global_pool")
    return Adaptive(size)


def _pad_window(pad: Sequence[int], lay: int) -> Window:
    """F.pad order is (left, right, top, bottom) for the last two dims: W first."""
    p = tuple(int(v) for v in (pad if not isinstance(pad, int) else (pad,) * (2 * max(lay, 1))))
    left, right = p[0], p[1]
    top, bottom = (p[2], p[3]) if len(p) >= 4 else (0, 0)
    if lay == 1:
        top, bottom = 0, 0
    return Window((1, 1), (1, 1), (top, left), (1, 1), (bottom, right), kind="pad")


def _resample(size: Any, scale: Any, mode: str, align_corners: Any, fx_node: torch.fx.Node,
              conv: Converter) -> Resample:
    modes = {"nearest": "nearest", "nearest-exact": "nearest-exact", "bilinear": "bilinear",
             "linear": "bilinear", "bicubic": "bicubic", "area": "area"}
    if mode not in modes:
        conv.fail(fx_node, f"interpolation mode {mode!r}")
    out_shape = fx_shape(fx_node)
    if size is not None:
        out = out_shape[-2:] if out_shape else pair(size)
        if out_shape and len(out_shape) == 3:
            out = (1, out_shape[-1])
        return Resample(modes[mode], None, (int(out[0]), int(out[1])), bool(align_corners))  # type: ignore[arg-type]
    if scale is None:
        conv.fail(fx_node, "interpolate without size or scale_factor")
    sc = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(sc) == 1:
        sc = (1, sc[0])
    frac = tuple(Fraction(float(v)).limit_denominator(1000) for v in sc)
    return Resample(modes[mode], (frac[0], frac[1]), None, bool(align_corners))  # type: ignore[arg-type]


def tokens_to_map_above(graph: Graph, name: str) -> str | None:
    """The nearest token-sequence-to-map reshape that ``name`` depends on, if any."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        node = graph.nodes[current]
        if isinstance(node.op, Global) and node.op.kind == TOKENS_TO_MAP:
            return current
        todo.extend(node.inputs)
    return None


def context_ops(module: nn.Module) -> list[Pointwise]:
    """Global-context ops inside ``module`` (a detection head that is not traced): one
    ``Pointwise(kind, global_context=True)`` per kind found, for ``engine.extend``.

    GroupNorm/InstanceNorm normalise over space, and so does a LayerNorm whose normalized_shape
    has more than the channel dim; global pooling makes any later output depend on the whole image.
    """
    kinds: dict[str, None] = {}
    for mod in module.modules():
        if isinstance(mod, GLOBAL_NORMS):
            kinds[type(mod).__name__] = None
        elif isinstance(mod, LAST_DIMS_NORMS) and len(mod.normalized_shape) > 1:
            kinds[type(mod).__name__ + " over space"] = None
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and mod.output_size in (
                1, (1, 1)):
            kinds["global_pool"] = None
    return [Pointwise(kind, global_context=True) for kind in kinds]
