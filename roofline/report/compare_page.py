"""The compare report: which model to ship on each device, and why.

Owns the compare page's figures (accuracy against latency, ranking changes, the focus model's
roofline and per-stage breakdown, the ridge-point sweep), its verdict, its table of numbers and
its provenance. The numbers come from :class:`roofline.analyses.compare.Comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..sources.base import USER_FAMILY
from .page import (
    BOUND_COLOURS,
    UNCERTAIN,
    Chart,
    Figure,
    Markup,
    Section,
    bar,
    error_bars,
    escape,
    family_colour,
    has_range,
    html_list,
    html_table,
    log_axis,
    paragraphs,
    place_labels,
    plot_text,
    range_span,
    render_page,
    scatter,
    si,
    style_figure,
    uncertain_note,
)

__all__ = ["compare_page", "pareto_figure", "rank_figure", "roofline_figure", "breakdown_figure",
           "roofline_caption", "ridge_drawn", "unlabelled",
           "ridge_figure"]


#: Marker symbols for the models of one family, in zoo order (V3-Large circle, V3-Small
#: diamond, ...), so models stay distinguishable within a family colour.
_SYMBOLS = ("circle", "diamond", "square", "triangle-up", "cross", "x", "pentagon",
            "hexagon", "triangle-down", "hourglass")


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0 ms"
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
    """Model name → marker symbol, numbered within each family in comparison order (the
    user's own models are stars)."""
    out: dict[str, str] = {}
    per_family: dict[str, int] = {}
    for variant, family in zip(comparison.variants, comparison.families, strict=True):
        if variant.name not in out:
            i = per_family.get(family, 0)
            symbols = _USER_SYMBOLS if family == USER_FAMILY else _SYMBOLS
            out[variant.name] = symbols[i % len(symbols)]
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
        if has_range(row):
            low, high = row["latency_range_ms"]
            lines.append(f"80% range: {_ms(low)} – {_ms(high)}")
        lines.append("bound: " + ", ".join(
            f"{b} {_pct(row[f'{b}_bound_ms'], total)}" for b in BOUND_COLOURS))
        lines.append(f"latency rank: {row['rank']}" + ("   ★ Pareto-optimal" if row["pareto"]
                                                       else ""))
        if row["pareto"] and row["order_uncertain"]:
            lines.append(uncertain_note("model"))
    else:
        lines.append(f"unsupported on {plot_text(row['hardware'])}: "
                     f"{plot_text(', '.join(row['unsupported_kinds']))}")
    return "<br>".join(lines)


#: Marker symbols of the user's own models: stars, whatever their family colour.
_USER_SYMBOLS = ("star", "star-diamond", "star-square", "star-triangle-up", "star-triangle-down")

#: The legend name of the user's own models.
YOUR_MODELS = "your models"


def _family_name(family: str) -> str:
    return YOUR_MODELS if family == USER_FAMILY else family


def pareto_figure(comparison: Any, hardware: str) -> Figure:
    """Top-1 against predicted latency on one device, one trace per family present among the
    supported models with a top-1 (the user's own models as stars, "your models"), then the
    frontier (a step line) when it is not empty. Frontier labels are placed by
    :func:`roofline.report.page.place_labels`; one that would overlap is left to the hover."""

    rows = comparison.on(hardware)
    shown = rows[rows["supported"] & rows["top1"].notna()]
    symbols = _symbol_map(comparison)
    fig = Figure()
    present = set(shown["family"])
    for family in [f for f in dict.fromkeys(comparison.families) if f in present]:
        part = shown[shown["family"] == family]
        records = part.to_dict(orient="records")
        user = family == USER_FAMILY
        fig.add_trace(scatter(
            x=part["latency_ms"], y=part["top1"], mode="markers",
            name=plot_text(_family_name(family)), legendgroup=plot_text(family),
            marker={"color": family_colour(family),
                    "size": [(18 if r["pareto"] else 15) if user else (13 if r["pareto"] else 8)
                             for r in records],
                    "symbol": [symbols[r["model"]] for r in records],
                    "line": {"color": ["#1d2330" if r["pareto"] or user else "white"
                                       for r in records], "width": 1.5},
                    "opacity": 0.95},
            error_x=error_bars(records, family_colour(family)),
            hovertext=[_hover(r) for r in records], hoverinfo="text"))
    front = shown[shown["pareto"]].sort_values("latency_ms")
    xr = yr = None
    if len(shown):
        lows = [r[0] if isinstance(r, (list, tuple)) else lat
                for r, lat in zip(shown["latency_range_ms"], shown["latency_ms"], strict=True)]
        highs = [r[1] if isinstance(r, (list, tuple)) else lat
                 for r, lat in zip(shown["latency_range_ms"], shown["latency_ms"], strict=True)]
        lo, hi = math.log10(min(lows)), math.log10(max(highs))  # the error bars fit
        span = max(hi - lo, 0.3)
        xr = (lo - 0.3 * span, hi + 0.08 * span)
        bottom, top = shown["top1"].min(), shown["top1"].max()
        yr = (bottom - 1.5, top + 0.12 * max(top - bottom, 5))  # room for the top label
    if len(front):
        # A frontier model whose order with its neighbour is uncertain is labelled "≈ name".
        texts = [plot_text((f"{UNCERTAIN} " if uncertain else "") + t) for t, uncertain
                 in zip(front["short_label"], front["order_uncertain"], strict=True)]
        positions: list[str | None] = [None] * len(texts)
        if xr is not None and yr is not None:
            def frac(x: float, y: float) -> tuple[float, float]:
                return ((math.log10(x) - xr[0]) / (xr[1] - xr[0]),
                        (y - yr[0]) / (yr[1] - yr[0]))

            others = shown[~shown["pareto"]]
            points = [frac(x, y) for x, y in zip(front["latency_ms"], front["top1"],
                                                 strict=True)]
            # The ends first (the most accurate, the fastest), then by latency.
            n = len(points)
            order = list(dict.fromkeys([n - 1, 0, *range(1, n - 1)]))
            placed = place_labels(
                [points[i] for i in order], [list(front["short_label"])[i] for i in order],
                obstacles=[frac(x, y) for x, y in zip(others["latency_ms"], others["top1"],
                                                      strict=True)])
            for i, where in zip(order, placed, strict=True):
                positions[i] = where
        fig.add_trace(scatter(
            x=front["latency_ms"], y=front["top1"], mode="lines+markers+text",
            name="Pareto frontier",
            line={"color": "#1d2330", "width": 1.5, "shape": "hv", "dash": "dot"},
            # Transparent markers as large as the frontier's: plotly sets text off by them.
            marker={"size": 14, "color": "rgba(0,0,0,0)"},
            text=[t if where else "" for t, where in zip(texts, positions, strict=True)],
            textposition=[where or "top left" for where in positions],
            textfont={"size": 10, "color": "#3b4350"}, hoverinfo="skip"))
    style_figure(fig, title=f"{hardware}: ImageNet top-1 against predicted latency",
                 x_title="predicted latency (ms, log scale)", y_title="ImageNet top-1 (%)",
                 height=480)
    if xr is not None and yr is not None:
        log_axis(fig, "x", 10 ** xr[0], 10 ** xr[1])
        fig.update_yaxes(range=list(yr))
    else:
        fig.update_xaxes(type="log")
    fig.update_layout(legend=_TOP_LEGEND)
    return fig


def unlabelled(fig: Figure) -> int:
    """How many frontier points of a :func:`pareto_figure` have no label (room ran out)."""
    for trace in fig.data:
        if trace["name"] == "Pareto frontier":
            return sum(1 for t in trace["text"] if not t)
    return 0


#: A horizontal legend above the plot area, right-aligned: it never hides data.
_TOP_LEGEND: dict[str, Any] = {"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0,
                               "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0)",
                               "borderwidth": 0}


def _focus_name(comparison: Any, label: str) -> str:
    return comparison.short_labels[comparison.labels.index(label)]


def rank_figure(comparison: Any) -> Figure:
    """Latency rank of every model on each compared device (1 = fastest), one line per model
    that runs on at least one device; the model's label is written at its right end."""

    names = comparison.hardware_names
    by_label = comparison.records_by_label
    symbols = _symbol_map(comparison)
    fig = Figure()
    families_seen: set[str] = set()
    for label, short, family, model in zip(comparison.labels, comparison.short_labels,
                                           comparison.families,
                                           [v.name for v in comparison.variants], strict=True):
        records = [by_label[label][hw] for hw in names]
        if not any(r["supported"] for r in records):
            continue
        ranks = [r["rank"] for r in records]
        last = max(i for i, r in enumerate(ranks) if r is not None)
        fig.add_trace(scatter(
            x=names, y=ranks, mode="lines+markers+text", name=plot_text(_family_name(family)),
            legendgroup=plot_text(family), showlegend=family not in families_seen,
            line={"color": family_colour(family), "width": 1.6},
            marker={"symbol": symbols[model], "size": 8, "color": family_colour(family)},
            text=[plot_text(short) if i == last else "" for i in range(len(names))],
            textposition="middle right", textfont={"size": 10, "color": family_colour(family)},
            hovertext=[_hover(r) for r in records], hoverinfo="text", connectgaps=False))
        families_seen.add(family)
    style_figure(fig, title="Latency rank on each device (1 = fastest)",
                 y_title="latency rank (1 = fastest)",
                 height=max(460, 22 * len(comparison.variants) + 140))
    n = len(comparison.variants)
    fig.update_yaxes(range=[n + 0.6, 0.4], dtick=1 if n <= 40 else 5)
    fig.update_xaxes(type="category", range=[-0.3, len(names) - 0.3 + 0.9])
    fig.update_layout(legend=_TOP_LEGEND)
    return fig


def _isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def roofline_figure(comparison: Any, hardware: str, label: str) -> Figure:
    """The roofline of one device with every kernel (that has MACs) of one model.

    Traces (legend group "roofs"): the peak and DRAM roof, each lower compute roof (peak ×
    efficiency of some op kinds), each on-chip level with a bandwidth and each lower memory
    efficiency (:func:`roofline.analyses.roofs.roofs`); then (group "kernels") one marker
    trace per bound present among the drawn kernels. Levels with a capacity but no bandwidth
    have no roof: :func:`roofline_caption` says so.
    """
    import numpy as np

    from ..analyses.kernels import kernel_frame
    from ..analyses.roofs import roofs

    h = comparison.hardware_names.index(hardware)
    pred = comparison.prediction(hardware, label)
    rf = roofs(comparison.hardware[h], comparison.precisions[h])
    frame = kernel_frame(pred)
    drawn = frame[frame["attained_macs_per_s"].notna() & (frame["intensity"] > 0)]
    lo = min([rf.ridge_point / 100, *(drawn["intensity"] / 2)])
    hi = max([rf.ridge_point * 10, *(drawn["intensity"] * 3)])
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    fig = Figure()
    dram_bw = rf.dram_bytes_per_s
    roof_group = {"legendgroup": "roofs", "legendgrouptitle": {"text": "roofs"},
                  "hoverinfo": "skip"}
    fig.add_trace(scatter(
        x=xs, y=np.minimum(rf.peak_macs_per_s, dram_bw * xs), mode="lines",
        name=plot_text(f"{rf.compute[0][0]} {si(rf.peak_macs_per_s)}MAC/s and DRAM "
                       f"{dram_bw / 1e9:.3g} GB/s (ridge point {rf.ridge_point:.3g} MACs/B)"),
        line={"color": "#1d2330", "width": 2.5}, **roof_group))
    for name, value in rf.compute[1:]:
        fig.add_trace(scatter(
            x=xs, y=np.minimum(value, dram_bw * xs), mode="lines",
            name=plot_text(f"compute: {name}"),
            line={"color": "#7f8896", "width": 1.4, "dash": "dash"}, **roof_group))
    for name, bw in rf.memory[1:]:
        fig.add_trace(scatter(
            x=xs, y=np.minimum(rf.peak_macs_per_s, bw * xs), mode="lines",
            name=plot_text(f"memory: {name} {bw / 1e9:.3g} GB/s"),
            line={"color": "#5d8fc4", "width": 1.4, "dash": "dot"}, **roof_group))
    total = float(frame["latency_ms"].sum())
    first = True
    for bound in BOUND_COLOURS:
        part = drawn[drawn["bound"] == bound]
        if not len(part):
            continue
        share = part["latency_ms"] / total if total else part["latency_ms"] * 0
        hover = [
            f"<b>{plot_text(r['name'])}</b> ({plot_text(r['kind'].replace('_', ' '))})"
            f"<br>intensity: {r['intensity']:.3g} MACs/byte"
            f"<br>attained: {si(r['attained_macs_per_s'])}MAC/s "
            f"({100 * r['attained_macs_per_s'] / rf.peak_macs_per_s:.2g}% of peak)"
            f"<br>MACs: {_count(r['macs'])}   bytes: {si(r['bytes'])}B, from DRAM "
            f"{si(r['dram_bytes'])}B ({_pct(r['dram_bytes'], r['bytes'])})"
            f"<br>latency: {_ms(r['latency_ms'])} ({_share(s)} of the model)"
            f"<br>compute {_ms(r['compute_ms'])}, memory {_ms(r['memory_ms'])}, "
            f"overhead {_ms(r['overhead_ms'])} → {bound}-bound"
            for r, s in zip(part.to_dict(orient="records"), share, strict=True)]
        fig.add_trace(scatter(
            x=part["intensity"], y=part["attained_macs_per_s"], mode="markers",
            name=f"{bound}-bound ({len(part)})", legendgroup="kernels",
            legendgrouptitle={"text": "kernels"} if first else None,
            marker={"color": BOUND_COLOURS[bound], "size": 6 + 30 * np.sqrt(share),
                    "line": {"color": "white", "width": 0.8}, "opacity": 0.85},
            hovertext=hover, hoverinfo="text"))
        first = False
    style_figure(fig, title=f"{hardware}: roofline of {_focus_name(comparison, label)}, one "
                            f"point per kernel",
                 x_title="operational intensity (MACs per byte moved, log scale)",
                 y_title="attained MACs/s (log scale)", height=520)
    ys = [*drawn["attained_macs_per_s"], float(min(rf.peak_macs_per_s, dram_bw * lo))]
    log_axis(fig, "x", lo, hi)
    log_axis(fig, "y", min(ys) / 1.5, rf.peak_macs_per_s * 1.6, prefixes=True)
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top",
                              "groupclick": "toggleitem"}, margin={"b": 40})
    return fig


