"""Self-contained offline HTML reports: the page builder every report uses, and compare's charts.

Owns every use of plotly in roofline (nothing else imports it) and the page's look; owns no
modelling — the numbers come from ``roofline.compare`` (or the caller) ready to draw.

The page builder (a stable API; ``roofline.sweep_report`` builds on it)
----------------------------------------------------------------------
``Section(title, intro="", figures=(), html_table=None, body_html=None, anchor=None)``
    One titled block of the page. ``intro`` is plain text (escaped; a blank line starts a new
    paragraph). ``figures`` are plotly Figures (or figure dicts) or :class:`Chart` (a figure
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
``style_figure(fig, *, title, height, x_title=None, y_title=None) -> fig``
    The report's plotly look (fonts, palette, grid, hover, legend); ``family_colour(family)``
    and ``BOUND_COLOURS`` give colours that stay the same for a family or bound on every
    chart; ``plot_text(s)`` escapes a user string for plotly's own text markup.

The compare report
------------------
``compare_page(comparison, *, focus, command, hardware_args) -> str`` builds the whole page
from a :class:`roofline.compare.Comparison`: the verdict, ``pareto_figure`` (per device),
``rank_figure``, ``roofline_figure`` and ``breakdown_figure`` (per device, one model),
``ridge_figure``, the table of numbers and the provenance.

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
from typing import TYPE_CHECKING, Any

from .io import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = [
    "Markup", "Chart", "Section", "render_page", "write_page", "escape", "paragraphs",
    "html_list", "html_table", "style_figure", "plot_text", "family_colour", "BOUND_COLOURS",
    "FAMILY_COLOURS", "FONT_FAMILY", "PLOTLY_CONFIG",
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
    """A string of trusted HTML: inserted into the page as is (everything else is escaped)."""

    __slots__ = ()


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


_template_cache: list[Any] = []


def _template_object() -> Any:
    # Validated once per process: plotly checks a template dict property by property, which
    # costs ~0.1 s per figure.
    if not _template_cache:
        import plotly.graph_objects as go

        _template_cache.append(go.layout.Template(_template()))
    return _template_cache[0]


def style_figure(fig: go.Figure, *, title: str, height: int = 460, x_title: str | None = None,
                 y_title: str | None = None) -> go.Figure:
    """Give ``fig`` the report's look, a title (plain text: escaped for plotly) and axis titles
    (units belong in them). Returns ``fig``."""
    fig.layout.template = _template_object()
    fig.update_layout(height=height, title={"text": plot_text(title)})
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig


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
    """The div and script that draw ``figure`` (a plotly Figure or a figure dict).

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


# -- the compare report -------------------------------------------------------------------------

#: Marker symbols for the models of one family, in zoo order (V3-Large circle, V3-Small
#: diamond, ...), so models stay distinguishable within a family colour.
_SYMBOLS = ("circle", "diamond", "square", "triangle-up", "cross", "x", "star", "pentagon",
            "hexagon", "triangle-down")


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 0.1:
        return f"{value:.2f} ms"
    return f"{value * 1e3:.1f} µs"


