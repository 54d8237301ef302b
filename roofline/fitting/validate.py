"""Validation: predicted against real measured latency on this machine.

Owns measuring each model with torch (``roofline.fitting.measure``), predicting it with a profile,
the per-model errors and the summary (MAPE, Spearman, Kendall), and the per-layer comparison
from ``torch.profiler``. No printing (the CLI) and no plotting (``roofline.report.page``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.engine import predict
from ..core.hardware import HardwareProfile
from ..sources.variant import Variant
from .calibrate import kendall, spearman
from .measure import Timing, measure_variants, threads

__all__ = ["ModelCheck", "Validation", "validate", "compare_layers", "LayerCheck"]


@dataclass(frozen=True)
class ModelCheck:
    """One model: predicted and measured latency."""

    variant: Variant
    predicted_ms: float
    measured: Timing

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted_ms / self.measured.median_ms - 1)

    def record(self) -> dict[str, Any]:
        return {"model": self.variant.name, "label": self.variant.label,
                "width": self.variant.effective_width,
                "resolution": self.variant.effective_resolution,
                "batch": self.variant.batch, "predicted_ms": self.predicted_ms,
                "measured_ms": self.measured.median_ms, **{
                    f"measured_{k}": v for k, v in self.measured.summary().items()
                    if k != "median_ms"},
                "error_pct": self.error_pct}


@dataclass(frozen=True)
class Validation:
    """Every model checked on one profile at one thread count."""

    hardware: HardwareProfile
    thread_count: int
    checks: tuple[ModelCheck, ...]

    @property
    def mape_pct(self) -> float:
        """Mean absolute percentage error."""
        return sum(abs(c.error_pct) for c in self.checks) / len(self.checks)

    @property
    def spearman(self) -> float:
        return spearman([c.measured.median_ms for c in self.checks],
                        [c.predicted_ms for c in self.checks])

    @property
    def kendall(self) -> float:
        return kendall([c.measured.median_ms for c in self.checks],
                       [c.predicted_ms for c in self.checks])

    def summary(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {"hardware": self.hardware.name, "threads": self.thread_count,
                "models": len(self.checks), "mape_pct": self.mape_pct,
                "spearman": clean(self.spearman), "kendall": clean(self.kendall),
                "median_spread_pct": sorted(c.measured.spread_pct for c in self.checks)[
                    len(self.checks) // 2]}


def validate(variants: Sequence[Variant], hw: HardwareProfile, *, thread_count: int = 1,
             budget_s: float = 30.0) -> Validation:
    """Measure every variant (interleaved) and predict it on ``hw``."""
    timings = measure_variants(list(variants), thread_count=thread_count, budget_s=budget_s)
    checks = []
    for v in variants:
        prediction = predict(v.trace(), hw)
        if prediction.latency_ms is None:
            continue
        checks.append(ModelCheck(v, prediction.latency_ms, timings[v.label]))
    return Validation(hw, thread_count, tuple(checks))


# -- per layer ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerCheck:
    """One op of the model: predicted against the time torch.profiler measured for it."""

    name: str
    op: str
    kind: str
    predicted_ms: float
    measured_ms: float | None

    @property
    def error_ms(self) -> float | None:
        return None if self.measured_ms is None else self.predicted_ms - self.measured_ms


_PROFILED_NAME = "roofline::forward"


def compare_layers(variant: Variant, hw: HardwareProfile, *, thread_count: int = 1,
                   runs: int = 10) -> list[LayerCheck]:
    """Per-op comparison of one model with ``torch.profiler``.

    The profiler records the ops the model calls, in order; under ``torch.inference_mode`` they
    are the same calls the tracer records (``aten::conv2d``, ``aten::batch_norm``,
    ``aten::add``...). The direct children of one forward pass are matched in order to the
    op view's layers (views and other ops the tracer ignores are skipped); each layer's
    measured time is the median over ``runs`` profiled passes of that op's total CPU time.
    Predictions are per op, so this is meant for profiles that do not fuse kernels (a local,
    eager profile); with a fusing profile each kernel's time is given to its first op.
    """
    import statistics

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    graph = variant.trace()
    prediction = predict(graph, hw)
    by_kernel = {r["name"]: r for r in prediction.kernel_records()}
    predicted = []
    for layer in graph.layers:
        record = by_kernel.get(layer.name)
        predicted.append(record["latency_ms"] if record and record["latency_ms"] is not None
                         else 0.0)
    model = variant.build().eval()
    x = torch.randn(variant.input_shape)
    per_run: list[list[float | None]] = []
    with threads(thread_count), torch.inference_mode(), _without_profiler_chatter():
        for _ in range(2):
            model(x)
        for _ in range(runs):
            with profile(activities=[ProfilerActivity.CPU]) as prof, \
                    record_function(_PROFILED_NAME):
                model(x)
            per_run.append(_match(graph, _top_level_ops(prof.events())))
    checks = []
    for i, layer in enumerate(graph.layers):
        samples = [run[i] for run in per_run if run[i] is not None]
        checks.append(LayerCheck(layer.name, layer.op, layer.kind.value, predicted[i],
                                 statistics.median(samples) if samples else None))
    return checks


#: What torch's profiler library writes to the process's stderr at every start and stop
#: ("USDT:<date> <pid>:<tid> SyncActivityProfilerHandler.cpp:52] profiler_start"): two lines
#: per profiled pass, in C++, past any Python logging setting.
_PROFILER_CHATTER = re.compile(r"^USDT:.*\] profiler_(start|stop)\s*$")


@contextlib.contextmanager
def _without_profiler_chatter() -> Iterator[None]:
    """Everything written to file descriptor 2 meanwhile, except the profiler's start and stop
    lines, is written out again afterwards (in order): warnings and errors are kept."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(True)
                    if not _PROFILER_CHATTER.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _top_level_ops(events: Any) -> list[tuple[str, float]]:
    """(op name without ``aten::``, total CPU ms) of the forward pass's direct children."""
    out = []
    for event in events:
        parent = event.cpu_parent
        if parent is not None and parent.name == _PROFILED_NAME and event.name.startswith(
                "aten::"):
            out.append((event.name[len("aten::"):], event.cpu_time_total / 1e3))
    return out


def _match(graph: Any, ops: list[tuple[str, float]]) -> list[float | None]:
    """Measured ms per op-view layer, matching the profiled ops in order by name."""
    out: list[float | None] = [None] * len(graph.layers)
    j = 0
    for i, layer in enumerate(graph.layers):
        k = j
        while k < len(ops) and ops[k][0] != layer.op:
            k += 1
        if k < len(ops):
            out[i] = ops[k][1]
            j = k + 1
    return out
