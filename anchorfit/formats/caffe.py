"""Caffe ``.prototxt`` (SSD family: SSD300, MobileNet-SSD, S3FD, FaceBoxes, OpenCV res10) → IR +
Detector.

Layers with spatial geometry become IR nodes (Convolution, Deconvolution, Pooling, Eltwise,
Concat, per-cell layers); the detection plumbing after the heads (Permute, Flatten, Reshape,
PriorBox, DetectionOutput, losses) carries no spatial layout and is skipped. Each ``PriorBox``
layer defines a level: its first bottom is the feature map, the convolutions that read that same
blob and feed a ``Permute`` are the head. Caffe semantics that matter for RF and anchors:

- pooling rounds the output size *up* (``ceil``) unless ``round_mode: FLOOR``; that is why
  SSD300's conv4_3 is 38x38;
- PriorBox boxes per location, in Caffe's order: for each ``min_size``: the square ``min``, the
  square ``sqrt(min * max)`` when ``max_size`` is given, then ``min*sqrt(r) x min/sqrt(r)`` for
  every aspect ratio r ≠ 1 (with ``flip``, also 1/r); centres at ``(i + offset) * step`` with
  ``step`` = ``img / map`` when not given.
- FaceBoxes' fork densifies the 32- and 64-px anchors in C++ (not visible in the prototxt); the
  reader applies it when it sees that fork's PriorBox signature (``densify="auto"``), with the
  offsets of FaceBoxes.PyTorch's prior generator (32: 4x4 at j + 0, .25, .5, .75; 64: 2x2 at
  j + 0, .5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.errors import FormatError
from anchorfit.formats.anchors import prior_box
from anchorfit.formats.base import Format, finish, make_network, unique_names
from anchorfit.formats.parsers.prototxt import Message, read_prototxt
from anchorfit.formats.validate import (Where, finite, input_side, integer, non_negative_finite,
                                        ordered, positive_finite)
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import Global, GraphBuilder, Merge, Pointwise, Transposed, Window
from anchorfit.safeinput import MAX_KERNEL, beyond_limit

DATA_LAYERS = {"Input", "Data", "AnnotatedData", "ImageData", "DummyData", "MemoryData",
               "HDF5Data", "WindowData", "VideoData"}
CONV_LAYERS = {"Convolution", "DepthwiseConvolution", "ConvolutionDepthwise"}
POINTWISE_LAYERS = {"ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "BatchNorm", "Scale", "Bias",
                    "Dropout", "Power", "AbsVal", "BNLL", "Exp", "Log", "Threshold", "Split",
                    "ReLU6", "Clip", "Swish", "Normalize", "LRN", "Softmax"}
#: Layers after which the data has no spatial layout any more (detection plumbing, losses).
PLUMBING_LAYERS = {"Permute", "Flatten", "Reshape", "PriorBox", "DetectionOutput",
                   "DetectionEvaluate", "MultiBoxLoss", "SoftmaxWithLoss", "Accuracy",
                   "InnerProduct", "Silence", "EuclideanLoss", "SigmoidCrossEntropyLoss"}
SUPPORTED = sorted(DATA_LAYERS | CONV_LAYERS | POINTWISE_LAYERS | PLUMBING_LAYERS
                   | {"Pooling", "Deconvolution", "Eltwise", "Concat", "Slice"})

Densify = Literal["auto", "faceboxes", "none"]
_FACEBOXES_DENSITY = {32: (0.0, 0.25, 0.5, 0.75), 64: (0.0, 0.5)}


@dataclass
class _State:
    source: Path
    b: GraphBuilder
    blobs: dict[str, str] = field(default_factory=dict)  # blob -> IR node
    flat: set[str] = field(default_factory=set)  # blobs without spatial layout
    names: set[str] = field(default_factory=set)
    global_context: bool = False

    def node_name(self, layer: str) -> str:
        name, k = layer, 1
        while name in self.names:
            k += 1
            name = f"{layer}#{k}"
        self.names.add(name)
        return name


def _ints(p: Message, name: str, source: Path | None = None, minimum: int | None = None
          ) -> list[int]:
    """A repeated integer field: ``2.5`` or ``abc`` is an error naming the line, never cut."""
    where = Where(source, p.line_of(name), name)
    return [integer(v, where, minimum=minimum) for v in p.getall(name)]


def _hw(p: Message, base: str, default: int, source: Path) -> tuple[int, int]:
    """Caffe's ``kernel_size`` (repeated, 1 or 2 values) or ``kernel_h``/``kernel_w`` (etc.)."""
    h, w = p.get(f"{base}_h"), p.get(f"{base}_w")
    if h is not None or w is not None:
        if h is None or w is None:
            raise FormatError(f"{base}_h and {base}_w must be given together", source=source,
                              line=p.line)
        minimum = 0 if base == "pad" else 1
        return (integer(h, Where(source, p.line_of(f"{base}_h"), f"{base}_h"), minimum=minimum),
                integer(w, Where(source, p.line_of(f"{base}_w"), f"{base}_w"), minimum=minimum))
    name = {"kernel": "kernel_size", "stride": "stride", "pad": "pad"}[base]
    values = _ints(p, name, source, 0 if base == "pad" else 1)
    if not values:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise FormatError(f"{name}: expected 1 or 2 values, got {values}", source=source,
                      line=p.line_of(name))