def _count(n: float, sep: str = "") -> str:
    """1.08e9 -> '1.08G' (``sep`` goes between number and prefix: '1.08 G')."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{sep}{unit}"
    return f"{n:g}{sep}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _symbol_map(comparison: Any) -> dict[str, str]:
    """Model name → marker symbol, numbered within each family in comparison order."""
    out: dict[str, str] = {}
    per_family: dict[str, int] = {}
    for variant, family in zip(comparison.variants, comparison.families, strict=True):
        if variant.name not in out:
            i = per_family.get(family, 0)
            out[variant.name] = _SYMBOLS[i % len(_SYMBOLS)]
            per_family[family] = i + 1
    return out


def _hover(row: Mapping[str, Any]) -> str:
    """Hover text of one result row (plotly markup; user strings escaped)."""
    lines = [f"<b>{plot_text(row['short_label'])}</b> ({plot_text(row['family'])})",
             f"width {row['width']:g}×, {row['resolution']} px",
             f"top-1: {row['top1']:.1f}%" if row["top1"] is not None and
             not (isinstance(row["top1"], float) and math.isnan(row["top1"]))
             else "top-1: not published",
             f"MACs: {_count(row['macs'])}   params: {_count(row['params'])}"]
    if row["supported"]:
        total = row["latency_ms"]
        lines.append(f"latency: {_ms(total)} on {plot_text(row['hardware'])} "
                     f"({plot_text(row['precision'])})")
        lines.append("bound: " + ", ".join(
            f"{b} {_pct(row[f'{b}_bound_ms'], total)}" for b in BOUND_COLOURS))
        lines.append(f"latency rank: {row['rank']}" + ("   ★ Pareto-optimal" if row["pareto"]
                                                       else ""))
    else:
        lines.append(f"unsupported on {plot_text(row['hardware'])}: "
                     f"{plot_text(row['unsupported_kinds'])}")
    return "<br>".join(lines)


def pareto_figure(comparison: Any, hardware: str) -> go.Figure:
    """Top-1 against predicted latency on one device, one trace per family present among the
    supported models with a top-1, then the frontier (a step line) when it is not empty."""
    import plotly.graph_objects as go

    rows = comparison.on(hardware)
    shown = rows[rows["supported"] & rows["top1"].notna()]
    symbols = _symbol_map(comparison)
    fig = go.Figure()
    present = set(shown["family"])
    for family in [f for f in dict.fromkeys(comparison.families) if f in present]:
        part = shown[shown["family"] == family]
        records = part.to_dict(orient="records")
        fig.add_trace(go.Scatter(
            x=part["latency_ms"], y=part["top1"], mode="markers", name=plot_text(family),
            legendgroup=plot_text(family),
            marker={"color": family_colour(family), "size": [13 if r["pareto"] else 8
                                                             for r in records],
                    "symbol": [symbols[r["model"]] for r in records],
                    "line": {"color": ["#1d2330" if r["pareto"] else "white"
                                       for r in records], "width": 1.5},
                    "opacity": 0.95},
            hovertext=[_hover(r) for r in records], hoverinfo="text"))
    front = shown[shown["pareto"]].sort_values("latency_ms")
    if len(front):
        fig.add_trace(go.Scatter(
            x=front["latency_ms"], y=front["top1"], mode="lines+text", name="Pareto frontier",
            line={"color": "#1d2330", "width": 1.5, "shape": "hv", "dash": "dot"},
            # Above-left of each point: the region a frontier point dominates nothing in.
            text=[plot_text(t) for t in front["short_label"]], textposition="top left",
            textfont={"size": 10, "color": "#3b4350"}, hoverinfo="skip"))
    style_figure(fig, title=f"{hardware}: ImageNet top-1 against predicted latency",
                 x_title="predicted latency (ms, log scale)", y_title="ImageNet top-1 (%)",
                 height=480)
    if len(shown):
        # Room on the left for the frontier's labels, written left of their points.
        lo, hi = math.log10(shown["latency_ms"].min()), math.log10(shown["latency_ms"].max())
        span = max(hi - lo, 0.3)
        fig.update_xaxes(range=[lo - 0.3 * span, hi + 0.08 * span])
        top = shown["top1"].max()
        fig.update_yaxes(range=[shown["top1"].min() - 1.5, top + 0.08 * max(
            top - shown["top1"].min(), 5)])
    fig.update_xaxes(type="log")
    fig.update_layout(legend=_TOP_LEGEND)
    return fig


#: A horizontal legend above the plot area, right-aligned: it never hides data.
_TOP_LEGEND: dict[str, Any] = {"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0,
                               "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0)",
                               "borderwidth": 0}


def _focus_name(comparison: Any, label: str) -> str:
    return comparison.short_labels[comparison.labels.index(label)]


def rank_figure(comparison: Any) -> go.Figure:
    """Latency rank of every model on each compared device (1 = fastest), one line per model
    that runs on at least one device; the model's label is written at its right end."""
    import plotly.graph_objects as go

    names = comparison.hardware_names
    table = comparison.table
    symbols = _symbol_map(comparison)
    fig = go.Figure()
    families_seen: set[str] = set()
    for label, short, family, model in zip(comparison.labels, comparison.short_labels,
                                           comparison.families,
                                           [v.name for v in comparison.variants], strict=True):
        part = table[table["label"] == label].set_index("hardware").loc[names]
        if not part["supported"].any():
            continue
        ranks = [None if _isna(r) else int(r) for r in part["rank"]]
        records = part.reset_index().to_dict(orient="records")
        last = max(i for i, r in enumerate(ranks) if r is not None)
        fig.add_trace(go.Scatter(
            x=names, y=ranks, mode="lines+markers+text", name=plot_text(family),
            legendgroup=plot_text(family), showlegend=family not in families_seen,
            line={"color": family_colour(family), "width": 1.6},
            marker={"symbol": symbols[model], "size": 8, "color": family_colour(family)},
            text=[plot_text(short) if i == last else "" for i in range(len(names))],
            textposition="middle right", textfont={"size": 10, "color": family_colour(family)},
            hovertext=[_hover(r) for r in records], hoverinfo="text", connectgaps=False))
        families_seen.add(family)
    style_figure(fig, title="Latency rank on each device (1 = fastest)",
                 x_title="device", y_title="latency rank (1 = fastest)",
                 height=max(460, 22 * len(comparison.variants) + 140))
    n = len(comparison.variants)
    fig.update_yaxes(range=[n + 0.6, 0.4], dtick=1 if n <= 40 else 5)
    fig.update_xaxes(type="category", range=[-0.3, len(names) - 0.3 + 0.9], title_text=None)
    fig.update_layout(legend=_TOP_LEGEND)
    return fig


