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
from .local_torch import REFERENCE, time_reference
from .measure import Timing, measure_variants, steady_allocator, threads

__all__ = ["ModelCheck", "Validation", "validate", "compare_layers", "compare_layers_onnx",
           "LayerCheck", "RUNTIMES"]

#: The runtimes a model can be measured with here: eager PyTorch, and ONNX Runtime's CPU
#: provider on the exported (and, for int8, quantised) model.
RUNTIMES = ("torch", "onnxruntime")


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
    runtime: str = "torch"
    precision: str = "fp32"
    # (when calibrated, now): the machine-speed reference's median ms (local_torch.REFERENCE),
    # for a profile of this machine that recorded it ([fit] reference_ms); else None.
    reference_ms: tuple[float, float] | None = None

    @property
    def slowdown_pct(self) -> float | None:
        """How much slower (negative: faster) the machine ran the reference now than when the
        profile was calibrated, in %."""
        if self.reference_ms is None:
            return None
        then, now = self.reference_ms
        return 100 * (now / then - 1)

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
                "runtime": self.runtime, "precision": self.precision,
                "models": len(self.checks), "mape_pct": self.mape_pct,
                "spearman": clean(self.spearman), "kendall": clean(self.kendall),
                "median_spread_pct": sorted(c.measured.spread_pct for c in self.checks)[
                    len(self.checks) // 2], "allocator": steady_allocator(),
                "reference": REFERENCE if self.reference_ms else None,
                "reference_calibrated_ms": self.reference_ms[0] if self.reference_ms else None,
                "reference_now_ms": self.reference_ms[1] if self.reference_ms else None,
                "slowdown_pct": self.slowdown_pct}


def validate(variants: Sequence[Variant], hw: HardwareProfile, *, thread_count: int = 1,
             budget_s: float = 30.0, runtime: str = "torch", precision: str | None = None,
             progress: Any = None) -> Validation:
    """Measure every variant (interleaved) with ``runtime`` and predict it on ``hw``.

    With ``torch`` each model runs eagerly in fp32 and is predicted from its trace. With
    ``onnxruntime`` it is exported (and quantised for ``precision="int8"``), run by ONNX
    Runtime, and predicted from the graph read back from the very file that ran. A profile
    that recorded the machine-speed reference (``[fit] reference_ms``) has it timed again
    after the models (``Validation.reference_ms``).
    """
    if runtime == "onnxruntime":
        from .local_ort import measure_models

        timings, graphs = measure_models(list(variants), precision or "fp32",
                                         thread_count=thread_count, budget_s=budget_s,
                                         progress=progress)
    elif runtime == "torch":
        if precision not in (None, "fp32"):
            from ..errors import UsageError

            raise UsageError(f"eager PyTorch is measured in fp32, not {precision}; int8 is "
                             f"measured with --runtime onnxruntime")
        timings = measure_variants(list(variants), thread_count=thread_count,
                                   budget_s=budget_s)
        graphs = {v.label: v.trace() for v in variants}
    else:
        raise ValueError(f"unknown runtime {runtime!r}: valid are {', '.join(RUNTIMES)}")
    reference = None
    if hw.fit is not None and hw.fit.reference_ms:
        now = time_reference(thread_count, budget_s=min(2.0, 0.05 * budget_s))
        reference = (hw.fit.reference_ms, now.median_ms)
    checks = []
    for v in variants:
        prediction = predict(graphs[v.label], hw)
        if prediction.latency_ms is None:
            continue
        checks.append(ModelCheck(v, prediction.latency_ms, timings[v.label]))
    return Validation(hw, thread_count, tuple(checks), runtime, precision or "fp32", reference)


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
    import torch

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
    with threads(thread_count):
        measured, _ = eager_op_times(model, x, graph, runs)
    return [LayerCheck(layer.name, layer.op, layer.kind.value, predicted[i], measured[i])
            for i, layer in enumerate(graph.layers)]


def eager_op_times(model: Any, x: Any, graph: Any, runs: int = 10
                   ) -> tuple[list[float | None], float]:
    """``torch.profiler`` on ``runs`` eager passes of ``model(x)`` (after two warm-up passes,
    at the caller's thread count): the median CPU ms of each of ``graph``'s op-view layers (its
    op matched in order; None where none matched), and the median wall-clock ms of a profiled
    pass (longer than a plain one: the profiler's own cost)."""
    import statistics
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    steady_allocator()  # as the timed passes: no page faults from malloc's trimming
    per_run: list[list[float | None]] = []
    walls = []
    with torch.inference_mode(), _without_profiler_chatter():
        for _ in range(2):
            model(x)
        for _ in range(runs):
            with profile(activities=[ProfilerActivity.CPU]) as prof, \
                    record_function(_PROFILED_NAME):
                start = time.perf_counter()
                model(x)
                walls.append((time.perf_counter() - start) * 1e3)
            per_run.append(_match(graph, _top_level_ops(prof.events())))
    out: list[float | None] = []
    for i in range(len(graph.layers)):
        samples = [run[i] for run in per_run if run[i] is not None]
        out.append(statistics.median(samples) if samples else None)
    return out, statistics.median(walls)


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


def compare_layers_onnx(variant: Variant, hw: HardwareProfile, *, precision: str = "fp32",
                        thread_count: int = 1, runs: int = 20) -> list[LayerCheck]:
    """Per-kernel comparison of one model as ONNX Runtime runs it, from its profiler.

    The model is exported (and quantised for int8) as :func:`validate` does; the predicted
    kernels are those of the graph read back from that file, fused as ``hw`` fuses; ONNX
    Runtime's profiler gives each node's kernel time over ``runs`` passes (median). Nodes are
    matched to kernels in order by op (``QLinearConv`` and ONNX Runtime's blocked ``Conv`` are
    a ``conv``, ``QGemm`` a ``gemm``...). A node no kernel matches (a layout conversion ONNX
    Runtime inserted, an op it split in two) is listed with no prediction; a kernel no node
    matches, with no measurement.
    """
    import tempfile

    import torch

    from .local_ort import match_nodes, node_times, prepare, profile_nodes

    with tempfile.TemporaryDirectory(prefix="roofline-ort-") as tmp, torch.no_grad():
        (model,) = prepare(variant.label, variant.build().eval(), variant.input_shape, tmp,
                           (precision,))
        graph = model.graph()
        nodes = node_times(profile_nodes(model, thread_count, runs))
    prediction = predict(graph, hw)
    records = prediction.kernel_records()
    kernels = prediction.graph.layers  # the kernel view that was priced
    checks: list[LayerCheck] = []
    for k, n in match_nodes([kernel.op for kernel in kernels], nodes):
        if k is None:  # run by ONNX Runtime only
            node, op, ms = nodes[n]
            checks.append(LayerCheck(node, op, "(not in the graph)", 0.0, ms))
        else:
            kernel = kernels[k]
            checks.append(LayerCheck(kernel.name, kernel.op, kernel.kind.value,
                                     records[k]["latency_ms"] or 0.0,
                                     None if n is None else nodes[n][2]))
    return checks
