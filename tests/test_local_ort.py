"""ONNX Runtime as a local runtime: its fusion rules, int8 efficiencies, calibrate --local
--runtime onnxruntime and validate --runtime onnxruntime. No wall-clock figure is asserted."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

from roofline.core.engine import predict
from roofline.core.fields import unsourced
from roofline.core.hardware import load_hardware
from roofline.fitting.local_ort import (
    FREE,
    ORT_FUSION,
    ORT_INT8_FUSION,
    boundary_ms,
    prepare,
)
from roofline.fitting.local_torch import POOL_FREE
from roofline.fitting.validate import compare_layers_onnx
from roofline.sources.variant import parse_variant

from kit import profile, run_cli

SMALL = ["mobilenet_v2@0.35:96", "mobilenet_v1@0.25:128"]


class Residual(nn.Module):
    """A residual block inside a model: y = stem(x); y + b(relu(a(y))): three convolutions,
    an activation and an add whose other input another convolution wrote."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(channels, channels, 1)
        self.a = nn.Conv2d(channels, channels, 1)
        self.b = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        y = self.stem(x)
        return y + self.b(torch.relu(self.a(y)))


SHAPE = (1, 32, 14, 14)


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    return {m.precision: m for m in prepare("residual", Residual().eval(), SHAPE,
                                            tmp_path_factory.mktemp("ort"))}


