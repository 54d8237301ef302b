"""``roofline graph MODEL``: the per-layer table of one model (op view or kernel view)."""

from __future__ import annotations

import argparse

from ._common import (
    add_precision_option,
    add_variant_options,
    console,
    fmt_bytes,
    fmt_count,
    make_table,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "graph", help="per-layer MACs, parameters and bytes of one model",
        description="Trace MODEL and print one row per kernel (--fused, the default) or per "
                    "op (--ops). MODEL is a zoo name (see 'roofline list models'), "
                    "package.module:callable or path/to/file.py:callable returning an "
                    "nn.Module; NAME@WIDTH:RESOLUTION is accepted too.")
    p.add_argument("model", metavar="MODEL")
    add_variant_options(p)
    add_precision_option(p, "fp32")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--fused", dest="fused", action="store_true", default=True,
                      help="kernel view: batch norm folded, activations and element-wise ops "
                           "in their producer (default)")
    view.add_argument("--ops", dest="fused", action="store_false",
                      help="op view: one row per tensor operation")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    out.add_argument("--csv", metavar="FILE", help="also write the per-layer table to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.fuse import fuse
    from ..io import atomic_open, check_writable
    from ..sources.variant import parse_variant

    variant = parse_variant(args.model, width=args.width, resolution=args.resolution,
                            batch=args.batch, inputs=args.input)
    if args.csv:
        check_writable(args.csv)
    graph = variant.trace(args.precision)
    if args.fused:
        graph = fuse(graph)
    if args.json:
        print_json(graph_json(variant, graph))
        return 0
    if args.csv:
        with atomic_open(args.csv, "w") as handle:
            graph.to_dataframe().to_csv(handle, index=False)
    print_graph(variant, graph)
    return 0


def graph_json(variant, graph) -> dict:
    ledger = graph.ledger
    return {
        "model": variant.name,
        "width": variant.effective_width,
        "resolution": variant.effective_resolution,
        "batch": variant.batch,
        "precision": graph.precision,
        "view": "kernels" if graph.fused else "ops",
        **{k: v for k, v in graph.summary().items() if k not in ("precision", "fused")},
        "ledger": {
            "counted": dict(ledger.counted),
            "ignored": {op: {"count": n, "rule": rule} for op, (n, rule) in
                        ledger.ignored.items()},
            "unknown": dict(ledger.unknown),
        },
        "layers": graph.records(),
    }


def print_graph(variant, graph) -> None:
    out = console()
    view = "kernels" if graph.fused else "ops"
    rows = []
    for layer in graph.layers:
        fused = f"+{len(layer.fused_ops)}" if layer.fused_ops else ""
        rows.append((layer.index, layer.name, layer.kind.value, fused,
                     "×".join(map(str, layer.output_shape)), fmt_count(layer.macs),
                     fmt_count(layer.params), fmt_bytes(layer.weight_bytes),
                     fmt_bytes(layer.input_bytes), fmt_bytes(layer.output_bytes),
                     f"{layer.intensity:.1f}"))
    columns = [("#", "right"), ("name", "left"), ("kind", "left"), ("fused", "right"),
               ("output", "left"), ("MACs", "right"), ("params", "right"),
               ("weights", "right"), ("act in", "right"), ("act out", "right"),
               ("MACs/B", "right")]
    out.print(make_table(columns, rows))
    ledger = graph.ledger
    ignored = sum(n for n, _ in ledger.ignored.values())
    out.print(
        f"{variant.label}  batch {variant.batch}  {graph.precision}  {len(graph)} {view}  "
        f"{fmt_count(graph.macs)} MACs ({fmt_count(2 * graph.macs)} FLOPs)  "
        f"{fmt_count(graph.params)} params  weights {fmt_bytes(graph.weight_bytes)}  "
        f"activations {fmt_bytes(graph.activation_bytes)}")
    out.print(f"ops: {sum(ledger.counted.values())} counted, {ignored} ignored by rule, "
              f"{sum(ledger.unknown.values())} unknown"
              + (f" ({', '.join(graph.unknown_ops)})" if graph.unknown_ops else ""))
