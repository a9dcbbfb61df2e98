"""mmdetection (2.x/3.x dict-style) config ``.py`` → IR + Detector, without running the config.

The config and its ``_base_`` chain are read by ``mmdet_config``; the generator arithmetic lives in
``anchors`` (``generator_anchors``); this module maps the merged config to levels, anchors,
assigners and the IR.

The anchors come from the anchor head's generator (the RPN's in two-stage detectors):

- ``AnchorGenerator``: per level ``base_size`` (default: the stride) x ``scales`` (or
  ``octave_base_scale * 2**(i / scales_per_octave)``) x ratios (h/w; ``w = base*s/sqrt(r)``,
  ``h = base*s*sqrt(r)``), centred at ``i*stride + center_offset*base`` (offset 0: top-left).
- ``SSDAnchorGenerator``: ``basesize_ratio_range`` → min/max sizes with mmdet's exact integer
  arithmetic (including the hard-coded first level for 300/512 inputs and its ValueError for other
  sizes), boxes ``min``, ``sqrt(min*max)``, then ``1/r``, ``r`` per ratio; centres at stride/2.
- ``YOLOAnchorGenerator``: ``base_sizes`` per level as given; centres at stride/2.
- ``Legacy*``: mmdet v1 boxes (``(w-1)`` centres, corners rounded).

Anchor-free heads (FCOS, AutoAssign, CenterNet and its CenterNetUpdate head, FoveaBox, YOLOX,
RTMDet, VFNet without ATSS) are read by ``mmdet_heads``: per level the point offset of its
``MlvlPointGenerator``, the size range the head assigns by (``(0, inf)`` where the assigner has
none) and the assigner; ATSS-family heads keep their generator's anchors and record their
assigner (ATSS, task-aligned, center-region) instead of an IoU threshold.

The network is rebuilt from the backbone/neck parameters with the IR recipes in ``nets``
(ResNet pytorch/caffe style with dilation, FPN with every extra-level mode, SSDVGG + SSDNeck,
Darknet-53 + YOLOV3Neck, MobileNetV2) and ``mmdet_nets`` (ResNeXt and DCN as ResNet, Res2Net,
CSPDarknet, CSPNeXt, ConvNeXt, YOLOXPAFPN, CSPNeXtPAFPN, CTResNetNeck), and the head's own
convolutions give ``head_rf``. A model-zoo ``metafile.yml`` gets a message saying what it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anchorfit.detector import Assigner, Detector, Level
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.formats import mmdet_heads, mmdet_nets
from anchorfit.formats import nets as _nets
from anchorfit.formats.anchors import generator_anchors, ssd_sizes
from anchorfit.formats.base import (
    Format,
    finish,
    head_convs,
    make_network,
    pyramid_name,
    top_level_keys,
    unique_names,
)
from anchorfit.formats.mmdet_config import MMDetConfig, load_config, merge
from anchorfit.formats.parsers.pyconfig import AttrDict
from anchorfit.formats.validate import (Where, finite, index_in_range, integer, positive_finite,
                                        positive_int)
from anchorfit.safeinput import MAX_KERNEL, MAX_MAP_SIDE, MAX_REPEATS, beyond_limit
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder

# --------------------------------------------------------------------------- network


def _int(cfg: MMDetConfig, value: Any, name: str, key: str, *, minimum: int | None = 1,
         maximum: int | None = MAX_REPEATS) -> int:
    """An integer of the config at the line that writes ``name``, in [minimum, maximum]: a
    level, count or kernel read raw would raise ValueError/TypeError on ``None``/``nan``, or
    build 10**40 layers."""
    src, line = cfg.line(rf"\b{re.escape(name)}\s*=")
    where = Where(src, line, key)
    number = integer(value, where, minimum=minimum)
    if maximum is not None and number > maximum:
        raise where.error(beyond_limit(name, number, maximum))
    return number


def _ints(cfg: MMDetConfig, values: Any, name: str, key: str, minimum: int) -> list[int]:
    """A list of per-level kernel sizes, strides or paddings (each up to ``MAX_KERNEL``)."""
    if not isinstance(values, (list, tuple)) or not values or len(values) > MAX_REPEATS:
        src, line = cfg.line(rf"\b{re.escape(name)}\s*=")
        raise Where(src, line, key).error(f"expected a list of integers, got {values!r}")
    return [_int(cfg, v, name, key, minimum=minimum, maximum=MAX_KERNEL) for v in values]


def _side(cfg: MMDetConfig, value: Any, name: str, key: str) -> int:
    """An input side in pixels: a positive integer up to ``MAX_MAP_SIDE`` (65536 px, the CLI's
    --input limit; larger inputs only exhaust memory in the RF engine)."""
    return _int(cfg, value, name, key, maximum=MAX_MAP_SIDE)


def _select(cfg: MMDetConfig, stages: Sequence[str], idx: Any, kind: Any,
            what: str = "stages") -> list[str]:
    """The backbone outputs ``out_indices`` names: integers in range. mmdet's ResNet-family
    backbones test ``i in out_indices``, so a negative or too large index is no output at all,
    not Python's wrap-around: refused here with the line (ConvNeXt's -1 is read on its own)."""
    src, line = cfg.line("out_indices")
    where = Where(src, line, "model.backbone.out_indices", f"{kind}: ")
    if isinstance(idx, (str, bytes)) or not isinstance(idx, (list, tuple)):
        raise where.error(f"out_indices must be a tuple of integers, got {idx!r}")
    return [stages[index_in_range(i, len(stages), where, what=what)] for i in idx]


#: anchor generator keys whose every number is a positive finite size, ratio or stride
_GENERATOR_POSITIVE = ("ratios", "scales", "strides", "base_sizes", "octave_base_scale",
                       "min_sizes", "max_sizes", "basesize_ratio_range")


def _check_generator(cfg: MMDetConfig, gen: dict, key: str) -> None:
    """NaN, inf, zero or negative sizes, ratios and strides are errors at their line (they
    divided by zero or gave negative anchors further on)."""
    for name in _GENERATOR_POSITIVE:
        if gen.get(name) is None:
            continue
        src, line = cfg.line(rf"\b{name}\s*=")
        where = Where(src, line, f"{key}.{name}")
        if name == "strides":  # each an int or a (w, h) pair
            for value in gen[name] if isinstance(gen[name], (list, tuple)) else [gen[name]]:
                if isinstance(value, (list, tuple)) and len(value) != 2:
                    raise where.error(f"{list(value)!r}: a stride is a number or a (w, h) pair")
        for value in _flat(gen[name]):
            if isinstance(value, (str, bytes)):  # a Python config writes numbers as numbers
                raise where.error(f"{value!r} is a string, not a number")
            positive_finite(value, where)
    if gen.get("scales_per_octave") is not None:
        _int(cfg, gen["scales_per_octave"], "scales_per_octave", f"{key}.scales_per_octave")


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _backbone(cfg: MMDetConfig, b: GraphBuilder, x: str, bb: dict, notes: list[str]) -> list[str]:
    kind = bb.get("type")
    if kind in ("ResNet", "ResNeXt", "ResNetV1d"):
        if kind == "ResNeXt":
            notes.append(f"ResNeXt (groups={bb.get('groups', 1)}, base_width="
                         f"{bb.get('base_width', 4)}): grouped 3x3 convs only change channels, "
                         "so the RF is ResNet's")
        if isinstance(bb.get("dcn"), dict):
            stages = bb.get("stage_with_dcn", (True,) * _int(
                cfg, bb.get("num_stages", 4), "num_stages", "model.backbone.num_stages"))
            on = [f"C{i + 2}" for i, flag in enumerate(stages if isinstance(stages, (list, tuple))
                                                        else ()) if flag]
            notes.append(f"{kind}: deformable 3x3 convs ({bb['dcn'].get('type', 'DCN')}) in "
                         f"{', '.join(on)}; drawn as their regular 3x3 grid (the zero-offset "
                         "RF; learned offsets move the samples per image)")
        def where(name: str) -> Where:
            src, line = cfg.line(rf"\b{name}\s*=")
            return Where(src, line, f"model.backbone.{name}")

        num_stages = positive_int(bb.get("num_stages", 4), where("num_stages"))
        if num_stages > 4:
            raise where("num_stages").error(f"{kind} has at most 4 stages, not {num_stages}")
        per_stage = {}
        for name, default in (("strides", (1, 2, 2, 2)), ("dilations", (1, 1, 1, 1))):
            values = bb.get(name, default)
            if not isinstance(values, (list, tuple)) or len(values) < num_stages:
                raise where(name).error(f"expected {num_stages} values (one per stage), "
                                        f"got {values!r}")
            per_stage[name] = tuple(positive_int(v, where(name)) for v in values)
        spec = _nets.ResNetSpec(
            depth=positive_int(bb.get("depth", 50), where("depth")), num_stages=num_stages,
            strides=per_stage["strides"], dilations=per_stage["dilations"],
            stride_in_1x1=bb.get("style", "pytorch") == "caffe",
            deep_stem=bool(bb.get("deep_stem", kind == "ResNetV1d")))
        stages = _nets.resnet(b, x, spec, "backbone.")
        return _select(cfg, stages, bb.get("out_indices", tuple(range(spec.num_stages))), kind)
    if kind == "Res2Net":
        if not bb.get("deep_stem", True) or not bb.get("avg_down", True) or \
                _int(cfg, bb.get("num_stages", 4), "num_stages",
                     "model.backbone.num_stages") != 4 or bb.get("dilations") or bb.get("strides"):
            raise cfg.error("Res2Net: only the default deep_stem=True, avg_down=True, 4 stages "
                            "without dilation is read", "Res2Net", "model.backbone")
        if isinstance(bb.get("dcn"), dict):
            notes.append("Res2Net: deformable 3x3 convs drawn as their regular 3x3 grid")
        try:
            stages = mmdet_nets.res2net(b, x, _int(cfg, bb.get("depth", 101), "depth",
                                                   "model.backbone.depth"),
                                        _int(cfg, bb.get("scales", 4), "scales",
                                             "model.backbone.scales"),
                                        bb.get("style", "pytorch") == "caffe")
        except AnchorfitError as exc:
            raise cfg.error(exc.message, "Res2Net", "model.backbone") from None
        return _select(cfg, stages, bb.get("out_indices", (0, 1, 2, 3)), kind)
    if kind in ("CSPDarknet", "CSPNeXt"):
        if bb.get("arch_ovewrite"):
            raise cfg.error(f"{kind}: arch_ovewrite is not read", "arch_ovewrite",
                            "model.backbone.arch_ovewrite")
        spp_key = "spp_kernal_sizes" if kind == "CSPDarknet" else "spp_kernel_sizes"  # sic
        spp = bb.get(spp_key, (5, 9, 13))
        src, line = cfg.line(r"\bdeepen_factor\s*=")
        deepen = positive_finite(bb.get("deepen_factor", 1.0),
                                 Where(src, line, "model.backbone.deepen_factor"))
        if not isinstance(spp, (list, tuple)):
            raise cfg.error(f"{kind}: {spp_key} must be a list of integers, got {spp!r}",
                            spp_key, f"model.backbone.{spp_key}")
        spec = mmdet_nets.CSPSpec(kind, str(bb.get("arch", "P5")), deepen,
                                  tuple(_int(cfg, k, spp_key, f"model.backbone.{spp_key}",
                                             maximum=MAX_KERNEL) for k in spp),
                                  bool(bb.get("channel_attention", kind == "CSPNeXt")))
        try:
            stages = mmdet_nets.csp_backbone(b, x, spec)
        except AnchorfitError as exc:
            raise cfg.error(exc.message, "arch",
                            "model.backbone.arch") from None
        if spec.channel_attention:
            notes.append(f"{kind}: channel attention (a global average pool gates each CSP "
                         "stage) makes every feature depend on the whole image")
        return _select(cfg, stages, bb.get("out_indices", (2, 3, 4)), kind,
                       "outputs (stem + stages)")
    if kind in ("mmpretrain.ConvNeXt", "mmcls.ConvNeXt", "ConvNeXt"):
        arch = bb.get("arch", "tiny")
        depths = (arch.get("depths") if isinstance(arch, dict) else
                  mmdet_nets.CONVNEXT_DEPTHS.get(str(arch)))
        if depths is None:
            raise cfg.error(f"{kind}: arch {arch!r} is not one of "
                            f"{sorted(mmdet_nets.CONVNEXT_DEPTHS)}", "arch", "model.backbone.arch")
        if bb.get("gap_before_final_norm", True):
            raise cfg.error(f"{kind}: gap_before_final_norm pools each output to a vector; a "
                            "detector backbone sets it False", "ConvNeXt", "model.backbone")
        dw = bb.get("dw_conv_cfg") or {}
        if not isinstance(depths, (list, tuple)) or not isinstance(dw, dict):
            raise cfg.error(f"{kind}: arch depths must be a list of integers, got {depths!r}",
                            "arch", "model.backbone.arch")
        stages = mmdet_nets.convnext(
            b, x, [_int(cfg, d, "depths", "model.backbone.arch.depths") for d in depths],
            _int(cfg, bb.get("stem_patch_size", 4), "stem_patch_size",
                 "model.backbone.stem_patch_size", maximum=MAX_KERNEL),
            _int(cfg, dw.get("kernel_size", 7), "kernel_size",
                 "model.backbone.dw_conv_cfg.kernel_size", maximum=MAX_KERNEL),
            bool(bb.get("use_grn", False)))
        idx = bb.get("out_indices", -1)
        idx = [idx] if isinstance(idx, int) and not isinstance(idx, bool) else idx
        src, line = cfg.line("out_indices")
        where = Where(src, line, "model.backbone.out_indices", f"{kind}: ")
        if isinstance(idx, (str, bytes)) or not isinstance(idx, (list, tuple)):
            raise where.error(f"out_indices must be a tuple of integers, got {idx!r}")
        picked = [integer(i, where, minimum=-len(stages)) for i in idx]
        return [stages[index_in_range(i if i >= 0 else len(stages) + i, len(stages), where)]
                for i in picked]
    if kind == "SSDVGG":
        if _int(cfg, bb.get("depth", 16), "depth", "model.backbone.depth") != 16 or \
                bb.get("out_feature_indices", (22, 34)) not in ((22, 34), [22, 34]):
            raise cfg.error("SSDVGG: only depth 16 with out_feature_indices (22, 34) (conv4_3, "
                            "fc7) is supported", "SSDVGG", "model.backbone")
        return list(_nets.vgg16_ssd(b, x, "backbone."))
    if kind == "Darknet":
        if _int(cfg, bb.get("depth", 53), "depth", "model.backbone.depth") != 53:
            raise cfg.error("Darknet: only depth 53 is supported", "Darknet", "model.backbone")
        stages = _nets.darknet53(b, x)
        return _select(cfg, stages, bb.get("out_indices", (3, 4, 5)), kind)
    if kind == "MobileNetV2":
        stages = _nets.mobilenet_v2(b, x)
        return _select(cfg, stages, bb.get("out_indices", (1, 2, 4, 7)), kind)
    why = {"SwinTransformer": " (windowed self-attention: no convolutional RF to compute)"
           }.get(str(kind), "")
    raise cfg.error(f"backbone type {kind!r} is not supported{why} (ResNet, ResNeXt, Res2Net, "
                    "CSPDarknet, CSPNeXt, ConvNeXt, SSDVGG, Darknet, MobileNetV2)",
                    f"type=['\"]{re.escape(str(kind))}['\"]", "model.backbone")


def _neck(cfg: MMDetConfig, b: GraphBuilder, feats: list[str], neck: Any,
          size: tuple[int, int]) -> list[str]:
    if not neck:
        return feats
    if isinstance(neck, list):  # a chain of necks: only a single FPN-like neck is modelled
        if len(neck) != 1:
            raise cfg.error("a list of several necks is not supported", "neck", "model.neck")
        neck = neck[0]
    if not isinstance(neck, dict):
        raise cfg.error(f"neck must be a dict(type=...), got {neck!r}", r"\bneck\b", "model.neck")
    kind = neck.get("type")
    if kind == "FPN":
        n = len(feats)
        start = _int(cfg, neck.get("start_level", 0), "start_level", "model.neck.start_level",
                     minimum=0, maximum=None)
        end = _int(cfg, neck.get("end_level", -1), "end_level", "model.neck.end_level",
                   minimum=-1, maximum=None)
        for name, level in (("start_level", start), ("end_level", end)):
            if level >= n:
                raise cfg.error(f"FPN: {name} {level} is past the backbone's {n} outputs "
                                f"(levels 0..{n - 1})", rf"\b{name}\s*=", f"model.neck.{name}")
        if end != -1 and end < start:
            raise cfg.error(f"FPN: end_level {end} is before start_level {start}",
                            r"\bend_level\s*=", "model.neck.end_level")
        used = feats[start:] if end == -1 else feats[start:end + 1]
        if not used:
            raise cfg.error("FPN: the backbone gives no feature map to read", "out_indices",
                            "model.backbone.out_indices")
        if "num_outs" not in neck:
            raise cfg.error("FPN: missing key 'num_outs'", r"\bneck\b", "model.neck")
        # no count limit here: the graph builder's layer limit names a huge num_outs
        return _nets.fpn(b, used, size, _int(cfg, neck["num_outs"], "num_outs",
                                             "model.neck.num_outs", maximum=None),
                         neck.get("add_extra_convs", False), extra_source=used[-1])
    if kind == "SSDNeck":
        extras = _nets.ssd_extras(b, feats[-1],
                                  _ints(cfg, neck.get("level_strides", (2, 2, 1, 1)),
                                        "level_strides", "model.neck.level_strides", 1),
                                  _ints(cfg, neck.get("level_paddings", (1, 1, 0, 0)),
                                        "level_paddings", "model.neck.level_paddings", 0),
                                  _int(cfg, neck.get("last_kernel_size", 3), "last_kernel_size",
                                       "model.neck.last_kernel_size", maximum=MAX_KERNEL),
                                  "neck.extra")
        return feats + extras
    if kind == "YOLOV3Neck":
        return _nets.yolov3_neck(b, feats)
    if kind in ("YOLOXPAFPN", "CSPNeXtPAFPN"):
        up = neck.get("upsample_cfg") or {}
        if up.get("scale_factor", 2) != 2 or up.get("mode", "nearest") != "nearest":
            raise cfg.error(f"{kind}: only upsample_cfg scale_factor=2, mode='nearest' is read",
                            "upsample_cfg", "model.neck.upsample_cfg")
        return mmdet_nets.csp_pafpn(b, feats, _int(cfg, neck.get("num_csp_blocks", 3),
                                                   "num_csp_blocks", "model.neck.num_csp_blocks",
                                                   minimum=0),
                                    kind == "CSPNeXtPAFPN")
    if kind == "CTResNetNeck":
        return [mmdet_nets.ct_resnet_neck(b, feats[-1], _ints(
            cfg, neck.get("num_deconv_kernels", (4, 4, 4)), "num_deconv_kernels",
            "model.neck.num_deconv_kernels", 1))]
    raise cfg.error(f"neck type {kind!r} is not supported (FPN, SSDNeck, YOLOV3Neck, YOLOXPAFPN, "
                    "CSPNeXtPAFPN, CTResNetNeck)",
                    f"type=['\"]{re.escape(str(kind))}['\"]", "model.neck")


_HEAD_CONVS = {"RPNHead": None, "RetinaHead": None, "SSDHead": [3], "YOLOV3Head": [3, 1],
               "GARetinaHead": None, "RetinaSepBNHead": None}


def _head_kernels(head: dict) -> tuple[list[int], str | None]:
    kind = head.get("type")
    if kind == "RPNHead":
        return [3] * int(head.get("num_convs", 1)), None
    if kind in ("RetinaHead", "RetinaSepBNHead"):
        return [3] * (int(head.get("stacked_convs", 4)) + 1), None
    if kind == "GARetinaHead":
        return [3] * (int(head.get("stacked_convs", 4)) + 2), (
            "GARetinaHead: guided anchoring predicts anchor shapes per location and adapts "
            "features with a deformable 3x3 conv (data-dependent offsets); anchors shown are its "
            "approx_anchor_generator's")
    if kind in _HEAD_CONVS and _HEAD_CONVS[kind] is not None:
        return list(_HEAD_CONVS[kind]), None  # type: ignore[arg-type]
    return [3], f"{kind}: head convolutions not modelled; head_rf assumes one 3x3 conv"


# --------------------------------------------------------------------------- input size


def _pipeline(cfg: AttrDict) -> list[dict]:
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    ds = loader.get("dataset") if isinstance(loader, dict) else None
    while isinstance(ds, dict):
        if isinstance(ds.get("pipeline"), list):
            return ds["pipeline"]
        ds = ds.get("dataset")
    for key in ("test_pipeline", "val_pipeline"):
        if isinstance(cfg.get(key), list):
            return cfg[key]
    data = cfg.get("data")  # mmdet 2.x
    if isinstance(data, dict) and isinstance(data.get("test"), dict):
        return data["test"].get("pipeline") or []
    return []


def _resize(pipeline: list[dict]) -> dict | None:
    for step in pipeline:
        if not isinstance(step, dict):
            continue
        if step.get("type") in ("Resize", "FixShapeResize"):
            return step
        if step.get("type") in ("MultiScaleFlipAug",):
            scale = step.get("img_scale") or step.get("scale")
            inner = _resize(step.get("transforms", []))
            return dict(inner or {"keep_ratio": True}, scale=scale)
    return None


def _center_crop_pad(pipeline: list[dict]) -> bool:
    """CenterNet's test pipeline: ``RandomCenterCropPad(test_mode=True)`` and no Resize."""
    return any(isinstance(st, dict) and st.get("type") == "RandomCenterCropPad" and
               st.get("test_mode") for st in pipeline)


