"""The validation page: predicted against measured latency on this machine.

Owns the figure and page of ``roofline validate --out``; builds on the page builder and look of
``roofline.report.page`` (figures are plain data:
:class:`~roofline.report.page.Figure`). The numbers come from
:class:`roofline.fitting.validate.Validation`.
"""

from __future__ import annotations

import math
from typing import Any

from .page import (
    Chart,
    Figure,
    Section,
    html_table,
    log_axis,
    place_labels,
    plot_text,
    render_page,
    scatter,
    style_figure,
)

__all__ = ["validation_page"]


def validation_page(result: Any, *, command: str) -> str:
    """The page: predicted against measured latency with the y = x line and a ±15 % band,
    and the table of every model."""

    from .. import __version__

    checks = result.checks
    measured = [c.measured.median_ms for c in checks]
    predicted = [c.predicted_ms for c in checks]
    lo, hi = min(measured + predicted) / 1.5, max(measured + predicted) * 1.5
    fig = Figure()
    fig.add_trace(scatter(x=[lo, hi, hi, lo], y=[lo * 0.85, hi * 0.85, hi * 1.15, lo * 1.15],
                             fill="toself", fillcolor="rgba(11,92,173,0.08)", mode="lines",
                             line={"width": 0}, name="±15 %", hoverinfo="skip"))
    fig.add_trace(scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                             line={"color": "#6b7380", "dash": "dash"}, hoverinfo="skip"))
    span = math.log10(hi) - math.log10(lo)

    def frac(v: float) -> float:
        return (math.log10(v) - math.log10(lo)) / span

    names = [c.variant.label for c in checks]
    where = place_labels([(frac(x), frac(y)) for x, y in zip(measured, predicted, strict=True)],
                         names, width_px=900, height_px=440)
    fig.add_trace(scatter(
        x=measured, y=predicted, mode="markers+text", name="models",
        text=[plot_text(n) if w else "" for n, w in zip(names, where, strict=True)],
        textposition=[w or "top center" for w in where], hovertext=[plot_text(n) for n in names],
        textfont={"size": 9},
        error_x={"type": "data", "symmetric": False,
                 "array": [c.measured.p90_ms - c.measured.median_ms for c in checks],
                 "arrayminus": [c.measured.median_ms - c.measured.p10_ms for c in checks]},
        marker={"size": 9, "color": "#0b5cad"},
        hovertemplate="%{hovertext}<br>measured %{x:.3g} ms<br>predicted %{y:.3g} ms"
                      "<extra></extra>"))
    style_figure(fig, title=f"{result.hardware.name}: predicted against measured latency",
                 x_title="measured latency (ms, median; bars p10-p90, log scale)",
                 y_title="predicted latency (ms, log scale)", height=560)
    log_axis(fig, "x", lo, hi)
    log_axis(fig, "y", lo, hi)
    s = result.summary()
    table = html_table(
        ["model", "predicted ms", "measured ms", "p10-p90 ms", "error %"],
        [(c.variant.label, f"{c.predicted_ms:.3g}", f"{c.measured.median_ms:.3g}",
          f"{c.measured.p10_ms:.3g}-{c.measured.p90_ms:.3g}", f"{c.error_pct:+.1f}")
         for c in checks], numeric=[1, 2, 3, 4])
    intro = (f"{s['models']} models measured with torch on this machine at "
             f"{s['threads']} thread(s): MAPE {s['mape_pct']:.1f} %, Spearman "
             f"{s['spearman'] or float('nan'):.3f}, Kendall {s['kendall'] or float('nan'):.3f}.")
    return render_page(
        f"Validation of {result.hardware.name}",
        [Section("Predicted against measured", intro,
                 figures=[Chart(fig, "Points inside the band are within 15 % of the "
                                     "measurement. A label that would overlap another is "
                                     "left to the hover.")], html_table=table)],
        {"command": command, "roofline": __version__,
         "profile": f"{result.hardware.description} ({result.hardware.path})"})
