"""torchvision detection models (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD300, SSDlite) →
Detector, read from the *built* model.

The model is built with ``weights=None`` on the meta device (nothing downloaded, no memory); its
backbone is traced for the RF engine (``load_network``), and the anchors are read from
the model's own generator object, so what anchorfit reports is what that torchvision version
would use:

- ``AnchorGenerator`` (R-CNN, RetinaNet; FCOS uses it for points): ``sizes``/``aspect_ratios`` per
  feature map; base anchors are torchvision's own ``generate_anchors`` (rounded to integers),
  centred at ``i * stride`` with **stride = image_size // grid** (integer division): at 800 px
  Faster R-CNN's P6 grid is 13, so its anchors step 61 px while the map's true stride is 64.
  That step is recorded as the level's ``step``; ``stride`` is the true one.
- ``DefaultBoxGenerator`` (SSD): scales (fractions of the image), ``(s, s)``, ``(s', s')`` with
  ``s' = sqrt(s_k s_k+1)``, and ``s*sqrt(ar) x s/sqrt(ar)`` plus its transpose per ratio; clipped
  to [0, 1] when ``clip``; centres ``(i + 0.5) * step`` with ``step`` = ``steps[k]`` or
  ``image / map``.
- FCOS is anchor-free: each level owns objects with ``max(l, t, r, b)`` in ``(4s, 8s]`` (the first
  level from 0, the last to infinity).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from anchorfit.detector import Anchor, Assigner, Detector, Level
from anchorfit.errors import AnchorfitError
from anchorfit.formats.base import pyramid_name, unique_names
from anchorfit.rf.engine import head_window
from anchorfit.rf.graph import suggest_layer
from anchorfit.rf.network import Network, load_torch_network

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
        raise AnchorfitError(f"unknown torchvision model {name!r}",
                             hint=suggest_layer(name, sorted(available)))
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


def load_network(name: str, input_size: tuple[int, int] | None = None, *,
                 unknown: str = "error", materialize: bool = False) -> Network:
    """The Network of ``torchvision:NAME``: a detector's backbone (with its head convs), or a
    classifier/backbone traced whole, at ``input_size`` or the model's own default size."""
    model = f"torchvision:{name}"
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

        count = _TV_DETECTORS[family][1]
        context = context_ops(module.head) if hasattr(module, "head") else []
        net.heads = {layer: [*head_window(3, count), *context] for layer in net.default_layers}
    return net


def _anchor_generator(module: Any) -> Any:
    rpn = getattr(module, "rpn", None)
    gen = getattr(rpn, "anchor_generator", None) or getattr(module, "anchor_generator", None)
    if gen is None:
        raise AnchorfitError(f"{type(module).__name__} has no anchor generator anchorfit knows "
                             "(rpn.anchor_generator or anchor_generator)")
    return gen