def _train_crop(cfg: MMDetConfig) -> int:
    """The square training crop of ``RandomCenterCropPad`` (512 when the config has none)."""
    pipeline = cfg.data.get("train_pipeline")
    loader = cfg.data.get("train_dataloader")
    ds = loader.get("dataset") if isinstance(loader, dict) else None
    while not isinstance(pipeline, list) and isinstance(ds, dict):
        pipeline, ds = ds.get("pipeline"), ds.get("dataset")
    for st in pipeline if isinstance(pipeline, list) else []:
        if isinstance(st, dict) and st.get("type") == "RandomCenterCropPad" and st.get("crop_size"):
            crop = st["crop_size"]
            sides = crop if isinstance(crop, (list, tuple)) and crop else [crop]
            return max(_side(cfg, c, "crop_size", "train_pipeline.RandomCenterCropPad.crop_size")
                       for c in sides)
    return 512


def _input(cfg: MMDetConfig, gen: dict, input_size: tuple[int, int] | None
           ) -> tuple[tuple[int, int], str, dict[str, Any], list[str]]:
    """Network input (H, W) after padding, resize policy and params, and notes."""
    notes: list[str] = []
    model = cfg.data["model"]
    pre = model.get("data_preprocessor") or {}
    src, line = cfg.line(r"\bpad_size_divisor\s*=")
    divisor = _side(cfg, pre.get("pad_size_divisor", 1) or 1, "pad_size_divisor",
                    "model.data_preprocessor.pad_size_divisor")
    resize = _resize(_pipeline(cfg.data))
    policy, params = "stretch", {}
    if resize is not None and resize.get("scale") is not None:
        scale = resize["scale"]
        if isinstance(scale, list) and scale and isinstance(scale[0], (list, tuple)):
            scale = scale[0]
        if isinstance(scale, (list, tuple)) and len(scale) != 2 or isinstance(scale, (str, dict)):
            raise cfg.error(f"Resize scale must be a number or a (w, h) pair, got {scale!r}",
                            r"\bscale\s*=", "test_pipeline.Resize.scale")
        w, h = (scale, scale) if not isinstance(scale, (list, tuple)) else (scale[0], scale[1])
        w, h = (_side(cfg, v, "scale", "test_pipeline.Resize.scale") for v in (w, h))
        if resize.get("keep_ratio", True):
            if w != h:
                policy, params = "shortside", {"short": min(w, h), "max": max(w, h)}
                size = (min(w, h), max(w, h))
            else:
                policy, params, size = "letterbox", {"long": w}, (h, w)
        else:
            size = (h, w)
    elif _center_crop_pad(_pipeline(cfg.data)):
        crop = _train_crop(cfg)
        size, policy, params = (crop, crop), "none", {}
        notes.append("the test pipeline does not resize (RandomCenterCropPad in test mode keeps "
                     "each image's own size, padded to a multiple of 32): boxes stay in original "
                     f"pixels; the network is analysed at {crop}x{crop}, the training crop "
                     "(pass --input to choose)")
    elif str(gen.get("type", "")).endswith("SSDAnchorGenerator") and gen.get("input_size"):
        s = _side(cfg, gen["input_size"], "input_size", "anchor_generator.input_size")
        size = (s, s)
        notes.append(f"no test pipeline; input {s}x{s} from the anchor generator's input_size")
    else:
        size = (800, 1333)
        policy, params = "shortside", {"short": 800, "max": 1333}
        notes.append("no test pipeline in the config; assumed mmdet's usual 800/1333 short-side "
                     "resize (pass --input to choose)")
    ssd_size = gen.get("input_size") if str(gen.get("type", "")).endswith("SSDAnchorGenerator") \
        else None
    if ssd_size:
        ssd_size = _side(cfg, ssd_size, "input_size", "anchor_generator.input_size")
    if ssd_size and resize is not None and size != (ssd_size, ssd_size):
        notes.append(f"the test pipeline resizes to {size[0]}x{size[1]} but the SSD anchor "
                     f"generator is built for {ssd_size}; using {ssd_size}x{ssd_size}")
        size, policy, params = (ssd_size, ssd_size), "stretch", {}
    if input_size is not None:
        size = input_size
    if divisor > 1 and (size[0] % divisor or size[1] % divisor):
        padded = (-(-size[0] // divisor) * divisor, -(-size[1] // divisor) * divisor)
        notes.append(f"input {size[0]}x{size[1]} padded to {padded[0]}x{padded[1]} "
                     f"(pad_size_divisor={divisor})")
        size = padded
    return size, policy, params, notes


def _assigner(cfg: MMDetConfig, model: dict, two_stage: bool
              ) -> tuple[Assigner, str | None]:
    train = model.get("train_cfg") or {}
    if two_stage and isinstance(train.get("rpn"), dict):
        train = train["rpn"]
    a = train.get("assigner") or {}
    kind = a.get("type")
    neg = a.get("neg_iou_thr")
    if isinstance(neg, (list, tuple)):
        neg = neg[-1] if neg else None
    pos = a.get("pos_iou_thr")
    if kind in ("MaxIoUAssigner", "GridAssigner", "ApproxMaxIoUAssigner"):
        def thr(value: Any, name: str) -> float | None:
            if value is None:
                return None
            src, line = cfg.line(rf"\b{name}\s*=")
            return finite(value, Where(src, line, f"model.train_cfg.assigner.{name}"))
        return Assigner("iou", thr(pos, "pos_iou_thr"), thr(neg, "neg_iou_thr")), kind
    return Assigner("iou", 0.5, 0.4), kind


# --------------------------------------------------------------------------- entry point


def _check_conv_counts(cfg: MMDetConfig, head: dict, head_key: str) -> None:
    """A head's conv counts are whole numbers no real head comes near 1000 of (``[3] * n`` would
    otherwise build a list of 10**8 kernels, or overflow)."""
    for name in ("stacked_convs", "num_convs"):
        if name not in head:  # written as None it is no count either: refused below
            continue
        src, line = cfg.line(rf"\b{name}\s*=")
        where = Where(src, line, f"{head_key}.{name}")
        if integer(head[name], where, minimum=0) > MAX_REPEATS:
            raise where.error(beyond_limit(name, head[name], MAX_REPEATS))


def load_mmdet(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """Read an mmdetection config (with its ``_base_`` chain) into a Detector."""
    path = Path(path)
    cfg = load_config(path)
    model = cfg.data.get("model")
    if not isinstance(model, dict):
        keys = sorted(k for k in cfg.data if not k.startswith("_"))
        raise FormatError("no 'model' in this config (a dataset, schedule or runtime base, not a "
                          f"detector); it defines {', '.join(keys[:8]) or 'nothing'}",
                          source=path, line=1, key="model")
    two_stage = isinstance(model.get("rpn_head"), dict)
    head = model["rpn_head"] if two_stage else model.get("bbox_head")
    if not isinstance(head, dict):
        if model.get("type") == "FastRCNN" or isinstance(model.get("roi_head"), dict):
            raise cfg.error(f"{model.get('type') or 'this model'} has an roi_head but no "
                            "rpn_head: Fast R-CNN takes proposals computed outside the model, so "
                            "it has no anchors or dense levels to read", "roi_head", "model")
        raise cfg.error("the model has no rpn_head or bbox_head", "model", "model")
    head_key = f"model.{'rpn_head' if two_stage else 'bbox_head'}"
    _check_conv_counts(cfg, head, head_key)
    train = model.get("train_cfg") or {}
    if two_stage and isinstance(train.get("rpn"), dict):
        train = train["rpn"]
    if not two_stage and mmdet_heads.is_point_head(head):
        try:
            points = mmdet_heads.point_head(head, train)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # int(inf): Overflow
            msg = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            kind = re.escape(str(head.get("type")))  # config text: never a regex of its own
            where = getattr(exc, "key", None) or f"type=['\"]{kind}['\"]"
            raise cfg.error(msg, where, head_key) from None
        return _load_points(cfg, path, model, head, points, input_size)
    gen_key = next((k for k in ("anchor_generator", "prior_generator", "approx_anchor_generator")
                    if isinstance(head.get(k), dict)), None)
    if head.get("type") == "VFNetHead":  # use_atss: its own default ATSS generator
        gen_key = "anchor_generator"
        head = dict(head, anchor_generator=mmdet_heads.vfnet_generator(head))
    if gen_key is None:
        raise cfg.error(f"{head.get('type')} has no anchor generator and is not one of the "
                        "anchor-free heads anchorfit reads ("
                        f"{', '.join(sorted(mmdet_heads.POINT_HEADS))})",
                        "bbox_head|rpn_head", head_key)
    gen = head[gen_key]
    key = f"{head_key}.{gen_key}"
    _check_generator(cfg, gen, key)
    try:
        per_level, steps, offsets = generator_anchors(gen)
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise cfg.error(msg, f"type=['\"]{re.escape(str(gen.get('type')))}['\"]", key) from None
    size, policy, params, notes = _input(cfg, gen, input_size)
    b = GraphBuilder(path.stem)
    outs = _network(cfg, model, b, size, notes)
    if len(outs) != len(per_level):
        raise cfg.error(f"the anchor generator has {len(per_level)} levels but the "
                        f"backbone/neck gives {len(outs)} feature maps", "strides", key)
    if model.get("type") == "YOLOV3" or head.get("type") == "YOLOV3Head":
        notes.append("YOLOV3Head: GridAssigner gives a box to the best-IoU anchor in the cell "
                     "holding its centre (Darknet-like)")
    try:
        af_kernels = mmdet_heads.anchor_head_kernels(head)
    except (ValueError, TypeError, OverflowError) as exc:
        raise cfg.error(str(exc), getattr(exc, "key", None) or "pred_kernel_size",
                        head_key) from None
    kernels, head_note = (af_kernels, None) if af_kernels is not None else _head_kernels(head)
    if head_note:
        notes.append(head_note)
    if head.get("type") == "VFNetHead":
        notes.append("VFNetHead: the refined box and the class score read the features through "
                     "deformable 3x3 convs (star-shaped offsets from the first box); drawn as "
                     "regular 3x3 grids")
    assigner, assigner_kind = _assigner(cfg, model, two_stage)
    try:
        newer = None if two_stage else mmdet_heads.anchor_head_assigner(head, train)
    except (ValueError, TypeError, OverflowError) as exc:
        raise cfg.error(str(exc), getattr(exc, "key", None) or r"\bassigner\b",
                        "model.train_cfg.assigner") from None
    level_extra: dict[str, Any] = {"generator": gen.get("type"), "assigner": assigner_kind}
    if newer is not None:
        assigner, params_ = newer
        level_extra.update(params_)
    if head.get("type") == "TOODHead":
        level_extra["anchor_type"] = head.get("anchor_type", "anchor_free")
    graph = b.build()
    analysis = analyze(graph, size)
    strides = [analysis[o].stride for o in outs]
    names = unique_names([pyramid_name(s[1]) for s in strides])
    levels = []
    for i, node in enumerate(outs):
        off = offsets[i]
        center = "top-left" if off == 0 else "cell-center" if off == 0.5 else "explicit"
        true = (float(strides[i][0]), float(strides[i][1]))
        if true != steps[i]:
            notes.append(f"{names[i]}: anchor generator stride {steps[i][1]:g} differs from the "
                         f"feature map's stride {true[1]:g}")
        levels.append(Level(names[i], node, strides[i], steps[i], per_level[i], None,
                            center, off, head_convs(kernels), assigner,  # type: ignore[arg-type]
                            extra=dict(level_extra)))
    num_classes = head.get("num_classes")
    if two_stage:
        roi = model.get("roi_head") or {}
        bh = roi.get("bbox_head") if isinstance(roi, dict) else None
        bh = bh[0] if isinstance(bh, list) and bh else bh
        num_classes = bh.get("num_classes") if isinstance(bh, dict) else None
    network = make_network(path.stem, graph, size, levels, notes=notes)
    det = Detector(path.stem, size, levels, policy, params, str(path), network,  # type: ignore[arg-type]
                   int(num_classes) if isinstance(num_classes, int) else None, notes,
                   extra={"format": "mmdet", "model_type": model.get("type")})
    return finish(det)


def _network(cfg: MMDetConfig, model: dict, b: GraphBuilder, size: tuple[int, int],
             notes: list[str]) -> list[str]:
    """The backbone and neck of ``model`` in ``b``; the nodes the head reads."""
    x = b.input("input")
    bb = model.get("backbone")
    if not isinstance(bb, dict):
        raise cfg.error("the model has no backbone", "model", "model.backbone")
    feats = _backbone(cfg, b, x, bb, notes)
    try:
        return _neck(cfg, b, feats, model.get("neck"), size)
    except FormatError:
        raise
    except AnchorfitError as exc:  # a limit of the graph builder (num_outs=10**6): name the key
        raise cfg.error(exc.message, r"\bneck\b", "model.neck") from None


def _load_points(cfg: MMDetConfig, path: Path, model: dict, head: dict,
                 points: mmdet_heads.PointHead, input_size: tuple[int, int] | None) -> Detector:
    """A Detector for a point head: no anchors, each level's point offset and size range."""
    head_key = "model.bbox_head"
    size, policy, params, notes = _input(cfg, {}, input_size)
    notes.extend(points.notes)
    b = GraphBuilder(path.stem)
    outs = _network(cfg, model, b, size, notes)
    if len(outs) != len(points.strides):
        raise cfg.error(f"{head.get('type')} has {len(points.strides)} strides but the "
                        f"backbone/neck gives {len(outs)} feature maps", "strides", head_key)
    graph = b.build()
    analysis = analyze(graph, size)
    strides = [analysis[o].stride for o in outs]
    names = unique_names([pyramid_name(s[1]) for s in strides])
    off = points.offset
    center = "top-left" if off == 0 else "cell-center" if off == 0.5 else "explicit"
    if not all(math.isinf(hi) and lo == 0 for lo, hi in points.ranges):
        notes.append(f"{head.get('type')}: size ranges bound {points.measure}")
    levels = []
    for i, node in enumerate(outs):
        true = (float(strides[i][0]), float(strides[i][1]))
        if true != points.strides[i]:
            notes.append(f"{names[i]}: head stride {points.strides[i][1]:g} differs from the "
                         f"feature map's stride {true[1]:g}")
        levels.append(Level(names[i], node, strides[i], points.strides[i], [],
                            points.ranges[i], center, off,  # type: ignore[arg-type]
                            head_convs(points.kernels), points.assigner,
                            extra=dict(points.extra), range_measure=points.measure_code))
    num_classes = head.get("num_classes")
    network = make_network(path.stem, graph, size, levels, notes=notes)
    det = Detector(path.stem, size, levels, policy, params, str(path), network,  # type: ignore[arg-type]
                   int(num_classes) if isinstance(num_classes, int) else None, notes,
                   extra={"format": "mmdet", "model_type": model.get("type"),
                          "anchor_free": True})
    return finish(det)


def _sniff(path: Path, text: str) -> bool:
    """mmdet configs assign ``model = dict(``, inherit with ``_base_ =``, or are bases that set
    mmengine's well-known names (these get a "not a detector" message, not "unknown format")."""
    return bool(re.search(r"^(_base_|model|default_scope|dataset_type|optim_wrapper|tta_model|"
                          r"(train|val|test)_(dataloader|pipeline|cfg))\s*=", text, re.MULTILINE))


def _sniff_metafile(path: Path, text: str) -> bool:
    """mmdetection's model-zoo ``metafile.yml``: top-level ``Collections:`` and ``Models:``."""

    return {"Collections", "Models"} <= top_level_keys(text)


def load_metafile(path: Path, input_size: tuple[int, int] | None = None) -> Detector:
    """A model-zoo metafile lists papers, checkpoints and metrics, not a network: say so."""
    raise FormatError("an mmdetection model-zoo metafile, not a config (it lists models, "
                      "checkpoints and metrics; read one of the config .py files it names)",
                      source=path, line=1, key="Models")


FORMAT = Format("mmdetection config", (".py",), load_mmdet, sniff=_sniff,
                expects="a top-level 'model = dict(...)' or '_base_ = ...'", export="mmdet")
METAFILE_FORMAT = Format("mmdetection model-zoo metafile", (".yml", ".yaml"), load_metafile,
                         sniff=_sniff_metafile, expects="top-level 'Collections:' and 'Models:'",
                         export="mmdet")

__all__ = ["FORMAT", "METAFILE_FORMAT", "generator_anchors", "load_config", "load_metafile",
           "load_mmdet", "merge", "ssd_sizes"]
