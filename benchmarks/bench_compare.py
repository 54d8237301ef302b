"""Wall-clock time of ``python -m roofline compare`` as a whole process, cold and warm cache.

Runs ``python -m roofline compare --hw cpu,dsp,gpu,edgetpu`` over the default model set (every
zoo model at every published width and resolution with a top-1) in a fresh process each time,
start-up, tracing, pricing, the HTML report and the tables included. Cold: an empty graph
cache (every variant traced); warm: the cache the previous run filled (the engine and the
report only). Prints median, min and max of each, and the ratio of the medians.

    python benchmarks/bench_compare.py [--runs 5] [--hw cpu,dsp,gpu,edgetpu] [--models all]

Plain Python (subprocess + time.perf_counter); writes only into a temporary folder.
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

#: The target of the issue: the whole command within 10 s on a 2-core machine.
TARGET_S = 10.0


def run_once(argv: list[str], cache: Path, workdir: Path) -> float:
    env = {**os.environ, "ROOFLINE_CACHE_DIR": str(cache), "COLUMNS": "200"}
    env.pop("ROOFLINE_NO_CACHE", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "roofline", *argv], cwd=workdir, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"roofline {' '.join(argv)} failed ({done.returncode}): "
                         f"{done.stderr.strip()}")
    return elapsed


def summary(name: str, times: list[float]) -> str:
    verdict = "within" if statistics.median(times) <= TARGET_S else "OVER"
    return (f"{name:<6} median {statistics.median(times):6.2f} s   min {min(times):6.2f} s   "
            f"max {max(times):6.2f} s   ({len(times)} runs; {verdict} the {TARGET_S:g} s target)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (default 5)")
    parser.add_argument("--hw", default="cpu,dsp,gpu,edgetpu")
    parser.add_argument("--models", default="all")
    args = parser.parse_args()
    argv = ["compare", "--hw", args.hw, "--models", args.models]
    cold: list[float] = []
    warm: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        root = Path(tmp)
        for i in range(args.runs):
            # Interleave cold and warm runs so that drift in the machine's speed hits both.
            cache = root / f"cache-{i}"
            cold.append(run_once(argv, cache, root))
            warm.append(run_once(argv, cache, root))
            print(f"run {i + 1}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s", flush=True)
        report = next((root / "reports").glob("*.html"))
        size_mb = report.stat().st_size / 1e6
    print(f"python -m roofline {' '.join(argv)}   ({os.cpu_count()} cores, report "
          f"{size_mb:.1f} MB)")
    print(summary("cold", cold))
    print(summary("warm", warm))
    print(f"cold / warm (medians): {statistics.median(cold) / statistics.median(warm):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
