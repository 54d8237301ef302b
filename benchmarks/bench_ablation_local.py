"""What each part of the local calibration is worth: one calibration, refitted without it.

Runs ``calibrate --local`` (``--runtime onnxruntime``: the ONNX Runtime calibration) once at one
thread, keeping what it fitted to, and measures the 37 models of ``bench_accuracy_local.py``
once. Then it refits the same measurements with each part taken out and predicts the same
model measurements, so the machine's drift between runs cancels: what is left is the part's
own effect. Prints MAPE, Spearman and how many models fall within +-10 % per variant.

    python benchmarks/bench_ablation_local.py [--runtime torch|onnxruntime] [--budget 60]

Variants (each alone, against "all"):
* ``no dense conv layers``: without the four large dense convolutions (64 ch @56 to 512 @7, the
  7x7 stem) among the single layers;
* ``matmul peak``: the peak set by the 1024^3 matrix multiply alone, not the fastest of it and
  the convolutions (eager only);
* ``no transcendental cost``: ``overhead.per_transcendental_s`` not fitted, its SiLU, sigmoid
  and tanh layers left out;
* ``no copy layers``: without the concatenation and channel-shuffle layers, data movement's
  fixed cost tied to pooling's and no memory efficiency of its own;
* ``no squeeze-excite nets``: the eight inverted-residual nets alone (eager only);
* ``no int8 element cost``: ``overhead.per_int8_element_s`` not fitted (ONNX Runtime only);
* ``caches at half``: each cache level's copy bandwidth measured at half its capacity (timed
  after the calibration) instead of a quarter (``local_torch.CACHE_WORKING_SET``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_accuracy_local import OTHERS, VARIANTS  # noqa: E402

import roofline.fitting.local_ort as local_ort  # noqa: E402
import roofline.fitting.local_torch as local_torch  # noqa: E402
from roofline.core.engine import predict  # noqa: E402
from roofline.fitting.calibrate import spearman  # noqa: E402
from roofline.sources.variant import Variant, parse_variant  # noqa: E402
from roofline.zoo import list_models  # noqa: E402

DENSE = ("conv3x3 64->64 @56", "conv3x3 256->256 @14", "conv3x3 512->512 @7", "conv7x7")
TRANSCENDENTAL = ("silu", "sigmoid", "tanh")
COPIES = ("concat", "channel shuffle")
COPY_FREE = ("overhead.per_kind_s.pooling", "overhead.per_kind_s.data_movement",
             "memory_efficiency.data_movement")


def _capture(runtime: str, budget: float) -> dict[str, Any]:
    """Calibrate once, keeping the stages' inputs (and the in-model kernel times)."""
    kept: dict[str, Any] = {}
    stages, in_models = local_torch.fit_in_stages, local_torch.fit_in_models

    def keep_stages(*args: Any, **kwargs: Any) -> Any:
        kept["stages"] = (args, {k: v for k, v in kwargs.items() if k != "in_models"})
        return stages(*args, **kwargs)

    def keep_in_models(profile: Any, graphs: Any, profiled: Any, source: str) -> Any:
        kept["in_models"] = (list(graphs), list(profiled), source)
        return in_models(profile, graphs, profiled, source)

    local_torch.fit_in_stages = local_ort.fit_in_stages = keep_stages  # type: ignore
    local_ort.fit_in_models = keep_in_models  # type: ignore
    try:
        if runtime == "onnxruntime":
            local_ort.calibrate_local_ort(1, budget)
        else:
            local_torch.calibrate_local(1, budget)
    finally:
        local_torch.fit_in_stages = local_ort.fit_in_stages = stages  # type: ignore
        local_ort.fit_in_models = in_models  # type: ignore
    return kept


