"""The roofline engine: closed-form cases, the paper's plain roofline, physical properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from roofline.analyses.ridge import ridge_costs
from roofline.core.engine import KernelTable, evaluate, predict, predict_many
from roofline.core.fuse import fuse
from roofline.sources.pytorch.tracer import trace
from roofline.sources.variant import Variant

import kit

ZOO_SMALL = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
             "mobilenet_v4_conv_small"]


def plain(peak: float = 100e9, bandwidth: float = 10e9, **extra: object):
    """The MobileNetV4 paper's roofline: one peak, one memory, efficiency 1, no overhead."""
    return kit.profile("plain", peaks={"int8": peak, "fp32": peak / 4}, bandwidth=bandwidth,
                       **extra)


class Tiny(nn.Module):
    """conv 3->8 (3x3, bias) + ReLU, global average pool, linear 8->10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


@pytest.fixture(scope="module")
def tiny_graph():
    return trace(Tiny(), (1, 3, 8, 8))


@pytest.fixture(scope="module")
def zoo_graphs():
    return {name: Variant(name).trace() for name in ZOO_SMALL}


def test_tiny_model_closed_form(tiny_graph):
    prediction = predict(tiny_graph, plain(), "int8")
    records = prediction.kernel_records()
    assert [r["name"] for r in records] == ["conv", "adaptive_avg_pool2d", "fc"]
    # conv: 8*8*8 = 512 outputs x 3*3*3 = 27 MACs each = 13,824 MACs.
    # int8 bytes: weights 8*3*3*3 = 216 + bias 8 x 4 (int32) = 32 -> 248; in 3*8*8 = 192;
    # out 512 (ReLU fused). compute 13,824 / 100e9 = 138.24 ns; memory 952 / 10e9 = 95.2 ns.
    assert records[0]["macs"] == 13_824
    assert records[0]["weight_bytes"] == 248
    assert records[0]["input_bytes"] == 192
    assert records[0]["output_bytes"] == 512
    assert records[0]["bound"] == "compute"
    assert records[0]["latency_ms"] == pytest.approx(138.24e-6)
    # pool: 0 MACs, reads 512 B, writes 8 B -> 520 / 10e9 = 52 ns, memory-bound.
    assert records[1]["bound"] == "memory"
    assert records[1]["latency_ms"] == pytest.approx(52e-6)
    # fc: 8*10 = 80 MACs (0.8 ns); bytes 80 weights + 10 x 4 bias + 8 in + 10 out = 138 -> 13.8 ns.
    assert records[2]["macs"] == 80
    assert records[2]["latency_ms"] == pytest.approx(13.8e-6)
    assert records[2]["bound"] == "memory"
    # 138.24 + 52 + 13.8 = 204.04 ns.
    assert prediction.latency_ms == pytest.approx(204.04e-6)
    # intensities: 13,824 / 952 MACs per byte for the conv.
    assert records[0]["intensity"] == pytest.approx(13_824 / 952)


@pytest.mark.parametrize("name", ZOO_SMALL)
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_plain_profile_is_the_papers_roofline(zoo_graphs, name, precision):
    """Efficiency 1, no overhead, one memory level: exactly Σ max(MACs/peak, bytes/BW)."""
    peak = 100e9 if precision == "int8" else 25e9
    kernels = fuse(zoo_graphs[name]).at_precision(precision).layers
    expected_s = sum(max(k.macs / peak, k.total_bytes / 10e9) for k in kernels)
    got = predict(zoo_graphs[name], plain(), precision).latency_ms
    assert got == pytest.approx(expected_s * 1e3, rel=1e-12)


def test_ridge_point_zero_ranks_models_by_macs(zoo_graphs):
    names = list(zoo_graphs)
    at_zero = [float(ridge_costs(zoo_graphs[n], [0.0])[0]) for n in names]
    assert at_zero == [float(zoo_graphs[n].macs) for n in names]
    # The same through the engine: a memory so fast that the ridge point is ~0.
    fast_memory = plain(peak=100e9, bandwidth=1e30)
    latencies = [predict(zoo_graphs[n], fast_memory).latency_ms for n in names]
    assert sorted(names, key=lambda n: latencies[names.index(n)]) == sorted(
        names, key=lambda n: zoo_graphs[n].macs)
    for n, ms in zip(names, latencies, strict=True):
        assert ms == pytest.approx(zoo_graphs[n].macs / 100e9 * 1e3, rel=1e-9)


@pytest.mark.parametrize("name", ZOO_SMALL)
def test_memory_bound_exactly_below_the_ridge(zoo_graphs, name):
    hw = plain(peak=100e9, bandwidth=4e9)  # ridge point 25 MACs/byte
    prediction = predict(zoo_graphs[name], hw, "int8")
    for record in prediction.kernel_records():
        below = record["intensity"] < hw.ridge_point("int8")
        assert (record["bound"] == "memory") == below, record["name"]


def test_zero_mac_kernels():
    class NoMacs(nn.Module):
        def forward(self, x):
            y = torch.relu(x) + x
            return nn.functional.avg_pool2d(y, 2)

    graph = trace(NoMacs(), (1, 4, 8, 8))
    prediction = predict(graph, plain(), "int8")
    assert graph.macs == 0
    fused, pool = prediction.kernel_records()
    # No MACs; the pool's window is 4 * 4 * 4 outputs x 2 x 2 = 256 additions at 100e9/s,
    # 2.56 ns, under the 32 ns its 320 bytes take at 10e9 B/s: every kernel is memory-bound.
    assert fused["compute_ms"] == 0
    assert pool["compute_ms"] == pytest.approx(256 / 100e9 * 1e3)
    assert all(r["bound"] == "memory" for r in prediction.kernel_records())
    # relu + add fuse into one kernel reading x (256 B) and writing y (256 B); the pool reads
    # y (256 B) and writes 4*4*4 = 64 B: (512 + 320) / 10e9 s.
    assert prediction.latency_ms == pytest.approx(832 / 10e9 * 1e3)


def test_batch_scales_activations_not_weights():
    g1 = Variant("mobilenet_v2", batch=1).trace()
    g4 = Variant("mobilenet_v2", batch=4).trace()
    p1 = predict(g1, plain(), "int8").kernel_records()
    p4 = predict(g4, plain(), "int8").kernel_records()
    assert [r["weight_bytes"] for r in p1] == [r["weight_bytes"] for r in p4]
    assert [4 * r["input_bytes"] for r in p1] == [r["input_bytes"] for r in p4]
    assert [4 * r["output_bytes"] for r in p1] == [r["output_bytes"] for r in p4]
    assert sum(r["macs"] for r in p4) == 4 * sum(r["macs"] for r in p1)


def _profile_strategy():
    positive = st.floats(min_value=1e6, max_value=1e14, allow_nan=False, allow_infinity=False)
    return st.fixed_dictionaries({
        "peak": positive,
        "dram": st.floats(min_value=1e6, max_value=1e12),
        "onchip_capacity": st.floats(min_value=1e3, max_value=1e8),
        "onchip_bw": st.floats(min_value=1e7, max_value=1e13),
        "per_kernel_s": st.floats(min_value=0, max_value=1e-3),
        "per_inference_s": st.floats(min_value=0, max_value=1e-2),
        "eff": st.floats(min_value=0.01, max_value=1.0),
        "tile": st.sampled_from([1, 2, 4, 8, 16, 64]),
        "parallel": st.sampled_from([1, 4, 256]),
        "fill": st.sampled_from([0, 16, 128]),
    })


def _profile(p: dict, peak_factor: float = 1.0, bw_factor: float = 1.0,
             onchip_factor: float = 1.0):
    return plain(
        peak=p["peak"] * peak_factor, bandwidth=p["dram"] * bw_factor,
        memory=[{"name": "L2", "capacity_bytes": p["onchip_capacity"],
                 "bandwidth_bytes_per_s": p["onchip_bw"] * onchip_factor}],
        overhead={"per_kernel_s": p["per_kernel_s"], "per_inference_s": p["per_inference_s"]},
        efficiency={"depthwise_conv": p["eff"]},
        geometry={"m": p["tile"], "n": p["tile"], "k": p["tile"], "channels": p["tile"],
                  "parallel_tiles": p["parallel"], "fill_rows": p["fill"]},
    )


@pytest.fixture(scope="module")
def table(zoo_graphs):
    return KernelTable.for_view([zoo_graphs["mobilenet_v2"], zoo_graphs["mobilenet_v3_small"]],
                                (True, frozenset({"activation", "elementwise"})))


@settings(max_examples=60, deadline=None)
@given(p=_profile_strategy(), factor=st.floats(min_value=1.0, max_value=100.0))
def test_latency_never_rises_when_peak_or_bandwidth_rises(table, p, factor):
    base = evaluate(table, _profile(p)).graph_latency_s
    for changed in (_profile(p, peak_factor=factor), _profile(p, bw_factor=factor),
                    _profile(p, onchip_factor=factor)):
        faster = evaluate(table, changed).graph_latency_s
        assert np.all(faster <= base * (1 + 1e-12))


def test_on_chip_level_keeps_small_tensors_off_dram():
    # A tiny model whose activations all fit in a 1 MB on-chip level: DRAM sees only the
    # model's input and output and the weights (which fit on chip too, so not even those).
    graph = Variant("mobilenet_v2", 0.35, 96).trace()
    hw = plain(memory=[{"name": "SRAM", "capacity_bytes": 64e6, "bandwidth_bytes_per_s": 1e12}])
    records = predict(graph, hw, "int8").kernel_records()
    dram = sum(r["dram_bytes"] for r in records)
    # Model input 3*96*96 = 27,648 B from DRAM; output 1000 B written back.
    assert dram == 3 * 96 * 96 + 1000
    # Without the on-chip level every byte crosses DRAM.
    everything = predict(graph, plain(), "int8").kernel_records()
    assert sum(r["dram_bytes"] for r in everything) == sum(
        r["weight_bytes"] + r["input_bytes"] + r["output_bytes"] for r in everything)


def test_geometry_utilisation_closed_form():
    class OneConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(16, 20, 1, bias=False)

        def forward(self, x):
            return self.conv(x)

    graph = trace(OneConv(), (1, 16, 5, 5))
    # GEMM: m = 25 pixels, n = 20 channels, k = 16. Tiles of 16: m fills 25/32, n fills
    # 20/32, k fills 16/16 -> utilisation 25/32 * 20/32 = 0.48828125.
    hw = plain(geometry={"m": 16, "n": 16, "k": 16})
    record = predict(graph, hw, "int8").kernel_records()[0]
    assert record["efficiency"] == pytest.approx(25 / 32 * 20 / 32)
    # 8,000 MACs / (100e9 * 0.48828125) = 163.84 ns
    assert record["compute_ms"] == pytest.approx(8000 / (100e9 * 0.48828125) * 1e3)


def test_unsupported_kind_and_fallback():
    hybrid = Variant("mobilenet_v4_hybrid_medium", resolution=128).trace()
    dsp_like = plain(support={"unsupported": ["matmul"]})
    prediction = predict(hybrid, dsp_like, "int8")
    assert not prediction.supported
    assert prediction.latency_ms is None
    assert prediction.unsupported_kinds == ["matmul"]
    conv_only = predict(Variant("mobilenet_v2").trace(), dsp_like, "int8")
    assert conv_only.supported and conv_only.latency_ms > 0


def test_predict_many_matches_predict(zoo_graphs):
    graphs = list(zoo_graphs.values())
    profiles = [plain(), plain(peak=1e12, bandwidth=50e9,
                               overhead={"per_kernel_s": 5e-6})]
    many = predict_many(graphs, profiles)
    for h, hw in enumerate(profiles):
        for g, graph in enumerate(graphs):
            assert many[h][g].latency_ms == pytest.approx(predict(graph, hw).latency_ms,
                                                          rel=1e-12)


def test_unfused_profile_predicts_on_ops(zoo_graphs):
    graph = zoo_graphs["mobilenet_v2"]
    eager = plain(fuses_kernels=False)
    prediction = predict(graph, eager, "int8")
    assert len(prediction.kernel_records()) == len(graph.layers)
    assert prediction.latency_ms > predict(graph, plain(), "int8").latency_ms


def test_per_kind_overhead():
    graph = Variant("mobilenet_v2").trace()
    kernels = fuse(graph).layers
    base = predict(graph, plain(), "int8").latency_ms
    with_overhead = predict(graph, plain(overhead={"per_kind_s": {"depthwise_conv": 1e-3}}),
                            "int8").latency_ms
    dw = sum(1 for k in kernels if k.kind.value == "depthwise_conv")
    assert dw == 17
    # Every depthwise kernel is now overhead-bound at exactly 1 ms plus its own time.
    assert with_overhead == pytest.approx(base + 17 * 1.0, rel=1e-9)
    assert math.isfinite(with_overhead)


def test_unsupported_kernels_run_on_the_fallback(tmp_path, monkeypatch):
    # A DSP that cannot run attention hands those kernels to a CPU profile, paying a transfer
    # at each switch between the devices.
    (tmp_path / "slowcpu.toml").write_text(
        'name = "slowcpu"\nkind = "cpu"\ndefault_precision = "int8"\n'
        '[peak_macs_per_s]\nint8 = 1.0e10\n[dram]\nbandwidth_bytes_per_s = 1.0e9\n'
        '[sources]\npeak_macs_per_s = "test"\ndram = "test"\n')
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(tmp_path))
    hybrid = Variant("mobilenet_v4_hybrid_medium", resolution=128).trace()
    dsp = plain(support={"unsupported": ["matmul"], "fallback": "slowcpu",
                         "fallback_transfer_s": 1e-4})
    prediction = predict(hybrid, dsp, "int8")
    assert prediction.supported and prediction.latency_ms > 0
    records = prediction.kernel_records()
    kinds = [r["kind"] for r in records]
    # Each matmul kernel is priced on the fallback: MACs / 1e10 or bytes / 1e9, whichever is
    # larger, as the fallback profile alone would price it.
    fallback = plain(peak=1e10, bandwidth=1e9)
    alone = predict(hybrid, fallback, "int8").kernel_records()
    for record, own in zip(records, alone, strict=True):
        if record["kind"] == "matmul":
            assert record["latency_ms"] == pytest.approx(own["latency_ms"])
    on_fallback = [k == "matmul" for k in kinds]
    switches = sum(a != b for a, b in zip(on_fallback, on_fallback[1:], strict=False))
    # 8 attention blocks; each runs its two matmul kernels (Q·Kᵀ with its softmax, then A·V)
    # back to back: one switch to the fallback and one back per block.
    assert kinds.count("matmul") == 16
    assert switches == 16
    expected = sum(r["latency_ms"] for r in records) + switches * 0.1
    assert prediction.latency_ms == pytest.approx(expected)


# -- one pricing path: precision and fallback mean the same everywhere ------------------------

def _pointwise() -> nn.Module:
    return nn.Conv2d(16, 32, 1)


def _two_precision_profile(**extra: object):
    return kit.profile("twoprec", kind="gpu", peaks={"int8": 1e9, "fp16": 1e9}, bandwidth=1e8,
                       **extra)


# A 1x1 conv 16 -> 32 on a 1x16x8x8 input: 8*8*16*32 = 32,768 MACs = 32.768 us at 1e9 MAC/s.
# fp16 bytes: weights 512*2 = 1,024 + bias 32*2 = 64 + input 1,024*2 = 2,048 + output
# 2,048*2 = 4,096 -> 7,232 B = 72.32 us at 1e8 B/s. int8: 512 + 32*4 (int32 bias) + 1,024 +
# 2,048 = 3,712 B = 37.12 us. Both memory-bound.
FP16_US, INT8_US = 72.32, 37.12


def test_a_traced_precision_is_the_precision_priced():
    hw = _two_precision_profile()
    untyped = trace(_pointwise(), (1, 16, 8, 8))
    fp16 = trace(_pointwise(), (1, 16, 8, 8), precision="fp16")
    assert predict(untyped, hw).latency_ms * 1e3 == pytest.approx(INT8_US)  # the default
    assert predict(fp16, hw).latency_ms * 1e3 == pytest.approx(FP16_US)  # the graph's own
    assert predict(fp16, hw).precision == "fp16"
    assert predict(fp16, hw, "int8").latency_ms * 1e3 == pytest.approx(INT8_US)  # given
    assert predict(untyped.at_precision("fp16"), hw).latency_ms * 1e3 == pytest.approx(FP16_US)
    many = predict_many([untyped, fp16], [hw])
    assert [p.precision for p in many[0]] == ["int8", "fp16"]


def test_a_precision_the_device_lacks_is_an_error():
    from roofline.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="precision for twoprec 'fp32'"):
        predict(trace(_pointwise(), (1, 16, 8, 8), precision="fp32"), _two_precision_profile())


def test_fixed_size_tensors_keep_their_bytes():
    # A tensor whose type is fixed (int64 token ids) moves its own bytes at any precision.
    import dataclasses

    graph = trace(_pointwise(), (1, 16, 8, 8))
    conv = graph.layers[0]
    ids = conv.inputs[0]._replace(element_bytes=8)
    typed = graph.replace(layers=(dataclasses.replace(conv, inputs=(ids,)),))
    # int8: the input's 1,024 elements are 8 bytes each: 3,712 - 1,024 + 8,192 = 10,880 B.
    assert predict(typed, _two_precision_profile()).latency_ms * 1e3 == pytest.approx(108.80)


def test_fallback_is_decided_the_same_way_by_predict_sweep_and_calibrate(tmp_path, monkeypatch):
    from roofline.analyses.sweep import evaluate_grid
    from roofline.fitting.calibrate import Measurement, fit_profile
    from roofline.sources.cache import cached_arrays

    (tmp_path / "slowcpu.toml").write_text(
        'name = "slowcpu"\nkind = "cpu"\ndefault_precision = "int8"\n'
        '[peak_macs_per_s]\nint8 = 1.0e10\n[dram]\nbandwidth_bytes_per_s = 1.0e9\n'
        '[sources]\npeak_macs_per_s = "test"\ndram = "test"\n')
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(tmp_path))
    dsp = plain(support={"unsupported": ["matmul"], "fallback": "slowcpu",
                         "fallback_transfer_s": 1e-4},
                overhead={"per_kernel_s": 1e-5})
    variant = Variant("mobilenet_v4_hybrid_medium", resolution=128)
    graph = variant.trace()
    expected = predict(graph, dsp).latency_ms
    assert expected is not None  # runs, partly on the fallback
    # The sweep prices cached kernel arrays: the same number.
    arrays, _ = cached_arrays(variant.cache_key, [dsp.kernel_view()], variant.trace_uncached)
    grid = evaluate_grid([variant], [arrays], [dsp])
    assert grid.latency_s[0, 0] * 1e3 == pytest.approx(expected, rel=1e-12)
    # Calibration accepts the model and reproduces it from its own parameters.
    rows = [Measurement(model=variant.name, width=1.0, resolution=128, latency_ms=expected)]
    fit = fit_profile(dsp, rows, ["overhead.per_kernel_s"], graphs=[graph],
                      leave_one_out=False, priors=False)
    assert fit.predicted_ms[0] == pytest.approx(expected, rel=1e-6)
    assert fit.profile.overhead.per_kernel_s == pytest.approx(1e-5, rel=1e-4)


# -- ranges ------------------------------------------------------------------------------------

def _compute_bound(**extra: object):
    # 1e9 MACs/s and 1e15 B/s: every kernel is compute-bound, latency = MACs / (1e9 x eff).
    return kit.profile("cb", peak=1e9, bandwidth=1e15,
                       **{"efficiency": {"pointwise_conv": 0.5}, **extra})


def test_a_fitted_profile_range_combines_its_covariance_and_the_engines_error():
    graph = trace(_pointwise(), (1, 16, 8, 8))
    hw = _compute_bound(fit={"measurements": "t", "command": "t",
                             "free": ["efficiency.pointwise_conv"],
                             "covariance": [[0.04]], "structural_sigma": 0.1})
    prediction = predict(graph, hw)
    # 32,768 MACs / (1e9 x 0.5) = 65.536 us. ln latency = -ln efficiency, so the parameter's
    # sd of 0.2 is 0.2 in ln latency; with the engine's 0.1: sigma = sqrt(0.04 + 0.01) and the
    # 80 % range is latency x/÷ exp(1.2816 x 0.22361) = 1.33186.
    assert prediction.latency_ms == pytest.approx(65.536e-3)
    factor = math.exp(1.2815515655446004 * math.sqrt(0.05))
    low, high = prediction.latency_range_ms
    assert (low, high) == pytest.approx((65.536e-3 / factor, 65.536e-3 * factor))


def test_a_fit_that_left_a_parameter_neither_free_nor_stated_is_unsure_of_it():
    # A depthwise conv (16 ch, 3x3 at 8x8: 9,216 MACs) before the pointwise one (32,768 MACs).
    # The fit freed the pointwise efficiency only; [efficiency] leaves depthwise_conv out, so
    # it runs at the full peak (9.216 us) and is as unknown as in a bare datasheet: its
    # generic prior (a factor of 3; from 1 it can only fall) moves it to 27.648 us.
    net = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                        nn.Conv2d(16, 32, 1, bias=False))
    graph = trace(net, (1, 16, 8, 8))
    hw = _compute_bound(efficiency={"pointwise_conv": 0.5, "conv": 1.0, "linear": 1.0,
                                    "matmul": 1.0},
                        fit={"measurements": "t", "command": "t",
                             "free": ["efficiency.pointwise_conv"],
                             "covariance": [[0.04]], "structural_sigma": 0.1})
    prediction = predict(graph, hw)
    total = 9.216 + 65.536
    assert prediction.latency_ms == pytest.approx(total * 1e-3)
    # The pointwise efficiency's sd of 0.2 (ln), to the side inside its bound of 1 (faster);
    # the depthwise one a factor of 3 slower; the engine's 0.1; in quadrature.
    fit_step = math.log((9.216 + 65.536 * math.exp(-0.2)) / total)
    guess_step = math.log((3 * 9.216 + 65.536) / total)
    factor = math.exp(1.2815515655446004 * math.sqrt(fit_step ** 2 + guess_step ** 2 + 0.01))
    low, high = prediction.latency_range_ms
    assert (low, high) == pytest.approx((total * 1e-3 / factor, total * 1e-3 * factor))
    # Stated (even at 1), it is known: only the fit and the engine remain.
    known = _compute_bound(efficiency={"pointwise_conv": 0.5, "conv": 1.0, "linear": 1.0,
                                       "matmul": 1.0, "depthwise_conv": 1.0},
                           fit={"measurements": "t", "command": "t",
                                "free": ["efficiency.pointwise_conv"],
                                "covariance": [[0.04]], "structural_sigma": 0.1})
    low, high = predict(graph, known).latency_range_ms
    factor = math.exp(1.2815515655446004 * math.sqrt(fit_step ** 2 + 0.01))
    assert (low, high) == pytest.approx((total * 1e-3 / factor, total * 1e-3 * factor))


def test_an_unfitted_profile_has_a_wide_range():
    graph = trace(_pointwise(), (1, 16, 8, 8))
    fitted = _compute_bound(fit={"measurements": "t", "command": "t",
                                 "free": ["efficiency.pointwise_conv"],
                                 "covariance": [[0.0025]], "structural_sigma": 0.1})
    bare = _compute_bound()
    low, high = predict(graph, bare).latency_range_ms
    tight_low, tight_high = predict(graph, fitted).latency_range_ms
    # The bare profile is unsure of what a cpu fit would move, by the generic priors: its
    # dense efficiency by a factor of 3 (ln 3 = 1.0986 in ln latency: efficiency 0.5 -> 1/6),
    # its per-kernel cost by 30 us (65.536 -> 95.536 us: ln 1.4578 = 0.3769), its depthwise
    # efficiency not at all (no depthwise kernel); then the cpu kind's structural error.
    from roofline.core.engine import STRUCTURAL_SIGMA

    sigma = math.sqrt(math.log(3.0) ** 2 + math.log(95.536 / 65.536) ** 2
                      + STRUCTURAL_SIGMA["cpu"] ** 2)
    assert high / low == pytest.approx(math.exp(2 * 1.2815515655446004 * sigma), rel=1e-6)
    assert high / low > 3 * (tight_high / tight_low)


def test_winograd_divides_only_dense_3x3_stride_1_convolutions():
    class Three(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.same = nn.Conv2d(8, 8, 3, padding=1)              # Winograd-eligible
            self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)    # stride 2: direct
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)      # depthwise: direct

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dw(self.down(self.same(x)))

    graph = trace(Three(), (1, 8, 16, 16))
    # Compute-bound (1e15 B/s): a kernel takes MACs / 1e9 s, the eligible one / 2 of that.
    direct = _compute_bound(efficiency={})
    wino = _compute_bound(efficiency={}, algorithms={"winograd_3x3": 2.0})
    a = {r["name"]: r["compute_ms"] for r in predict(graph, direct).kernel_records()}
    b = {r["name"]: r["compute_ms"] for r in predict(graph, wino).kernel_records()}
    # same: 16*16*8 outputs x 72 MACs = 147,456 MACs: 147.456 us direct, 73.728 us Winograd.
    assert a["same"] == pytest.approx(147.456e-3)
    assert b["same"] == pytest.approx(73.728e-3)
    assert b["down"] == pytest.approx(a["down"]) and b["dw"] == pytest.approx(a["dw"])


def test_windowed_pooling_is_priced_by_its_window_at_the_pooling_efficiency():
    from roofline.sources.pytorch.tracer import trace

    # MaxPool2d(3, stride 2) on 1x8x9x9: a 4x4 output (floor((9 - 3) / 2) + 1 = 4), each
    # element the max of 3 x 3 inputs: 1 * 8 * 4 * 4 * 9 = 1,152 comparisons. A global
    # average pool is a reduction: no window.
    graph = trace(nn.Sequential(nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(1)), (1, 8, 9, 9))
    pool, mean = graph.layers
    assert (pool.window_ops, pool.macs, mean.window_ops) == (1152, 0, 0)
    # Peak 1e9/s at 1 % pooling efficiency: 1,152 / 1e7 s = 115.2 us; bandwidth 1e15 B/s
    # makes memory negligible (8 * (81 + 16) int8 bytes: 0.8 ps).
    hw = kit.profile(peak=1e9, efficiency={"pooling": 0.01})
    costs = {k["name"]: k for k in predict(graph, hw).kernel_records()}
    assert costs[pool.name]["latency_ms"] == pytest.approx(1152 / 1e7 * 1e3)
    # Without a pooling efficiency (1.0): 1.152 us.
    plain = {k["name"]: k for k in predict(graph, kit.profile(peak=1e9)).kernel_records()}
    assert plain[pool.name]["latency_ms"] == pytest.approx(1152 / 1e9 * 1e3)
    # And 20 ns per output element on top: 128 outputs (8 * 4 * 4) x 20 ns = 2.56 us, so
    # 115.2 + 2.56 = 117.76 us; the global pool (no window) pays nothing of it.
    per_output = hw.with_changes(overhead={"per_pool_output_s": 20e-9},
                                 sources={**hw.sources, "overhead": "a test value"})
    both = {k["name"]: k for k in predict(graph, per_output).kernel_records()}
    assert both[pool.name]["latency_ms"] == pytest.approx((1152 / 1e7 + 128 * 20e-9) * 1e3)
    assert both[mean.name]["latency_ms"] == pytest.approx(costs[mean.name]["latency_ms"])


class _Gates(nn.Module):
    """ReLU, SiLU, GELU, Mish and an attention on one tensor: the transcendental ops of each."""

    def forward(self, x):
        a = torch.relu(x)
        b = nn.functional.silu(a)
        c = nn.functional.gelu(b)
        d = nn.functional.mish(c)
        q = d.reshape(1, 2, 16, 8)  # 2 heads of 16 tokens x 8
        return nn.functional.scaled_dot_product_attention(q, q, q)


def test_transcendental_functions_are_counted_and_priced_per_evaluation():
    from roofline.sources.pytorch.tracer import trace

    graph = trace(_Gates(), (1, 256))
    by_op = {layer.op: layer.transcendental_ops for layer in graph.layers}
    # 256 elements: ReLU none; SiLU and GELU one exp/erf each; Mish two (tanh of softplus);
    # the attention's softmax one per score: 2 heads x 16 x 16 = 512.
    assert by_op == {"relu": 0, "silu": 256, "gelu": 256, "mish": 512,
                     "scaled_dot_product_attention": 512}
    # 2 ns an evaluation at int8, op by op, on a profile with nothing else to pay (peak 1e9
    # MAC/s, 1e15 B/s): SiLU 256 x 2 ns = 0.512 us, Mish 1.024 us; the attention's
    # 2 x 16 x 16 x 8 x 2 = 8,192 MACs take 8.192 us, plus 512 x 2 ns = 1.024 us.
    hw = kit.profile(peak=1e9, fuses_kernels=False,
                     overhead={"per_transcendental_s": {"int8": 2e-9}})
    costs = {k["op"]: k["latency_ms"] * 1e3 for k in
             predict(graph, hw, "int8").kernel_records()}
    assert costs["silu"] == pytest.approx(0.512)
    assert costs["mish"] == pytest.approx(1.024)
    assert costs["scaled_dot_product_attention"] == pytest.approx(8.192 + 1.024)
    # A precision the table leaves out pays nothing for them: fp32 SiLU moves 256 x (4 + 4)
    # bytes at 1e15 B/s, 2.048 ps.
    fp32 = hw.with_changes(peak_macs_per_s={"int8": 1e9, "fp32": 1e9})
    assert {k["op"]: k["latency_ms"] for k in predict(graph, fp32, "fp32").kernel_records()}[
        "silu"] == pytest.approx(256 * 8 / 1e15 * 1e3)
    # Fused into the ReLU's kernel, SiLU, GELU and Mish take their evaluations with them:
    # (256 + 256 + 512) x 2 ns = 2.048 us.
    fused = {k["op"]: k["latency_ms"] * 1e3 for k in predict(
        graph, hw.with_changes(fuses_kernels=True), "int8").kernel_records()}
    assert fused["relu"] == pytest.approx(2.048)


def test_int8_kernels_pay_per_output_element_of_their_kind():
    from roofline.sources.pytorch.tracer import trace

    # An add of two 1x8x10x10 tensors: 800 outputs. At 0.1 ns an int8 element-wise output,
    # 80 ns beside its bytes (3 x 800 int8 bytes at 1e15 B/s: 2.4 ps); fp32 pays none of it.
    class Add(nn.Module):
        def forward(self, x):
            return x + x.flip(-1)

    graph = trace(Add(), (1, 8, 10, 10))
    hw = kit.profile(peaks={"int8": 1e9, "fp32": 1e9}, fuses_kernels=False,
                     overhead={"per_int8_element_s": {"elementwise": 0.1e-9}})
    add = {k["op"]: k for k in predict(graph, hw, "int8").kernel_records()}["add"]
    assert add["compute_ms"] == pytest.approx(800 * 0.1e-9 * 1e3)
    fp32 = {k["op"]: k for k in predict(graph, hw, "fp32").kernel_records()}["add"]
    assert fp32["compute_ms"] == 0.0
