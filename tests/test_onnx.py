"""Tests of the ONNX front end (roofline.sources.onnx): the reader against the torch tracer on
the same models, closed forms on hand-built graphs, quantised graphs, the model source and bad
input.

Models are exported as ``torch.onnx.export(..., dynamo=False, opset_version=17)`` with random
weights (``onnx_models.randomize``: the exporter merges initializers of equal value, as those of
a freshly initialised model are). Expected numbers are the tracer's graph of the same model, the
model's own parameter count, or arithmetic written beside them.

Conventions checked here (see roofline/sources/onnx/reader.py):
* In eval mode the exporter folds each batch norm that follows a convolution into it: the file
  holds the convolution's weights and a bias (C), no γ, β (2C) or statistics. The reader counts
  what the file holds, so its params are the model's minus C per folded batch norm; the kernel
  view and its price are the tracer's (whose fusion folds the batch norm the same way). Exported
  with ``training=PRESERVE`` the batch norms stay and params equal the model's exactly.
* The exporter folds arithmetic on parameters into new initializers: Swin's relative position
  bias ``table[index]`` is stored gathered (heads × N × N), not as the table.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from roofline import zoo
from roofline.core.engine import predict
from roofline.core.graph import MAC_KINDS, Gemm, InputSpec, LayerGraph, OpKind, UnknownOpWarning
from roofline.errors import ModelLoadError, RooflineError, TraceError, UsageError
from roofline.sources import source_for
from roofline.sources.onnx import OnnxSource, read_onnx
from roofline.sources.onnx.layout import elementwise_strides, view_strides
from roofline.sources.onnx.ops import IGNORE_RULES, RULES, snake_case
from roofline.sources.onnx.reader import module_path
from roofline.sources.python import load_user_model
from roofline.sources.pytorch.tracer import trace
from roofline.sources.variant import parse_variant

sys.path.insert(0, str(Path(__file__).parent))
from onnx_models import HELD_OUT, IdsFromFloat, Recurrent, export, gpt, randomize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONV_KINDS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.POINTWISE_CONV)
DYNAMIC_IMAGE = {"input": {0: "N", 2: "H", 3: "W"}}


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


# -- helpers --------------------------------------------------------------------------------------

def mac_layers(graph: LayerGraph) -> int:
    return sum(layer.kind in MAC_KINDS for layer in graph.layers)


def all_gemms(graph: LayerGraph) -> Counter[Gemm]:
    return Counter(g for layer in graph.layers for g in layer.gemms)


def true_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a tied parameter once


def folded_batch_norm_channels(graph: LayerGraph) -> int:
    """The parameters the exporter's batch-norm folding removes: each batch norm that reads a
    tensor only it reads, written by a convolution, becomes the convolution's bias: its γ and β
    (2 per channel) go, a bias of 1 per channel comes unless the convolution had one."""
    producer = {t.id: layer for layer in graph.layers for t in layer.outputs}
    readers = Counter(t.id for layer in graph.layers for t in layer.inputs)
    channels = 0
    for layer in graph.layers:
        if layer.op == "batch_norm":
            source = producer.get(layer.inputs[0].id)
            if source is not None and source.kind in CONV_KINDS and \
                    readers[layer.inputs[0].id] == 1:
                channels += layer.params // 2 * (2 if source.bias_elements else 1)
    return channels


def assert_like_tracer(ours: LayerGraph, theirs: LayerGraph, *, params: int,
                       extra_kernels: int = 0, rel: float = 1e-9) -> None:
    """The checks every model passes: no unknown op, the same MACs, MAC layers and GEMMs, the
    expected params, and the kernel view priced alike on a TFLite CPU and an EdgeTPU."""
    assert ours.unknown_ops == [] and OpKind.UNKNOWN not in ours.kind_counts()
    assert ours.macs == theirs.macs
    assert mac_layers(ours) == mac_layers(theirs)
    assert all_gemms(ours) == all_gemms(theirs)
    assert ours.params == params
    for hw in ("cpu", "edgetpu"):
        a, b = predict(ours, hw), predict(theirs, hw)
        assert len(b.graph) - len(a.graph) == extra_kernels, hw
        assert a.latency_ms == pytest.approx(b.latency_ms, rel=rel), hw


# -- the zoo --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def zoo_exports(exports: Path):
    """Each zoo model, random weights, exported once with a dynamic batch and image size."""
    cache: dict[str, tuple[nn.Module, Path]] = {}

    def get(name: str) -> tuple[nn.Module, Path]:
        if name not in cache:
            model = randomize(zoo.create_model(name))
            path = export(model, (torch.randn(1, 3, 64, 64),), exports / f"{name}.onnx",
                          dynamic=DYNAMIC_IMAGE)
            cache[name] = (model, path)
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_zoo_model_reads_as_the_tracer_traces_it(name, zoo_exports):
    model, path = zoo_exports(name)
    shape = (2, 3, 96, 96)
    ours = read_onnx(path, [shape])
    theirs = trace(model, shape)
    assert ours.input_shape == shape and ours.layers[-1].output_shape == (2, 1000)
    assert_like_tracer(ours, theirs, params=true_params(model)
                       - folded_batch_norm_channels(theirs))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small",
                                  "mobilenet_v4_hybrid_medium", "efficientnet_lite0"])
def test_zoo_models_at_224(name, zoo_exports):
    model, path = zoo_exports(name)
    ours = read_onnx(path, resolution=224)
    theirs = trace(model, (1, 3, 224, 224))
    assert ours.input_shape == (1, 3, 224, 224)
    assert_like_tracer(ours, theirs, params=true_params(model)
                       - folded_batch_norm_channels(theirs))


def test_batch_norm_kept_by_the_exporter_counts_the_models_params(exports):
    model = randomize(zoo.create_model("mobilenet_v3_small", width=0.5))
    path = export(model, (torch.randn(1, 3, 64, 64),), exports / "v3s_preserve.onnx",
                  preserve_batch_norm=True)
    ours = read_onnx(path)
    theirs = trace(model, (1, 3, 64, 64))
    norms = [layer for layer in ours.layers if layer.op == "batch_norm"]
    assert len(norms) == sum(layer.op == "batch_norm" for layer in theirs.layers) > 0
    # γ, β are parameters; the running mean and variance are weights, not parameters
    assert all(n.params * 2 == n.weight_elements for n in norms)
    assert_like_tracer(ours, theirs, params=true_params(model))
    assert ours.params == theirs.params


def test_a_fixed_size_export_reads_without_bindings(exports):
    model = randomize(zoo.create_model("mobilenet_v1", width=0.25))
    path = export(model, (torch.randn(1, 3, 96, 96),), exports / "v1_fixed.onnx")
    ours = read_onnx(path)
    theirs = trace(model, (1, 3, 96, 96))
    assert ours.input_specs == (InputSpec((1, 3, 96, 96), "float32", "input"),)
    assert_like_tracer(ours, theirs, params=true_params(model)
                       - folded_batch_norm_channels(theirs))
    with pytest.raises(UsageError, match="fixed batch of 1; the file cannot run at batch 4"):
        read_onnx(path, batch=4)
    with pytest.raises(UsageError, match="fixed height of 96; the file cannot run at "
                                         "resolution 128"):
        read_onnx(path, resolution=128)


# -- benchmarks/models.py -------------------------------------------------------------------------

@pytest.mark.parametrize("name, resolution", [("resnet18", 64),
                                              pytest.param("vit_tiny", 224,
                                                           marks=pytest.mark.slow)])
def test_resnet18_and_vit_tiny(name, resolution, exports):
    model = randomize(load_user_model(f"{ROOT / 'benchmarks' / 'models.py'}:{name}"))
    path = export(model, (torch.randn(1, 3, resolution, resolution),), exports / f"{name}.onnx",
                  dynamic={"input": {0: "N"}})
    ours = read_onnx(path, batch=2)
    theirs = trace(model, (2, 3, resolution, resolution))
    assert_like_tracer(ours, theirs, params=true_params(model)
                       - folded_batch_norm_channels(theirs))
    if name == "vit_tiny":
        # the exporter writes F.scaled_dot_product_attention as Mul, MatMul, Softmax, MatMul and
        # nn.GELU as Div/Erf/Add/Mul/Mul: read back as the tracer's one op each
        ops = Counter(layer.op for layer in ours.layers)
        assert ops["scaled_dot_product_attention"] == ops["gelu"] == 12
        assert ours.ledger.ignored["softmax"][1] == IGNORE_RULES["idiom"]
        attention = next(la for la in ours.layers if la.op == "scaled_dot_product_attention")
        # Q·Kᵀ and A·V for 2 images × 3 heads of 197 tokens × 64 channels
        assert attention.gemms == (Gemm(6, 197, 197, 64), Gemm(6, 197, 64, 197))
        assert attention.macs == 2 * 6 * 197 * 197 * 64 == 29_805_312
        assert attention.module == "blocks.0.attn"


# -- held-out kinds -------------------------------------------------------------------------------

def _held_out_params(name: str, model: nn.Module, theirs: LayerGraph) -> int:
    params = true_params(model) - folded_batch_norm_channels(theirs)
    if name == "swin":
        # the exporter stores each block's table[index] gathered: (1, heads, N, N) = 2·16·16
        # values in place of the (2·4 − 1)² × 2 table
        params += 2 * (2 * 16 * 16 - 7 * 7 * 2)
    return params


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed", "dynamic"])
@pytest.mark.parametrize("name", list(HELD_OUT))
def test_held_out_kinds_read_as_the_tracer_traces_them(name, dynamic, exports):
    factory, export_shape, read_shape = HELD_OUT[name]
    model = randomize(factory())
    path = export(model, (torch.randn(export_shape),), exports / f"{name}-{dynamic}.onnx",
                  dynamic=DYNAMIC_IMAGE if dynamic else None)
    shape = read_shape if dynamic else export_shape
    ours = read_onnx(path, [shape])
    theirs = trace(model, shape)
    assert_like_tracer(ours, theirs, params=_held_out_params(name, model, theirs))


def test_held_out_graphs_have_the_runtime_output_sizes(exports):
    """onnxruntime runs the exported FPN (six outputs) and U-Net: the reader's output tensors
    are the sizes it returns."""
    import onnxruntime as ort

    for name, outputs in (("fpn", 6), ("unet", 1)):
        factory, export_shape, read_shape = HELD_OUT[name]
        path = export(randomize(factory()), (torch.randn(export_shape),),
                      exports / f"{name}-ort.onnx", dynamic=DYNAMIC_IMAGE)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": np.zeros(read_shape, dtype=np.float32)})
        graph = read_onnx(path, [read_shape])
        assert len(got) == len(graph.outputs) == outputs
        assert [t.elements for t in graph.outputs] == [a.size for a in got]


def test_held_out_ops_land_in_the_tracers_kinds(exports):
    factory, shape, _ = HELD_OUT["unet"]
    graph = read_onnx(export(randomize(factory()), (torch.randn(shape),),
                             exports / "unet-kinds.onnx"))
    ops = {layer.op: layer.kind.value for layer in graph.layers}
    assert ops["conv_transpose"] == "conv" and ops["concat"] == "data_movement"
    assert ops["resize"] == "data_movement" and ops["max_pool"] == "pooling"
    up = next(layer for layer in graph.layers if layer.op == "conv_transpose")
    # ConvTranspose2d(32, 16, 2, stride 2) on 8×8: every input pixel scatters 16 × 2×2 outputs
    # for each of its 32 channels
    assert up.macs == 8 * 8 * 32 * 16 * 2 * 2 == 131_072
    assert up.module == "up2" and up.output_shape == (1, 16, 16, 16)
    graph = read_onnx(export(randomize(HELD_OUT["pixel_shuffle"][0]()),
                             (torch.randn(1, 3, 16, 16),), exports / "ps-kinds.onnx"))
    assert [layer.op for layer in graph.layers if layer.kind is OpKind.DATA_MOVEMENT] == \
        ["depth_to_space"]


@pytest.mark.parametrize("sdpa", [False, True], ids=["written-out", "sdpa"])
def test_gpt_style_decoder(sdpa, exports):
    model = randomize(gpt(sdpa))
    path = export(model, (torch.zeros(1, 16, dtype=torch.long),), exports / f"gpt-{sdpa}.onnx",
                  names=("ids",), dynamic={"ids": {0: "N", 1: "T"}})
    ours = read_onnx(path, [InputSpec((2, 12), "int64", "ids")])
    # The tracer feeds a float tensor: the wrapper casts it to token ids, one copy more
    theirs = trace(IdsFromFloat(model), (2, 12))
    # The output head is tied to the token embedding: the exporter stores the head's Wᵀ as an
    # initializer of its own, which the reader recognises as the same parameter.
    assert_like_tracer(ours, theirs, params=true_params(model), extra_kernels=1, rel=0.05)
    embedding = ours.layers[0]
    assert embedding.op == "gather" and embedding.kind is OpKind.DATA_MOVEMENT
    assert embedding.params == 97 * 32  # the whole table, once
    assert embedding.weight_elements == 2 * 12 * 32  # what it reads: one 32-wide row per id
    assert embedding.inputs[0].element_bytes == 8  # int64 token ids whatever the precision
    ops = Counter(layer.op for layer in ours.layers)
    assert ops["layer_normalization"] == 5 and ops["gelu"] == 2
    if sdpa:
        assert ops["scaled_dot_product_attention"] == 2
    else:
        # q @ kᵀ, the scale, the causal mask, softmax, @ v: the ops the tracer sees too
        assert ops["mat_mul"] == 2 * 2 + 2 * 4 + 1 and ops["where"] == 2
        mask = next(layer for layer in ours.layers if layer.op == "where")
        assert mask.weight_elements == 12 * 12 and mask.params == 0  # a bool buffer


def test_recurrent_layers_from_first_principles(exports):
    """The tracer has no rule for aten.lstm/gru/rnn (unknown, 0 MACs): checked by arithmetic."""
    model = randomize(Recurrent())
    path = export(model, (torch.randn(2, 7, 8),), exports / "rnn.onnx",
                  dynamic={"input": {0: "N", 1: "T"}})
    graph = read_onnx(path, [(3, 5, 8)])  # batch 3, 5 steps, 8 features
    cells = {layer.name: layer for layer in graph.layers if layer.op in ("lstm", "gru", "rnn")}
    assert list(cells) == ["/lstm/LSTM", "/lstm/LSTM_1", "/gru/GRU", "/rnn/RNN"]
    assert all(c.kind is OpKind.LINEAR for c in cells.values())
    # gates × hidden × (input + hidden) per step, batch row and direction
    steps_rows = 5 * 3
    assert cells["/lstm/LSTM"].macs == 2 * steps_rows * 4 * 16 * (8 + 16) == 46_080
    assert cells["/lstm/LSTM_1"].macs == 2 * steps_rows * 4 * 16 * (32 + 16) == 92_160
    assert cells["/gru/GRU"].macs == steps_rows * 3 * 16 * (32 + 16) == 34_560
    assert cells["/rnn/RNN"].macs == steps_rows * 1 * 16 * (16 + 16) == 7_680
    # the input products of all steps are one GEMM; the recurrent ones run step by step
    assert cells["/lstm/LSTM"].gemms == (Gemm(2, 15, 64, 8), Gemm(10, 3, 64, 16))
    # b_ih and b_hh of both directions are the bias
    assert cells["/lstm/LSTM"].bias_elements == 2 * 8 * 16
    assert graph.params == true_params(model)
    assert graph.macs == 46_080 + 92_160 + 34_560 + 7_680 + 3 * 16 * 4


# -- hand-built graphs: closed forms --------------------------------------------------------------

def _model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _init(name: str, shape: tuple[int, ...], dtype=np.float32) -> TensorProto:
    values = np.random.default_rng(len(name)).standard_normal(shape).astype(dtype)
    return numpy_helper.from_array(values, name)


def test_closed_forms_of_a_small_graph(tmp_path):
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/stem/Conv", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="/stem/act/Relu"),
        helper.make_node("Conv", ["r", "dw"], ["d"], name="/blocks/blocks.0/dw/Conv",
                         group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["d", "r"], ["s"], name="/blocks/blocks.0/Add"),
        helper.make_node("GlobalAveragePool", ["s"], ["p"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["v"], name="/Flatten"),
        helper.make_node("Gemm", ["v", "fc", "fcb"], ["y"], name="/fc/Gemm", transB=1),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", f, ["N", 3, "H", "W"])],
                   [helper.make_tensor_value_info("y", f, None)],
                   [_init("w", (8, 3, 3, 3)), _init("b", (8,)), _init("dw", (8, 1, 3, 3)),
                    _init("fc", (10, 8)), _init("fcb", (10,))])
    graph = read_onnx(_save(model, tmp_path / "small.onnx"), batch=2, resolution=32)
    conv, relu, dw, add, pool, fc = graph.layers
    assert (conv.name, conv.module, conv.op, conv.kind) == ("/stem/Conv", "stem", "conv",
                                                            OpKind.CONV)
    assert conv.output_shape == (2, 8, 16, 16)  # (32 + 2 − 3) // 2 + 1 = 16
    assert conv.macs == 2 * 16 * 16 * 8 * 3 * 9 == 110_592
    assert conv.gemms == (Gemm(1, 512, 8, 27),)
    assert (conv.weight_elements, conv.bias_elements, conv.params) == (216, 8, 224)
    assert conv.input_bytes == 2 * 3 * 32 * 32 * 4 and conv.output_bytes == 2 * 8 * 256 * 4
    assert relu.kind is OpKind.ACTIVATION and relu.module == "stem.act"
    assert dw.kind is OpKind.DEPTHWISE_CONV and dw.module == "blocks.0.dw"
    assert dw.macs == 2 * 16 * 16 * 8 * 9 == 36_864 and dw.gemms == (Gemm(8, 512, 1, 9),)
    assert add.kind is OpKind.ELEMENTWISE and len(add.inputs) == 2
    assert pool.kind is OpKind.POOLING and pool.output_shape == (2, 8, 1, 1)
    assert fc.kind is OpKind.LINEAR and fc.macs == 2 * 8 * 10 == 160
    assert (fc.weight_elements, fc.bias_elements) == (80, 10)
    assert graph.params == 224 + 72 + 90
    assert graph.macs == 110_592 + 36_864 + 160
    assert graph.ledger.ignored["flatten"] == (1, IGNORE_RULES["view"])  # a view of (2, 8, 1, 1)
    assert dict(graph.ledger.counted) == {"conv": 2, "relu": 1, "add": 1,
                                          "global_average_pool": 1, "gemm": 1}
    assert graph.precision is None and graph.model_name == "small.onnx"
    assert LayerGraph.from_dict(graph.to_dict()) == graph


def test_matmul_by_a_constant_is_linear_and_tied_weights_count_once(tmp_path):
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Identity", ["w"], ["w_copy"]),  # the exporter's copy of a tied weight
        helper.make_node("MatMul", ["x", "w"], ["a"], name="/a/MatMul"),
        helper.make_node("MatMul", ["a", "w_copy"], ["b"], name="/b/MatMul"),
        helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["b", "bt"], ["y"], name="/scores/MatMul"),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", f, [2, 5, 16])],
                   [helper.make_tensor_value_info("y", f, None)], [_init("w", (16, 16))])
    graph = read_onnx(_save(model, tmp_path / "tied.onnx"))
    a, b, scores = graph.layers
    assert a.kind is b.kind is OpKind.LINEAR and scores.kind is OpKind.MATMUL
    assert a.gemms == (Gemm(1, 10, 16, 16),)  # one GEMM over the 2 × 5 rows
    assert scores.gemms == (Gemm(2, 5, 5, 16),)  # per batch element
    assert a.params == b.params == 256 and graph.params == 256  # the same parameter
    assert scores.inputs[0].id == scores.inputs[1].id == b.outputs[0].id  # Transpose: a view
    assert scores.inputs[1].elements == 2 * 5 * 16


def test_unknown_op_is_a_layer_that_moves_its_bytes(tmp_path):
    f = TensorProto.FLOAT
    k = numpy_helper.from_array(np.array([3], dtype=np.int64), "k")
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/act/Relu"),
             helper.make_node("TopK", ["r", "k"], ["v", "i"], name="/topk/TopK", axis=1),
             helper.make_node("Neg", ["v"], ["y"], name="/Neg")]
    model = _model(nodes, [helper.make_tensor_value_info("x", f, [1, 8, 4])],
                   [helper.make_tensor_value_info("y", f, None)], [k])
    with pytest.warns(UnknownOpWarning, match="top_k ×1"):
        graph = read_onnx(_save(model, tmp_path / "topk.onnx"))
    assert graph.unknown_ops == ["top_k"] and dict(graph.ledger.unknown) == {"top_k": 1}
    topk = graph["/topk/TopK"]
    assert topk.kind is OpKind.UNKNOWN and topk.macs == 0
    assert topk.input_bytes == 8 * 4 * 4  # the Relu's output
    # values and indices: what an op without a rule writes is not known, so all of it counts
    # (as the tracer counts an unknown ATen op's outputs)
    assert topk.output_shapes == ((1, 3, 4), (1, 3, 4))
    assert topk.output_bytes == 3 * 4 * 4 + 3 * 4 * 8  # float values, int64 indices
    assert graph["/Neg"].inputs[0].id == topk.outputs[0].id  # the graph goes on
    assert "top_k" not in RULES


def test_an_op_without_shapes_is_a_one_line_trace_error(tmp_path):
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Mystery", ["x"], ["m"], name="/m/Mystery", domain="my.ops"),
             helper.make_node("Relu", ["m"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, [1, 4])],
                              [helper.make_tensor_value_info("y", f, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("my.ops", 1)])
    with pytest.raises(TraceError) as info:
        read_onnx(_save(model, tmp_path / "mystery.onnx"))
    assert "'/m/Mystery'" in str(info.value) and "\n" not in str(info.value)


def test_names_and_module_paths():
    assert module_path("/features/features.3/conv/Conv") == "features.3.conv"
    assert module_path("/features/features.1/conv/conv.0/conv.0.0/Conv") == \
        "features.1.conv.0.0"
    assert module_path("/blocks/blocks.0/mlp/mlp.1/Div_1") == "blocks.0.mlp.1"
    assert module_path("/Add") == module_path("Identity_12") == ""
    assert [snake_case(s) for s in ("MatMul", "QLinearConv", "LSTM", "GlobalAveragePool",
                                    "ReduceL2", "HardSwish")] == \
        ["mat_mul", "q_linear_conv", "lstm", "global_average_pool", "reduce_l2", "hard_swish"]


# -- layouts follow PyTorch -----------------------------------------------------------------------

def test_view_or_copy_follows_pytorch():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        shape = tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(2, 5)))
        base = torch.empty(shape)
        perm = tuple(int(p) for p in rng.permutation(len(shape)))
        t = base.permute(perm)
        if rng.random() < 0.3:
            t = t[..., ::2] if t.shape[-1] > 1 else t
        # merge two neighbouring dimensions, or split one
        dims = list(t.shape)
        i = int(rng.integers(0, len(dims) - 1))
        new = dims[:i] + [dims[i] * dims[i + 1]] + dims[i + 2:]
        try:
            expected = t.view(new).stride()
        except RuntimeError:
            expected = None
        got = view_strides(tuple(t.shape), t.stride(), tuple(new))
        assert got == (tuple(expected) if expected is not None else None), (t.shape, t.stride())
        checked += expected is None
    assert checked > 10  # copies were among the cases


@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (0, 3, 1, 2), (1, 0, 2, 3), (0, 1, 3, 2)])
def test_element_wise_outputs_keep_the_layout_pytorch_gives_them(perm):
    x = torch.empty(2, 3, 4, 5).permute(perm)
    bias = torch.empty(x.shape[-1])
    for other in (None, bias, torch.empty(x.shape)):
        y = torch.relu(x) if other is None else x + other
        operands = [(tuple(x.shape), x.stride())]
        if other is not None:
            operands.append((tuple(other.shape), other.stride()))
        assert elementwise_strides(operands, tuple(y.shape)) == y.stride()


# -- quantised graphs -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def quantised(exports: Path):
    """mobilenet_v2 and mobilenet_v3_small at 64 px: float export, quant_pre_process, then
    quantize_static (QDQ, and QOperator for v2) on four random calibration batches."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.standard_normal((1, 3, 64, 64),
                                                               dtype=np.float32)}
                                 for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    out = {}
    for name in ("mobilenet_v2", "mobilenet_v3_small"):
        model = randomize(zoo.create_model(name))
        fp32 = export(model, (torch.randn(1, 3, 64, 64),), exports / f"q-{name}.onnx")
        pre = exports / f"q-{name}-pre.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(fp32), str(pre))
            formats = [("qdq", QuantFormat.QDQ)]
            if name == "mobilenet_v2":
                formats.append(("qop", QuantFormat.QOperator))
            for label, fmt in formats:
                path = exports / f"q-{name}-{label}.onnx"
                quantize_static(str(pre), str(path), Batches(), quant_format=fmt)
                out[(name, label)] = path
        out[(name, "fp32")] = fp32
        out[(name, "model")] = model
    return out


