"""Accuracy of the shipped device profiles against the measured latencies they are fitted to.

For every device of hardware_profiles/measurements/measured_latency.csv with a prior in
hardware_profiles/priors/, fit the prior's free parameters (as ``roofline calibrate`` does) and
report in-sample and leave-one-out (each model predicted by a profile fitted without it) median
absolute error and Spearman rank correlation, next to two baselines computed on the same rows:
ranking by MACs alone, and the MobileNetV4 paper's plain roofline at its fitted ridge point
(where the paper gives one).

    python benchmarks/bench_fit.py            # markdown table on stdout
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roofline.analyses.ridge import PAPER_RIDGE_POINTS, ridge_costs  # noqa: E402
from roofline.core.hardware import load_hardware  # noqa: E402
from roofline.fitting.calibrate import fit_profile, load_measurements, spearman, trace_measurements  # noqa: E402

MEASUREMENTS = ROOT / "hardware_profiles" / "measurements" / "measured_latency.csv"
PRIORS = ROOT / "hardware_profiles" / "priors"
MEASURED_AS = {"coral-edgetpu": "coral-edgetpu-usb3"}


def main() -> int:
    rows = []
    for prior_path in sorted(PRIORS.glob("*.toml")):
        prior = load_hardware(prior_path)
        device = MEASURED_AS.get(prior.name, prior.name)
        measurements = load_measurements(MEASUREMENTS, device=device)
        graphs = trace_measurements(measurements)
        started = time.perf_counter()
        loo = len(measurements) >= 3
        result = fit_profile(prior, measurements, graphs=graphs, leave_one_out=loo)
        seconds = time.perf_counter() - started
        measured = [m.latency_ms for m in measurements]
        by_macs = spearman(measured, [g.macs for g in graphs])
        ridge = PAPER_RIDGE_POINTS.get(prior.name)
        paper = (spearman(measured, [float(ridge_costs(g.at_precision(m.precision or "int8"),
                                                      [ridge])[0])
                                     for g, m in zip(graphs, measurements, strict=True)])
                 if ridge is not None else None)
        models = len({(m.model, m.width, m.resolution) for m in measurements})
        rows.append((prior.name, len(measurements), models, len(result.free),
                     result.median_abs_error_pct, result.spearman,
                     result.loo_median_abs_error_pct if loo else None,
                     result.loo_spearman if loo else None, by_macs, paper, seconds))

    print("| device | rows | models | free | fit median abs err | fit Spearman | "
          "LOO median abs err | LOO Spearman | Spearman by MACs | paper roofline Spearman |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, n, models, free, mae, rho, loo_mae, loo_rho, macs_rho, paper, _) in rows:
        def pct(v):
            return "-" if v is None else f"{v:.1f} %"

        def r(v):
            return "-" if v is None or v != v else f"{v:.3f}"

        print(f"| {name} | {n} | {models} | {free} | {pct(mae)} | {r(rho)} | {pct(loo_mae)} | "
              f"{r(loo_rho)} | {r(macs_rho)} | {r(paper)} |")
    print(f"\nfits took {sum(row[-1] for row in rows):.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
