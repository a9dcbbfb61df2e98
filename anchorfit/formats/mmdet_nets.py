"""IR recipes for the backbones and necks of mmdetection's anchor-free detectors (no torch).

The FCOS/ATSS/GFL/... configs use ResNet, ResNeXt (and Res2Net) with or without deformable
convolutions; YOLOX uses CSPDarknet + YOLOXPAFPN; RTMDet CSPNeXt + CSPNeXtPAFPN (and, for
RTMDet-L variants, mmpretrain's ConvNeXt); CenterNet a ResNet-18 with CTResNetNeck's transposed
convolutions. Each recipe follows mmdet 3.x's module
code layer by layer, keeping only what decides a receptive field: kernels, strides, paddings,
dilations, the order of branches and merges, and whole-map operations (channel attention).

Two deliberate simplifications, both said in the detector's notes by the reader:

- ResNeXt's ``groups``/``base_width`` only change channel counts: its RF is ResNet's.
- A deformable 3x3 (``dcn=`` / ``stage_with_dcn``, ``DCNv2`` in CTResNetNeck) is drawn as the
  regular 3x3 grid it starts from. Its learned offsets move the samples per image, so the
  theoretical RF of a DCN network is not bounded by the grid; the grid is what the network sees
  with zero offsets (its initialisation) and the reference the notes point to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anchorfit.errors import AnchorfitError
from anchorfit.formats.nets import RESNET_BLOCKS
from anchorfit.rf.graph import GraphBuilder

# --------------------------------------------------------------------------- CSP building blocks


def _csp_layer(b: GraphBuilder, x: str, num_blocks: int, add_identity: bool, cspnext: bool,
               attention: bool, p: str) -> str:
    """mmdet ``CSPLayer``: 1x1 main and short branches, blocks on main, concat, (channel
    attention), 1x1 final conv.

    Blocks are ``DarknetBottleneck`` (1x1, 3x3) or ``CSPNeXtBlock`` (3x3, depthwise 5x5); a
    depthwise-separable conv is a kxk depthwise then a 1x1, the same window as a kxk conv.
    ``ChannelAttention`` multiplies by a gate computed from a global average pool: pointwise in
    space, but it makes every output depend on the whole map (``global_context``).
    """
    main = b.conv(x, 1, 1, 0, name=f"{p}.main_conv")
    short = b.conv(x, 1, 1, 0, name=f"{p}.short_conv")
    for i in range(num_blocks):
        q = f"{p}.blocks.{i}"
        if cspnext:
            y = b.conv(main, 3, 1, 1, name=f"{q}.conv1")
            y = b.conv(y, 5, 1, 2, name=f"{q}.conv2")
        else:
            y = b.conv(main, 1, 1, 0, name=f"{q}.conv1")
            y = b.conv(y, 3, 1, 1, name=f"{q}.conv2")
        main = b.add_(y, main, name=f"{q}.add") if add_identity else y
    out = b.cat(main, short, name=f"{p}.cat")
    if attention:
        out = b.pointwise(out, "channel_attention", global_context=True, name=f"{p}.attention")
    return b.conv(out, 1, 1, 0, name=f"{p}.final_conv")


def _spp(b: GraphBuilder, x: str, kernels: Sequence[int], p: str) -> str:
    """``SPPBottleneck``: 1x1, parallel stride-1 max-pools (k, padding k//2) concatenated with
    their input, 1x1."""
    x = b.conv(x, 1, 1, 0, name=f"{p}.conv1")
    pools = [b.pool(x, int(k), 1, int(k) // 2, name=f"{p}.pool{k}", kind="maxpool")
             for k in kernels]
    return b.conv(b.cat(x, *pools, name=f"{p}.cat"), 1, 1, 0, name=f"{p}.conv2")


#: (num_blocks, add_identity, use_spp) per stage, from mmdet's arch_settings (channels dropped)
CSP_ARCH = {
    "CSPDarknet": {"P5": ((3, True, False), (9, True, False), (9, True, False),
                          (3, False, True)),
                   "P6": ((3, True, False), (9, True, False), (9, True, False),
                          (3, True, False), (3, False, True))},
    "CSPNeXt": {"P5": ((3, True, False), (6, True, False), (6, True, False), (3, False, True)),
                "P6": ((3, True, False), (6, True, False), (6, True, False), (3, True, False),
                       (3, False, True))},
}


@dataclass(frozen=True)
class CSPSpec:
    """Geometry-relevant options of mmdet ``CSPDarknet`` / ``CSPNeXt``."""

    kind: str = "CSPDarknet"  # or "CSPNeXt"
    arch: str = "P5"
    deepen_factor: float = 1.0
    spp_kernels: tuple[int, ...] = (5, 9, 13)
    channel_attention: bool = False  # CSPNeXt's default is True

    def blocks(self) -> list[int]:
        """Blocks per stage: ``max(round(n * deepen_factor), 1)`` (Python's round, as mmdet)."""
        return [max(round(n * self.deepen_factor), 1) for n, _, _ in self.stages()]

    def stages(self) -> tuple[tuple[int, bool, bool], ...]:
        try:
            return CSP_ARCH[self.kind][self.arch]
        except KeyError:
            raise AnchorfitError(f"{self.kind}: arch {self.arch!r} is not one of "
                                 f"{sorted(CSP_ARCH.get(self.kind, {}))}") from None


def csp_backbone(b: GraphBuilder, x: str, spec: CSPSpec, prefix: str = "backbone.") -> list[str]:
    """Outputs of ``stem, stage1 ... stageN`` (mmdet ``out_indices`` index this list).

    Stems: CSPDarknet's ``Focus`` (space-to-depth by four stride-2 slices, then a 3x3 conv) and
    CSPNeXt's three 3x3 convs (the first stride 2). Each stage: a 3x3 stride-2 conv, SPP on the
    last stage, then a CSPLayer (CSPNeXt's with CSPNeXt blocks and channel attention).
    """
    p = prefix
    if spec.kind == "CSPDarknet":
        parts = [b.slice(x, (dy, dx), (2, 2), name=f"{p}stem.slice{dy}{dx}")
                 for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1))]
        x = b.conv(b.cat(*parts, name=f"{p}stem.cat"), 3, 1, 1, name=f"{p}stem.conv")
    else:
        x = b.conv(x, 3, 2, 1, name=f"{p}stem.0")
        x = b.conv(x, 3, 1, 1, name=f"{p}stem.1")
        x = b.conv(x, 3, 1, 1, name=f"{p}stem.2")
    outs = [x]
    cspnext = spec.kind == "CSPNeXt"
    for i, ((_, identity, spp), n) in enumerate(zip(spec.stages(), spec.blocks()), start=1):
        q = f"{p}stage{i}"
        x = b.conv(x, 3, 2, 1, name=f"{q}.0")
        if spp:
            x = _spp(b, x, spec.spp_kernels, f"{q}.spp")
        x = _csp_layer(b, x, n, identity, cspnext, cspnext and spec.channel_attention,
                       f"{q}.csp")
        outs.append(x)
    return outs


