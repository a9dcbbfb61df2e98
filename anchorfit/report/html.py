"""One self-contained HTML report of a plan, an audit or a comparison (``--report out.html``).

Why HTML: a table, its findings with their remedies and the figures in one file that a reviewer
opens from a CI artefact or an e-mail, offline. So the page carries everything itself: the style
sheet inline, figures as PNG ``data:`` URIs, no script, no font, no link to anything outside.
Every text that reaches the page (level names from config files, file names, messages) goes
through ``html.escape``: a level named ``<script>`` in a spec yaml shows as text, never as markup.
The file is written by ``report.safe_write.write_output``, like every other output.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from anchorfit.report.safe_write import write_output
from anchorfit.report.text import plural, short_title

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.error{color:#b00020;font-weight:bold}.warning{color:#a15c00;font-weight:bold}.info{color:#555}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.88em}ul.notes{font-size:.9em;color:#444}
"""


@dataclass
class Finding:
    """A finding as the report shows it (any object with these attributes will do)."""

    code: str
    severity: str
    level: str | None
    message: str
    remedy: str


@dataclass
class Report:
    """The content of one report page, in the order it is shown."""

    title: str
    meta: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    tables: list[tuple[str, Any]] = field(default_factory=list)      # (title, DataFrame)
    findings: list[tuple[str, list[Any]]] = field(default_factory=list)  # (title, findings)
    figures: list[tuple[str, bytes]] = field(default_factory=list)   # (caption, PNG bytes)
    notes: list[str] = field(default_factory=list)


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed: the report owns it)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _cell(value: Any) -> tuple[str, bool]:
    """A cell's text and whether it is a number (right-aligned)."""
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):  # no separator: a column mixing "4507" and "22,123" misreads
        return str(value), True
    if isinstance(value, float):
        if math.isnan(value):
            return "", True
        return (f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"), True
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return _cell(value.item())
        except (TypeError, ValueError):
            pass
    return "" if value is None else str(value), False


def table_html(frame: Any) -> str:
    """An HTML table of a DataFrame, every header and cell escaped."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text, numeric = _cell(value)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows)
            + "\n</tbody></table>")


def findings_html(findings: Sequence[Any]) -> str:
    """Findings as a table: severity, code, level, what was measured, the remedy."""
    if not findings:
        return "<p>No findings.</p>"
    rows = []
    for f in findings:
        sev = str(_get(f, "severity"))
        rows.append(f'<tr><td class="{escape(sev)}">{escape(sev)}</td>'
                    f"<td><code>{escape(str(_get(f, 'code')))}</code></td>"
                    f"<td>{escape(str(_get(f, 'level') or ''))}</td>"
                    f"<td>{escape(str(_get(f, 'message')))}</td>"
                    f"<td>{escape(str(_get(f, 'remedy')))}</td></tr>")
    return ("<table><thead><tr><th>severity</th><th>code</th><th>level</th><th>finding</th>"
            "<th>remedy</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def render_html(report: Report) -> str:
    """The whole page as one string (UTF-8, no external reference)."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{escape(report.title)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>{escape(report.title)}</h1>"]
    if report.meta:
        out.append('<p class="meta">' + "<br>".join(escape(m) for m in report.meta) + "</p>")
    if report.summary:
        out.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in report.summary) + "</ul>")
    for title, frame in report.tables:
        out += [f"<h2>{escape(title)}</h2>", table_html(frame)]
    for title, items in report.findings:
        out += [f"<h2>{escape(title)}</h2>", findings_html(items)]
    if report.figures:
        out.append("<h2>Figures</h2>")
        for caption, png in report.figures:
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    shown = {f"{_get(f, 'severity')} {_get(f, 'code')}" for _, items in report.findings
             for f in items}
    notes = [n for n in report.notes  # nothing twice: findings and summary are above
             if " ".join(n.split()[:2]) not in shown and n not in report.summary]
    if notes:
        out += ["<h2>Notes</h2>", '<ul class="notes">'
                + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"]
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(path: str | Path, report: Report,
                 protect: Iterable[str | Path] = ()) -> str:
    """Write the page with the project's safe writer (``--report`` in its messages)."""
    return write_output(path, render_html(report), what="--report", protect=protect)


def _meta(what: str, detector: str, input_size: Sequence[int],
          extra: Iterable[str] = ()) -> list[str]:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"{detector}, input {input_size[0]}x{input_size[1]} (sizes in input pixels): "
            f"{what}", *extra, f"written by anchorfit, {stamp}"]