def roofline_caption(comparison: Any, hardware: str, label: str) -> str:
    """How to read :func:`roofline_figure` for this device: its roofs, the on-chip levels
    without a bandwidth, and the kernels the chart cannot show."""
    from ..analyses.kernels import kernel_frame
    from ..analyses.roofs import roofs

    h = comparison.hardware_names.index(hardware)
    rf = roofs(comparison.hardware[h], comparison.precisions[h])
    pred = comparison.prediction(hardware, label)
    parts = [
        "x: how many MACs a kernel does per byte it moves (weights, activations in and out); "
        "y: the MACs per second it attains in the prediction (MACs / its latency). The solid "
        f"line is the peak ({si(rf.peak_macs_per_s)}MAC/s, flat) and DRAM bandwidth × "
        f"intensity (slope); they meet at the ridge point, peak ÷ DRAM bandwidth = "
        f"{rf.ridge_point:.3g} MACs/byte."]
    if len(rf.compute) > 1:
        parts.append("Dashed: the lower peaks of op kinds the device runs below its peak.")
    if len(rf.memory) > 1:
        parts.append("Dotted: " + ", ".join(f"{n} {bw / 1e9:.3g} GB/s" for n, bw in
                                            rf.memory[1:])
                     + " (the engine charges every byte a level serves, or a level beyond "
                       "it, at that level's bandwidth: a kernel whose bytes all come from a "
                       "level or beyond stays under its slope).")
    if rf.capacity_only:
        levels = ", ".join(f"{n} ({c / 2 ** 20:.3g} MiB)" for n, c in rf.capacity_only)
        parts.append(
            f"{levels}: no published bandwidth, so the engine uses "
            f"{'it' if len(rf.capacity_only) == 1 else 'them'} for capacity only: bytes kept "
            "there cost no memory time and draw no roof. A kernel fed from there sits above "
            "the DRAM slope: its memory time counts only its DRAM bytes (hover for them).")
    else:
        parts.append("Every kernel lies under the peak and the slope of the memory nearest "
                     "the cores; points far below lose their time to fixed overhead or to "
                     "lanes their shape leaves idle.")
    if rf.capacity_only:
        parts.append("Points far below the roofs lose their time to fixed overhead or to "
                     "lanes their shape leaves idle.")
    parts.append("Marker area ∝ the kernel's share of the latency.")
    frame = kernel_frame(pred)
    hidden = frame[frame["attained_macs_per_s"].isna()]
    if len(hidden):
        hidden_ms = float(hidden["latency_ms"].sum())
        what = (f"{_plural(len(hidden), 'kernel')} without MACs (pooling, adds, activations "
                f"run alone)")
        one = len(hidden) == 1
        if hidden_ms > 0:
            parts.append(f"{what} {'takes' if one else 'take'} {_ms(hidden_ms)} "
                         f"({_share(hidden_ms / pred.latency_ms)} of the latency) and "
                         f"{'has' if one else 'have'} no place on this chart.")
        else:
            parts.append(f"{what} {'costs' if one else 'cost'} no time in this prediction "
                         f"(no per-kernel cost, bytes kept on chip) and "
                         f"{'has' if one else 'have'} no place on this chart.")
    return " ".join(parts)


