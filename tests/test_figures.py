"""What the figures say, read from the matplotlib objects: titles, axis labels (with units),
legend entries, colours, and that legends sit outside the data.

Issue 13 listed what people misread: a ladder titled "anchor < ERF < RF" without an ERF, legends
over RF markers, level boundaries missing from the legend, "S64" printed three times, anchors all
one colour, "boxes (20000)" when 39,695 were used, undefined size buckets, ERF panels without
axis labels, absolute paths as titles and unnamed COCO 32/96 lines. Each test pins one of these.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_hex

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COCO8 = REPO / "tests/data/ultralytics_coco8/data.yaml"
YOLOV3 = REPO / "anchorfit/configs/yolov3.yaml"


def legend_labels(fig_or_ax) -> list[str]:
    legends = (fig_or_ax.legends if hasattr(fig_or_ax, "legends") else [])
    if hasattr(fig_or_ax, "get_legend") and fig_or_ax.get_legend() is not None:
        legends = [fig_or_ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def legend_outside(fig, ax) -> bool:
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    return legend.x0 >= ax.get_window_extent().x1


@pytest.fixture(scope="module")
def s3fd():
    from anchorfit import load

    return load.load_detector("s3fd", None)


@pytest.fixture(scope="module")
def coco8_wh(s3fd):
    from anchorfit.data.prepare import prepare_boxes, resize_spec_for

    prepared = prepare_boxes(str(COCO8), spec=resize_spec_for(s3fd, "letterbox", 0))
    return prepared.boxes.wh()


def test_ladder_without_erf_does_not_promise_one(s3fd):
    from anchorfit.design.plan import plan
    from anchorfit.report.figures.design import ladder

    fig = ladder(plan(s3fd))
    ax = fig.axes[0]
    assert ax.get_title() == "s3fd: anchor < RF per level (rule s3fd)"
    labels = legend_labels(ax)
    assert not any("ERF" in label for label in labels)
    assert "RF (feature map)" in labels and "stride" in labels
    assert "input px" in ax.get_ylabel() and ax.get_xlabel() == "detection level"
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "conv3_3\nstride 4"
    assert legend_outside(fig, ax)  # the legend covers no marker
    plt.close(fig)


def test_ladder_with_erf_keeps_anchors_visible(s3fd):
    from anchorfit.design.plan import ErfSize, plan
    from anchorfit.report.figures.design import LEVEL_COLOURS, ladder

    # ERF sizes equal to the anchors (4 x stride): the case where ERF markers hid the anchors
    erf = {lv.name: ErfSize(4.0 * float(lv.stride[0]), 3.5 * float(lv.stride[0]),
                            4.5 * float(lv.stride[0])) for lv in s3fd.levels}
    fig = ladder(plan(s3fd, erf=erf))
    ax = fig.axes[0]
    assert ax.get_title() == "s3fd: anchor < ERF < RF per level (rule s3fd)"
    assert "ERF, 4σ (95% CI)" in legend_labels(ax)
    anchor_lines = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata())]
    erf_x = [ln for ln in ax.get_lines() if ln.get_marker() == "D"][0].get_xdata()
    assert [float(ln.get_xdata()[0]) for ln in anchor_lines] == list(range(6))
    assert np.allclose(erf_x, np.arange(6) + 0.18)  # beside the anchor, not on it
    assert [to_hex(ln.get_markerfacecolor()) for ln in anchor_lines] == LEVEL_COLOURS[:6]
    plt.close(fig)


def test_box_scatter_legend_levels_and_subsample(s3fd, coco8_wh):
    from anchorfit.design.plan import plan
    from anchorfit.report.figures.design import LEVEL_COLOURS, box_scatter

    result = plan(s3fd)
    n = len(coco8_wh)
    fig = box_scatter(coco8_wh, {"planned": result.anchors_by_level()},
                      [lv.stride for lv in result.levels], max_points=10,
                      title="s3fd: boxes and planned anchors",
                      level_names=[lv.name for lv in result.levels])
    ax = fig.axes[0]
    labels = legend_labels(ax)
    assert labels[0] == f"boxes (shown 10 of {n})"
    assert labels[1] == "level boundary, sqrt(w·h) = 23, 45, 91, 181, 362 px"
    assert "anchors: planned" in labels
    assert labels[-6:] == ["conv3_3 (stride 4)", "conv4_3 (stride 8)", "conv5_3 (stride 16)",
                           "fc7 (stride 32)", "conv6_2 (stride 64)", "conv7_2 (stride 128)"]
    assert len(ax.texts) == 0  # no "S64" written into the data
    anchor_colours = [to_hex(c.get_facecolor()[0]) for c in ax.collections[1:7]]
    assert anchor_colours == LEVEL_COLOURS[:6]
    assert ax.get_xlabel() == "width, input px" and ax.get_ylabel() == "height, input px"
    assert legend_outside(fig, ax)
    plt.close(fig)


def test_box_scatter_says_shown_of_total(shipped_data):
    from anchorfit.data.prepare import prepare_boxes
    from anchorfit.data.boxes import ResizeSpec
    from anchorfit.report.figures.design import box_scatter

    coco = shipped_data / "annotations/coco128_cocojson/instances_train2017.json"
    wh = prepare_boxes(str(coco), spec=ResizeSpec(policy="none")).boxes.wh()
    fig = box_scatter(wh, {}, [8, 16, 32], max_points=500)
    assert legend_labels(fig.axes[0])[0] == f"boxes (shown 500 of {len(wh)})"
    assert len(wh) > 500
    plt.close(fig)


def test_recall_bars_define_the_buckets():
    from anchorfit.report.figures.design import grid_recall_by_size

    fig = grid_recall_by_size({"default": {"small": 0.4, "medium": 0.8, "large": 0.7,
                                           "all": 0.6}})
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["small\nsqrt(wh) < 32 px", "medium\n32 ≤ sqrt(wh) < 96 px",
                     "large\nsqrt(wh) ≥ 96 px", "all\nevery box"]
    assert "input px" in ax.get_xlabel()
    assert [round(t.get_height(), 2) for t in ax.patches] == [0.4, 0.8, 0.7, 0.6]
    plt.close(fig)


def test_boxes_plot_short_title_and_named_coco_lines(coco8_wh):
    from anchorfit.cluster.api import cluster_anchors
    from anchorfit.report.figures.boxes import LEVEL_COLOURS, plot_boxes
    from anchorfit.report.text import short_title

    result = cluster_anchors(coco8_wh, 3, seed=0, restarts=1)
    fig = plot_boxes(coco8_wh, anchors=result.anchors, strides=result.strides,
                     title=f"{short_title(COCO8)}: iou k-means, k=3")
    hist, scatter = fig.axes
    assert fig._suptitle.get_text() == "data.yaml: iou k-means, k=3"
    assert legend_labels(hist)[1:] == ["COCO small | medium (32 px)",
                                       "COCO medium | large (96 px)"]
    labels = legend_labels(scatter)
    assert "COCO w·h = 32² px²" in labels and "COCO w·h = 96² px²" in labels
    assert labels[-1] == "3 anchors" and not any("None" in label for label in labels)
    assert "input px" in hist.get_xlabel() and "input px" in scatter.get_ylabel()
    plt.close(fig)

    levels = cluster_anchors(coco8_wh, 3, seed=0, restarts=1, strides=[8, 16, 32])
    fig = plot_boxes(coco8_wh, anchors=levels.anchors, strides=levels.strides)
    scatter = fig.axes[1]
    labels = [label for label in legend_labels(scatter) if label.startswith("level")]
    assert labels == [f"level {i}, stride {s} ({'1 anchor'})" for i, s in enumerate((8, 16, 32))]
    colours = [to_hex(c.get_facecolor()[0]) for c in scatter.collections[1:]]
    assert colours == LEVEL_COLOURS[:3]
    plt.close(fig)


def test_erf_panels_have_axis_labels_one_colourbar_one_legend():
    from anchorfit.design.erf_network import load_erf_network
    from anchorfit.erf import estimate
    from anchorfit.erf.config import ErfConfig
    from anchorfit import load
    from anchorfit.report.figures.erf import erf_figure

    nets = Path(__file__).parent / "nets" / "erf_nets.py"
    net = load_erf_network(f"{nets}:tiny_bn", (40, 40), None, seed=0)
    result = estimate(net, load.layer_names(net, None), ErfConfig(samples=2, seed=0))
    fig = erf_figure(result)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_images()]
    assert len(panels) == len(result.levels)
    for ax in panels:
        assert ax.get_xlabel() == "x, input px" and ax.get_ylabel() == "y, input px"
        assert ax.get_legend() is None  # one figure legend instead of one per panel
        assert " px, stride " in ax.get_title()
    assert len(fig.axes) - len(panels) - sum(not a.axison for a in fig.axes) == 1  # colour bar
    assert legend_labels(fig) == ["theoretical RF", "ellipse at ±2σ (4σ across)",
                                  "square holding 50 %", "square holding 90 %",
                                  "square holding 95.45 %"]
    plt.close(fig)


@pytest.mark.parametrize("n,text", [(1, "1 box"), (2, "2 boxes"), (39695, "39,695 boxes"),
                                    (0, "0 boxes")])
def test_plural(n, text):
    from anchorfit.report.text import plural

    assert plural(n, "box") == text
    assert plural(1, "anchor") == "1 anchor" and plural(3, "anchor") == "3 anchors"


def test_round_sig_for_percentiles():
    from anchorfit.report.text import round_sig

    assert [round_sig(v) for v in (406.942, 4.7316, 0.104542, 55.9345, 640.0, 0.00862069)] \
        == [407.0, 4.73, 0.105, 55.9, 640.0, 0.00862]
