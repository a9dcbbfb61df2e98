"""The levels part of an anchorfit spec: ``levels:``, ``assigner:`` and ``resize:`` into
``Level``s with anchors (sizes x ratios, octave scales, SSD priors, explicit boxes, densified),
anchor-free ranges, heads and assigners."""

from __future__ import annotations

import math
from typing import Any

from anchorfit.detector import RANGE_MEASURES, Anchor, Assigner, Level
from anchorfit.errors import suggest
from anchorfit.safeinput import MAX_KERNEL
from anchorfit.formats.anchors import anchors_from_sizes, densified, ssd_anchors
from anchorfit.formats.base import head_convs
from anchorfit.formats.parsers.yamlsrc import YMap, line_of
from anchorfit.formats.validate import (Where, integer, non_negative_finite, ordered,
                                        positive_finite, positive_list)
from anchorfit.formats.spec_values import (
    repeats,
    Scope,
    SpecContext,
    float_list,
    int_pair,
    int_value,
    resolve_ref,
)

LEVEL_KEYS = {"name", "from", "node", "anchors", "sizes", "scales", "octave_base_scale",
              "scales_per_octave", "ratios", "ssd", "anchor_free", "center", "step", "head",
              "assigner", "densify", "mask", "feature_size", "range_measure"}
ASSIGNER_KEYS = {"kind", "pos", "neg", "pos_iou", "neg_iou", "anchor_t", "ignore", "ignore_iou"}
CENTERS = {"cell-center": 0.5, "top-left": 0.0}


def level(ctx: SpecContext, e: Any, scope: Scope, default: Assigner, index: int) -> Level:
    if not isinstance(e, YMap):
        raise ctx.error("each level is a mapping such as {name: P3, from: conv3, sizes: [32]}",
                        e if line_of(e) else None)
    extra = set(e) - LEVEL_KEYS
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"level does not take {key!r}", e, key, hint=suggest(key, LEVEL_KEYS))
    ref_key = "from" if "from" in e else "node" if "node" in e else None
    if ref_key is None:
        raise ctx.error("level has no 'from' (the layer whose feature map it reads)", e)
    node = resolve_ref(ctx, scope, e[ref_key], _keyed(e, ref_key))
    name = str(e.get("name") or e[ref_key])
    step = _step(ctx, e)
    anchors = _anchors(ctx, e, step)
    center = str(e.get("center", "cell-center"))
    densify = e.get("densify")
    if densify:
        if not isinstance(densify, dict):
            raise ctx.error("'densify' maps an anchor size to its densification n (n x n "
                            "copies per cell)", e, "densify")
        anchors = _densify(ctx, e, anchors, densify, center)
        center = "explicit"
    elif center not in CENTERS and center != "explicit":
        raise ctx.error(f"unknown centre convention {center!r}", e, "center",
                        hint="cell-center ((i+0.5)*step) or top-left (i*step)")
    level = Level(name, node, step=step, anchors=anchors, center=center,  # type: ignore[arg-type]
                  center_offset=CENTERS.get(center, 0.5),
                  head=_head(ctx, e), assigner=assigner(ctx, e.get("assigner"), e, default))
    if "anchor_free" in e:
        lo, hi = float_list(ctx, e["anchor_free"], e, "anchor_free", 2)
        level.anchor_free_range = (lo, math.inf if hi < 0 else hi)
        level.range_measure = str(e.get("range_measure", "max-ltrb"))
        if level.range_measure not in RANGE_MEASURES:
            raise ctx.error(f"unknown range_measure {level.range_measure!r}", e, "range_measure",
                            hint=", ".join(RANGE_MEASURES))
    if "mask" in e:
        where = Where(ctx.path, line_of(e, "mask"), "mask")
        raw = e["mask"] if isinstance(e["mask"], list) else [e["mask"]]
        level.mask = [integer(v, where, minimum=0) for v in raw]
    if "feature_size" in e:
        level.feature_size = int_pair(ctx, e, "feature_size", None)
    if not level.anchors and level.anchor_free_range is None:
        raise ctx.error("level has no anchors", e, hint="give anchors, sizes (+ ratios), scales, "
                        "octave_base_scale, ssd, or anchor_free: [lo, hi]")
    return level