def _isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def roofline_figure(comparison: Any, hardware: str, label: str) -> go.Figure:
    """The roofline of one device with every kernel (that has MACs) of one model.

    Traces: the DRAM roof, each lower compute roof (peak × efficiency of some op kinds), each
    on-chip level's roof, then one marker trace per bound present among the drawn kernels.
    """
    import numpy as np
    import plotly.graph_objects as go

    from .compare import kernel_frame, roofs

    h = comparison.hardware_names.index(hardware)
    pred = comparison.prediction(hardware, label)
    rf = roofs(comparison.hardware[h], comparison.precisions[h])
    frame = kernel_frame(pred)
    drawn = frame[frame["attained_macs_per_s"].notna() & (frame["intensity"] > 0)]
    lo = min([rf.ridge_point / 100, *(drawn["intensity"] / 2)])
    hi = max([rf.ridge_point * 10, *(drawn["intensity"] * 3)])
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    fig = go.Figure()
    dram_bw = rf.memory[0][1]
    fig.add_trace(go.Scatter(
        x=xs, y=np.minimum(rf.peak_macs_per_s, dram_bw * xs), mode="lines",
        name=plot_text(f"roof: {rf.compute[0][0]} {_count(rf.peak_macs_per_s, ' ')}MAC/s, "
                       f"DRAM {dram_bw / 1e9:.3g} GB/s (ridge point {rf.ridge_point:.3g} "
                       f"MACs/byte)"),
        line={"color": "#1d2330", "width": 2.5}, hoverinfo="skip"))
    for name, value in rf.compute[1:]:
        fig.add_trace(go.Scatter(
            x=xs, y=np.minimum(value, dram_bw * xs), mode="lines",
            name=plot_text(f"compute roof: {name}"),
            line={"color": "#7f8896", "width": 1.4, "dash": "dash"}, hoverinfo="skip"))
    for name, bw in rf.memory[1:]:
        fig.add_trace(go.Scatter(
            x=xs, y=np.minimum(rf.peak_macs_per_s, bw * xs), mode="lines",
            name=plot_text(f"memory roof: {name} {bw / 1e9:.3g} GB/s"),
            line={"color": "#5d8fc4", "width": 1.4, "dash": "dot"}, hoverinfo="skip"))
    total = float(frame["latency_ms"].sum())
    for bound in BOUND_COLOURS:
        part = drawn[drawn["bound"] == bound]
        if not len(part):
            continue
        share = part["latency_ms"] / total if total else part["latency_ms"] * 0
        hover = [
            f"<b>{plot_text(r['name'])}</b> ({plot_text(r['kind'].replace('_', ' '))})"
            f"<br>intensity: {r['intensity']:.3g} MACs/byte"
            f"<br>attained: {_count(r['attained_macs_per_s'], ' ')}MAC/s "
            f"({100 * r['attained_macs_per_s'] / rf.peak_macs_per_s:.2g}% of peak)"
            f"<br>MACs: {_count(r['macs'])}   bytes: {_count(r['bytes'])}B"
            f"<br>latency: {_ms(r['latency_ms'])} ({100 * s:.1f}% of the model)"
            f"<br>compute {_ms(r['compute_ms'])}, memory {_ms(r['memory_ms'])}, "
            f"overhead {_ms(r['overhead_ms'])} → {bound}-bound"
            for r, s in zip(part.to_dict(orient="records"), share, strict=True)]
        fig.add_trace(go.Scatter(
            x=part["intensity"], y=part["attained_macs_per_s"], mode="markers",
            name=f"{bound}-bound kernels ({len(part)})",
            marker={"color": BOUND_COLOURS[bound], "size": 6 + 30 * np.sqrt(share),
                    "line": {"color": "white", "width": 0.8}, "opacity": 0.85},
            hovertext=hover, hoverinfo="text"))
    style_figure(fig, title=f"{hardware}: roofline of {_focus_name(comparison, label)}, one "
                            f"point per kernel",
                 x_title="operational intensity (MACs per byte moved, log scale)",
                 y_title="attained MACs/s (log scale)", height=500)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", tickformat="~s", dtick="D2")
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top"},
                      margin={"b": 40})
    return fig


