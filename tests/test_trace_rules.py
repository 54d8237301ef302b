"""Tests of the op-rule registry (roofline.sources.pytorch.ops), inputs of any dtype and by
keyword, recurrent layers, lookups and parameters however they are read.

Expected numbers are arithmetic written beside them or an independent count: PyTorch's
FlopCounterMode (FLOPs, 2 per MAC) on real tensors, or the same network unrolled by hand.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.flop_counter import FlopCounterMode

import roofline
from roofline.core.graph import Gemm, InputSpec, LayerGraph, OpKind, TensorUse
from roofline.errors import TraceError, UnknownNameError, UsageError
from roofline.sources.pytorch import ops
from roofline.sources.pytorch.ops import bind, list_op_rules, register_op_rule, rule_for
from roofline.sources.pytorch.tracer import UnknownOpWarning, trace


def single(graph: LayerGraph, op: str):
    found = [layer for layer in graph.layers if layer.op == op]
    assert len(found) == 1, [(layer.name, layer.op) for layer in graph.layers]
    return found[0]


def flop_counter_macs(model: nn.Module, *args, **kwargs) -> int:
    """An independent count: PyTorch's FLOPs on real tensors, halved (1 MAC = 2 FLOPs)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(*args, **kwargs)
    return counter.get_total_flops() // 2


@pytest.fixture
def registry():
    """Restores the rule registry after a test that registers rules."""
    saved = dict(ops.RULES)
    yield
    ops.RULES.clear()
    ops.RULES.update(saved)


# -- arguments by name ----------------------------------------------------------------------------

def test_bind_names_positional_and_keyword_arguments_with_schema_defaults():
    conv = torch.ops.aten.conv2d.default
    x, w = torch.empty(1, 3, 8, 8, device="meta"), torch.empty(4, 3, 3, 3, device="meta")
    a = bind(conv, (x, w), {"groups": 1, "stride": [2, 2]})
    assert list(a) == ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
    assert a["input"] is x and a["weight"] is w and a["bias"] is None
    assert (a["stride"], a["padding"], a["dilation"]) == ([2, 2], [0, 0], [1, 1])
    pool = bind(torch.ops.aten.max_pool2d.default, (x, [3, 3]), {})
    assert pool["stride"] == [] and pool["ceil_mode"] is False  # [] = the kernel size
    mean = bind(torch.ops.aten.mean.dim, (x, [2, 3], True), {})
    assert (mean["dim"], mean["keepdim"], mean["dtype"]) == ([2, 3], True, None)


def test_every_builtin_rule_names_only_arguments_its_op_has():
    # A rule reads a["input"]: the op (every overload of it) must have that argument. Checked
    # by tracing one call of each family with keyword arguments PyTorch passes by name.
    def functional(m, x):
        y = F.conv2d(x, m.w, stride=2, padding=1, groups=1)
        y = F.max_pool2d(y, kernel_size=2, stride=1, ceil_mode=True)
        y = F.avg_pool2d(y, kernel_size=(2, 1), count_include_pad=False)
        return y.mean(dim=(2, 3), keepdim=True).sum(dim=1)

    class Fn(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(6, 3, 3, 3))

        def forward(self, x):
            return functional(self, x)

    graph = trace(Fn(), (2, 3, 11, 11))
    eager = functional(Fn(), torch.randn(2, 3, 11, 11))
    assert [layer.op for layer in graph.layers] == ["conv2d", "max_pool2d", "avg_pool2d",
                                                    "mean", "sum"]
    assert graph["conv2d"].output_shape == (2, 6, 6, 6)  # (11 + 2 − 3) // 2 + 1 = 6
    assert graph["max_pool2d"].output_shape == (2, 6, 5, 5)  # ⌈(6 − 2) / 1⌉ + 1 = 5
    assert graph["avg_pool2d"].output_shape == (2, 6, 2, 5)  # 5 // 2 = 2, 5 // 1 = 5
    assert graph.layers[-1].output_shape == tuple(eager.shape) == (2, 1, 1)


