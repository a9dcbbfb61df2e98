"""The exact engine against published gold numbers (research/rf_tools.md §2)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from anchorfit.errors import AnchorfitError
from anchorfit.rf import GraphBuilder, analyze, extend, head_window


def rsp(node):
    """(r, S, P) of a square, aligned node."""
    assert node.rf[0] == node.rf[1] and node.stride[0] == node.stride[1]
    return node.rf[0], node.stride[0], node.padding[0]


# --------------------------------------------------------------------------- Google's 9 networks


def google_base(b: GraphBuilder, pools: bool = False, same: bool = False) -> str:
    """Network 1 (or 2 with max-pools): out = L1 + L3, the Distill 'aligned' example."""
    x = b.input()
    pad = "same" if same else 0
    l1 = b.conv(x, 1, 4, pad, name="L1")
    l2 = x if same else b.pad(x, 1, 0, 1, 0, name="L2_pad")
    if pools:
        l2 = b.pool(l2, 3, 2, name="L2")
        l3 = b.pool(l2, 1, 2, name="L3")
    else:
        l2 = b.conv(l2, 3, 2, pad, name="L2")
        l3 = b.conv(l2, 1, 2, pad, name="L3")
    return b.add_(l1, l3, name="L4")


@pytest.mark.parametrize("pools", [False, True])
def test_google_networks_1_and_2(pools):
    b = GraphBuilder()
    google_base(b, pools)
    node = analyze(b.build(), 8)["L4"]
    assert rsp(node) == (3, 4, 1)
    assert node.aligned


def test_google_network_3_is_misaligned_not_raised():
    b = GraphBuilder()
    x = b.input()
    left = b.conv(b.pad(x, 2, 1, 2, 1), 5, 2)
    right = b.conv(b.conv(x, 3, 1), 3, 1)
    b.add_(left, right, name="out")
    node = analyze(b.build(), 8)["out"]
    assert not node.aligned
    assert node.stride_conflict
    # cell o is the union of [-2 + 2o, 2 + 2o] (left) and [o, o + 4] (right), worked by hand
    assert [node.y.start(o) for o in range(4)] == [-2, 0, 2, 3]
    assert [node.y.end(o) for o in range(4)] == [4, 5, 6, 8]
    assert node.rf == (7, 7)


def google_network_4(size: int):
    b = GraphBuilder()
    x = b.input()
    l1 = b.conv(x, 1, 4, name="L1")
    r = b.conv(x, 3, 2, "same", name="R1")
    r = b.conv(r, 1, 2, "same", name="R2")
    b.add_(l1, r, name="out")
    return analyze(b.build(), size)["out"]


def test_google_network_4_same_padding_depends_on_input_parity():
    at9 = google_network_4(9)
    assert rsp(at9) == (3, 4, 1) and at9.aligned
    at8 = google_network_4(8)  # SAME puts the pad on the right for even sizes: centres differ
    assert not at8.aligned
    # left sees [0, 0] (centre 0), right [0, 2] (centre 1): the union is [0, 2]
    assert (at8.y.start(0), at8.y.end(0)) == (0, 2)


def test_google_network_5_non_square():
    b = GraphBuilder()
    x = b.input()
    x = b.conv(x, (3, 5), 2)
    b.conv(x, (3, 1), 2, name="out")
    node = analyze(b.build(), (32, 48))["out"]
    assert node.rf == (7, 5)
    assert node.stride == (4, 4)
    assert node.padding == (0, 0)
    assert node.feature_size == (7, 11)


def test_google_network_6_dropout_is_pointwise():
    b = GraphBuilder()
    x = b.input()
    l1 = b.conv(x, 1, 4)
    l2 = b.conv(b.pad(x, 1, 0, 1, 0), 3, 2)
    l3 = b.conv(b.pointwise(l2, "dropout"), 1, 2)
    b.add_(l1, l3, name="out")
    assert rsp(analyze(b.build(), 8)["out"]) == (3, 4, 1)


@pytest.mark.parametrize("same", [False, True])
def test_google_networks_8_and_9_defeat_naive_dfs(same):
    b = GraphBuilder()
    l4 = google_base(b, same=same)
    pad = "same" if same else 0
    l5 = b.conv(l4, 1, 2, pad, name="L5")
    l6 = b.conv(l4 if same else b.pad(l4, 1, 0, 1, 0), 3, 2, pad, name="L6")
    b.add_(l5, l6, name="out")
    node = analyze(b.build(), 17 if same else 8)["out"]
    assert rsp(node) == (11, 8, 5)
    assert node.aligned


# --------------------------------------------------------------------------- Distill table


def slim_vgg(b: GraphBuilder, blocks: list[int]) -> dict[str, str]:
    names = {}
    x = b.input()
    for i, reps in enumerate(blocks, start=1):
        for j in range(1, reps + 1):
            x = b.conv(x, 3, 1, 1, name=f"conv{i}_{j}")
            names[f"conv{i}_{j}"] = x
        x = b.pool(x, 2, 2, name=f"pool{i}")
        names[f"pool{i}"] = x
    return names


VGG16_DISTILL = {  # r / S / P per endpoint (Distill / google receptive_field table)
    "conv1_1": (3, 1, 1), "pool1": (6, 2, 2), "conv2_1": (10, 2, 4), "pool2": (16, 4, 6),
    "conv3_1": (24, 4, 10), "conv3_2": (32, 4, 14), "pool3": (44, 8, 18), "conv4_1": (60, 8, 26),
    "conv4_2": (76, 8, 34), "pool4": (100, 16, 42), "conv5_1": (132, 16, 58),
    "conv5_2": (164, 16, 74), "pool5": (212, 32, 90),
}
VGG_A_DISTILL = {
    "conv1_1": (3, 1, 1), "pool1": (4, 2, 1), "conv2_1": (8, 2, 3), "pool2": (10, 4, 3),
    "conv3_1": (18, 4, 7), "conv3_2": (26, 4, 11), "pool3": (30, 8, 11), "conv4_1": (46, 8, 19),
    "conv4_2": (62, 8, 27), "pool4": (70, 16, 27), "conv5_1": (102, 16, 43),
    "conv5_2": (134, 16, 59), "pool5": (150, 32, 59),
}


@pytest.mark.parametrize("blocks, gold", [([2, 2, 3, 3, 3], VGG16_DISTILL),
                                          ([1, 1, 2, 2, 2], VGG_A_DISTILL)])
def test_distill_vgg_columns(blocks, gold):
    b = GraphBuilder()
    slim_vgg(b, blocks)
    analysis = analyze(b.build(), 224)
    got = {name: rsp(analysis[name]) for name in gold}
    assert got == gold


def test_distill_alexnet_v2_column():
    b = GraphBuilder()
    x = b.input()
    c1 = b.conv(x, 11, 4, 0, name="conv1")
    p1 = b.pool(c1, 3, 2, name="pool1")
    c2 = b.conv(p1, 5, 1, 2, name="conv2")
    p2 = b.pool(c2, 3, 2, name="pool2")
    c3 = b.conv(p2, 3, 1, 1, name="conv3")
    c4 = b.conv(c3, 3, 1, 1, name="conv4")
    c5 = b.conv(c4, 3, 1, 1, name="conv5")
    b.pool(c5, 3, 2, name="pool5")
    a = analyze(b.build(), 224)
    got = [rsp(a[n]) for n in ["conv1", "pool1", "conv2", "conv3", "conv4", "conv5", "pool5"]]
    assert got == [(11, 4, 0), (19, 8, 0), (51, 8, 16), (99, 16, 32), (131, 16, 48),
                   (163, 16, 64), (195, 32, 64)]


def test_vgg16_centres_are_half_integers_after_2x2_pools():
    b = GraphBuilder()
    slim_vgg(b, [2, 2, 3, 3, 3])
    a = analyze(b.build(), 224)
    assert a["conv4_3"].center == (Fraction(7, 2), Fraction(7, 2))
    assert a["pool5"].center == (Fraction(31, 2), Fraction(31, 2))


# --------------------------------------------------------------------------- S3FD Table 1


def s3fd_graph():
    b = GraphBuilder("s3fd")
    names = slim_vgg(b, [2, 2, 3, 3, 3])
    fc6 = b.conv(names["pool5"], 3, 1, 3, name="fc6")
    fc7 = b.conv(fc6, 1, 1, 0, name="fc7")
    c6 = b.conv(b.conv(fc7, 1, name="conv6_1"), 3, 2, 1, name="conv6_2")
    b.conv(b.conv(c6, 1, name="conv7_1"), 3, 2, 1, name="conv7_2")
    return b.build()


S3FD_LEVELS = ["conv3_3", "conv4_3", "conv5_3", "fc7", "conv6_2", "conv7_2"]


def test_s3fd_table1_feature_and_head_rf():
    a = analyze(s3fd_graph(), 640)
    levels = [a[n] for n in S3FD_LEVELS]
    assert [lv.rf[0] for lv in levels] == [40, 92, 196, 276, 340, 468]
    assert [lv.stride[0] for lv in levels] == [4, 8, 16, 32, 64, 128]
    assert [lv.padding[0] for lv in levels] == [18, 42, 90, 186, 218, 282]
    heads = [extend(lv, head_window(3)) for lv in levels]
    assert [h.rf[0] for h in heads] == [48, 108, 228, 340, 468, 724]
    # fc6's pad 3 puts fc7's first RF centre two cells out
    assert a["fc7"].center[0] == Fraction(-97, 2)
    assert a["fc7"].feature_size == (24, 24)


# --------------------------------------------------------------------------- fractional strides


def test_transposed_conv_phase_sequence():
    b = GraphBuilder()
    x = b.conv(b.input(), 3, 2, 1)
    b.transposed(x, 4, 2, 1, name="up")
    node = analyze(b.build(), 128)["up"]
    assert [node.y.start(o) for o in range(30, 35)] == [27, 29, 29, 31, 31]
    assert all(node.y.end(o) - node.y.start(o) + 1 == 5 for o in range(30, 35))
    assert node.rf == (5, 5) and node.stride == (1, 1) and node.y.period == 2
    assert not node.aligned  # neighbours share an RF: not shift-invariant
    assert node.feature_size == (128, 128)


@pytest.mark.parametrize("mode, starts, r", [
    ("nearest", [27, 29, 29, 31, 31], 5),
    # bilinear (align_corners=False) reads two source cells per output cell, both with non-zero
    # weight (0.25/0.75), so the RF is 7, not nearest's 5; the gradient probe agrees
    # (tests/test_rf_probe.py). research/rf_tools.md §3.8 says "the same extents": it is not.
    ("bilinear", [27, 27, 29, 29, 31], 7),
])
def test_upsample_phase_sequence(mode, starts, r):
    b = GraphBuilder()
    x = b.conv(b.input(), 3, 2, 1)
    x = b.upsample(x, 2, mode)
    b.conv(x, 3, 1, 1, name="out")
    node = analyze(b.build(), 128)["out"]
    assert [node.y.start(o) for o in range(30, 35)] == starts
    assert node.rf == (r, r) and not node.aligned


def test_upsample_then_stride_restores_period_one():
    b = GraphBuilder()
    x = b.conv(b.input(), 3, 2, 1)
    x = b.upsample(x, 2)
    b.conv(x, 2, 2, name="down")
    node = analyze(b.build(), 64)["down"]
    assert node.y.period == 1 and node.stride == (2, 2)


def test_pixel_unshuffle_is_a_k_f_s_f_window_and_focus_concat_is_flagged():
    b = GraphBuilder()
    x = b.input()
    parts = [b.slice(x, (i, j), (2, 2)) for i, j in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    focus = b.cat(*parts, name="focus")
    node = analyze(b.build(), 64)["focus"]
    assert node.rf == (2, 2) and node.stride == (2, 2) and node.padding == (0, 0)
    assert not node.aligned  # the four slices disagree on centre, the union is still exact
    b2 = GraphBuilder()
    from anchorfit.rf.graph import PixelShuffle

    b2.add(PixelShuffle(2, unshuffle=True), [b2.input()], name="s2d")
    s2d = analyze(b2.build(), 64)["s2d"]
    assert s2d.rf == (2, 2) and s2d.stride == (2, 2) and s2d.aligned


def test_dilation_enters_rf_and_centre():
    b = GraphBuilder()
    b.conv(b.input(), 3, 1, 0, dilation=(2, 3), name="d")
    node = analyze(b.build(), 32)["d"]
    assert node.rf == (5, 7)
    assert node.center == (2, 3)


def test_ceil_mode_changes_size_not_geometry():
    b = GraphBuilder()
    x = b.input()
    b.pool(x, 2, 2, ceil_mode=True, name="ceil")
    b.pool(x, 2, 2, name="floor")
    a = analyze(b.build(), 75)
    assert a["ceil"].feature_size == (38, 38) and a["floor"].feature_size == (37, 37)
    assert a["ceil"].rf == a["floor"].rf and a["ceil"].padding == a["floor"].padding


def test_global_context_flag_keeps_local_rf():
    b = GraphBuilder()
    x = b.conv(b.input(), 3, 1, 1)
    g = b.global_pool(x)
    gated = b.merge([x, g], "mul", name="se")
    b.pointwise(b.conv(gated, 3, 1, 1, name="after"), "GroupNorm", global_context=True, name="gn")
    a = analyze(b.build(), 32)
    assert a["se"].global_context and a["se"].rf == (3, 3)
    assert a["after"].rf == (5, 5) and a["gn"].global_context


def test_merge_of_different_sizes_is_a_clear_error():
    b = GraphBuilder()
    x = b.input()
    b.add_(b.conv(x, 3, 2), b.conv(x, 3, 1), name="bad")
    with pytest.raises(AnchorfitError, match="different sizes"):
        analyze(b.build(), 16)


def test_window_larger_than_input_names_the_layer():
    b = GraphBuilder()
    b.conv(b.input(), 7, 1, 0, name="big")
    with pytest.raises(AnchorfitError, match="'big'.*larger --input"):
        analyze(b.build(), 5)


def test_negative_padding_crops():
    b = GraphBuilder()
    x = b.pad(b.input(), -2, -2, -1, -1, name="crop")
    b.conv(x, 3, 2, 0, name="c")
    node = analyze(b.build(), 20)["c"]
    assert node.padding == (-2, -1) and node.feature_size == (7, 8)


def test_ten_thousand_node_dag_is_linear_time():
    b = GraphBuilder()
    x = b.input()
    for i in range(5000):
        y = b.conv(x, 3, 1, 1)
        x = b.add_(x, y)
    a = analyze(b.build(), 16)
    assert len(a) == 10001
    assert a[x].rf == (10001, 10001)