def _grid_anchors(gen: Any) -> list[list[Anchor]]:
    """torchvision's own base anchors per level (computed on the CPU: the model is on meta)."""
    out = []
    for sizes, ratios in zip(gen.sizes, gen.aspect_ratios):
        base = gen.generate_anchors(sizes, ratios)  # (n, 4) x1 y1 x2 y2, rounded
        out.append([Anchor(float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in base.tolist()])
    return out


def _default_boxes(gen: Any, maps: list[tuple[int, int]], size: tuple[int, int]
                   ) -> tuple[list[list[Anchor]], list[tuple[float, float]]]:
    """SSD default boxes (w, h) in pixels and steps (y, x), from the generator's scales."""
    h, w = size
    scales = [float(s) for s in gen.scales]
    levels, steps = [], []
    for k, ratios in enumerate(gen.aspect_ratios):
        s = scales[k]
        s2 = math.sqrt(scales[k] * scales[k + 1])
        pairs = [(s, s), (s2, s2)]
        for ar in ratios:
            r = math.sqrt(float(ar))
            pairs += [(s * r, s / r), (s / r, s * r)]
        if gen.clip:
            pairs = [(min(max(a, 0.0), 1.0), min(max(b, 0.0), 1.0)) for a, b in pairs]
        levels.append([Anchor(a * w, b * h) for a, b in pairs])
        if gen.steps is not None:
            steps.append((float(gen.steps[k]), float(gen.steps[k])))
        else:
            steps.append((h / maps[k][0], w / maps[k][1]))
    return levels, steps


def _matcher(module: Any) -> Assigner:
    m = getattr(getattr(module, "rpn", None), "proposal_matcher", None) or \
        getattr(module, "proposal_matcher", None)
    hi = getattr(m, "high_threshold", None)
    lo = getattr(m, "low_threshold", None)
    return Assigner("iou", None if hi is None else float(hi), None if lo is None else float(lo))


def load_torchvision_detector(name: str, input_size: tuple[int, int] | None = None) -> Detector:
    """A torchvision detection model's levels, anchors and backbone RF (weights=None, meta)."""
    net = load_network(name, input_size)
    module = net.module
    if net.kind != "detector":
        raise AnchorfitError(f"torchvision:{name} is not a detection model",
                             hint="fasterrcnn_*, maskrcnn_*, keypointrcnn_*, retinanet_*, fcos_*, "
                                  "ssd300_vgg16, ssdlite320_mobilenet_v3_large")
    size = tuple(net.input_size)
    analysis = net.analyze()
    keys = list(net.default_layers)
    nodes = [net.node(k) for k in keys]
    maps = [analysis[n].feature_size for n in nodes]
    strides = [analysis[n].stride for n in nodes]
    gen = _anchor_generator(module)
    kind = type(gen).__name__
    fcos = type(module).__name__ == "FCOS"
    notes = []
    if kind == "DefaultBoxGenerator":
        per_level, steps = _default_boxes(gen, maps, size)  # type: ignore[arg-type]
        center, offset = "cell-center", 0.5
    elif kind == "AnchorGenerator":
        per_level = _grid_anchors(gen)
        steps = [(float(size[0] // m[0]), float(size[1] // m[1])) for m in maps]
        center, offset = "top-left", 0.0
    else:
        raise AnchorfitError(f"torchvision:{name}: anchor generator {kind} is not supported")
    if len(per_level) != len(nodes):
        raise AnchorfitError(f"torchvision:{name}: {len(per_level)} anchor levels for "
                             f"{len(nodes)} feature maps")
    names = unique_names([pyramid_name(s[1]) for s in strides])
    heads = net.heads
    levels = []
    for i, (key, node) in enumerate(zip(keys, nodes)):
        true = (float(strides[i][0]), float(strides[i][1]))
        if steps[i] != true:
            why = (f"torchvision's image // grid = {size[1]} // {maps[i][1]}"
                   if kind == "AnchorGenerator" else
                   "DefaultBoxGenerator steps" if gen.steps is not None else
                   f"DefaultBoxGenerator image / map = {size[1]} / {maps[i][1]}")
            notes.append(f"{names[i]}: anchors step {steps[i][1]:g} px ({why}) while the map's "
                         f"true stride is {true[1]:g}")
        lv = Level(names[i], node, strides[i], steps[i], per_level[i], None, center,  # type: ignore[arg-type]
                   offset, list(heads.get(key, [])), _matcher(module),
                   extra={"feature_key": key, "generator": kind})
        if fcos:
            s = float(Fraction(strides[i][1]))
            lo = 0.0 if i == 0 else 4 * s
            hi = math.inf if i == len(keys) - 1 else 8 * s
            lv.anchors, lv.anchor_free_range = [], (lo, hi)
            lv.range_measure = "max-ltrb"  # FCOSHead: max of the point's (l, t, r, b)
            lv.assigner = Assigner("anchor-free", None, None)
            lv.extra["center_sampling_radius"] = float(getattr(module, "center_sampling_radius",
                                                               1.5))
        levels.append(lv)
    # user-facing names: the pyramid names first, the backbone's own keys still work
    for lv, key in zip(levels, keys):
        net.layer_nodes[lv.name] = lv.node  # type: ignore[assignment]
        if key in net.heads:
            net.heads[lv.name] = net.heads[key]
    net.default_layers = [lv.name for lv in levels]
    transform = getattr(module, "transform", None)
    min_size = getattr(transform, "min_size", (size[0],))
    max_size = getattr(transform, "max_size", max(size))
    if kind == "DefaultBoxGenerator" or (isinstance(min_size, tuple) and min_size[0] == max_size):
        policy, params = "fixed", {"size": max_size}
    else:
        policy, params = "shortside", {"short": int(min_size[0]), "max": int(max_size)}
    num_classes = _num_classes(module)
    det = Detector(f"torchvision:{name}", size, levels, policy, params,  # type: ignore[arg-type]
                   f"torchvision:{name}", net, num_classes, notes + list(net.notes),
                   extra={"format": "torchvision", "generator": kind})
    return det.analyze()


def _num_classes(module: Any) -> int | None:
    for path in ("roi_heads.box_predictor.cls_score", "head.classification_head",
                 "head.classification_head"):
        obj = module
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            n = getattr(obj, "out_features", None) or getattr(obj, "num_classes", None)
            if n:
                return int(n)
    return None


__all__ = ["build_torchvision", "load_network", "load_torchvision_detector",
           "tv_classifier_size"]
