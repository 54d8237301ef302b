"""The search page: per device the latency–MACs and latency–params frontiers, how latency on
one device predicts another, the universally fast candidates and the lookup table's error.

Owns the search's figures and page; builds on ``roofline.report.page`` (figures are plain
data: :class:`~roofline.report.page.Figure`). The numbers come from
:class:`roofline.analyses.search.search.SearchResult`. A search of 10⁵ candidates would make a
page of tens of megabytes, so the charts draw every frontier point and a random sample of
the others (said in each caption); the CSV has every row.
"""

from __future__ import annotations

import math
from typing import Any

from .page import Chart, Figure, Section, html_table, render_page, scatter, style_figure

__all__ = ["search_page", "frontier_figure", "cross_device_figure", "SAMPLE"]

#: Non-frontier candidates drawn per chart.
SAMPLE = 1500


def _ms(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g} ms"


def _shown(result: Any, keep: Any) -> Any:
    """Indices to draw: everything in ``keep`` plus a fixed random sample of the rest."""
    import numpy as np

    rng = np.random.default_rng(0)
    rest = np.flatnonzero(~keep)
    if len(rest) > SAMPLE:
        rest = np.sort(rng.choice(rest, SAMPLE, replace=False))
    return np.concatenate([np.flatnonzero(keep), rest])


def frontier_figure(result: Any, h: int, by: str) -> Any:
    """Latency on device ``h`` against MACs (``by="macs"``) or params; the frontier as a
    step line; candidates meeting every target marked."""
    import numpy as np

    hw = result.hardware[h]
    p = result.prices
    gain = (p.macs if by == "macs" else p.params) / 1e6
    front = result.frontier(h, by)
    idx = _shown(result, front | result.meets if result.meets.sum() <= 2000 else front)
    lat = p.latency_s[h] * 1e3
    fig = Figure()
    for name, mask, colour in (("candidates", ~result.meets[idx], "#8c96a0"),
                               ("meets every target", result.meets[idx], "#009e73")):
        sel = idx[mask]
        if not len(sel):
            continue
        fig.add_trace(scatter(
            x=lat[sel], y=gain[sel], mode="markers", name=name,
            marker={"size": 5, "color": colour, "opacity": 0.5},
            text=[f"#{i}" for i in sel],
            hovertemplate="%{text}<br>%{x:.3g} ms<br>%{y:.2f} M<extra></extra>"))
    order = np.flatnonzero(front)
    order = order[np.argsort(lat[order])]
    fig.add_trace(scatter(
        x=lat[order], y=gain[order], mode="lines+markers", name=f"latency–{by} frontier",
        line={"shape": "hv", "color": "#1b1f24", "width": 1.5, "dash": "dot"},
        marker={"size": 7, "color": "#0072b2"}, text=[f"#{i}" for i in order],
        hovertemplate="%{text}<br>%{x:.3g} ms<br>%{y:.2f} M<extra>frontier</extra>"))
    finite = gain[np.isfinite(gain)]
    for th, seconds in result.config.targets:
        if th == h and finite.size:
            # A line trace, not a shape: shapes and their labels on log axes are placed
            # inconsistently by plotly.
            fig.add_trace(scatter(
                x=[seconds * 1e3, seconds * 1e3], y=[float(finite.min()), float(finite.max())],
                mode="lines", name=f"target {seconds * 1e3:g} ms",
                line={"color": "#d55e00", "dash": "dash", "width": 1.5}, hoverinfo="skip"))
    label = "MACs" if by == "macs" else "parameters"
    style_figure(fig, title=f"{hw.name}: {label} against predicted latency",
                 x_title="predicted latency (ms, log scale)",
                 y_title=f"{label} (millions, log scale)", height=440)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def cross_device_figure(result: Any, a: int, b: int) -> Any:
    """Latency on device ``a`` against device ``b`` for a sample of candidates."""
    import numpy as np

    p = result.prices
    keep = result.frontier(a, "macs") | result.frontier(b, "macs")
    idx = _shown(result, keep)
    x, y = p.latency_s[a, idx] * 1e3, p.latency_s[b, idx] * 1e3
    ok = np.isfinite(x) & np.isfinite(y)
    fig = Figure().add_trace(scatter(
        x=x[ok], y=y[ok], mode="markers", name="candidates",
        marker={"size": 5, "color": np.where(result.meets[idx][ok], "#009e73", "#0072b2"),
                "opacity": 0.5},
        text=[f"#{i}" for i in idx[ok]],
        hovertemplate="%{text}<br>%{x:.3g} ms / %{y:.3g} ms<extra></extra>"))
    ha, hb = result.hardware[a], result.hardware[b]
    style_figure(fig, title=f"{ha.name} against {hb.name}",
                 x_title=f"{ha.name} latency (ms, log)", y_title=f"{hb.name} latency (ms, log)",
                 height=420)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def _spearman(x: Any, y: Any) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    return float(spearmanr(x[ok], y[ok]).statistic)


def _summary(result: Any, names: list[str]) -> str:
    import numpy as np

    p = result.prices
    rows = []
    for h, hw in enumerate(result.hardware):
        lat = p.latency_s[h] * 1e3
        finite = lat[np.isfinite(lat)]
        target = dict(result.config.targets).get(h)
        rows.append((names[h], hw.name, p.precisions[h],
                     _ms(float(finite.min())) if finite.size else "n/a",
                     _ms(float(np.median(finite))) if finite.size else "n/a",
                     _ms(float(finite.max())) if finite.size else "n/a",
                     int(result.frontier(h, "macs").sum()),
                     int(result.frontier(h, "params").sum()),
                     f"{len(lat) - finite.size:,}",
                     "-" if target is None else f"{target * 1e3:g} ms"))
    return html_table(["device", "profile", "precision", "fastest", "median", "slowest",
                       "MACs frontier", "params frontier", "cannot run", "target"], rows,
                      numeric=[False, False, False, True, True, True, True, True, True, True])