def _keyed(e: YMap, key: str) -> YMap:
    """A view of ``e`` whose 'from' line is ``key``'s line (for messages about node refs)."""
    view = YMap(e)
    view.line, view.key_lines = e.line, {**getattr(e, "key_lines", {}), "from": e.line_of(key)}
    return view


def _step(ctx: SpecContext, e: YMap) -> tuple[float, float] | None:
    if "step" not in e:
        return None
    sy, sx = _positive(ctx, float_list(ctx, e["step"], e, "step", 2, allow_scalar=True), e,
                       "step")
    return (sy, sx)


def _positive(ctx: SpecContext, values: list[float], e: YMap, key: str) -> list[float]:
    """Sizes, ratios, scales and steps: positive finite numbers (``formats.validate``)."""
    where = Where(ctx.path, line_of(e, key), key)
    return [positive_finite(v, where) for v in values]


def _anchors(ctx: SpecContext, e: YMap, step: tuple[float, float] | None) -> list[Anchor]:
    ratios = _positive(ctx, float_list(ctx, e.get("ratios", [1.0]), e, "ratios"), e, "ratios")
    if "anchors" in e:
        raw = e["anchors"]
        if not isinstance(raw, list) or not all(
                isinstance(a, list) and len(a) == 2 for a in raw):
            raise ctx.error("'anchors' is a list of [w, h] pairs", e, "anchors")
        where = Where(ctx.path, line_of(e, "anchors"), "anchors")
        return [Anchor(positive_finite(w, where), positive_finite(h, where)) for w, h in raw]
    if "sizes" in e:
        return anchors_from_sizes(_positive(ctx, float_list(ctx, e["sizes"], e, "sizes"), e,
                                            "sizes"), ratios)
    if "scales" in e or "octave_base_scale" in e:
        if step is None:
            raise ctx.error("'scales' multiply the level's step: give 'step'", e)
        base = math.sqrt(step[0] * step[1])
        if "scales" in e:
            scales = _positive(ctx, float_list(ctx, e["scales"], e, "scales"), e, "scales")
        else:
            octave = _positive(ctx, float_list(ctx, e["octave_base_scale"], e,
                                               "octave_base_scale", 1, allow_scalar=True), e,
                               "octave_base_scale")[0]
            per = int_value(ctx, e.get("scales_per_octave", 1), e, "scales_per_octave")
            scales = [octave * 2 ** (i / per) for i in range(per)]
        return anchors_from_sizes([base * s for s in scales], ratios)
    if "ssd" in e:
        ssd = e["ssd"]
        if not isinstance(ssd, dict) or "min" not in ssd:
            raise ctx.error("'ssd' is {min: size, max: size, ratios: [2, 3]}", e, "ssd")
        where = Where(ctx.path, line_of(e, "ssd"), "ssd")
        low = positive_finite(ssd["min"], where)
        high = None if ssd.get("max") is None else positive_finite(ssd["max"], where)
        if high is not None:
            ordered(low, high, where, "min", "max")
        ratios_ = ssd.get("ratios", [])
        return ssd_anchors(low, high, positive_list(ratios_, where) if ratios_ else [])
    return []


def _densify(ctx: SpecContext, e: YMap, anchors: list[Anchor], densify: dict[Any, Any],
             center: str) -> list[Anchor]:
    base = CENTERS.get(center, 0.5)
    out = []
    try:
        sizes = {float(k) for k in densify}
    except (TypeError, ValueError, OverflowError):
        raise ctx.error(f"'densify' maps anchor sizes (numbers) to densities, got "
                        f"{sorted(map(str, densify))!r}", e, "densify") from None
    for a in anchors:
        n = densify.get(a.w, densify.get(int(a.w) if float(a.w).is_integer() else a.w))
        if n is not None and a.w == a.h:
            out.append(densified(a, int_value(ctx, n, e, "densify")))
            sizes.discard(a.w)
        else:
            out.append(Anchor(a.w, a.h, ((base, base),)))
    if sizes:
        raise ctx.error(f"'densify' names sizes with no square anchor: {sorted(sizes)}", e,
                        "densify")
    return out