def test_qdq_mobilenet_v2_is_int8_with_the_float_models_macs(quantised):
    graph = read_onnx(quantised[("mobilenet_v2", "qdq")])
    fp32 = read_onnx(quantised[("mobilenet_v2", "fp32")])
    model = quantised[("mobilenet_v2", "model")]
    theirs = trace(model, (1, 3, 64, 64))
    assert graph.precision == "int8" and fp32.precision is None
    assert graph.macs == fp32.macs == theirs.macs
    assert all_gemms(graph) == all_gemms(theirs) and mac_layers(graph) == mac_layers(theirs)
    assert graph.params == fp32.params == true_params(model) - folded_batch_norm_channels(theirs)
    assert graph.unknown_ops == []
    convs = [layer for layer in graph.layers if layer.kind in CONV_KINDS]
    for conv in convs:
        # int8 weights at 1 byte, int32 biases at 4
        assert conv.weight_bytes == conv.weight_elements + 4 * conv.bias_elements
        assert {t.element_bytes for t in conv.inputs + conv.outputs} == {1}
    # Every DQ → op → Q around a quantised kernel is fused away; what stays is the input's Q
    # and the DQ of the logits (a graph output in float)
    assert [layer.op for layer in graph.layers if "quantize" in layer.op] == \
        ["quantize_linear", "dequantize_linear"]
    assert graph.layers[0].inputs[0].element_bytes == 4  # the float image
    assert graph.layers[0].outputs[0].element_bytes == 1
    assert graph.ledger.ignored["dequantize_linear [qdq]"][1] == IGNORE_RULES["qdq"]
    # priced at int8 on every device; repriced at fp32 its int8 tensors stay 1 byte
    assert predict(graph, "cpu").precision == "int8"
    repriced = graph.at_precision("fp32")
    assert repriced.input_bytes == graph.input_bytes
    assert repriced.weight_bytes == 4 * sum(la.weight_elements + la.bias_elements
                                            for la in graph.layers)