def _share(fraction: float) -> str:
    """A share the way a person writes it: '12%', '<1%', '0%'."""
    pct = 100 * fraction
    if pct <= 0:
        return "0%"
    return "<1%" if pct < 0.5 else f"{pct:.0f}%"


def breakdown_figure(comparison: Any, hardware: str, label: str) -> Figure:
    """Per-stage latency of one model on one device, stacked by bound: one horizontal bar
    trace per bound present (the per-inference overhead is its own stage)."""

    from ..analyses.kernels import stage_breakdown

    pred = comparison.prediction(hardware, label)
    # The fixed per-inference cost is said in the title, not drawn: as a bar it would dwarf
    # every stage of a small model on an accelerator.
    data = stage_breakdown(pred, per_inference=False)
    stages = list(dict.fromkeys(data["stage"]))
    fig = Figure()
    for bound in BOUND_COLOURS:
        part = data[data["bound"] == bound]
        if not len(part):
            continue
        fig.add_trace(bar(
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
                            f"{_ms(pred.latency_ms)}: {_ms(kernels_ms)} in kernels (by stage, "
                            f"below){fixed}",
                 x_title="predicted latency (ms)", y_title="stage (top-level block)",
                 height=max(360, 17 * len(stages) + 150))
    fig.update_layout(barmode="stack", legend={**_TOP_LEGEND, "traceorder": "normal"})
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=[plot_text(s) for s in stages], autorange="reversed")
    return fig