def _ort_ops(model, tmp_path):
    """The op types of the graph ONNX Runtime runs after its optimisations."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath)
                               .graph.node)


def test_onnx_runtime_fuses_as_the_profile_says(residual, tmp_path):
    # What the fusion rules claim, checked on what ONNX Runtime itself writes: in fp32 the
    # activation and the residual add run inside the convolutions (no Relu or Add node left);
    # in int8 the convolutions are QLinearConv and the add is a QLinearAdd of its own.
    fp32 = _ort_ops(residual["fp32"], tmp_path)
    assert fp32["Relu"] == 0 and fp32["Add"] == 0 and fp32["Conv"] == 3
    int8 = _ort_ops(residual["int8"], tmp_path)
    assert int8["QLinearConv"] == 3 and int8["QLinearAdd"] == 1 and int8["Conv"] == 0


def _ort_profile():
    return profile("ort", peaks={"fp32": 1e10, "int8": 4e10}, precision="fp32",
                   fusion={"epilogue": list(ORT_FUSION), "int8_epilogue": list(ORT_INT8_FUSION)})


def test_the_kernels_priced_are_the_kernels_run(residual):
    hw = _ort_profile()
    # fp32: stem, conv+relu, conv+add: 3 kernels, as ONNX Runtime runs them.
    fp32 = predict(residual["fp32"].graph(), hw)
    assert [k.op for k in fp32.graph.layers] == ["conv", "conv", "conv"]
    assert fp32.graph.layers[2].fused_ops[-1] == "/Add"  # fused ops are listed by name
    # int8: the input's QuantizeLinear, three QLinearConv (the ReLU is gone: the quantiser
    # drops a ReLU before a QuantizeLinear), the QLinearAdd, the output's DequantizeLinear.
    int8 = predict(residual["int8"].graph(), hw)
    assert int8.precision == "int8"
    assert [k.op for k in int8.graph.layers] == ["quantize_linear", "conv", "conv", "conv",
                                                  "add", "dequantize_linear"]
    # The same file priced on a profile without an int8 epilogue fuses the add as in fp32.
    plain = predict(residual["int8"].graph(), hw.with_changes(
        fusion={"epilogue": list(ORT_FUSION), "int8_epilogue": None}))
    assert [k.op for k in plain.graph.layers].count("add") == 0


def test_int8_efficiency_prices_only_int8_layers(residual):
    # A compute-bound profile (no memory cost, no overhead): every kernel takes MACs / (peak x
    # efficiency); halving the int8 efficiency of pointwise convolutions doubles the int8
    # convolutions' time and leaves the fp32 graph alone.
    base = _ort_profile()
    hw = base.with_changes(efficiency={"pointwise_conv": 0.5},
                           int8_efficiency={"pointwise_conv": 0.5},
                           sources={**base.sources, "efficiency": "test",
                                    "int8_efficiency": "test"})
    slower = hw.with_changes(int8_efficiency={"pointwise_conv": 0.25})
    macs = 14 * 14 * 32 * 32  # one 1x1 convolution, 32 -> 32 channels at 14 x 14
    for precision, peak in (("fp32", 1e10), ("int8", 4e10)):
        graph = residual[precision].graph()
        a, b = predict(graph, hw), predict(graph, slower)
        convs = [r for r in a.kernel_records() if r["kind"] == "pointwise_conv"]
        assert len(convs) == 3
        assert convs[0]["compute_ms"] == pytest.approx(1e3 * macs / (peak * 0.5))
        conv_b = [r for r in b.kernel_records() if r["kind"] == "pointwise_conv"]
        factor = 2 if precision == "int8" else 1
        assert conv_b[0]["compute_ms"] == pytest.approx(factor * convs[0]["compute_ms"])


def test_layout_conversions_at_a_single_layers_edges_are_found(residual):
    # ONNX Runtime wraps an fp32 NCHWc convolution in ReorderInput/ReorderOutput and an int8
    # one in NHWC Transposes; neither is a node of the file, and both take time.
    for model in residual.values():
        assert boundary_ms(model, 1, runs=3) > 0


@pytest.fixture(scope="module")
def ort_profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("local-ort") / "my-ort.toml"
    from roofline.cli import main

    assert main(["calibrate", "--local", "--runtime", "onnxruntime", "--budget", "6",
                 "--out", str(path)]) == 0
    return path


@pytest.mark.slow
def test_the_onnx_runtime_profile_prices_both_precisions(ort_profile_path):
    hw = load_hardware(ort_profile_path)
    assert hw.kind == "cpu" and hw.fuses_kernels and hw.threads == 1
    assert set(hw.peak_macs_per_s) == {"fp32", "int8"}
    assert hw.fusion.epilogue == ORT_FUSION and hw.fusion.int8_epilogue == ()
    assert set(hw.int8_efficiency) == {"conv", "pointwise_conv", "depthwise_conv", "linear",
                                       "matmul"}
    assert hw.fit is not None and hw.fit.free == (*FREE, *POOL_FREE)
    assert hw.fit.reference_ms > 0  # the machine-speed reference validate times again
    assert list(unsourced(hw)) == []
    assert "ONNX Runtime" in hw.sources["peak_macs_per_s.int8"]
    assert "Graph optimizations" in hw.sources["fusion"]
    assert ort_profile_path.read_text().startswith(
        "# Written by `python -m roofline calibrate --local --runtime onnxruntime")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_validate_on_onnx_runtime(ort_profile_path, capsys, precision):
    result = run_cli(capsys, "validate", "--hw", ort_profile_path, "--runtime", "onnxruntime",
                     "--precision", precision, "--models", ",".join(SMALL), "--budget", "2",
                     "--json").json()
    assert result["runtime"] == "onnxruntime" and result["precision"] == precision
    assert result["models"] == 2
    for row in result["rows"]:
        assert row["measured_p10_ms"] <= row["measured_ms"] <= row["measured_p90_ms"]
        assert row["predicted_ms"] > 0


@pytest.mark.slow
def test_every_kernel_is_found_in_onnx_runtimes_profile(ort_profile_path):
    hw = load_hardware(ort_profile_path)
    for precision in ("fp32", "int8"):
        checks = compare_layers_onnx(parse_variant(SMALL[0]), hw, precision=precision, runs=2)
        predicted = [c for c in checks if c.kind != "(not in the graph)"]
        assert predicted and all(c.measured_ms is not None for c in predicted)
        # What ONNX Runtime ran beyond the graph's kernels: its layout conversions only.
        extra = {c.op for c in checks if c.kind == "(not in the graph)"}
        assert extra <= {"reorder_input", "reorder_output", "transpose", "flatten"}


@pytest.mark.parametrize("argv, message", [
    (["validate", "--hw", "cpu", "--precision", "int8"], "needs --runtime onnxruntime"),
    (["validate", "--hw", "cpu", "--runtime", "tflite"], "--runtime"),
    (["validate", "--hw", "cpu", "--runtime", "onnxruntime", "--precision", "fp16"],
     "--precision"),
    (["calibrate", "--runtime", "onnxruntime", "--out", "x.toml"], "needs --local"),
])
def test_bad_input(capsys, argv, message):
    assert message in run_cli(capsys, *argv).error_line


def test_a_model_onnx_cannot_export_is_one_line(capsys, tmp_path):
    model = tmp_path / "fft.py"
    model.write_text("import torch\n\n\nclass Spectrum(torch.nn.Module):\n"
                     "    def forward(self, x):\n        return torch.fft.rfft2(x).abs()\n\n\n"
                     "def spectrum():\n    return Spectrum()\n")
    line = run_cli(capsys, "validate", "--hw", "cpu", "--runtime", "onnxruntime", "--models",
                   f"{model}:spectrum", "--budget", "1").error_line
    assert "cannot export" in line and "fft_rfft2" in line


def test_nodes_are_matched_to_kernels_in_order():
    from roofline.fitting.local_ort import match_nodes

    # ONNX Runtime ran a layout conversion first and last, and no node for the add (say it
    # fused it): the kernel without a node and the nodes without a kernel are kept, in order.
    nodes = [("r0", "reorder_input", 0.1), ("c0", "conv", 1.0), ("c1", "conv", 2.0),
             ("r1", "reorder_output", 0.1)]
    assert match_nodes(["conv", "add", "conv"], nodes) == [
        (None, 0), (0, 1), (1, None), (2, 2), (None, 3)]


class Tiny(nn.Module):
    """Pointwise and depthwise convolutions at three resolutions and a residual add: kernels
    whose MACs, weights and count differ enough to tell an efficiency from a fixed cost."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(16, 32, 1)
        self.dw1 = nn.Conv2d(32, 32, 3, 2, 1, groups=32)
        self.b = nn.Conv2d(32, 64, 1)
        self.dw2 = nn.Conv2d(64, 64, 3, 2, 1, groups=64)
        self.c = nn.Conv2d(64, 64, 1)
        self.d = nn.Conv2d(64, 64, 1)

    def forward(self, x):
        y = self.dw2(self.b(self.dw1(torch.relu(self.a(x)))))
        return y + self.d(torch.relu(self.c(y)))