def plan_report(result: Any, wh: Any = None, *, seed: int = 0,
                notes: Sequence[str] = ()) -> Report:
    """A plan's report: the per-level table, its findings, the ladder (and the boxes with the
    planned anchors when a dataset was given)."""
    from anchorfit.report.figures.design import box_scatter, ladder

    rep = Report(f"anchorfit plan: {short_title(result.detector)}",
                 _meta(f"{result.rule} plan (ratio {result.ratio:g})", result.detector,
                       result.input_size, [f"seed {seed}"]))
    rep.summary.append(f"{plural(len(result.levels), 'level')}, "
                       f"{plural(sum(len(lv.anchors) for lv in result.levels), 'anchor')}; "
                       f"{plural(len(result.warnings), 'finding')}")
    rep.tables.append(("Per-level plan", result.to_frame()))
    rep.findings.append(("Findings and remedies", list(result.warnings)))
    has_erf = any(lv.erf for lv in result.levels)
    rep.figures.append((f"Per level: stride, anchors, {'ERF and ' if has_erf else ''}RF (log "
                        "scale, input px)",
                        figure_png(ladder(result))))
    if wh is not None and len(wh):
        planned = [[a for a in lv] for lv in result.anchors_by_level()]
        anchors = {"planned": planned} if any(planned) else {}
        rep.figures.append(("Box sizes with the planned anchors and the level boundaries",
                            figure_png(box_scatter(
                                wh, anchors, [lv.stride for lv in result.levels],
                                title=f"{short_title(result.detector)}: boxes and planned anchors",
                                seed=seed, level_names=[lv.name for lv in result.levels]))))
    rep.notes += list(notes)
    return rep


def audit_report(report: Any, detector: Any, wh: Any = None, *,
                 notes: Sequence[str] = ()) -> Report:
    """An audit's report: the findings table with remedies, the detector's anchors per level
    and (with a dataset) its boxes against those anchors."""
    import pandas as pd

    counts = report.to_dict()["counts"]
    rep = Report(f"anchorfit audit: {short_title(detector.name)}",
                 _meta("anchor checks", detector.name, detector.input_size))
    rep.summary.append(f"{plural(counts['error'], 'error')}, "
                       f"{plural(counts['warning'], 'warning')}, "
                       f"{plural(counts['info'], 'note')} from "
                       f"{plural(len(report.checks_run), 'check')}")
    levels = [{"level": lv.name, "stride": _stride(lv),
               "anchors (w x h, px)": ", ".join(f"{w:g}x{h:g}" for w, h in _anchors(lv))}
              for lv in detector.levels]
    rep.tables.append(("Anchors per level", pd.DataFrame(levels)))
    rep.findings.append(("Findings and remedies", list(report.findings)))
    if wh is not None and len(wh):
        from anchorfit.report.figures.design import box_scatter

        anchors = [_anchors(lv) for lv in detector.levels]
        strides = [_stride(lv) for lv in detector.levels]
        sets = {"detector's": anchors} if any(len(a) for a in anchors) else {}
        rep.figures.append(("Box sizes with the detector's anchors and the level boundaries",
                            figure_png(box_scatter(
                                wh, sets, strides, title=f"{short_title(detector.name)}: boxes "
                                "and anchors", level_names=[lv.name for lv in detector.levels]))))
    rep.notes += list(notes)
    return rep


def _stride(level: Any) -> float:
    """A level's stride on the x axis: the network's, else the anchor generator's, else NaN."""
    if getattr(level, "stride", None):
        return float(level.stride[1])
    if getattr(level, "step", None):
        return float(level.step[1])
    return math.nan


def _anchors(level: Any) -> list[tuple[float, float]]:
    """A level's anchors as (w, h) pairs, whatever the level type stores."""
    anchors = getattr(level, "anchors", None)
    if anchors is None:
        return []
    out = []
    for a in anchors:
        if hasattr(a, "w"):
            out.append((float(a.w), float(a.h)))
        else:
            out.append((float(a[0]), float(a[1])))
    return out


def compare_report(result: Any, wh: Any, *, seed: int = 0,
                   notes: Sequence[str] = ()) -> Report:
    """A comparison's report: the metric table, the anchors per level, the recommendation and
    each set's audit findings with remedies, the box scatter and the recall bars."""
    from anchorfit.report.figures.design import box_scatter, grid_recall_by_size

    rep = Report(f"anchorfit compare: {short_title(result.detector)}",
                 _meta("default, RF-derived and clustered anchors compared", result.detector,
                       result.input_size,
                       [f"{plural(result.boxes, 'box')}, seed {seed}"]))
    v = result.verdict
    if v is not None:
        rep.summary.append(f"recommended: {v.reason}" if v.recommended  # reason names it
                           else f"no recommendation: {v.reason}")
        rep.summary.append(f"assigner: {v.assigner}")
    rep.tables.append(("Comparison (rows: metrics; columns: anchor sets)", result.to_frame()))
    rep.tables.append(("Anchors per level", result.anchors_frame()))
    if result.coverage_frame is not None:
        rep.tables.append(("Assignment coverage by size bucket", result.coverage_frame))
    if v is not None:
        for name, found in v.audits.items():
            rep.findings.append((f"Findings and remedies: {name}",
                                 list(found.get("details", []))))
    rep.figures.append(("Box sizes with every anchor set (colour: level; marker: set)",
                        figure_png(box_scatter(
                            wh, {s.name: list(s.anchors) for s in result.sets}, result.strides,
                            title=f"{short_title(result.detector)}: boxes and anchor sets",
                            seed=seed, level_names=result.level_names or None))))
    pos = f"{result.positive_iou:g}"
    recall = {s.name: s.metrics.grid["recall"][pos] for s in result.sets if s.metrics.grid}
    if recall:
        rep.figures.append((f"Grid recall at IoU {pos} by object size",
                            figure_png(grid_recall_by_size(
                                recall, title=f"{short_title(result.detector)}: grid recall at "
                                f"IoU {pos} by object size"))))
    rep.notes += list(notes)
    return rep
