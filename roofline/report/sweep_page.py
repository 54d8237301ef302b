"""The sweep page: a latency heatmap over width × resolution and the frontiers, per device.

Owns the sweep's figures and page; builds on the page builder and look of ``roofline.report.page``
(figures are plain data, :class:`~roofline.report.page.Figure`). The numbers come from
:class:`roofline.analyses.sweep.SweepResult`.
"""

from __future__ import annotations

import math
from typing import Any

from .page import (
    UNCERTAIN,
    Chart,
    Figure,
    Markup,
    Section,
    error_bars,
    escape,
    family_colour,
    heatmap,
    html_table,
    log_axis,
    log_ticks,
    plot_text,
    range_span,
    render_page,
    scatter,
    style_figure,
    uncertain_note,
)

__all__ = ["heatmap_figure", "frontier_figure", "sweep_page"]


def _ms(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g} ms"


def heatmap_figure(result: Any, h: int) -> Any:
    """Predicted latency over width (x) × resolution (y) on device ``h``, log colour scale."""
    import numpy as np

    widths = sorted({v.effective_width for v in result.variants})
    resolutions = sorted({v.effective_resolution for v in result.variants})
    grid = np.full((len(resolutions), len(widths)), np.nan)
    macs = np.full_like(grid, np.nan)
    for m, v in enumerate(result.variants):
        i, j = resolutions.index(v.effective_resolution), widths.index(v.effective_width)
        grid[i, j] = result.latency_s[h, m] * 1e3
        macs[i, j] = result.macs[m] / 1e6
    hw = result.hardware[h]
    finite = grid[np.isfinite(grid)]
    # Ticks over any range, one decade or less included (0.69-0.97 ms: 0.7, 0.8, 0.9).
    ticks = log_ticks(float(finite.min()), float(finite.max())) if len(finite) else []
    fig = Figure().add_trace(heatmap(
        x=[f"{w:g}" for w in widths], y=[str(r) for r in resolutions],
        z=np.log10(grid), customdata=np.dstack([grid, macs]),
        colorscale="Viridis", colorbar={
            "title": {"text": "latency (ms)"}, "tickmode": "array",
            "tickvals": [math.log10(t) for t in ticks], "ticktext": [f"{t:g}" for t in ticks]},
        hovertemplate="width %{x}×, %{y} px<br>latency %{customdata[0]:.3g} ms"
                      "<br>%{customdata[1]:.1f} M MACs<extra></extra>"))
    style_figure(fig, title=f"{hw.name}: predicted latency over width × resolution",
                 x_title="width multiplier", y_title="input resolution (px)",
                 height=max(320, 22 * len(resolutions) + 160))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def frontier_figure(result: Any, h: int) -> Any:
    """Latency against MACs of every variant on device ``h``, each with its 80 % latency range
    as an error bar; the latency–MACs frontier (the most MACs for the latency) drawn as a step
    line, published top-1 variants ringed. The hover gives each point's range, and says so on
    a frontier point whose range overlaps a neighbour's
    (:meth:`~roofline.analyses.sweep.SweepResult.order_uncertain`).

    Trace "variants" holds the variants with a range (in variant order), its error bars
    ``high − latency`` and ``latency − low``; a variant that runs but has no range is in
    "variants (no range)", which has no error bars: plotly reads a missing arm as 0 and draws
    a capped bar of no width, which would claim an exact prediction."""

    hw = result.hardware[h]
    by_macs, by_top1 = result.frontier(h)
    uncertain = result.order_uncertain(h)
    latency = [x * 1e3 for x in result.latency_s[h]]
    macs = [float(x) for x in result.macs]
    ranges = [result.latency_range_ms(h, m) for m in range(len(result.variants))]
    labels = [f"{v.effective_width:g}× {v.effective_resolution}px" for v in result.variants]
    # Hover lines after the latency: the range, where there is one.
    spread = ["" if r is None else f"<br>80% range: {_ms(r[0])} – {_ms(r[1])}" for r in ranges]
    family = _family(result)
    runs = [m for m in range(len(labels)) if math.isfinite(latency[m])]
    ranged = [m for m in runs if ranges[m] is not None]
    unranged = [m for m in runs if ranges[m] is None]
    colour = family_colour(family)

    def variants(group: list[int], name: str, **bars: Any) -> dict[str, Any]:
        return scatter(
            x=[latency[m] for m in group], y=[macs[m] for m in group], mode="markers",
            name=name, marker={"size": 6, "color": colour, "opacity": 0.45},
            text=[plot_text(labels[m]) for m in group], customdata=[spread[m] for m in group],
            hovertemplate="%{text}<br>%{x:.3g} ms%{customdata}<br>%{y:.3s} MACs"
                          "<extra></extra>", **bars)

    fig = Figure()
    # Translucent bars: in a big sweep they overlap, and the frontier must still show.
    fig.add_trace(variants(ranged, "variants", error_x=error_bars(
        [{"latency_ms": latency[m], "latency_range_ms": ranges[m]} for m in ranged],
        _translucent(colour, 0.55))))
    if unranged:
        fig.add_trace(variants(unranged, "variants (no range)"))
    front = sorted((latency[m], m) for m in range(len(labels)) if by_macs[m])
    fig.add_trace(scatter(
        x=[latency[m] for _, m in front], y=[macs[m] for _, m in front],
        mode="lines+markers",
        line={"shape": "hv", "color": "#1b1f24", "width": 1.5, "dash": "dot"},
        marker={"size": 7, "color": colour, "line": {"width": 1, "color": "#1b1f24"}},
        name="latency–MACs frontier", text=[plot_text(labels[m]) for _, m in front],
        customdata=[spread[m] + (f"<br>{uncertain_note('variant')}" if uncertain[m] else "")
                    for _, m in front],
        hovertemplate="%{text}<br>%{x:.3g} ms%{customdata}<br>%{y:.3s} MACs"
                      "<extra>frontier</extra>"))
    published = [m for m in range(len(result.variants)) if result.top1(m) is not None]
    if published:
        fig.add_trace(scatter(
            x=[latency[m] for m in published], y=[macs[m] for m in published],
            mode="markers", name="with a top-1 (★ on its frontier)",
            marker={"size": 12, "symbol": ["star" if by_top1[m] else "circle-open"
                                           for m in published],
                    "color": "#d55e00", "line": {"width": 1.5, "color": "#d55e00"}},
            text=[plot_text(f"{labels[m]}, top-1 {result.top1(m):.1f} %")
                  for m in published], customdata=[spread[m] for m in published],
            hovertemplate="%{text}<br>%{x:.3g} ms%{customdata}<extra></extra>"))
    style_figure(fig, title=f"{hw.name}: MACs against predicted latency",
                 x_title="predicted latency (ms, log scale)",
                 y_title="MACs (log scale)", height=460)
    finite = [(x, y, r) for x, y, r in zip(latency, macs, ranges, strict=True)
              if math.isfinite(x)]
    if finite:
        # The x axis holds the error bars too.
        lows = [x if r is None else r[0] for x, _, r in finite]
        highs = [x if r is None else r[1] for x, _, r in finite]
        log_axis(fig, "x", min(lows), max(highs), pad=0.05)
        log_axis(fig, "y", min(y for _, y, _ in finite), max(y for _, y, _ in finite),
                 pad=0.05, prefixes=True)
    return fig


