"""The page kit: one self-contained offline HTML page, its look, and escaping.

Owns the page's structure and look and every use of plotly.js's bundle; owns no modelling and
no particular page (``compare_page``, ``sweep_page``, ``validate_page`` and ``ridge_page``
build on it, and the analyses give them their numbers ready to draw).

The kit
----------------------------------------------------------------------
``Section(title, intro="", figures=(), html_table=None, body_html=None, anchor=None)``
    One titled block of the page. ``intro`` is plain text (escaped; a blank line starts a new
    paragraph). ``figures`` are :class:`Figure` (or figure dicts) or :class:`Chart` (a figure
    with a plain-text caption saying how to read it). ``html_table`` and ``body_html`` are
    *trusted* HTML: build them with :func:`html_table`, :func:`html_list`, :func:`paragraphs`
    or :func:`escape` so that every user-supplied string is escaped exactly once.
``render_page(title, sections, provenance, *, subtitle="", lead_html=None) -> str``
    One self-contained HTML document: plotly.js embedded once, each figure drawn by its own
    small script, no request to any network, a contents list, then the sections, then the
    provenance (a mapping of label → text, list of texts or mapping; all escaped).
``write_page(path, html) -> Path``
    Write atomically (temporary file + rename via ``roofline.io``): a failure leaves the
    previous report intact and no temporary file behind.
``html_table(columns, rows, *, caption=None, numeric=None, row_classes=None) -> Markup``
    An escaped HTML table; cells that are :class:`Markup` are inserted as is, None shows as
    "n/a". ``escape(text)``, ``paragraphs(text)`` and ``html_list(items)`` escape too.
``Figure()``, ``scatter(**props)``, ``bar(**props)``, ``heatmap(**props)``
    A plotly figure as plain data: traces are dicts of plotly properties (nested dicts, no
    "magic underscore" names) and the layout a dict merged by ``update_layout``,
    ``update_xaxes`` and ``update_yaxes``. Nothing is validated while it is built (plotly's
    graph objects check every property as it is set, most of a warm ``compare``'s time);
    ``tests/test_report_figures.py`` validates every report figure through plotly instead.
``has_range(row)``, ``error_bars(rows, colour)``, ``range_span(low_high)``, ``UNCERTAIN``
    A prediction's 80 % latency range (a row's ``latency_range_ms``) as plotly error bars
    (none where a row has no range), as the muted ``low–high`` beside a latency in a table,
    and the mark (with ``uncertain_note``'s hover line) of a frontier point whose range
    overlaps its neighbour's (``roofline.analyses.pareto.uncertain_order``).
``style_figure(fig, *, title, height, x_title=None, y_title=None) -> fig``
    The report's plotly look (fonts, palette, grid, hover, legend); ``family_colour(family)``
    and ``BOUND_COLOURS`` give colours that stay the same for a family or bound on every
    chart; ``plot_text(s)`` escapes a user string for plotly's own text markup.

Security: every user-supplied string (model names and paths, profile names, descriptions and
sources, the command line) is HTML-escaped before it reaches the page or a plotly label, and
the figure JSON (written by :func:`_json`, the same bytes whatever JSON library is installed)
escapes ``<``, ``>`` and ``&`` so nothing inside a figure can close its script tag;
:func:`render_page` checks that the embedded plotly.js and figure scripts hold no ``</script``
before writing them.
"""

from __future__ import annotations

import html as _html
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

__all__ = [
    "Markup", "Chart", "Section", "render_page", "write_page", "escape", "paragraphs",
    "html_list", "html_table", "style_figure", "plot_text", "family_colour", "BOUND_COLOURS",
    "FAMILY_COLOURS", "FONT_FAMILY", "PLOTLY_CONFIG", "log_ticks", "log_axis", "si",
    "place_labels", "LABEL_POSITIONS", "Figure", "scatter", "bar", "heatmap",
    "has_range", "error_bars", "range_span", "UNCERTAIN", "uncertain_note",
]

# -- look ------------------------------------------------------------------------------------------

#: System fonts only: the page must render offline, so no web font is fetched.
FONT_FAMILY = ('system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
               '"Noto Sans", "DejaVu Sans", sans-serif')

