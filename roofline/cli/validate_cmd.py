"""``roofline validate --hw PROFILE``: predicted against measured latency on this machine.

Owns the command's options and output; measuring and comparing is ``roofline.fitting.validate``.
"""

from __future__ import annotations

import argparse
import math
import shlex
from typing import Any

from ._common import (
    console,
    fmt_ms,
    make_table,
    positive_int,
    print_json,
    seconds_between,
    split_list,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="predicted against measured latency on this machine",
        description="Measure each model's real latency on this machine, with eager torch "
                    "(inference mode) or ONNX Runtime (the exported model, fp32 or int8; "
                    "predicted from the file that ran), with warm-up, many interleaved "
                    "repetitions and fixed threads, "
                    "and compare it with the profile's prediction: per model predicted, "
                    "measured (median, p10-p90) and error; MAPE, Spearman and Kendall. Use a "
                    "profile of this machine (roofline calibrate --local).",
        epilog="Examples: roofline calibrate --local --out my-cpu.toml && roofline validate "
               "--hw my-cpu.toml;  roofline calibrate --local --runtime onnxruntime --out "
               "my-ort.toml && roofline validate --hw my-ort.toml --runtime onnxruntime "
               "--precision int8")
    p.add_argument("--hw", required=True, metavar="PROFILE", help="profile name or .toml path")
    p.add_argument("--models", type=lambda s: split_list(s, "model"), default=None,
                   metavar="NAME,...", help="zoo names, NAME@WIDTH:RES or file.py:callable "
                                            "(default: the zoo at 224)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="measure with eager PyTorch (default, fp32) or with ONNX Runtime's CPU "
                        "provider on the exported model (roofline calibrate --local --runtime "
                        "onnxruntime makes its profile)")
    p.add_argument("--precision", choices=("fp32", "int8"), default=None,
                   help="with --runtime onnxruntime: run the model in fp32 (default) or "
                        "quantised to int8 QDQ (static, on seeded random calibration inputs)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="intra-op threads (default: the profile's, else 1)")
    p.add_argument("--budget", type=seconds_between(1, 3600), default=30.0, metavar="SECONDS",
                   help="about how long to measure (default 30)")
    p.add_argument("--layers", metavar="MODEL", default=None,
                   help="compare one model op by op with torch.profiler (kernel by kernel with "
                        "ONNX Runtime's profiler for --runtime onnxruntime) instead")
    p.add_argument("--out", metavar="FILE.html", default=None,
                   help="also write a predicted-against-measured chart")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..core.hardware import load_hardware
    from ..errors import UsageError
    from ..io import check_writable
    from ..sources.variant import parse_variant

    if args.precision not in (None, "fp32") and args.runtime == "torch":
        raise UsageError(f"eager PyTorch is measured in fp32; --precision {args.precision} "
                         f"needs --runtime onnxruntime")
    if args.runtime == "onnxruntime":
        from ..fitting.local_ort import _require_ort

        _require_ort()
    hw = load_hardware(args.hw)
    measured_at = hw.threads
    thread_count = args.threads or measured_at or 1
    if measured_at is not None and thread_count != measured_at:
        print(f"roofline: warning: {hw.name} was measured with {measured_at} thread(s); "
              f"validating with {thread_count}", file=sys.stderr)
    if args.runtime == "onnxruntime" and not hw.fuses_kernels:
        # An eager profile prices every op on its own; ONNX Runtime fuses.
        print(f"roofline: warning: {hw.name} fuses nothing (an eager PyTorch profile); "
              f"validating on ONNX Runtime, which fuses: make its profile with calibrate "
              f"--local --runtime onnxruntime", file=sys.stderr)
    if args.out:
        check_writable(args.out)
    if args.layers:
        return _layers(parse_variant(args.layers), hw, thread_count, args)
    variants = [parse_variant(spec) for spec in args.models] if args.models else _zoo()
    from ..fitting.validate import validate

    if args.runtime == "onnxruntime":
        from ._common import ProgressBar

        with ProgressBar(1.0, "exporting") as bar:
            result = validate(variants, hw, thread_count=thread_count, budget_s=args.budget,
                              runtime="onnxruntime", precision=args.precision or "fp32",
                              progress=lambda step, done: bar.update(done, step))
    else:
        result = validate(variants, hw, thread_count=thread_count, budget_s=args.budget)
    if args.out:
        _write_page(result, args)
    if args.json:
        print_json({**result.summary(), "rows": [c.record() for c in result.checks]})
        return 0
    _print(result)
    return 0


_RUNTIME_NAMES = {"torch": "eager PyTorch", "onnxruntime": "ONNX Runtime"}


def _zoo() -> list[Any]:
    from ..sources.variant import Variant
    from ..zoo import list_models

    return [Variant(name, 1.0, 224) for name in list_models()]


#: A change in the machine's speed since calibration worth a warning (see
#: roofline.fitting.local_torch.REFERENCE: a 13 % change went with predictions 27 % off).
SLOWDOWN_WARN_PCT = 10.0


def _print(result: Any) -> None:
    con = console()
    rows = []
    for c in sorted(result.checks, key=lambda c: c.measured.median_ms):
        t = c.measured
        rows.append((c.variant.label, fmt_ms(c.predicted_ms), fmt_ms(t.median_ms),
                     f"{fmt_ms(t.p10_ms)}-{fmt_ms(t.p90_ms)}", len(t.samples_ms),
                     f"{c.error_pct:+.1f}"))
    con.print(make_table([("model", "left"), ("predicted ms", "right"), ("measured ms", "right"),
                          ("p10-p90", "right"), ("runs", "right"), ("error %", "right")], rows,
                         title=f"{result.hardware.name}, {result.thread_count} thread(s), "
                               f"{_RUNTIME_NAMES[result.runtime]} {result.precision}"))
    s = result.summary()

    def r(v: float | None) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    con.print(f"MAPE {s['mape_pct']:.1f} %  Spearman {r(s['spearman'])}  Kendall "
              f"{r(s['kendall'])}  ({s['models']} models; median measurement spread p10-p90 "
              f"{s['median_spread_pct']:.1f} %)")
    con.print(f"timing: {s['allocator']}", style="dim")
    slowdown = s["slowdown_pct"]
    if slowdown is not None:
        pace = f"{abs(slowdown):.0f} % {'slower' if slowdown > 0 else 'faster'}"
        line = (f"machine speed: the reference, {s['reference']}, took a median "
                f"{s['reference_now_ms']:.2f} ms now and {s['reference_calibrated_ms']:.2f} ms "
                f"when {result.hardware.name} was calibrated ({pace} now)")
        if abs(slowdown) > SLOWDOWN_WARN_PCT:
            con.print(f"warning: {line}: the predictions are off by about that much on top of "
                      f"the engine's own error; validate again when the machine is as it was")
        else:
            con.print(line, style="dim")


def _layers(variant: Any, hw: Any, thread_count: int, args: argparse.Namespace) -> int:
    from ..fitting.validate import compare_layers, compare_layers_onnx

    if args.runtime == "onnxruntime":
        precision = args.precision or "fp32"
        checks = compare_layers_onnx(variant, hw, precision=precision,
                                     thread_count=thread_count)
        how = f"ONNX Runtime {precision}, its profiler, median of 20 passes"
    else:
        checks = compare_layers(variant, hw, thread_count=thread_count)
        how = "torch.profiler, median of 10 passes"
    if args.json:
        print_json([{"name": c.name, "op": c.op, "kind": c.kind,
                     "predicted_ms": c.predicted_ms, "measured_ms": c.measured_ms}
                    for c in checks])
        return 0
    worst = sorted(checks, key=lambda c: -abs(c.error_ms or 0.0))
    rows = [(c.name, c.op, c.kind, fmt_ms(c.predicted_ms), fmt_ms(c.measured_ms),
             "-" if c.error_ms is None else f"{c.error_ms:+.3f}") for c in worst]
    con = console()
    con.print(make_table([("layer", "left"), ("op", "left"), ("kind", "left"),
                          ("predicted ms", "right"), ("measured ms", "right"),
                          ("difference ms", "right")], rows,
                         title=f"{variant.label} on {hw.name}, biggest differences first "
                               f"({how})"))
    total_p = sum(c.predicted_ms for c in checks)
    total_m = sum(c.measured_ms or 0.0 for c in checks)
    unmatched = sum(1 for c in checks if c.measured_ms is None)
    unpredicted = [c for c in checks if c.kind == "(not in the graph)"]
    con.print(f"sum over ops: predicted {fmt_ms(total_p)} ms, measured {fmt_ms(total_m)} ms"
              + (f"; {unmatched} ops not found in the profile" if unmatched else "")
              + (f"; {len(unpredicted)} kernels ONNX Runtime ran that the graph has no op for "
                 f"(layout conversions, split ops): "
                 f"{fmt_ms(sum(c.measured_ms or 0.0 for c in unpredicted))} ms"
                 if unpredicted else ""))
    if args.runtime == "onnxruntime":
        con.print("A profiled pass runs slower than an unprofiled one (the profiler times "
                  "every node): compare the kernels with each other, the total with validate.")
    return 0


def _write_page(result: Any, args: argparse.Namespace) -> None:
    from ..report.page import write_page
    from ..report.validate_page import validation_page

    write_page(args.out, validation_page(result, command="roofline " + shlex.join(args.argv)))
