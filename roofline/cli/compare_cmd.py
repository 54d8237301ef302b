"""``roofline compare --hw HW[,HW...]``: which model to ship on each device, and why.

Owns the command's options, its terminal tables, JSON and CSV output; the comparison is
``roofline.analyses.compare`` and the HTML report ``roofline.report.page``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import (
    add_input_option,
    add_precision_option,
    console,
    fmt_count,
    fmt_ms,
    make_table,
    print_json,
    split_list,
    write_rows_csv,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="models x devices: latency, Pareto frontier, HTML report",
        description="Predict every model on every device, mark the Pareto frontier of top-1 "
                    "against latency per device, print one table per device and write an "
                    "offline HTML report (accuracy vs latency, ranking changes, the roofline "
                    "and per-stage breakdown of one model, a ridge-point sweep, all numbers "
                    "and their provenance).",
        epilog="MODELS: 'all' (default: every zoo model at every published width and "
               "resolution with a published top-1), NAME (width 1.0 at its default "
               "resolution), NAME@WIDTH:RES, NAME@* (every published variant of NAME), "
               "path/to/file.py:callable or package.module:callable; comma-separated, "
               "e.g. --models all,my_net.py:build. Example: roofline compare --hw cpu,edgetpu")
    p.add_argument("--hw", required=True, type=lambda s: split_list(s, "hardware"),
                   metavar="HW[,HW...]",
                   help="hardware profile names, aliases or .toml paths (see 'roofline list "
                        "hardware')")
    p.add_argument("--models", type=lambda s: split_list(s, "model"), default=["all"],
                   metavar="all|NAME,...", help="models to compare (default: all)")
    add_precision_option(p, None)
    add_input_option(p)
    p.add_argument("--focus", metavar="NAME", default=None,
                   help="model whose kernels the report's roofline and breakdown charts show "
                        "(default: the fastest Pareto-optimal model on the first device)")
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help="report path (default: reports/compare-<hw1>-<hw2>.html under the "
                        "current folder)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--json", action="store_true",
                   help="print the result rows as JSON instead of tables (the report path, if "
                        "one is written, goes to stderr)")
    p.add_argument("--csv", metavar="FILE", default=None, help="also write the rows to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analyses.compare import compare
    from ..core.hardware import resolve_hardware
    from ..errors import UsageError
    from ..io import check_writable
    from ..sources.variant import resolve_models

    if args.no_report and args.out:
        raise UsageError("--out and --no-report contradict each other; give one")
    hardware = resolve_hardware(args.hw, args.precision)
    variants = resolve_models(args.models, args.input)
    if args.focus is not None:
        from ..sources.variant import parse_variant

        if parse_variant(args.focus).label not in {v.label for v in variants}:
            raise UsageError(f"--focus {args.focus!r} is not among the compared models; add "
                             f"it to --models")
    # Outputs are checked (and the report's folder made) before the long work starts.
    report_path = None
    if not args.no_report:
        report_path = Path(args.out) if args.out else Path("reports") / report_name(args.hw)
        check_writable(report_path)
    if args.csv:
        check_writable(args.csv)

    comparison = compare(variants, hardware, args.precision)
    focus = comparison.focus_label(args.focus)

    if report_path is not None:
        from ..report.compare_page import compare_page
        from ..report.page import write_page

        command = "roofline " + shlex.join(args.argv)
        write_page(report_path, compare_page(comparison, focus=focus, command=command,
                                             hardware_args=args.hw))
    rows = comparison.rows()
    if args.csv:
        write_rows_csv(args.csv, rows)
    if args.json:
        print_json(rows)
        if report_path is not None:
            print(f"report: {report_path}", file=sys.stderr)
        return 0
    print_tables(comparison)
    if report_path is not None:
        console().print(f"report: {report_path}")
    return 0


def _bound_cell(row: dict[str, Any]) -> str:
    if not row["supported"]:
        return f"op kind: {row['unsupported_kinds']}"
    total = row["latency_ms"]
    shares = "/".join(f"{100 * row[f'{b}_bound_ms'] / total:.0f}" for b in ("compute", "memory",
                                                                      "overhead"))
    return f"{row['bound']} ({shares})"


def print_tables(comparison: Any) -> None:
    """One table per device, fastest first; ★ marks the Pareto frontier."""
    from ..analyses.compare import USER_FAMILY

    out = console()
    columns = [("model", "left"), ("width", "right"), ("res", "right"), ("top-1", "right"),
               ("MACs", "right"), ("params", "right"), ("latency ms", "right"),
               ("bound (C/M/O %)", "left"), ("pareto", "left")]
    for h, hw in enumerate(comparison.hardware):
        records = comparison.on(hw.name).to_dict(orient="records")
        rows = []
        for r in (comparison_row(x) for x in records):
            name = r["short_label"].rsplit(":", 1)[0] if r["family"] == USER_FAMILY \
                else r["model"]
            rows.append((name, f"{r['width']:g}",
                         r["resolution"],
                         "-" if r["top1"] is None else f"{r['top1']:.1f}",
                         fmt_count(r["macs"]), fmt_count(r["params"]),
                         fmt_ms(r["latency_ms"]) if r["supported"] else "unsupported",
                         _bound_cell(r), "★" if r["pareto"] else ""))
        front = sum(1 for r in records if r["pareto"])
        title = (f"{hw.name} ({hw.kind}, {comparison.precisions[h]}): {len(records)} models, "
                 f"{front} Pareto-optimal (★)")
        out.print(make_table(columns, rows, title=title))
    out.print("★ Pareto-optimal on that device: no other model is both faster and more "
              "accurate. Bound: where most of the latency goes, then the % in compute-, memory- "
              "and overhead-bound kernels.")


def comparison_row(record: dict[str, Any]) -> dict[str, Any]:
    """A table record with NaN/NA turned into None."""
    from ..analyses.compare import _plain

    return {k: _plain(v) for k, v in record.items()}


def report_name(hardware_args: Sequence[str]) -> str:
    """``compare-<hw1>-<hw2>.html`` from the names as given (a .toml path by its stem)."""
    parts = []
    for name in hardware_args:
        stem = Path(name).stem if name.endswith(".toml") or "/" in name else name
        safe = "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in stem)
        parts.append(safe or "hw")
    return "compare-" + "-".join(parts) + ".html"
