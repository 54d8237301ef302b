"""Sweep throughput: variants traced per second, and predictions per second from the cache.

With an empty temporary cache, traces a mobilenet_v2 width x resolution grid with
``--workers`` processes (model built on the meta device, traced, fused into each kernel view,
written to the cache: everything a first sweep pays), then, from the cache, prices the grid on
the four generic devices: reading the grid's one cache file, and the engine alone (its
point and range evaluations per device). Then, as whole processes with an empty cache each,
``python -m roofline sweep mobilenet_v2 --width 0.25:1.5:0.05 --resolution 96:320:32 --hw
cpu,edgetpu`` (208 variants) against the same command for one variant, in turn: the
variants traced per second net of start-up, (208 - 1) / (grid time - one-variant time).
Repeats ``--runs`` times; prints medians and ranges.

    python benchmarks/bench_sweep.py [--runs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roofline.analyses.sweep import (  # noqa: E402
    KernelGrid,
    evaluate_grid,
    parse_grid,
    sweep_variants,
    trace_all,
    views_of,
)
from roofline.core.hardware import load_hardware  # noqa: E402

WIDTHS = "0.25:1.5:0.025"  # 51 widths
RESOLUTIONS = "96:320:16"  # 15 resolutions: 765 variants
DEVICES = ("cpu", "dsp", "gpu", "edgetpu")


def one_run(workers: int) -> dict[str, float]:
    variants = sweep_variants("mobilenet_v2", parse_grid(WIDTHS, "width"),
                              parse_grid(RESOLUTIONS, "resolution", integer=True))
    hardware = [load_hardware(name) for name in DEVICES]
    views = views_of(hardware)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ROOFLINE_CACHE_DIR"] = folder
        start = time.perf_counter()
        arrays, stats = trace_all(variants, views, workers=workers)
        trace_s = time.perf_counter() - start
        assert stats.traced == len(variants)
        evaluate_grid(variants, arrays, hardware)  # prices, and stores the grid as one file
        start = time.perf_counter()
        grid, stats = trace_all(variants, views, workers=workers)
        load_s = time.perf_counter() - start
        assert stats.cached == len(variants) and isinstance(grid, KernelGrid)
        start = time.perf_counter()
        result = evaluate_grid(variants, grid, hardware)
        engine_s = time.perf_counter() - start
    predictions = result.latency_s.size
    return {"variants": len(variants), "predictions": predictions,
            "traced_per_s": len(variants) / trace_s,
            "predictions_per_s_engine": predictions / engine_s,
            "predictions_per_s_with_load": predictions / (engine_s + load_s)}


SWEEP = ["sweep", "mobilenet_v2", "--width", "0.25:1.5:0.05", "--resolution", "96:320:32",
         "--hw", "cpu,edgetpu", "--no-report"]
ONE = ["sweep", "mobilenet_v2", "--width", "0.25", "--resolution", "96", "--hw", "cpu,edgetpu",
       "--no-report"]


def whole_process(argv: list[str], workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "ROOFLINE_CACHE_DIR": folder}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "roofline", *argv, "--workers", str(workers)],
                       env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def net_rate(workers: int) -> float:
    grid = whole_process(SWEEP, workers)
    one = whole_process(ONE, workers)
    return (208 - 1) / (grid - one)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run(args.workers) for _ in range(args.runs)]
    for r in runs:
        r["net_per_s"] = net_rate(args.workers)
    first = runs[0]
    print(f"mobilenet_v2, widths {WIDTHS} x resolutions {RESOLUTIONS} = {first['variants']} "
          f"variants; {len(DEVICES)} devices = {first['predictions']} predictions; "
          f"{os.cpu_count()} cores, {args.workers} workers, {args.runs} runs\n")
    print("| figure | median | min | max |")
    print("|---|---|---|---|")
    for key, label in (("traced_per_s", "variants traced per second (cold cache)"),
                       ("predictions_per_s_engine",
                        "variant x device predictions per second, engine on cached arrays"),
                       ("predictions_per_s_with_load",
                        "the same, reading the grid's cache file included"),
                       ("net_per_s", "`roofline sweep` of 208 variants, whole process, empty "
                                     "cache: variants per second net of start-up")):
        values = [r[key] for r in runs]
        print(f"| {label} | {statistics.median(values):,.0f} | {min(values):,.0f} | "
              f"{max(values):,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