def test_qdq_float_islands_carry_four_bytes(quantised):
    """MobileNetV3's hard-swish and squeeze-excite gate have no int8 kernel in ONNX Runtime:
    DQ → HardSigmoid → Q stays, in float."""
    graph = read_onnx(quantised[("mobilenet_v3_small", "qdq")])
    assert graph.precision == "int8"
    assert graph.macs == read_onnx(quantised[("mobilenet_v3_small", "fp32")]).macs
    gates = [layer for layer in graph.layers if layer.op == "hard_sigmoid"]
    assert gates and all(t.element_bytes == 4 for g in gates for t in g.inputs + g.outputs)
    dq = [layer for layer in graph.layers if layer.op == "dequantize_linear"]
    assert all(d.inputs[0].element_bytes == 1 and d.outputs[0].element_bytes == 4 for d in dq)
    assert len(dq) == len([la for la in graph.layers if la.op == "quantize_linear"])


def test_qoperator_form_reads_like_qdq(quantised):
    qop = read_onnx(quantised[("mobilenet_v2", "qop")])
    qdq = read_onnx(quantised[("mobilenet_v2", "qdq")])
    assert qop.precision == "int8" and qop.unknown_ops == []
    assert (qop.macs, qop.params, len(qop)) == (qdq.macs, qdq.params, len(qdq))
    assert Counter(la.op for la in qop.layers)["q_linear_conv"] == 52
    assert [la.kind for la in qop.layers] == [la.kind for la in qdq.layers]


