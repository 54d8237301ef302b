"""Search throughput: ``roofline search mobilenet_v4 --hw cpu,dsp,gpu,edgetpu --samples
100000 --csv F`` as a whole process, with an empty block cache (cold) and again (warm); the
share of the run spent tracing blocks and pricing; and, on a sample of the priced candidates,
the frontiers and target sets against building each candidate as one nn.Module, tracing it and
pricing it whole. Repeats ``--runs`` times; prints medians and ranges.

    python benchmarks/bench_search.py [--runs 3] [--samples 100000] [--check 200]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEVICES = "cpu,dsp,gpu,edgetpu"
TARGETS = "cpu=8,gpu=3,edgetpu=1"


def whole_process(samples: int, cache: str, csv_path: str) -> tuple[float, str]:
    env = {**os.environ, "ROOFLINE_CACHE_DIR": cache, "COLUMNS": "80"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "roofline", "search", "mobilenet_v4", "--hw",
                           DEVICES, "--samples", str(samples), "--latency-ms", TARGETS,
                           "--csv", csv_path, "--no-report"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def check_against_modules(csv_path: str, n: int) -> dict[str, object]:
    """Rebuild ``n`` rows of the CSV as modules; compare latency, frontiers and targets."""
    import numpy as np

    from roofline.analyses.search.blocks import UnitBank
    from roofline.analyses.search.candidates import Genome
    from roofline.analyses.search.pricing import trace_network
    from roofline.analyses.search.search import frontier_mask
    from roofline.analyses.search.space import load_space
    from roofline.analyses.sweep import views_of
    from roofline.cli.search_cmd import parse_targets
    from roofline.core.engine import price
    from roofline.core.hardware import load_hardware

    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    hardware = [load_hardware(h) for h in DEVICES.split(",")]
    genome = Genome(load_space("mobilenet_v4"), UnitBank(views_of(hardware)))
    rng = np.random.default_rng(0)
    picks = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    sample = [rows[i] for i in picks]
    encoded = genome.decode([r["candidate"] for r in sample])
    graphs = [trace_network(genome, row) for row in encoded]
    whole = price(graphs, hardware).latency_s
    composed = np.array([[float(r[f"{hw.name}.latency_ms"]) / 1e3
                          if r[f"{hw.name}.latency_ms"] else np.nan for r in sample]
                         for hw in hardware])
    both = np.isfinite(whole) & np.isfinite(composed)
    rel = float(np.max(np.abs(composed[both] / whole[both] - 1)))
    same_frontiers = True
    for h in range(len(hardware)):
        for gain_whole, gain_rows in (([g.macs for g in graphs], [int(r["macs"]) for r in sample]),
                                      ([g.params for g in graphs],
                                       [int(r["params"]) for r in sample])):
            same_frontiers &= bool((frontier_mask(whole[h], np.array(gain_whole, float)) ==
                                    frontier_mask(composed[h], np.array(gain_rows, float))).all())
    targets = parse_targets([TARGETS], DEVICES.split(","), hardware)
    meets_whole = np.isfinite(whole).all(axis=0)
    for h, seconds in targets:
        meets_whole &= whole[h] <= seconds
    same_targets = meets_whole.tolist() == [r["meets_targets"] == "True" for r in sample]
    return {"candidates": len(sample), "max_rel_latency_diff": rel,
            "same_frontiers": same_frontiers, "same_target_set": same_targets,
            "same_nan": bool((np.isfinite(whole) == np.isfinite(composed)).all())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=200)
    args = parser.parse_args()
    cold, warm, split = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        csv_path = str(Path(folder) / "rows.csv")
        for run in range(args.runs):
            cache = str(Path(folder) / f"cache-{run}")
            seconds, out = whole_process(args.samples, cache, csv_path)
            cold.append(seconds)
            seconds, out = whole_process(args.samples, cache, csv_path)
            warm.append(seconds)
            found = re.search(r"\(([\d.]+) s\); pricing ([\d.]+) s", out.replace("\n", " "))
            if found:
                split.append((float(found.group(1)), float(found.group(2))))
            print(f"run {run + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", flush=True)
        check = check_against_modules(csv_path, args.check)
    print(f"{args.samples:,} candidates x 4 devices, whole process "
          f"(median of {args.runs}, range):")
    print(f"  empty block cache: {statistics.median(cold):.1f} s "
          f"({min(cold):.1f}-{max(cold):.1f})")
    print(f"  warm block cache:  {statistics.median(warm):.1f} s "
          f"({min(warm):.1f}-{max(warm):.1f})")
    if split:
        print(f"  warm run: reading blocks {statistics.median(s[0] for s in split):.1f} s, "
              f"pricing {statistics.median(s[1] for s in split):.1f} s; "
              f"{args.samples * 4 / statistics.median(warm):,.0f} candidate x device "
              f"predictions per second")
    print(f"  against {check['candidates']} candidates built as nn.Modules: max relative "
          f"latency difference {check['max_rel_latency_diff']:.1e}; same frontiers "
          f"{check['same_frontiers']}, same target set {check['same_target_set']}, same "
          f"unsupported {check['same_nan']}")


if __name__ == "__main__":
    main()