def _translucent(colour: str, alpha: float) -> str:
    """``#rrggbb`` as ``rgba(r,g,b,alpha)`` (another colour as it is)."""
    if len(colour) != 7 or not colour.startswith("#"):
        return colour
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _family(result: Any) -> str:
    return result.variants[0].family if result.variants else "user model"


def _collapsed(summary: str, table: Any) -> Any:
    """A table folded away behind a one-line summary (frontiers of big sweeps are long)."""
    return Markup(f"<details><summary>{escape(summary)}</summary>{table}</details>")


def _latency_cell(result: Any, h: int, m: int, uncertain: bool) -> Markup:
    """``≈1.31 ms 1.02–1.66``: the latency, marked when its order on the frontier is
    uncertain, then its 80 % range (as in the compare page's table of numbers)."""
    mark = UNCERTAIN if uncertain else ""
    return Markup(f"{escape(mark + _ms(result.latency_s[h, m] * 1e3))}"
                  f"{range_span(result.latency_range_ms(h, m))}")


def _frontier_table(result: Any, h: int) -> Any:
    by_macs, by_top1 = result.frontier(h)
    uncertain = result.order_uncertain(h)
    rows = []
    for m in sorted((m for m in range(len(result.variants)) if by_macs[m]),
                    key=lambda m: result.latency_s[h, m]):
        v = result.variants[m]
        top1 = result.top1(m)
        rows.append((f"{v.effective_width:g}", v.effective_resolution,
                     f"{result.macs[m] / 1e6:.1f}", _latency_cell(result, h, m, uncertain[m]),
                     "n/a" if top1 is None else f"{top1:.1f}" + (" ★" if by_top1[m] else "")))
    return html_table(["width", "resolution", "MACs (M)", "latency, 80 % range (ms)",
                       "top-1 %"], rows,
                      caption=f"{result.hardware[h].name}: the latency–MACs frontier, fastest "
                              f"first (★: also on the latency–top-1 frontier; {UNCERTAIN}: the "
                              f"variant's range overlaps the next frontier variant's, so "
                              f"their order on this device is uncertain)",
                      numeric=[0, 1, 2, 3, 4])