#: Colour of each model family on every chart (Okabe & Ito's colour-blind-safe palette).
FAMILY_COLOURS: dict[str, str] = {
    "MobileNetV1": "#E69F00",  # orange
    "MobileNetV2": "#009E73",  # bluish green
    "MobileNetV3": "#0072B2",  # blue
    "MobileNetV4": "#CC79A7",  # reddish purple
}
_EXTRA_COLOURS = ("#D55E00", "#56B4E9", "#7F3C8D", "#3B3B3B", "#A6761D", "#1B9E77")

#: Colour of each kernel bound on every chart.
BOUND_COLOURS: dict[str, str] = {
    "compute": "#C0392B",  # red: the MAC units are the limit
    "memory": "#2E86C1",  # blue: bytes from memory are the limit
    "overhead": "#95A5A6",  # grey: fixed launch / dispatch cost
}

#: plotly's modebar without its logo; figures resize with the page.
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True,
                                 "toImageButtonOptions": {"format": "png", "scale": 2}}

_assigned: dict[str, str] = {}
_spare = itertools.cycle(_EXTRA_COLOURS)


def family_colour(family: str) -> str:
    """The colour of ``family``: fixed for the zoo's families, then one per new family, stable
    for the life of the process (so every chart of one report agrees)."""
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    if family not in _assigned:
        _assigned[family] = next(_spare)
    return _assigned[family]


_CSS = """
:root { --ink: #1d2330; --muted: #5b6472; --rule: #dfe3ea; --paper: #ffffff; --bg: #f5f6f8;
        --accent: #0b5cad; --good: #1e7b34; --bad: #a12a2a; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; background: var(--bg); color: var(--ink); font-family: FONT;
       line-height: 1.5; -webkit-font-smoothing: antialiased; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 28px 64px; }
header.page { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 1.9rem; margin: 0 0 4px; letter-spacing: -0.01em; }
.subtitle { color: var(--muted); margin: 0; }
h2 { font-size: 1.35rem; margin: 0 0 6px; }
h3 { font-size: 1.05rem; margin: 18px 0 4px; }
p { margin: 6px 0 10px; max-width: 80ch; }
section { background: var(--paper); border: 1px solid var(--rule); border-radius: 8px;
          padding: 20px 22px; margin: 18px 0; }
nav.toc { font-size: 0.92rem; color: var(--muted); }
nav.toc ol { margin: 4px 0 0; padding-left: 20px; columns: 2; }
a { color: var(--accent); }
.figure { margin: 14px 0 6px; }
.figure .caption { color: var(--muted); font-size: 0.9rem; margin: 2px 4px 0; max-width: 100ch; }
.plot { width: 100%; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 10px 0; width: 100%; }
caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: top; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
th.group { text-align: center; border-bottom: 2px solid var(--accent); }
.sub { color: var(--muted); font-size: 0.92em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.frontier td { background: #f1f8f2; }
tr.unsupported td { color: var(--muted); font-style: italic; }
.na { color: var(--muted); }
.table-wrap { overflow-x: auto; }
.verdict { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr));
           gap: 14px; }
.card { border: 1px solid var(--rule); border-left: 5px solid var(--accent); border-radius: 6px;
        padding: 10px 14px; background: #fbfcfe; }
.card h3 { margin-top: 0; }
.card dl { margin: 0; }
.card dt { color: var(--muted); font-size: 0.76rem; text-transform: uppercase;
           letter-spacing: 0.05em; margin-top: 8px; }
.card dd { margin: 0; overflow-wrap: anywhere; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px;
                font-size: 0.9rem; }
dl.provenance dt { font-weight: 600; }
dl.provenance dd { margin: 0; word-break: break-word; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo,
              Consolas, monospace; font-size: 0.88em; }
ul.plain { margin: 4px 0; padding-left: 20px; }
.note { color: var(--muted); font-size: 0.9rem; }
""".replace("FONT", FONT_FAMILY)


# -- escaping --------------------------------------------------------------------------------------

