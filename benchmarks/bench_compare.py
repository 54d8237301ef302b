"""Wall-clock time of ``python -m roofline compare`` as a whole process, cold and warm cache,
against ``python -c "import torch"`` timed in the same loop.

Runs ``python -m roofline compare --hw cpu,dsp,gpu,edgetpu`` over the default model set (every
zoo model at every published width and resolution with a top-1) in a fresh process each time,
start-up, tracing, pricing, the HTML report and the tables included. Cold: an empty graph
cache (every variant traced); warm: the cache the previous run filled (the engine and the
report only). Each round runs torch's import, cold and warm in turn, so drift in the machine's
speed hits all three; prints median, min and max of each, and the ratios cold / import and
warm / import round by round (median and range): the figures that hold on another machine.

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

#: The targets, as ratios to ``import torch`` in the same round: a warm run no slower than the
#: import, a cold one no slower than 2.5 imports.
TARGETS = {"cold": 2.5, "warm": 1.0}


def run_once(argv: list[str], cache: Path, workdir: Path) -> float:
    env = {**os.environ, "ROOFLINE_CACHE_DIR": str(cache), "COLUMNS": "200"}
    env.pop("ROOFLINE_NO_CACHE", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=workdir, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def ratios(name: str, times: list[float], base: list[float]) -> str:
    r = [t / b for t, b in zip(times, base, strict=True)]
    verdict = "within" if statistics.median(r) <= TARGETS[name] else "OVER"
    return (f"{name} / import torch: median {statistics.median(r):.2f}x   min {min(r):.2f}x   "
            f"max {max(r):.2f}x   ({verdict} the {TARGETS[name]:g}x target)")


def summary(name: str, times: list[float]) -> str:
    return (f"{name:<6} median {statistics.median(times):6.2f} s   min {min(times):6.2f} s   "
            f"max {max(times):6.2f} s   ({len(times)} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (default 5)")
    parser.add_argument("--hw", default="cpu,dsp,gpu,edgetpu")
    parser.add_argument("--models", default="all")
    args = parser.parse_args()
    argv = ["-m", "roofline", "compare", "--hw", args.hw, "--models", args.models]
    torch_import = ["-c", "import torch"]
    cold: list[float] = []
    warm: list[float] = []
    base: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        root = Path(tmp)
        run_once(torch_import, root / "cache", root)  # the import's files into the page cache
        for i in range(args.runs):
            cache = root / f"cache-{i}"
            base.append(run_once(torch_import, cache, root))
            cold.append(run_once(argv, cache, root))
            warm.append(run_once(argv, cache, root))
            print(f"run {i + 1}: import torch {base[-1]:.2f} s, cold {cold[-1]:.2f} s, "
                  f"warm {warm[-1]:.2f} s", flush=True)
        report = next((root / "reports").glob("*.html"))
        size_mb = report.stat().st_size / 1e6
    print(f"python {' '.join(argv)}   ({os.cpu_count()} cores, report {size_mb:.1f} MB)")
    print(summary("cold", cold))
    print(summary("warm", warm))
    print(f"import torch: median {statistics.median(base):.2f} s")
    print(ratios("cold", cold, base))
    print(ratios("warm", warm, base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