# -- the model source -----------------------------------------------------------------------------

def test_onnx_files_are_a_model_source(exports, tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    model = randomize(zoo.create_model("mobilenet_v1", width=0.25))
    path = export(model, (torch.randn(1, 3, 64, 64),), tmp_path / "net.onnx",
                  dynamic=DYNAMIC_IMAGE)
    source = source_for(str(path))
    assert isinstance(source, OnnxSource) and source.kind == "onnx"
    assert source.short_name == "net.onnx" and not source.takes_width
    assert source.default_resolution() == 224  # a dynamic image size: roofline's default
    assert source.default_inputs(4, 160) == (InputSpec((4, 3, 160, 160), "float32", "input"),)
    variant = parse_variant(f"{path}:96", batch=2)
    assert variant.label == f"{path}:96" and variant.short_label == "net.onnx:96"
    graph = variant.trace()
    assert graph.input_shape == (2, 3, 96, 96) and graph.macs == trace(model, (2, 3, 96, 96)).macs
    assert variant.trace() == graph  # from the cache
    first = source.fingerprint()
    path.write_bytes(path.read_bytes() + b"")  # same content: same fingerprint
    assert source.fingerprint() == first
    export(randomize(zoo.create_model("mobilenet_v1", width=0.5)), (torch.randn(1, 3, 64, 64),),
           path, dynamic=DYNAMIC_IMAGE)
    assert source.fingerprint() != first  # new content, new cache entry
    assert parse_variant(f"{path}:96", batch=2).trace().params != graph.params


# -- bad input ------------------------------------------------------------------------------------

def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and isinstance(error.value, RooflineError)
    return text


def test_bad_input_is_one_line(exports, tmp_path):
    with pytest.raises(ModelLoadError) as info:
        read_onnx(tmp_path / "missing.onnx")
    assert "does not exist" in _one_line(info)
    text_file = tmp_path / "notes.onnx"
    text_file.write_text("not a model\n" * 20)
    with pytest.raises(ModelLoadError) as info:
        read_onnx(text_file)
    assert "is not an ONNX model" in _one_line(info)
    model = randomize(gpt())
    path = export(model, (torch.zeros(1, 16, dtype=torch.long),), exports / "gpt-bad.onnx",
                  names=("ids",), dynamic={"ids": {0: "N", 1: "T"}})
    with pytest.raises(UsageError) as info:
        read_onnx(path)
    assert _one_line(info) == ("dynamic dimension 1 ('T') of input 'ids' (N, T) is not bound: "
                               "give the input's shape (--input SHAPE[:DTYPE]; in Python "
                               "inputs= or dims={'T': size})")
    assert read_onnx(path, dims={"T": 8}).input_specs == (InputSpec((1, 8), "int64", "ids"),)
    with pytest.raises(UsageError) as info:
        read_onnx(path, resolution=224)
    assert "needs an image input" in _one_line(info)
    with pytest.raises(UsageError) as info:
        read_onnx(path, [InputSpec((1, 8), "int64", "tokens")])
    assert "has no input 'tokens'; its inputs are ids" in _one_line(info)
    with pytest.raises(UsageError) as info:
        read_onnx(path, [(1, 8, 3)])
    assert "is 2-d (N, T)" in _one_line(info)
    with pytest.raises(UsageError) as info:
        read_onnx(path, [InputSpec((1, 8), "bool", "ids")])
    assert "is int64 in the file, not bool" in _one_line(info)
    dynamic_image = export(randomize(HELD_OUT["unet"][0]()), (torch.randn(1, 3, 32, 32),),
                           exports / "unet-dyn.onnx", dynamic=DYNAMIC_IMAGE)
    with pytest.raises(UsageError) as info:
        read_onnx(dynamic_image)
    assert "dynamic dimension 2 ('H') of input 'input' (N, 3, H, W)" in _one_line(info)
    assert "a resolution" in str(info.value)
    with pytest.raises(UsageError) as info:
        parse_variant(f"{dynamic_image}@0.5")
    assert "one fixed network" in _one_line(info)
    with pytest.raises(UsageError) as info:
        OnnxSource(str(dynamic_image)).graph(0.5, (InputSpec((1, 3, 32, 32)),), "x")
    assert "one fixed network" in _one_line(info)
    with pytest.raises(ModelLoadError) as info:
        parse_variant(str(tmp_path / "nowhere.onnx"))
    assert "does not exist" in _one_line(info)
    assert math.isfinite(predict(read_onnx(dynamic_image, resolution=48), "cpu").latency_ms)


def test_windowed_pooling_has_the_same_work_from_onnx_as_traced(exports):
    from roofline.sources.pytorch.tracer import trace

    # MaxPool 3x3 s2 (ceil) and AvgPool 2x2 on 1x8x17x17: outputs 8x8 (ceil((17 - 3) / 2) + 1)
    # and 4x4: 8 * 64 * 9 = 4,608 and 8 * 16 * 4 = 512 window operations; the global pool none.
    model = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True), nn.AvgPool2d(2),
                          nn.AdaptiveAvgPool2d(1))
    x = torch.randn(1, 8, 17, 17)
    path = export(model, [x], exports / "pools.onnx")
    read = [layer.window_ops for layer in read_onnx(path, [x.shape]).layers]
    traced = [layer.window_ops for layer in trace(model, tuple(x.shape)).layers]
    assert read == traced == [4608, 512, 0]


def test_transcendental_functions_count_the_same_from_onnx_as_traced(exports):
    from roofline.sources.pytorch.tracer import trace

    # On 1x8x6x6 = 288 elements: sigmoid, SiLU (exported as Mul(x, Sigmoid(x)), read back as
    # one silu), tanh and GELU (Erf and its arithmetic, read back as one gelu) evaluate one
    # function per element each, 4 x 288 = 1,152; the ReLU and hard-swish none.
    class Gates(nn.Module):
        def forward(self, x):
            x = torch.sigmoid(torch.relu(x))
            x = nn.functional.silu(x)
            x = torch.tanh(nn.functional.hardswish(x))
            return nn.functional.gelu(x)

    x = torch.randn(1, 8, 6, 6)
    path = export(Gates(), [x], exports / "gates.onnx")
    read = read_onnx(path, [x.shape])
    traced = trace(Gates(), tuple(x.shape))
    assert sum(layer.transcendental_ops for layer in read.layers) == \
        sum(layer.transcendental_ops for layer in traced.layers) == 4 * 288
