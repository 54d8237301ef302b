"""Tests of fusion (roofline.core.fuse): the op view turned into the kernels a runtime launches.

Closed forms on small models (the arithmetic is beside every number), the epilogue policy, and
properties every zoo model must keep: MACs preserved, every op in exactly one kernel, batch
norm folded where the architecture allows it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from roofline import zoo
from roofline.core.fuse import BATCH_NORM_OPS, fuse
from roofline.core.graph import LayerGraph, OpKind
from roofline.sources.pytorch.tracer import UnknownOpWarning, trace
from roofline.sources.variant import Variant

ZOO = zoo.list_models()
from roofline.zoo.layers import SqueezeExcite  # noqa: E402


def kernel_of(fused: LayerGraph, op_name: str):
    """The kernel that ran the op-view layer ``op_name`` (as its anchor or inside it)."""
    found = [k for k in fused.layers if k.name == op_name or op_name in k.fused_ops]
    assert len(found) == 1, op_name
    return found[0]


class ConvBnAct(nn.Module):
    def __init__(self, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(16)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def test_conv_bn_relu_is_one_kernel():
    graph = trace(ConvBnAct(), (1, 8, 10, 10))
    fused = fuse(graph)
    assert [layer.name for layer in graph.layers] == ["conv", "bn", "act"]
    (kernel,) = fused.layers
    assert fused.fused and not graph.fused
    assert kernel.name == "conv" and kernel.kind is OpKind.CONV
    assert kernel.fused_ops == ("bn", "act")
    assert kernel.macs == graph.macs == 16 * 10 * 10 * 8 * 3 * 3 == 115_200
    # BN folds into the conv: a per-channel bias; its own 4·16 constants are gone
    assert graph["bn"].weight_elements == 4 * 16
    assert kernel.weight_elements == 16 * 8 * 3 * 3 == 1_152
    assert kernel.bias_elements == 16
    assert kernel.params == 1_152 + 16 == 1_168
    assert kernel.weight_bytes == (1_152 + 16) * 4
    # only the input and the final output cross the kernel boundary
    assert kernel.input_bytes == 8 * 10 * 10 * 4 == 3_200
    assert kernel.output_bytes == 16 * 10 * 10 * 4 == 6_400
    assert graph.activation_bytes == (800 + 1_600 + 1_600 + 1_600 + 1_600 + 1_600) * 4
    assert fused.activation_bytes == (800 + 1_600) * 4
    assert fused.params == graph.params  # the model's parameter count is not the kernels'


def test_bn_folds_into_an_existing_bias():
    (kernel,) = fuse(trace(ConvBnAct(bias=True), (1, 8, 10, 10))).layers
    assert kernel.bias_elements == 16  # the conv's own 16 biases absorb BN's shift
    assert kernel.weight_elements == 1_152
    assert kernel.params == 1_152 + 16


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 16, 1)
        self.b = nn.Conv2d(16, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        x = self.stem(x)
        return x + self.bn(self.b(F.relu(self.a(x))))


def test_residual_add_reads_the_skip_tensor():
    graph = trace(Residual(), (1, 3, 6, 6))
    fused = fuse(graph)
    assert [(k.name, k.fused_ops) for k in fused.layers] == [
        ("stem", ()), ("a", ("relu",)), ("b", ("bn", "add"))]
    stem, a, b = fused.layers
    skip = stem.outputs[0]
    assert skip.elements == 8 * 6 * 6 == 288
    # the add runs in b's kernel and reads the skip tensor from memory
    assert [t.id for t in b.inputs] == [a.outputs[0].id, skip.id]
    assert b.input_bytes == (16 * 36 + 288) * 4 == 3_456
    assert b.weight_elements == 8 * 16 and b.bias_elements == 8  # BN folded
    assert b.macs == 36 * 8 * 16 == 4_608
    # the stem's output is read by two later kernels and written once
    assert stem.outputs == (skip,)
    assert sum(skip.id in {t.id for t in k.inputs} for k in fused.layers) == 2
    written = [t.id for k in fused.layers for t in k.outputs]
    assert len(written) == len(set(written))
    assert b.outputs == graph.outputs  # the model's output is written


def test_squeeze_excite_multiply_joins_the_gate_kernel():
    model = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), SqueezeExcite(16, 8))
    graph = trace(model, (1, 8, 7, 7))
    fused = fuse(graph)
    assert [(k.kind.value, k.fused_ops) for k in fused.layers] == [
        ("pointwise_conv", ()), ("pooling", ()), ("pointwise_conv", ("1.act",)),
        ("pointwise_conv", ("1.gate", "1"))]  # the multiply is the only op of module 1 itself
    conv, pool, reduce, expand = fused.layers
    x = conv.outputs[0]
    assert x.elements == 16 * 7 * 7 == 784
    # the gate kernel reads the 8 squeezed values and the full-size input of the multiply
    assert [t.elements for t in expand.inputs] == [8, 784]
    assert expand.inputs[1].id == x.id
    assert expand.output_elements == 784
    assert (expand.weight_elements, expand.bias_elements) == (8 * 16, 16)


class ConvActBn(nn.Module):
    """BN after an activation: it cannot fold into the conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return self.bn(self.act(self.conv(x)))