def ridge_figure(comparison: Any, sweep: Any, markers: Sequence[Any]) -> Figure:
    """Relative latency (cost / best cost at each ridge point) against the ridge point.

    Traces, legend grouped by family: one line per model of :func:`ridge_drawn` (the
    frontier models and the fastest at each ridge point); then per family one hidden
    (legend-only) trace holding all its other models' lines; then one vertical line per
    device marker (group "ridge points"), its label written above the plot where it does not
    collide with another (else hover for it)."""

    shown = ridge_drawn(comparison, sweep)
    symbols = _symbol_map(comparison)
    fig = Figure()
    rest: dict[str, list[tuple[str, Any]]] = {}
    for label, short, family, variant in zip(comparison.labels, comparison.short_labels,
                                             comparison.families, comparison.variants,
                                             strict=True):
        part = sweep[sweep["model"] == label]
        if label not in shown:
            rest.setdefault(family, []).append((short, part))
            continue
        symbol = symbols[variant.name]
        dash = _DASHES[(_SYMBOLS.index(symbol) if symbol in _SYMBOLS
                        else _USER_SYMBOLS.index(symbol)) % len(_DASHES)]
        fig.add_trace(scatter(
            x=part["ridge_point"], y=part["relative"], mode="lines", name=plot_text(short),
            legendgroup=plot_text(family),
            legendgrouptitle={"text": plot_text(_family_name(family))},
            line={"color": family_colour(family), "width": 2, "dash": dash},
            hovertemplate=f"<b>{plot_text(short)}</b><br>ridge point %{{x:.0f}} MACs/byte"
                          f"<br>relative latency %{{y:.2f}}×<extra></extra>"))
    for family, items in rest.items():
        xs: list[Any] = []
        ys: list[Any] = []
        names: list[str] = []
        for short, part in items:  # one trace, lines separated by gaps
            xs += [*part["ridge_point"], None]
            ys += [*part["relative"], None]
            names += [plot_text(short)] * len(part) + [""]
        fig.add_trace(scatter(
            x=xs, y=ys, mode="lines", visible="legendonly", connectgaps=False,
            name=plot_text(f"{len(items)} other {_family_name(family)}"),
            legendgroup=plot_text(family),
            legendgrouptitle={"text": plot_text(_family_name(family))},
            line={"color": family_colour(family), "width": 1}, opacity=0.6, text=names,
            hovertemplate="<b>%{text}</b><br>ridge point %{x:.0f} MACs/byte"
                          "<br>relative latency %{y:.2f}×<extra></extra>"))
    stop = float(sweep["ridge_point"].max()) if len(sweep) else 500.0
    ymax = float(sweep["relative"].max()) if len(sweep) else 10.0
    texts = [f"{m.label} {m.ridge_point:.0f}" for m in markers]
    rows = _label_rows([(m.ridge_point / stop, len(t) if m.ridge_point <= stop else 0)
                        for m, t in zip(markers, texts, strict=True)])
    first = True
    for m, row, text in zip(markers, rows, texts, strict=True):
        if m.ridge_point > stop:  # beyond the swept range: the page's caption names it
            continue
        paper = m.label.endswith("(paper)")
        colour = "#6b7380" if paper else "#0b5cad"
        fig.add_trace(scatter(
            x=[m.ridge_point, m.ridge_point], y=[1.0, ymax * 1.15], mode="lines",
            name=plot_text(text), legendgroup="markers",
            legendgrouptitle={"text": "ridge points"} if first else None,
            line={"color": colour, "width": 1.2, "dash": "dot" if paper else "dash"},
            hovertemplate=plot_text(f"{m.label}: {m.ridge_point:.1f} MACs per int8 byte "
                                    f"({m.source})") + "<extra></extra>"))
        first = False
        if row is not None:  # labels above the plot, in rows that do not collide
            fig.add_annotation(x=m.ridge_point, y=1.0 + 0.045 * row[0], yref="paper",
                               text=plot_text(text), showarrow=False, xanchor=row[1],
                               yanchor="bottom", xshift=2 if row[1] == "left" else -2,
                               font={"size": 10, "color": colour})
    used = max((r[0] for r in rows if r is not None), default=-1) + 1
    # Tall enough for the legend beside the plot, unscrolled: ~20 px an entry, ~34 a group
    # title and gap, plus the margins.
    groups = len({t.get("legendgroup") for t in fig.data})
    height = max(600, int((20 * len(fig.data) + 34 * groups + 140) / (1 - 0.045 * used)))
    style_figure(fig, title="Relative latency across ridge points (after the MobileNetV4 "
                            "paper's Figure 2)",
                 x_title="ridge point (MACs per int8 byte)",
                 y_title="latency relative to the fastest model (×, log scale)", height=height)
    fig.update_layout(margin={"t": 50 + int(0.045 * used * height)},
                      title={"y": 0.99, "yanchor": "top"})
    fig.update_xaxes(range=[0, stop])
    log_axis(fig, "y", 1.0, ymax * 1.15, unit="×")
    fig.update_layout(legend={"font": {"size": 10}, "groupclick": "toggleitem",
                              "tracegroupgap": 6, "y": 1.0, "yanchor": "top"})
    return fig


