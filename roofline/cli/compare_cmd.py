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
    Alt,
    Col,
    add_input_option,
    add_precision_option,
    add_top1_option,
    console,
    count_cell,
    fmt_ms,
    fmt_range,
    make_table,
    plural,
    print_json,
    split_list,
    write_rows_csv,
)

#: The devices compared when --hw is not given: a phone CPU and an accelerator.
DEFAULT_HW = "cpu,edgetpu"


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
    p.add_argument("--hw", default=DEFAULT_HW, type=lambda s: split_list(s, "hardware"),
                   metavar="HW[,HW...]",
                   help="hardware profile names, aliases or .toml paths (see 'roofline list "
                        f"hardware'; default {DEFAULT_HW})")
    p.add_argument("--models", type=lambda s: split_list(s, "model"), default=["all"],
                   metavar="all|NAME,...", help="models to compare (default: all)")
    add_precision_option(p, None)
    add_input_option(p)
    add_top1_option(p, "a compared model")
    p.add_argument("--focus", metavar="NAME", default=None,
                   help="model whose kernels the report's roofline and breakdown charts show "
                        "(default: on the first device's Pareto frontier, the model nearest "
                        "the frontier's median latency)")
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help="report path (default: reports/compare-<hw1>-<hw2>.html under the "
                        "current folder; with --json, no report unless --out is given)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--json", action="store_true",
                   help="print the result rows as JSON instead of tables; no report is written "
                        "unless --out names one (its path then goes to stderr)")
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
    # With --json the rows are the answer: a report only when --out asks for one.
    if not args.no_report and (args.out or not args.json):
        report_path = Path(args.out) if args.out else Path("reports") / report_name(args.hw)
        check_writable(report_path)
    if args.csv:
        check_writable(args.csv)

    comparison = compare(variants, hardware, args.precision, top1=dict(args.top1))
    focus = comparison.focus_label(args.focus)

    if report_path is not None:
        from ..report.compare_page import compare_page
        from ..report.page import write_page

        command = "roofline " + shlex.join(args.argv)
        write_page(report_path, compare_page(comparison, focus=focus, command=command,
                                             hardware_args=args.hw,
                                             focus_rule=comparison.focus_rule(focus)
                                             if args.focus is None else None))
    rows = comparison.rows()
    if args.csv:
        write_rows_csv(args.csv, [{**r, "unsupported_kinds": ",".join(r["unsupported_kinds"])}
                                  for r in rows])
    if args.json:
        print_json(rows)
        if report_path is not None:
            print(f"report: {report_path}", file=sys.stderr)
        return 0
    print_tables(comparison)
    if report_path is not None:
        console().print(f"report: {report_path}")
    return 0


def _bound_cell(row: dict[str, Any]) -> Alt | str:
    if not row["supported"]:
        return f"cannot run {','.join(row['unsupported_kinds'])}"
    total = row["latency_ms"]
    shares = [100 * row[f"{b}_bound_ms"] / total if total else 0.0
              for b in ("compute", "memory", "overhead")]
    main = shares[("compute", "memory", "overhead").index(row["bound"])]
    return Alt(f"{row['bound']} ({'/'.join(f'{x:.0f}' for x in shares)})",
               f"{row['bound']} {main:.0f}%")


def print_tables(comparison: Any) -> None:
    """One table per device, fastest first; ★ marks the Pareto frontier."""
    from ..analyses.compare import USER_FAMILY

    out = console()
    # Narrow terminals: the label (mobilenet_v2@0.75:160) carries width and resolution, the
    # bound shows its own share only, params go first, then the bound; a long name folds.
    columns = [Col("model", "left", wrap=True), Col("width", full_only=True),
               Col("res", full_only=True), Col("top-1"), Col("MACs"),
               Col("params", priority=3), Col("latency ms", short="ms"),
               Col("80 % range", priority=2, short="range"),
               Col("bound (C/M/O %)", "left", 1, short="bound"),
               Col("pareto", "left", short="★")]
    for h, hw in enumerate(comparison.hardware):
        records = comparison.on(hw.name).to_dict(orient="records")
        rows = []
        for r in (comparison_row(x) for x in records):
            name = r["short_label"].rsplit(":", 1)[0] if r["family"] == USER_FAMILY \
                else r["model"]
            rows.append((Alt(name, r["short_label"]), f"{r['width']:g}", r["resolution"],
                         "-" if r["top1"] is None else f"{r['top1']:.1f}",
                         count_cell(r["macs"]), count_cell(r["params"]),
                         fmt_ms(r["latency_ms"]) if r["supported"] else "-",
                         fmt_range(r["latency_range_ms"]), _bound_cell(r),
                         ("★≈" if r["order_uncertain"] else "★") if r["pareto"] else ""))
        front = sum(1 for r in records if r["pareto"])
        title = (f"{hw.name} ({hw.kind}, {comparison.precisions[h]}): "
                 f"{plural(len(records), 'model')}, {front} Pareto-optimal (★)")
        out.print(make_table(columns, rows, title=title))
    out.print("★ Pareto-optimal on that device: no other model is both faster and more "
              "accurate; ★≈: its latency range overlaps the next frontier model's, so which "
              "of the two is faster is not known. Range: the 80 % range of the latency, given "
              "the profile's fit and the engine's own error. Bound: where most of the latency "
              "goes and its share; in a wide table the % in compute-, memory- and "
              "overhead-bound kernels (C/M/O).")


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
