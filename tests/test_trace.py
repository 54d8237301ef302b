"""Tests of the tracer (roofline.sources.pytorch.tracer) and its op table (.ops).

Every zoo model traces with no unknown op and matches every row of published_models.csv; every
other expected number is written as arithmetic beside it. Cross-checks against fvcore and
FlopCounterMode live in test_trace_crosscheck.py, fusion in test_fuse.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from roofline import zoo
from roofline.core.graph import Gemm, LayerGraph, OpKind
from roofline.errors import TraceError, UnknownNameError, UsageError
from roofline.sources.pytorch.ops import IGNORE_RULES
from roofline.sources.pytorch.tracer import UnknownOpWarning, trace
from roofline.sources.variant import Variant

ZOO = zoo.list_models()


class Fn(nn.Module):
    """A module whose forward is ``fn`` (for one-op models)."""

    def __init__(self, fn, **params: torch.Tensor):
        super().__init__()
        self.fn = fn
        for name, value in params.items():
            self.register_parameter(name, nn.Parameter(value))

    def forward(self, x):
        return self.fn(self, x)


def counted(graph: LayerGraph, op: str | None = None) -> list:
    return [layer for layer in graph.layers if op is None or layer.op == op]


def single(graph: LayerGraph, op: str):
    found = counted(graph, op)
    assert len(found) == 1, [(layer.name, layer.op) for layer in graph.layers]
    return found[0]


class OpCounter(TorchDispatchMode):
    """An independent count of the top-level ops a model dispatches (run on real tensors)."""

    def __init__(self):
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func._overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def dispatched_ops(model: nn.Module, x: torch.Tensor) -> Counter[str]:
    # inference_mode: composite ops (linear, batch_norm, einsum, ...) reach the mode whole,
    # as they reach the tracer.
    with torch.inference_mode(), OpCounter() as counter:
        model(x)
    return counter.ops


def ledger_ops(graph: LayerGraph) -> Counter[str]:
    ops: Counter[str] = Counter(graph.ledger.counted)
    for key, (n, _) in graph.ledger.ignored.items():
        ops[key.split(" [")[0]] += n
    ops.update(graph.ledger.unknown)
    return ops


# -- every zoo model ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_traces_without_unknown_ops(name):
    variant = Variant(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = trace(variant.build(meta=True), variant.input_shape, name=variant.label)
    assert [w for w in caught if issubclass(w.category, UnknownOpWarning)] == []
    assert graph.unknown_ops == [] and dict(graph.ledger.unknown) == {}
    assert OpKind.UNKNOWN not in graph.kind_counts()
    resolution = zoo.get_model_info(name).default_resolution
    assert graph.input_shape == (1, 3, resolution, resolution)
    assert graph.layers[-1].output_shape == (1, 1000)
    assert graph.model_name == f"{name}:{resolution}"


def _row_id(row) -> str:
    name, fig = row
    return f"{name}@{fig.width:g}:{fig.resolution}"


@pytest.mark.parametrize("row", zoo.published_figures(), ids=_row_id)
def test_traced_params_and_macs_match_published_rows(row):
    name, fig = row
    graph = Variant(name, fig.width, fig.resolution).trace()
    params_tol, macs_tol = fig.tolerances
    # exact rows equal exactly; approximate rows within the row's stated relative tolerance
    assert abs(graph.params - fig.params) <= params_tol * fig.params, (graph.params, fig)
    assert abs(graph.macs - fig.macs) <= macs_tol * fig.macs, (graph.macs, fig)


@pytest.mark.parametrize("name", ZOO)
def test_every_layer_is_its_gemms(name):
    graph = Variant(name).trace()
    for layer in graph.layers:
        assert layer.macs == sum(g.macs for g in layer.gemms), layer.name
        assert all(g.macs == g.groups * g.m * g.n * g.k for g in layer.gemms)
        if layer.kind in (OpKind.CONV, OpKind.POINTWISE_CONV, OpKind.DEPTHWISE_CONV):
            (gemm,) = layer.gemms
            n, c_out, *spatial = layer.output_shape
            assert gemm.m == n * spatial[0] * spatial[1]  # one GEMM row per output pixel
            assert gemm.groups * gemm.n == c_out
            assert gemm.groups * gemm.n * gemm.k == layer.weight_elements  # k = C_in/g × k×k
        if layer.kind is OpKind.DEPTHWISE_CONV:
            assert layer.gemms[0].n == 1 and layer.gemms[0].groups == layer.output_shape[1]
        if layer.kind is OpKind.POINTWISE_CONV:
            assert layer.gemms[0].k * layer.gemms[0].groups == layer.input_shapes[0][1]
        if layer.kind not in (OpKind.CONV, OpKind.POINTWISE_CONV, OpKind.DEPTHWISE_CONV,
                              OpKind.LINEAR, OpKind.MATMUL):
            assert layer.macs == 0 and layer.gemms == ()


# -- closed forms: convolutions -------------------------------------------------------------------

def test_regular_strided_conv():
    conv = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
    layer = single(trace(conv, (1, 3, 224, 224)), "conv2d")
    assert layer.kind is OpKind.CONV and layer.name == "conv2d" and layer.module == ""
    assert layer.input_shapes == ((1, 3, 224, 224),)
    assert layer.output_shape == (1, 32, 112, 112)  # (224 + 2·1 − 3) // 2 + 1 = 112
    assert layer.macs == 1 * 32 * 112 * 112 * 3 * 3 * 3 == 10_838_016
    assert layer.gemms == (Gemm(1, 112 * 112, 32, 27),)
    assert layer.params == layer.weight_elements == 32 * 3 * 3 * 3 == 864
    assert layer.bias_elements == 0
    assert layer.input_bytes == 3 * 224 * 224 * 4 == 602_112
    assert layer.output_bytes == 32 * 112 * 112 * 4 == 1_605_632
    assert layer.weight_bytes == 864 * 4


def test_strided_conv_without_padding():
    conv = nn.Conv2d(8, 16, 5, stride=3)
    layer = single(trace(conv, (2, 8, 32, 30)), "conv2d")
    assert layer.output_shape == (2, 16, 10, 9)  # (32 − 5) // 3 + 1 = 10, (30 − 5) // 3 + 1 = 9
    assert layer.macs == 2 * 16 * 10 * 9 * 8 * 5 * 5 == 576_000
    assert layer.gemms == (Gemm(1, 2 * 10 * 9, 16, 8 * 25),)
    assert layer.params == 16 * 8 * 25 + 16 == 3_216
    assert (layer.weight_elements, layer.bias_elements) == (3_200, 16)


def test_grouped_conv():
    conv = nn.Conv2d(32, 64, 3, padding=1, groups=4, bias=False)
    layer = single(trace(conv, (1, 32, 14, 14)), "conv2d")
    assert layer.kind is OpKind.CONV  # 8 input channels per group: not depthwise
    assert layer.output_shape == (1, 64, 14, 14)
    assert layer.macs == 64 * 14 * 14 * (32 // 4) * 3 * 3 == 903_168
    assert layer.gemms == (Gemm(4, 196, 16, 72),)  # 4 groups × (196 × 72)·(72 × 16)
    assert layer.weight_elements == 64 * 8 * 9 == 4_608


def test_depthwise_conv():
    conv = nn.Conv2d(96, 96, 3, stride=2, padding=1, groups=96, bias=False)
    layer = single(trace(conv, (1, 96, 112, 112)), "conv2d")
    assert layer.kind is OpKind.DEPTHWISE_CONV
    assert layer.output_shape == (1, 96, 56, 56)
    assert layer.macs == 96 * 56 * 56 * 3 * 3 == 2_709_504
    assert layer.gemms == (Gemm(96, 56 * 56, 1, 9),)
    assert layer.weight_elements == 96 * 9 == 864
    # a depth multiplier of 2 is still depthwise: one input channel per group
    multiplier = single(trace(nn.Conv2d(16, 32, 3, groups=16), (1, 16, 10, 10)), "conv2d")
    assert multiplier.kind is OpKind.DEPTHWISE_CONV
    assert multiplier.macs == 32 * 8 * 8 * 9 == 18_432
    assert multiplier.gemms == (Gemm(16, 64, 2, 9),)


def test_pointwise_conv():
    conv = nn.Conv2d(16, 96, 1)
    layer = single(trace(conv, (1, 16, 112, 112)), "conv2d")
    assert layer.kind is OpKind.POINTWISE_CONV
    assert layer.macs == 96 * 112 * 112 * 16 == 19_267_584
    assert layer.gemms == (Gemm(1, 112 * 112, 96, 16),)
    assert (layer.weight_elements, layer.bias_elements, layer.params) == (1_536, 96, 1_632)


def test_dilated_conv():
    conv = nn.Conv2d(3, 5, 3, dilation=3, padding=2, bias=False)
    layer = single(trace(conv, (1, 3, 17, 19)), "conv2d")
    # effective kernel 3·(3 − 1) + 1 = 7: (17 + 4 − 7) + 1 = 15, (19 + 4 − 7) + 1 = 17
    assert layer.output_shape == (1, 5, 15, 17)
    assert layer.macs == 15 * 17 * 5 * 3 * 3 * 3 == 34_425


def test_same_padding_conv():
    layer = single(trace(nn.Conv2d(3, 5, 5, padding="same"), (1, 3, 17, 19)), "conv2d")
    assert layer.output_shape == (1, 5, 17, 19)
    assert layer.macs == 17 * 19 * 5 * 3 * 25 == 121_125


def test_conv1d_and_conv3d():
    conv1d = nn.Conv1d(4, 8, 5, stride=2, padding=3, dilation=2, groups=2)
    layer = single(trace(conv1d, (2, 4, 33)), "conv1d")
    assert layer.output_shape == (2, 8, 16)  # (33 + 6 − 2·4 − 1) // 2 + 1 = 16
    assert layer.macs == 2 * 8 * 16 * (4 // 2) * 5 == 2_560
    assert layer.kind is OpKind.CONV
    conv3d = nn.Conv3d(3, 6, 3, stride=(1, 2, 2), padding=1)
    layer = single(trace(conv3d, (1, 3, 5, 9, 9)), "conv3d")
    assert layer.output_shape == (1, 6, 5, 5, 5)  # (9 + 2 − 3) // 2 + 1 = 5
    assert layer.macs == 6 * 5 * 5 * 5 * 3 * 27 == 60_750


def test_transposed_conv_closed_form():
    deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
    layer = single(trace(deconv, (2, 6, 7, 7)), "conv_transpose2d")
    assert layer.kind is OpKind.CONV
    assert layer.output_shape == (2, 4, 14, 14)  # (7 − 1)·2 − 2 + 3 + 1 = 14
    # every input pixel scatters into C_out/g × 3×3 outputs for each of its C_in/g channels
    assert layer.macs == 2 * 7 * 7 * 6 * (4 // 2) * 3 * 3 == 10_584
    assert layer.gemms == (Gemm(2, 98, 2 * 9, 3),)
    assert (layer.weight_elements, layer.bias_elements) == (6 * 2 * 9, 4)
    depthwise = nn.ConvTranspose1d(4, 4, 4, stride=2, groups=4, bias=False)
    layer = single(trace(depthwise, (1, 4, 10)), "conv_transpose1d")
    assert layer.kind is OpKind.DEPTHWISE_CONV
    assert layer.output_shape == (1, 4, 22)  # (10 − 1)·2 + 4 = 22
    assert layer.macs == 10 * 4 * 1 * 4 == 160


# -- closed forms: linear layers and matrix products ----------------------------------------------

def test_linear_2d_and_3d():
    fc = nn.Linear(1280, 1000)
    layer = single(trace(fc, (2, 1280)), "linear")
    assert layer.kind is OpKind.LINEAR and layer.output_shape == (2, 1000)
    assert layer.macs == 2 * 1280 * 1000 == 2_560_000
    assert layer.gemms == (Gemm(1, 2, 1000, 1280),)
    assert layer.params == 1280 * 1000 + 1000 == 1_281_000
    assert (layer.weight_elements, layer.bias_elements) == (1_280_000, 1_000)
    tokens = single(trace(nn.Linear(64, 256, bias=False), (2, 49, 64)), "linear")
    assert tokens.output_shape == (2, 49, 256)
    assert tokens.macs == 2 * 49 * 64 * 256 == 1_605_632
    assert tokens.gemms == (Gemm(1, 98, 256, 64),)


def test_matmul_batched_broadcast_and_with_a_weight():
    x = (2, 4, 100, 32)
    batched = single(trace(Fn(lambda m, x: x @ x.transpose(-1, -2)), x), "matmul")
    assert batched.kind is OpKind.MATMUL  # both operands are activations
    assert batched.output_shape == (2, 4, 100, 100)
    assert batched.macs == 2 * 4 * 100 * 100 * 32 == 2_560_000
    assert batched.gemms == (Gemm(8, 100, 100, 32),)
    # a (32, 10) activation broadcast over the (2, 4) batch dimensions
    broadcast = single(trace(Fn(lambda m, x: torch.matmul(x, x[0, 0, :10].t())), x), "matmul")
    assert broadcast.output_shape == (2, 4, 100, 10)
    assert broadcast.macs == 2 * 4 * 100 * 10 * 32 == 256_000
    assert broadcast.gemms == (Gemm(8, 100, 10, 32),)
    # activation × parameter is a linear layer
    weight = single(trace(Fn(lambda m, x: x @ m.w, w=torch.zeros(32, 50)), x), "matmul")
    assert weight.kind is OpKind.LINEAR and weight.params == 32 * 50
    assert weight.macs == 2 * 4 * 100 * 50 * 32 == 1_280_000
    vector = single(trace(Fn(lambda m, x: x[0, 0, 0] @ x[0, 0].t()), x), "matmul")
    assert vector.output_shape == (100,) and vector.macs == 100 * 32 == 3_200


def test_einsum_closed_form():
    q = (2, 4, 100, 32)
    scores = single(trace(Fn(lambda m, x: torch.einsum("bhid,bhjd->bhij", x, x)), q), "einsum")
    assert scores.kind is OpKind.MATMUL and scores.output_shape == (2, 4, 100, 100)
    assert scores.macs == 2 * 4 * 100 * 100 * 32 == 2_560_000
    assert scores.gemms == (Gemm(8, 100, 100, 32),)
    ellipsis = single(trace(Fn(lambda m, x: torch.einsum("...id,...jd->...ij", x, x)), q),
                      "einsum")
    assert ellipsis.macs == 2_560_000 and ellipsis.output_shape == (2, 4, 100, 100)
    # "...ij,jk": (2, 4, 100, 32) · (32, 7) broadcast, implicit output "...ik"
    right = single(trace(Fn(lambda m, x: torch.einsum("...ij,jk", x, x[0, 0, :32, :7])), q),
                   "einsum")
    assert right.output_shape == (2, 4, 100, 7)
    assert right.macs == 2 * 4 * 100 * 7 * 32 == 179_200
    # the implicit output of "bij,bjk" is "ik" (letters used once): b and j are summed over
    three = (3, 5, 5)
    implicit = single(trace(Fn(lambda m, x: torch.einsum("bij,bjk", x, x)), three), "einsum")
    assert implicit.output_shape == (5, 5) and implicit.macs == 5 * 5 * (3 * 5) == 375
    assert implicit.gemms == (Gemm(1, 5, 5, 15),)


def test_scaled_dot_product_attention():
    qkv = (2, 4, 100, 32)
    layer = single(trace(Fn(lambda m, x: F.scaled_dot_product_attention(x, x, x)), qkv),
                   "scaled_dot_product_attention")
    assert layer.kind is OpKind.MATMUL and layer.output_shape == qkv
    q_kt = 2 * 4 * 100 * 100 * 32  # Q·Kᵀ: (100 × 32)·(32 × 100) per (batch, head)
    a_v = 2 * 4 * 100 * 100 * 32  # A·V: (100 × 100)·(100 × 32)
    assert layer.macs == q_kt + a_v == 5_120_000
    assert layer.gemms == (Gemm(8, 100, 100, 32), Gemm(8, 100, 32, 100))

    def cross(m, x):  # L = 64 queries, S = 49 keys, E = 16, Ev = 8, all slices of the input
        return F.scaled_dot_product_attention(x[:, :, :64], x[:, :, 64:], x[:, :, 64:, :8])

    layer = single(trace(Fn(cross), (1, 2, 113, 16)), "scaled_dot_product_attention")
    assert layer.output_shape == (1, 2, 64, 8)
    assert layer.macs == 2 * 64 * 49 * 16 + 2 * 64 * 49 * 8 == 100_352 + 50_176 == 150_528


# -- bytes and precisions -------------------------------------------------------------------------

@pytest.mark.parametrize("precision, element, bias", [("fp32", 4, 4), ("fp16", 2, 2),
                                                      ("int8", 1, 4)])
def test_bytes_per_precision(precision, element, bias):
    conv = nn.Conv2d(16, 32, 3, padding=1)  # 32·16·9 = 4,608 weights and 32 biases
    graph = trace(conv, (1, 16, 8, 8), precision)
    layer = single(graph, "conv2d")
    assert layer.precision == graph.precision == precision
    # int8 kernels keep biases in the int32 accumulator (TFLite quantization spec)
    assert layer.weight_bytes == 4_608 * element + 32 * bias
    assert layer.input_bytes == 16 * 8 * 8 * element
    assert layer.output_bytes == 32 * 8 * 8 * element
    assert layer.total_bytes == layer.weight_bytes + layer.input_bytes + layer.output_bytes
    assert layer.intensity == layer.macs / layer.total_bytes
    assert layer.macs == 32 * 64 * 16 * 9 == 294_912  # MACs do not depend on precision
    fp32 = trace(conv, (1, 16, 8, 8))
    assert fp32.at_precision(precision) == graph


def test_at_precision():
    graph = Variant("mobilenet_v2").trace()
    # Traced without a precision: priced at each device's own; its bytes shown at fp32.
    assert graph.precision is None and graph.byte_precision == "fp32"
    assert graph.at_precision(None) is graph
    fp32 = graph.at_precision("fp32")
    assert fp32.precision == "fp32" and fp32.at_precision("fp32") is fp32
    assert (fp32.weight_bytes, fp32.input_bytes) == (graph.weight_bytes, graph.input_bytes)
    int8 = graph.at_precision("int8")
    assert int8.macs == graph.macs and int8.params == graph.params
    assert all(layer.precision == "int8" for layer in int8.layers)
    assert int8.input_bytes * 4 == graph.input_bytes  # activations: 1 byte against 4
    assert int8.output_bytes * 4 == graph.output_bytes
    biases = sum(layer.bias_elements for layer in graph.layers)
    weights = sum(layer.weight_elements for layer in graph.layers)
    assert graph.weight_bytes == 4 * (weights + biases)
    assert int8.weight_bytes == weights + 4 * biases
    assert int8.at_precision("fp32") == fp32
    assert int8.at_precision(None) == graph
    with pytest.raises(UnknownNameError, match="unknown precision 'fp8'"):
        graph.at_precision("fp8")


def test_graph_serialises_and_exports():
    graph = Variant("mobilenet_v4_hybrid_medium").trace()
    assert LayerGraph.from_dict(json.loads(json.dumps(graph.to_dict()))) == graph
    frame = graph.to_dataframe()
    assert len(frame) == len(graph) and frame["macs"].sum() == graph.macs
    assert frame["weight_bytes"].sum() == graph.weight_bytes
    assert graph.summary()["macs"] == graph.macs and graph.summary()["layers"] == len(graph)
    assert graph[graph.layers[3].name] is graph.layers[3]
    assert graph.activation_bytes == graph.input_bytes + graph.output_bytes
    assert graph.total_bytes == graph.weight_bytes + graph.activation_bytes
    assert len({layer.name for layer in graph.layers}) == len(graph)  # names are unique


# -- op kinds -------------------------------------------------------------------------------------

class EveryKind(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.Hardswish()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.act(self.bn(self.pw(self.dw(self.conv(x)))))
        x = self.pool(x) + 1  # (1, 8, 4, 4)
        t = torch.cat([x, x], 1).flatten(2)  # (1, 16, 16)
        a = t @ t.transpose(1, 2)  # (1, 16, 16)
        return self.fc(a.mean(-1, keepdim=True).expand(1, 16, 8))


def test_op_kinds():
    graph = trace(EveryKind(), (1, 3, 8, 8))
    kinds = [(layer.name, layer.kind.value) for layer in graph.layers]
    assert kinds == [
        ("conv", "conv"), ("dw", "depthwise_conv"), ("pw", "pointwise_conv"),
        ("bn", "normalization"), ("act", "activation"), ("pool", "pooling"),
        ("add", "elementwise"), ("cat", "data_movement"), ("matmul", "matmul"),
        ("mean", "pooling"), ("fc", "linear"),
    ]
    assert {kind.value for kind in OpKind} == {k for _, k in kinds} | {"unknown"}


def test_norm_reduces_the_given_dimension():
    shape = (2, 3, 4, 5)
    for fn in (lambda m, x: F.normalize(x, dim=1), lambda m, x: x.norm(2, 1, True),
               lambda m, x: torch.linalg.vector_norm(x, 2, (1, 3)),
               lambda m, x: x.mean((2, 3), keepdim=True), lambda m, x: x.sum(-1)):
        graph = trace(Fn(fn), shape)
        eager = fn(None, torch.randn(shape))
        assert graph.layers[0].kind is OpKind.POOLING
        assert graph.layers[-1].output_shape == tuple(eager.shape)
    norm = trace(Fn(lambda m, x: F.normalize(x, dim=1)), shape).layers[0]
    assert norm.output_shape == (2, 1, 4, 5)


def test_pooling_shapes_follow_pytorch():
    x = torch.randn(2, 3, 12, 13)
    for fn in (lambda m, x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
               lambda m, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
               lambda m, x: F.max_pool2d(x, 3, 2, 1, dilation=2),
               lambda m, x: F.avg_pool2d(x, (2, 3)),
               lambda m, x: F.adaptive_avg_pool2d(x, (5, None)),
               lambda m, x: F.adaptive_max_pool2d(x, 3),
               lambda m, x: F.adaptive_avg_pool1d(x.flatten(2), 7)):
        layer = trace(Fn(fn), tuple(x.shape)).layers[-1]
        assert layer.kind is OpKind.POOLING
        assert layer.output_shape == tuple(fn(None, x).shape)


# -- functional code ------------------------------------------------------------------------------

class Block(nn.Module):
    """conv-BN-ReLU, a squeeze-excite written with F.*, a layer scale and a residual add."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.reduce = nn.Conv2d(channels, 4, 1)
        self.expand = nn.Conv2d(4, channels, 1)
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), 0.1))

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        s = F.adaptive_avg_pool2d(y, 1)
        s = F.hardswish(self.expand(F.relu(self.reduce(s))))
        y = y * s  # squeeze-excite gate
        y = self.gamma * y  # layer scale: a parameter used directly
        return x + y  # residual


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(Block(16), Block(16))
        self.proj = nn.Linear(16, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        x.relu_()  # in place
        x = self.blocks(x)
        a, b = x.chunk(2, dim=1)  # views
        x = torch.cat([b, a], dim=1)  # a copy
        x = F.pad(x, (1, 1, 1, 1))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # views: (n, h·w, c)
        t = self.proj(t)  # (n, h·w, 32)
        q = t.view(n, h * w, 4, 8).permute(0, 2, 1, 3)  # views: (n, 4 heads, h·w, 8)
        scores = torch.matmul(q, q.transpose(-1, -2)).softmax(-1)
        mixed = torch.einsum("bhij,bhjd->bhid", scores, q)
        mixed += F.scaled_dot_product_attention(q, q, q)  # in place
        o = mixed.transpose(1, 2).reshape(n, h * w, 32)  # cannot be a view: a copy
        o = o.permute(0, 2, 1).contiguous()  # contiguous of a permuted tensor: a copy
        o = F.gelu(o.view(n, 32, h, w))  # a view of a contiguous tensor
        return self.head(o.mean((2, 3)))


FUNCTIONAL_INPUT = (2, 3, 16, 16)


@pytest.fixture(scope="module")
def functional_graph() -> LayerGraph:
    return trace(Functional(), FUNCTIONAL_INPUT)


def test_functional_ops_land_in_their_kinds_and_modules(functional_graph):
    block = [("{b}.conv", "{b}.conv", "conv2d", "conv"),
             ("{b}.bn", "{b}.bn", "batch_norm", "normalization"),
             ("{b}.relu", "{b}", "relu", "activation"),
             ("{b}.adaptive_avg_pool2d", "{b}", "adaptive_avg_pool2d", "pooling"),
             ("{b}.reduce", "{b}.reduce", "conv2d", "pointwise_conv"),
             ("{b}.relu_1", "{b}", "relu", "activation"),
             ("{b}.expand", "{b}.expand", "conv2d", "pointwise_conv"),
             ("{b}.hardswish", "{b}", "hardswish", "activation"),
             ("{b}.mul", "{b}", "mul", "elementwise"),
             ("{b}.mul_1", "{b}", "mul", "elementwise"),
             ("{b}.add", "{b}", "add", "elementwise")]
    expected = [("stem", "stem", "conv2d", "conv"), ("relu_", "", "relu_", "activation")]
    for b in ("blocks.0", "blocks.1"):
        expected += [tuple(s.format(b=b) for s in row) for row in block]
    expected += [("cat", "", "cat", "data_movement"), ("pad", "", "pad", "data_movement"),
                 ("upsample_nearest2d", "", "upsample_nearest2d", "data_movement"),
                 ("proj", "proj", "linear", "linear"), ("matmul", "", "matmul", "matmul"),
                 ("softmax", "", "softmax", "activation"), ("einsum", "", "einsum", "matmul"),
                 ("scaled_dot_product_attention", "", "scaled_dot_product_attention",
                  "matmul"),
                 ("add_", "", "add_", "elementwise"),
                 ("reshape", "", "reshape", "data_movement"),
                 ("contiguous", "", "contiguous", "data_movement"),
                 ("gelu", "", "gelu", "activation"), ("mean", "", "mean", "pooling"),
                 ("head", "head", "linear", "linear")]
    got = [(layer.name, layer.module, layer.op, layer.kind.value)
           for layer in functional_graph.layers]
    assert got == expected
    types = {layer.module: layer.module_type for layer in functional_graph.layers}
    assert types["blocks.0"] == "Block" and types[""] == "Functional"
    assert types["blocks.1.bn"] == "BatchNorm2d"


def test_functional_macs_and_weights(functional_graph):
    g = functional_graph
    assert g["stem"].macs == 2 * 16 * 8 * 8 * 3 * 9 == 55_296
    assert g["blocks.0.conv"].macs == 2 * 16 * 8 * 8 * 16 * 9 == 294_912
    assert g["blocks.0.reduce"].macs == 2 * 4 * 16 == 128  # on the pooled 1×1 map
    # layer scale: the parameter is a weight of the multiply
    scale = g["blocks.0.mul_1"]
    assert (scale.params, scale.weight_elements, scale.inputs[0].elements) == (16, 16, 2_048)
    assert g["blocks.0.mul"].input_shapes == ((2, 16, 8, 8), (2, 16, 1, 1))  # SE gate
    assert g["blocks.0.bn"].weight_elements == 4 * 16  # γ, β, running mean and variance
    assert g["blocks.0.bn"].params == 2 * 16
    assert g["proj"].macs == 2 * 400 * 16 * 32 == 409_600  # 20×20 tokens after interpolate
    assert g["matmul"].macs == g["einsum"].macs == 2 * 4 * 400 * 400 * 8 == 10_240_000
    assert g["scaled_dot_product_attention"].macs == 2 * 10_240_000
    assert g["head"].macs == 2 * 32 * 10 == 640
    assert g.macs == 55_296 + 2 * (294_912 + 128 + 128) + 409_600 + 4 * 10_240_000 + 640
    assert g.params == sum(p.numel() for p in Functional().parameters()) == 6_322


def test_functional_views_are_ignored_and_copies_move_bytes(functional_graph):
    g = functional_graph
    view_rule = IGNORE_RULES["view"]
    assert dict(g.ledger.ignored) == {
        "chunk": (1, view_rule), "flatten": (1, view_rule), "transpose": (3, view_rule),
        "view": (2, view_rule), "permute": (2, view_rule)}
    # the chunk halves are views of the block output: the cat reads both, 2·16·8·8 elements
    cat = g["cat"]
    assert cat.input_shapes == ((2, 8, 8, 8), (2, 8, 8, 8))
    assert cat.input_bytes == cat.output_bytes == 2 * 16 * 8 * 8 * 4 == 8_192
    assert {t.id for t in cat.inputs} == {g["blocks.1.add"].outputs[0].id}
    pad = g["pad"]
    assert pad.output_shape == (2, 16, 10, 10) and pad.output_bytes == 2 * 16 * 100 * 4
    assert g["upsample_nearest2d"].output_shape == (2, 16, 20, 20)
    reshape = g["reshape"]
    assert reshape.input_shapes == ((2, 400, 4, 8),) and reshape.output_shape == (2, 400, 32)
    assert reshape.input_bytes == reshape.output_bytes == 2 * 400 * 32 * 4 == 102_400
    contiguous = g["contiguous"]
    assert contiguous.input_shapes == ((2, 32, 400),)
    assert contiguous.output_bytes == 102_400
    # views pass their base's tensor on: proj's output feeds matmul, einsum and attention
    proj_out = g["proj"].outputs[0].id
    for op in ("matmul", "einsum", "scaled_dot_product_attention"):
        assert proj_out in {t.id for t in g[op].inputs}
    assert g["gelu"].inputs[0].id == contiguous.outputs[0].id


def test_in_place_ops_write_a_new_version(functional_graph):
    g = functional_graph
    relu_ = g["relu_"]
    assert relu_.inputs[0].id == g["stem"].outputs[0].id
    assert relu_.outputs[0].id != relu_.inputs[0].id
    assert g["blocks.0.conv"].inputs[0].id == relu_.outputs[0].id  # reads the new version
    add_ = g["add_"]
    assert {t.id for t in add_.inputs} == {g["einsum"].outputs[0].id,
                                           g["scaled_dot_product_attention"].outputs[0].id}
    assert g["reshape"].inputs[0].id == add_.outputs[0].id


def test_ledger_accounts_for_every_op(functional_graph):
    ops = dispatched_ops(Functional().eval(), torch.randn(FUNCTIONAL_INPUT))
    assert ledger_ops(functional_graph) == ops
    # 38 layers (listed in test_functional_ops_land_in_their_kinds_and_modules) + 9 views
    assert sum(functional_graph.ledger.counted.values()) == len(functional_graph) == 38
    assert functional_graph.ledger.total_ops == sum(ops.values()) == 38 + 9


class LayoutTricks(nn.Module):
    """Element-wise ops keep a permuted layout in PyTorch; what is a view or a copy follows."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        y = F.gelu(x.permute(0, 2, 3, 1)).contiguous()  # gelu keeps NHWC strides: a copy
        z = (x.transpose(1, 2) + 1).transpose(1, 2).view(2, -1)  # back to contiguous: a view
        w = (self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) * 2).reshape(2, -1)  # a copy
        return y.sum() + z.sum() + w.sum()


def test_strides_follow_pytorch():
    model = LayoutTricks()
    graph = trace(model, (2, 8, 5, 5))
    assert ledger_ops(graph) == dispatched_ops(model, torch.randn(2, 8, 5, 5))
    copies = [layer.op for layer in graph.layers if layer.kind is OpKind.DATA_MOVEMENT]
    assert copies == ["contiguous", "reshape"]
    assert graph["contiguous"].output_bytes == 2 * 8 * 5 * 5 * 4 == 1_600
    assert graph.ledger.ignored["view"][0] == 1


def test_masks_and_casts_keep_their_dtype():
    def gather(m, x):
        index = (x.abs() * 2).clamp(max=2).long()  # a cast made from shapes alone
        return torch.gather(x, 1, index)

    graph = trace(Fn(gather), (2, 3, 4))
    assert graph["gather"].kind is OpKind.DATA_MOVEMENT
    assert graph["gather"].output_shape == (2, 3, 4)

    def mask(m, x):
        t = x.transpose(1, 2)
        return t.masked_fill(x.transpose(1, 2).contiguous() > 0, 0.0)

    graph = trace(Fn(mask), (2, 3, 4))
    assert graph["masked_fill"].output_shape == (2, 4, 3)


# -- unknown ops and errors -----------------------------------------------------------------------

class Sorter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        values, _ = torch.sort(self.conv(x), dim=1)
        top, _ = torch.topk(values, 3, dim=1)
        return top.relu()


def test_unknown_op_is_reported_and_still_moves_bytes():
    with pytest.warns(UnknownOpWarning) as caught:
        graph = trace(Sorter(), (1, 3, 4, 4))
    (warning,) = caught
    assert "sort ×1" in str(warning.message) and "topk ×1" in str(warning.message)
    assert "2 op type(s) have no cost rule" in str(warning.message)
    assert graph.unknown_ops == ["sort", "topk"]
    assert dict(graph.ledger.unknown) == {"sort": 1, "topk": 1}
    sort = graph["sort"]
    assert sort.kind is OpKind.UNKNOWN and sort.macs == 0
    assert sort.input_bytes == 8 * 4 * 4 * 4 == 512
    assert sort.output_shapes == ((1, 8, 4, 4), (1, 8, 4, 4))  # values and indices
    # fp32 values and int64 indices: the indices keep their 8 bytes at any precision
    assert sort.output_bytes == 8 * 4 * 4 * 4 + 8 * 4 * 4 * 8 == 1_536
    assert [t.element_bytes for t in sort.outputs] == [0, 8]
    topk = graph["topk"]
    assert topk.output_shapes == ((1, 3, 4, 4), (1, 3, 4, 4))
    assert graph["relu"].inputs[0].id == topk.outputs[0].id  # the graph continues
    assert ledger_ops(graph) == dispatched_ops(Sorter(), torch.randn(1, 3, 4, 4))


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # reads a value: impossible on shapes alone
            return x
        return -x


class ItemGate(nn.Module):
    def forward(self, x):
        return x * x.max().item()


@pytest.mark.parametrize("gate", [Gate, ItemGate])
def test_value_dependent_code_is_a_trace_error_naming_the_module(gate):
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Sequential(nn.ReLU(), gate()))
    with pytest.raises(TraceError) as info:
        trace(model, (1, 3, 8, 8))
    message = str(info.value)
    assert "\n" not in message
    assert "in module 1.1:" in message  # the gate, not <root> or its parent
    assert "meta" in message


def test_bad_arguments():
    with pytest.raises(UsageError, match="needs a torch.nn.Module"):
        trace(lambda x: x, (1, 3, 8, 8))
    with pytest.raises(UsageError, match="positive sizes"):
        trace(nn.ReLU(), (1, 0, 8))
    with pytest.raises(UsageError, match="sequence of integers"):
        trace(nn.ReLU(), "big")
    with pytest.raises(UnknownNameError, match="unknown precision 'fp8'; did you mean fp"):
        trace(nn.ReLU(), (1, 3), "fp8")
    # inputs eager PyTorch rejects are rejected, not traced into a wrong graph
    with pytest.raises(TraceError, match="cannot trace op 'conv2d' in module <root>: "):
        trace(nn.Conv2d(3, 8, 3), (1, 4, 8, 8))  # 4 channels into a 3-channel conv
    with pytest.raises(TraceError, match="cannot trace op 'linear' in module 1: "):
        trace(nn.Sequential(nn.Flatten(), nn.Linear(8, 4)), (2, 3, 3))  # 9 features, not 8
    with pytest.raises(TraceError, match="cannot trace op 'matmul' in module <root>: "):
        trace(Fn(lambda m, x: x @ x), (2, 3, 4))  # (3 × 4)·(3 × 4)


# -- the model is left as it was ------------------------------------------------------------------

def test_training_flags_restored():
    model = zoo.create_model("mobilenet_v3_small", width=0.5)
    model.train()
    model.features[1].eval()  # a mix of flags, restored module by module
    before = [m.training for m in model.modules()]
    trace(model, (1, 3, 64, 64))
    assert [m.training for m in model.modules()] == before
    model.eval()
    trace(model, (1, 3, 64, 64))
    assert not any(m.training for m in model.modules())


def test_parameters_and_buffers_unchanged_on_a_real_model():
    torch.manual_seed(0)
    model = zoo.create_model("mobilenet_v3_small").train()  # train mode: BN would update
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, (4, 3, 96, 96))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_meta_model_traces_like_the_real_one():
    for name, shape in (("mobilenet_v2", (1, 3, 160, 160)),
                        ("mobilenet_v4_hybrid_medium", (2, 3, 128, 128))):
        real = zoo.create_model(name)
        with torch.device("meta"):
            meta = zoo.create_model(name)
        assert trace(real, shape) == trace(meta, shape)
    assert trace(Functional(), FUNCTIONAL_INPUT) == trace(Functional().to("meta"),
                                                         FUNCTIONAL_INPUT)


# -- huge inputs cost no memory -------------------------------------------------------------------

def test_huge_input_scales_activations_not_weights():
    one = Variant("mobilenet_v2", resolution=4096).trace()
    many = Variant("mobilenet_v2", resolution=4096, batch=64).trace()
    assert many.input_shape == (64, 3, 4096, 4096)
    assert many.macs == 64 * one.macs
    assert many.params == one.params and many.weight_bytes == one.weight_bytes
    assert many.input_bytes == 64 * one.input_bytes
    assert many.output_bytes == 64 * one.output_bytes
    # the stem alone writes 64·32·2048·2048 fp32 values: 34.4 GB that never exist
    assert many.layers[0].output_bytes == 64 * 32 * 2048 * 2048 * 4 == 34_359_738_368
    assert one.macs > (4096 // 224) ** 2 * Variant("mobilenet_v2").trace().macs


_MEMORY_PROBE = """
import json, resource, sys
import torch
from roofline.sources.pytorch.tracer import trace
from roofline.sources.variant import Variant
model = Variant("mobilenet_v2").build(meta=True)
trace(model, (1, 3, 64, 64))  # warm up imports and caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
graph = trace(model, (64, 3, 4096, 4096))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
json.dump({"growth_kib": after - before, "macs": graph.macs}, sys.stdout)
"""


@pytest.mark.slow
def test_huge_input_needs_no_real_memory(tmp_path):
    # A fresh interpreter, so that the peak RSS is this trace's own (ru_maxrss is in KiB on
    # Linux). The input alone would be 64·3·4096·4096·4 bytes = 12.9 GB if it were real.
    result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True,
                            text=True, cwd=tmp_path, check=True, timeout=300)
    probe = json.loads(result.stdout)
    assert probe["growth_kib"] < 200 * 1024  # under 200 MiB
    assert probe["macs"] == Variant("mobilenet_v2", resolution=4096, batch=64).trace().macs