def ridge_drawn(comparison: Any, sweep: Any) -> set[str]:
    """Labels the ridge sweep draws: :func:`_ridge_shown`, and every model that is the
    fastest (relative latency 1) at some ridge point of ``sweep``."""
    fastest = set(sweep.loc[sweep["relative"] <= 1.0 + 1e-12, "model"]) if len(sweep) else set()
    return _ridge_shown(comparison) | fastest


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


def _label_rows(items: Sequence[tuple[float, int]], plot_px: float = 900.0,
                char_px: float = 6.2, most: int = 3) -> list[tuple[int, str] | None]:
    """(row, xanchor) of each label above a plot (x as a fraction of the axis, length in
    characters): written rightwards from its line, or leftwards when that would leave the
    plot; in the lowest row where it clears the labels already there by 8 px; None past
    ``most`` rows (the label is left to the legend and the hover)."""
    placed: list[list[tuple[float, float]]] = []
    out: list[tuple[int, str] | None] = [None] * len(items)
    for i in sorted(range(len(items)), key=lambda j: items[j][0]):
        x = items[i][0] * plot_px
        w = items[i][1] * char_px
        anchor = "left" if x + w <= plot_px else "right"
        box = (x, x + w) if anchor == "left" else (x - w, x)
        row = next((r for r, boxes in enumerate(placed)
                    if all(box[0] > e + 8 or box[1] < b - 8 for b, e in boxes)), len(placed))
        if row >= most:
            continue
        if row == len(placed):
            placed.append([])
        placed[row].append(box)
        out[i] = (row, anchor)
    return out


