"""Accuracy on this machine: calibrate a local profile, then predict against measure.

Runs what ``python -m roofline calibrate --local --threads 1`` does (single layers and seeded
synthetic nets and windowed pooling layers only), then measures and predicts, at 1 thread:
every zoo model at 224 px, six width/resolution variants, and eight non-MobileNet models
(ResNet-18, ResNet-50, a ViT-Tiny, SqueezeNet 1.0 and 1.1, Inception v1, ShuffleNetV2 and
EfficientNet-B0, from ``benchmarks/models.py``; SqueezeNet and Inception are built on max
pooling). Prints the table with the
measurement spread, and MAPE, Spearman and Kendall. None of the validated models is used by
the calibration.

With ``--runtime onnxruntime`` the calibration is ``calibrate --local --runtime onnxruntime``
and each model is exported, run by ONNX Runtime's CPU provider and predicted from the file that
ran, in fp32 and in int8 (static QDQ quantisation), one table per precision.

    python benchmarks/bench_accuracy_local.py [--runtime torch|onnxruntime] [--budget 60]
        [--threads 1] [--models A,B,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roofline.core.engine import predict  # noqa: E402
from roofline.fitting.local_torch import calibrate_local  # noqa: E402
from roofline.fitting.validate import ModelCheck, Validation, validate  # noqa: E402
from roofline.sources.variant import Variant, parse_variant  # noqa: E402
from roofline.zoo import list_models  # noqa: E402

VARIANTS = ("mobilenet_v2@1.4:224", "mobilenet_v2@0.5:160", "mobilenet_v1@0.75:192",
            "mobilenet_v3_large@0.75:224", "mobilenet_v3_small:160",
            "mobilenet_v4_conv_small@1.5:192")
OTHERS = ("resnet18", "resnet50", "vit_tiny", "squeezenet", "squeezenet1_1", "inception_v1",
          "shufflenet_v2", "efficientnet_b0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds for the calibration, and again for the validation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=None,
                        help="comma-separated model specs to validate instead of the default "
                             "set (benchmarks/models.py:NAME for the non-zoo models)")
    parser.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch")
    args = parser.parse_args()
    command = (f"python benchmarks/bench_accuracy_local.py --runtime {args.runtime} --threads "
               f"{args.threads}")
    if args.runtime == "onnxruntime":
        from roofline.fitting.local_ort import calibrate_local_ort

        local = calibrate_local_ort(args.threads, args.budget, command=command)
    else:
        local = calibrate_local(args.threads, args.budget, command=command)
    models = ([parse_variant(spec.strip()) for spec in args.models.split(",")] if args.models
              else [Variant(name, 1.0, 224) for name in list_models()]
              + [parse_variant(spec) for spec in VARIANTS]
              + [parse_variant(f"{ROOT / 'benchmarks' / 'models.py'}:{name}")
                 for name in OTHERS])
    if args.runtime == "onnxruntime":
        return _onnxruntime(models, local, args)
    result = validate(models, local.profile, thread_count=args.threads, budget_s=args.budget)
    print(f"{local.profile.description}; calibration: {len(local.layers)} single layers "
          f"(fit median |error| {local.layer_fit.median_abs_error_pct:.1f} %) and "
          f"{len(local.nets)} synthetic nets; windowed pooling "
          f"{100 * local.profile.efficiency_of('pooling'):.2f} % of peak per window element "
          f"and {local.profile.overhead.per_pool_output_s * 1e9:.1f} ns per output\n")
    _table(result)
    s = result.summary()
    # A profile of a machine this is not (100x the compute, no per-op costs) must predict far
    # worse: a validation that cannot tell the two apart measures nothing.
    good = local.profile
    wrong = good.with_changes(peak_macs_per_s={"fp32": good.peak("fp32") * 100},
                              overhead={"per_kernel_s": 0.0, "per_inference_s": 0.0})
    wrong_mape = validate(models, wrong, thread_count=args.threads,
                          budget_s=args.budget).mape_pct
    within = sum(abs(c.error_pct) <= 10 for c in result.checks)
    print(f"\n{s['models']} models, {args.threads} thread(s): MAPE {s['mape_pct']:.1f} %, "
          f"Spearman {_rank(s['spearman'])}, Kendall {_rank(s['kendall'])}, {within} within ±10 %; "
          f"median measurement "
          f"spread (p10–p90 / median) {s['median_spread_pct']:.1f} %")
    print(f"a wrong profile (100x the compute, no per-op costs): MAPE {wrong_mape:.1f} %, "
          f"{wrong_mape / s['mape_pct']:.1f}x the calibrated profile's")
    print(_speed_line(result.reference_ms))
    return 0


def _rank(value: float | None) -> str:
    """A rank correlation, or n/a where there are too few models for one."""
    return "n/a" if value is None else f"{value:.3f}"


def _speed_line(reference_ms: tuple[float, float] | None) -> str:
    """How fast the machine ran the calibration's reference net after the models, against
    during the calibration: a calibration on a busier machine than the measurement (or the
    other way) moves every prediction by about that much."""
    from roofline.fitting.local_torch import REFERENCE

    if reference_ms is None:
        return "machine speed: the calibration recorded no reference"
    then, now = reference_ms
    return (f"machine speed: the reference ({REFERENCE}) took a median {now:.2f} ms after the "
            f"models and {then:.2f} ms in the calibration ({100 * (now / then - 1):+.0f} %)")


def _table(result: Validation) -> None:
    print("| model | predicted ms | measured ms (median) | p10–p90 ms | error |")
    print("|---|---|---|---|---|")
    for c in sorted(result.checks, key=lambda c: c.measured.median_ms):
        label = c.variant.label.replace(str(ROOT / "benchmarks") + "/", "")
        t = c.measured
        print(f"| {label} | {c.predicted_ms:.2f} | {t.median_ms:.2f} | {t.p10_ms:.2f}–"
              f"{t.p90_ms:.2f} | {c.error_pct:+.1f} % |")


def _onnxruntime(models: list[Variant], local: Any, args: argparse.Namespace) -> int:
    """Both precisions on one profile; the wrong profile is priced on the same measurements."""
    from roofline.fitting.local_ort import measure_models

    good = local.profile
    wrong = good.with_changes(peak_macs_per_s={p: good.peak(p) * 100 for p in ("fp32", "int8")},
                              overhead={"per_kernel_s": 0.0, "per_inference_s": 0.0})
    print(f"{good.description}; calibration: {len(local.layers)} single-layer timings "
          f"(fp32 and int8), fit median |error| "
          f"{local.layer_fit.median_abs_error_pct:.1f} %; fixed cost per kernel inside a "
          f"model (fitted to the synthetic nets' kernels) "
          + ", ".join(f"{kind} {us * 1e6:.1f} us" for kind, us
                      in good.overhead.per_kind_s.items())
          + f"; the nets' wall clock predicted with median |error| "
          f"{local.fit.median_abs_error_pct:.1f} %; peaks "
          f"{good.peak('fp32') / 1e9:.1f} G MAC/s fp32, {good.peak('int8') / 1e9:.1f} G MAC/s "
          f"int8\n")
    for precision in ("fp32", "int8"):
        timings, graphs = measure_models(models, precision, thread_count=args.threads,
                                         budget_s=args.budget)
        results = [Validation(hw, args.threads, tuple(
            ModelCheck(v, predict(graphs[v.label], hw).latency_ms, timings[v.label])
            for v in models), "onnxruntime", precision) for hw in (good, wrong)]
        print(f"### ONNX Runtime {precision}\n")
        _table(results[0])
        s = results[0].summary()
        within = sum(abs(c.error_pct) <= 10 for c in results[0].checks)
        print(f"\n{precision}: {s['models']} models, {args.threads} thread(s): MAPE "
              f"{s['mape_pct']:.1f} %, Spearman {_rank(s['spearman'])}, Kendall "
              f"{_rank(s['kendall'])}, "
              f"{within} of {s['models']} within ±10 %; median measurement spread "
              f"(p10–p90 / median) {s['median_spread_pct']:.1f} %")
        print(f"a wrong profile (100x the compute, no fixed costs): MAPE "
              f"{results[1].mape_pct:.1f} %\n")
    from roofline.fitting.local_torch import time_reference

    then = good.fit.reference_ms if good.fit is not None else None
    print(_speed_line((then, time_reference(args.threads, budget_s=3.0).median_ms)
                      if then else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