class Markup(str):
    """A string of trusted HTML: inserted into the page as is (everything else is escaped).

    ``Markup + text`` is Markup, with ``text`` escaped unless it is Markup itself (a plain
    ``str`` sum would be escaped whole: the tags shown as text)."""

    __slots__ = ()

    def __add__(self, other: str) -> Markup:  # type: ignore[override]
        if not isinstance(other, str):
            return NotImplemented
        return Markup(str.__add__(self, escape(other)))


def escape(value: Any) -> Markup:
    """``value`` as text safe inside HTML elements and quoted attributes (Markup passes)."""
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape("" if value is None else str(value), quote=True))


def plot_text(value: Any) -> str:
    """A user string made safe for plotly's text markup (legend, hover, titles): plotly
    interprets ``<b>``, ``<a href>`` and friends, so the angle brackets are escaped and plotly
    shows them as the characters they are."""
    return _html.escape("" if value is None else str(value), quote=False)


def paragraphs(text: str) -> Markup:
    """Plain ``text`` as escaped ``<p>`` blocks (a blank line starts a new paragraph)."""
    blocks = [b.strip() for b in str(text).split("\n\n") if b.strip()]
    return Markup("".join(f"<p>{escape(' '.join(b.split()))}</p>" for b in blocks))


def html_list(items: Iterable[Any], *, css_class: str = "plain") -> Markup:
    """An escaped ``<ul>`` (Markup items are inserted as is)."""
    inner = "".join(f"<li>{escape(item)}</li>" for item in items)
    return Markup(f'<ul class="{escape(css_class)}">{inner}</ul>')