_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def _your_model(row: Mapping[str, Any], front: Any, supported: int) -> str:
    """One line of the verdict for a user's own model on one device: its latency and rank,
    and whether it is on the frontier or which frontier model beats it."""
    name = row["short_label"]
    if not row["supported"]:
        return f"{name}: cannot run {', '.join(row['unsupported_kinds'])} kernels here"
    head = f"{name}: {_ms(row['latency_ms'])}, #{row['rank']} of {supported} by latency"
    if _isna(row["top1"]):
        return (head + "; no top-1, so it is not on the frontier (give one with --top1 "
                       "MODEL=PERCENT)")
    head += f", top-1 {row['top1']:.1f}%"
    if row["pareto"]:
        return head + ", on the Pareto frontier ★"
    better = front[(front["latency_ms"] <= row["latency_ms"]) & (front["top1"] >= row["top1"])]
    if len(better):
        b = better.iloc[-1]
        return (head + f"; not on the frontier: {b['short_label']} is faster "
                       f"({_ms(b['latency_ms'])}) and at least as accurate "
                       f"({b['top1']:.1f}%)")
    return head + "; not on the frontier"


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
            kinds = sorted({k for ks in bad["unsupported_kinds"] for k in ks})
            items.append(("Cannot run", f"{_plural(len(bad), 'model')} with "
                                        f"{', '.join(kinds)} kernels: "
                                        + ", ".join(bad["short_label"])))
        for r in rows[rows["family"] == USER_FAMILY].to_dict(orient="records"):
            items.append(("Your model", _your_model(r, front, len(ok))))
        no_top1 = ok[ok["top1"].isna() & (ok["family"] != USER_FAMILY)]
        if len(no_top1):
            items.append(("No top-1", f"{', '.join(no_top1['short_label'])}: ranked, but "
                                      f"never on the frontier (give --top1 MODEL=PERCENT)"))
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
    from ..analyses.ridge import ridge_movers

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
                "(1 = fastest) and the 80 % range; ≈ after ★: the frontier model's range "
                "overlaps the next one's, so their order is uncertain. Bound: the dominant "
                "bound, then the shares of the latency in compute-, memory- and overhead-bound "
                "kernels (the per-inference overhead counts as overhead).")


