"""What each ONNX operator costs: the op table the ONNX reader reads.

Owns the rules keyed by (domain, op type): the canonical kind, which inputs are tensors the op
reads (the others are operands that only configure it: shapes, axes, pads, scales, zero
points, Clip bounds), which are a bias or statistics, the MAC formula, and whether the output
keeps its input's memory layout. Rules are pure functions of shapes and attributes; the reader
(``roofline.sources.onnx.reader``) owns the walk, the layouts and the bookkeeping.

Every node the reader meets is

* counted: a rule below gives its kind and MACs; it becomes one layer;
* ignored by a stated rule (:data:`IGNORE_RULES`): views, shape queries, constants, no-ops,
  QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into their neighbour, and the
  nodes the exporter emits for one PyTorch op (read back as that op: see ``idioms``);
* unknown: no rule. It becomes a layer of kind ``unknown`` that still moves its bytes, and is
  listed in a warning, exactly like an unknown ATen op.

MAC conventions are the torch tracer's (``roofline.sources.pytorch.ops``): convolutions (from
the weight's shape, so a depthwise convolution needs no special case), linear layers,
activation×activation products and recurrent cells count one MAC per multiply-accumulate;
normalisation, activations, pooling, element-wise ops and softmax count 0 MACs but still move
bytes. A layer's op is its ONNX op type in lower snake case (``MatMul`` → ``mat_mul``), except
the two names fusion keys on (``roofline.core.fuse``): ``BatchNormalization`` is
``batch_norm`` (so that it folds into its convolution) and ``Clip`` is ``clamp`` (the same op:
runtimes that fuse only ReLU-style clamps fuse it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.graph import Gemm, OpKind
from ..pytorch.ops import conv_kind, einsum_cost

__all__ = ["OnnxRule", "RULES", "IGNORE_RULES", "rule_for", "snake_case", "op_name",
           "DEFAULT_DOMAIN", "recurrent_gemms", "matmul_gemm", "linear_gemm"]

Shape = tuple[int, ...]
Attrs = Mapping[str, Any]
#: (attributes, shapes of the inputs by position (None: absent), output shapes, which inputs
#: are constants) -> MACs, GEMMs
CostFn = Callable[[Attrs, Sequence["Shape | None"], Sequence[Shape], Sequence[bool]],
                  tuple[int, tuple[Gemm, ...]]]
#: (attributes, input shapes, which inputs are constants) -> the layer's kind
KindFn = Callable[[Attrs, Sequence["Shape | None"], Sequence[bool]], OpKind]

DEFAULT_DOMAIN = ""  # "ai.onnx"
_MS = "com.microsoft"


@dataclass(frozen=True)
class OnnxRule:
    """How the reader treats one ONNX operator.

    ``kind`` None: the node is ignored under ``ignore`` (a key of IGNORE_RULES).
    ``data``: input positions that are tensors the op reads (None: every input); the others
    configure the op and move no data. ``bias``: position of a conv/linear bias (its elements
    are ``bias_elements``). ``buffers``: constant positions that are statistics (batch norm's
    running mean and variance): weights, not parameters. ``cost``: (MACs, GEMMs), None = 0.
    ``classify``: the kind from shapes (convolutions, linear against matmul). ``view``: how an
    op that PyTorch makes a view is read (``reshape``, ``transpose``, ``expand``, ``slice``,
    ``split``, ``gather``, ``cast``): a view when the layout allows, else a copy of ``kind``.
    ``keeps_layout``: the output has its input's memory layout (element-wise ops), else it is
    contiguous. ``qdq``: ONNX Runtime runs it on int8 tensors when DequantizeLinear feeds it and
    QuantizeLinear reads it (its QDQ node-unit selectors). ``op``: the layer's op name when it
    is not the op type in snake case.
    """

    kind: OpKind | None
    data: tuple[int, ...] | Callable[[int], tuple[int, ...]] | None = None
    bias: int | None = None
    buffers: tuple[int, ...] = ()
    cost: CostFn | None = None
    classify: KindFn | None = None
    view: str | None = None
    keeps_layout: bool = False
    qdq: bool = False
    op: str | None = None
    ignore: str | None = None

    def data_positions(self, n_inputs: int) -> tuple[int, ...]:
        if self.data is None:
            return tuple(range(n_inputs))
        if callable(self.data):
            return self.data(n_inputs)
        return tuple(p for p in self.data if p < n_inputs)


#: The rules by which a node is ignored. Each ignored node is still listed in the ledger.
IGNORE_RULES: dict[str, str] = {
    "view": "views and reshapes alias their input (PyTorch's view rules): no data moves",
    "meta": "shape and metadata queries: no data moves",
    "alloc": "allocations and constant fills: no activation is read, values are folded ahead "
             "of time",
    "constant": "every input is a weight or constant: folded ahead of time by inference "
                "runtimes",
    "identity": "no-op at inference (Identity, Dropout in eval)",
    "qdq": "QuantizeLinear/DequantizeLinear fused by ONNX Runtime into the quantised kernel "
           "next to it, which reads and writes the int8 tensor itself",
    "idiom": "one of the nodes the exporter emits for a single PyTorch op (a linear layer's "
             "MatMul and bias Add, GELU's Div/Erf/Add/Mul, scaled_dot_product_attention's "
             "scaling, MatMuls and Softmax): read back as that op",
}


def snake_case(op_type: str) -> str:
    """``MatMul`` → ``mat_mul``, ``QLinearConv`` → ``q_linear_conv``, ``LSTM`` → ``lstm``."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", op_type)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return text.lower()


