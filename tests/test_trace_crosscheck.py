"""Cross-checks of the tracer's MACs against two independent counters, on real CPU tensors.

fvcore's FlopCountAnalysis (whose "flop" is one multiply-accumulate) and PyTorch's
FlopCounterMode (which counts FLOPs = 2 × MACs) must agree with our per-kind MACs on every zoo
model and on random convolution stacks; output shapes are compared with an eager run, and the
tracer's op ledger with an independent count of dispatched ops.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from roofline import zoo
from roofline.core.graph import LayerGraph, OpKind
from roofline.sources.pytorch.tracer import trace
from roofline.sources.variant import Variant

import kit

with warnings.catch_warnings():
    # fvcore scripts a loss function with torch.jit.script at import, which torch deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis

CONVS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.POINTWISE_CONV)

# Ops fvcore counts that roofline counts as 0 MACs by its stated convention (normalisation,
# pooling and resizing move bytes but multiply no weights): listed so that nothing else
# fvcore counts can go unnoticed.
FVCORE_ZERO_MAC_OPS = {"batch_norm", "group_norm", "layer_norm", "instance_norm",
                       "adaptive_avg_pool2d", "upsample_nearest2d", "upsample_bilinear2d"}


def our_macs(graph: LayerGraph) -> dict[str, int]:
    """MACs per op type: convolutions (all three kinds), linear layers, activation products."""
    by_kind = Counter()
    for layer in graph.layers:
        by_kind[layer.kind] += layer.macs
    return {"conv": sum(by_kind[k] for k in CONVS), "linear": by_kind[OpKind.LINEAR],
            "matmul": by_kind[OpKind.MATMUL]}


def fvcore_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    with warnings.catch_warnings():
        # fvcore runs torch.jit.trace, which warns about deprecation and traced control flow
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        by_op = dict(analysis.by_operator())
    assert set(by_op) <= {"conv", "linear", "matmul", "bmm", "einsum"} | FVCORE_ZERO_MAC_OPS
    return {"conv": by_op.get("conv", 0), "linear": by_op.get("linear", 0),
            "matmul": by_op.get("matmul", 0) + by_op.get("bmm", 0) + by_op.get("einsum", 0)}


def flop_counter_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    flops = {str(op).removeprefix("aten."): n
             for op, n in counter.get_flop_counts()["Global"].items()}
    assert set(flops) <= {"convolution", "addmm", "mm", "bmm"}
    # FLOPs → MACs: 1 MAC = 2 FLOPs. Only nn.Linear makes addmm/mm in these models.
    return {"conv": flops.get("convolution", 0) // 2,
            "linear": (flops.get("addmm", 0) + flops.get("mm", 0)) // 2,
            "matmul": flops.get("bmm", 0) // 2}


class OpCounter(TorchDispatchMode):
    """Counts the top-level ops a model dispatches, independently of the tracer."""

    def __init__(self):
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func._overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


# -- every zoo model ------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=kit.zoo_params(zoo.list_models()))
def real_model(request) -> tuple[str, nn.Module, torch.Tensor]:
    """A zoo model with real weights and a real input at its default resolution."""
    name = request.param
    torch.manual_seed(0)
    model = zoo.create_model(name).eval()
    size = zoo.get_model_info(name).default_resolution
    return name, model, torch.randn(1, 3, size, size)


def test_zoo_macs_agree_with_fvcore_and_flop_counter(real_model):
    name, model, x = real_model
    ours = our_macs(Variant(name).trace())
    assert ours == fvcore_macs(model, x)
    assert ours == flop_counter_macs(model, x)
    assert ours["conv"] > 0 and ours["linear"] > 0
    assert (ours["matmul"] > 0) == ("hybrid" in name)  # attention only in the hybrids


def test_zoo_ledger_accounts_for_every_op(real_model):
    name, model, x = real_model
    graph = Variant(name).trace()
    with torch.inference_mode(), OpCounter() as counter:
        model(x)
    ledger = Counter(graph.ledger.counted)
    for key, (n, _) in graph.ledger.ignored.items():
        ledger[key.split(" [")[0]] += n
    ledger.update(graph.ledger.unknown)
    assert ledger == counter.ops
    assert graph.ledger.total_ops == sum(counter.ops.values())


def test_zoo_output_shapes_agree_with_eager(real_model):
    name, model, x = real_model
    graph = Variant(name).trace()
    shapes: dict[str, tuple[int, ...]] = {}
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_hook(
        lambda m, args, out: shapes.__setitem__(names[m], tuple(out.shape)))
        for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    traced = {layer.module: layer.output_shape for layer in graph.layers
              if layer.op in ("conv2d", "linear")}
    assert traced == shapes


# -- attention: the explicit product is the reference for the fused kernel ------------------------

@pytest.mark.parametrize("queries, keys, dim, value_dim", [(100, 100, 32, 32), (64, 49, 16, 8)])
def test_attention_macs_equal_its_explicit_products(queries, keys, dim, value_dim):
    # FlopCounterMode has no formula for the CPU attention kernel; it counts the explicit
    # softmax(Q·Kᵀ)·V as two batched matmuls, which must equal our count of the fused op.
    # Q, K and V are slices of one input, so that all three are activations.
    def split(x):
        return x[:, :, :queries, :dim], x[:, :, queries:, :dim], x[:, :, queries:, :value_dim]

    class Fused(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(*split(x))

    class Explicit(nn.Module):
        def forward(self, x):
            q, k, v = split(x)
            return ((q @ k.transpose(-1, -2)) / math.sqrt(dim)).softmax(-1) @ v

    torch.manual_seed(0)
    x = torch.randn(2, 4, queries + keys, max(dim, value_dim))
    with torch.no_grad():
        assert torch.allclose(Fused()(x), Explicit()(x), atol=1e-5)
    ours = our_macs(trace(Fused(), x.shape))
    assert ours == our_macs(trace(Explicit(), x.shape))
    assert ours["matmul"] == flop_counter_macs(Explicit(), x)["matmul"]
    assert ours["matmul"] == 2 * 4 * queries * keys * (dim + value_dim)


# -- random convolution stacks --------------------------------------------------------------------

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@st.composite
def conv_stacks(draw) -> tuple[nn.Module, tuple[int, ...]]:
    """1-3 random convolutions (1-, 2- or 3-d; kernels 1-7, strides, padding, dilation,
    groups incl. depthwise, optional bias, some transposed), flattened into a linear layer."""
    dims = draw(st.sampled_from([1, 2, 3]))
    channels = draw(st.integers(1, 8))
    size = draw(st.integers(6, 10)) if dims == 3 else draw(st.integers(8, 24))
    shape = (draw(st.integers(1, 2)), channels, *([size] * dims))
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 3))):
        kernel = draw(st.integers(1, 7 if dims < 3 else 3))
        stride = draw(st.integers(1, 3))
        padding = draw(st.integers(0, 3))
        dilation = draw(st.integers(1, 3))
        bias = draw(st.booleans())
        grouping = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
        if grouping == "dense" or (grouping == "grouped" and channels % 2):
            groups, out = 1, draw(st.integers(1, 12))
        elif grouping == "grouped" and channels % 2 == 0:  # 1 < groups < channels if it can
            groups = draw(st.sampled_from([g for g in range(2, channels)
                                           if channels % g == 0] or [channels]))
            out = groups * draw(st.integers(1, 3))
        else:
            groups, out = channels, channels * draw(st.integers(1, 2))
        transposed = size <= 24 and draw(st.integers(0, 3)) == 0
        if transposed:
            output_padding = draw(st.integers(0, max(stride, dilation) - 1))
            layer = CONV_TRANSPOSE[dims](channels, out, kernel, stride, padding,
                                         output_padding, groups, bias, dilation)
            size = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) \
                + output_padding + 1
        else:
            if size + 2 * padding < dilation * (kernel - 1) + 1:  # too small: shrink it
                dilation, kernel = 1, min(kernel, size + 2 * padding)
            layer = CONV[dims](channels, out, kernel, stride, padding, dilation, groups, bias)
            size = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        if size < 1:
            break
        layers.append(layer)
        channels = out
        if draw(st.booleans()):
            layers.append(nn.ReLU())
    if not any(isinstance(layer, nn.modules.conv._ConvNd) for layer in layers):
        layers = [CONV[dims](shape[1], 4, 1)]
        channels, size = 4, shape[2]
    layers += [nn.Flatten(), nn.Linear(channels * size ** dims, draw(st.integers(1, 10)),
                                       bias=draw(st.booleans()))]
    return nn.Sequential(*layers).eval(), shape


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(net=conv_stacks())
def test_random_conv_stacks_agree_with_fvcore_and_flop_counter(net):
    model, shape = net
    torch.manual_seed(0)
    x = torch.randn(shape)
    graph = trace(model, shape)
    ours = our_macs(graph)
    assert ours == fvcore_macs(model, x)
    assert ours == flop_counter_macs(model, x)
    assert ours["linear"] > 0 and ours["conv"] > 0

    # every layer's output shape is eager PyTorch's
    eager: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(
        lambda m, args, out, name=name: eager.__setitem__(name, tuple(out.shape)))
        for name, m in model.named_children()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    traced = {layer.module: layer.output_shape for layer in graph.layers}
    flatten = [name for name, m in model.named_children() if isinstance(m, nn.Flatten)]
    assert traced == {name: s for name, s in eager.items() if name not in flatten}
    for layer in graph.layers:
        if layer.kind in CONVS:
            module = model.get_submodule(layer.module)
            assert layer.weight_elements == module.weight.numel()
            assert layer.bias_elements == (0 if module.bias is None else module.bias.numel())
            # depthwise: one input channel per group; pointwise: a 1×1 kernel
            expected = (OpKind.DEPTHWISE_CONV if module.groups == module.in_channels > 1
                        else OpKind.POINTWISE_CONV if set(module.kernel_size) == {1}
                        else OpKind.CONV)
            assert layer.kind is expected