def _results_table(comparison: Any) -> Markup:
    names = comparison.hardware_names
    by_label = comparison.records_by_label
    columns = ["model", "width", "res (px)", "top-1 %", "MACs", "params"]
    for _ in names:
        columns += ["ms (rank) range", "bound, C/M/O %"]
    rows, classes = [], []
    for label, short in zip(comparison.labels, comparison.short_labels, strict=True):
        part = by_label[label]
        first = part[names[0]]
        row: list[Any] = [short, float(first["width"]),
                          int(first["resolution"]),
                          None if first["top1"] is None else float(first["top1"]),
                          _count(first["macs"]), _count(first["params"])]
        for hw in names:
            r = part[hw]
            if r["supported"]:
                star = "★ " if r["pareto"] else ""
                shares = "/".join(f"{100 * r[b + '_bound_ms'] / r['latency_ms']:.0f}"
                                  for b in BOUND_COLOURS)
                approx = UNCERTAIN if r["pareto"] and r["order_uncertain"] else ""
                spread = range_span(r["latency_range_ms"] if has_range(r) else None)
                row += [Markup(f"{escape(star + approx)}{r['latency_ms']:.3g} "
                               f"({int(r['rank'])}){spread}"),
                        Markup(f"{escape(r['bound'])} <span class=\"sub\">{shares}</span>")]
            else:
                row += ["unsupported", f"cannot run: {', '.join(r['unsupported_kinds'])}"]
        rows.append(row)
        classes.append("frontier" if any(r["pareto"] for r in part.values()) else
                       ("unsupported" if not any(r["supported"] for r in part.values())
                        else None))
    numeric = [1, 2, 3, 4, 5] + [6 + 2 * i for i in range(len(names))]
    groups = [("", 6)] + [(hw, 2) for hw in names]
    return html_table(columns, rows, numeric=numeric, row_classes=classes, groups=groups)