def breakdown_figure(comparison: Any, hardware: str, label: str) -> go.Figure:
    """Per-stage latency of one model on one device, stacked by bound: one horizontal bar
    trace per bound present (the per-inference overhead is its own stage)."""
    import plotly.graph_objects as go

    from .compare import stage_breakdown

    pred = comparison.prediction(hardware, label)
    # The fixed per-inference cost is said in the title, not drawn: as a bar it would dwarf
    # every stage of a small model on an accelerator.
    data = stage_breakdown(pred, per_inference=False)
    stages = list(dict.fromkeys(data["stage"]))
    fig = go.Figure()
    for bound in BOUND_COLOURS:
        part = data[data["bound"] == bound]
        if not len(part):
            continue
        fig.add_trace(go.Bar(
            y=[plot_text(s) for s in part["stage"]], x=part["latency_ms"], orientation="h",
            name=f"{bound}-bound", marker={"color": BOUND_COLOURS[bound]},
            hovertext=[f"<b>{plot_text(s)}</b>: {_ms(ms)} in {_plural(k, 'kernel')} "
                       f"{bound}-bound ({_pct(ms, pred.latency_ms)} of the model)"
                       for s, ms, k in zip(part["stage"], part["latency_ms"], part["kernels"],
                                           strict=True)],
            hoverinfo="text"))
    fixed = (f" + {_ms(pred.per_inference_ms)} fixed per inference"
             if pred.per_inference_ms > 0 else "")
    kernels_ms = pred.latency_ms - pred.per_inference_ms
    style_figure(fig, title=f"{hardware}: {_focus_name(comparison, label)} takes "
                            f"{_ms(pred.latency_ms)} = {_ms(kernels_ms)} in kernels, by "
                            f"stage{fixed}",
                 x_title="predicted latency (ms)", y_title="stage (top-level block)",
                 height=max(360, 17 * len(stages) + 150))
    fig.update_layout(barmode="stack", legend={**_TOP_LEGEND, "traceorder": "normal"})
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=[plot_text(s) for s in stages], autorange="reversed")
    return fig


def ridge_figure(comparison: Any, sweep: Any, markers: Sequence[Any]) -> go.Figure:
    """Relative latency (cost / best cost at each ridge point) against the ridge point, one
    line per model; models on no device's frontier start hidden (legend-only). Devices are
    vertical lines (layout shapes, not traces)."""
    import plotly.graph_objects as go

    shown = _ridge_shown(comparison)
    symbols = _symbol_map(comparison)
    fig = go.Figure()
    for label, short, family, variant in zip(comparison.labels, comparison.short_labels,
                                             comparison.families, comparison.variants,
                                             strict=True):
        part = sweep[sweep["model"] == label]
        visible = True if label in shown else "legendonly"
        fig.add_trace(go.Scatter(
            x=part["ridge_point"], y=part["relative"], mode="lines", name=plot_text(short),
            visible=visible, line={"color": family_colour(family), "width": 1.8,
                                   "dash": _DASHES[_SYMBOLS.index(symbols[variant.name])
                                                   % len(_DASHES)]},
            hovertemplate=f"<b>{plot_text(short)}</b><br>ridge point %{{x:.0f}} MACs/byte"
                          f"<br>relative latency %{{y:.2f}}×<extra></extra>"))
    stop = float(sweep["ridge_point"].max()) if len(sweep) else 500.0
    rows = _label_rows([(m.ridge_point / stop, len(f"{m.label} {m.ridge_point:.0f}"))
                        for m in markers])
    for m, row in zip(markers, rows, strict=True):
        paper = m.label.endswith("(paper)")
        colour = "#6b7380" if paper else "#0b5cad"
        fig.add_shape(type="line", x0=m.ridge_point, x1=m.ridge_point, y0=0,
                      y1=1.0 + 0.045 * row, yref="paper",
                      line={"color": colour, "width": 1.2, "dash": "dot" if paper else "dash"})
        # Labels sit above the plot in rows, so they neither overlap each other nor the data.
        fig.add_annotation(x=m.ridge_point, y=1.0 + 0.045 * row, yref="paper",
                           text=plot_text(f"{m.label} {m.ridge_point:.0f}"), showarrow=False,
                           xanchor="left", yanchor="bottom", xshift=2,
                           font={"size": 10, "color": colour})
    height = 580
    style_figure(fig, title="Relative latency across ridge points (after the MobileNetV4 "
                            "paper's Figure 2)",
                 x_title="ridge point (MACs per int8 byte)",
                 y_title="latency relative to the fastest model (×, log scale)", height=height)
    fig.update_layout(margin={"t": 44 + int(0.045 * (max(rows, default=0) + 1) * height)},
                      title={"y": 0.99, "yanchor": "top"})
    fig.update_xaxes(range=[0, stop])
    fig.update_yaxes(type="log", dtick="D2")
    fig.update_layout(legend={"font": {"size": 10}, "title": {"text": "model"}})
    return fig


