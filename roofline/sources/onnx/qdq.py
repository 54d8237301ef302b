"""Quantised graphs in QDQ form: which QuantizeLinear/DequantizeLinear nodes run as kernels of
their own and which ONNX Runtime fuses into their neighbour.

Owns the rule; the reader applies it. ``onnxruntime.quantization.quantize_static`` writes a
float graph with ``QuantizeLinear → DequantizeLinear`` pairs on every tensor it quantised:
``DQ(x_q) → Conv → Q`` reads as float but is meant to run as one int8 kernel. ONNX Runtime's
QDQ transformers do exactly that: each node that has a quantised kernel (its "node unit"
selectors: Conv, MatMul, Gemm, Add, Mul, pooling, Concat, Sigmoid, Softmax, ...) absorbs the
DQs on its inputs and the Q on its output; a DQ shared by several readers is duplicated
(``EnsureUniqueDQForNodeUnit``); around pure data movement (Reshape, Transpose, Resize, ...)
the pair is dropped. So here:

* a DequantizeLinear of a weight is folded: the reader of the weight reads the int8 (or
  int32 bias) initializer itself, priced at 1 byte (4 for the bias);
* a DequantizeLinear of an activation is not a layer when every reader has a quantised
  kernel (``OnnxRule.qdq``): they read the int8 tensor. When some reader does not (a
  HardSwish, an Erf, a LayerNormalization), the DQ is a kernel of its own that writes the
  float tensor those readers read; the others still read the int8 one;
* a QuantizeLinear is not a layer when its input is already int8 (written so by a quantised
  kernel whose every reader is a Q, or passed through views); otherwise it is a kernel that
  reads the float island and writes int8.

The float islands between a kept DQ and a kept Q are what ONNX Runtime runs in float too
(MobileNetV3's hard-swish and squeeze-excite): they carry 4 bytes per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .nodes import NodeGraph
from .ops import rule_for

__all__ = ["QdqPlan", "plan_qdq", "QUANT_OPS"]

#: Node types whose presence makes a graph quantised (precision int8).
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                       "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger",
                       "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool",
                       "QLinearAveragePool", "QLinearSigmoid", "QLinearLeakyRelu",
                       "QLinearSoftmax", "QGemm", "MatMulIntegerToFloat"})


@dataclass
class QdqPlan:
    """``absorbed_dq``: DQ nodes that are no layer (their output is the int8 input);
    ``reroute``: (reader node, DQ output) → the int8 value that reader reads instead;
    ``int8_outputs``: values a quantised kernel writes as int8 (their Q reads are absorbed)."""

    absorbed_dq: set[int] = field(default_factory=set)
    reroute: dict[tuple[int, str], str] = field(default_factory=dict)
    int8_outputs: dict[str, int] = field(default_factory=dict)


def _fusible(g: NodeGraph, index: int) -> bool:
    node = g.nodes[index]
    rule = rule_for(node.domain, node.op_type)
    return rule is not None and rule.qdq


def plan_qdq(g: NodeGraph) -> QdqPlan:
    plan = QdqPlan()
    for node in g.nodes:
        if node.op_type != "DequantizeLinear" or node.domain != "":
            continue
        source, out = node.inputs[0], node.outputs[0]
        if g.is_const(source) or out in g.output_names:
            continue
        readers = g.consumers.get(out, [])
        fusible = [r for r in readers if _fusible(g, r)]
        if readers and len(fusible) == len(readers):
            plan.absorbed_dq.add(node.index)
        for r in fusible:
            plan.reroute[(r, out)] = source
    for node in g.nodes:
        if node.op_type != "QuantizeLinear" or node.domain != "":
            continue
        value = node.inputs[0]
        producer = g.producer_node(value)
        if producer is None or g.is_const(value) or value in g.output_names:
            continue
        rule = rule_for(producer.domain, producer.op_type)
        if rule is None or not rule.qdq or rule.kind is None or rule.view is not None:
            continue
        readers = [g.nodes[r] for r in g.consumers.get(value, [])]
        if all(r.op_type == "QuantizeLinear" for r in readers):
            plan.int8_outputs[value] = g.dtype(node.outputs[0])
    return plan
