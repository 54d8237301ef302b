"""Tracing speed: roofline.trace (+ fusion) against fvcore and FlopCounterMode, and against
one eager forward pass.

All in one process, interleaved, medians of ``--repeat`` repetitions after a warm-up:

* per zoo model at its default resolution: ``roofline.trace`` + ``fuse`` on a model built on the
  meta device; fvcore's ``FlopCountAnalysis(...).total()`` and
  ``torch.utils.flop_counter.FlopCounterMode`` on real tensors (fvcore fails on meta tensors);
* mobilenet_v2 at 224: trace + fuse against one eager forward pass under
  ``torch.inference_mode``, at 1 thread and at the default thread count.

    python benchmarks/bench_trace.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from roofline.core.fuse import fuse  # noqa: E402
from roofline.sources.pytorch.tracer import trace  # noqa: E402
from roofline.sources.variant import Variant  # noqa: E402
from roofline.zoo import list_models  # noqa: E402


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from fvcore.nn import FlopCountAnalysis
    from torch.utils.flop_counter import FlopCounterMode

    logging.getLogger("fvcore").setLevel(logging.ERROR)  # "unsupported operator" chatter
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | roofline.trace + fuse | fvcore FlopCountAnalysis | FlopCounterMode | "
          "fvcore / roofline | FlopCounterMode / roofline |")
    print("|---|---|---|---|---|---|")
    for name in list_models():
        variant = Variant(name)
        meta_model = variant.build(meta=True)
        model = variant.build().eval()
        x = torch.randn(variant.input_shape)

        def ours(meta_model=meta_model, shape=variant.input_shape) -> object:
            return fuse(trace(meta_model, shape))

        def fv(model=model, x=x) -> object:
            with torch.no_grad():
                return FlopCountAnalysis(model, x).total()

        def fcm(model=model, x=x) -> object:
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model(x)
            return counter.get_total_flops()

        t_ours, t_fv, t_fcm = (median_seconds(fn, args.repeat) for fn in (ours, fv, fcm))
        print(f"| {name} | {1e3 * t_ours:.1f} ms | {1e3 * t_fv:.0f} ms | {1e3 * t_fcm:.0f} ms"
              f" | {t_fv / t_ours:.1f}x | {t_fcm / t_ours:.1f}x |")

    variant = Variant("mobilenet_v2")
    meta_model = variant.build(meta=True)
    model = variant.build().eval()
    x = torch.randn(variant.input_shape)
    threads = torch.get_num_threads()
    print("\n| mobilenet_v2 at 224 | trace + fuse | one eager forward | ratio |")
    print("|---|---|---|---|")
    for n in (1, threads):
        torch.set_num_threads(n)

        def eager() -> object:
            with torch.inference_mode():
                return model(x)

        t_ours = median_seconds(lambda: fuse(trace(meta_model, variant.input_shape)),
                                args.repeat)
        t_eager = median_seconds(eager, args.repeat)
        print(f"| {n} thread(s) | {1e3 * t_ours:.1f} ms | {1e3 * t_eager:.1f} ms | "
              f"{t_ours / t_eager:.2f}x |")
    torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