def _window(p: Message, source: Path, kind: str, ceil: bool = False) -> Window:
    k = _hw(p, "kernel", 0, source)
    if max(k) > MAX_KERNEL:  # the RF engine walks every tap
        raise FormatError(beyond_limit("kernel_size", max(k), MAX_KERNEL), source=source,
                          line=p.line_of("kernel_size" if p.has("kernel_size") else "kernel_h"))
    if k == (0, 0):
        raise FormatError(f"missing kernel_size (a {kind} layer needs its kernel)", source=source,
                          line=p.line)
    d = _ints(p, "dilation", source, 1) or [1]
    dil = (d[0], d[-1])
    return Window(k, _hw(p, "stride", 1, source), _hw(p, "pad", 0, source), dil, None, ceil, kind)


def _phase(net: Message) -> str:
    """TEST when the file has test-phase layers (a train_val/test net), else TRAIN."""
    for layer in net.getall("layer") + net.getall("layers"):
        inc = layer.get("include")
        if isinstance(inc, Message) and inc.get("phase") == "TEST":
            return "TEST"
    return "TRAIN"


def _in_phase(layer: Message, phase: str) -> bool:
    inc = layer.get("include")
    return not (isinstance(inc, Message) and inc.get("phase") not in (None, phase))


def _input_size(net: Message, layers: Sequence[Message], source: Path) -> tuple[int, int] | None:
    """(H, W) from ``input_shape``/``input_dim``, an Input layer or a data layer's resize."""
    shape = net.get("input_shape")
    if isinstance(shape, Message):
        dims = _ints(shape, "dim", source)
        if len(dims) == 4:
            return _sides(shape, "dim", dims, source)
    dims = _ints(net, "input_dim", source)
    if len(dims) == 4:
        return _sides(net, "input_dim", dims, source)
    for layer in layers:
        t = layer.get("type")
        if t == "Input":
            param = layer.get("input_param")
            sh = param.get("shape") if isinstance(param, Message) else None
            dims = _ints(sh, "dim", source) if isinstance(sh, Message) else []
            if len(dims) == 4:
                return _sides(sh, "dim", dims, source)  # type: ignore[arg-type]
        if t in DATA_LAYERS:
            tp = layer.get("transform_param")
            if isinstance(tp, Message):
                rp = tp.get("resize_param")
                if isinstance(rp, Message) and rp.has("height") and rp.has("width"):
                    return (input_side(rp.get("height"),
                                       Where(source, rp.line_of("height"), "height")),
                            input_side(rp.get("width"),
                                       Where(source, rp.line_of("width"), "width")))
                if tp.has("crop_size"):
                    c = input_side(tp.get("crop_size"),
                                   Where(source, tp.line_of("crop_size"), "crop_size"))
                    return c, c
    return None


def _sides(p: Message, name: str, dims: list[int], source: Path) -> tuple[int, int]:
    """H and W of an N, C, H, W shape, each a valid input side (``input_side``)."""
    where = Where(source, p.line_of(name), name)
    return input_side(dims[2], where), input_side(dims[3], where)


def _layer_error(layer: Message, source: Path, message: str) -> FormatError:
    return FormatError(message, source=source, line=layer.line,
                       key=f"layer {layer.get('name', '?')!r}")