def _cell(value: Any) -> tuple[Markup, bool]:
    """(escaped HTML, is it a number) of one table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Markup('<span class="na" title="not known">n/a</span>'), False
    if isinstance(value, Markup):
        return value, False
    if isinstance(value, bool):
        return escape("yes" if value else "no"), False
    if isinstance(value, int):
        return escape(f"{value:,}"), True
    if isinstance(value, float):
        return escape(f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"), True
    return escape(value), False


def html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
               caption: str | None = None, numeric: Iterable[int] | None = None,
               row_classes: Sequence[str | None] | None = None,
               groups: Sequence[tuple[str, int]] | None = None) -> Markup:
    """An HTML table with every cell escaped (Markup cells are trusted, None is "n/a").

    ``numeric`` lists column indexes to right-align (default: those whose cells are numbers);
    ``row_classes`` gives an optional CSS class per row (``frontier``, ``unsupported``);
    ``groups`` adds a header row above the column names: (label, columns spanned) pairs that
    cover every column (an empty label leaves the span blank).
    """
    if groups is not None and sum(n for _, n in groups) != len(columns):
        raise ValueError(f"groups span {sum(n for _, n in groups)} columns, expected "
                         f"{len(columns)}")
    rows = [list(r) for r in rows]
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} cells, expected {len(columns)}")
    cells = [[_cell(v) for v in row] for row in rows]
    if numeric is None:
        num = {j for j in range(len(columns))
               if any(c[j][1] for c in cells) and all(c[j][1] or "n/a" in c[j][0]
                                                       for c in cells)}
    else:
        num = set(numeric)
    def attr(j: int) -> str:
        return ' class="num"' if j in num else ""

    head = "".join(f'<th{attr(j)} scope="col">{escape(c)}</th>' for j, c in enumerate(columns))
    body = []
    for i, row in enumerate(cells):
        cls = row_classes[i] if row_classes is not None and i < len(row_classes) else None
        tds = "".join(f"<td{attr(j)}>{html}</td>" for j, (html, _) in enumerate(row))
        row_attr = f' class="{escape(cls)}"' if cls else ""
        body.append(f"<tr{row_attr}>{tds}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    if groups is not None:
        top = "".join(f'<th colspan="{n}" scope="colgroup" class="group">{escape(g)}</th>'
                      for g, n in groups)
        head = f"{top}</tr><tr>{head}"
    return Markup(f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
                  f'<tbody>{"".join(body)}</tbody></table></div>')


# -- latency ranges --------------------------------------------------------------------------------

#: Marks a frontier point whose latency range overlaps its neighbour's on the frontier: which
#: of the two is faster on the device is not known.
UNCERTAIN = "≈"


def uncertain_note(noun: str = "model") -> str:
    """The hover line of a frontier point marked :data:`UNCERTAIN` (``noun``: what the
    frontier holds, a model or a variant)."""
    return (f"{UNCERTAIN} its range overlaps the next frontier {noun}'s: their order on this "
            "device is uncertain")


def has_range(row: Mapping[str, Any]) -> bool:
    """Whether a result row has a latency range: ``latency_range_ms`` is a (low, high) pair."""
    value = row.get("latency_range_ms")
    return isinstance(value, (list, tuple)) and len(value) == 2


def error_bars(rows: Sequence[Mapping[str, Any]], colour: str) -> dict[str, Any]:
    """Horizontal plotly error bars from each row's 80 % latency range: ``high − latency_ms``
    to the right, ``latency_ms − low`` to the left; NaN where a row has no range.

    Give it rows with a range only (:func:`has_range`): the page writes NaN as null, which
    plotly reads as 0 and draws as a capped bar of no width, as if the latency were exact. A
    point without a range belongs in a trace without error bars (as on the sweep page)."""
    plus = [r["latency_range_ms"][1] - r["latency_ms"] if has_range(r) else math.nan
            for r in rows]
    minus = [r["latency_ms"] - r["latency_range_ms"][0] if has_range(r) else math.nan
             for r in rows]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
            "color": colour, "thickness": 1, "width": 3}


def range_span(low_high: Sequence[float] | None) -> Markup:
    """`` low–high`` (ms, three significant digits) in a muted span, to follow a latency in a
    table cell; empty when there is no range."""
    if not low_high:
        return Markup("")
    low, high = low_high
    return Markup(f' <span class="sub">{low:.3g}–{high:.3g}</span>')


# -- figures ---------------------------------------------------------------------------------------

def _template() -> dict[str, Any]:
    axis = {"showgrid": True, "gridcolor": "#e6e9ef", "zeroline": False, "linecolor": "#9aa3af",
            "ticks": "outside", "tickcolor": "#9aa3af", "showline": True, "mirror": False,
            "title": {"standoff": 8}, "automargin": True}
    return {"layout": {
        "font": {"family": FONT_FAMILY, "size": 13, "color": "#1d2330"},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "colorway": list(FAMILY_COLOURS.values()) + list(_EXTRA_COLOURS),
        "xaxis": axis, "yaxis": axis,
        "hoverlabel": {"font": {"family": FONT_FAMILY, "size": 12}, "align": "left"},
        "legend": {"bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#dfe3ea",
                   "borderwidth": 1, "font": {"size": 12}},
        "title": {"x": 0.0, "xanchor": "left", "font": {"size": 16}},
        "margin": {"l": 70, "r": 20, "t": 56, "b": 60},
    }}


def _merge(into: dict[str, Any], props: Mapping[str, Any]) -> None:
    # plotly's update semantics: nested dicts merge key by key, anything else replaces.
    for key, value in props.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


class Figure:
    """A plotly figure as plain data (see the module docstring): ``data`` is a list of trace
    dicts, ``layout`` a dict; both are written into the page's JSON as they are."""

    __slots__ = ("data", "layout")

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add_trace(self, trace: dict[str, Any]) -> Figure:
        self.data.append(trace)
        return self

    def update_layout(self, **props: Any) -> Figure:
        _merge(self.layout, props)
        return self

    def update_xaxes(self, **props: Any) -> Figure:
        return self.update_layout(xaxis=props)

    def update_yaxes(self, **props: Any) -> Figure:
        return self.update_layout(yaxis=props)

    def add_annotation(self, **props: Any) -> Figure:
        self.layout.setdefault("annotations", []).append(props)
        return self

    def to_plotly_json(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout}


def scatter(**props: Any) -> dict[str, Any]:
    """A plotly scatter trace as data."""
    return {"type": "scatter", **props}


def bar(**props: Any) -> dict[str, Any]:
    """A plotly bar trace as data."""
    return {"type": "bar", **props}