# -- costs ----------------------------------------------------------------------------------------

def _conv(x_at: int, w_at: int, transposed: bool = False) -> CostFn:
    def cost(attrs: Attrs, ins: Sequence[Shape | None], outs: Sequence[Shape],
             const: Sequence[bool]) -> tuple[int, tuple[Gemm, ...]]:
        x, w = ins[x_at], ins[w_at]
        assert x is not None and w is not None
        groups = int(attrs.get("group", 1))
        kernel_area = math.prod(w[2:])
        if transposed:
            # Each input pixel scatters C_out/g × kernel outputs: the input plays the GEMM's m.
            gemm = Gemm(groups, x[0] * math.prod(x[2:]), w[1] * kernel_area, w[0] // groups)
        else:
            out = outs[0]
            gemm = Gemm(groups, out[0] * math.prod(out[2:]), w[0] // groups, w[1] * kernel_area)
        return gemm.macs, (gemm,)

    return cost


def _conv_classify(x_at: int, w_at: int, transposed: bool = False) -> KindFn:
    def classify(attrs: Attrs, ins: Sequence[Shape | None], const: Sequence[bool]) -> OpKind:
        x, w = ins[x_at], ins[w_at]
        assert x is not None and w is not None
        return conv_kind(x, w, int(attrs.get("group", 1)), transposed)

    return classify


def _broadcast(a: Shape, b: Shape) -> Shape:
    ndim = max(len(a), len(b))
    a = (1,) * (ndim - len(a)) + a
    b = (1,) * (ndim - len(b)) + b
    return tuple(max(x, y) if 1 in (x, y) else x for x, y in zip(a, b, strict=True))


def matmul_gemm(a: Shape, b: Shape) -> Gemm:
    """numpy.matmul of ``a`` and ``b`` as one batched GEMM (1-d operands promoted)."""
    a2 = (1, a[0]) if len(a) == 1 else a
    b2 = (b[0], 1) if len(b) == 1 else b
    batch = math.prod(_broadcast(a2[:-2], b2[:-2]))
    return Gemm(batch, a2[-2], b2[-1], a2[-1])


def linear_gemm(x: Shape, w: Shape) -> Gemm:
    """An activation times a constant matrix (K, N): one GEMM over every row of the activation,
    as the tracer's ``linear`` (the weight is shared by the batch)."""
    if len(w) != 2 or len(x) < 2:
        return matmul_gemm(x, w)
    return Gemm(1, math.prod(x[:-1]), w[1], w[0])


def _matmul(a_at: int, b_at: int) -> CostFn:
    def cost(attrs: Attrs, ins: Sequence[Shape | None], outs: Sequence[Shape],
             const: Sequence[bool]) -> tuple[int, tuple[Gemm, ...]]:
        a, b = ins[a_at], ins[b_at]
        assert a is not None and b is not None
        if attrs.get("transA"):
            a = (*a[:-2], a[-1], a[-2])
        if attrs.get("transB"):
            b = (*b[:-2], b[-1], b[-2])
        gemm = linear_gemm(a, b) if const[b_at] and not const[a_at] else matmul_gemm(a, b)
        return gemm.macs, (gemm,)

    return cost


def _linear_or_matmul(a_at: int, b_at: int) -> KindFn:
    """Activation × constant is a linear layer; activation × activation a matmul."""

    def classify(attrs: Attrs, ins: Sequence[Shape | None], const: Sequence[bool]) -> OpKind:
        return OpKind.LINEAR if const[a_at] or const[b_at] else OpKind.MATMUL

    return classify


def _einsum(attrs: Attrs, ins: Sequence[Shape | None], outs: Sequence[Shape],
            const: Sequence[bool]) -> tuple[int, tuple[Gemm, ...]]:
    equation = attrs["equation"]
    if isinstance(equation, bytes):
        equation = equation.decode()
    return einsum_cost(equation, [s for s in ins if s is not None])


def _einsum_classify(attrs: Attrs, ins: Sequence[Shape | None],
                     const: Sequence[bool]) -> OpKind:
    return OpKind.LINEAR if any(const) else OpKind.MATMUL


def recurrent_gemms(x: Shape, w: Shape, r: Shape, layout: int) -> tuple[Gemm, ...]:
    """The GEMMs of one ONNX LSTM/GRU/RNN node: X (T, B, I) (or (B, T, I) with layout 1),
    W (directions, gates·H, I), R (directions, gates·H, H).

    Every step multiplies the input by W and the previous hidden state by R, for each
    direction: gates × H × (I + H) MACs per step and batch row. The input products of all steps
    are independent (one GEMM of T·B rows); the recurrent ones run one step after another
    (T GEMMs of B rows). NB: the gates' element-wise math (sigmoid, tanh, the cell update) and
    peepholes count 0 MACs, as element-wise ops do everywhere.
    """
    steps, batch = (x[1], x[0]) if layout == 1 else (x[0], x[1])
    directions, gate_rows, inputs = w
    hidden = r[2]
    return (Gemm(directions, steps * batch, gate_rows, inputs),
            Gemm(directions * steps, batch, gate_rows, hidden))


def _recurrent(attrs: Attrs, ins: Sequence[Shape | None], outs: Sequence[Shape],
               const: Sequence[bool]) -> tuple[int, tuple[Gemm, ...]]:
    x, w, r = ins[0], ins[1], ins[2]
    assert x is not None and w is not None and r is not None
    gemms = recurrent_gemms(x, w, r, int(attrs.get("layout", 0)))
    return sum(g.macs for g in gemms), gemms


def _qlinear_concat_data(n: int) -> tuple[int, ...]:
    # com.microsoft QLinearConcat(Y_scale, Y_zero_point, (X, X_scale, X_zero_point)...)
    return tuple(range(2, n, 3))


# -- the table ------------------------------------------------------------------------------------

def _rules() -> dict[tuple[str, str], OnnxRule]:
    rules: dict[tuple[str, str], OnnxRule] = {}

    def add(names: str, rule: OnnxRule, domain: str = DEFAULT_DOMAIN) -> None:
        for name in names.split():
            key = (domain, name)
            if key in rules:
                raise ValueError(f"duplicate op rule for {domain or 'ai.onnx'}.{name}")
            rules[key] = rule

    # convolutions
    add("Conv", OnnxRule(OpKind.CONV, (0, 1, 2), bias=2, cost=_conv(0, 1),
                         classify=_conv_classify(0, 1), qdq=True))
    add("ConvTranspose", OnnxRule(OpKind.CONV, (0, 1, 2), bias=2, cost=_conv(0, 1, True),
                                  classify=_conv_classify(0, 1, True), qdq=True))
    add("ConvInteger", OnnxRule(OpKind.CONV, (0, 1), cost=_conv(0, 1),
                                classify=_conv_classify(0, 1)))
    # QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B)
    add("QLinearConv", OnnxRule(OpKind.CONV, (0, 3, 8), bias=8, cost=_conv(0, 3),
                                classify=_conv_classify(0, 3)))
    add("FusedConv", OnnxRule(OpKind.CONV, (0, 1, 2, 3), bias=2, cost=_conv(0, 1),
                              classify=_conv_classify(0, 1)), _MS)

    # matrix products
    add("MatMul", OnnxRule(OpKind.MATMUL, (0, 1), cost=_matmul(0, 1),
                           classify=_linear_or_matmul(0, 1), qdq=True))
    add("Gemm", OnnxRule(OpKind.MATMUL, (0, 1, 2), bias=2, cost=_matmul(0, 1),
                         classify=_linear_or_matmul(0, 1), qdq=True))
    add("MatMulInteger", OnnxRule(OpKind.MATMUL, (0, 1), cost=_matmul(0, 1),
                                  classify=_linear_or_matmul(0, 1)))
    # QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)
    add("QLinearMatMul", OnnxRule(OpKind.MATMUL, (0, 3), cost=_matmul(0, 3),
                                  classify=_linear_or_matmul(0, 3)))
    add("Einsum", OnnxRule(OpKind.MATMUL, cost=_einsum, classify=_einsum_classify))
    add("FusedMatMul", OnnxRule(OpKind.MATMUL, (0, 1), cost=_matmul(0, 1),
                                classify=_linear_or_matmul(0, 1)), _MS)
    # MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zp, b_zp, bias)
    add("MatMulIntegerToFloat", OnnxRule(OpKind.MATMUL, (0, 1, 6), bias=6, cost=_matmul(0, 1),
                                         classify=_linear_or_matmul(0, 1)), _MS)
    # QGemm(A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp)
    add("QGemm", OnnxRule(OpKind.MATMUL, (0, 3, 6), bias=6, cost=_matmul(0, 3),
                          classify=_linear_or_matmul(0, 3)), _MS)
    # LSTM/GRU/RNN(X, W, R, B, sequence_lens, initial_h[, initial_c, P]): weights × activations
    add("LSTM GRU RNN", OnnxRule(OpKind.LINEAR, (0, 1, 2, 3, 5, 6, 7), bias=3,
                                 cost=_recurrent))

    # pooling and reductions (axes given as an input configure the op)
    pooling = OnnxRule(OpKind.POOLING, (0,), qdq=True)
    add("MaxPool AveragePool GlobalAveragePool", pooling)
    add("GlobalMaxPool LpPool GlobalLpPool ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd "
        "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax ArgMin CumSum",
        OnnxRule(OpKind.POOLING, (0,)))
    add("QLinearAveragePool QLinearGlobalAveragePool", OnnxRule(OpKind.POOLING, (0,)), _MS)

    # normalisation: batch norm's running mean and variance are statistics, not parameters
    add("BatchNormalization", OnnxRule(OpKind.NORMALIZATION, (0, 1, 2, 3, 4), buffers=(3, 4),
                                       op="batch_norm"))
    add("LayerNormalization InstanceNormalization GroupNormalization",
        OnnxRule(OpKind.NORMALIZATION, (0, 1, 2)))
    add("LpNormalization MeanVarianceNormalization LRN", OnnxRule(OpKind.NORMALIZATION, (0,)))
    add("SkipLayerNormalization SkipSimplifiedLayerNormalization SimplifiedLayerNormalization",
        OnnxRule(OpKind.NORMALIZATION), _MS)

    # activations
    act = OnnxRule(OpKind.ACTIVATION, (0,), keeps_layout=True)
    add("HardSwish HardSigmoid Tanh Elu Selu Celu Softplus Softsign ThresholdedRelu Gelu "
        "Mish Shrink", act)
    add("Relu Sigmoid LeakyRelu", OnnxRule(OpKind.ACTIVATION, (0,), keeps_layout=True, qdq=True))
    add("Clip", OnnxRule(OpKind.ACTIVATION, (0,), keeps_layout=True, qdq=True, op="clamp"))
    add("PRelu", OnnxRule(OpKind.ACTIVATION, (0, 1), keeps_layout=True))
    add("Softmax", OnnxRule(OpKind.ACTIVATION, (0,), qdq=True))
    add("LogSoftmax Hardmax", OnnxRule(OpKind.ACTIVATION, (0,)))
    add("FastGelu Gelu BiasGelu QuickGelu", OnnxRule(OpKind.ACTIVATION, keeps_layout=True), _MS)
    add("QLinearSigmoid QLinearLeakyRelu QLinearSoftmax", OnnxRule(OpKind.ACTIVATION, (0,)), _MS)

    # element-wise
    add("Add Mul Where", OnnxRule(OpKind.ELEMENTWISE, keeps_layout=True, qdq=True))
    add("Sub Div Pow Mod Max Min Mean Sum Equal Greater GreaterOrEqual Less LessOrEqual And Or "
        "Xor Not BitwiseAnd BitwiseOr BitwiseXor BitwiseNot BitShift Neg Abs Sqrt Reciprocal "
        "Exp Log Ceil Floor Round Sign Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh "
        "Erf IsNaN IsInf", OnnxRule(OpKind.ELEMENTWISE, keeps_layout=True))
    add("Trilu", OnnxRule(OpKind.ELEMENTWISE, (0,)))
    add("QuantizeLinear DequantizeLinear DynamicQuantizeLinear",
        OnnxRule(OpKind.ELEMENTWISE, (0,), keeps_layout=True))
    # QLinearAdd/QLinearMul(A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp)
    add("QLinearAdd QLinearMul", OnnxRule(OpKind.ELEMENTWISE, (0, 3)), _MS)

    # copies
    copy = OnnxRule(OpKind.DATA_MOVEMENT, (0,), qdq=True)
    add("Resize Pad DepthToSpace SpaceToDepth", copy)
    add("Concat", OnnxRule(OpKind.DATA_MOVEMENT, qdq=True))
    add("Upsample Tile ReverseSequence Col2Im CenterCropPad", OnnxRule(OpKind.DATA_MOVEMENT, (0,)))
    add("GatherElements GatherND Compress GridSample", OnnxRule(OpKind.DATA_MOVEMENT, (0, 1)))
    add("ScatterElements ScatterND Scatter", OnnxRule(OpKind.DATA_MOVEMENT, (0, 1, 2)))
    add("QLinearConcat", OnnxRule(OpKind.DATA_MOVEMENT, _qlinear_concat_data), _MS)

    # views where PyTorch makes them views (roofline.sources.onnx.layout), copies otherwise
    add("Reshape Flatten Squeeze Unsqueeze",
        OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="reshape", qdq=True))
    add("Transpose", OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="transpose", qdq=True))
    add("Expand", OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="expand", qdq=True))
    add("Slice", OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="slice", qdq=True))
    add("Split", OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="split", qdq=True))
    add("Gather", OnnxRule(OpKind.DATA_MOVEMENT, (0, 1), view="gather", qdq=True))
    add("Cast CastLike", OnnxRule(OpKind.DATA_MOVEMENT, (0,), view="cast", keeps_layout=True))

    add("Identity Dropout", OnnxRule(None, ignore="identity", qdq=True))
    add("Shape Size", OnnxRule(None, ignore="meta"))
    add("Constant", OnnxRule(None, ignore="constant"))
    add("ConstantOfShape Range EyeLike RandomNormal RandomUniform RandomNormalLike "
        "RandomUniformLike", OnnxRule(None, ignore="alloc"))
    return rules


