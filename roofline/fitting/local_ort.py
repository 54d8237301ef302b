"""Profiling this machine as ONNX Runtime runs on it: fp32 and int8 QDQ, fitted into one profile.

Owns ``calibrate --local --runtime onnxruntime`` and the ONNX Runtime half of ``validate``:
exporting a torch module to ONNX (``torch.onnx.export``, opset 17, the TorchScript exporter),
quantising it to int8 QDQ (``onnxruntime.quantization``: pre-processing, then static
quantisation on a few seeded random batches: uint8 activations, int8 per-tensor weights), and
timing ONNX Runtime sessions on the CPU execution provider at a fixed thread count with every
graph optimisation on (the default for an ``InferenceSession``).

The calibration measures what ``roofline.fitting.local_torch`` measures, through ONNX Runtime:
the peak of a 1024 x 1024 x 1024 matrix multiply in fp32 and in int8, the single layers of every
op kind, seeded synthetic nets and windowed pooling layers, each exported and quantised. The
profile prices both precisions with one set of efficiencies (each relative to its own
precision's measured peak) and is fitted to the fp32 and int8 latencies together. What a
kernel costs inside a model is then fitted to the kernels of the synthetic nets as ONNX
Runtime's profiler times them (:func:`fit_in_models`), not to the nets' wall-clock latency: one
free cost per kernel fitted to a dozen wall-clock numbers took up every other difference
between a layer alone and a layer in a model, and moved 14-35 us between calibrations. Every
graph it is fitted to and validated on is read back from the ONNX file ONNX Runtime ran
(``roofline.sources.onnx.read_onnx``), so the layers priced are the layers run. No whole
validated model is used.

Fusion: ONNX Runtime's CPU provider, at its default optimisation level, folds batch norm into
the convolution before it (Conv BatchNorm fusion, a basic-level rewrite), rewrites fp32
convolutions to its blocked NCHWc layout, whose convolution kernel applies an activation
(ReLU, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh, LeakyReLU) and a residual add of another
tensor (the "Sum" input) in its epilogue, and fuses Gemm with its activation (Gemm Activation
fusion). A squeeze-excite multiply stays a kernel of its own. In a QDQ graph, each op with a
quantised kernel (Conv, MatMul, Gemm, Add, Mul, pooling, ...) absorbs the DequantizeLinear nodes
before it and the QuantizeLinear after it and runs as one QLinear kernel; a ReLU before the
QuantizeLinear is dropped by the quantiser (its range is the quantisation range); nothing else
joins a QLinear kernel: a residual add is a QLinearAdd of its own. Sources: the ONNX Runtime
documentation, "Graph optimizations" (onnxruntime.ai/docs/performance/model-optimizations/
graph-optimizations.html) and "Quantize ONNX models" (.../quantization.html); and the graphs
ONNX Runtime 1.32 writes with ``SessionOptions.optimized_model_filepath`` for MobileNetV2, V3
and ResNet-18 exported as here (fp32: 52 NCHWc Conv and no Add left in MobileNetV2; int8: 52
QLinearConv and 10 QLinearAdd), which ``tests/test_local_ort.py`` checks on a small block.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.hardware import HardwareProfile, profile_from_dict
from .local_torch import (
    Layer,
    _layers,
    _pool_layers,
    _synthetic_nets,
    calibration_start,
    cpu_name,
    fit_in_models,
    fit_in_stages,
    match_nodes,
    measure_memory,
    median_spread_pct,
    quiet_enough,
    time_reference,
    timing_source,
)
from .measure import Timing, threads, time_interleaved

__all__ = ["PRECISIONS", "FREE", "OrtProfile", "export_onnx", "quantize_onnx", "ort_session",
           "OnnxModel", "prepare", "calibrate_local_ort", "measure_models", "ORT_FUSION",
           "ORT_INT8_FUSION", "profile_nodes", "boundary_ms", "LAYOUT_OPS", "node_times",
           "match_nodes", "fit_in_models"]

#: The precisions this runtime is calibrated and validated at.
PRECISIONS = ("fp32", "int8")

#: What may run in an fp32 kernel's epilogue (op names as the ONNX reader records them; see the
#: module docstring for the sources).
ORT_FUSION = ("relu", "clamp", "hard_sigmoid", "hard_swish", "sigmoid", "tanh", "leaky_relu",
              "add")
#: ... and in a quantised (QLinear) kernel's: nothing.
ORT_INT8_FUSION: tuple[str, ...] = ()

#: What the single-layer fit frees. Beside the eager set: each MAC kind's efficiency at int8
#: of its own (ONNX Runtime's quantised kernels are not its float kernels: on the project's
#: machine an int8 stem convolution is slower than the fp32 one), and the fixed cost of one
#: session run (``per_inference_s``: binding the input, allocating the output), which every
#: timed layer pays once.
FREE = ("efficiency.conv", "efficiency.pointwise_conv", "efficiency.depthwise_conv",
        "efficiency.linear", "efficiency.matmul", *(f"int8_efficiency.{kind}" for kind in (
            "conv", "pointwise_conv", "depthwise_conv", "linear", "matmul")),
        "memory_efficiency.depthwise_conv",
        "overhead.per_kernel_s", "overhead.per_inference_s", "overhead.per_weight_byte_s",
        "overhead.per_kind_s.conv+pointwise_conv", "overhead.per_kind_s.depthwise_conv",
        "overhead.per_kind_s.linear+matmul",
        "overhead.per_kind_s.normalization", "overhead.per_kind_s.activation",
        "overhead.per_kind_s.elementwise", "overhead.per_kind_s.pooling",
        "overhead.per_kind_s.data_movement", "memory_efficiency.data_movement",
        # int8: ONNX Runtime's QLinearSigmoid is a lookup table, not the float kernel's exp.
        "overhead.per_transcendental_s.fp32", "overhead.per_transcendental_s.int8",
        # The conversions and rescaling of int8 kernels, per output element (refitting one
        # calibration: int8 MAPE over 37 models 13.3 -> 11.7 %, Spearman 0.973 -> 0.990).
        "overhead.per_int8_element_s.elementwise", "overhead.per_int8_element_s.activation",
        "overhead.per_int8_element_s.conv+pointwise_conv+depthwise_conv")

_QUANTISED = {"int8": " (QDQ, run as one quantised kernel)"}

#: Seeded random calibration batches given to the int8 quantiser.
CALIBRATION_BATCHES = 4


def _require_ort() -> Any:
    from ..errors import UsageError

    try:
        import onnxruntime
    except ImportError:
        raise UsageError("--runtime onnxruntime needs the onnxruntime package: pip install "
                         "onnxruntime") from None
    return onnxruntime


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and the quantiser's warnings and log lines are not the user's business:
    Python's and those its C++ writes to file descriptors 1 and 2 (the exporter prints its whole
    IR graph when an op cannot be exported; the failure itself is raised, and said in one
    line)."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved, null = (os.dup(1), os.dup(2)), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
        logger.setLevel(level)


def export_onnx(module: Any, input_shape: Sequence[int], path: str | Path) -> None:
    """Export ``module`` (eval mode) on a random input of ``input_shape`` to ``path``."""
    import torch

    x = torch.randn(tuple(input_shape))
    with _quiet(), torch.no_grad():
        torch.onnx.export(module.eval(), (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], do_constant_folding=True)


def quantize_onnx(fp32_path: str | Path, int8_path: str | Path, input_shape: Sequence[int],
                  batches: int = CALIBRATION_BATCHES, seed: int = 0) -> None:
    """Static int8 QDQ quantisation of ``fp32_path`` into ``int8_path``: ONNX Runtime's
    pre-processing (its shape inference and basic graph optimisations, without which some
    convolutions keep a float bias and stay float), then ``quantize_static`` with uint8
    activations and int8 weights, calibrated (min-max) on ``batches`` seeded random inputs."""
    import numpy as np

    _require_ort()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = np.random.default_rng(seed)
    feeds = [{"x": rng.standard_normal(tuple(input_shape)).astype(np.float32)}
             for _ in range(batches)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    pre = Path(int8_path).with_suffix(".pre.onnx")
    with _quiet():
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    pre.unlink(missing_ok=True)


def ort_session(path: str | Path, thread_count: int, profiling: bool = False) -> Any:
    """An ONNX Runtime CPU session with ``thread_count`` intra-op threads, one inter-op thread,
    sequential execution and every graph optimisation (the default level, ORT_ENABLE_ALL)."""
    ort = _require_ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = thread_count
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profiling:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(path).with_suffix(""))
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class OnnxModel:
    """One benchmark or model as ONNX Runtime runs it: its file at one precision."""

    name: str
    precision: str
    path: Path
    input_shape: tuple[int, ...]

    def graph(self) -> Any:
        from ..sources.onnx import read_onnx

        return read_onnx(self.path, name=self.name)  # an unknown op warns, as everywhere

    def call(self, thread_count: int) -> Callable[[], Any]:
        import numpy as np

        session = ort_session(self.path, thread_count)
        feed = {"x": np.random.default_rng(1).standard_normal(self.input_shape)
                .astype(np.float32)}
        return lambda: session.run(None, feed)


#: Layout conversions ONNX Runtime inserts where a graph enters or leaves its blocked NCHWc
#: (fp32) or NHWC (int8) kernels.
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "Transpose"})


def profile_nodes(model: OnnxModel, thread_count: int, runs: int = 20
                  ) -> list[dict[str, tuple[str, float]]]:
    """ONNX Runtime's profiler on ``runs`` passes (after warm-up): per pass, node name →
    (op type, kernel time in ms). Names are those of the graph ONNX Runtime runs (after its
    optimisations: a fused node keeps the name of the node it grew from, or gets a new one)."""
    import json

    import numpy as np

    warmup = 3
    session = ort_session(model.path, thread_count, profiling=True)
    feed = {"x": np.random.default_rng(1).standard_normal(model.input_shape)
            .astype(np.float32)}
    for _ in range(warmup + runs):
        session.run(None, feed)
    path = Path(session.end_profiling())
    try:
        events = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
    passes: list[dict[str, tuple[str, float]]] = []
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            passes.append({})
        elif event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") \
                and passes:
            node = event["name"][:-len("_kernel_time")]
            passes[-1][node] = (event["args"].get("op_name", ""), event["dur"] / 1e3)
    return [p for p in passes[warmup:] if p]


def node_times(passes: list[dict[str, tuple[str, float]]]) -> list[tuple[str, str, float]]:
    """(node, op, median kernel ms) per node of :func:`profile_nodes`' passes, in run order;
    the op in the reader's names, less ONNX Runtime's prefixes (``QLinearConv`` and its blocked
    ``Conv`` are a ``conv``, ``QGemm`` a ``gemm``)."""
    import statistics

    from ..sources.onnx.ops import snake_case

    def canonical(op_type: str) -> str:
        name = snake_case(op_type)
        for prefix in ("q_linear_", "nhwc_"):
            name = name.removeprefix(prefix)
        # QuickGelu is ONNX Runtime's fusion of x * sigmoid(x): a SiLU.
        return {"q_gemm": "gemm", "q_attention": "attention", "quick_gelu": "silu"}.get(name,
                                                                                      name)

    if not passes:
        return []
    return [(node, canonical(op), statistics.median(run[node][1] for run in passes
                                                    if node in run))
            for node, (op, _) in passes[0].items()]


def _source_nodes(path: Path) -> set[str]:
    import onnx

    return {node.name for node in onnx.load(str(path), load_external_data=False).graph.node}


def boundary_ms(model: OnnxModel, thread_count: int, runs: int = 20) -> float:
    """The median time per pass of the layout conversions ONNX Runtime inserted into this
    graph (ops in :data:`LAYOUT_OPS` that are no node of the file). A single layer timed on its
    own pays them at its input and output; inside a model, a run of such kernels pays them
    once at its edges."""
    import statistics

    own = _source_nodes(model.path)
    totals = [sum(ms for node, (op, ms) in run.items() if op in LAYOUT_OPS and node not in own)
              for run in profile_nodes(model, thread_count, runs)]
    return statistics.median(totals) if totals else 0.0


def prepare(name: str, module: Any, input_shape: Sequence[int], folder: str | Path,
            precisions: Sequence[str] = PRECISIONS) -> list[OnnxModel]:
    """Export ``module`` into ``folder`` and quantise it: one :class:`OnnxModel` per precision."""
    folder = Path(folder)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in name)[:60] + f"_{digest}"
    fp32 = folder / f"{stem}.fp32.onnx"
    with _failing_as(f"cannot export {name} to ONNX (torch.onnx.export, opset 17)"):
        export_onnx(module, input_shape, fp32)
    out = []
    for precision in precisions:
        if precision == "fp32":
            out.append(OnnxModel(name, "fp32", fp32, tuple(input_shape)))
        elif precision == "int8":
            int8 = folder / f"{stem}.int8.onnx"
            with _failing_as(f"cannot quantise {name} to int8 QDQ (onnxruntime.quantization)"):
                quantize_onnx(fp32, int8, input_shape)
            out.append(OnnxModel(name, "int8", int8, tuple(input_shape)))
        else:
            raise ValueError(f"unknown precision {precision!r}: valid are {PRECISIONS}")
    return out


@contextlib.contextmanager
def _failing_as(what: str) -> Iterator[None]:
    """An exporter's or quantiser's failure as one line (a TraceError), not its traceback."""
    from ..errors import RooflineError, TraceError

    try:
        yield
    except RooflineError:
        raise
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise TraceError(f"{what}: {lines[0] if lines else type(exc).__name__}") from None


def _matmul_peak(folder: Path, thread_count: int, budget_s: float, runs: int = 10
                 ) -> dict[str, tuple[float, Timing, str]]:
    """Per precision, the fastest MAC rate of a few large GEMMs: a 1024 x 1024 x 1024 matrix
    multiply and 1 x 1 convolutions of 1024 channels at 32 x 32, 512 at 28 x 28 and 256 at
    56 x 56 (ONNX Runtime's blocked convolution kernels can outrun its matrix multiply, and a
    convolution whose tensors stay in cache outruns one of 4 MB tensors: an efficiency cannot
    exceed 1, so the peak is the fastest of them). The rate is that of the GEMM kernel alone,
    its fastest of ``runs`` profiled passes: a timed session also runs the layout conversions
    at the graph's edges and, in int8, the QuantizeLinear and DequantizeLinear of its input and
    output, which on the project's machine left the fitted pointwise efficiencies at their
    bound of 1. Returns (MACs/s, the session's wall-clock timing, which GEMM)."""
    from torch import nn

    n = 1024
    gemms = {"1024^3 matrix multiply": (nn.Linear(n, n, bias=False), (n, n), n ** 3)}
    for channels, size in ((1024, 32), (512, 28), (256, 56)):
        gemms[f"1x1 convolution {channels} ch @{size}"] = (
            nn.Conv2d(channels, channels, 1, bias=False), (1, channels, size, size),
            channels * channels * size * size)
    chosen = {}
    for what, (module, shape, macs) in gemms.items():
        for m in prepare(what, module, shape, folder):
            chosen[(what, m.precision)] = (m, macs)
    timings = time_interleaved({f"{w} {p}": m.call(thread_count)
                                for (w, p), (m, _) in chosen.items()},
                               budget_s=budget_s, min_samples=5)
    out: dict[str, tuple[float, Timing, str]] = {}
    for (what, precision), (model, macs) in chosen.items():
        # The GEMM is the pass's longest kernel by far (the rest touch its input once).
        kernel_ms = min(max(ms for _, ms in run.values())
                        for run in profile_nodes(model, thread_count, runs))
        rate = macs / (kernel_ms / 1e3)
        if precision not in out or rate > out[precision][0]:
            out[precision] = (rate, timings[f"{what} {precision}"], what)
    return out


@dataclass(frozen=True)
class OrtProfile:
    """The written profile, and what was measured for it (keys: ``"NAME precision"``)."""

    profile: HardwareProfile
    peak_timing: dict[str, Timing]
    bandwidths: dict[str, float]
    layers: dict[str, Timing]
    layer_fit: Any  # FitResult on the single layers, both precisions
    fit: Any  # ... the second stage, on the synthetic nets
    nets: dict[str, Timing]
    spread_pct: float = 0.0
    passes: int = 1


@dataclass(frozen=True)
class _Stage:
    """One calibration stage: its benchmarks as run (a model per precision), the graphs read
    back from their files, the calls that time them, their timings and, where profiled, the
    layout conversions at their edges (:func:`boundary_ms`); all keyed ``"NAME PRECISION"``."""

    models: list[OnnxModel]
    graphs: list[Any]
    calls: dict[str, Callable[[], Any]]
    timings: dict[str, Timing]
    edge_ms: dict[str, float]
    nodes: dict[str, list[tuple[str, str, float]]]

    def fit_input(self, timings: dict[str, Timing] | None = None) -> tuple[list[Any], list[Any]]:
        """(measurements, graphs) for ``fit_in_stages``: each median (of ``timings`` if given),
        less its edge layout conversions (at most half of it: a profiler's reading is never
        allowed to erase a measurement)."""
        from .calibrate import Measurement

        timings = timings or self.timings
        rows = []
        for m in self.models:
            key = f"{m.name} {m.precision}"
            median = timings[key].median_ms
            rows.append(Measurement(model=key, width=1.0, resolution=m.input_shape[-1],
                                    latency_ms=median - min(self.edge_ms.get(key, 0.0),
                                                            median / 2),
                                    precision=m.precision))
        return rows, self.graphs


def _stage(benchmarks: list[Layer], folder: Path, thread_count: int, budget_s: float,
           min_samples: int, report: Callable[[str], None], edges: bool = False,
           nodes: bool = False) -> _Stage:
    """Export, quantise and time ``benchmarks``; with ``edges``, also profile the layout
    conversions at their edges; with ``nodes``, profile every kernel (:func:`node_times`)."""
    models: list[OnnxModel] = []
    for i, bench in enumerate(benchmarks):
        report(f"exporting {i + 1}/{len(benchmarks)}")
        models += prepare(bench.name, bench.module, bench.input_shape, folder)
    graphs = [m.graph() for m in models]
    calls = {f"{m.name} {m.precision}": m.call(thread_count) for m in models}
    timings = time_interleaved(calls, budget_s=budget_s, min_samples=min_samples)
    edge_ms = {}
    if edges:
        report("profiling layout conversions")
        edge_ms = {f"{m.name} {m.precision}": boundary_ms(m, thread_count) for m in models}
    profiled = {}
    if nodes:
        report("profiling kernels")
        profiled = {f"{m.name} {m.precision}": node_times(profile_nodes(m, thread_count))
                    for m in models}
    return _Stage(models, graphs, calls, timings, edge_ms, profiled)


def calibrate_local_ort(thread_count: int = 1, budget_s: float = 60.0,
                        name: str = "local-ort",
                        command: str = "python -m roofline calibrate --local --runtime "
                                       "onnxruntime",
                        progress: Callable[[str, float], None] | None = None,
                        allow_noisy: bool = False) -> OrtProfile:
    """Measure this machine through ONNX Runtime and fit a profile that prices fp32 and int8;
    ``progress(step, fraction)`` reports. Exporting and quantising the benchmarks takes about
    a minute beyond ``budget_s``. The noisy-machine guard is ``local_torch``'s."""
    import onnxruntime
    import torch

    report, when, where = calibration_start(
        progress, f"ONNX Runtime {onnxruntime.__version__} CPU provider", thread_count, command)
    # (threads: the copy-bandwidth measurement runs in torch)
    with tempfile.TemporaryDirectory(prefix="roofline-ort-") as tmp, threads(thread_count), \
            torch.no_grad():
        folder = Path(tmp)
        report("GEMM peak", 0.0)
        peaks = _matmul_peak(folder, thread_count, 0.08 * budget_s)
        reference = time_reference(None, 0.03 * budget_s)  # validate times it again
        mem = measure_memory(torch, 0.1 * budget_s, report, start=0.05, share=0.05)
        layers = _stage(_layers(torch), folder, thread_count, 0.45 * budget_s, 7,
                        lambda step: report(f"single layers: {step}", 0.1), edges=True)
        report("single layers", 0.5)
        timings, spread, passes = quiet_enough(
            layers.timings, lambda: time_interleaved(layers.calls, budget_s=0.45 * budget_s,
                                                     min_samples=7),
            allow_noisy, lambda step: report(step, 0.55))
        # The inverted-residual nets alone: with the squeeze-excite ones, whose gates are
        # 1 x 1 pixel kernels, the fixed costs per kernel fitted inside them fell from 10-15
        # to 5-6 us and every model came out 10-45 % fast in int8 (one calibration refitted:
        # MAPE 24 % against 13 %); what a mid-size kernel pays inside a model beyond a single
        # layer's cost is not modelled, and the fixed costs stand in for it.
        nets = _stage(_synthetic_nets(torch, squeeze_excite=0), folder, thread_count,
                      0.2 * budget_s, 5, lambda step: report(f"synthetic nets: {step}", 0.6),
                      nodes=True)
        pools = _stage(_pool_layers(torch), folder, thread_count, 0.1 * budget_s, 7,
                       lambda step: report(f"windowed pooling: {step}", 0.8), edges=True)
    report("fit", 0.9)
    hierarchy, memory_sources = mem.profile_fields(where, " (torch)")
    sources = {
        "timing": timing_source(spread, len(timings), passes,
                                f"synthetic nets {median_spread_pct(nets.timings):.0f} % "
                                f"(fp32 and int8 timings counted apart)"),
        **{f"peak_macs_per_s.{p}": f"measured: the fastest of a 1024^3 matrix multiply and "
                                   f"1x1 convolutions (1024 ch @32, 512 @28, 256 @56) in {p} in "
                                   f"ONNX Runtime{_QUANTISED.get(p, '')} (the {what}), its "
                                   f"kernel's time in ONNX Runtime's profiler, fastest of 10 "
                                   f"passes; {where}"
           for p, (_, t, what) in peaks.items()},
        "fusion": "ONNX Runtime CPU provider graph optimisations (onnxruntime.ai docs 'Graph "
                  "optimizations': Conv BatchNorm fusion, NCHWc Conv with activation and Sum, "
                  "Gemm Activation fusion; 'Quantize ONNX models': QDQ node units run as QLinear "
                  "kernels), as its optimized_model_filepath graphs show "
                  f"(roofline.fitting.local_ort); ONNX Runtime {onnxruntime.__version__}",
    }
    sources.update(memory_sources)
    base = profile_from_dict({
        "name": name, "kind": "cpu",
        "description": f"this machine: {cpu_name()}, ONNX Runtime {onnxruntime.__version__} "
                       f"CPU provider, {thread_count} thread(s)",
        "default_precision": "fp32", "fuses_kernels": True, "threads": thread_count,
        "peak_macs_per_s": {p: peak for p, (peak, _, _) in peaks.items()},
        **hierarchy,
        "fusion": {"epilogue": list(ORT_FUSION), "int8_epilogue": list(ORT_INT8_FUSION)},
        "efficiency": {k: 0.5 for k in ("conv", "pointwise_conv", "depthwise_conv", "linear",
                                        "matmul", "pooling")},
        "int8_efficiency": {k: 0.5 for k in ("conv", "pointwise_conv", "depthwise_conv",
                                             "linear", "matmul")},
        "memory_efficiency": {"depthwise_conv": 1.0},
        "overhead": {"per_kernel_s": 5e-6, "per_inference_s": 5e-6},
        "sources": {**sources, "efficiency": "initial value, fitted",
                    "int8_efficiency": "initial value, fitted",
                    "memory_efficiency": "initial value, fitted",
                    "overhead": "initial value, fitted"},
    }, path=f"<{name}>")
    count = [len(stage.models) // len(PRECISIONS) for stage in (layers, nets, pools)]
    profile, layer_fit, net_fit = fit_in_stages(
        base, FREE, layers.fit_input(timings), nets.fit_input(), pools.fit_input(),
        latency="ONNX Runtime fp32 and int8 latency", where=where, command=command,
        convention="ONNX Runtime CPU provider kernels (see [sources].fusion)", date=when[:10],
        reference_ms=round(reference.median_ms, 4),
        measured=f"{count[0]} single-layer micro-benchmarks, then {count[1]} seeded synthetic "
                 f"nets (no validated model), then {count[2]} windowed pooling layers, each in "
                 f"fp32 and int8 QDQ",
        in_models=lambda profile: _without_counts(fit_in_models(
            profile, nets.graphs, [nets.nodes[f"{m.name} {m.precision}"] for m in nets.models],
            f"fitted to ONNX Runtime's profiler times of the kernels inside {count[1]} seeded "
            f"synthetic nets in fp32 and int8, none of them a validated model ({where})")))
    report("done", 1.0)
    return OrtProfile(profile=profile, peak_timing={p: t for p, (_, t, _) in peaks.items()},
                      bandwidths=mem.bandwidths, layers=timings, layer_fit=layer_fit, fit=net_fit,
                      nets=nets.timings, spread_pct=spread, passes=passes)


def _without_counts(fitted: tuple[HardwareProfile, dict[str, int], list[str]]
                    ) -> tuple[HardwareProfile, list[str]]:
    profile, _, flags = fitted
    return profile, flags


def measure_models(variants: Sequence[Any], precision: str, *, thread_count: int = 1,
                   budget_s: float = 30.0, min_samples: int = 7,
                   progress: Callable[[str, float], None] | None = None
                   ) -> tuple[dict[str, Timing], dict[str, Any]]:
    """ONNX Runtime latency of each variant (``roofline.sources.variant.Variant``, random
    weights) at ``precision``, interleaved, and the graph read back from the file that ran;
    both keyed by ``variant.label``."""
    import torch

    if precision not in PRECISIONS:
        from ..errors import UsageError

        raise UsageError(f"ONNX Runtime is measured at {' or '.join(PRECISIONS)}, not "
                         f"{precision!r}")
    calls: dict[str, Callable[[], Any]] = {}
    graphs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="roofline-ort-") as tmp, torch.no_grad():
        for i, v in enumerate(variants):
            if progress:
                progress(f"exporting {v.label}", i / max(1, len(variants)))
            (model,) = prepare(v.label, v.build().eval(), v.input_shape, tmp, (precision,))
            graphs[v.label] = model.graph()
            calls[v.label] = model.call(thread_count)
        if progress:
            progress("timing", 1.0)
        return time_interleaved(calls, budget_s=budget_s, min_samples=min_samples), graphs