def _fast_table(result: Any, names: list[str]) -> str:
    import numpy as np

    p = result.prices
    meets = np.flatnonzero(result.meets)
    gain = p.macs if result.config.objective == "macs" else p.params
    top = meets[np.argsort(-gain[meets], kind="stable")][:25]
    # Zero-width spaces after each '/' let the long encodings wrap between stages.
    rows = [(f"#{i}", result.encodings[i].replace("/", "/\u200b"), f"{p.macs[i] / 1e6:.1f}",
             f"{p.params[i] / 1e6:.2f}",
             *(_ms(p.latency_s[h, i] * 1e3) for h in range(len(names)))) for i in top]
    return html_table(["#", "candidate", "MACs (M)", "params (M)", *names], rows,
                      caption=f"the {len(top)} largest by {result.config.objective} of the "
                              f"{len(meets):,} candidates that meet every target",
                      numeric=[False, False, True, True, *([True] * len(names))])


def search_page(result: Any, *, lut: Any = None, check: dict[str, Any] | None = None,
                command: str, names: list[str] | None = None) -> str:
    """The whole search page."""
    from .. import __version__

    names = names or [hw.name for hw in result.hardware]
    space = result.genome.space
    n_dev = len(result.hardware)
    intro = (f"{result.count:,} candidates of the {space.name} space "
             f"({result.genome.count_hint()} in all; {result.config.strategy} search, seed "
             f"{result.config.seed}) priced on {n_dev} device(s) from cached block graphs. " +
             ("The search was interrupted: only the priced candidates are shown. "
              if result.partial else "") +
             "A frontier holds the candidates no other beats on both: faster and with at "
             "least as many MACs (or parameters), proxies for capacity without an accuracy "
             "predictor. Candidates are numbered as rows of the CSV/JSON.")
    sections = [Section("Summary", intro, html_table=_summary(result, names))]
    if result.config.targets:
        text = ", ".join(f"{names[h]} ≤ {s * 1e3:g} ms" for h, s in result.config.targets)
        sections.append(Section(
            "Fast on every device at once",
            f"{int(result.meets.sum()):,} of {result.count:,} candidates run on all {n_dev} "
            f"devices and meet every target ({text}).",
            html_table=_fast_table(result, names) if result.meets.any() else None))
    for h, hw in enumerate(result.hardware):
        sections.append(Section(
            f"{names[h]}: {hw.name} ({hw.kind}, {result.prices.precisions[h]})",
            hw.description,
            figures=[Chart(frontier_figure(result, h, "macs"),
                           f"Every frontier point and a random {SAMPLE:,} of the others; green: "
                           f"meets every target."),
                     Chart(frontier_figure(result, h, "params"), "The same for parameters.")]))
    if n_dev > 1:
        import itertools

        pairs = list(itertools.combinations(range(n_dev), 2))
        rho = [(names[a], names[b], _spearman(result.prices.latency_s[a],
                                              result.prices.latency_s[b])) for a, b in pairs]
        sections.append(Section(
            "Does fast on one device mean fast on another?",
            "Spearman rank correlation of the candidates' latencies between devices (1: the "
            "same order). The chart pairs the first two devices.",
            figures=[Chart(cross_device_figure(result, 0, 1),
                           "Frontier points of either device and a random sample of the rest.")],
            html_table=html_table(["device", "device", "Spearman ρ"],
                                  [(a, b, f"{r:.3f}") for a, b, r in rho],
                                  numeric=[False, False, True])))
    if lut is not None and lut.error_pct:
        sections.append(Section(
            "Latency lookup table",
            "Each block's mean latency inside the candidates it was priced in, per device and "
            "per place of the model's weights; its sum against the whole-model prediction on "
            "candidates the table was not built from.",
            html_table=html_table(
                ["device", "candidates", "median |error|", "p95", "max"],
                [(n, f"{e['candidates']:,}", f"{e['median_abs_pct']:.2f} %",
                  f"{e['p95_abs_pct']:.2f} %", f"{e['max_abs_pct']:.2f} %")
                 for n, e in lut.error_pct.items()],
                numeric=[False, True, True, True, True])))
    st = result.stats
    provenance = {
        "command": command,
        "roofline": __version__,
        "space": f"{space.name} ({space.path}): {space.description}",
        "space sources": dict(space.sources),
        "choices made where the papers are open": dict(space.choices),
        "profiles": {hw.name: f"{hw.description} ({hw.path})" for hw in result.hardware},
        "blocks": f"{st.units} units ({st.traced} traced, {st.from_cache} from the cache); "
                  f"backend {st.backend}",
    }
    if check is not None:
        provenance["check"] = (f"{check['candidates']} candidates built as nn.Modules and "
                               f"traced: max relative latency difference "
                               f"{check['max_rel_diff']:.1e}; MACs equal {check['macs_equal']}, "
                               f"params equal {check['params_equal']}")
    title = f"Search of {space.name}" + (" (partial)" if result.partial else "")
    return render_page(title, sections, provenance,
                       subtitle="Predicted by the roofline engine from each device's profile.")