def test_in_model_costs_are_recovered_from_kernel_times(tmp_path):
    # Kernel times made by a known profile are fitted from a wrong start: the fit must find
    # the profile's efficiencies and fixed costs again (a compute-bound profile, memory free,
    # so every kernel takes MACs / (peak x efficiency) + its kind's fixed cost).
    from roofline.fitting.local_ort import fit_in_models

    base = _ort_profile()
    sources = {**base.sources, "efficiency": "test", "int8_efficiency": "test",
               "overhead": "test"}
    truth = base.with_changes(
        efficiency={"pointwise_conv": 0.6, "depthwise_conv": 0.3},
        int8_efficiency={"pointwise_conv": 0.5, "depthwise_conv": 0.2},
        overhead={"per_kind_s": {"conv": 20e-6, "pointwise_conv": 20e-6,
                                 "depthwise_conv": 10e-6, "elementwise": 5e-6}},
        sources=sources)
    start = truth.with_changes(
        efficiency={"pointwise_conv": 0.9, "depthwise_conv": 0.9},
        int8_efficiency={"pointwise_conv": 0.9, "depthwise_conv": 0.9}, overhead={})
    graphs = [m.graph() for m in prepare("tiny", Tiny().eval(), (1, 16, 32, 32), tmp_path)]
    profiled = []
    for graph in graphs:
        records = predict(graph, truth).kernel_records()
        profiled.append([("reorder", "reorder_input", 0.01)]
                        + [(r["name"], r["op"], r["latency_ms"]) for r in records])
    fitted, counts, flags = fit_in_models(start, graphs, profiled, "in the models")
    assert flags == []  # every value lies inside its bounds
    assert counts["efficiency.pointwise_conv"] == 4  # a, b, c, d in fp32
    assert counts["int8_efficiency.depthwise_conv"] == 2
    assert fitted.efficiency["pointwise_conv"] == pytest.approx(0.6, rel=1e-3)
    assert fitted.efficiency["depthwise_conv"] == pytest.approx(0.3, rel=1e-3)
    assert fitted.int8_efficiency["pointwise_conv"] == pytest.approx(0.5, rel=1e-3)
    assert fitted.int8_efficiency["depthwise_conv"] == pytest.approx(0.2, rel=1e-3)
    assert fitted.overhead.per_kind_s["pointwise_conv"] == pytest.approx(20e-6, rel=1e-3)
    assert fitted.overhead.per_kind_s["depthwise_conv"] == pytest.approx(10e-6, rel=1e-3)
    assert fitted.overhead.per_kind_s["elementwise"] == pytest.approx(5e-6, rel=1e-3)
    for key in ("efficiency.pointwise_conv", "int8_efficiency.depthwise_conv",
                "overhead.per_kind_s.elementwise"):
        assert fitted.sources[key] == "in the models", key  # each fitted value says so