RULES: dict[tuple[str, str], OnnxRule] = _rules()


def rule_for(domain: str, op_type: str) -> OnnxRule | None:
    """The rule for an ONNX operator (``domain`` "" or "ai.onnx" is the default), or None."""
    return RULES.get(("" if domain == "ai.onnx" else domain, op_type))


def op_name(domain: str, op_type: str) -> str:
    """The op name a layer of this operator carries."""
    rule = rule_for(domain, op_type)
    if rule is not None and rule.op is not None:
        return rule.op
    return snake_case(op_type)


#: How the README's table of covered operators groups the kinds, in its order.
_COVERAGE_GROUPS: tuple[tuple[str, str], ...] = (
    ("conv", "convolutions: conv, pointwise or depthwise from the weight's shape"),
    ("matmul", "matrix products: linear when one side is a weight, else matmul"),
    ("linear", "recurrent layers: their input and hidden GEMMs per step"),
    ("pooling", "pooling and reductions"),
    ("normalization", "normalisation"),
    ("activation", "activations"),
    ("elementwise", "element-wise"),
    ("data_movement", "copies (views where PyTorch makes them views)"),
)


def coverage_markdown() -> str:
    """The README's table of the ONNX operators the reader has a rule for (generated from
    :data:`RULES`, and checked against the README by the tests)."""
    groups: dict[str, list[str]] = {}
    for (domain, op_type), rule in RULES.items():
        key = str(rule.kind) if rule.kind is not None else f"ignored: {rule.ignore}"
        groups.setdefault(key, []).append(f"{domain}:{op_type}" if domain else op_type)
    lines = ["| what | operators (`com.microsoft:` ONNX Runtime's contrib ops) |",
             "|---|---|"]
    for key, title in _COVERAGE_GROUPS:
        lines.append(f"| {title} | {', '.join(groups.pop(key))} |")
    for key in sorted(groups):
        reason = key.removeprefix("ignored: ")
        lines.append(f"| ignored, {IGNORE_RULES[reason].split(':')[0]} | "
                     f"{', '.join(groups[key])} |")
    return "\n".join(lines)
