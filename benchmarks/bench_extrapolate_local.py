"""From the classic MobileNets to MobileNetV4 on this machine: a datasheet prior fitted to V1-V3.

What a user does to add a CPU: write its datasheet prior, measure a few classic models, run
``roofline calibrate --measurements``, and predict the models they care about. This script does
exactly that on this machine in eager PyTorch: it measures five MobileNet V1-V3 models and the
five MobileNetV4 models (one interleaved pass, so the machine's drift is common to both), fits
the prior to the V1-V3 rows with ``python -m roofline calibrate`` (a subprocess, as a user runs
it) and predicts the V4 rows, which the fit never saw. Prints each held-out prediction with its
80 % range, and their median and mean absolute error, how many fell inside the range and the
median range width.

    python benchmarks/bench_extrapolate_local.py --hw benchmarks/priors/epyc-zen3-1t.toml \
        [--threads 1] [--budget 90] [--save m.csv | --measurements m.csv] \
        [--free "default;FIELD,FIELD,..."]

``--free`` compares fitting designs on the same measurements: ``;`` between designs, ``,``
between the fields of one, ``default`` for the prior's own free list (else the kind's
``DEFAULT_FREE``). ``--measurements`` reuses a CSV written by ``--save`` instead of measuring.
The prior must describe the cores the run uses (``--threads``): its peak is their datasheet
peak. Numbers from this script are measurements of one machine at one time; see
``benchmarks/README.md`` for the runs the README cites.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roofline.core.engine import predict  # noqa: E402
from roofline.core.hardware import load_hardware  # noqa: E402
from roofline.sources.variant import Variant, parse_variant  # noqa: E402

#: The fitted rows: the classic MobileNets a public CPU table lists.
CLASSIC = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v2@1.4", "mobilenet_v3_large",
           "mobilenet_v3_small")
#: The held-out rows: every MobileNetV4 at its own resolution.
HELD_OUT = ("mobilenet_v4_conv_small", "mobilenet_v4_conv_medium", "mobilenet_v4_conv_large",
            "mobilenet_v4_hybrid_medium", "mobilenet_v4_hybrid_large")
DEVICE = "this-machine"
COLUMNS = ("model", "width", "resolution", "latency_ms", "threads", "batch", "device", "source")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hw", required=True, help="the datasheet prior (.toml) of the cores")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of timing")
    parser.add_argument("--save", help="write the measurements to this CSV")
    parser.add_argument("--measurements", help="reuse a CSV written by --save")
    parser.add_argument("--free", default="default",
                        help="fitting designs: ';' between them, ',' between fields")
    args = parser.parse_args()
    specs = CLASSIC + HELD_OUT
    variants = [parse_variant(spec) for spec in specs]
    if args.measurements:
        with open(args.measurements, newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = _measure(variants, args.threads, args.budget)
        if args.save:
            _write(Path(args.save), rows)
    measured = {(r["model"], float(r["width"]), r["resolution"]): float(r["latency_ms"])
                for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        fit_csv = Path(tmp) / "classic.csv"
        _write(fit_csv, [r for r in rows if not r["model"].startswith("mobilenet_v4")])
        for design in args.free.split(";"):
            _run(design.strip(), args.hw, fit_csv, Path(tmp), variants[len(CLASSIC):],
                 measured)
    return 0


def _measure(variants: list[Variant], threads: int, budget_s: float) -> list[dict[str, str]]:
    from roofline.fitting.measure import measure_variants

    timings = measure_variants(variants, thread_count=threads, budget_s=budget_s)
    rows = []
    for v in variants:
        t = timings[v.label]
        print(f"{v.label:32s} median {t.median_ms:8.2f} ms  p10-p90 {t.p10_ms:.2f}-"
              f"{t.p90_ms:.2f}")
        rows.append(_row(v, t.median_ms, threads))
    print()
    return rows


def _resolution(v: Variant) -> str:
    """A variant's resolution as the CSV holds it: empty for the model's own."""
    return "" if v.resolution is None else str(v.resolution)


def _row(v: Variant, latency_ms: float, threads: int) -> dict[str, str]:
    return {"model": v.name, "width": f"{v.effective_width:g}", "resolution": _resolution(v),
            "latency_ms": f"{latency_ms:.3f}", "threads": str(threads), "batch": "1",
            "device": DEVICE, "source": "benchmarks/bench_extrapolate_local.py, eager PyTorch"}


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _run(design: str, prior: str, fit_csv: Path, tmp: Path, held_out: list[Variant],
         measured: dict[tuple[str, float, str], float]) -> None:
    out = tmp / "fitted.toml"
    command = [sys.executable, "-m", "roofline", "calibrate", "--measurements", str(fit_csv),
               "--hw", prior, "--select", f"device={DEVICE}", "--out", str(out)]
    if design != "default":
        command += ["--free", design]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    print(f"## design: {design}\n")
    if done.returncode != 0:
        print(f"calibrate failed: {done.stderr.strip()}\n")
        return
    print("\n".join(line for line in done.stdout.splitlines() if not line.startswith("─")))
    hw = load_hardware(out)
    errors, inside, widths = [], 0, []
    print(f"\n{'held out':28s} {'measured':>9s} {'predicted':>9s} {'80 % range':>17s} "
          f"{'error':>7s}")
    for v in held_out:
        p = predict(v.trace(), hw)
        m = measured[(v.name, v.effective_width, _resolution(v))]
        low, high = p.latency_range_ms
        error = 100 * (p.latency_ms / m - 1)
        errors.append(abs(error))
        inside += low <= m <= high
        widths.append(100 * (high - low) / p.latency_ms)
        print(f"{v.label:28s} {m:9.2f} {p.latency_ms:9.2f} {low:8.2f}-{high:8.2f} "
              f"{error:+6.1f} %{'' if low <= m <= high else '  outside'}")
    print(f"\nV4 held out: median |error| {statistics.median(errors):.1f} %, mean "
          f"{statistics.mean(errors):.1f} %, {inside} of {len(errors)} inside the 80 % range, "
          f"median range width {statistics.median(widths):.0f} % of the prediction\n")


if __name__ == "__main__":
    raise SystemExit(main())
