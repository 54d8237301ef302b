"""The HTML reports: the page builder's contract, and the compare and sweep reports opened in
Chromium.

The browser tests drive Debian's /usr/bin/chromium through the playwright package (never a
downloaded browser); a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roofline.errors import OutputError
from roofline.report import page as report

XSS = "<script>alert(1)</script>"


def _figure(name: str = "line") -> report.Figure:
    fig = report.Figure().add_trace(report.scatter(x=[1, 2, 3], y=[3, 1, 2],
                                                   name=report.plot_text(name)))
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
    # A sum of Markup stays Markup (a plain str would be escaped whole, its tags shown as
    # text); plain text added to Markup is escaped.
    cell = report.Markup("1.2") + report.range_span((1.0, 1.5)) + "<i>"
    assert isinstance(cell, report.Markup)
    assert str(cell) == '1.2 <span class="sub">1–1.5</span>&lt;i&gt;'
    assert '<td><span class="sub">' not in report.html_table(["a"], [[cell]])
    assert '<td>1.2 <span class="sub">1–1.5</span>&lt;i&gt;</td>' in \
        report.html_table(["a"], [[cell]])
    assert report.range_span(None) == ""


def test_family_colours_are_stable():
    assert report.family_colour("MobileNetV2") == report.FAMILY_COLOURS["MobileNetV2"]
    first = report.family_colour("SomeUserFamily")
    assert report.family_colour("SomeUserFamily") == first
    assert first not in report.FAMILY_COLOURS.values()


def test_labels_never_overlap():
    """place_labels: each label takes the first free position around its point; labels of
    points in a dense cluster that fit nowhere are left out (their hover stays)."""
    # Two points 5 px apart on a 1000 × 360 plot, a third far away.
    points = [(0.5, 0.5), (0.505, 0.5), (0.9, 0.2)]
    texts = ["mobilenet_v1@0.75:224", "mobilenet_v1@0.75:192", "far"]
    where = report.place_labels(points, texts)
    assert where[0] is not None and where[2] == "top left"
    assert where[1] != where[0]
    # A cluster of twenty points within 10 px: most labels are left out, none overlap.
    cluster = [(0.5 + 0.0005 * i, 0.5 + 0.001 * i) for i in range(20)]
    placed = report.place_labels(cluster, [f"model {i}" for i in range(20)])
    assert 0 < sum(p is not None for p in placed) < 20
    assert set(placed) <= {*report.LABEL_POSITIONS, None}


def test_log_axis_ticks_are_plain_numbers():
    fig = report.Figure().add_trace(report.scatter(x=[0.4, 30], y=[2e9, 9e10]))
    report.log_axis(fig, "x", 0.4, 30)
    report.log_axis(fig, "y", 2e9, 9e10, prefixes=True, unit="MAC/s")
    assert fig.layout["xaxis"]["ticktext"] == ["0.5", "1", "2", "5", "10", "20"]
    assert fig.layout["yaxis"]["ticktext"] == ["2 GMAC/s", "5 GMAC/s", "10 GMAC/s",
                                               "20 GMAC/s", "50 GMAC/s"]


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


# -- the compare report in Chromium ------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
HOSTILE_DIR = "<img src=x onerror=alert(1)>"  # a folder name: no '/' allowed in it


def _hostile_inputs(tmp_path: Path) -> tuple[str, str]:
    """A user model in a folder whose name is HTML, and a profile whose description and
    sources are a script: (model spec, profile path)."""
    folder = tmp_path / HOSTILE_DIR
    folder.mkdir()
    model = folder / "tiny_net.py"
    model.write_text(
        "from torch import nn\n\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))\n")
    from roofline.core.hardware import load_hardware, profile_to_toml

    base = load_hardware("edgetpu")
    hostile = base.with_changes(
        name="hostile-tpu", description=f"{XSS} a copy of {base.name}",
        sources={**base.sources, "dram": f"{XSS} made up"})
    profile = folder / "hostile-tpu.toml"
    profile.write_text(profile_to_toml(hostile))
    return f"{model}:build", str(profile)


def _expected_traces(comparison, focus: str) -> list[int]:
    """Traces per figure, in page order, from what went in (see roofline.report.compare_page):
    per device, one per family with a supported model that has a top-1 plus the frontier
    line; one line per model running somewhere (2+ devices); per device, the roofs (DRAM, each
    efficiency below 1, each on-chip level with a bandwidth, each memory efficiency below 1;
    a level without a bandwidth has none) plus one marker trace per bound among kernels with
    MACs; per device, one bar trace per bound of the kernels (the fixed per-inference cost is
    stated, not drawn); the ridge sweep: one line per model it shows
    (roofline.report.compare_page.ridge_drawn), one hidden trace per family for the others,
    one vertical line per ridge-point marker (the paper's four, then each profile's)."""
    names = comparison.hardware_names
    table = comparison.table
    counts = []
    for hw in names:
        rows = table[(table["hardware"] == hw) & table["supported"] & table["top1"].notna()]
        counts.append(rows["family"].nunique() + (1 if rows["pareto"].any() else 0))
    if len(names) >= 2:
        counts.append(int(table.groupby("label")["supported"].any().sum()))
    for hw in comparison.hardware:
        pred = comparison.prediction(hw.name, focus)
        effs = {e for e in hw.efficiency.values() if e < 1}
        levels = [lv for lv in hw.memory if lv.bandwidth_bytes_per_s]
        memory_effs = {e for e in hw.memory_efficiency.values() if e < 1}
        bounds = {r["bound"] for r in pred.kernel_records() if r["macs"] > 0}
        counts.append(1 + len(effs) + len(levels) + len(memory_effs) + len(bounds))
    for hw in comparison.hardware:
        pred = comparison.prediction(hw.name, focus)
        counts.append(len({r["bound"] for r in pred.kernel_records()}))
    from roofline.analyses.ridge import ridge_data
    from roofline.report.compare_page import ridge_drawn

    shown = ridge_drawn(comparison, ridge_data(comparison)[0])
    others = {f for v, f in zip(comparison.labels, comparison.families, strict=True)
              if v not in shown}
    counts.append(len(shown) + len(others) + 4 + len(comparison.hardware))
    return counts


def _open_in_chromium(path: Path, screenshot: list[Path], probe: str | None = None) -> dict:
    """Load ``path`` as a file:// URL; returns what the page drew and every problem seen (and,
    as "probe", what the JavaScript function ``probe`` returns once every chart is drawn)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install "
                    f"chromium; .ci/run does) to run the report's browser test")
    from playwright.sync_api import sync_playwright

    seen: dict[str, list] = {"console": [], "page": [], "outside": [], "dialogs": [],
                             "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):  # every request: only the file itself and inline data may load
                url = r.request.url
                if url.startswith(("file://", "data:", "blob:")):
                    r.continue_()
                else:
                    seen["outside"].append(url)
                    r.abort()

            page.route("**/*", route)
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("console", lambda m: seen["console"].append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["page"].append(str(e)))
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every(el => el._fullLayout && el.querySelector('.main-svg'))",
                timeout=60_000)
            seen["figures"] = page.evaluate(
                "() => [...document.querySelectorAll('.plotly-graph-div')].map(el => ({"
                "id: el.id, traces: el.data.length, svg: el.querySelectorAll('.main-svg')"
                ".length, title: (el.layout.title || {}).text || ''}))")
            seen["text"] = page.inner_text("body")
            if probe is not None:
                seen["probe"] = page.evaluate(probe)
            for shot in screenshot:
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return seen