def test_pool1d_and_pool3d_have_shape_rules():
    for fn, shape in ((lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), (2, 4, 17)),
                      (lambda x: F.avg_pool1d(x, 4, 3, 2, ceil_mode=True), (2, 4, 17)),
                      (lambda x: F.max_pool1d(x, 3, 1, 1, dilation=2), (2, 4, 17)),
                      (lambda x: F.max_pool3d(x, 3, 2, 1), (1, 2, 9, 10, 11)),
                      (lambda x: F.avg_pool3d(x, (2, 3, 3), ceil_mode=True), (1, 2, 9, 10, 11)),
                      (lambda x: F.adaptive_avg_pool3d(x, (2, None, 3)), (1, 2, 9, 10, 11)),
                      (lambda x: F.adaptive_max_pool1d(x, 5), (2, 4, 17))):
        name = fn(torch.randn(shape)).shape  # eager PyTorch
        model = _Lambda(fn)
        layer = trace(model, shape).layers[-1]
        assert layer.kind is OpKind.POOLING
        assert layer.output_shape == tuple(name)
        assert ops.rule_for(layer.op).shape is not None  # made from shapes, not run on meta


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def test_glu_halves_its_dimension():
    layer = trace(_Lambda(lambda x: F.glu(x, dim=1)), (2, 8, 3)).layers[0]
    assert layer.kind is OpKind.ACTIVATION and layer.output_shape == (2, 4, 3)  # 8 / 2


# -- the public registry ------------------------------------------------------------------------