def _add_layer(st: _State, layer: Message, ltype: str, bottoms: list[str], tops: list[str]) -> None:
    """Add one layer's node(s) and update the blob table."""
    source = st.source
    name = str(layer.get("name", tops[0] if tops else ltype))
    if ltype in DATA_LAYERS or (ltype == "Python" and not bottoms):
        node = st.b.input(st.node_name(name)) if not st.b.graph.input_names else \
            st.b.graph.input_names[0]
        if tops:
            st.blobs[tops[0]] = node
            st.flat.update(tops[1:])
        return
    if any(bt in st.flat for bt in bottoms) or ltype in PLUMBING_LAYERS:
        st.flat.update(tops)
        return
    missing = [bt for bt in bottoms if bt not in st.blobs]
    if missing:
        raise _layer_error(layer, source, f"bottom {missing[0]!r} is not produced by an earlier "
                                          "layer (or the input)")
    ins = [st.blobs[bt] for bt in bottoms]
    nname = st.node_name(name)
    if ltype in CONV_LAYERS:
        p = layer.get("convolution_param")
        if not isinstance(p, Message):
            raise _layer_error(layer, source, "missing convolution_param")
        op: Any = _window(p, source, "conv")
    elif ltype == "Deconvolution":
        p = layer.get("convolution_param")
        if not isinstance(p, Message):
            raise _layer_error(layer, source, "missing convolution_param")
        w = _window(p, source, "convT")
        op = Transposed(w.kernel, w.stride, w.padding, w.dilation)  # type: ignore[arg-type]
    elif ltype == "Pooling":
        p = layer.get("pooling_param")
        if not isinstance(p, Message):
            raise _layer_error(layer, source, "missing pooling_param")
        if p.get("global_pooling") is True:
            op = Global("global_pool")
        else:
            kind = "maxpool" if p.get("pool", "MAX") == "MAX" else "avgpool"
            op = _window(p, source, kind, ceil=p.get("round_mode", "CEIL") != "FLOOR")
    elif ltype == "Eltwise":
        op = Merge({"PROD": "mul", "MAX": "max"}.get(str(_param(layer, "eltwise_param",
                                                                 "operation", "SUM")), "add"))
    elif ltype == "Concat":
        axis = _int_param(layer, "concat_param", "axis", 1, source)
        if axis != 1:
            raise _layer_error(layer, source, f"Concat along axis {axis} of a spatial map is "
                                              "not supported (only channels, axis 1)")
        op = Merge("concat")
    elif ltype == "Slice":
        axis = _int_param(layer, "slice_param", "axis", 1, source)
        if axis != 1:
            raise _layer_error(layer, source, f"Slice along axis {axis} is not supported")
        op = Pointwise("slice")
    elif ltype in POINTWISE_LAYERS:
        glob = False
        if ltype == "Normalize":  # across_spatial (default true) divides by a whole-map norm
            glob = _param(layer, "norm_param", "across_spatial", True) is not False
        if ltype == "LRN" and _param(layer, "lrn_param", "norm_region", "ACROSS_CHANNELS") != \
                "ACROSS_CHANNELS":
            raise _layer_error(layer, source, "LRN WITHIN_CHANNEL is not supported")
        st.global_context |= glob
        op = Pointwise(ltype.lower(), glob)
    else:
        raise _layer_error(layer, source, f"unknown layer type {ltype!r}; anchorfit reads "
                                          f"{', '.join(SUPPORTED)}")
    if not isinstance(op, Merge) and len(ins) != 1:
        if ltype == "Scale" and len(ins) == 2:  # Scale with a second bottom: elementwise product
            op = Merge("mul")
        else:
            raise _layer_error(layer, source, f"{ltype} takes one bottom, got {len(ins)}")
    st.b.add(op, ins, nname, source=f"{source.name}:{layer.line}",
             origin=f"{source}:{layer.line}")
    for top in tops:
        st.blobs[top] = nname


def _param(layer: Message, group: str, name: str, default: Any) -> Any:
    p = layer.get(group)
    return p.get(name, default) if isinstance(p, Message) else default


def _int_param(layer: Message, group: str, name: str, default: int, source: Path) -> int:
    """An integer field of a layer's ``group`` message (a Concat axis), checked at its line."""
    p = layer.get(group)
    if not isinstance(p, Message) or not p.has(name):
        return default
    return integer(p.get(name), Where(source, p.line_of(name), name))


