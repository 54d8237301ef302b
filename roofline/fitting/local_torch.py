"""Profiling the machine roofline runs on: micro-benchmarks with torch, fitted into a profile.

Owns ``calibrate --local``: it measures the local CPU at a chosen thread count — the peak of a
large fp32 matrix multiply, copy bandwidth at working sets sized to each cache level the
operating system reports and far beyond them (DRAM), and the eager latency of single layers of
every op kind at several sizes (convolutions, depthwise, pointwise, linear, attention,
normalisation, activations, element-wise, pooling) — and fits the profile's efficiencies and
per-op overheads to those single layers with the engine itself (``roofline.fitting.calibrate``). No
whole model is used, so the profile can be validated on whole models honestly.

Eager PyTorch runs every op on its own: the profile has ``fuses_kernels = false``.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.hardware import HardwareProfile, profile_from_dict
from .measure import Timing, steady_allocator, threads, time_interleaved

__all__ = ["LocalProfile", "cpu_name", "cache_levels", "calibrate_local", "FREE",
           "NOISY_SPREAD_PCT", "median_spread_pct", "measure_memory", "MemoryMeasurement",
           "quiet_enough", "timing_source", "calibration_start", "fit_in_stages", "match_nodes",
           "time_reference", "REFERENCE",
           "fit_in_models", "IN_MODEL"]

#: The single layers' median spread (p90 - p10) / median, in %, above which the machine is too
#: busy to calibrate on. Measured on the project's 2-core machine with
#: ``calibrate_local(1, 20)``: 41 % and 43 % on a quiet machine, 43 % with one other process
#: spinning on the second core, 335 % with two (the fit then described the load, not the
#: machine). 100 % sits between, with room for a noisier quiet machine.
NOISY_SPREAD_PCT = 100.0


def median_spread_pct(timings: dict[str, Timing]) -> float:
    """The median over the timed callables of each one's spread, (p90 - p10) / median in %."""
    spreads = sorted(t.spread_pct for t in timings.values())
    n = len(spreads)
    return (spreads[n // 2] if n % 2 else (spreads[n // 2 - 1] + spreads[n // 2]) / 2) \
        if n else 0.0

#: The eager single-layer fit's robust loss scale, a relative error (see
#: ``calibrate._Objective``): about a quiet machine's timing noise. With plain least
#: squares a few layers the engine does not model (the 3-channel stem 58 % slow, a
#: 2x2-pixel pointwise 76 %) pulled the conv and pointwise efficiencies down, and mid-size
#: convolutions were predicted 16-21 % slow. ONNX Runtime's fit keeps plain least squares:
#: its in-model stage refits the efficiencies that matter, and one calibration with the
#: robust loss gave no better models (37 models: fp32 MAPE 9.0 %, int8 13.2 %).
ROBUST_SCALE = 0.1

#: What the windowed pooling layers' fit frees (:func:`fit_in_stages`).
POOL_FREE = ("efficiency.pooling", "overhead.per_pool_output_s")

#: What the single-layer fit frees: one efficiency per MAC kind, a per-op overhead, and extra
#: overheads per kind of op (an eager module call costs more than a bare add).
FREE = ("efficiency.conv", "efficiency.pointwise_conv", "efficiency.depthwise_conv",
        "efficiency.linear", "efficiency.matmul", "memory_efficiency.depthwise_conv",
        "overhead.per_kernel_s", "overhead.per_weight_byte_s",
        "overhead.per_kind_s.conv+pointwise_conv", "overhead.per_kind_s.depthwise_conv",
        "overhead.per_kind_s.linear+matmul",
        "overhead.per_kind_s.normalization", "overhead.per_kind_s.activation",
        "overhead.per_kind_s.elementwise", "overhead.per_kind_s.pooling",
        "overhead.per_kind_s.data_movement", "memory_efficiency.data_movement",
        "overhead.per_transcendental_s.fp32")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cache_levels() -> list[tuple[str, int]]:
    """Data caches of cpu0 as the OS reports them: [(name, bytes)], smallest first."""
    out = []
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        factor = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(size[-1], 1)
        number = int(size.rstrip("KMG")) * factor
        out.append((f"L{level}", number))
    return sorted(out, key=lambda item: item[1])


# -- micro-benchmarks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """One single-op benchmark: a module to trace and the call to time."""

    name: str
    module: Any
    input_shape: tuple[int, ...]
    call: Callable[[], Any]


def _layers(torch: Any) -> list[Layer]:
    """Single layers at sizes typical of mobile vision models (not whole models)."""
    from torch import nn

    out: list[Layer] = []

    def module_layer(name: str, module: Any, shape: tuple[int, ...]) -> None:
        # Inside a model a layer is called through a block and a container (features ->
        # block -> conv); the nesting is part of what an eager op costs.
        module = nn.Sequential(nn.Sequential(module.eval())).eval()
        x = torch.randn(shape)
        out.append(Layer(name, module, shape, lambda m=module, x=x: m(x)))

    def function_layer(name: str, fn: Callable[[Any], Any], shape: tuple[int, ...]) -> None:
        class Wrapper(nn.Module):
            def forward(self, x: Any) -> Any:
                return fn(x)

        x = torch.randn(shape)
        # Timed as the bare call: inside a model such an op costs no module call of its own.
        out.append(Layer(name, Wrapper(), shape, lambda x=x: fn(x)))

    # Dense convolutions from a 3-channel stem to 512 channels at 7 px: what a kernel reaches
    # depends on its output pixels (oneDNN's 3x3 kernels ran at 88 G MAC/s at 56 px and 34 at
    # 7 px on the project's machine), so the sizes span those of dense vision models.
    for c_in, c_out, size, stride in ((3, 32, 112, 2), (16, 32, 56, 1), (64, 64, 28, 1),
                                      (128, 128, 14, 1), (32, 64, 56, 2), (256, 256, 4, 1),
                                      (64, 64, 56, 1), (256, 256, 14, 1), (512, 512, 7, 1)):
        module_layer(f"conv3x3 {c_in}->{c_out} @{size} s{stride}",
                     nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), (1, c_in, size, size))
    module_layer("conv7x7 3->64 @224 s2", nn.Conv2d(3, 64, 7, 2, 3, bias=False),
                 (1, 3, 224, 224))
    for c_in, c_out, size in ((16, 96, 56), (96, 24, 56), (144, 32, 28), (384, 64, 14),
                              (160, 960, 7), (960, 160, 7), (320, 1280, 7), (24, 144, 56),
                              (512, 512, 2), (1024, 1024, 1), (256, 1024, 4)):
        module_layer(f"pointwise {c_in}->{c_out} @{size}",
                     nn.Conv2d(c_in, c_out, 1, bias=False), (1, c_in, size, size))
    for channels, size, kernel, stride in ((32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1),
                                           (384, 14, 3, 1), (960, 7, 3, 1), (240, 28, 5, 1),
                                           (576, 14, 5, 2)):
        module_layer(f"depthwise {kernel}x{kernel} {channels} @{size} s{stride}",
                     nn.Conv2d(channels, channels, kernel, stride, kernel // 2,
                               groups=channels, bias=False), (1, channels, size, size))
    for f_in, f_out in ((1280, 1000), (1024, 1000), (576, 1024), (960, 1280)):
        module_layer(f"linear {f_in}->{f_out}", nn.Linear(f_in, f_out), (1, f_in))
    for tokens, f_in, f_out in ((197, 192, 576), (197, 768, 192), (196, 256, 1024),
                                (49, 512, 2048)):  # token-wise linear layers (transformers)
        module_layer(f"linear {tokens} tokens {f_in}->{f_out}", nn.Linear(f_in, f_out),
                     (1, tokens, f_in))
    for tokens, dim in ((197, 64), (50, 64)):
        def sdpa(q: Any) -> Any:
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

        function_layer(f"sdpa {tokens}x{dim} x3 heads", sdpa, (1, 3, tokens, dim))
    module_layer("layernorm 197x192", nn.LayerNorm(192), (1, 197, 192))
    module_layer("gelu 197x768", nn.GELU(), (1, 197, 768))
    for tokens, dim in ((196, 64), (64, 64), (1024, 48)):
        def attention(q: Any) -> Any:
            return torch.softmax(q @ q.transpose(-1, -2), dim=-1) @ q

        function_layer(f"attention {tokens}x{dim} x4 heads", attention, (1, 4, tokens, dim))
    for channels, size in ((32, 112), (144, 56), (192, 28), (960, 7)):
        shape = (1, channels, size, size)
        module_layer(f"batchnorm {channels} @{size}", nn.BatchNorm2d(channels), shape)
        module_layer(f"relu6 {channels} @{size}", nn.ReLU6(inplace=True), shape)
        module_layer(f"hardswish {channels} @{size}", nn.Hardswish(), shape)
        function_layer(f"add {channels} @{size}", lambda x: x + x, shape)
        # A sigmoid's exp per element (Layer.transcendental_ops), where ReLU6 and hard-swish
        # are a few compares and multiplies.
        module_layer(f"silu {channels} @{size}", nn.SiLU(), shape)
    for channels, size, module in ((144, 56, nn.Sigmoid), (960, 7, nn.Sigmoid),
                                   (192, 28, nn.Tanh)):
        module_layer(f"{module.__name__.lower()} {channels} @{size}", module(),
                     (1, channels, size, size))
    # Copies: concatenation (of two halves, as a split-and-concat does) and a channel shuffle
    # (a transpose made contiguous), which stream at a fraction of a plain copy's bandwidth.
    for channels, size in ((64, 56), (192, 28), (512, 14)):
        function_layer(f"concat 2x{channels // 2} @{size}",
                       lambda x: torch.cat(x.chunk(2, 1)[::-1], 1), (1, channels, size, size))
    for channels, size in ((64, 56), (128, 28), (256, 14)):
        def shuffle(x: Any) -> Any:
            n, c, h, w = x.shape
            return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

        function_layer(f"channel shuffle {channels} @{size}", shuffle, (1, channels, size, size))
    # Tiny tensors: the compute is negligible, so these pin the cost of an op itself.
    tiny = (1, 8, 4, 4)
    module_layer("tiny conv3x3", nn.Conv2d(8, 8, 3, padding=1, bias=False), tiny)
    module_layer("tiny pointwise", nn.Conv2d(8, 8, 1, bias=False), tiny)
    module_layer("tiny depthwise", nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), tiny)
    module_layer("tiny batchnorm", nn.BatchNorm2d(8), tiny)
    module_layer("tiny relu", nn.ReLU(inplace=True), tiny)
    module_layer("tiny hardswish", nn.Hardswish(), tiny)
    module_layer("tiny linear", nn.Linear(8, 8), (1, 8))
    function_layer("tiny add", lambda x: x + x, tiny)
    function_layer("tiny mul", lambda x: x * x, tiny)
    module_layer("tiny pool", nn.AdaptiveAvgPool2d(1), tiny)
    for channels, size in ((960, 7), (576, 14), (1280, 7)):
        module_layer(f"global pool {channels} @{size}", nn.AdaptiveAvgPool2d(1),
                     (1, channels, size, size))
    return out


