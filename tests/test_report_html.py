"""``--report out.html`` of plan, audit and compare: one self-contained page, parsed back.

The page is read with the standard library's ``html.parser``: its tables (headers and rows),
the findings' codes and remedies, the figures (``data:`` URIs that decode to PNG files), the
absence of any external reference, and the escaping of a hostile level name from a spec yaml.
Inputs are shipped with the repository (anchorfit/configs, tests/data) so these run anywhere.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COCO8 = REPO / "tests/data/ultralytics_coco8/data.yaml"
YOLOV3_TINY = REPO / "anchorfit/configs/yolov3-tiny.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<script>alert("x")</script>&P5'


class Page(HTMLParser):
    """What a reader of the page sees: tables as lists of rows, image sources, links, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append(value)
                if tag == "img":
                    self.images.append(value)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> tuple[Page, str]:
    raw = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    page.close()
    return page, raw


def table_with(page: Page, *headers: str) -> list[list[str]]:
    for table in page.tables:
        if table and all(h in table[0] for h in headers):
            return table
    raise AssertionError(f"no table with headers {headers}: "
                         f"{[t[0] for t in page.tables if t]}")


def assert_self_contained(page: Page, raw: str) -> None:
    assert "script" not in page.tags and "link" not in page.tags
    for ref in page.refs:
        assert ref.startswith("data:image/png;base64,"), ref[:60]
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//)", raw, re.I)
    assert "@import" not in raw and "url(" not in raw


def decoded_pngs(page: Page) -> list[bytes]:
    out = []
    for src in page.images:
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        out.append(data)
    return out


def png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plan_report_has_the_table_findings_and_figures(run_cli, tmp_path):
    out = tmp_path / "plan.html"
    code, _, err = run_cli("plan", str(YOLOV3_TINY), "--no-erf", "--boxes", str(COCO8),
                           "--report", str(out))
    assert code == 0, err
    page, raw = parse(out)
    assert_self_contained(page, raw)
    table = table_with(page, "level", "stride", "anchors")
    names = [row[table[0].index("level")] for row in table[1:]]
    assert names == ["P5", "P4"]
    strides = [row[table[0].index("stride")] for row in table[1:]]
    assert strides == ["32", "16"]
    findings = table_with(page, "severity", "code", "remedy")
    # every finding row: a stable AFnnn code and a non-empty remedy
    assert len(findings) > 1
    for row in findings[1:]:
        assert re.fullmatch(r"AF\d{3}", row[1]) and row[4]
    pngs = decoded_pngs(page)
    assert len(pngs) == 2  # the ladder and the box scatter (--boxes given)
    assert all(w > 300 and h > 200 for w, h in map(png_size, pngs))


def test_audit_report_findings_with_remedies_match_json(run_cli, tmp_path):
    import json

    out = tmp_path / "audit.html"
    code, text, err = run_cli("audit", str(YOLOV3_TINY), "--boxes", str(COCO8), "-f", "json",
                              "--report", str(out))
    assert code == 0, err
    expected = json.loads(text)["findings"]
    assert expected, "the audit of yolov3-tiny on coco8 has findings"
    page, raw = parse(out)
    assert_self_contained(page, raw)
    findings = table_with(page, "severity", "code", "finding", "remedy")
    got = [(row[1], row[4]) for row in findings[1:]]
    assert got == [(f["code"], f["remedy"]) for f in expected]
    anchors = table_with(page, "level", "anchors (w x h, px)")
    assert anchors[1][0] == "P5" and anchors[1][2].startswith("81x82, 135x169")
    assert len(decoded_pngs(page)) == 1


def test_compare_report_has_every_set_and_both_figures(run_cli, tmp_path):
    import json

    out = tmp_path / "compare.html"
    code, text, err = run_cli("compare", str(YOLOV3_TINY), "--boxes", str(COCO8), "--restarts",
                              "1", "-f", "json", "--report", str(out))
    assert code == 0, err
    audits = json.loads(text)["verdict"]["audits"]
    page, raw = parse(out)
    assert_self_contained(page, raw)
    table = table_with(page, "metric", "default", "best")
    metrics = [row[0] for row in table[1:]]
    assert "mean_best_iou" in metrics and metrics[-2:] == ["anchors", "runtime_s"]
    anchors_row = table[1 + metrics.index("anchors")]
    assert anchors_row[table[0].index("default")] == "6"  # yolov3-tiny's six anchors
    text = " ".join(page.text)
    assert "recommended" in text or "no recommendation" in text
    assert len(decoded_pngs(page)) == 2  # box scatter and recall bars
    # each set's audit: the same codes as the JSON verdict (info left out), each with a remedy
    finding_tables = [t for t in page.tables if t and t[0][:2] == ["severity", "code"]]
    with_findings = {name: a for name, a in audits.items() if a["findings"]}
    assert len(finding_tables) == len(with_findings) and with_findings
    assert raw.count("<p>No findings.</p>") == len(audits) - len(with_findings)
    for table, (name, audit) in zip(finding_tables, with_findings.items()):
        assert [row[1] for row in table[1:]] == [f.split()[0] for f in audit["findings"]], name
        assert all(row[4] for row in table[1:])


def test_hostile_level_name_is_escaped(run_cli, tmp_path):
    spec = YOLOV3_TINY.read_text(encoding="utf-8").replace("{name: P5,", "{name: 'HOSTILE',")
    assert "HOSTILE" in spec
    yaml_name = HOSTILE.replace("'", "''")
    path = tmp_path / "hostile.yaml"
    path.write_text(spec.replace("HOSTILE", yaml_name), encoding="utf-8")
    out = tmp_path / "audit.html"
    code, _, err = run_cli("audit", str(path), "--report", str(out))
    assert code == 0, err
    page, raw = parse(out)
    assert "<script>" not in raw and "script" not in page.tags
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;P5" in raw
    anchors = table_with(page, "level", "anchors (w x h, px)")
    assert anchors[1][0] == HOSTILE  # the reader sees the name as it is, as text


def test_report_is_refused_over_an_input(run_cli, tmp_path):
    spec = tmp_path / "yolov3-tiny.yaml"
    spec.write_text(YOLOV3_TINY.read_text(encoding="utf-8"), encoding="utf-8")
    before = spec.read_bytes()
    code, _, err = run_cli("audit", str(spec), "--report", str(spec))
    assert code == 2 and "--report" in err
    assert spec.read_bytes() == before


def test_render_escapes_every_text():
    import pandas as pd

    from anchorfit.report.html import Finding, Report, render_html

    rep = Report("t<1>", meta=["m&"], summary=["s\"q"],
                 tables=[("<b>", pd.DataFrame({"<h>": ["<c>"], "n": [12345.678]}))],
                 findings=[("f", [Finding("AF101", "warning", "<l>", "<m>", "<r>")])],
                 notes=["<n>"])
    raw = render_html(rep)
    for bad in ("<1>", "<b>", "<h>", "<c>", "<l>", "<m>", "<r>", "<n>"):
        assert bad not in raw
    page = Page()
    page.feed(raw)
    assert [["<h>", "n"], ["<c>", "12346"]] == page.tables[0]
    assert page.tables[1][1] == ["warning", "AF101", "<l>", "<m>", "<r>"]


@pytest.mark.parametrize("command", ["plan", "audit", "compare"])
def test_report_flag_is_documented(run_cli, command):
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and "--report HTML" in out