def prior_anchors(p: Message, source: Path) -> list[Anchor]:
    """PriorBox boxes per location, in Caffe SSD's order (see module docstring)."""
    mins = [positive_finite(v, Where(source, p.line_of("min_size"), "min_size"))
            for v in p.getall("min_size")]
    maxs = [positive_finite(v, Where(source, p.line_of("max_size"), "max_size"))
            for v in p.getall("max_size")]
    ratios = [positive_finite(v, Where(source, p.line_of("aspect_ratio"), "aspect_ratio"))
              for v in p.getall("aspect_ratio")]
    for low, high in zip(mins, maxs):
        ordered(low, high, Where(source, p.line_of("max_size"), "max_size"), "min_size",
                "max_size")
    if not mins:
        raise FormatError("PriorBox without min_size", source=source, line=p.line,
                          key="prior_box_param")
    if maxs and len(maxs) != len(mins):
        raise FormatError(f"{len(maxs)} max_size for {len(mins)} min_size", source=source,
                          line=p.line_of("max_size"), key="prior_box_param")
    return prior_box(mins, maxs, ratios,
                     flip=p.get("flip", True) is not False)


def _faceboxes_signature(priors: Sequence[Message]) -> bool:
    """The FaceBoxes fork's first PriorBox: min_size 32, 64 and 128 together."""
    return any({32.0, 64.0, 128.0} <= {v for v in p.getall("min_size")
                                        if isinstance(v, (int, float)) and not isinstance(v, bool)}
               for p in priors)


def _densify(anchors: list[Anchor]) -> list[Anchor]:
    out = []
    for a in anchors:
        offs = _FACEBOXES_DENSITY.get(int(a.w)) if a.w == a.h else None
        if offs is None:
            out.append(a)
        else:
            out.append(Anchor(a.w, a.h, tuple((oy, ox) for oy in offs for ox in offs)))
    return out


def _assigner(layers: Sequence[Message], source: Path) -> Assigner:
    for layer in layers:
        if layer.get("type") == "MultiBoxLoss":
            p = layer.get("multibox_loss_param")
            if isinstance(p, Message):
                def threshold(name: str) -> float:
                    where = Where(source, p.line_of(name), name)
                    return non_negative_finite(p.get(name, 0.5), where)

                return Assigner("iou", threshold("overlap_threshold"), threshold("neg_overlap"))
    return Assigner("iou", 0.5, 0.5)  # Caffe SSD's MultiBoxLoss defaults