@torch.library.custom_op("roofline_test::scaled_linear", mutates_args=())
def scaled_linear(x: torch.Tensor, weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return F.linear(x, weight) * scale


@torch.library.custom_op("roofline_test::split_heads", mutates_args=())
def split_heads(x: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., : x.shape[-1] // 2].clone(), x[..., x.shape[-1] // 2:].clone()


class CustomOpNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(32, 16))
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(scaled_linear(x, self.weight, scale=0.5).relu())


def _scaled_linear_shape(a):
    return [(*a["x"].shape[:-1], a["weight"].shape[0])]


def _scaled_linear_macs(a, out):
    rows = math.prod(a["x"].shape[:-1])
    return Gemm(1, rows, a["weight"].shape[0], a["x"].shape[-1])


def test_register_op_rule_for_a_custom_op(registry):
    # Without a rule, and without a fake kernel, a custom op cannot be followed on shapes.
    with pytest.raises(TraceError, match="register_op_rule"):
        trace(CustomOpNet(), (2, 5, 16))
    rule = roofline.register_op_rule("roofline_test::scaled_linear", "linear",
                                     shape=_scaled_linear_shape, macs=_scaled_linear_macs)
    assert rule_for(torch.ops.roofline_test.scaled_linear.default) is rule
    assert "roofline_test::scaled_linear" in list_op_rules()
    graph = trace(CustomOpNet(), (2, 5, 16))
    layer = graph["roofline_test::scaled_linear"]
    assert (layer.op, layer.kind, layer.output_shape) == (
        "roofline_test::scaled_linear", OpKind.LINEAR, (2, 5, 32))
    assert layer.macs == 2 * 5 * 32 * 16 == 5_120
    assert layer.gemms == (Gemm(1, 10, 32, 16),)
    assert layer.params == layer.weight_elements == 32 * 16
    assert graph.ledger.counted["roofline_test::scaled_linear"] == 1
    assert graph.macs == 5_120 + 2 * 5 * 4 * 32  # + the head: 1,280
    assert graph.macs == flop_counter_macs(_Plain(), torch.randn(2, 5, 16))
    assert graph.params == sum(p.numel() for p in CustomOpNet().parameters()) == 644


class _Plain(CustomOpNet):
    """The same arithmetic without the custom op, for FlopCounterMode."""

    def forward(self, x):
        return self.head((F.linear(x, self.weight) * 0.5).relu())


def test_register_op_rule_refuses_duplicates_and_checks_its_arguments(registry):
    register_op_rule("roofline_test::scaled_linear", "linear", shape=_scaled_linear_shape)
    with pytest.raises(UsageError, match="already registered; pass replace=True"):
        register_op_rule("roofline_test::scaled_linear", "linear")
    with pytest.raises(UsageError, match="already registered"):
        register_op_rule("aten::conv2d", "conv")  # built-in rules are protected alike
    with pytest.raises(UsageError, match="already registered"):
        register_op_rule(["roofline_test::a", "roofline_test::a"], "elementwise")
    replaced = register_op_rule("roofline_test::scaled_linear", "linear", replace=True,
                                shape=_scaled_linear_shape, macs=lambda a, out: 7)
    assert rule_for("roofline_test::scaled_linear") is replaced
    assert replaced.cost({}, []) == (7, ())  # a bare count has no GEMM geometry
    with pytest.raises(UnknownNameError, match="unknown op kind 'lineer'"):
        register_op_rule("roofline_test::b", "lineer")
    with pytest.raises(UsageError, match="0 MACs by convention"):
        register_op_rule("roofline_test::b", "elementwise", macs=lambda a, out: 1)
    with pytest.raises(UsageError, match="cannot have kind 'unknown'"):
        register_op_rule("roofline_test::b", "unknown")
    with pytest.raises(UnknownNameError, match="ignore rule"):
        register_op_rule("roofline_test::b", None)
    with pytest.raises(UsageError, match="invalid op name"):
        register_op_rule("two words", "elementwise")
    with pytest.raises(UsageError, match="must be a function"):
        register_op_rule("roofline_test::b", "elementwise", shape=(1, 2))
    assert "roofline_test::b" not in list_op_rules()  # nothing half-registered


def test_a_rule_for_an_aten_op_without_one(registry):
    class Sorter(nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1)[0].relu()

    with pytest.warns(UnknownOpWarning, match="sort"):
        assert trace(Sorter(), (2, 8)).unknown_ops == ["sort"]
    register_op_rule("aten::sort", "data_movement", activations=1,
                     shape=lambda a: [tuple(a["self"].shape)] * 2,
                     dtype=lambda a: [a["self"].dtype, torch.int64])
    graph = trace(Sorter(), (2, 8))
    assert graph.unknown_ops == [] and graph["sort"].kind is OpKind.DATA_MOVEMENT
    assert graph["sort"].output_shapes == ((2, 8),)  # the indices are not an activation
    ops.unregister_op_rule("aten::sort")
    with pytest.warns(UnknownOpWarning):
        trace(Sorter(), (2, 8))


def test_a_rule_for_a_multi_output_custom_op_with_a_fake_kernel(registry):
    @split_heads.register_fake
    def _(x, heads):
        half = (*x.shape[:-1], x.shape[-1] // 2)
        return x.new_empty(half), x.new_empty(half)

    class Net(nn.Module):
        def forward(self, x):
            a, b = split_heads(x, 2)
            return a + b

    with pytest.warns(UnknownOpWarning, match="roofline_test::split_heads ×1"):
        graph = trace(Net(), (3, 8))  # reported, and followed through its fake kernel
    assert graph["roofline_test::split_heads"].kind is OpKind.UNKNOWN
    assert graph["add"].output_shape == (3, 4)
    register_op_rule(torch.ops.roofline_test.split_heads, "data_movement",
                     shape=lambda a: [(*a["x"].shape[:-1], a["x"].shape[-1] // 2)] * 2)
    graph = trace(Net(), (3, 8))
    layer = graph["roofline_test::split_heads"]
    assert layer.kind is OpKind.DATA_MOVEMENT and layer.output_shapes == ((3, 4), (3, 4))
    assert layer.output_bytes == 2 * 3 * 4 * 4 == 96
    register_op_rule("roofline_test::split_heads", "data_movement", replace=True,
                     shape=lambda a: [(3, 4)])
    with pytest.raises(UsageError, match="gave 1 shape"):
        trace(Net(), (3, 8))


def test_an_overload_may_have_its_own_rule(registry):
    assert ops.op_key(torch.ops.aten.add.Tensor) == "add.Tensor"
    assert ops.op_key("aten::add.Tensor") == "add.Tensor" and ops.op_key("aten::add") == "add"
    assert rule_for(torch.ops.aten.add.Tensor) is rule_for("add")  # falls back to the op
    own = register_op_rule("aten::add.Scalar", "activation", shape=lambda a: [a["self"].shape])
    assert rule_for(torch.ops.aten.add.Scalar) is own
    assert rule_for(torch.ops.aten.add.Tensor) is rule_for("add") is not own


# -- inputs of any dtype, by keyword --------------------------------------------------------------

class TokenNet(nn.Module):
    """Token ids and a keyword padding mask: an embedding, a mask and an argmax."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.fc = nn.Linear(8, 10)

    def forward(self, ids, mask=None):
        x = self.embed(ids)  # (1, 16, 8)
        x = x.masked_fill(~mask[..., None], 0.0)
        logits = self.fc(x)
        return logits, logits.argmax(-1)


def test_integer_and_bool_inputs_keep_their_element_size():
    graph = trace(TokenNet(), [((1, 16), "int64")], kwargs={"mask": ((1, 16), torch.bool)})
    assert graph.input_specs == (InputSpec((1, 16), "int64"),
                                 InputSpec((1, 16), "bool", "mask"))
    assert graph.inputs == (TensorUse(0, 16, 8), TensorUse(1, 16, 1))
    embed = graph["embed"]
    assert embed.inputs == (TensorUse(0, 16, 8),)
    assert embed.input_bytes == 16 * 8 == 128  # int64 ids at any precision
    int8 = graph.at_precision("int8")
    assert int8["embed"].input_bytes == 128 and int8["embed"].output_bytes == 16 * 8 * 1
    # the lookup reads 16 rows of 8, not the 100 × 8 table; the table counts once in params
    assert embed.weight_elements == 16 * 8 == 128 and embed.params == 800
    assert embed.macs == 0 and embed.kind is OpKind.DATA_MOVEMENT
    not_mask = graph["bitwise_not"]
    assert not_mask.inputs[0].element_bytes == 1 and not_mask.outputs[0].element_bytes == 1
    argmax = graph["argmax"]
    assert argmax.outputs[0].element_bytes == 8  # made inside the model: int64 indices
    assert argmax.output_bytes == 16 * 8
    assert [t.element_bytes for t in graph.outputs] == [0, 8]
    assert graph.params == 800 + 8 * 10 + 10 == 890
    assert str(graph.input_specs[1]) == "mask=1x16:bool"


def test_input_forms():
    shapes = trace(nn.Identity(), (2, 3)).input_specs  # no op: the graph is its input
    assert shapes == (InputSpec((2, 3)),)
    net = _Lambda(lambda a, b, *, scale: a * b + scale)
    graph = trace(net, [(2, 3), InputSpec((1, 3), "float16")],
                  kwargs={"scale": torch.empty(2, 1)})
    assert graph.input_specs == (InputSpec((2, 3)), InputSpec((1, 3), "float16"),
                                 InputSpec((2, 1), "float32", "scale"))
    assert [t.element_bytes for t in graph.inputs] == [0, 0, 0]  # floats: priced at precision
    assert trace(net, [(2, 3), (2, 3)], kwargs={"scale": (1,)}).input_shape == (2, 3)
    # a named InputSpec is a keyword input (what a model source hands over): positional first
    named = trace(net, [InputSpec((2, 1), name="scale"), (2, 3), (1, 3)])
    assert [(s.shape, s.name) for s in named.input_specs] == [((2, 3), ""), ((1, 3), ""),
                                                              ((2, 1), "scale")]
    with pytest.raises(UsageError, match="input names must be unique"):
        trace(net, [(2, 3), (2, 3), InputSpec((1,), name="scale")], kwargs={"scale": (1,)})
    assert trace(nn.ReLU(), ((4, 5), "float64")).input_specs == (InputSpec((4, 5), "float64"),)
    with pytest.raises(UnknownNameError, match="unknown input dtype 'int65'"):
        trace(nn.ReLU(), ((4, 5), "int65"))
    with pytest.raises(UsageError, match="at least one input"):
        trace(nn.ReLU(), [])
    with pytest.raises(UsageError, match="sequence of integers"):
        trace(nn.ReLU(), [(4, 5), 7])
    with pytest.raises(UsageError, match="positive sizes"):
        trace(nn.ReLU(), [(4, 0)])
    with pytest.raises(UsageError, match="kwargs must map"):
        trace(nn.ReLU(), (4, 5), kwargs=[(4, 5)])


def test_mixed_dtypes_follow_pytorch_type_promotion():
    def fn(x):
        ids = (x * 4).long()  # float → int64 by a cast
        half = ids / 2  # true division of integers: float32 again
        index = ids + 1  # integer arithmetic stays int64
        return half, index, torch.where(x > 0, x, 0.0)

    graph = trace(_Lambda(fn), (3, 5))
    eager = fn(torch.randn(3, 5))
    by_op = {layer.op: layer for layer in graph.layers}
    assert by_op["to"].outputs[0].element_bytes == 8
    assert by_op["div"].outputs[0].element_bytes == 0  # float: priced at the precision
    assert by_op["add"].outputs[0].element_bytes == 8
    assert by_op["gt"].outputs[0].element_bytes == 1
    assert by_op["where"].outputs[0].element_bytes == 0
    assert [t.element_bytes for t in graph.outputs] == [
        0 if t.dtype.is_floating_point else t.element_size() for t in eager]


# -- recurrent layers -----------------------------------------------------------------------------

def lstm_macs(steps, batch, layers, directions, inputs, hidden, proj=0, gates=4):
    """MACs by the formula: gates·H·(input + recurrent) per step, layer and direction, plus
    H·P per step for a projection; layer ≥ 2 reads the previous layer's D·P outputs."""
    recurrent = proj or hidden
    total = 0
    for layer in range(layers):
        in_size = inputs if layer == 0 else directions * recurrent
        per_step = gates * hidden * (in_size + recurrent) + (hidden * proj if proj else 0)
        total += steps * batch * directions * per_step
    return total


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("kind, kwargs, shape, expected", [
    # LSTM(8, 16): 4·16·(8 + 16) = 1,536 per step; T·B = 5·2 = 10 steps
    (nn.LSTM, {}, (5, 2, 8), 10 * 1_536),
    # batch_first, 2 layers, bidirectional: layer 1: 2·10·4·16·(8 + 16) = 30,720;
    # layer 2 reads 2·16 = 32: 2·10·4·16·(32 + 16) = 61,440
    (nn.LSTM, {"num_layers": 2, "bidirectional": True, "batch_first": True}, (2, 5, 8),
     30_720 + 61_440),
    # proj_size 4: 4·16·(8 + 4) + 16·4 = 832 per step, 10 steps
    (nn.LSTM, {"proj_size": 4}, (5, 2, 8), 10 * 832),
    # 3 layers, bidirectional, projections, unbatched (T = 5): layer 1: 2·5·(4·16·(8 + 4) + 64)
    # = 8,320; layers 2, 3 read 2·4 = 8: the same 8,320 each
    (nn.LSTM, {"num_layers": 3, "bidirectional": True, "proj_size": 4}, (5, 8), 3 * 8_320),
    # GRU: 3 gates: 10·3·16·(8 + 16) = 11,520
    (nn.GRU, {}, (5, 2, 8), 11_520),
    (nn.GRU, {"num_layers": 2, "batch_first": True}, (2, 5, 8), 11_520 + 10 * 3 * 16 * 32),
    # RNN: 1 gate: 10·16·(8 + 16) = 3,840, tanh or ReLU, with or without biases
    (nn.RNN, {}, (5, 2, 8), 3_840),
    (nn.RNN, {"nonlinearity": "relu", "bias": False, "bidirectional": True}, (5, 2, 8),
     2 * 3_840),
])
def test_recurrent_layers(kind, kwargs, shape, expected):
    torch.manual_seed(0)
    module = kind(8, 16, **kwargs).eval()
    graph = trace(module, shape)
    (layer,) = graph.layers
    assert layer.op == {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn_" + kwargs.get(
        "nonlinearity", "tanh")}[kind]
    assert layer.kind is OpKind.LINEAR
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[kind]
    d = 2 if kwargs.get("bidirectional") else 1
    batched = len(shape) == 3
    t, b = (shape[1], shape[0]) if kwargs.get("batch_first") else (shape[0], shape[1] if
                                                                       batched else 1)
    assert layer.macs == expected == lstm_macs(t, b, kwargs.get("num_layers", 1), d, 8, 16,
                                               kwargs.get("proj_size", 0), gates)
    assert layer.macs == sum(g.macs for g in layer.gemms)
    # output shapes are eager PyTorch's (output, h_n[, c_n])
    # an unbatched input runs as a batch of one: nn.LSTM adds and removes the dimension
    out, state = module(torch.randn(shape))
    states = state if isinstance(state, tuple) else (state,)
    expected_shapes = [tuple(t.shape) for t in (out, *states)]
    if not batched:
        expected_shapes = [(s[0], 1, s[1]) for s in expected_shapes]
    assert list(layer.output_shapes) == expected_shapes
    # weights are the module's parameters, biases apart; the zero initial state is not one
    params = dict(module.named_parameters())
    biases = sum(p.numel() for n, p in params.items() if n.startswith("bias"))
    assert layer.bias_elements == biases == (0 if kwargs.get("bias") is False else
                                             2 * gates * 16 * d * kwargs.get("num_layers", 1))
    assert layer.weight_elements + layer.bias_elements == sum(p.numel() for p in
                                                              params.values())
    assert graph.params == layer.params == sum(p.numel() for p in module.parameters())


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_gemm_geometry():
    layer = trace(nn.LSTM(12, 16, num_layers=2, bidirectional=True, proj_size=4),
                  (5, 2, 12)).layers[0]
    assert layer.gemms == (
        Gemm(2, 10, 64, 12),  # layer 1's input projection, both directions: T·B = 10 rows
        Gemm(2 * 2 * 5, 2, 64, 4),  # h·W_hhᵀ: one per step (5), direction (2), layer (2)
        Gemm(2 * 2 * 5, 2, 4, 16),  # the projection h·W_hrᵀ per step: n = P = 4, k = H = 16
        Gemm(2, 10, 64, 2 * 4),  # layer 2's input projection reads 2·P = 8 features
    )


class UnrolledLSTM(nn.Module):
    """A 2-layer LSTM written as LSTMCell steps: the independent count of nn.LSTM."""

    def __init__(self, inputs, hidden):
        super().__init__()
        self.cells = nn.ModuleList([nn.LSTMCell(inputs, hidden), nn.LSTMCell(hidden, hidden)])

    def forward(self, x):  # (T, B, I)
        for cell in self.cells:
            h = c = x.new_zeros(x.shape[1], cell.hidden_size)
            steps = []
            for t in range(x.shape[0]):
                h, c = cell(x[t], (h, c))
                steps.append(h)
            x = torch.stack(steps)
        return x


def test_lstm_equals_its_cells_unrolled():
    lstm, unrolled = nn.LSTM(12, 20, num_layers=2), UnrolledLSTM(12, 20)
    shape = (7, 3, 12)
    graph = trace(lstm, shape)
    cells = trace(unrolled, shape)
    assert [layer.op for layer in cells.layers].count("lstm_cell") == 2 * 7
    # the unrolled cells make x·W_ihᵀ and h·W_hhᵀ per step: the same MACs in more GEMMs
    assert graph.macs == cells.macs == flop_counter_macs(unrolled, torch.randn(shape))
    assert graph.macs == 7 * 3 * 4 * 20 * ((12 + 20) + (20 + 20)) == 120_960
    assert graph.params == cells.params == sum(p.numel() for p in lstm.parameters())


def test_packed_sequences():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True)

        def forward(self, x):
            packed = pack_padded_sequence(x, [5, 3])  # lengths: a CPU constant
            out, (h, _) = self.lstm(packed)
            out, _ = pad_packed_sequence(out, total_length=5)
            return out, h

    graph = trace(Packed(), (5, 2, 8))
    lstm = graph["lstm"]
    # 5 + 3 = 8 rows of real steps: layer 1: 2·8·4·16·(8 + 16) = 24,576; layer 2 reads 32:
    # 2·8·4·16·(32 + 16) = 49,152. Padding is not computed.
    assert lstm.macs == 24_576 + 49_152 == 73_728
    assert lstm.input_shapes == ((8, 8),)
    assert graph["_pad_packed_sequence"].output_shape == (5, 2, 32)
    assert lstm.weight_elements + lstm.bias_elements == sum(
        p.numel() for p in Packed().parameters()) == graph.params
    assert graph.unknown_ops == []


# -- every parameter counted once, however it is read ---------------------------------------------

class WindowAttention(nn.Module):
    """Swin-style window attention, hand-written: a shifted window partition, a relative
    position bias gathered from its table by an index buffer, and a shift mask."""

    def __init__(self, dim=16, heads=2, window=4, shift=2):
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        ws, n = self.window, self.window ** 2
        x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        windows = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(-1, n, c)
        qkv = self.qkv(windows).reshape(-1, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
        attn = (attn + bias.unsqueeze(0)).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, n, c)
        out = self.proj(out).view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        return torch.roll(out.reshape(b, h, w, c), (self.shift, self.shift), (1, 2))


def test_a_parameter_read_through_an_index_counts_in_params():
    model = WindowAttention()
    graph = trace(model, (1, 8, 8, 16))
    assert graph.params == sum(p.numel() for p in model.parameters())
    assert graph.params == 7 * 7 * 2 + (16 * 48 + 48) + (16 * 16 + 16) == 1_186
    # the gathered bias is folded ahead of time; the add reads it as a (2, 16, 16) constant
    add = graph["add"]
    assert add.params == 98 and add.weight_elements == 2 * 16 * 16 == 512
    assert graph.ledger.ignored["index"][1] == ops.IGNORE_RULES["constant"]
    # 4 windows of 16 tokens: qkv 64·16·48 = 49,152; Q·Kᵀ and A·V 4·2·16·16·8 = 16,384 each;
    # proj 64·16·16 = 16,384
    assert graph.macs == 49_152 + 2 * 16_384 + 16_384 == 98_304
    assert graph.macs == flop_counter_macs(model, torch.randn(1, 8, 8, 16))


class SharedAndSliced(nn.Module):
    """A tied weight (one tensor, two modules), a sliced parameter and a functional one."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 12)
        self.head = nn.Linear(12, 50, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.pos = nn.Parameter(torch.zeros(1, 32, 12))  # sliced to the sequence length
        self.scale = nn.Parameter(torch.ones(12))  # read by functional code
        self.unused = nn.Linear(3, 3)  # never called: not read

    def forward(self, ids):
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        return self.head(F.layer_norm(x, (12,), self.scale))


def test_tied_sliced_and_functional_parameters_count_once():
    model = SharedAndSliced()
    graph = trace(model, ((2, 10), "int64"))
    read = 50 * 12 + 32 * 12 + 12  # the tied table once, the whole position table, the scale
    assert graph.params == read == 996
    assert graph.params == sum(p.numel() for p in model.parameters()) - (3 * 3 + 3)
    # the head reads the whole tied table; the lookup only its 2·10 rows
    assert graph["head"].weight_elements == 600 and graph["embed"].weight_elements == 240
    assert graph["add"].weight_elements == 10 * 12  # the slice it reads
