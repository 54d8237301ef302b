"""``roofline sweep``: a width × resolution grid of one model on many devices, or the
ridge-point sweep of the MobileNetV4 paper.

Owns the command's options, progress bar and output (tables, CSV, JSON, HTML); the sweep is
``roofline.analyses.sweep`` and its page ``roofline.report.sweep_page``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (
    Col,
    ProgressBar,
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

DEFAULT_HW = "cpu,dsp,gpu,edgetpu"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="width x resolution grids on many devices; the ridge-point sweep",
        description="Trace every width x resolution variant of MODEL once (from the graph "
                    "cache when it has it, else in worker processes), predict it on every "
                    "device, and report per device the latency-MACs frontier and the "
                    "latency-top-1 frontier of the variants with a published top-1. With "
                    "--ridge, the MobileNetV4 paper's ridge-point sweep instead.",
        epilog="Ranges are START:STOP:STEP with STOP included when it lands on the grid "
               "(0.25:1.5:0.05 is 26 widths), or lists a,b,c, or one value. Examples: "
               "roofline sweep mobilenet_v2 --width 0.25:1.5:0.05 --resolution 96:320:32 "
               "--hw cpu,dsp,gpu,edgetpu; roofline sweep --ridge 0:500")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="zoo name, file.py:callable or package.module:callable (taking width=)")
    p.add_argument("--width", default="1.0", metavar="RANGE",
                   help="width multipliers (default 1.0)")
    p.add_argument("--resolution", default=None, metavar="RANGE",
                   help="input resolutions in pixels (default: the model's own)")
    p.add_argument("--hw", default=DEFAULT_HW, type=lambda s: split_list(s, "hardware"),
                   metavar="HW[,HW...]", help=f"hardware profiles (default {DEFAULT_HW})")
    p.add_argument("--batch", default="1", metavar="B", help="batch size (default 1)")
    add_precision_option(p, None)
    add_top1_option(p, "one swept variant (MODEL, MODEL@WIDTH or MODEL@WIDTH:RES: a variant "
                       "of the grid)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes tracing variants not in the cache (default min(cores, 4); "
                        "1 traces in this process)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where variants are traced: local processes (default) or a Ray "
                        "cluster (pip install 'roofline[distributed]'); the same rows")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: the cluster (default: start a local one)")
    p.add_argument("--ridge", metavar="START:STOP[:STEP]", default=None,
                   help="the ridge-point sweep (MACs per byte; step 5 by default) instead of a "
                        "grid")
    p.add_argument("--models", type=lambda s: split_list(s, "model"), default=None,
                   metavar="NAME,...", help="with --ridge: models (default: the zoo at width "
                                            "1.0 and its default resolution)")
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help="report path (default reports/sweep-<model>.html or "
                        "reports/ridge-sweep.html)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--csv", metavar="FILE", default=None, help="also write every row to FILE")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    if args.no_report and args.out:
        raise UsageError("--out and --no-report contradict each other; give one")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.address and args.backend != "ray":
        raise UsageError("--address goes with --backend ray")
    if args.ridge is not None and args.backend != "local":
        raise UsageError("--backend goes with a grid sweep, not --ridge")
    if args.ridge is not None:
        if args.top1:
            raise UsageError("--top1 goes with a grid sweep: the ridge-point sweep ranks by "
                             "cost, not accuracy")
        if args.model:
            raise UsageError("--ridge sweeps --models, not MODEL; drop MODEL or --ridge")
        return _ridge(args)
    if not args.model:
        raise UsageError("give MODEL to sweep (e.g. mobilenet_v2) or --ridge START:STOP")
    if args.models:
        raise UsageError("--models goes with --ridge; a grid sweep takes one MODEL")
    return _grid(args)


def _outputs(args: argparse.Namespace, default_name: str) -> Path | None:
    from ..io import check_writable

    report = None if args.no_report else Path(args.out or Path("reports") / default_name)
    if report is not None:
        check_writable(report)
    if args.csv:
        check_writable(args.csv)
    return report


def _safe_name(text: str) -> str:
    stem = Path(text.rsplit(":", 1)[0]).stem if ":" in text else text
    return "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in stem) or "model"


# -- the grid -------------------------------------------------------------------------------------

def _grid(args: argparse.Namespace) -> int:
    from ..analyses.compare import given_top1
    from ..analyses.sweep import (
        ROW_FIELDS,
        default_workers,
        evaluate_grid,
        parse_grid,
        sweep_variants,
        trace_all,
        views_of,
    )
    from ..core.hardware import resolve_hardware
    from ..sources.variant import Variant, check_batch

    hardware = resolve_hardware(args.hw, args.precision)
    batch = check_batch(args.batch)
    widths = parse_grid(args.width, "--width")
    if args.resolution is None:
        resolutions = [Variant(args.model, 1.0).validate().effective_resolution]
    else:
        resolutions = parse_grid(args.resolution, "--resolution", integer=True)
    variants = sweep_variants(args.model, widths, resolutions, batch)
    top1 = given_top1(variants, dict(args.top1))
    report = _outputs(args, f"sweep-{_safe_name(args.model)}.html")
    workers = args.workers or default_workers()

    backend = None
    if args.backend == "ray":
        from ..analyses.backends import make_backend

        backend = make_backend("ray", workers=workers, address=args.address)
    where = backend.describe() if backend is not None else plural(workers, "worker")
    started = time.perf_counter()
    try:
        with ProgressBar(len(variants), "tracing") as bar:
            arrays, stats = trace_all(variants, views_of(hardware), workers,
                                      lambda done, total: bar.update(done), backend=backend)
    finally:
        if backend is not None:
            backend.close()
    traced_s = time.perf_counter() - started
    result = evaluate_grid(variants, arrays, hardware, args.precision, stats, top1)
    engine_s = time.perf_counter() - started - traced_s

    rows = result.rows()
    if args.csv:
        write_rows_csv(args.csv, rows, ROW_FIELDS)
    if report is not None:
        from ..report.page import write_page
        from ..report.sweep_page import sweep_page

        write_page(report, sweep_page(result, model=args.model,
                                      command="roofline " + shlex.join(args.argv)))
    out = console()
    if args.json:
        print_json(rows)
    else:
        _print_frontiers(result)
    summary = (f"{len(result.variants)} of {plural(len(variants), 'variant')} x "
               f"{plural(len(hardware), 'device')}; kernels: {stats.cached} from the cache, "
               f"{stats.traced} traced ({traced_s:.1f} s, {where}); engine "
               f"{engine_s * 1e3:.0f} ms for "
               f"{plural(len(result.variants) * len(hardware), 'prediction')}")
    said = console(stderr=args.json)  # the summary wraps to the terminal like the tables
    said.print(summary)
    if report is not None:
        said.print(f"report: {report}")
    if result.partial:
        out.print("interrupted: the finished variants were kept and written", style=None)
        return 130
    return 0


def _print_frontiers(result: Any) -> None:
    out = console()
    for h, hw in enumerate(result.hardware):
        by_macs, by_top1 = result.frontier(h)
        uncertain = result.order_uncertain(h)
        order = sorted((m for m in range(len(result.variants)) if by_macs[m]),
                       key=lambda m: result.latency_s[h, m])
        rows = []
        for m in order:
            v = result.variants[m]
            top1 = result.top1(m)
            rows.append((f"{v.effective_width:g}", v.effective_resolution,
                         count_cell(result.macs[m]), count_cell(result.params[m]),
                         ("≈" if uncertain[m] else "") + fmt_ms(result.latency_s[h, m] * 1e3),
                         fmt_range(result.latency_range_ms(h, m)),
                         "-" if top1 is None else f"{top1:.1f}" + (" ★" if by_top1[m] else "")))
        unsupported = int(sum(1 for x in result.latency_s[h] if x != x))
        title = (f"{hw.name} ({result.precisions[h]}): latency-MACs frontier, "
                 f"{len(rows)} of {plural(len(result.variants), 'variant')}"
                 + (f"; {unsupported} unsupported" if unsupported else ""))
        out.print(make_table([Col("width"), Col("res"), Col("MACs"), Col("params", priority=1),
                              Col("latency ms", short="ms"),
                              Col("80 % range", priority=2, short="range"),
                              Col("top-1 %", short="top-1")],
                             rows, title=title))
    out.print("Frontier: no other variant is faster with at least as many MACs. ≈: its latency "
              "range overlaps the next frontier variant's, so which of the two is faster is not "
              "known. Range: the 80 % range of the latency, given the profile's fit and the "
              "engine's own error. ★: also on the latency-top-1 frontier of the variants with "
              "a top-1 (published, or given with --top1).")


# -- the ridge-point sweep ------------------------------------------------------------------------

def _ridge_points(text: str) -> list[float]:
    from ..analyses.sweep import parse_grid

    parts = text.split(":")
    if len(parts) == 2:
        text = f"{text}:5"
    return [float(v) for v in parse_grid(text, "--ridge", allow_zero=True)]


def _ridge_models(specs: list[str] | None) -> list[Any]:
    from ..sources.variant import Variant, resolve_models
    from ..zoo import get_model_info, list_models

    if specs is None:  # the default comparison's models, each at width 1
        return [Variant(name, 1.0) for name in list_models()
                if get_model_info(name).compare_default]
    return resolve_models(specs)


def _ridge(args: argparse.Namespace) -> int:
    from ..analyses.compare import compare
    from ..analyses.ridge import PAPER_RIDGE_POINTS, ridge_data, ridge_movers

    points = _ridge_points(args.ridge)
    variants = _ridge_models(args.models)
    report = _outputs(args, "ridge-sweep.html")
    comparison = compare(variants, args.hw, args.precision)
    table, markers = ridge_data(comparison, points)
    rows = table.to_dict("records")
    if args.csv:
        write_rows_csv(args.csv, rows, list(table.columns))
    if report is not None:
        from ..report.page import write_page
        from ..report.ridge_page import ridge_page

        write_page(report, ridge_page(comparison, table, markers, ridge_movers(table), points,
                                      command="roofline " + shlex.join(args.argv)))
    if args.json:
        print_json(rows)
    else:
        _print_ridge(table, points, PAPER_RIDGE_POINTS)
    if report is not None:
        print(f"report: {report}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _print_ridge(table: Any, points: list[float], paper: dict[str, float]) -> None:
    import numpy as np

    out = console()
    grid = np.asarray(sorted(set(table["ridge_point"])))
    wanted = [points[0], *sorted(paper.values()), points[-1]]
    shown = []
    for rp in wanted:  # the nearest swept ridge point to each column
        nearest = float(grid[np.abs(grid - rp).argmin()])
        if nearest not in shown:
            shown.append(nearest)
    names = {v: k for k, v in paper.items()}
    nearest_name = {}
    for rp in shown:  # the paper device each shown column stands for
        close = [n for v, n in names.items() if abs(v - rp) <= (grid[1] - grid[0] if
                                                                 len(grid) > 1 else 0) / 2]
        if close:
            nearest_name[rp] = close[0]
    headers = [Col(f"RP {rp:g}" + (f" ({nearest_name[rp]})" if rp in nearest_name else ""),
                   short=f"RP {rp:g}") for rp in shown]
    rows = []
    for model, part in table.groupby("model", sort=False):
        by_rp = dict(zip(part["ridge_point"], part["relative"], strict=True))
        rows.append((model, *(f"{by_rp[rp]:.2f}" for rp in shown)))
    out.print(make_table([Col("model", "left", wrap=True), *headers], rows,
                         title="latency relative to the fastest model at each ridge point "
                               "(1.00 = the fastest)"))
    marks = [f"RP {rp:g} {nearest_name[rp]}" for rp in shown if rp in nearest_name]
    if marks:
        out.print("ridge points (MACs per int8 byte) the MobileNetV4 paper fitted (Table 16), "
                  "nearest swept: " + ", ".join(marks))
    best = []
    for rp in shown:
        part = table[table["ridge_point"] == rp]
        best.append(f"RP {rp:g}: {part.loc[part['relative'].idxmin(), 'model']}")
    out.print("fastest: " + "; ".join(best))