def _provenance(comparison: Any, command: str, hardware_args: Sequence[str]) -> dict[str, Any]:
    import datetime

    from .. import __version__
    from ..analyses.roofs import ridge_point

    prov: dict[str, Any] = {
        "command": command,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "roofline version": __version__,
        "hardware as given": ", ".join(hardware_args),
    }
    for hw, precision in zip(comparison.hardware, comparison.precisions, strict=True):
        info = [f"kind {hw.kind}, priced at {precision}",
                f"peak {si(hw.peak(precision))}MAC/s, DRAM "
                f"{hw.dram.bandwidth_bytes_per_s / 1e9:.3g} GB/s, ridge point "
                f"{ridge_point(hw, precision):.3g} MACs/byte (peak ÷ DRAM bandwidth)",
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
    sources = sorted({src for m in range(len(comparison.variants))
                      for src in [comparison.top1_source_of(m)] if src and src != "given"})
    prov["models compared"] = [v.label for v in comparison.variants]
    prov["top-1 sources"] = sources or ["none (no zoo model at a published variant)"]
    if comparison.given_top1:
        prov["top-1 given with --top1"] = [f"{label}: {pct:g}%" for label, pct in
                                           comparison.given_top1.items()]
    prov["ridge points of the paper"] = ("Qin et al., MobileNetV4: Universal Models for the "
                                         "Mobile Ecosystem (ECCV 2024), Table 16")
    return prov


def compare_page(comparison: Any, *, focus: str | None, command: str,
                 hardware_args: Sequence[str], focus_rule: str | None = None) -> str:
    """The whole compare report (see ``roofline compare --help`` for what it holds).

    ``focus_rule`` says why ``focus`` was chosen (``Comparison.focus_rule``); None means the
    user named it."""
    from ..analyses.ridge import ridge_data
    from ..analyses.roofs import RIDGE_POINT_DEFINITION

    names = comparison.hardware_names
    sections: list[Section] = []
    n_models = len(comparison.variants)

    figs = []
    for hw in names:
        rows = comparison.on(hw)
        note = ""
        unsupported = rows[~rows["supported"]]
        if len(unsupported):
            note += f" Not drawn, unsupported here: {', '.join(unsupported['short_label'])}."
        no_top1 = rows[rows["supported"] & rows["top1"].isna()]
        if len(no_top1):
            note += (f" Not drawn, no top-1: {', '.join(no_top1['short_label'])} (give one "
                     f"with --top1 MODEL=PERCENT).")
        fig = pareto_figure(comparison, hw)
        left = unlabelled(fig)
        if left:
            note += (f" {_plural(left, 'frontier label')} would overlap another and "
                     f"{'is' if left == 1 else 'are'} left out: hover for the name.")
        user = " Stars are your own models." if comparison.user_labels else ""
        figs.append(Chart(fig, caption=(
            "Each marker is one model (colour: family; symbol: model within the family); "
            "up is more accurate, left is faster. Large outlined markers joined by the dotted "
            "step line are the Pareto frontier: for every other model, some frontier model is "
            "at least as fast and at least as accurate. Bars span each prediction's 80 % "
            "range; ≈ marks frontier models whose range overlaps the next one's, so that "
            "their order on this device is uncertain." + user + " Hover for MACs, "
            "parameters and what bounds the latency." + note)))
    sections.append(Section("Accuracy against latency, per device", anchor="pareto",
                            intro=f"{_plural(n_models, 'model')} on "
                                  f"{_plural(len(names), 'device')}. Latency is "
                                  "predicted by the roofline engine from each device's "
                                  "profile; top-1 is the published ImageNet figure"
                                  + (" or the one given with --top1"
                                     if comparison.given_top1 else "") + ".",
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
            roof_figs.append(Chart(roofline_figure(comparison, hw, focus),
                                   caption=roofline_caption(comparison, hw, focus)))
            last = (f" Not drawn: the fixed cost of {_ms(pred.per_inference_ms)} per inference "
                    f"({_pct(pred.per_inference_ms, pred.latency_ms)} of the latency)."
                    if pred.per_inference_ms > 0 else
                    " This device has no fixed per-inference cost.")
            bar_figs.append(Chart(breakdown_figure(comparison, hw, focus), caption=(
                "Each bar is one top-level block of the model (the module path's first part, "
                "with its index), split by what bounds its kernels." + last)))
        why = focus_rule or "named with --focus"
        sections.append(Section(
            f"Roofline of {_focus_name(comparison, focus)} on each device", anchor="roofline",
            intro=f"Focus: {_focus_name(comparison, focus)}, {why}; --focus chooses another. "
                  "The same model on each device shows why a device is fast or slow for it. "
                  f"Here and throughout the report, {RIDGE_POINT_DEFINITION}.",
            figures=roof_figs))
        sections.append(Section(f"Where {_focus_name(comparison, focus)}'s latency goes",
                                anchor="breakdown",
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
            "(peak ÷ DRAM bandwidth, the definition used throughout this report; fp16 and "
            "fp32 profiles converted to MACs per int8 byte). Drawn: the models on every "
            "device's Pareto frontier (or, when fewer than three are, on any device's) and "
            "the fastest at each ridge point; the other models of each family are one legend "
            "entry, hidden until clicked. A device label that would overlap another is in the "
            "legend and the hover.")
            + _movers_html(comparison, sweep)),
        figures=[ridge_figure(comparison, sweep, markers)]))

    sections.append(Section("All the numbers", anchor="numbers", intro=(
        "MACs are multiply-accumulates (1 MAC = 2 FLOPs). " + RESULTS_NOTE),
        html_table=_results_table(comparison)))
    title = "Which MobileNet to ship: " + " vs ".join(names)
    subtitle = (f"{_plural(n_models, 'model')} × {_plural(len(names), 'device')}, latency "
                f"predicted by the roofline engine. Hover any chart for details.")
    return render_page(title, sections, _provenance(comparison, command, hardware_args),
                       subtitle=subtitle, lead_html=_verdict_html(comparison))


def _empty_figure(message: str) -> Figure:

    fig = Figure()
    fig.add_annotation(text=plot_text(message), showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font={"size": 14})
    style_figure(fig, title=message, height=200)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
