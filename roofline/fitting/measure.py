"""Measuring real latency with torch, as stably as a shared machine allows.

Owns timing: a fixed thread count (restored afterwards), ``torch.inference_mode``, warm-up,
the garbage collector paused while timing, many repetitions interleaved across everything
being compared (so drift in the machine's speed hits all of it alike), glibc's allocator held
steady (:func:`steady_allocator`), and the spread reported with every figure. Models are built
with random weights; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "threads", "steady_allocator", "time_interleaved", "measure_variants"]

#: mallopt parameter numbers (glibc <malloc.h>) and the values held while timing: the mmap
#: threshold at glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on 64-bit), and a trim
#: threshold that keeps a freed working set of up to 1 GiB in the heap.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024
_allocator: list[str] = []


@dataclass(frozen=True)
class Timing:
    """Latency samples of one callable, in milliseconds."""

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p10_ms(self) -> float:
        return self.quantile_ms(0.10)

    @property
    def p90_ms(self) -> float:
        return self.quantile_ms(0.90)

    @property
    def spread_pct(self) -> float:
        """(p90 − p10) / median, in %: how noisy the measurement was."""
        return 100 * (self.p90_ms - self.p10_ms) / self.median_ms

    def summary(self) -> dict[str, float]:
        return {"median_ms": self.median_ms, "min_ms": self.min_ms, "p10_ms": self.p10_ms,
                "p90_ms": self.p90_ms, "samples": len(self.samples_ms),
                "spread_pct": self.spread_pct}


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Run with ``n`` intra-op threads (None: leave as is); restores the previous count."""
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def steady_allocator() -> str:
    """Hold glibc's malloc steady for the rest of the process, and say what was done.

    PyTorch's CPU tensors come from malloc, which by default returns a freed heap top larger
    than twice the largest block freed so far to the system (its dynamic trim threshold), so a
    model whose own largest activations set that threshold gives its working set back after
    every inference and page-faults it in again on the next. Measured here at 1 thread:
    MobileNetV2 in a process of its own took 32-34 ms with about 3,500 page faults per
    inference, and 19-20 ms with none once the thresholds were fixed; which model pays
    depends on what ran before it in the process. PyTorch's performance tuning guide
    recommends jemalloc or TCMalloc for this reason ("Switch Memory allocator"); fixing
    glibc's thresholds (``mallopt``) does the same here: tensors below 32 MiB reuse freed
    memory. Without glibc (macOS, musl) nothing is changed.
    """
    if _allocator:
        return _allocator[0]
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        version = libc.gnu_get_libc_version()
        ok = (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
              and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    except (AttributeError, OSError):
        version, ok = None, False
    _allocator.append(
        f"glibc {version.decode()} malloc held steady while timing (mmap threshold 32 MiB, "
        f"trim threshold 1 GiB: freed tensors are reused, not page-faulted in again)" if ok
        else f"glibc {version.decode()} malloc as it is (mallopt refused)" if version
        else "the system allocator as it is (not glibc)")
    return _allocator[0]


def time_interleaved(calls: Mapping[str, Callable[[], Any]], *, budget_s: float = 5.0,
                     min_samples: int = 7, max_samples: int = 200, warmup: int = 2
                     ) -> dict[str, Timing]:
    """Time every callable in rounds (one sample of each per round, in a rotating order)
    until ``budget_s`` is spent and each has ``min_samples``, or ``max_samples`` rounds ran.

    A callable faster than ~1 ms is repeated within one sample so that the clock's resolution
    and the loop do not dominate; the sample is the mean of those repetitions.
    """
    steady_allocator()
    names = list(calls)
    inner: dict[str, int] = {}
    for name in names:
        fn = calls[name]
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        inner[name] = max(1, min(1000, math.ceil(1e-3 / max(once, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.perf_counter() + budget_s
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(max_samples):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for name in order:
                fn, n = calls[name], inner[name]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                samples[name].append((time.perf_counter() - start) / n * 1e3)
            if round_ + 1 >= min_samples and time.perf_counter() > deadline:
                break
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(tuple(s)) for name, s in samples.items()}


def measure_variants(variants: list[Any], *, thread_count: int | None = 1,
                     budget_s: float = 20.0, min_samples: int = 7) -> dict[str, Timing]:
    """Real eager latency of each variant (``roofline.sources.variant.Variant``): built with random
    weights, eval mode, inference mode, interleaved; keyed by ``variant.label``."""
    import torch

    with threads(thread_count), torch.inference_mode():
        calls: dict[str, Callable[[], Any]] = {}
        for v in variants:
            model = v.build().eval()
            x = torch.randn(v.input_shape)
            calls[v.label] = _bind(model, x)
        return time_interleaved(calls, budget_s=budget_s, min_samples=min_samples)


def _bind(model: Any, x: Any) -> Callable[[], Any]:
    return lambda: model(x)