@pytest.mark.slow
@pytest.mark.browser
def test_compare_report_renders_offline_in_chromium(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    from roofline.analyses.compare import compare
    from roofline.cli import main
    from roofline.core.hardware import resolve_hardware
    from roofline.sources.variant import resolve_models

    user_model, profile = _hostile_inputs(tmp_path)
    models = f"mobilenet_v2@*,mobilenet_v3_small,mobilenet_v4_conv_small,{user_model}"
    out = tmp_path / "report.html"
    assert main(["compare", "--hw", f"cpu,{profile}", "--models", models, "--out",
                 str(out)]) == 0

    comparison = compare(resolve_models(models), resolve_hardware(["cpu", profile]))
    focus = comparison.default_focus()
    expected = _expected_traces(comparison, focus)
    seen = _open_in_chromium(out, [tmp_path / "compare-report.png",
                                   ARTIFACTS / "compare-report.png"])

    assert seen["outside"] == []
    assert all(u.startswith(("file://", "data:", "blob:")) for u in seen["requests"])
    assert seen["console"] == []
    assert seen["page"] == []
    assert seen["dialogs"] == []  # the hostile names and descriptions ran nothing
    figures = seen["figures"]
    assert [f["traces"] for f in figures] == expected
    assert all(f["svg"] >= 1 for f in figures)
    assert all(f["title"] for f in figures)
    text = seen["text"]
    assert XSS in text and HOSTILE_DIR in text  # shown as text, not run
    assert "Verdict" in text and "Provenance" in text and "compare --hw" in text
    assert (tmp_path / "compare-report.png").stat().st_size > 10_000


#: Per figure of a page: its title and, for each error bar plotly drew, the latencies (ms) at
#: its two ends, read back from the bar's path through the figure's x axis (plotly's p2c: a
#: pixel to the data value, whatever the axis type). A bar's path is
#: "M x_high,y v6 m0,-3 H x_low m0,-3 v6".
_BAR_ENDS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(el => {
    const ax = el._fullLayout.xaxis;
    const ends = [...el.querySelectorAll('g.errorbar path.xerror')].map(p => {
        const d = p.getAttribute('d');
        const high = parseFloat(d.slice(1).split(',')[0]);
        const low = parseFloat(d.split('H')[1]);
        return [low, high].map(px => ax.p2c(px));
    });
    return {title: (el.layout.title || {}).text || '', ends: ends};
})"""


@pytest.mark.slow
@pytest.mark.browser
def test_sweep_report_draws_each_range_in_chromium(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    """The sweep page's frontier chart draws one error bar per variant with a range, spanning
    that range, and none for a variant without one; offline, without an error."""
    import dataclasses

    import numpy as np

    from roofline.analyses.sweep import evaluate_grid, sweep_variants, trace_all, views_of
    from roofline.core.hardware import load_hardware
    from roofline.report.sweep_page import sweep_page

    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    variants = sweep_variants("mobilenet_v2", [0.5, 1.0], [128, 160])
    hardware = [load_hardware("cpu"), load_hardware("edgetpu")]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    result = evaluate_grid(variants, arrays, hardware, stats=stats)
    low = result.latency_low_s.copy()
    low[1, 2] = np.nan  # the third variant on the EdgeTPU has no range: no bar for it
    result = dataclasses.replace(result, latency_low_s=low)
    out = tmp_path / "sweep.html"
    report.write_page(out, sweep_page(result, model="mobilenet_v2", command="roofline sweep"))

    seen = _open_in_chromium(out, [tmp_path / "sweep-report.png",
                                   ARTIFACTS / "sweep-report.png"], probe=_BAR_ENDS)
    assert seen["outside"] == [] and seen["console"] == [] and seen["page"] == []
    assert len(seen["figures"]) == 4 and all(f["svg"] >= 1 for f in seen["figures"])
    frontiers = [f for f in seen["probe"] if "MACs against predicted latency" in f["title"]]
    assert len(frontiers) == 2
    for h, drawn in enumerate(frontiers):
        expected = sorted(r for m in range(4)
                          if (r := result.latency_range_ms(h, m)) is not None)
        assert len(expected) == (4 if h == 0 else 3)
        got = sorted(tuple(e) for e in drawn["ends"])
        assert len(got) == len(expected)
        for (lo, hi), (want_lo, want_hi) in zip(got, expected, strict=True):
            assert (lo, hi) == pytest.approx((want_lo, want_hi), rel=0.01)  # a pixel or so
    assert "80 % range" in seen["text"]