def _ridge_shown(comparison: Any) -> set[str]:
    """Labels the ridge sweep draws at first: the models on every device's frontier (the
    safe choices), else those on any device's frontier, else all."""
    table = comparison.table
    fronts = [set(table.loc[(table["hardware"] == hw) & table["pareto"], "label"])
              for hw in comparison.hardware_names]
    on_all = set.intersection(*fronts) if fronts else set()
    if len(on_all) >= 3:
        return on_all
    on_any = set.union(*fronts) if fronts else set()
    return on_any or set(comparison.labels)


def _label_rows(items: Sequence[tuple[float, int]], plot_px: float = 760.0,
                char_px: float = 6.0) -> list[int]:
    """Row of each label (x as a fraction of the axis, length in characters): the lowest row
    where it starts after the previous label in that row ends."""
    ends: list[float] = []
    out = [0] * len(items)
    for i in sorted(range(len(items)), key=lambda j: items[j][0]):
        start = items[i][0] * plot_px
        row = next((r for r, end in enumerate(ends) if start > end + 6), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = start + items[i][1] * char_px
        out[i] = row
    return out


_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def _verdict_html(comparison: Any) -> Markup:
    """The answer first: per device a card (fastest model, most accurate on the frontier, what
    cannot run), then the fastest model reaching each top-1 target on each device."""
    cards = []
    for h, hw in enumerate(comparison.hardware_names):
        rows = comparison.on(hw)
        ok = rows[rows["supported"]]
        front = comparison.frontier(hw)
        items: list[tuple[str, str]] = []
        if len(ok):
            f = ok.iloc[0]
            share = _pct(f[str(f["bound"]) + "_bound_ms"], f["latency_ms"])
            top1 = f"top-1 {f['top1']:.1f}%, " if not _isna(f["top1"]) else ""
            items.append(("Fastest", f"{f['short_label']}: {_ms(f['latency_ms'])} ({top1}"
                                     f"{share} {f['bound']}-bound)"))
        if len(front):
            best = front.iloc[-1]
            share = _pct(best[str(best["bound"]) + "_bound_ms"], best["latency_ms"])
            items.append(("Most accurate", f"{best['short_label']}: top-1 {best['top1']:.1f}% "
                                           f"at {_ms(best['latency_ms'])} ({share} "
                                           f"{best['bound']}-bound)"))
            items.append(("Frontier", f"{_plural(len(front), 'model')} of {len(rows)} "
                                      f"(★ in the table below)"))
        else:
            items.append(("Frontier", "empty: no supported model has a published top-1"))
        bad = rows[~rows["supported"]]
        if len(bad):
            kinds = sorted({k for ks in bad["unsupported_kinds"] for k in ks.split(",") if k})
            items.append(("Cannot run", f"{_plural(len(bad), 'model')} with "
                                        f"{', '.join(kinds)} kernels: "
                                        + ", ".join(bad["short_label"])))
        no_top1 = ok[ok["top1"].isna()]
        if len(no_top1):
            items.append(("No top-1", f"{', '.join(no_top1['short_label'])}: ranked, but "
                                      f"never on the frontier"))
        head = escape(f"{hw} · {comparison.hardware[h].kind} · {comparison.precisions[h]}")
        dl = "".join(f"<dt>{escape(k)}</dt><dd>{_breakable(v)}</dd>" for k, v in items)
        cards.append(f'<div class="card"><h3>{head}</h3><dl>{dl}</dl></div>')
    picks = comparison.picks()
    table = ""
    if len(picks):
        names = comparison.hardware_names
        body = []
        for target in dict.fromkeys(picks["target"]):
            row: list[Any] = [f"≥ {target:g}%"]
            for hw in names:
                p = picks[(picks["target"] == target) & (picks["hardware"] == hw)].iloc[0]
                row.append(Markup(
                    f"{_breakable(p['short_label'])} <span class=\"sub\">{p['top1']:.1f}%"
                    f"</span> "
                    f"<strong>{escape(_ms(p['latency_ms']))}</strong>")
                    if not _isna(p["label"]) else "none reaches it")
            body.append(row)
        table = ("<h3>The fastest model reaching each top-1 target</h3>"
                 + html_table(["ImageNet top-1", *names], body)
                 + paragraphs("Read a row: to ship at least that accuracy, the model to pick on "
                              "each device, its published top-1 and its predicted latency. "
                              "Each pick is on that device's Pareto frontier."))
    return Markup(f'<section id="verdict"><h2>Verdict</h2><div class="verdict">'
                  f'{"".join(cards)}</div>{table}</section>')


def _movers_html(comparison: Any, sweep: Any, n: int = 3) -> Markup:
    """The models whose relative latency changes most across the sweep, both ways."""
    from .compare import ridge_movers

    movers = ridge_movers(sweep)
    if len(movers) < 2:
        return Markup("")
    short = dict(zip(comparison.labels, comparison.short_labels, strict=True))
    lo = float(sweep["ridge_point"].min())
    hi = float(sweep["ridge_point"].max())

    def line(r: Mapping[str, Any]) -> str:
        return (f"{short[r['model']]}: {r['relative_low']:.3g}× the cheapest at RP {lo:g}, "
                f"{r['relative_high']:.3g}× at RP {hi:g}")

    recs = movers.to_dict(orient="records")
    gain = [line(r) for r in recs[:n] if r["ratio"] < 1]
    lose = [line(r) for r in reversed(recs[-n:]) if r["ratio"] > 1]
    parts = []
    if gain:
        parts.append(paragraphs("Gain most on high-ridge devices (accelerators: bytes matter, "
                                "MACs are cheap):") + html_list(gain))
    if lose:
        parts.append(paragraphs("Gain most on low-ridge devices (CPUs: MACs matter, bytes are "
                                "cheap):") + html_list(lose))
    return Markup("".join(parts))


def _breakable(text: str) -> Markup:
    """Escaped ``text`` that may wrap after ``_``, ``@``, ``:`` and ``/`` (long model names)."""
    out = str(escape(text))
    for ch in ("_", "@", ":", "/"):
        out = out.replace(ch, ch + "<wbr>")
    return Markup(out)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


#: Explains the results table (shown above it).
RESULTS_NOTE = ("★ marks a Pareto-optimal model on that device (no other model is both faster "
                "and more accurate); shaded rows are optimal on at least one device. Latency: "
                "predicted milliseconds at the device's precision, then the latency rank "
                "(1 = fastest). Bound: the dominant bound, then the shares of the latency in "
                "compute-, memory- and overhead-bound kernels (the per-inference overhead "
                "counts as overhead).")


def _results_table(comparison: Any) -> Markup:
    names = comparison.hardware_names
    table = comparison.table
    columns = ["model", "width", "res (px)", "top-1 %", "MACs", "params"]
    for _ in names:
        columns += ["ms (rank)", "bound, C/M/O %"]
    rows, classes = [], []
    for label, short in zip(comparison.labels, comparison.short_labels, strict=True):
        part = table[table["label"] == label].set_index("hardware").loc[names]
        first = part.iloc[0]
        row: list[Any] = [short, float(first["width"]),
                          int(first["resolution"]),
                          None if _isna(first["top1"]) else float(first["top1"]),
                          _count(first["macs"]), _count(first["params"])]
        for hw in names:
            r = part.loc[hw]
            if r["supported"]:
                star = "★ " if r["pareto"] else ""
                shares = "/".join(f"{100 * r[b + '_bound_ms'] / r['latency_ms']:.0f}"
                                  for b in BOUND_COLOURS)
                row += [f"{star}{r['latency_ms']:.3g} ({int(r['rank'])})",
                        Markup(f"{escape(r['bound'])} <span class=\"sub\">{shares}</span>")]
            else:
                row += ["unsupported", f"cannot run: {r['unsupported_kinds']}"]
        rows.append(row)
        classes.append("frontier" if part["pareto"].any() else
                       ("unsupported" if not part["supported"].any() else None))
    numeric = [1, 2, 3, 4, 5] + [6 + 2 * i for i in range(len(names))]
    groups = [("", 6)] + [(hw, 2) for hw in names]
    return html_table(columns, rows, numeric=numeric, row_classes=classes, groups=groups)


def _provenance(comparison: Any, command: str, hardware_args: Sequence[str]) -> dict[str, Any]:
    import datetime

    from . import __version__

    prov: dict[str, Any] = {
        "command": command,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "roofline version": __version__,
        "hardware as given": ", ".join(hardware_args),
    }
    for hw, precision in zip(comparison.hardware, comparison.precisions, strict=True):
        info = [f"kind {hw.kind}, priced at {precision}",
                f"peak {_count(hw.peak(precision), ' ')}MAC/s, DRAM "
                f"{hw.dram.bandwidth_bytes_per_s / 1e9:.3g} GB/s, ridge point "
                f"{hw.ridge_point(precision):.3g} MACs/byte",
                f"description: {hw.description or '(none)'}",
                f"file: {hw.path}"]
        if hw.fit is not None:
            fit = hw.fit
            info.append(f"fitted to {fit.models} measured models ({fit.measurements}, "
                        f"{fit.date}): median |error| {fit.median_abs_error_pct}%, "
                        f"leave-one-out {fit.loo_median_abs_error_pct}%, Spearman "
                        f"{fit.spearman}, leave-one-out {fit.loo_spearman}; free: "
                        f"{', '.join(fit.free)}")
        else:
            info.append("not fitted to measurements (datasheet numbers)")
        info += [f"source of {k}: {v}" for k, v in hw.sources.items()]
        prov[f"profile {hw.name}"] = info
    sources = sorted({src for v in comparison.variants if v.is_zoo
                      for src in [_top1_source(v)] if src})
    prov["models compared"] = [v.label for v in comparison.variants]
    prov["top-1 sources"] = sources or ["none (no zoo model at a published variant)"]
    prov["ridge points of the paper"] = ("Qin et al., MobileNetV4: Universal Models for the "
                                         "Mobile Ecosystem (ECCV 2024), Table 16")
    return prov


def _top1_source(variant: Any) -> str | None:
    from .zoo import get_model_info

    return get_model_info(variant.name).top1_source(variant.effective_width,
                                                    variant.effective_resolution)


def compare_page(comparison: Any, *, focus: str | None, command: str,
                 hardware_args: Sequence[str]) -> str:
    """The whole compare report (see ``roofline compare --help`` for what it holds)."""
    from .compare import ridge_data

    names = comparison.hardware_names
    sections: list[Section] = []
    n_models = len(comparison.variants)

    figs = []
    for hw in names:
        rows = comparison.on(hw)
        missing = rows[~rows["supported"] | rows["top1"].isna()]
        note = (f" Not drawn: {', '.join(missing['short_label'])} (unsupported on this "
                f"device or "
                f"without a published top-1)." if len(missing) else "")
        figs.append(Chart(pareto_figure(comparison, hw), caption=(
            "Each marker is one model (colour: family; symbol: model within the family); "
            "up is more accurate, left is faster. Large outlined markers joined by the dotted "
            "step line are the Pareto frontier: for every other model, some frontier model is "
            "at least as fast and at least as accurate. Hover for MACs, parameters and what "
            "bounds the latency." + note)))
    sections.append(Section("Accuracy against latency, per device", anchor="pareto",
                            intro=f"{_plural(n_models, 'model')} on "
                                  f"{_plural(len(names), 'device')}. Latency is "
                                  "predicted by the roofline engine from each device's "
                                  "profile; top-1 is the published ImageNet figure.",
                            figures=figs))

    if len(names) >= 2:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        lines = []
        for a, b in pairs:
            rho = comparison.rank_correlation(a, b)
            changes = comparison.rank_changes(a, b)
            movers = changes.head(3).to_dict(orient="records")
            short = dict(zip(comparison.labels, comparison.short_labels, strict=True))
            mv = "; ".join(f"{short[m['label']]} #{m['rank_a']} → #{m['rank_b']}"
                           for m in movers if m["change"])
            lines.append(f"{a} vs {b}: Spearman ρ of the latency ranks = {rho:.2f}"
                         + (f"; largest moves: {mv}" if mv else "; no model changes rank"))
        sections.append(Section(
            "How the ranking changes between devices", anchor="ranking",
            intro="A model's latency rank (1 = fastest) on each device. Lines that cross are "
                  "models whose order flips: what is fast on one device is not fast on "
                  "another, because each device is limited by something else (compute, "
                  "memory bandwidth or fixed per-kernel costs).",
            body_html=html_list(lines),
            figures=[Chart(rank_figure(comparison), caption=(
                "Colour: family. Hover a point for the model's latency on that device and "
                "what bounds it. A model missing on a device is unsupported there."))]))
    else:
        sections.append(Section("How the ranking changes between devices", anchor="ranking",
                                intro="Only one device was compared, so there is no ranking "
                                      "to compare it with: give two or more to --hw."))

    if focus is not None:
        roof_figs, bar_figs = [], []
        for hw in names:
            pred = comparison.prediction(hw, focus)
            if not pred.supported:
                roof_figs.append(Chart(_empty_figure(
                    f"{hw}: {focus} is unsupported ({', '.join(pred.unsupported_kinds)})")))
                continue
            from .compare import kernel_frame

            frame = kernel_frame(pred)
            hidden = frame[frame["attained_macs_per_s"].isna()]
            hidden_ms = float(hidden["latency_ms"].sum())
            roof_figs.append(Chart(roofline_figure(comparison, hw, focus), caption=(
                "x: how many MACs a kernel does per byte it moves (weights, activations in and "
                "out); y: the MACs per second it attains in the prediction (MACs / its "
                "latency). The solid line is the roof: no kernel can beat the peak (flat) or "
                "the DRAM bandwidth × intensity (slope); they meet at the ridge point. Dashed "
                "lines are lower compute roofs of op kinds the device runs below peak; dotted "
                "ones the slopes of on-chip memories. Points above the DRAM slope are fed from "
                "on-chip memory; points far below any roof lose their time to fixed overhead "
                "or to lanes their shape leaves idle. Marker area ∝ the kernel's share of the "
                f"latency. {len(hidden)} kernels without MACs (pooling, adds, activations "
                f"run alone) take {_ms(hidden_ms)} ({_pct(hidden_ms, pred.latency_ms)}) and "
                "have no place on this chart.")))
            last = (f" Not drawn: the fixed cost of {_ms(pred.per_inference_ms)} per inference "
                    f"({_pct(pred.per_inference_ms, pred.latency_ms)} of the latency)."
                    if pred.per_inference_ms > 0 else
                    " This device has no fixed per-inference cost.")
            bar_figs.append(Chart(breakdown_figure(comparison, hw, focus), caption=(
                "Each bar is one top-level block of the model (the module path's first part, "
                "with its index), split by what bounds its kernels." + last)))
        sections.append(Section(
            f"Roofline of {focus} on each device", anchor="roofline",
            intro=f"The focus model is {focus} (the fastest Pareto-optimal model on the first "
                  "device unless --focus names another). The same model on each device "
                  "shows why a device is fast or slow for it.",
            figures=roof_figs))
        sections.append(Section(f"Where {focus}'s latency goes", anchor="breakdown",
                                figures=bar_figs))
    else:
        sections.append(Section("Roofline of the focus model", anchor="roofline",
                                intro="No model is supported on any compared device, so "
                                      "there are no kernels to draw."))

    sweep, markers = ridge_data(comparison)
    paper = ", ".join(f"{m.label.removesuffix(' (paper)')} {m.ridge_point:g}"
                      for m in markers if m.label.endswith("(paper)"))
    sections.append(Section(
        "Ridge-point sweep", anchor="ridge",
        intro="The plain roofline as a function of one number, the ridge point RP = peak "
              "MACs/s ÷ memory bytes/s: a model costs Σ over its kernels of max(MACs, RP × "
              "bytes), bytes at int8. RP = 0 ranks models by MACs alone; a large RP ranks them "
              "by bytes moved. Each line is one model's cost over the cheapest model's at the "
              "same ridge point, so 1.0 is the model such a device would run fastest. After "
              "Qin et al., MobileNetV4 (ECCV 2024), Figure 2 and Section 3.",
        body_html=Markup(paragraphs(
            f"Dotted grey lines: the ridge points the paper fitted to measured int8 latency "
            f"(Table 16): {paper}. Dashed blue lines: each compared profile's own ridge point "
            "(peak ÷ DRAM bandwidth; fp16 and fp32 profiles converted to MACs per int8 byte). "
            "Drawn at first: the models on every device's Pareto frontier (or, when fewer "
            "than three are, on any device's); click a legend entry to show or hide a "
            "model.") + _movers_html(comparison, sweep)),
        figures=[ridge_figure(comparison, sweep, markers)]))

    sections.append(Section("All the numbers", anchor="numbers", intro=(
        "MACs are multiply-accumulates (1 MAC = 2 FLOPs). " + RESULTS_NOTE),
        html_table=_results_table(comparison)))
    title = "Which MobileNet to ship: " + " vs ".join(names)
    subtitle = (f"{_plural(n_models, 'model')} × {_plural(len(names), 'device')}, latency "
                f"predicted by the roofline engine. Hover any chart for details.")
    return render_page(title, sections, _provenance(comparison, command, hardware_args),
                       subtitle=subtitle, lead_html=_verdict_html(comparison))


def _empty_figure(message: str) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=plot_text(message), showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font={"size": 14})
    style_figure(fig, title=message, height=200)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
