"""``roofline profile MODEL --hw HW``: predicted latency of one model on one device, and why."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import (
    Col,
    add_precision_option,
    add_variant_options,
    bytes_cell,
    console,
    count_cell,
    fmt_count,
    fmt_ms,
    fmt_range,
    kind_cell,
    make_table,
    plural,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="predicted latency of one model on one device, per kernel",
        description="Predict MODEL's latency on a hardware profile: the total, how much of it "
                    "is compute-, memory- or overhead-bound, and the per-kernel table. MODEL "
                    "is a zoo name, package.module:callable or path/to/file.py:callable; HW is "
                    "a profile name (see 'roofline list hardware') or a .toml path.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--hw", required=True, metavar="HW", help="hardware profile name or path")
    add_variant_options(p)
    add_precision_option(p, None)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.engine import predict
    from ..core.hardware import load_hardware
    from ..sources.variant import parse_variant

    hw = load_hardware(args.hw)
    precision = args.precision or hw.default_precision
    hw.peak(precision)  # an unknown precision for this device fails before tracing
    variant = parse_variant(args.model, width=args.width, resolution=args.resolution,
                            batch=args.batch, inputs=args.input)
    graph = variant.trace()
    prediction = predict(graph, hw, precision)
    if args.json:
        print_json(profile_json(variant, graph, prediction))
        return 0
    print_profile(variant, graph, prediction)
    return 0


def profile_json(variant: Any, graph: Any, prediction: Any) -> dict[str, Any]:
    layers = []
    for r in prediction.kernel_records():
        layers.append({k: r[k] for k in (
            "name", "op", "kind", "macs", "weight_bytes", "input_bytes", "output_bytes",
            "dram_bytes", "compute_ms", "memory_ms", "overhead_ms", "latency_ms", "bound",
            "intensity", "efficiency", "supported", "fused_ops")})
    return {
        "model": variant.name,
        "hardware": prediction.hardware.name,
        "width": variant.effective_width,
        "resolution": variant.effective_resolution,
        "batch": variant.batch,
        "precision": prediction.precision,
        "params": graph.params,
        "macs": graph.macs,
        "top1": variant.top1(),
        "latency_ms": prediction.latency_ms,
        "latency_range_ms": (list(prediction.latency_range_ms)
                             if prediction.latency_range_ms else None),
        "supported": prediction.supported,
        "unsupported_kinds": prediction.unsupported_kinds,
        "bound_ms": prediction.bound_breakdown(),
        "per_inference_ms": prediction.per_inference_ms,
        "layers": layers,
    }


def print_profile(variant: Any, graph: Any, prediction: Any) -> None:
    out = console()
    records = prediction.kernel_records()
    total = prediction.latency_ms
    rows = []
    for i, r in enumerate(records):
        share = (f"{100 * r['latency_ms'] / total:.1f}" if total and r["latency_ms"] is not None
                 else "-")
        rows.append((i, r["name"], kind_cell(r["kind"]), count_cell(r["macs"]),
                     bytes_cell(r["weight_bytes"]),
                     bytes_cell(r["input_bytes"] + r["output_bytes"]), f"{r['intensity']:.1f}",
                     f"{100 * r['efficiency']:.0f}", fmt_ms(r["compute_ms"]),
                     fmt_ms(r["memory_ms"]), fmt_ms(r["latency_ms"]),
                     r["bound"] if r["supported"] else "UNSUPPORTED", share))
    # Priority: 0 always shown; the highest goes first when the terminal is narrow.
    columns = [Col("#", priority=6), Col("kernel", "left", wrap=True), Col("kind", "left", 2),
               Col("MACs", priority=1), Col("weights", priority=4), Col("act", priority=4),
               Col("MACs/B", priority=3), Col("eff %", priority=5),
               Col("compute ms", priority=2, short="comp ms"),
               Col("memory ms", priority=2, short="mem ms"),
               Col("latency ms", short="ms"), Col("bound", "left"), Col("%")]
    out.print(make_table(columns, rows))
    hw = prediction.hardware
    head = (f"{variant.label} on {hw.name} ({hw.kind}, {prediction.precision}, batch "
            f"{variant.batch}): ")
    if not prediction.supported:
        out.print(head + f"UNSUPPORTED: {hw.name} cannot run "
                  f"{', '.join(prediction.unsupported_kinds)} kernels"
                  + " (no fallback; see [support] in its profile)")
        return
    breakdown = prediction.bound_breakdown()
    parts = "  ".join(f"{b} {fmt_ms(ms)} ms ({share_text(ms, total)})"
                      for b, ms in breakdown.items() if ms > 0)
    out.print(head + f"{fmt_ms(total)} ms (80 % range {fmt_range(prediction.latency_range_ms)} "
              f"ms)  {plural(len(records), 'kernel')}  {fmt_count(graph.macs)} MACs  "
              f"{fmt_count(graph.params)} params")
    fixed = (f"  (the per-inference overhead, {fmt_ms(prediction.per_inference_ms)} ms, counts "
             f"as overhead)" if prediction.per_inference_ms > 0 else "")
    out.print(f"bound: {parts}{fixed}")


def share_text(part: float, whole: float) -> str:
    """``part`` as a share of ``whole`` the way a person writes it: '12%', '<1%', '0%'."""
    if not whole or part <= 0:
        return "0%"
    pct = 100 * part / whole
    return "<1%" if pct < 0.5 else f"{pct:.0f}%"