class TwoReaders(nn.Module):
    """BN on a tensor that something else also reads: it cannot fold."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


@pytest.mark.parametrize("model, fused_ops", [(ConvActBn(), ("act", "bn")),
                                              (TwoReaders(), ("bn", "add"))])
def test_bn_that_cannot_fold_is_a_scale_and_shift(model, fused_ops):
    (kernel,) = fuse(trace(model, (1, 4, 5, 5))).layers
    assert kernel.fused_ops == fused_ops
    # conv weights 8·4·3·3 = 288, plus a per-channel scale and shift: 2·8 = 16
    assert kernel.weight_elements == 288 + 2 * 8 == 304
    assert kernel.bias_elements == 0
    assert kernel.params == 288 + 2 * 8  # BN's γ and β
    assert kernel.input_elements == 4 * 25 and kernel.output_elements == 8 * 25


def test_bn_on_its_own_is_a_scale_and_shift():
    graph = trace(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 8, 1)), (1, 3, 4, 4))
    bn, conv = fuse(graph).layers
    assert bn.op in BATCH_NORM_OPS and bn.kind is OpKind.NORMALIZATION
    assert graph["0"].weight_elements == 4 * 3  # γ, β, running mean and variance
    assert bn.weight_elements == 2 * 3 and bn.params == 2 * 3
    assert conv.weight_elements == 8 * 3 and conv.bias_elements == 8


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(8, 8, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.Hardswish()
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = nn.ReLU6()  # dispatches hardtanh

    def forward(self, x):
        y = self.act1(self.bn1(self.c1(x)))
        return x + self.act2(self.bn2(self.c2(y)))


@pytest.mark.parametrize("epilogue, kernels", [
    (None, [("c1", ("bn1", "act1")), ("c2", ("bn2", "act2", "add"))]),
    # TFLite's CPU runtime: only ReLU-style clamps run inside a convolution
    (frozenset({"relu", "hardtanh"}),
     [("c1", ("bn1",)), ("act1", ()), ("c2", ("bn2", "act2")), ("add", ())]),
    (frozenset({"activation"}), [("c1", ("bn1", "act1")), ("c2", ("bn2", "act2")), ("add", ())]),
    (frozenset({"elementwise"}),
     [("c1", ("bn1",)), ("act1", ()), ("c2", ("bn2",)), ("act2", ("add",))]),
    # batch norm folds whatever the runtime fuses
    (frozenset(), [("c1", ("bn1",)), ("act1", ()), ("c2", ("bn2",)), ("act2", ()),
                   ("add", ())]),
])
def test_epilogue_policy(epilogue, kernels):
    graph = trace(Policy(), (1, 8, 6, 6))
    fused = fuse(graph, epilogue)
    assert [(k.name, k.fused_ops) for k in fused.layers] == kernels
    assert fused.macs == graph.macs == 36 * 8 * 8 + 36 * 8 * 9 == 4_896
    # both BNs fold: conv weights plus 8 biases each, whatever the policy
    assert kernel_of(fused, "bn1").weight_elements == 64
    assert kernel_of(fused, "bn2").weight_elements == 72
    assert kernel_of(fused, "bn1").bias_elements == kernel_of(fused, "bn2").bias_elements == 8


def test_epilogue_names_match_in_place_ops():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            return F.relu(self.conv(x), inplace=True)

    graph = trace(InPlace(), (1, 3, 4, 4))
    assert [layer.op for layer in graph.layers] == ["conv2d", "relu_"]
    (kernel,) = fuse(graph, frozenset({"relu"})).layers
    assert kernel.fused_ops == ("relu_",)


class ChunkCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        return torch.cat([b, a], dim=1).relu()


def test_chunk_then_cat():
    graph = trace(ChunkCat(), (1, 3, 4, 4))
    conv, cat = fuse(graph).layers
    assert cat.op == "cat" and cat.fused_ops == ("relu",)
    # the cat reads both halves of the conv's output: 2 × 8·4·4 elements, all 16·4·4 of it
    assert [t.elements for t in cat.inputs] == [128, 128]
    assert cat.input_elements == 16 * 4 * 4 == conv.output_elements
    assert cat.input_bytes == graph["cat"].input_bytes == 256 * 4


class Sorter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        values, _ = torch.sort(self.conv(x), dim=1)
        return values.relu()


def test_unknown_ops_take_no_epilogue():
    with pytest.warns(UnknownOpWarning, match="sort"):
        graph = trace(Sorter(), (1, 3, 4, 4))
    fused = fuse(graph)
    assert [(k.name, k.kind.value, k.fused_ops) for k in fused.layers] == [
        ("conv", "pointwise_conv", ()), ("sort", "unknown", ()), ("relu", "activation", ())]
    sort = fused["sort"]
    # sort's indices are read by nobody: the kernel writes only its values
    assert sort.input_elements == sort.output_elements == 8 * 4 * 4


def test_fuse_is_idempotent():
    graph = trace(Policy(), (1, 8, 6, 6))
    fused = fuse(graph)
    assert fuse(fused) is fused
    assert fuse(fused, frozenset()) is fused  # a kernel view is never re-fused
    assert fuse(graph) == fused


# -- every zoo model ------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=ZOO)
def zoo_views(request) -> tuple[str, LayerGraph, LayerGraph]:
    graph = Variant(request.param).trace()
    return request.param, graph, fuse(graph)


def test_fusion_preserves_macs(zoo_views):
    _, graph, fused = zoo_views
    assert fused.macs == graph.macs
    assert fused.params == graph.params
    assert fused.input_shape == graph.input_shape and fused.outputs == graph.outputs
    assert len(fused) < len(graph)


def test_every_op_runs_in_exactly_one_kernel(zoo_views):
    _, graph, fused = zoo_views
    ran = [name for k in fused.layers for name in (k.name, *k.fused_ops)]
    assert ran == [layer.name for layer in graph.layers]  # in execution order, once each
    assert [k.index for k in fused.layers] == list(range(len(fused)))


def test_kernels_start_at_compute_pooling_or_copies(zoo_views):
    # by default every activation, element-wise op and BN of the zoo runs in a producer
    _, _, fused = zoo_views
    anchors = {k.kind for k in fused.layers}
    assert anchors <= {OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.POINTWISE_CONV,
                       OpKind.LINEAR, OpKind.MATMUL, OpKind.POOLING, OpKind.DATA_MOVEMENT}


def test_batch_norm_folds_where_the_architecture_allows(zoo_views):
    name, graph, fused = zoo_views
    bns = [layer for layer in graph.layers if layer.op in BATCH_NORM_OPS]
    # Every zoo BN follows a bias-free conv except the input BN of each Mobile MQA block
    # (module "blocks.N.norm"), which normalises the previous block's residual sum.
    unfolded = [bn for bn in bns if bn.module.endswith(".norm")]
    assert bool(unfolded) == ("hybrid" in name)
    folded_channels = sum(bn.output_shape[1] for bn in bns if bn not in unfolded)
    # a folded BN's 2C parameters become C biases; an unfolded one keeps 2C constants; every
    # other layer's constants are its parameters
    constants = sum(k.weight_elements + k.bias_elements for k in fused.layers)
    assert constants == graph.params - folded_channels


def test_single_op_kernels_keep_their_bytes(zoo_views):
    _, graph, fused = zoo_views
    by_name = {layer.name: layer for layer in graph.layers}
    read = {t.id for layer in graph.layers for t in layer.inputs} | {t.id for t in
                                                                     graph.outputs}
    for kernel in fused.layers:
        if kernel.fused_ops or kernel.op in BATCH_NORM_OPS:
            continue
        op = by_name[kernel.name]
        assert kernel.inputs == op.inputs
        assert kernel.weight_bytes == op.weight_bytes
        assert kernel.outputs == tuple(t for t in op.outputs if t.id in read)


def test_activation_traffic_shrinks_and_int8_scales_it(zoo_views):
    _, graph, fused = zoo_views
    assert fused.activation_bytes < graph.activation_bytes
    int8 = fuse(graph.at_precision("int8"))
    assert int8.activation_bytes * 4 == fused.activation_bytes  # 1 byte against 4
    assert int8 == fused.at_precision("int8")


class TwoHeads(nn.Module):
    """Returns a dict, as segmentation and detection models do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.aux = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return {"out": y.relu(), "aux": self.aux(y)}


