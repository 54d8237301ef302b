"""``roofline search``: sample a block-level search space, price every candidate on every
device, and report the frontiers, the candidates fast on every device at once, and (with
``--lut``) latency lookup tables.

Owns the command's options, its progress bar and output (tables, CSV, JSON, the lookup table
and the HTML page); the search is ``roofline.analyses.search`` and its page
``roofline.report.search_page``.
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path
from typing import Any

from ._common import (
    ProgressBar,
    add_precision_option,
    console,
    fmt_count,
    fmt_ms,
    make_table,
    positive_int,
    print_json,
    split_list,
)

DEFAULT_HW = "cpu,dsp,gpu,edgetpu"
#: Frontier rows shown per device, and universally fast candidates listed.
SHOWN = 8


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="hardware-aware architecture search over a block-level space",
        description="Sample candidates of a search space (random, or a constrained "
                    "evolutionary search), price each on every device from cached block "
                    "graphs, and report per device the latency-MACs and latency-params "
                    "frontiers and the candidates that meet every --latency-ms target on "
                    "all devices at once.",
        epilog="SPACE is a shipped space (roofline list spaces) or a .toml file. Examples: "
               "roofline search mobilenet_v4 --hw cpu,dsp,gpu,edgetpu --samples 100000 "
               "--csv rows.csv; roofline search mobilenet_v3 --hw cpu,edgetpu --strategy "
               "evolution --latency-ms cpu=8,edgetpu=1.5 --samples 20000 --lut lut.csv")
    p.add_argument("space", metavar="SPACE", help="space name or path to a .toml space")
    p.add_argument("--hw", default=DEFAULT_HW, type=lambda s: split_list(s, "hardware"),
                   metavar="HW[,HW...]", help=f"hardware profiles (default {DEFAULT_HW})")
    p.add_argument("--samples", type=positive_int, default=10_000, metavar="N",
                   help="distinct candidates to price (default 10000; fewer if the space "
                        "is smaller)")
    p.add_argument("--strategy", choices=("random", "evolution"), default="random",
                   help="random sampling (default) or regularised evolution under the "
                        "--latency-ms targets")
    p.add_argument("--seed", type=_non_negative, default=0, metavar="S",
                   help="random seed (default 0)")
    p.add_argument("--latency-ms", action="append", default=[], metavar="HW=MS[,HW=MS]",
                   help="a latency target per device (repeatable); 'universally fast' = "
                        "runs on every device and meets every target")
    p.add_argument("--objective", choices=("macs", "params"), default="macs",
                   help="what evolution maximises under the targets (default macs)")
    add_precision_option(p, None)
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where the work runs: local processes (default) or a Ray cluster "
                        "(pip install 'roofline[distributed]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: the cluster (default: start a local one)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="local worker processes (default min(cores, 4)), or CPUs of a local "
                        "Ray cluster")
    p.add_argument("--csv", metavar="FILE", default=None, help="write every candidate's row")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--lut", metavar="FILE.csv|FILE.json", default=None,
                   help="write the latency lookup table per device and block")
    p.add_argument("--lut-check", type=_non_negative, default=2000, metavar="N",
                   help="held-out candidates the lookup table's error is measured on "
                        "(default 2000)")
    p.add_argument("--check", type=_non_negative, default=0, metavar="N",
                   help="also build N of the priced candidates as one nn.Module each, trace "
                        "and price them, and compare (default 0)")
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help="report path (default reports/search-<space>.html)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.set_defaults(func=run)


def parse_targets(texts: list[str], names: list[str], hardware: list[Any]
                  ) -> tuple[tuple[int, float], ...]:
    """``HW=MS`` items (comma-separated, repeatable) as (device index, seconds); HW is a name
    as given to --hw or the profile's own name."""
    from ..errors import UnknownNameError, UsageError

    out: dict[int, float] = {}
    for text in texts:
        for item in (t.strip() for t in text.split(",")):
            if not item:
                continue
            device, sep, value = item.partition("=")
            device = device.strip()
            if not sep or not device:
                raise UsageError(f"--latency-ms: {item!r} is not HW=MS (e.g. cpu=5)")
            index = next((i for i, (n, hw) in enumerate(zip(names, hardware, strict=True))
                          if device in (n, hw.name)), None)
            if index is None:
                raise UnknownNameError("device in --latency-ms (not in --hw)", device, names)
            try:
                ms = float(value)
            except ValueError:
                raise UsageError(f"--latency-ms: {value.strip()!r} is not a number of "
                                 f"milliseconds") from None
            if not math.isfinite(ms) or ms <= 0:
                raise UsageError(f"--latency-ms: the target for {device} must be a finite "
                                 f"number > 0, got {value.strip()}")
            out[index] = ms / 1e3
    return tuple(sorted(out.items()))