def heatmap(**props: Any) -> dict[str, Any]:
    """A plotly heatmap trace as data."""
    return {"type": "heatmap", **props}


def style_figure(fig: Figure, *, title: str, height: int = 460, x_title: str | None = None,
                 y_title: str | None = None) -> Figure:
    """Give ``fig`` the report's look, a title (plain text: escaped for plotly) and axis titles
    (units belong in them). Returns ``fig``."""
    fig.update_layout(template=_template(), height=height, title={"text": plot_text(title)})
    if x_title is not None:
        fig.update_xaxes(title={"text": x_title})
    if y_title is not None:
        fig.update_yaxes(title={"text": y_title})
    return fig


# -- ticks and labels ------------------------------------------------------------------------------

#: Tick mantissas for log axes, coarsest first: the first set that gives three ticks wins.
_MANTISSAS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
              (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))


def log_ticks(lo: float, hi: float, *, most: int = 10) -> list[float]:
    """Tick values (data units) for a log axis from ``lo`` to ``hi``: 1, 2, 5, 10, 20... when
    that gives 3 to ``most`` ticks; 1, 10, 100... when it gives more; finer steps (1.5, 3,
    7; then every digit) when it gives fewer; evenly spaced round numbers when even those
    give fewer than two (a range within one decade, 0.69-0.97, still gets ticks)."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    eps = 1e-9

    def ticks_of(mantissas: tuple[float, ...]) -> list[float]:
        ticks = [float(f"{m * 10.0 ** e:.6g}")
                 for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in mantissas]
        return sorted(t for t in ticks if lo * (1 - eps) <= t <= hi * (1 + eps))

    standard = ticks_of(_MANTISSAS[1])
    if len(standard) > most:
        decades = ticks_of(_MANTISSAS[0])
        return decades if len(decades) <= most else decades[::math.ceil(len(decades) / most)]
    if len(standard) >= 3:
        return standard
    best = standard
    for mantissas in _MANTISSAS[2:]:
        finer = ticks_of(mantissas)
        if len(finer) > most:
            break
        best = finer
        if len(finer) >= 3:
            return best
    if len(best) >= 2:
        return best
    if hi <= lo * (1 + 1e-6):  # one value
        return [float(f"{lo:.3g}")]
    step = _nice_step((hi - lo) / 3)
    start = math.ceil(lo / step - eps) * step
    out: list[float] = []
    while start <= hi * (1 + eps) and len(out) < most:
        out.append(float(f"{start:.6g}"))
        start += step
    return out or [float(f"{lo:.3g}")]


def _nice_step(raw: float) -> float:
    """1, 2 or 5 × a power of ten, at most ``raw``."""
    exponent = math.floor(math.log10(raw))
    for m in (5.0, 2.0, 1.0):
        if m * 10.0 ** exponent <= raw:
            return m * 10.0 ** exponent
    return 10.0 ** exponent


def si(value: float, unit: str = "") -> str:
    """1.5e9 -> '1.5 G' + unit; 0.5 -> '0.5' (SI prefixes k, M, G, T; three digits)."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def log_axis(fig: Any, axis: str, lo: float, hi: float, *, unit: str = "",
             prefixes: bool = False, pad: float = 0.0) -> None:
    """Make ``axis`` ("x" or "y") of ``fig`` a log axis from ``lo`` to ``hi`` (data units,
    widened by ``pad`` decades each side) with readable ticks from :func:`log_ticks`: plain
    numbers (0.5, 1, 2, 5) or, with ``prefixes``, SI ones (500 M, 1 G), each followed by
    ``unit``."""
    a, b = math.log10(lo) - pad, math.log10(hi) + pad
    ticks = log_ticks(10 ** a, 10 ** b)
    text = [si(t, unit) if prefixes else f"{t:g}" + (f" {unit}" if unit else "")
            for t in ticks]
    update = {"type": "log", "range": [a, b], "tickmode": "array", "tickvals": ticks,
              "ticktext": text, "minor": {"showgrid": False}}
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**update)


