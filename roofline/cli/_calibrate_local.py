"""``roofline calibrate --local``: profile this machine (see ``roofline.fitting.local_torch``,
and ``roofline.fitting.local_ort`` for ``--runtime onnxruntime``)."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from ._common import ProgressBar, console, fmt_count, make_table, positive_int, seconds_between


def add_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("profiling this machine (--local)")
    group.add_argument("--local", action="store_true",
                       help="measure this machine with torch micro-benchmarks and write its "
                            "profile to --out")
    group.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                       help="what to measure: eager PyTorch in fp32 (default), or ONNX Runtime's "
                            "CPU provider in fp32 and int8 (QDQ), fused as it fuses")
    group.add_argument("--threads", type=positive_int, default=1, metavar="N",
                       help="intra-op threads to measure with (default 1)")
    group.add_argument("--budget", type=seconds_between(2, 3600), default=60.0, metavar="SECONDS",
                       help="about how long to measure (default 60)")
    group.add_argument("--allow-noisy", action="store_true",
                       help="write the profile even when the timings stay too noisy after a "
                            "second pass (the spread is recorded in its [sources])")


def run(args: argparse.Namespace) -> int:
    from ..core.hardware import profile_to_toml
    from ..errors import UsageError
    from ..io import atomic_write_text, check_writable

    if not args.out:
        raise UsageError("calibrate --local needs --out FILE.toml")
    if args.measurements or args.hw:
        raise UsageError("--local measures this machine; it takes no --measurements or --hw")
    check_writable(args.out)
    ort = args.runtime == "onnxruntime"
    if ort:
        from ..fitting.local_ort import _require_ort
        from ..fitting.local_ort import calibrate_local_ort as calibrate

        _require_ort()  # a missing package is one clear line before anything is measured
    else:
        from ..fitting.local_torch import calibrate_local as calibrate
    name = args.name or ("local-ort" if ort else "local-cpu")
    command = "python -m roofline " + shlex.join(args.argv)
    with ProgressBar(1.0, "measuring") as bar:
        result = calibrate(args.threads, args.budget, name=name, command=command,
                           progress=lambda step, done: bar.update(done, step),
                           allow_noisy=args.allow_noisy)
    runs_as = ("ONNX Runtime's CPU provider runs it, in fp32 and int8" if ort
               else "eager PyTorch runs on it")
    header = (f"Written by `{command}`.\nA profile of this machine as {runs_as}; see [sources] "
              f"for what was measured.")
    atomic_write_text(args.out, profile_to_toml(result.profile, header))
    _print(result, args.out)
    return 0


def _print(result: Any, out: str) -> None:
    con = console()
    hw = result.profile
    peaks = result.peak_timing if isinstance(result.peak_timing, dict) else {
        "fp32": result.peak_timing}
    what = "fastest large GEMM or convolution"
    rows = [(f"peak {precision} ({what})", f"{fmt_count(hw.peak(precision))} MAC/s",
             f"{timing.spread_pct:.0f} %") for precision, timing in peaks.items()]
    for level in hw.memory:
        rows.append((f"{level.name} ({level.capacity_bytes / 1024:.0f} KiB)",
                     f"{fmt_count(level.bandwidth_bytes_per_s or 0)}B/s", ""))
    rows.append(("DRAM", f"{fmt_count(hw.dram.bandwidth_bytes_per_s)}B/s", ""))
    for kind, eff in hw.efficiency.items():
        rows.append((f"efficiency {kind}", f"{100 * eff:.0f} % of peak", ""))
    for kind, eff in hw.int8_efficiency.items():
        rows.append((f"int8 efficiency {kind}", f"{100 * eff:.0f} % of int8 peak", ""))
    for kind, eff in hw.memory_efficiency.items():
        rows.append((f"memory efficiency {kind}", f"{100 * eff:.0f} % of bandwidth", ""))
    if hw.overhead.per_inference_s:
        rows.append(("overhead per inference", f"{hw.overhead.per_inference_s * 1e6:.1f} us",
                     ""))
    rows.append(("overhead per kernel" if hw.fuses_kernels else "overhead per op",
                 f"{hw.overhead.per_kernel_s * 1e6:.1f} us", ""))
    for kind, value in hw.overhead.per_kind_s.items():
        rows.append((f"  + per {kind} op", f"{value * 1e6:.1f} us", ""))
    rows.append(("  + per weight byte", f"{hw.overhead.per_weight_byte_s * 1e12:.1f} ps", ""))
    if hw.overhead.per_pool_output_s:
        rows.append(("  + per pooled output", f"{hw.overhead.per_pool_output_s * 1e9:.1f} ns",
                     ""))
    for precision, value in hw.overhead.per_transcendental_s.items():
        rows.append((f"  + per exp/tanh/erf ({precision})", f"{value * 1e9:.2f} ns", ""))
    for kind, value in hw.overhead.per_int8_element_s.items():
        rows.append((f"  + per int8 {kind} output", f"{value * 1e9:.3f} ns", ""))
    con.print(make_table([("measured", "left"), ("value", "right"), ("spread", "right")], rows,
                         title=hw.description))
    layers = result.layers
    passes = f", {result.passes} passes" if result.passes > 1 else ""
    n = len(peaks)
    per = f" ({len(layers) // n} layers x {n} precisions)" if n > 1 else ""
    con.print(f"{len(layers)} single-layer timings{per}, fit median |error| "
              f"{result.layer_fit.median_abs_error_pct:.1f} %; {len(result.nets) // n} synthetic "
              f"nets, " + ("fit" if result.fit.free else "kernels fitted inside them, "
                                                       "wall clock predicted:")
              + f" median |error| {result.fit.median_abs_error_pct:.1f} %; median spread "
                f"p10-p90 of the timed benchmarks {result.spread_pct:.0f} %{passes}")
    for flag in hw.fit.flags if hw.fit else ():
        con.print(f"note: {flag}")
    con.print(f"wrote {out}")