class _Progress:
    """One progress bar per phase (tracing blocks, pricing)."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None
        self.what = ""

    def __call__(self, what: str, done: int, total: int) -> None:
        if what != self.what:
            self.close()
            self.what = what
            self.bar = ProgressBar(total, what).__enter__()
        if self.bar is not None:
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def run(args: argparse.Namespace) -> int:
    from ..analyses.backends import make_backend
    from ..analyses.search.search import MAX_SAMPLES, SearchConfig, run_search
    from ..analyses.search.space import load_space
    from ..analyses.sweep import default_workers
    from ..core.hardware import resolve_hardware
    from ..errors import UsageError
    from ..io import check_writable

    if args.no_report and args.out:
        raise UsageError("--out and --no-report contradict each other; give one")
    if args.address and args.backend != "ray":
        raise UsageError("--address goes with --backend ray")
    if args.samples > MAX_SAMPLES:
        raise UsageError(f"--samples must be at most {MAX_SAMPLES:,}, got {args.samples:,}")
    if args.lut and Path(args.lut).suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"--lut {args.lut!r}: give a .csv or .json file name")
    space = load_space(args.space)
    hardware = resolve_hardware(args.hw, args.precision)
    targets = parse_targets(args.latency_ms, list(args.hw), hardware)
    config = SearchConfig(space=space, hardware=tuple(hardware), samples=args.samples,
                          strategy=args.strategy, seed=args.seed, targets=targets,
                          objective=args.objective, precision=args.precision)
    config.check()
    report = None if args.no_report else Path(args.out or Path("reports") /
                                               f"search-{_safe(space.name)}.html")
    for path in (report, args.csv, args.lut):
        if path is not None:
            check_writable(path)

    started = time.perf_counter()
    progress = _Progress()
    backend = make_backend(args.backend, workers=args.workers or default_workers(),
                           address=args.address)
    try:
        result = run_search(config, backend, progress)
    finally:
        progress.close()
        backend.close()
    search_s = time.perf_counter() - started

    lut = None
    if args.lut and result.count and not result.partial:
        from ..analyses.search.lut import build_lut

        lut = build_lut(result, check=args.lut_check)
        _write_lut(args.lut, lut)
    check = _check(result, args.check) if args.check and result.count else None
    if args.csv:
        _write_csv(args.csv, result)
    if report is not None:
        from ..report.page import write_page
        from ..report.search_page import search_page

        write_page(report, search_page(result, lut=lut, check=check,
                                       command="roofline " + shlex.join(args.argv),
                                       names=list(args.hw)))
    if args.json:
        print_json(result.rows_out())
    else:
        _print(result, list(args.hw), lut, check)
    # With --json stdout holds only the rows; the summary goes to stderr.
    out = console(stderr=args.json)
    st = result.stats
    out.print(f"{result.count:,} candidates x {len(hardware)} devices in {search_s:.1f} s "
              f"({st.backend}); blocks: {st.units} units, {st.traced} traced, "
              f"{st.from_cache} from the cache ({st.trace_s:.1f} s); pricing "
              f"{st.price_s:.1f} s")
    for path, what in ((args.csv, "rows"), (args.lut if lut else None, "lookup table"),
                       (report, "report")):
        if path is not None:
            out.print(f"{what}: {path}")
    if result.partial:
        out.print("interrupted: the finished candidates were kept and written")
        return 130
    return 0


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in text) or "space"


def _write_csv(path: str, result: Any) -> None:
    import csv

    from ..analyses.search.search import row_fields
    from ..io import atomic_open

    rows = result.rows_out()
    fields = row_fields([hw.name for hw in result.hardware])
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows([r[f] for f in fields] for r in rows)


def _write_lut(path: str, lut: Any) -> None:
    import csv
    import json

    from ..analyses.search.lut import LUT_FIELDS
    from ..io import atomic_open, atomic_write_text

    if Path(path).suffix.lower() == ".json":
        atomic_write_text(path, json.dumps(lut.to_json(), indent=1, allow_nan=False) + "\n")
        return
    with atomic_open(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LUT_FIELDS))
        writer.writeheader()
        writer.writerows(lut.rows())


def _check(result: Any, n: int) -> dict[str, Any]:
    """Rebuild ``n`` priced candidates as modules, trace and price them whole, compare."""
    import numpy as np

    from ..analyses.search.pricing import trace_network
    from ..core.engine import price

    rng = np.random.default_rng(result.config.seed + 7)
    picks = np.sort(rng.choice(result.count, size=min(n, result.count), replace=False))
    graphs = [trace_network(result.genome, result.rows[i]) for i in picks]
    whole = price(graphs, result.hardware, result.config.precision).latency_s
    composed = result.prices.latency_s[:, picks]
    both = np.isfinite(whole) & np.isfinite(composed)
    rel = np.abs(composed[both] / whole[both] - 1)
    same_support = bool((np.isfinite(whole) == np.isfinite(composed)).all())
    macs_equal = all(g.macs == result.prices.macs[i] for g, i in zip(graphs, picks, strict=True))
    params_equal = all(g.params == result.prices.params[i]
                       for g, i in zip(graphs, picks, strict=True))
    return {"candidates": len(picks), "max_rel_diff": float(rel.max()) if rel.size else 0.0,
            "same_support": same_support, "macs_equal": macs_equal,
            "params_equal": params_equal}


def _device_label(name: str, width: int = 9) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def _print(result: Any, names: list[str], lut: Any, check: dict[str, Any] | None) -> None:
    import numpy as np

    out = console()
    space = result.genome.space
    out.print(f"{space.name}: {result.count:,} of {result.genome.count_hint()} candidates, "
              f"{result.config.strategy} search (seed {result.config.seed})")
    p = result.prices
    # The engine's latency ranges, shown once it gives them (low < high somewhere).
    with np.errstate(invalid="ignore"):
        ranged = bool(np.nan_to_num(p.latency_high_s - p.latency_low_s).any())
    for h, hw in enumerate(result.hardware):
        by_macs = result.frontier(h, "macs")
        by_params = result.frontier(h, "params")
        order = np.flatnonzero(by_macs)
        order = order[np.argsort(p.latency_s[h, order])]
        if len(order) > SHOWN:  # evenly spaced along the frontier, both ends kept
            order = order[np.unique(np.linspace(0, len(order) - 1, SHOWN).round().astype(int))]
        rows = [(f"#{i}", fmt_ms(p.latency_s[h, i] * 1e3),
                 *((_range(p, h, i),) if ranged else ()),
                 fmt_count(p.macs[i]), fmt_count(p.params[i]), "★" if by_params[i] else "")
                for i in order]
        unsupported = int(np.isnan(p.latency_s[h]).sum())
        out.print(f"{hw.name} ({p.precisions[h]}): latency-MACs frontier, "
                  f"{int(by_macs.sum())} candidates"
                  + (f"; {unsupported:,} cannot run" if unsupported else ""))
        out.print(make_table([("#", "right"), ("latency ms", "right"),
                              *((("range ms", "right"),) if ranged else ()),
                              ("MACs", "right"), ("params", "right"), ("★", "left")], rows))
    out.print("Frontier: no other candidate is faster with at least as many MACs. ★: also on "
              "the latency-params frontier. #: row in the CSV/JSON (0-based).")
    targets = result.config.targets
    if targets:
        text = ", ".join(f"{names[h]} <= {s * 1e3:g} ms" for h, s in targets)
        meets = np.flatnonzero(result.meets)
        out.print(f"universally fast ({text}, running on all {len(result.hardware)} "
                  f"devices): {len(meets):,} of {result.count:,}")
        if len(meets):
            gain = p.macs if result.config.objective == "macs" else p.params
            top = meets[np.argsort(-gain[meets], kind="stable")][:SHOWN]
            columns = [("#", "right"), ("MACs", "right"), ("params", "right")] + [
                (_device_label(n), "right") for n in names]
            out.print(make_table(columns, [
                (f"#{i}", fmt_count(p.macs[i]), fmt_count(p.params[i]),
                 *(fmt_ms(p.latency_s[h, i] * 1e3) for h in range(len(names))))
                for i in top], title=f"the largest by {result.config.objective} (latency ms)"))
            for i in top:
                _print_encoding(out, f"#{i}", result.encodings[i])
    if lut is not None and lut.error_pct:
        out.print(make_table(
            [("device", "left"), ("candidates", "right"), ("median %", "right"),
             ("p95 %", "right"), ("max %", "right")],
            [(n, f"{e['candidates']:,}", f"{e['median_abs_pct']:.2f}",
              f"{e['p95_abs_pct']:.2f}", f"{e['max_abs_pct']:.2f}")
             for n, e in lut.error_pct.items()],
            title="lookup table: |its sum / whole-model latency - 1|, held-out candidates"))
    if check is not None:
        ok = check["same_support"] and check["macs_equal"] and check["params_equal"]
        out.print(f"check: {check['candidates']} candidates built as modules and traced: "
                  f"max relative latency difference {check['max_rel_diff']:.1e}; MACs, "
                  f"params and support {'equal' if ok else 'DIFFER'}")


def _range(p: Any, h: int, i: int) -> str:
    low, high = p.latency_low_s[h, i] * 1e3, p.latency_high_s[h, i] * 1e3
    if not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"{fmt_ms(low)}–{fmt_ms(high)}"


def _print_encoding(out: Any, label: str, text: str, width: int = 78) -> None:
    """``label text`` folded at '/' so that no line passes ``width`` columns."""
    lines, current = [], f"{label} "
    indent = " " * (len(label) + 1)
    for i, part in enumerate(text.split("/")):
        piece = part if i == 0 else "/" + part
        if len(current) + len(piece) > width and current.strip() != label:
            lines.append(current)
            current = indent + piece
        else:
            current += piece
    lines.append(current)
    for line in lines:
        out.print(line, overflow="fold")