#: Where a label may sit around its point, in order of preference (plotly textposition).
LABEL_POSITIONS = ("top left", "top right", "bottom right", "middle left", "middle right",
                   "bottom left", "top center", "bottom center")


def place_labels(points: Sequence[tuple[float, float]], texts: Sequence[str], *,
                 obstacles: Sequence[tuple[float, float]] = (), width_px: float = 1000.0,
                 height_px: float = 360.0, char_px: float = 5.8, line_px: float = 13.0,
                 marker_px: float = 7.0) -> list[str | None]:
    """A textposition for each label, or None where every position would overlap.

    ``points`` and ``obstacles`` (other markers) are in plot fractions (0-1 from the left and
    bottom). Rule: labels are placed in the order given; each takes the first position of
    :data:`LABEL_POSITIONS` whose box (len × ``char_px`` by ``line_px``, beside a marker of
    radius ``marker_px``) stays inside the plot and overlaps no placed label and no marker;
    a label that fits nowhere is left out (its point keeps its hover text).
    """
    placed: list[tuple[float, float, float, float]] = []
    marks = [(x * width_px, y * height_px) for x, y in [*points, *obstacles]]

    def box(px: float, py: float, w: float, where: str) -> tuple[float, float, float, float]:
        vertical, _, horizontal = where.partition(" ")
        if vertical == "middle":
            x0 = px - marker_px - w if horizontal == "left" else px + marker_px
            return x0, py - line_px / 2, x0 + w, py + line_px / 2
        x0 = {"left": px - w, "right": px, "center": px - w / 2}[horizontal]
        y0 = py + marker_px / 2 if vertical == "top" else py - marker_px / 2 - line_px
        return x0, y0, x0 + w, y0 + line_px

    def free(b: tuple[float, float, float, float], own: int) -> bool:
        x0, y0, x1, y1 = b
        if x0 < 0 or x1 > width_px or y0 < 0 or y1 > height_px:
            return False
        if any(x0 < c1 and c0 < x1 and y0 < d1 and d0 < y1 for c0, d0, c1, d1 in placed):
            return False
        r = marker_px - 1
        return not any(x0 - r < mx < x1 + r and y0 - r < my < y1 + r
                       for k, (mx, my) in enumerate(marks) if k != own)

    out: list[str | None] = []
    for i, ((x, y), text) in enumerate(zip(points, texts, strict=True)):
        px, py = x * width_px, y * height_px
        w = len(text) * char_px
        where = next((p for p in LABEL_POSITIONS if free(box(px, py, w, p), i)), None)
        if where is not None:
            placed.append(box(px, py, w, where))
        out.append(where)
    return out


@dataclass(frozen=True)
class Chart:
    """A figure with a plain-text caption (how to read it) shown under it."""

    figure: Any
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """One titled block of a report page (see the module docstring)."""

    title: str
    intro: str = ""
    figures: Sequence[Any] = ()
    html_table: str | None = None
    body_html: str | None = None
    anchor: str | None = None


def _figure_html(figure: Any, div_id: str) -> str:
    """The div and script that draw ``figure`` (a :class:`Figure` or a figure dict).

    The JSON is written here, not by plotly: plotly's writer escapes non-ASCII text (``±``
    becomes ``\\u00b1``) unless orjson happens to be installed, and a report must not depend on
    what else is on the machine.
    """
    data = figure if isinstance(figure, dict) else figure.to_plotly_json()
    layout = data.get("layout", {}) or {}
    height = layout.get("height") or 460
    spec = {"data": data.get("data", []), "layout": layout, "config": PLOTLY_CONFIG}
    snippet = (f'<div id="{div_id}" class="plotly-graph-div plot" '
               f'style="height:{int(height)}px;width:100%"></div>'
               f'<script>(function(){{var f={_json(spec)};'
               f'Plotly.newPlot("{div_id}",f.data,f.layout,f.config);}})();</script>')
    _check_script_safe(snippet, f"figure {div_id}")
    return snippet