def load_caffe(path: Path, input_size: tuple[int, int] | None = None, *,
               densify: Densify = "auto") -> Detector:
    """Read a Caffe network prototxt with PriorBox layers into a Detector."""
    path = Path(path)
    net = read_prototxt(path)
    if net.has("layers") and not net.has("layer"):
        raise FormatError("V1 'layers { }' prototxt (pre-2015 Caffe) is not supported; upgrade it "
                          "with Caffe's upgrade_net_proto_text", source=path,
                          line=net.line_of("layers"))
    layers = [layer for layer in net.getall("layer") if isinstance(layer, Message)]
    if not layers:
        what = ("a solver" if net.has("base_lr") or net.has("train_net") or net.has("net") else
                "a label map" if net.has("item") else "not a network")
        raise FormatError(f"{what} prototxt: no 'layer {{ }}' blocks, so no network to read",
                          source=path, line=1)
    phase = _phase(net)
    layers = [layer for layer in layers if _in_phase(layer, phase)]
    declared = _input_size(net, layers, path)
    size = input_size or declared
    if size is None:
        raise FormatError("cannot tell the input size (no input_shape, input_dim, Input layer or "
                          "data-layer resize_param)", source=path, line=1,
                          hint="pass it with --input HxW")
    st = _State(path, GraphBuilder(path.stem))
    if net.has("input"):
        st.blobs[str(net.get("input"))] = st.b.input(st.node_name(str(net.get("input"))))
    consumers: dict[str, list[Message]] = {}
    for layer in layers:
        ltype = layer.get("type")
        if not isinstance(ltype, str):
            raise _layer_error(layer, path, "missing 'type'")
        bottoms = [str(v) for v in layer.getall("bottom")]
        tops = [str(v) for v in layer.getall("top")]
        for bt in bottoms:
            consumers.setdefault(bt, []).append(layer)
        _add_layer(st, layer, ltype, bottoms, tops)
    if not st.b.graph.input_names:
        raise FormatError("no input: expected 'input:' or a data/Input layer", source=path, line=1)
    priors = [layer for layer in layers if layer.get("type") == "PriorBox"]
    if not priors:
        raise FormatError("no PriorBox layers: not an SSD-style detector (anchorfit reads the "
                          "anchors from PriorBox)", source=path, line=1)
    pparams = [_prior_param(layer, path) for layer in priors]
    use_dense = densify == "faceboxes" or (densify == "auto" and _faceboxes_signature(pparams))
    graph = st.b.build()
    analysis = analyze(graph, size)
    assigner = _assigner(layers, path)
    levels = []
    names = unique_names([str(layer.getall("bottom")[0]) for layer in priors])
    for layer, p, lname in zip(priors, pparams, names):
        bottoms = [str(v) for v in layer.getall("bottom")]
        feature = bottoms[0]
        if feature not in st.blobs:
            raise _layer_error(layer, path, f"PriorBox reads {feature!r}, which is not a "
                                            "spatial feature map")
        node = st.blobs[feature]
        rf = analysis[node]
        img_h = positive_finite(p.get("img_h", p.get("img_size", size[0])),
                                Where(path, p.line_of("img_h") or p.line_of("img_size"), "img_h"))
        img_w = positive_finite(p.get("img_w", p.get("img_size", size[1])),
                                Where(path, p.line_of("img_w") or p.line_of("img_size"), "img_w"))
        if p.has("step_h") or p.has("step_w"):
            step = (positive_finite(p.get("step_h"), Where(path, p.line_of("step_h"), "step_h")),
                    positive_finite(p.get("step_w"), Where(path, p.line_of("step_w"), "step_w")))
        elif p.has("step"):
            step = (positive_finite(p.get("step"), Where(path, p.line_of("step"), "step")),) * 2
        else:
            step = (img_h / rf.feature_size[0], img_w / rf.feature_size[1])
        offset = finite(p.get("offset", 0.5), Where(path, p.line_of("offset"), "offset"))
        anchors = prior_anchors(p, path)
        if use_dense:
            anchors = _densify(anchors)
        dense = any(a.offsets for a in anchors)
        center = "explicit" if dense else {0.5: "cell-center", 0.0: "top-left"}.get(
            offset, "explicit")
        levels.append(Level(
            name=lname, node=node, step=step, anchors=anchors, center=center,  # type: ignore[arg-type]
            center_offset=offset, head=_head(feature, consumers, path), assigner=assigner,
            extra={"prior_layer": layer.get("name"), "clip": bool(p.get("clip", False)),
                   "variance": [finite(v, Where(path, p.line_of("variance"), "variance"))
                                for v in p.getall("variance")] or [0.1]}))
    notes = []
    if use_dense:
        notes.append("FaceBoxes densification applied (the fork's C++ PriorBox tiles 32-px anchors "
                     "4x4 and 64-px anchors 2x2 per cell; offsets as in FaceBoxes.PyTorch)")
    if declared is None and input_size is not None:
        notes.append("input size from --input (the prototxt does not declare one)")
    network = make_network(path.stem, graph, size, levels, notes=notes)
    det = Detector(str(net.get("name", path.stem)), size, levels, "stretch", {}, str(path),
                   network, None, notes, extra={"format": "caffe"})
    return finish(det)


def _prior_param(layer: Message, source: Path) -> Message:
    p = layer.get("prior_box_param")
    if not isinstance(p, Message):
        raise _layer_error(layer, source, "PriorBox without prior_box_param")
    return p


def _head(feature: str, consumers: dict[str, list[Message]], source: Path) -> list[Window]:
    """The head conv on a level: a Convolution reading the feature blob that feeds a Permute."""
    for layer in consumers.get(feature, []):
        if layer.get("type") not in CONV_LAYERS:
            continue
        tops = [str(v) for v in layer.getall("top")]
        feeds = [c for t in tops for c in consumers.get(t, [])]
        if any(c.get("type") in ("Permute", "Flatten") for c in feeds):
            w = _window(layer.get("convolution_param"), source, "head")
            return [w]
    return []


__all__ = ["FORMAT", "SUPPORTED", "load_caffe", "prior_anchors"]


FORMAT = Format("Caffe prototxt", (".prototxt", ".pbtxt"), load_caffe, export="caffe")