def test_model_outputs_in_a_dict_are_written():
    graph = trace(TwoHeads(), (1, 3, 4, 4))
    relu, aux = graph["relu"].outputs[0], graph["aux"].outputs[0]
    assert graph.outputs == (relu, aux)
    conv, head = fuse(graph).layers
    assert conv.fused_ops == ("relu",)
    # conv writes y (read by aux) and relu(y) (a model output): 2 · 8·4·4 elements
    assert conv.output_elements == 2 * 8 * 16 and relu in conv.outputs
    assert head.outputs == (aux,) and aux.elements == 2 * 16


def test_a_kernel_of_one_op_is_that_op_with_its_new_index():
    # fuse builds each kernel field by field: a field added to Layer and not carried over
    # would show here, on the kernels that absorbed nothing.
    import dataclasses

    from roofline.core.fuse import fuse
    from roofline.sources.variant import parse_variant

    graph = parse_variant("mobilenet_v3_small@0.5:96").trace()
    by_name = {layer.name: layer for layer in graph.layers}
    alone = [k for k in fuse(graph).layers if not k.fused_ops]
    assert alone
    for kernel in alone:
        op = by_name[kernel.name]
        unique = tuple(dict.fromkeys(op.inputs))
        if unique == op.inputs:  # an op reading one tensor twice loads it once as a kernel
            assert kernel == dataclasses.replace(op, index=kernel.index)