#: Characters that must not appear raw inside a <script> element's JSON: "<" and ">" could
#: open or close a tag, "&" an entity in XHTML readers, and U+2028/U+2029 end a line in old
#: JavaScript engines.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                   "\u2029": "\\u2029"}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_plotly_json"):
        return value.to_plotly_json()
    if hasattr(value, "tolist"):  # pandas Series and Index
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} into a figure")


def _json(obj: Any) -> str:
    """Compact JSON for an inline script: UTF-8 text as it is, NaN as null, and the characters
    of :data:`_SCRIPT_ESCAPES` escaped so nothing inside can end the script element."""
    text = json.dumps(_nan_to_none(obj), ensure_ascii=False, separators=(",", ":"),
                      default=_json_default, allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m.group()], text)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist") and not isinstance(obj, str):
        return _nan_to_none(obj.tolist())
    return obj


def _check_script_safe(text: str, what: str) -> None:
    # Only the figure's own closing tag may appear: the figure JSON escapes "<" (_json), so any
    # other "</script" would be content breaking out of the script element.
    if text.lower().count("</script") > 1:
        raise ValueError(f"{what} holds a '</script' that would end its script element early")


def _section_html(index: int, section: Section, figure_ids: Iterator[str]) -> str:
    anchor = escape(section.anchor or f"section-{index + 1}")
    parts = [f'<section id="{anchor}"><h2>{escape(section.title)}</h2>']
    if section.intro:
        parts.append(paragraphs(section.intro))
    if section.body_html:
        parts.append(str(section.body_html))
    for item in section.figures:
        chart = item if isinstance(item, Chart) else Chart(item)
        div_id = next(figure_ids)
        parts.append(f'<div class="figure">{_figure_html(chart.figure, div_id)}')
        if chart.caption:
            parts.append(f'<div class="caption">{paragraphs(chart.caption)}</div>')
        parts.append("</div>")
    if section.html_table:
        parts.append(str(section.html_table))
    parts.append("</section>")
    return "".join(parts)


def _provenance_html(provenance: Mapping[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, Mapping):
            return html_list(f"{k}: {x}" for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return html_list(v)
        return escape(v)

    rows = "".join(f"<dt>{escape(k)}</dt><dd>{value(v)}</dd>" for k, v in provenance.items())
    return (f'<section id="provenance"><h2>Provenance</h2><dl class="provenance">{rows}</dl>'
            f"</section>")


_plotlyjs_cache: list[str] = []


def _plotlyjs() -> str:
    if not _plotlyjs_cache:
        from plotly.offline import get_plotlyjs

        js = get_plotlyjs()
        if "</script" in js.lower():
            raise ValueError("the plotly.js bundle holds '</script' and cannot be inlined")
        _plotlyjs_cache.append(js)
    return _plotlyjs_cache[0]


def render_page(title: str, sections: Sequence[Section], provenance: Mapping[str, Any], *,
                subtitle: str = "", lead_html: str | None = None) -> str:
    """The whole report as one self-contained HTML string (plotly.js inlined once).

    ``title`` and ``subtitle`` are plain text; ``lead_html`` is trusted HTML shown before the
    contents list (e.g. a verdict built with the escaping helpers).
    """
    ids = (f"figure-{i}" for i in itertools.count(1))
    body = [_section_html(i, s, ids) for i, s in enumerate(sections)]
    toc = "".join(f'<li><a href="#{escape(s.anchor or f"section-{i + 1}")}">{escape(s.title)}'
                  f"</a></li>" for i, s in enumerate(sections))
    toc += '<li><a href="#provenance">Provenance</a></li>'
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    # default-src 'none' plus inline scripts/styles and data:/blob: images: the browser itself
    # refuses any request the page might try to make, so it works (and stays) offline.
    csp = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
           "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style>",
        f'<script type="text/javascript">{_plotlyjs()}</script></head><body><main>',
        f'<header class="page"><h1>{escape(title)}</h1>{sub}</header>',
        str(lead_html) if lead_html else "",
        f'<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>',
        *body,
        _provenance_html(provenance),
        "</main></body></html>\n",
    ])


def write_page(path: str | Path, html: str) -> Path:
    """Write ``html`` to ``path`` atomically (creating its folder); returns the path."""
    return atomic_write_text(path, html)
