"""Block builders for Ultralytics' own modules (YOLOv8 … YOLO26, YOLOv9/v10 blocks, RT-DETR).

Each builder adds a small subgraph for one yaml row and returns its output node. Only the spatial
geometry matters to the RF engine, so each block is written as what it does to a feature map,
read from ``ultralytics/nn/modules`` (8.4): which convolutions, with which kernel, stride and
padding, run on which branch, and where branches are concatenated or added. Channel splits
(``chunk``) are spatially the identity, so a split followed by a concat of the pieces is the union
of the branches' RFs, which is what the engine computes for a concat.

Attention is not a window. ``Attention`` (PSA, C2PSA, C3k2 with ``attn``), AIFI's transformer
encoder and A2C2f's area attention mix every cell of the map (or of a stripe of rows: see
``_aattn``) with every other: they become a ``Pointwise`` node with ``global_context=True`` (the
local RF of the cell itself plus a flag), added to their local convolutions (the 3x3 or 7x7
positional-encoding conv ``pe``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anchorfit.formats.ultralytics_rows import Ctx

#: Conv-like padding: Ultralytics' ``autopad`` ('same' for odd kernels, k_eff // 2 in general).


def autopad(k: int | Sequence[int], p: Any = None, d: int = 1) -> Any:
    """Ultralytics' autopad: the effective kernel d*(k-1)+1, halved (floor), when p is None."""
    if p is not None:
        return p
    if isinstance(k, (list, tuple)):
        return [(d * (x - 1) + 1) // 2 for x in k]
    return (d * (k - 1) + 1) // 2


def conv(c: Ctx, x: str, p: str, k: Any = 1, s: Any = 1, pad: Any = None, d: int = 1) -> str:
    """``Conv`` (conv + BN + act): one window."""
    return c.b.conv(x, k, s, autopad(k, pad, d), dilation=d, name=p)


def bottleneck(c: Ctx, x: str, p: str, add: bool, k: Sequence[Any] = (3, 3)) -> str:
    """Ultralytics ``Bottleneck``: cv1 k[0], cv2 k[1] (default 3x3 and 3x3, unlike YOLOv5's
    1x1 then 3x3), residual when ``shortcut and c1 == c2``."""
    y = conv(c, x, f"{p}.cv1", k[0])
    y = conv(c, y, f"{p}.cv2", k[1])
    return c.b.add_(x, y, name=f"{p}.add") if add else y


def rep_conv(c: Ctx, x: str, p: str, s: int = 1) -> str:
    """``RepConv``: a 3x3 and a 1x1 branch added (fused to one 3x3 at deploy)."""
    a = conv(c, x, f"{p}.conv1", 3, s, 1)
    b = conv(c, x, f"{p}.conv2", 1, s, 0)
    return c.b.add_(a, b, name=f"{p}.add")


def c3_like(c: Ctx, x: str, p: str, inner: Any) -> str:
    """C3 skeleton: cv1 → m ; cv2 ; cv3(cat). ``inner(c, y, prefix)`` builds m."""
    y = inner(conv(c, x, f"{p}.cv1", 1), f"{p}.m")
    z = conv(c, x, f"{p}.cv2", 1)
    return conv(c, c.b.cat(y, z, name=f"{p}.cat"), f"{p}.cv3", 1)


def c3k(c: Ctx, x: str, p: str, n: int = 2, shortcut: bool = True, k: int = 3) -> str:
    """``C3k``: a C3 whose bottlenecks are k x k then k x k (e=1, so the residual is kept)."""
    def inner(y: str, q: str) -> str:
        for i in range(n):
            y = bottleneck(c, y, f"{q}.{i}", shortcut, (k, k))
        return y
    return c3_like(c, x, p, inner)


def c2f(c: Ctx, x: str, p: str, n: int, block: Any) -> str:
    """C2f skeleton: cv1, split in two, n blocks chained on the second half, concat of all, cv2."""
    y = conv(c, x, f"{p}.cv1", 1)
    outs = [y]
    for i in range(n):
        outs.append(block(outs[-1], f"{p}.m.{i}"))
    return conv(c, c.b.cat(*outs, name=f"{p}.cat"), f"{p}.cv2", 1)


def c2(c: Ctx, x: str, p: str, n: int, shortcut: bool) -> str:
    """``C2``: cv1, split; n 3x3/3x3 bottlenecks on one half; concat with the other; cv2."""
    y = conv(c, x, f"{p}.cv1", 1)
    m = y
    for i in range(n):
        m = bottleneck(c, m, f"{p}.m.{i}", shortcut)
    return conv(c, c.b.cat(m, y, name=f"{p}.cat"), f"{p}.cv2", 1)


def attention(c: Ctx, x: str, p: str, pe_k: int = 3, kind: str = "attention") -> str:
    """``Attention``/``AAttn``: qkv 1x1; global attention over the map plus a depthwise
    positional conv ``pe`` (3x3 in PSA, 7x7 in A2C2f) on v; proj 1x1."""
    qkv = conv(c, x, f"{p}.qkv", 1)
    att = c.b.pointwise(qkv, kind, global_context=True, name=f"{p}.{kind}")
    pe = conv(c, qkv, f"{p}.pe", pe_k)
    c.global_context = True
    return conv(c, c.b.add_(att, pe, name=f"{p}.sum"), f"{p}.proj", 1)


def psa_block(c: Ctx, x: str, p: str, shortcut: bool = True) -> str:
    """``PSABlock``: x + attn(x), then x + ffn(x) (two 1x1 convs)."""
    a = attention(c, x, f"{p}.attn")
    x = c.b.add_(x, a, name=f"{p}.add1") if shortcut else a
    f = conv(c, conv(c, x, f"{p}.ffn.0", 1), f"{p}.ffn.1", 1)
    return c.b.add_(x, f, name=f"{p}.add2") if shortcut else f


def psa(c: Ctx, x: str, p: str) -> str:
    """``PSA`` (YOLOv10): cv1, split (a, b); b through one attention block; cat; cv2."""
    y = conv(c, x, f"{p}.cv1", 1)
    b = psa_block(c, y, p)
    return conv(c, c.b.cat(y, b, name=f"{p}.cat"), f"{p}.cv2", 1)


def c2psa(c: Ctx, x: str, p: str, n: int) -> str:
    """``C2PSA`` (YOLO11/26): cv1, split; n PSABlocks on one half; cat; cv2."""
    y = conv(c, x, f"{p}.cv1", 1)
    b = y
    for i in range(n):
        b = psa_block(c, b, f"{p}.m.{i}")
    return conv(c, c.b.cat(y, b, name=f"{p}.cat"), f"{p}.cv2", 1)


def c3k2(c: Ctx, x: str, p: str, n: int, use_c3k: bool, attn: bool, shortcut: bool) -> str:
    """``C3k2``: a C2f whose blocks are C3k (``c3k``), Bottleneck + PSABlock (``attn``, YOLO26)
    or a plain 3x3/3x3 Bottleneck."""
    def block(y: str, q: str) -> str:
        if attn:
            return psa_block(c, bottleneck(c, y, f"{q}.0", shortcut), f"{q}.1")
        if use_c3k:
            return c3k(c, y, q, 2, shortcut)
        return bottleneck(c, y, q, shortcut)
    return c2f(c, x, p, n, block)


def rep_vgg_dw(c: Ctx, x: str, p: str) -> str:
    """``RepVGGDW``: depthwise 7x7 (p3) and 3x3 (p1) added."""
    a = conv(c, x, f"{p}.conv", 7, 1, 3)
    b = conv(c, x, f"{p}.conv1", 3, 1, 1)
    return c.b.add_(a, b, name=f"{p}.add")


def cib(c: Ctx, x: str, p: str, shortcut: bool, lk: bool) -> str:
    """``CIB``: dw3x3, 1x1, (RepVGGDW if lk else dw3x3), 1x1, dw3x3; residual (c1 == c2 here)."""
    y = conv(c, x, f"{p}.cv1.0", 3)
    y = conv(c, y, f"{p}.cv1.1", 1)
    y = rep_vgg_dw(c, y, f"{p}.cv1.2") if lk else conv(c, y, f"{p}.cv1.2", 3)
    y = conv(c, y, f"{p}.cv1.3", 1)
    y = conv(c, y, f"{p}.cv1.4", 3)
    return c.b.add_(x, y, name=f"{p}.add") if shortcut else y


def sppf(c: Ctx, x: str, p: str, k: int, n: int, add: bool) -> str:
    """``SPPF``: cv1, n chained stride-1 k x k max-pools, cat, cv2 (+ x in YOLO26)."""
    y = conv(c, x, f"{p}.cv1", 1)
    chain = [y]
    for i in range(n):
        chain.append(c.b.pool(chain[-1], k, 1, k // 2, name=f"{p}.m.{i}", kind="maxpool"))
    out = conv(c, c.b.cat(*chain, name=f"{p}.cat"), f"{p}.cv2", 1)
    return c.b.add_(out, x, name=f"{p}.add") if add else out


def sppelan(c: Ctx, x: str, p: str, k: int = 5) -> str:
    """``SPPELAN`` (YOLOv9): cv1, three chained k x k max-pools, cat of all four, cv5."""
    y = conv(c, x, f"{p}.cv1", 1)
    chain = [y]
    for name in ("cv2", "cv3", "cv4"):
        chain.append(c.b.pool(chain[-1], k, 1, k // 2, name=f"{p}.{name}", kind="maxpool"))
    return conv(c, c.b.cat(*chain, name=f"{p}.cat"), f"{p}.cv5", 1)


def rep_csp(c: Ctx, x: str, p: str, n: int) -> str:
    """``RepCSP``: a C3 of RepBottlenecks (RepConv 3x3, then Conv 3x3, residual)."""
    def inner(y: str, q: str) -> str:
        for i in range(n):
            r = rep_conv(c, y, f"{q}.{i}.cv1")
            r = conv(c, r, f"{q}.{i}.cv2", 3)
            y = c.b.add_(y, r, name=f"{q}.{i}.add")
        return y
    return c3_like(c, x, p, inner)


def rep_ncsp_elan4(c: Ctx, x: str, p: str, n: int) -> str:
    """``RepNCSPELAN4``: cv1, split; cv2 = RepCSP + 3x3 on one half, cv3 = RepCSP + 3x3 on
    that; cat(cv1 halves, cv2, cv3); cv4."""
    y = conv(c, x, f"{p}.cv1", 1)
    a = conv(c, rep_csp(c, y, f"{p}.cv2.0", n), f"{p}.cv2.1", 3)
    b = conv(c, rep_csp(c, a, f"{p}.cv3.0", n), f"{p}.cv3.1", 3)
    return conv(c, c.b.cat(y, a, b, name=f"{p}.cat"), f"{p}.cv4", 1)


def elan1(c: Ctx, x: str, p: str) -> str:
    """``ELAN1``: RepNCSPELAN4 with plain 3x3 convs for cv2 and cv3."""
    y = conv(c, x, f"{p}.cv1", 1)
    a = conv(c, y, f"{p}.cv2", 3)
    b = conv(c, a, f"{p}.cv3", 3)
    return conv(c, c.b.cat(y, a, b, name=f"{p}.cat"), f"{p}.cv4", 1)


def avg2(c: Ctx, x: str, p: str) -> str:
    """``avg_pool2d(x, 2, 1, 0)``: the 2x2 stride-1 average before ADown/AConv (map: -1)."""
    return c.b.pool(x, 2, 1, 0, name=p, kind="avgpool")


def adown(c: Ctx, x: str, p: str) -> str:
    """``ADown``: 2x2 s1 average; half → 3x3 s2 p1 conv, half → 3x3 s2 p1 max-pool, 1x1; cat."""
    y = avg2(c, x, f"{p}.avg")
    a = conv(c, y, f"{p}.cv1", 3, 2, 1)
    b = conv(c, c.b.pool(y, 3, 2, 1, name=f"{p}.max", kind="maxpool"), f"{p}.cv2", 1, 1, 0)
    return c.b.cat(a, b, name=f"{p}.cat")


def aconv(c: Ctx, x: str, p: str) -> str:
    """``AConv``: 2x2 s1 average then a 3x3 s2 p1 conv."""
    return conv(c, avg2(c, x, f"{p}.avg"), f"{p}.cv1", 3, 2, 1)


def scdown(c: Ctx, x: str, p: str, k: int, s: int) -> str:
    """``SCDown`` (YOLOv10): 1x1 then a depthwise k x k stride-s conv."""
    return conv(c, conv(c, x, f"{p}.cv1", 1), f"{p}.cv2", k, s)


def a2c2f(c: Ctx, x: str, p: str, n: int, a2: bool, area: int, residual: bool,
          shortcut: bool = True) -> str:
    """``A2C2f`` (YOLO12): cv1; n blocks chained (two ABlocks of area attention, or a C3k);
    cat of cv1 and every block; cv2; plus x when ``a2 and residual`` (layer scale gamma)."""
    y = conv(c, x, f"{p}.cv1", 1)
    outs = [y]
    for i in range(n):
        q = f"{p}.m.{i}"
        if a2:
            z = outs[-1]
            for j in range(2):
                z = ablock(c, z, f"{q}.{j}", area)
            outs.append(z)
        else:
            outs.append(c3k(c, outs[-1], q, 2, shortcut))
    out = conv(c, c.b.cat(*outs, name=f"{p}.cat"), f"{p}.cv2", 1)
    return c.b.add_(x, out, name=f"{p}.add") if a2 and residual else out


def ablock(c: Ctx, x: str, p: str, area: int) -> str:
    """``ABlock``: x + AAttn(x) (7x7 positional conv), then x + mlp(x) (two 1x1 convs).

    Area attention with ``area > 1`` splits the flattened map into ``area`` runs of H*W/area
    cells, i.e. horizontal stripes of H/area full rows, fixed to the image (not a sliding
    window): a cell sees its whole stripe, so it is global along x and image-anchored along y;
    the engine has no such op, so it is recorded as global context like ``area = 1``.
    """
    a = attention(c, x, f"{p}.attn", 7, "area_attention" if area > 1 else "attention")
    x = c.b.add_(x, a, name=f"{p}.add1")
    f = conv(c, conv(c, x, f"{p}.mlp.0", 1), f"{p}.mlp.1", 1)
    return c.b.add_(x, f, name=f"{p}.add2")


def hg_stem(c: Ctx, x: str, p: str) -> str:
    """``HGStem`` (PP-HGNetV2, RT-DETR-l/x): 3x3 s2; pad right/bottom 1; a 2x2 → pad → 2x2
    branch and a 2x2 s1 max-pool branch; cat; 3x3 s2; 1x1."""
    b = c.b
    y = conv(c, x, f"{p}.stem1", 3, 2)
    y = b.pad(y, 0, 1, 0, 1, name=f"{p}.pad1")
    z = conv(c, y, f"{p}.stem2a", 2, 1, 0)
    z = b.pad(z, 0, 1, 0, 1, name=f"{p}.pad2")
    z = conv(c, z, f"{p}.stem2b", 2, 1, 0)
    m = b.pool(y, 2, 1, 0, ceil_mode=True, name=f"{p}.pool", kind="maxpool")
    y = conv(c, b.cat(m, z, name=f"{p}.cat"), f"{p}.stem3", 3, 2)
    return conv(c, y, f"{p}.stem4", 1)


def hg_block(c: Ctx, x: str, p: str, k: int, n: int, light: bool, add: bool) -> str:
    """``HGBlock``: n chained convs (k x k, or LightConv = 1x1 then depthwise k x k); cat of the
    input and every conv; squeeze 1x1; excitation 1x1; residual when asked and c1 == c2."""
    outs = [x]
    for i in range(n):
        q = f"{p}.m.{i}"
        if light:
            outs.append(conv(c, conv(c, outs[-1], f"{q}.conv1", 1), f"{q}.conv2", k))
        else:
            outs.append(conv(c, outs[-1], q, k))
    y = conv(c, c.b.cat(*outs, name=f"{p}.cat"), f"{p}.sc", 1)
    y = conv(c, y, f"{p}.ec", 1)
    return c.b.add_(y, x, name=f"{p}.add") if add else y


def resnet_layer(c: Ctx, x: str, p: str, c1: int, c2: int, s: int, first: bool, n: int,
                 e: int = 4) -> str:
    """``ResNetLayer``: the ResNet stem (7x7 s2 p3, max-pool 3 s2 p1) or n bottleneck blocks
    (1x1, 3x3 stride s p1, 1x1, plus a 1x1 stride-s projection when the shape changes)."""
    if first:
        y = conv(c, x, f"{p}.layer.0", 7, 2, 3)
        return c.b.pool(y, 3, 2, 1, name=f"{p}.layer.1", kind="maxpool")
    y, cin = x, c1
    for i in range(n):
        q, stride = f"{p}.layer.{i}", s if i == 0 else 1
        r = conv(c, y, f"{q}.cv1", 1)
        r = conv(c, r, f"{q}.cv2", 3, stride, 1)
        r = conv(c, r, f"{q}.cv3", 1)
        short = y
        if stride != 1 or cin != e * c2:
            short = conv(c, y, f"{q}.shortcut", 1, stride, 0)
        y, cin = c.b.add_(r, short, name=f"{q}.add"), e * c2
    return y


def rep_c3(c: Ctx, x: str, p: str, n: int) -> str:
    """``RepC3``: cv1 → n RepConvs, plus cv2 (1x1) on the input, added; cv3 1x1 (or identity)."""
    y = conv(c, x, f"{p}.cv1", 1)
    for i in range(n):
        y = rep_conv(c, y, f"{p}.m.{i}")
    z = conv(c, x, f"{p}.cv2", 1)
    return c.b.add_(y, z, name=f"{p}.add")


def aifi(c: Ctx, x: str, p: str) -> str:
    """``AIFI``: a transformer encoder layer over the flattened map (every cell attends to every
    cell): global context, local RF of the cell itself."""
    c.global_context = True
    return c.b.pointwise(x, "transformer", global_context=True, name=p)


__all__ = ["a2c2f", "adown", "aconv", "aifi", "autopad", "bottleneck", "c2", "c2f", "c2psa",
           "c3k", "c3k2", "cib", "conv", "elan1", "hg_block", "hg_stem", "psa", "rep_c3",
           "rep_ncsp_elan4", "rep_vgg_dw", "resnet_layer", "scdown", "sppelan", "sppf"]
