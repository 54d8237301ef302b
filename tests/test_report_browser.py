"""The HTML reports: the page builder's contract, and the compare report opened in Chromium.

The browser tests drive Debian's /usr/bin/chromium through the playwright package (never a
downloaded browser); a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from roofline import report
from roofline.errors import OutputError

XSS = "<script>alert(1)</script>"


def _figure(name: str = "line") -> go.Figure:
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name=report.plot_text(name)))
    return report.style_figure(fig, title=f"A chart of {name}", x_title="x (units)",
                               y_title="y (units)", height=320)


def _page(title: str = "Report", provenance: dict | None = None) -> str:
    sections = [
        report.Section("First", intro="Para one.\n\nPara two.",
                       figures=[report.Chart(_figure("a"), caption="How to read a."),
                                _figure("b")]),
        report.Section("Second", figures=[_figure("c")],
                       html_table=report.html_table(["name", "value"], [["x", 1], ["y", None]])),
    ]
    return report.render_page(title, sections, provenance or {"command": "roofline x"})


# -- page builder ---------------------------------------------------------------------------------

def test_page_embeds_plotly_once_and_every_figure():
    page = _page()
    # plotly.js is one big inline script; each figure adds a div and a small newPlot script.
    assert page.count("plotly.js v") >= 1
    assert page.count('<script type="text/javascript">') == 1
    assert page.count("Plotly.newPlot(") == 3
    assert [m for m in re.findall(r'id="(figure-\d+)"', page)] == \
        ["figure-1", "figure-2", "figure-3"]
    # Nothing is loaded from elsewhere: no script src, no stylesheet link, no import.
    assert re.search(r"<script[^>]*\bsrc=", page) is None
    assert "<link" not in page and "@import" not in page
    assert "How to read a." in page and "<p>Para one.</p><p>Para two.</p>" in page


def test_user_strings_are_escaped_everywhere():
    page = report.render_page(
        f"title {XSS}",
        [report.Section(f"section {XSS}", intro=XSS, figures=[_figure(XSS)],
                        html_table=report.html_table([f"col {XSS}"], [[XSS]]),
                        body_html=report.html_list([XSS]))],
        {"source": XSS, "list": [XSS], "nested": {XSS: XSS}}, subtitle=XSS)
    # The only <script> elements are plotly.js and the figure's own newPlot script.
    assert page.count("<script") == 2
    assert page.lower().count("</script") == 2
    assert "alert(1)" in page  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_table_cells():
    table = report.html_table(["a", "b", "c"], [[1234, 0.5, None], [report.Markup("<b>x</b>"),
                                                                    "t", True]],
                              row_classes=["frontier", None])
    assert "1,234" in table and "n/a" in table and "<b>x</b>" in table and "yes" in table
    assert '<tr class="frontier">' in table
    with pytest.raises(ValueError, match="row 0 has 1 cells, expected 2"):
        report.html_table(["a", "b"], [[1]])


def test_family_colours_are_stable():
    assert report.family_colour("MobileNetV2") == report.FAMILY_COLOURS["MobileNetV2"]
    first = report.family_colour("SomeUserFamily")
    assert report.family_colour("SomeUserFamily") == first
    assert first not in report.FAMILY_COLOURS.values()


def test_write_page_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "out" / "r.html"
    report.write_page(target, "first")
    assert target.read_text() == "first"

    class Boom(Exception):
        pass

    def failing_fsync(fd: int) -> None:  # the new text is written but not yet renamed
        raise Boom("disk gone")

    import roofline.io

    monkeypatch.setattr(roofline.io.os, "fsync", failing_fsync)
    with pytest.raises(Boom):
        report.write_page(target, "second, longer text")
    monkeypatch.undo()
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.html"]


def test_write_page_to_a_folder_is_an_output_error(tmp_path: Path):
    with pytest.raises(OutputError, match="it is a folder"):
        report.write_page(tmp_path, "x")