def sweep_page(result: Any, *, model: str, command: str) -> str:
    """The whole sweep page: summary, then per device the heatmap, frontier chart and table."""
    from .. import __version__

    n_var = len(result.variants)
    intro = (f"{n_var} variants of {model} (widths × resolutions) predicted on "
             f"{_plural(len(result.hardware), 'device')}. " +
             ("This sweep was interrupted: only the finished variants are shown. "
              if result.partial else "") +
             "The latency–MACs frontier holds the variants no other variant beats on both: "
             "faster and with at least as many MACs (a proxy for capacity when no accuracy is "
             "published).")
    sections = [Section("Summary", intro, html_table=_summary_table(result))]
    for h, hw in enumerate(result.hardware):
        sections.append(Section(
            f"{hw.name} ({hw.kind}, {result.precisions[h]})", hw.description,
            figures=[Chart(heatmap_figure(result, h),
                           "Colour: predicted latency (log scale). Hover a cell for its MACs."),
                     Chart(frontier_figure(result, h),
                           "Every variant; the dotted step line is the latency–MACs frontier; "
                           "orange marks variants with an ImageNet top-1 (published, or given "
                           "with --top1), a star those on the latency–top-1 frontier. Bars "
                           "span each prediction's 80 % range; hover a point for it, and on "
                           "the frontier for whether its range overlaps the next one's, so "
                           "that their order on this device is uncertain.")],
            body_html=_collapsed(f"the {sum(result.frontier(h)[0])} variants on the "
                                 f"latency–MACs frontier, fastest first",
                                 _frontier_table(result, h))))
    provenance = {
        "command": command,
        "roofline": __version__,
        "profiles": {hw.name: f"{hw.description} ({hw.path})" for hw in result.hardware},
        "graphs": f"{result.stats.cached} variants from the kernel cache, "
                  f"{result.stats.traced} traced or re-read",
    }
    title = f"Sweep of {model}" + (" (partial)" if result.partial else "")
    return render_page(title, sections, provenance,
                       subtitle="Predicted by the roofline engine from each device's profile.")


def _summary_table(result: Any) -> Any:
    rows = []
    for h, hw in enumerate(result.hardware):
        lat = result.latency_s[h] * 1e3
        finite = [x for x in lat if math.isfinite(x)]
        by_macs, _ = result.frontier(h)
        if finite:
            best = min(range(len(lat)), key=lambda m: lat[m] if math.isfinite(lat[m])
                       else math.inf)
            v = result.variants[best]
            fastest = f"{v.effective_width:g}× {v.effective_resolution}px {_ms(lat[best])}"
        else:
            fastest = "n/a"
        rows.append((hw.name, result.precisions[h], fastest,
                     _ms(min(finite)) if finite else "n/a",
                     _ms(max(finite)) if finite else "n/a", sum(by_macs),
                     len(lat) - len(finite)))
    return html_table(["device", "precision", "fastest variant", "min latency", "max latency",
                       "on frontier", "unsupported"], rows,
                      numeric=[3, 4, 5, 6])