def _pool_layers(torch: Any) -> list[Layer]:
    """Windowed pooling at sizes typical of vision models: a stem's 3x3 stride-2 max pool, 2x2
    downsampling, a 3x3 stride-1 branch pool, average pooling. Their work is one comparison or
    add per window element (``Layer.window_ops``), priced at ``efficiency.pooling``."""
    from torch import nn

    out: list[Layer] = []
    for channels, size, kernel, stride, pool in (
            (64, 112, 3, 2, nn.MaxPool2d), (128, 56, 3, 2, nn.MaxPool2d),
            (32, 112, 2, 2, nn.MaxPool2d), (256, 28, 2, 2, nn.MaxPool2d),
            (192, 28, 3, 1, nn.MaxPool2d), (96, 56, 3, 1, nn.AvgPool2d),
            (512, 14, 3, 2, nn.MaxPool2d)):
        module = nn.Sequential(nn.Sequential(pool(kernel, stride, 1 if stride == 1 else 0)))
        shape = (1, channels, size, size)
        x = torch.randn(shape)
        out.append(Layer(f"{pool.__name__} {kernel}x{kernel} {channels} @{size} s{stride}",
                         module.eval(), shape, lambda m=module, x=x: m(x)))
    return out


def _synthetic_nets(torch: Any, count: int = 8, seed: int = 20261124,
                    squeeze_excite: int = 3) -> list[Layer]:
    """Seeded random stacks of inverted-residual blocks at random widths and resolutions;
    then ``squeeze_excite`` small, narrow ones whose blocks mostly gate their channels.

    They are not any of the validated architectures: they show what an op costs in the
    middle of a model (a different layer before and after it, weights and code not hot in
    cache), which single layers timed in a loop do not. A squeeze-excite gate runs on 1 x 1
    pixel tensors, the smallest kernels of mobile models, which the first nets lack: fitted
    to those alone, the eager cost per op came out 16 us on the project's machine and
    MobileNetV3-Small slow; with the gated nets, 12 us (ONNX Runtime's calibration leaves
    them out: ``local_ort`` says why). The gated nets draw from a generator of their own, so
    that the first ``count`` (and the machine-speed reference among them) stay as they were.
    """
    import random

    from torch import nn

    rng = random.Random(seed)
    act = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish}

    def cba(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1,
            activation: Any = None) -> nn.Sequential:
        parts: list[Any] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups,
                                      bias=False), nn.BatchNorm2d(c_out)]
        if activation is not None:
            parts.append(activation())
        return nn.Sequential(*parts)

    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int, gate: Any) -> None:
            super().__init__()
            squeeze = max(8, channels // 4)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.reduce = nn.Conv2d(channels, squeeze, 1)
            self.act = nn.ReLU()
            self.expand = nn.Conv2d(squeeze, channels, 1)
            self.gate = gate()

        def forward(self, x: Any) -> Any:
            return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, expand: int, k: int, stride: int,
                     activation: Any, gate: Any = None) -> None:
            super().__init__()
            hidden = c_in * expand
            parts = [cba(c_in, hidden, activation=activation),
                     cba(hidden, hidden, k, stride, hidden, activation)]
            if gate is not None:
                parts.append(SqueezeExcite(hidden, gate))
            self.body = nn.Sequential(*parts, cba(hidden, c_out))
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x: Any) -> Any:
            y = self.body(x)
            return x + y if self.residual else y

    def net(i: int, layers: list[Any], channels: int, head: int, activation: Any,
            resolution: int, kind: str = "") -> Layer:
        """Net ``i``: the stack of ``layers`` with a ``head``-channel 1x1 convolution, global
        pooling and a 1000-way classifier, as a benchmark at ``resolution``."""
        module = nn.Sequential(*layers, cba(channels, head, activation=activation),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                               nn.Linear(head, 1000)).eval()
        x = torch.randn(1, 3, resolution, resolution)
        return Layer(f"synthetic net {i} @{resolution}{kind}", module,
                     (1, 3, resolution, resolution), lambda: module(x))

    nets = []
    for i in range(count):
        activation = act[rng.choice(list(act))]
        channels = rng.choice([8, 16, 24, 32])
        layers: list[Any] = [cba(3, channels, 3, 2, activation=activation)]
        for _ in range(rng.randint(6, 16)):
            out = rng.choice([channels, channels, channels * 2, max(8, channels // 2 * 3)])
            out = min(out, 320)
            stride = 2 if rng.random() < 0.25 else 1
            layers.append(Block(channels, out, rng.choice([2, 4, 6]), rng.choice([3, 5]),
                                stride, activation))
            channels = out
        head = rng.choice([512, 960, 1280])
        nets.append(net(i, layers, channels, head, activation,
                        rng.choice([64, 96, 128, 160, 192])))
    rng = random.Random(seed + 1)
    for i in range(count, count + squeeze_excite):
        activation, gate = rng.choice([(nn.Hardswish, nn.Hardsigmoid), (nn.ReLU, nn.Hardsigmoid),
                                       (nn.SiLU, nn.Sigmoid)])
        channels = rng.choice([8, 16, 24])
        layers = [cba(3, channels, 3, 2, activation=activation)]
        for _ in range(rng.randint(6, 12)):
            out = min(96, rng.choice([channels, channels, channels * 2]))
            stride = 2 if rng.random() < 0.3 else 1
            layers.append(Block(channels, out, rng.choice([3, 4, 6]), rng.choice([3, 5]),
                                stride, activation, gate if rng.random() < 0.75 else None))
            channels = out
        head = rng.choice([256, 576, 1024])
        nets.append(net(i, layers, channels, head, activation,
                        rng.choice([64, 96, 128, 160]), " (squeeze-excite)"))
    return nets


#: The convolutions that, beside a 1024^3 matrix multiply, set the eager peak (the fastest MAC
#: rate of them all): PyTorch runs a matrix multiply through its BLAS and a convolution through
#: oneDNN, which may not reach the same rate. On
#: the project's AMD EPYC machine (torch 2.13.0 with MKL), the 1024^3 matmul ran at 46 G MAC/s
#: and 1x1 convolutions at 43, while 3x3 convolutions of 64-128 channels at 56 px reached
#: 80-88: with the matmul as the peak, ``efficiency.conv`` sat at its bound of 1 and ResNet-18
#: was predicted 40 % slow. An efficiency cannot exceed 1, so the peak is the fastest of them.
PEAK_CONVS = ((128, 56, 3), (256, 28, 3), (1024, 32, 1))  # (channels, pixels, kernel)


def _peak(torch: Any, budget_s: float) -> tuple[float, Timing, str]:
    """The fastest MAC rate in eager PyTorch (fastest run of each) of a 1024^3 matrix multiply
    and the convolutions of :data:`PEAK_CONVS`: (MACs/s, that kernel's timing, which kernel)."""
    from torch import nn

    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    calls: dict[str, tuple[Callable[[], Any], int]] = {
        "1024^3 matrix multiply": (lambda: a @ b, n ** 3)}
    for channels, size, k in PEAK_CONVS:
        conv = nn.Conv2d(channels, channels, k, padding=k // 2, bias=False).eval()
        x = torch.randn(1, channels, size, size)
        calls[f"{k}x{k} convolution {channels} ch @{size}"] = (
            lambda conv=conv, x=x: conv(x), channels * channels * k * k * size * size)
    timings = time_interleaved({what: call for what, (call, _) in calls.items()},
                               budget_s=budget_s, min_samples=5)
    rate, what = max((macs / (timings[what].min_ms / 1e3), what)
                     for what, (_, macs) in calls.items())
    return rate, timings[what], what


#: The machine-speed reference: one seeded synthetic net in eager PyTorch, its median time.
#: The calibration records it (``[fit] reference_ms``) and validate times it again, so that a
#: machine running slower or faster than when it was calibrated (another tenant on a shared
#: host) is said, not taken for the engine's error. A net, not the matmul peak: over five
#: calibrations in one day here the matmul's fastest run stayed within 22.6-23.7 ms, while in
#: the one whose models all came out 16-51 % too slow the nets ran 13 % slower against the
#: models than in the others.
REFERENCE_NET = 7
REFERENCE = "seeded synthetic net 7 (160 px, eager PyTorch)"


def time_reference(thread_count: int | None, budget_s: float) -> Timing:
    """Time :data:`REFERENCE` at ``thread_count`` (None: as set)."""
    import torch

    net = _synthetic_nets(torch)[REFERENCE_NET]
    with threads(thread_count), torch.inference_mode():
        return time_interleaved({net.name: net.call}, budget_s=budget_s,
                                min_samples=7)[net.name]


def _copy_bandwidth(torch: Any, working_set: int, budget_s: float) -> float:
    """Bytes/s of a copy whose source and destination together take ``working_set`` bytes."""
    elements = max(1024, working_set // 8)  # two fp32 buffers
    src, dst = torch.randn(elements), torch.empty(elements)
    timing = time_interleaved({"copy": lambda: dst.copy_(src)}, budget_s=budget_s,
                              min_samples=5)
    return 2 * elements * 4 / (timing["copy"].min_ms / 1e3)


@dataclass(frozen=True)
class MemoryMeasurement:
    """The memory hierarchy as measured: the OS's data caches and a copy's bandwidth at a
    working set sized to each (:data:`CACHE_WORKING_SET` of its capacity) and far beyond
    them (DRAM)."""

    levels: list[tuple[str, int]]
    bandwidths: dict[str, float]
    dram_working_set: int

    def profile_fields(self, where: str, how: str = "") -> tuple[dict[str, Any],
                                                                 dict[str, str]]:
        """The profile's ``memory`` and ``dram`` entries, and their ``[sources]``."""
        memory = [{"name": level, "capacity_bytes": capacity,
                   "bandwidth_bytes_per_s": self.bandwidths[level], "holds": "both"}
                  for level, capacity in self.levels if level != "L1"]
        sources = {"dram.bandwidth_bytes_per_s": f"measured: copy of a "
                                                 f"{self.dram_working_set >> 20} MiB working set"
                                                 f"{how}, fastest run; {where}"}
        for level, capacity in self.levels:
            if level != "L1":
                sources[f"memory.{level}"] = (f"capacity: /sys/devices/system/cpu/cpu0/cache; "
                                              f"bandwidth measured: copy of a "
                                              f"{int(capacity * CACHE_WORKING_SET) >> 10} KiB "
                                              f"working set{how}; "
                                              f"{where}")
        dram = {"bandwidth_bytes_per_s": min(self.bandwidths["DRAM"],
                                             min(self.bandwidths.values()))}
        return {"memory": memory, "dram": dram}, sources


#: Each cache level's copy bandwidth is measured on a working set of this fraction of its
#: capacity: well inside it, where the tensors of a model at batch 1 live (1-8 MB here). At
#: half the capacity a shared last-level cache already misses (other cores, other tenants of
#: a VM, its replacement policy): this machine's 32 MiB L3 copied at 30 GB/s up to 8 MiB,
#: 17-23 at 16 MiB and 12 (DRAM's) at 32. Refitting the same calibration with the caches at a
#: half instead (``benchmarks/bench_ablation_local.py``, "caches at half"), 37 models: eager
#: MAPE 5.4 against 6.7 % (L3 40 against 19 GB/s) in one run, 12.3 against 12.4 % in another;
#: ONNX Runtime (fused kernels, seldom memory-bound; 42 against 14 GB/s) fp32 13.4 against
#: 12.4 %, int8 12.1 against 11.8 %. Within what one calibration tells, so the measurement is
#: chosen for where the tensors are, not for a gain.
CACHE_WORKING_SET = 1 / 4


def measure_memory(torch: Any, budget_s: float,
                   report: Callable[[str, float], None] | None = None,
                   start: float = 0.1, share: float = 0.15) -> MemoryMeasurement:
    """Copy bandwidth at each cache level and beyond (``report(step, fraction)`` from
    ``start`` over ``share`` of the progress)."""
    levels = cache_levels()
    sizes = [(n, int(c * CACHE_WORKING_SET)) for n, c in levels] + [
        ("DRAM", max(256 * 1024 ** 2, 8 * (levels[-1][1] if levels else 0)))]
    bandwidths: dict[str, float] = {}
    for i, (level, working_set) in enumerate(sizes):
        if report:
            report(f"bandwidth {level}", start + share * i / len(sizes))
        bandwidths[level] = _copy_bandwidth(torch, working_set, budget_s / len(sizes))
    return MemoryMeasurement(levels, bandwidths, sizes[-1][1])


def quiet_enough(timings: dict[str, Timing], again: Callable[[], dict[str, Timing]],
                 allow_noisy: bool, report: Callable[[str], None] | None = None
                 ) -> tuple[dict[str, Timing], float, int]:
    """The noisy-machine guard: ``timings`` as kept, their median spread and the passes run.

    Above :data:`NOISY_SPREAD_PCT` the benchmarks are timed ``again`` (another process may have
    had the cores for a while; beyond the budget) and the quieter pass is kept; still above, a
    :class:`~roofline.errors.MeasurementError` says so, unless ``allow_noisy``.
    """
    from ..errors import MeasurementError

    spread, passes = median_spread_pct(timings), 1
    if spread > NOISY_SPREAD_PCT:
        if report:
            report("timing again (noisy)")
        second = again()
        passes = 2
        if median_spread_pct(second) < spread:
            timings, spread = second, median_spread_pct(second)
    if spread > NOISY_SPREAD_PCT and not allow_noisy:
        raise MeasurementError(
            f"this machine is too busy to calibrate: the benchmarks' timings spread "
            f"{spread:.0f} % (median (p90 - p10) / median over {len(timings)} benchmarks, "
            f"{passes} passes; a quiet machine gives about 40 %, the limit is "
            f"{NOISY_SPREAD_PCT:.0f} %); stop other work and run it again, or pass "
            f"--allow-noisy to write the profile anyway")
    return timings, spread, passes


def timing_source(spread: float, count: int, passes: int, more: str) -> str:
    """The ``[sources].timing`` text: the benchmarks' spread against the limit, then
    ``more`` (the other stages' spreads), then how the allocator was held."""
    over = ", exceeded: written with --allow-noisy" if spread > NOISY_SPREAD_PCT else ""
    return (f"median spread (p90 - p10) / median {spread:.0f} % over {count} "
            f"benchmarks in {passes} pass(es) (limit {NOISY_SPREAD_PCT:.0f} %{over}); {more}; "
            f"{steady_allocator()}")

def calibration_start(progress: Callable[[str, float], None] | None, runtime: str,
                      thread_count: int, command: str
                      ) -> tuple[Callable[[str, float], None], str, str]:
    """What both local calibrations begin with: a ``report(step, fraction)`` that calls
    ``progress`` when given, the UTC time of the measurement, and the ``where`` text every
    source cites (CPU, threads, ``runtime``, time, command)."""
    def report(step: str, fraction: float) -> None:
        if progress:
            progress(step, fraction)

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return report, when, (f"{cpu_name()}, {thread_count} thread(s), {runtime}, measured "
                          f"{when} by `{command}`")


def fit_in_stages(base: HardwareProfile, free: Sequence[str],
                  layers: tuple[list[Any], list[Any]], nets: tuple[list[Any], list[Any]],
                  pools: tuple[list[Any], list[Any]], *, latency: str, where: str,
                  command: str, convention: str, date: str, measured: str,
                  in_models: Callable[[HardwareProfile], tuple[HardwareProfile, list[str]]]
                  | None = None, robust_scale: float | None = None,
                  reference_ms: float | None = None) -> tuple[HardwareProfile, Any, Any]:
    """The local calibration's three fits, each a (measurements, graphs) pair, for every
    runtime: ``free`` on the single layers (plain least squares: hundreds of precise local
    measurements need no priors); then what a kernel costs in the middle of a model; then
    windowed pooling's comparisons and adds (``efficiency.pooling``) on its own layers.
    ``latency`` says what was timed ("eager latency"); ``robust_scale``: the single-layer
    fit's robust loss (None: plain least squares); ``reference_ms``: the machine-speed
    reference's fastest time (``[fit] reference_ms``).

    The middle stage: where the runtime can time each kernel inside a model, ``in_models``
    refits what those times tell (:func:`fit_in_models`; it returns the profile and its
    flags, which go into ``[fit] flags``) and the nets' wall-clock latencies are only
    predicted, a check nothing was fitted to (ONNX Runtime). Otherwise one cost per kernel
    (``per_kernel_s``) is fitted to the nets' latencies (eager PyTorch, whose profiler's own
    cost per op is of the order of a small op's: fitted to torch.profiler's times, 12 models
    came out 15-115 % slow). Returns the profile with its ``[fit]``, the single-layer fit and
    the nets' (fitted or predicted) result."""
    from .calibrate import FitResult, fit_profile

    (layer_rows, layer_graphs), (net_rows, net_graphs), (pool_rows, pool_graphs) = \
        layers, nets, pools
    counts = [len(rows) // _per(rows) for rows in (layer_rows, net_rows, pool_rows)]
    layer_fit = fit_profile(base, layer_rows, list(free), graphs=layer_graphs,
                            leave_one_out=False, io_on_chip=True, priors=False,
                            robust_scale=robust_scale,
                            source=f"fitted to the {latency} of {counts[0]} single layers "
                                   f"({where})")
    flags: list[str] = []
    if in_models is None:
        net_fit = fit_profile(layer_fit.profile, net_rows, ["overhead.per_kernel_s"],
                              graphs=net_graphs, leave_one_out=False, priors=False,
                              source=f"fitted to the {latency} of {counts[1]} seeded synthetic "
                                     f"inverted-residual nets, none of them a validated model "
                                     f"({where})")
    else:
        from ..core.engine import price

        in_model, flags = in_models(layer_fit.profile)
        predicted = price(net_graphs, [in_model]).latency_s[0] * 1e3
        net_fit = FitResult(profile=in_model, measurements=tuple(net_rows), free=(), values=(),
                            predicted_ms=tuple(float(ms) for ms in predicted))
    # Windowed pooling costs per window element and per output: eager max_pool2d took 21.6 ns
    # an output with 2x2 windows and 24 ns with 3x3 ones (stride 1) here, mostly the loop's
    # own cost per output; priced per window element alone (one calibration's fit), the 2x2
    # pools came out 41 % fast and the 3x3 stride-1 pool (as in Inception's branches) 16 %
    # slow. Log errors: one efficiency
    # serves max and average pooling (0.2-0.4 and 1.0 G window elements/s in eager PyTorch
    # here), and relative errors let the one average pool pull it to twice the max pools'
    # rate (they were predicted 35-65 % fast).
    pool_fit = fit_profile(net_fit.profile, pool_rows, list(POOL_FREE),
                           graphs=pool_graphs, leave_one_out=False, io_on_chip=True,
                           priors=False, log_errors=True,
                           source=f"fitted to the {latency} of {counts[2]} windowed max and "
                                  f"average pooling layers ({where})")
    info = {"measurements": measured, "command": command, "convention": convention,
            "date": date, "free": [*free, *POOL_FREE],
            "models": len(layer_rows) + len(net_rows) + len(pool_rows),
            "median_abs_error_pct": round(layer_fit.median_abs_error_pct, 2),
            "spearman": round(layer_fit.spearman, 4), "flags": flags,
            "reference_ms": reference_ms}
    return pool_fit.profile.with_changes(fit=info), layer_fit, net_fit


def match_nodes(kernel_ops: Sequence[str], nodes: Sequence[tuple[str, str, float]]
                ) -> list[tuple[int | None, int | None]]:
    """Profiled nodes matched to predicted kernels in order, by op: (kernel, node) index pairs
    in run order; a node no kernel matches (a layout conversion, an op ONNX Runtime split in
    two) is ``(None, node)``, a kernel no node matches ``(kernel, None)``."""
    pairs: list[tuple[int | None, int | None]] = []
    j = 0
    for i, op in enumerate(kernel_ops):
        k = j
        while k < len(nodes) and nodes[k][1] != op:
            k += 1
        if k < len(nodes):
            pairs += [(None, n) for n in range(j, k)]
            pairs.append((i, k))
            j = k + 1
        else:
            pairs.append((i, None))
    return pairs + [(None, n) for n in range(j, len(nodes))]


#: What :func:`fit_in_models` refits on kernels inside models: the fixed costs of every kind
#: and the efficiencies of the kernels an inverted-residual net is made of. Dense and linear
#: efficiencies stay as the single layers have them: a synthetic net's only dense convolution
#: is its 3-channel stem, and its only linear layer the classifier, neither of them typical.
IN_MODEL = ("efficiency.pointwise_conv", "efficiency.depthwise_conv",
            "int8_efficiency.pointwise_conv", "int8_efficiency.depthwise_conv",
            "memory_efficiency.depthwise_conv", "overhead.per_weight_byte_s",
            *(f for f in FREE if f.startswith("overhead.per_kind_s.")))  # (int8: ONNX Runtime)


def fit_in_models(profile: HardwareProfile, graphs: Sequence[Any],
                  profiled: Sequence[list[tuple[str, str, float]]], source: str
                  ) -> tuple[HardwareProfile, dict[str, int], list[str]]:
    """Refit :data:`IN_MODEL` to the kernel times a profiler measured inside models
    (``profiled``: (name, op, ms) of each of ``graphs``' kernels in run order, as
    ``local_ort.node_times`` gives them), all else as ``profile`` prices it.

    A single layer timed in a loop runs with its code, weights and tensors hot; inside a model
    its kernel runs after another one (on the project's machine, in ONNX Runtime, a
    QuantizeLinear costs 20-40 us more there, a depthwise convolution 15-40 % more, a large
    pointwise one 10-20 % less). Each kernel's error counts as its relative error weighed by
    the square root of its share of its model's time, so that neither a thousand tiny kernels
    nor the few largest decide alone. A field no matched kernel prices (no such kind, or not
    at that precision) keeps its single-layer value. Returns the profile, per refitted field
    how many kernels it was fitted on, and a flag for each field the fit left at a bound (a
    corner: the data wanted it further, e.g. an efficiency of 1 when the measured peak is
    below what the kernels reach)."""
    import numpy as np
    from scipy.optimize import least_squares

    from ..core.engine import KernelSet, evaluate, predict
    from ..core.fields import expand
    from .calibrate import ParameterSpace

    table = KernelSet(list(graphs)).table(profile.kernel_view())
    rows, measured, share = [], [], []
    matched: list[tuple[str, str]] = []  # (kind, precision) of each matched kernel
    for g, (graph, nodes) in enumerate(zip(graphs, profiled, strict=True)):
        kernels = predict(graph, profile).graph.layers  # the table's rows of graph g, in order
        total = sum(ms for *_, ms in nodes)
        for k, n in match_nodes([kernel.op for kernel in kernels], nodes):
            if k is not None and n is not None and nodes[n][2] > 0:
                rows.append(int(table.starts[g]) + k)
                measured.append(nodes[n][2])
                share.append(nodes[n][2] * total)
                matched.append((kernels[k].kind.value,
                                "int8" if kernels[k].precision == "int8" else "fp32"))

    def fitted_on(field: str) -> int:
        """How many matched kernels ``field`` prices."""
        head = field.split(".")[0]
        kinds = {path.rsplit(".", 1)[-1] for path in expand(field)}
        if head == "overhead" and not field.startswith("overhead.per_kind_s."):
            return len(matched)
        precisions = {"int8_efficiency": {"int8"}, "efficiency": {"fp32"}}.get(
            head, {"fp32", "int8"})
        return sum(kind in kinds and precision in precisions for kind, precision in matched)

    counts = {f: n for f in IN_MODEL if (n := fitted_on(f))}
    if not counts:
        return profile, {}, []
    index, measured_ms = np.array(rows), np.array(measured)
    weight = 1.0 / np.sqrt(np.array(share))  # (p - m) / sqrt(m * total) = rel. error * sqrt(share)
    space = ParameterSpace(profile, list(counts), priors=False)
    low, high = space.bounds_x()
    start = np.clip(space.to_x([p.base_value for p in space.params]), low, high)

    def residuals(x: np.ndarray) -> np.ndarray:
        costs = evaluate(table, space.fast_apply(space.from_x(x)))
        return (costs.latency_s[index] * 1e3 - measured_ms) * weight

    x = least_squares(residuals, start, bounds=(low, high), x_scale="jac").x
    values = space.from_x(x)
    flags = [f"{p.path} = {v:.4g}, at its {'upper' if xi >= hi - 1e-9 else 'lower'} bound, "
             f"fitted to the kernels inside the synthetic nets"
             for p, v, xi, lo, hi in zip(space.params, values, x, low, high, strict=True)
             if xi <= lo + 1e-9 or xi >= hi - 1e-9]
    return space.apply(values, source), counts, flags


def _per(rows: list[Any]) -> int:
    """How many precisions each benchmark was measured at."""
    return max(1, len({row.precision for row in rows}))


@dataclass(frozen=True)
class LocalProfile:
    """The written profile, and what was measured for it."""

    profile: HardwareProfile
    peak_timing: Timing
    bandwidths: dict[str, float]
    layers: dict[str, Timing]
    layer_fit: Any  # roofline.fitting.calibrate.FitResult on the single layers
    fit: Any  # ... and the second stage, on the synthetic nets
    nets: dict[str, Timing]
    spread_pct: float = 0.0  # the benchmarks' median spread (median_spread_pct)
    passes: int = 1  # how many times the benchmarks were timed (2: the first was noisy)
    pools: dict[str, Timing] = field(default_factory=dict)  # the windowed pooling layers


def calibrate_local(thread_count: int = 1, budget_s: float = 60.0, name: str = "local-cpu",
                    command: str = "python -m roofline calibrate --local",
                    progress: Callable[[str, float], None] | None = None,
                    allow_noisy: bool = False) -> LocalProfile:
    """Measure this machine and fit a profile of it; ``progress(step, fraction)`` reports.

    The single layers, synthetic nets and pools are timed in one interleaved pass, again when
    their median spread is above :data:`NOISY_SPREAD_PCT` (the quieter pass is kept); if it
    still is, a :class:`~roofline.errors.MeasurementError` says so, unless ``allow_noisy``.
    The spread is recorded in the profile's ``[sources]`` under ``timing``.
    """
    import torch

    from ..sources.pytorch.tracer import trace
    from .calibrate import Measurement

    report, when, where = calibration_start(progress, f"torch {torch.__version__}",
                                            thread_count, command)
    with threads(thread_count), torch.inference_mode():
        report("GEMM peak", 0.0)
        peak, peak_timing, peak_kernel = _peak(torch, 0.08 * budget_s)
        mem = measure_memory(torch, 0.2 * budget_s, report)
        # One interleaved pass over the single layers, the synthetic nets and the pools: the
        # nets' time per op is fitted against the single layers' (per_kernel_s), so a drift in
        # the machine's speed between two stages timed apart would go straight into it (the
        # nets ran 20-30 % slower for minutes at a time on a shared machine here).
        report("single layers, synthetic nets and windowed pooling", 0.3)
        layers, nets, pools = _layers(torch), _synthetic_nets(torch), _pool_layers(torch)
        graphs = [trace(layer.module, layer.input_shape) for layer in layers]
        net_graphs = [trace(net.module, net.input_shape) for net in nets]
        pool_graphs = [trace(layer.module, layer.input_shape) for layer in pools]
        calls = {bench.name: bench.call for bench in (*layers, *nets, *pools)}
        everything, spread, passes = quiet_enough(
            time_interleaved(calls, budget_s=0.6 * budget_s, min_samples=7),
            lambda: time_interleaved(calls, budget_s=0.6 * budget_s, min_samples=7),
            allow_noisy, lambda step: report(step, 0.6))
        timings = {layer.name: everything[layer.name] for layer in layers}
        net_timings = {net.name: everything[net.name] for net in nets}
        pool_timings = {layer.name: everything[layer.name] for layer in pools}
    report("fit", 0.85)
    hierarchy, memory_sources = mem.profile_fields(where)
    convs = ", ".join(f"{k}x{k} {c} ch @{px}" for c, px, k in PEAK_CONVS)
    sources = {
        "timing": timing_source(spread, len(everything), passes,
                                f"synthetic nets {median_spread_pct(net_timings):.0f} %; peak "
                                f"({peak_kernel}) {peak_timing.spread_pct:.0f} %"),
        "peak_macs_per_s.fp32": f"measured: the fastest of a 1024^3 matrix multiply and "
                                f"convolutions ({convs}) in eager fp32 (the {peak_kernel}), "
                                f"fastest of "
                                f"{len(peak_timing.samples_ms)} runs; {where}",
        **memory_sources,
    }
    base = profile_from_dict({
        "name": name, "kind": "cpu",
        "description": f"this machine: {cpu_name()}, eager PyTorch {torch.__version__}, "
                       f"{thread_count} thread(s)",
        "default_precision": "fp32", "fuses_kernels": False, "threads": thread_count,
        "peak_macs_per_s": {"fp32": peak},
        **hierarchy,
        "efficiency": {k: 0.5 for k in ("conv", "pointwise_conv", "depthwise_conv", "linear",
                                        "matmul", "pooling")},
        "memory_efficiency": {"depthwise_conv": 1.0},
        "overhead": {"per_kernel_s": 5e-6},
        "sources": {**sources, "efficiency": "initial value, fitted",
                    "memory_efficiency": "initial value, fitted",
                    "overhead": "initial value, fitted"},
    }, path=f"<{name}>")
    measurements = [Measurement(model=layer.name, width=1.0, resolution=8,
                                latency_ms=timings[layer.name].median_ms)
                    for layer in layers]
    net_rows = [Measurement(model=net.name, width=1.0, resolution=net.input_shape[-1],
                            latency_ms=net_timings[net.name].median_ms) for net in nets]
    pool_rows = [Measurement(model=layer.name, width=1.0, resolution=layer.input_shape[-1],
                             latency_ms=pool_timings[layer.name].median_ms) for layer in pools]
    profile, layer_fit, net_fit = fit_in_stages(
        base, FREE, (measurements, graphs), (net_rows, net_graphs), (pool_rows, pool_graphs),
        latency="eager latency", where=where, command=command,
        convention="single ops (eager PyTorch does not fuse)", date=when[:10],
        robust_scale=ROBUST_SCALE,
        reference_ms=round(net_timings[nets[REFERENCE_NET].name].median_ms, 4),
        measured=f"{len(layers)} single-layer micro-benchmarks, then {len(nets)} seeded "
                 f"synthetic nets (no validated model), then {len(pools)} windowed pooling "
                 f"layers")
    report("done", 1.0)
    return LocalProfile(profile=profile, peak_timing=peak_timing, bandwidths=mem.bandwidths,
                        layers=timings, layer_fit=layer_fit, fit=net_fit, nets=net_timings,
                        spread_pct=spread, passes=passes, pools=pool_timings)