def _refit(kept: dict[str, Any], *, drop: tuple[str, ...] = (), free: list[str] | None = None,
           peak: float | None = None, nets: bool = True,
           bandwidths: dict[str, float] | None = None) -> Any:
    args, kwargs = kept["stages"]
    base, default_free, (rows, graphs), (net_rows, net_graphs), pools = args
    if bandwidths is not None:
        base = base.with_changes(memory=[
            {**level.model_dump(), "bandwidth_bytes_per_s": bandwidths[level.name]}
            for level in base.memory])
    keep = [i for i, r in enumerate(rows) if not r.model.startswith(drop)]
    layers = ([rows[i] for i in keep], [graphs[i] for i in keep])
    if not nets:
        chosen = [i for i, r in enumerate(net_rows) if "squeeze-excite" not in r.model]
        net_rows, net_graphs = [net_rows[i] for i in chosen], [net_graphs[i] for i in chosen]
    if peak is not None:
        base = base.with_changes(peak_macs_per_s={**base.peak_macs_per_s, "fp32": peak})
    kwargs = dict(kwargs)
    if "in_models" in kept:
        g, profiled, source = kept["in_models"]
        kwargs["in_models"] = lambda p: local_ort._without_counts(
            local_torch.fit_in_models(p, g, profiled, source))
    profile, _, _ = local_torch.fit_in_stages(base, free or list(default_free), layers,
                                              (net_rows, net_graphs), pools, **kwargs)
    return profile


def _score(profile: Any, models: dict[str, dict[str, tuple[float, Any]]]) -> str:
    out = []
    for precision, rows in models.items():
        predicted = [predict(graph, profile).latency_ms for ms, graph in rows.values()]
        measured = [ms for ms, _ in rows.values()]
        error = np.abs(np.array(predicted) / np.array(measured) - 1) * 100
        out.append(f"{precision}: MAPE {error.mean():.1f} %, Spearman "
                   f"{spearman(predicted, measured):.3f}, {int((error <= 10).sum())} of "
                   f"{len(error)} within +-10 %")
    return "; ".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch")
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    ort = args.runtime == "onnxruntime"
    kept = _capture(args.runtime, args.budget)
    variants = ([Variant(name, 1.0, 224) for name in list_models()]
                + [parse_variant(spec) for spec in VARIANTS]
                + [parse_variant(f"{ROOT / 'benchmarks' / 'models.py'}:{name}")
                   for name in OTHERS])
    models: dict[str, dict[str, tuple[float, Any]]] = {}
    if ort:
        for precision in ("fp32", "int8"):
            timings, graphs = local_ort.measure_models(variants, precision, thread_count=1,
                                                       budget_s=args.budget)
            models[precision] = {v.label: (timings[v.label].median_ms, graphs[v.label])
                                 for v in variants}
    else:
        from roofline.fitting.measure import measure_variants

        timings = measure_variants(variants, thread_count=1, budget_s=args.budget)
        models["fp32"] = {v.label: (timings[v.label].median_ms, v.trace()) for v in variants}
    free = list(kept["stages"][0][1])
    copies_tied = [f for f in free if f not in COPY_FREE]
    copies_tied.insert(copies_tied.index("overhead.per_kind_s.elementwise") + 1,
                       "overhead.per_kind_s.pooling+data_movement")
    runs: dict[str, dict[str, Any]] = {
        "all": {},
        "no dense conv layers": {"drop": DENSE},
        "no transcendental cost": {"drop": TRANSCENDENTAL, "free": [
            f for f in free if not f.startswith("overhead.per_transcendental_s")]},
        "no copy layers": {"drop": COPIES, "free": copies_tied},
    }
    if ort:
        runs["no int8 element cost"] = {"free": [
            f for f in free if not f.startswith("overhead.per_int8_element_s")]}
    else:
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        with local_torch.threads(1):
            matmul = local_torch.time_interleaved({"matmul": lambda: a @ b},
                                                  budget_s=2.0, min_samples=5)["matmul"]
        runs["matmul peak"] = {"peak": n ** 3 / (matmul.min_ms / 1e3)}
        runs["no squeeze-excite nets"] = {"nets": False}
    with local_torch.threads(1):
        runs["caches at half"] = {"bandwidths": {
            level.name: local_torch._copy_bandwidth(torch, int(level.capacity_bytes) // 2, 1.0)
            for level in kept["stages"][0][0].memory}}
    for level in kept["stages"][0][0].memory:
        print(f"{level.name} ({int(level.capacity_bytes) >> 10} KiB) copy bandwidth: "
              f"{level.bandwidth_bytes_per_s / 1e9:.1f} GB/s at a quarter of it, "
              f"{runs['caches at half']['bandwidths'][level.name] / 1e9:.1f} at half")
    print(f"{args.runtime}, 1 thread, {len(variants)} models measured once; each variant "
          f"refits the same calibration measurements")
    for name, change in runs.items():
        print(f"{name:24s} {_score(_refit(kept, **change), models)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