def csp_pafpn(b: GraphBuilder, feats: Sequence[str], num_blocks: int, cspnext: bool,
              prefix: str = "neck.") -> list[str]:
    """``YOLOXPAFPN`` / ``CSPNeXtPAFPN`` (finest first).

    Top-down: 1x1 reduce of the coarser map, nearest x2 upsample, concat with the finer input,
    CSPLayer (no identity). Bottom-up: 3x3 stride-2 conv, concat with the top-down map of the
    next level (the coarsest: its 1x1-reduced input), CSPLayer. Outputs: 1x1 convs (YOLOX) or
    3x3 convs (CSPNeXt). The neck's CSPLayers have no channel attention.
    """
    p = prefix
    n = len(feats)
    inner = [feats[-1]]
    for idx in range(n - 1, 0, -1):
        k = n - 1 - idx
        reduced = b.conv(inner[0], 1, 1, 0, name=f"{p}reduce{k}")
        inner[0] = reduced
        up = b.upsample(reduced, 2, name=f"{p}up{k}")
        td = _csp_layer(b, b.cat(up, feats[idx - 1], name=f"{p}td_cat{k}"), num_blocks, False,
                        cspnext, False, f"{p}top_down{k}")
        inner.insert(0, td)
    outs = [inner[0]]
    for idx in range(n - 1):
        down = b.conv(outs[-1], 3, 2, 1, name=f"{p}downsample{idx}")
        outs.append(_csp_layer(b, b.cat(down, inner[idx + 1], name=f"{p}bu_cat{idx}"),
                               num_blocks, False, cspnext, False, f"{p}bottom_up{idx}"))
    k = 3 if cspnext else 1
    return [b.conv(o, k, 1, k // 2, name=f"{p}out{i}") for i, o in enumerate(outs)]


# --------------------------------------------------------------------------- Res2Net, CenterNet


def res2net(b: GraphBuilder, x: str, depth: int = 101, scales: int = 4, stride_in_1x1: bool = False,
            prefix: str = "backbone.") -> list[str]:
    """mmdet ``Res2Net`` (deep stem, ``avg_down``), stage outputs at strides 4, 8, 16, 32.

    A Bottle2neck splits its 1x1 output into ``scales`` groups. In the first block of a stage
    (``stage_type='stage'``) the first ``scales-1`` groups each get their own 3x3 (with the
    stride) and the last is average-pooled 3x3 (stride, padding 1) when the stride is not 1; in
    the other blocks the 3x3s are hierarchical: group ``i`` adds the previous group's output
    before its 3x3, a chain of ``scales-1`` 3x3 convs. Shortcuts average-pool ``stride x stride``
    (ceil mode) before their 1x1.
    """
    if depth not in RESNET_BLOCKS or depth < 50:
        raise AnchorfitError(f"Res2Net depth {depth} is not one of 50, 101, 152")
    if scales < 2:
        raise AnchorfitError(f"Res2Net scales {scales} < 2")
    p = prefix
    x = b.conv(x, 3, 2, 1, name=f"{p}stem.0")
    x = b.conv(x, 3, 1, 1, name=f"{p}stem.1")
    x = b.conv(x, 3, 1, 1, name=f"{p}stem.2")
    x = b.pool(x, 3, 2, 1, name=f"{p}maxpool", kind="maxpool")
    outs = []
    for s, n in enumerate(RESNET_BLOCKS[depth]):
        stride = 1 if s == 0 else 2
        for i in range(n):
            q = f"{p}layer{s + 1}.{i}"
            st = stride if i == 0 else 1
            s1, s3 = (st, 1) if stride_in_1x1 else (1, st)
            y = b.conv(x, 1, s1, 0, name=f"{q}.conv1")
            if i == 0:
                groups = [b.conv(y, 3, s3, 1, name=f"{q}.convs{k}") for k in range(scales - 1)]
                last = b.pool(y, 3, s3, 1, name=f"{q}.pool", kind="avgpool") if s3 != 1 else y
                groups.append(last)
            else:
                sp = b.conv(y, 3, 1, 1, name=f"{q}.convs0")
                groups = [sp]
                for k in range(1, scales - 1):
                    sp = b.conv(b.add_(sp, y, name=f"{q}.sum{k}"), 3, 1, 1, name=f"{q}.convs{k}")
                    groups.append(sp)
                groups.append(y)
            y = b.conv(b.cat(*groups, name=f"{q}.cat"), 1, 1, 0, name=f"{q}.conv3")
            if i == 0:
                short = b.pool(x, st, st, 0, ceil_mode=True, name=f"{q}.down_pool",
                               kind="avgpool") if st != 1 else x
                short = b.conv(short, 1, 1, 0, name=f"{q}.downsample")
            else:
                short = x
            x = b.add_(y, short, name=f"{q}.add")
        outs.append(x)
    return outs


#: mmpretrain ConvNeXt blocks per stage, by arch name
CONVNEXT_DEPTHS = {"atto": (2, 2, 6, 2), "femto": (2, 2, 6, 2), "pico": (2, 2, 6, 2),
                   "nano": (2, 2, 8, 2), "tiny": (3, 3, 9, 3), "small": (3, 3, 27, 3),
                   "base": (3, 3, 27, 3), "large": (3, 3, 27, 3), "xlarge": (3, 3, 27, 3),
                   "huge": (3, 3, 27, 3)}


def convnext(b: GraphBuilder, x: str, depths: Sequence[int], stem_patch: int = 4,
             kernel: int = 7, grn: bool = False, prefix: str = "backbone.") -> list[str]:
    """mmpretrain ``ConvNeXt``: a ``stem_patch`` x ``stem_patch`` patchify conv, then per stage a
    2x2 stride-2 conv (not before the first) and blocks of a depthwise 7x7 (padding 3) + per-pixel
    LayerNorm + two 1x1s with a residual. ConvNeXt V2's GRN normalises by a whole-map L2 norm
    (``use_grn``): global context."""
    p = prefix
    x = b.conv(x, stem_patch, stem_patch, 0, name=f"{p}stem")
    outs = []
    for s, n in enumerate(depths):
        if s > 0:
            x = b.conv(x, 2, 2, 0, name=f"{p}downsample{s}")
        for i in range(n):
            q = f"{p}stages.{s}.{i}"
            y = b.conv(x, kernel, 1, kernel // 2, name=f"{q}.dwconv")
            y = b.conv(y, 1, 1, 0, name=f"{q}.pwconv1")
            if grn:
                y = b.pointwise(y, "grn", global_context=True, name=f"{q}.grn")
            y = b.conv(y, 1, 1, 0, name=f"{q}.pwconv2")
            x = b.add_(x, y, name=f"{q}.add")
        outs.append(x)
    return outs


def ct_resnet_neck(b: GraphBuilder, x: str, kernels: Sequence[int], prefix: str = "neck."
                   ) -> str:
    """``CTResNetNeck``: per stage a 3x3 conv (DCNv2 with ``use_dcn``) and a transposed conv
    (kernel k, stride 2, padding 1): with k = 4 each doubles the map."""
    for i, k in enumerate(kernels):
        x = b.conv(x, 3, 1, 1, name=f"{prefix}conv{i}")
        x = b.transposed(x, int(k), 2, 1, name=f"{prefix}deconv{i}")
    return x


__all__ = ["CONVNEXT_DEPTHS", "CSPSpec", "CSP_ARCH", "convnext", "csp_backbone", "csp_pafpn",
           "ct_resnet_neck", "res2net"]