def _head(ctx: SpecContext, e: YMap) -> list[Any]:
    raw = e.get("head", [])
    if isinstance(raw, dict):
        k = _head_kernel(ctx, raw.get("k", 3), e)
        n = repeats(ctx, raw.get("n", 1), e, "head")
        return head_convs([k] * n)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return head_convs([_head_kernel(ctx, raw, e)])
    if not isinstance(raw, list):
        raise ctx.error("'head' is a kernel, a list of kernels or {k: 3, n: 4}", e, "head")
    return head_convs([_head_kernel(ctx, k, e) for k in raw])


def _head_kernel(ctx: SpecContext, k: Any, e: YMap) -> int | tuple[int, int]:
    """A head conv's kernel: a positive integer or a [ky, kx] pair of them."""
    pair = k if isinstance(k, (list, tuple)) else [k]
    if len(pair) not in (1, 2) or not all(isinstance(v, int) and not isinstance(v, bool)
                                          and 0 < v <= MAX_KERNEL for v in pair):
        raise ctx.error(f"head kernel {k!r}: expected a positive integer or [ky, kx] "
                        f"(at most {MAX_KERNEL})", e, "head")
    return pair[0] if len(pair) == 1 else (pair[0], pair[1])


def assigner(ctx: SpecContext, raw: Any, where: YMap, default: Assigner) -> Assigner:
    if raw is None:
        return default
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise ctx.error("'assigner' is a mapping such as {kind: iou, pos: 0.5, neg: 0.4}", where,
                        "assigner")
    extra = set(raw) - ASSIGNER_KEYS
    if extra:
        key = sorted(extra)[0]
        raise ctx.error(f"assigner does not take {key!r}", raw if line_of(raw) else where, key,
                        hint=suggest(key, ASSIGNER_KEYS))

    def get(*keys: str) -> Any:
        for k in keys:
            if k in raw:
                at = Where(ctx.path, line_of(raw, k) or line_of(where, "assigner"), k,
                           "assigner: ")
                return None if raw[k] is None else non_negative_finite(raw[k], at)
        return getattr(default, {"pos": "pos_iou", "neg": "neg_iou", "anchor_t": "anchor_t",
                                 "ignore": "ignore_iou"}[keys[0]])

    kind = str(raw.get("kind", default.kind))
    if kind != default.kind and "pos" not in raw and "pos_iou" not in raw:
        # a different kind does not inherit IoU thresholds it does not use
        base = Assigner(kind, None, None) if kind in ("anchor-free", "darknet", "yolo-ratio") \
            else Assigner(kind)
        default = base
    return Assigner(kind, get("pos", "pos_iou"), get("neg", "neg_iou"), get("anchor_t"),
                    get("ignore", "ignore_iou"))


def resize(ctx: SpecContext, raw: Any, doc: YMap) -> tuple[str, dict[str, Any]]:
    policies = ("letterbox", "stretch", "shortside", "fixed")
    if isinstance(raw, str):
        if raw not in policies:
            raise ctx.error(f"unknown resize policy {raw!r}", doc, "resize",
                            hint="one of " + ", ".join(policies))
        return raw, {}
    if isinstance(raw, dict) and raw.get("policy") in policies:
        return str(raw["policy"]), {k: v for k, v in raw.items() if k != "policy"}
    raise ctx.error("'resize' is letterbox, stretch, fixed or {policy: shortside, short: 800, "
                    "max: 1333}", doc, "resize")


__all__ = ["ASSIGNER_KEYS", "CENTERS", "LEVEL_KEYS", "assigner", "level", "resize"]
