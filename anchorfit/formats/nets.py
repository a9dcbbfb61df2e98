"""Backbones and necks written as IR recipes (no torch): ResNet, FPN, SSD's VGG16 and extra
layers, Darknet-53 with the YOLOv3 neck, MobileNetV2.

mmdetection and detectron2 configs name these architectures by parameters (``depth=50``,
``style='caffe'``, ``add_extra_convs='on_input'``) rather than listing layers, so the readers
need the architecture's geometry. Building it here, straight into the IR, has two advantages over
tracing a torchvision equivalent: no torch import for ``anchorfit rf config.py``, and variants
torchvision does not have (Caffe-style ResNet with the stride in the 1x1 conv, dilated C5, mmdet's
``on_input``/``on_lateral`` FPN extras) are one argument away. Only geometry is modelled: channel
counts, normalisation and activations do not change a receptive field.

Each function takes a ``GraphBuilder`` and node names and returns node names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anchorfit.errors import AnchorfitError
from anchorfit.rf.engine import analyze
from anchorfit.rf.graph import GraphBuilder, Resample

RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}


@dataclass(frozen=True)
class ResNetSpec:
    """Geometry-relevant ResNet options (mmdet ``ResNet`` / detectron2 ``RESNETS``)."""

    depth: int = 50
    num_stages: int = 4
    strides: tuple[int, ...] = (1, 2, 2, 2)
    dilations: tuple[int, ...] = (1, 1, 1, 1)
    stride_in_1x1: bool = False  # Caffe/MSRA style (mmdet style='caffe', detectron2 default)
    deep_stem: bool = False


def resnet(b: GraphBuilder, x: str, spec: ResNetSpec, prefix: str = "") -> list[str]:
    """Stage outputs (``layer1`` ... ``layerN``, strides 4, 8, 16, 32 by default)."""
    if spec.depth not in RESNET_BLOCKS:
        raise AnchorfitError(f"ResNet depth {spec.depth} is not one of {sorted(RESNET_BLOCKS)}")
    p = prefix
    if spec.deep_stem:
        x = b.conv(x, 3, 2, 1, name=f"{p}stem.0")
        x = b.conv(x, 3, 1, 1, name=f"{p}stem.1")
        x = b.conv(x, 3, 1, 1, name=f"{p}stem.2")
    else:
        x = b.conv(x, 7, 2, 3, name=f"{p}conv1")
    x = b.pool(x, 3, 2, 1, name=f"{p}maxpool", kind="maxpool")
    bottleneck = spec.depth >= 50
    outs = []
    for s in range(spec.num_stages):
        stride, dil = spec.strides[s], spec.dilations[s]
        for i in range(RESNET_BLOCKS[spec.depth][s]):
            q = f"{p}layer{s + 1}.{i}"
            st = stride if i == 0 else 1
            if bottleneck:
                s1, s3 = (st, 1) if spec.stride_in_1x1 else (1, st)
                y = b.conv(x, 1, s1, 0, name=f"{q}.conv1")
                y = b.conv(y, 3, s3, dil, dilation=dil, name=f"{q}.conv2")
                y = b.conv(y, 1, 1, 0, name=f"{q}.conv3")
            else:
                y = b.conv(x, 3, st, dil, dilation=dil, name=f"{q}.conv1")
                y = b.conv(y, 3, 1, dil, dilation=dil, name=f"{q}.conv2")
            short = b.conv(x, 1, st, 0, name=f"{q}.downsample") if i == 0 else x
            x = b.add_(y, short, name=f"{q}.add")
        outs.append(x)
    return outs


def feature_sizes(b: GraphBuilder, nodes: Sequence[str], input_size: tuple[int, int]
                  ) -> list[tuple[int, int]]:
    """Map sizes of ``nodes`` for this input (FPN upsamples to the next map's exact size)."""
    a = analyze(b.graph, input_size)
    return [a[n].feature_size for n in nodes]


def fpn(b: GraphBuilder, inputs: Sequence[str], input_size: tuple[int, int], num_outs: int,
        add_extra_convs: bool | str = False, extra_source: str | None = None,
        prefix: str = "neck.") -> list[str]:
    """FPN outputs for ``inputs`` (finest first), plus ``num_outs - len(inputs)`` extra levels.

    Top-down: 1x1 laterals, nearest upsampling *to the finer map's size* (as mmdet, torchvision
    and detectron2 do), add; 3x3 output convs. Extras: a 1x1 stride-2 max-pool of the last
    output (``add_extra_convs=False``), or 3x3 stride-2 convs starting from the backbone's last
    map (``'on_input'``, or ``extra_source`` when given), the last lateral (``'on_lateral'``) or
    the last output (``'on_output'``).
    """
    p = prefix
    sizes = feature_sizes(b, inputs, input_size)
    lat = [b.conv(x, 1, 1, 0, name=f"{p}lateral{i}") for i, x in enumerate(inputs)]
    merged = list(lat)
    for i in range(len(lat) - 1, 0, -1):
        up = b.add(Resample("nearest", None, sizes[i - 1]), [merged[i]], f"{p}up{i}")
        merged[i - 1] = b.add_(lat[i - 1], up, name=f"{p}merge{i - 1}")
    outs = [b.conv(m, 3, 1, 1, name=f"{p}out{i}") for i, m in enumerate(merged)]
    extra = num_outs - len(outs)
    if extra <= 0:
        return outs[:num_outs]
    if not add_extra_convs:
        for i in range(extra):
            outs.append(b.pool(outs[-1], 1, 2, 0, name=f"{p}pool{i}", kind="maxpool"))
        return outs
    mode = "on_input" if add_extra_convs is True else add_extra_convs
    src = {"on_input": extra_source or inputs[-1], "on_lateral": lat[-1],
           "on_output": outs[-1]}.get(str(mode))
    if src is None:
        raise AnchorfitError(f"add_extra_convs {mode!r} is not on_input, on_lateral or on_output")
    for i in range(extra):
        src = b.conv(src if i == 0 else outs[-1], 3, 2, 1, name=f"{p}extra{i}")
        outs.append(src)
    return outs


def vgg16_ssd(b: GraphBuilder, x: str, prefix: str = "") -> tuple[str, str]:
    """SSD's VGG16 (ceil-mode pools, pool5 3x3 s1, fc6 3x3 dilation 6, fc7 1x1): conv4_3, fc7."""
    p = prefix
    conv4_3 = ""
    for stage, n in enumerate((2, 2, 3, 3, 3), start=1):
        for i in range(1, n + 1):
            x = b.conv(x, 3, 1, 1, name=f"{p}conv{stage}_{i}")
        if stage == 4:
            conv4_3 = x
        if stage < 5:
            x = b.pool(x, 2, 2, 0, ceil_mode=True, name=f"{p}pool{stage}", kind="maxpool")
    x = b.pool(x, 3, 1, 1, name=f"{p}pool5", kind="maxpool")
    x = b.conv(x, 3, 1, 6, dilation=6, name=f"{p}fc6")
    return conv4_3, b.conv(x, 1, 1, 0, name=f"{p}fc7")


def ssd_extras(b: GraphBuilder, x: str, strides: Sequence[int], paddings: Sequence[int],
               last_kernel: int = 3, prefix: str = "extra") -> list[str]:
    """SSD extra layers: a 1x1 then a kxk (stride, padding) conv per level."""
    outs = []
    for i, (s, pad) in enumerate(zip(strides, paddings)):
        k = last_kernel if i == len(strides) - 1 else 3
        x = b.conv(x, 1, 1, 0, name=f"{prefix}{i}.0")
        x = b.conv(x, k, s, pad, name=f"{prefix}{i}.1")
        outs.append(x)
    return outs


def darknet53(b: GraphBuilder, x: str, prefix: str = "backbone.") -> list[str]:
    """Darknet-53 stage outputs (conv1, then five 3x3/s2 + residual stages), strides 2 … 32."""
    p = prefix
    x = b.conv(x, 3, 1, 1, name=f"{p}conv1")
    outs = [x]
    for s, n in enumerate((1, 2, 8, 8, 4), start=1):
        q = f"{p}conv_res_block{s}"
        x = b.conv(x, 3, 2, 1, name=f"{q}.conv")
        for i in range(n):
            y = b.conv(x, 1, 1, 0, name=f"{q}.res{i}.conv1")
            y = b.conv(y, 3, 1, 1, name=f"{q}.res{i}.conv2")
            x = b.add_(x, y, name=f"{q}.res{i}.add")
        outs.append(x)
    return outs


def yolov3_neck(b: GraphBuilder, feats: Sequence[str], prefix: str = "neck.") -> list[str]:
    """mmdet's YOLOV3Neck: detection blocks (1x1,3x3,1x1,3x3,1x1) top-down; coarsest first."""
    p = prefix

    def block(x: str, q: str) -> str:
        for i, k in enumerate((1, 3, 1, 3, 1), start=1):
            x = b.conv(x, k, 1, k // 2, name=f"{q}.conv{i}")
        return x

    out = block(feats[-1], f"{p}detect1")
    outs = [out]
    for i, x in enumerate(reversed(feats[:-1]), start=1):
        y = b.conv(out, 1, 1, 0, name=f"{p}conv{i}")
        y = b.upsample(y, 2, name=f"{p}up{i}")
        out = block(b.cat(y, x, name=f"{p}cat{i}"), f"{p}detect{i + 1}")
        outs.append(out)
    return outs


MOBILENET_V2 = ((1, 1, 1), (6, 2, 2), (6, 3, 2), (6, 4, 2), (6, 3, 1), (6, 3, 2), (6, 1, 1))


def mobilenet_v2(b: GraphBuilder, x: str, prefix: str = "backbone.") -> list[str]:
    """MobileNetV2: outputs of layer1..layer7 and the final 1x1 (mmdet out_indices 0..7)."""
    p = prefix
    x = b.conv(x, 3, 2, 1, name=f"{p}conv1")
    outs = []
    for s, (t, n, stride) in enumerate(MOBILENET_V2, start=1):
        for i in range(n):
            q = f"{p}layer{s}.{i}"
            st = stride if i == 0 else 1
            y = b.conv(x, 1, 1, 0, name=f"{q}.expand") if t != 1 else x
            y = b.conv(y, 3, st, 1, name=f"{q}.dw")
            y = b.conv(y, 1, 1, 0, name=f"{q}.project")
            x = b.add_(x, y, name=f"{q}.add") if st == 1 and i > 0 else y
        outs.append(x)
    outs.append(b.conv(x, 1, 1, 0, name=f"{p}conv2"))
    return outs
