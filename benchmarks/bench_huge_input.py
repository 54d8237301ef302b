"""Tracing a huge input costs no activation memory and about the time of a small one.

Traces mobilenet_v2 (built on the meta device, graph cache off) at 224 px batch 1 and at
4096 px batch 64, each in a fresh process, several times, and prints the median wall time and
peak resident memory of each, and their ratio. A real fp32 forward pass at 4096 px batch 64
would need tens of GB for activations alone.

    python benchmarks/bench_huge_input.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, time
from roofline.sources.variant import Variant
from roofline.core.fuse import fuse
v = Variant("mobilenet_v2", 1.0, {res}, {batch})
model = v.build(meta=True)
from roofline.sources.pytorch.tracer import trace
start = time.perf_counter()
graph = fuse(trace(model, v.input_shape))
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_rss_mb": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "macs": graph.macs,
    "activation_gb_fp32": graph.activation_bytes / 1e9}}))
"""


def measure(res: int, batch: int) -> dict:
    env = {**os.environ, "ROOFLINE_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(res=res, batch=batch)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"224 px, batch 1": [], "4096 px, batch 64": []}
    for _ in range(args.runs):  # interleaved, so machine drift hits both alike
        results["224 px, batch 1"].append(measure(224, 1))
        results["4096 px, batch 64"].append(measure(4096, 64))
    print("| input | trace + fuse (median, min-max) | peak RSS of the process | MACs | "
          "activation traffic (fp32) |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, runs in results.items():
        secs = [r["seconds"] for r in runs]
        medians[name] = statistics.median(secs)
        print(f"| {name} | {1e3 * medians[name]:.1f} ms ({1e3 * min(secs):.1f}-"
              f"{1e3 * max(secs):.1f}) | {statistics.median(r['peak_rss_mb'] for r in runs):.0f}"
              f" MB | {runs[0]['macs'] / 1e9:.1f} G | {runs[0]['activation_gb_fp32']:.1f} GB |")
    ratio = medians["4096 px, batch 64"] / medians["224 px, batch 1"]
    print(f"\ntime ratio 4096x64 / 224x1: {ratio:.2f} ({args.runs} runs each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
