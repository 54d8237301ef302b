"""Exporter idioms: the groups of nodes ``torch.onnx.export`` writes for one PyTorch op, read
back as that op so that the ONNX graph matches the torch tracer's.

Owns the patterns; the reader turns each match into one layer. Three idioms, each matched only
in the exact form the TorchScript exporter (opset 14-17) emits and only when every tensor
inside the group has a single reader, so that nothing outside sees an intermediate:

* ``linear``: ``aten::linear`` on a 3-d or larger input is ``MatMul(x, Wᵀ)`` then
  ``Add(b, ·)`` with a 1-d bias of the output's width. One linear layer with a bias, as the
  tracer's ``linear`` (ONNX Runtime fuses the pair too, MatMulAddFusion).
* ``gelu``: ``aten::gelu`` before opset 20 is ``Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)``
  (or its tanh form, ``approximate="tanh"``). One activation, as ONNX Runtime's GeluFusion.
* ``silu`` and ``mish`` before opsets 22/18: ``Mul(x, Sigmoid(x))`` and
  ``Mul(x, Tanh(Softplus(x)))``. One activation each.
* ``scaled_dot_product_attention``: ``Mul(q, √s)`` and ``Mul(kᵀ, √s)`` into ``MatMul``,
  an optional additive mask, ``Softmax`` over the last axis, then ``MatMul`` with v. One
  attention layer with the tracer's two GEMMs, Q·Kᵀ and A·V; the scores are not written out.
  Attention written out by hand (``q @ k.transpose(-2, -1) * scale``) scales after the product
  and stays as the separate ops the tracer sees too.
* ``roll``: ``torch.roll`` over several dimensions is, per dimension, ``Concat`` of two
  ``Slice`` of the previous result along it. One copy, as the tracer's ``roll``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ...core.graph import OpKind
from .nodes import Node, NodeGraph

__all__ = ["Idiom", "find_idioms"]


@dataclass(frozen=True)
class Idiom:
    """One op the exporter wrote as several nodes.

    ``anchor``: the node whose place in the order the layer takes (the group's last node);
    ``members``: every node of the group (anchor included). ``inputs``: the values the op
    reads, in the tracer's order (activations or weights); ``bias``: its bias value, if any.
    """

    kind: str  # "linear", "gelu", "scaled_dot_product_attention"
    op: str  # the layer's op name
    layer_kind: OpKind
    name: str
    anchor: int
    members: tuple[int, ...]
    inputs: tuple[str, ...]
    output: str
    bias: str | None = None


def _other(node: Node, name: str) -> str | None:
    """The other input of a binary node that reads ``name``."""
    a, b = (node.inputs + ("", ""))[:2]
    if a == name:
        return b
    if b == name:
        return a
    return None


def _near(value: float | None, target: float, rel: float = 1e-5) -> bool:
    return value is not None and math.isclose(value, target, rel_tol=rel, abs_tol=1e-7)


def _next(g: NodeGraph, name: str, op_type: str) -> Node | None:
    """The only reader of ``name`` when it is an ``op_type`` node of the default domain."""
    index = g.only_consumer(name)
    if index is None:
        return None
    node = g.nodes[index]
    return node if node.op_type == op_type and node.domain == "" else None


def _const_operand(g: NodeGraph, node: Node, act: str) -> str | None:
    other = _other(node, act)
    return other if other and g.is_const(other) else None


def _linear(g: NodeGraph, mm: Node) -> Idiom | None:
    a, b = mm.inputs[:2]
    if g.is_const(a) == g.is_const(b):
        return None
    weight = b if g.is_const(b) else a
    if len(g.shapes.get(weight) or ()) != 2:
        return None
    add = _next(g, mm.outputs[0], "Add")
    if add is None:
        return None
    bias = _const_operand(g, add, mm.outputs[0])
    out_shape = g.shapes.get(mm.outputs[0])
    if bias is None or not out_shape or g.shapes.get(bias) != (out_shape[-1],):
        return None
    return Idiom("linear", "mat_mul", OpKind.LINEAR, mm.name or f"MatMul_{mm.index}", add.index,
                 (mm.index, add.index), (a, b), add.outputs[0], bias)


def _gelu_erf(g: NodeGraph, erf: Node) -> Idiom | None:
    div = g.producer_node(erf.inputs[0])
    if div is None or div.op_type not in ("Div", "Mul") or g.only_consumer(div.outputs[0]) is None:
        return None
    if div.op_type == "Div":
        x, c = div.inputs[:2]
    else:
        x = next((n for n in div.inputs if not g.is_const(n)), "")
        c = _other(div, x) or ""
    scale = g.scalar(c) if g.is_const(c) else None
    if not (_near(scale, math.sqrt(2.0)) if div.op_type == "Div"
            else _near(scale, 1 / math.sqrt(2.0))):
        return None
    add = _next(g, erf.outputs[0], "Add")
    if add is None or not _near(g.scalar(_const_operand(g, add, erf.outputs[0]) or ""), 1.0):
        return None
    mul = _next(g, add.outputs[0], "Mul")
    if mul is None or _other(mul, add.outputs[0]) != x:
        return None
    half = _next(g, mul.outputs[0], "Mul")
    if half is None or not _near(g.scalar(_const_operand(g, half, mul.outputs[0]) or ""), 0.5):
        return None
    members = (div.index, erf.index, add.index, mul.index, half.index)
    return Idiom("gelu", "gelu", OpKind.ACTIVATION, f"{erf.scope}/Gelu", half.index, members,
                 (x,), half.outputs[0])


def _gelu_tanh(g: NodeGraph, tanh: Node) -> Idiom | None:
    # Mul(½, Mul(x, Add(1, Tanh(Mul(β, Add(x, Mul(κ, Mul(x, Mul(x, x)))))))))
    beta = g.producer_node(tanh.inputs[0])
    if beta is None or beta.op_type != "Mul" or g.only_consumer(beta.outputs[0]) is None:
        return None
    inner = next((g.producer_node(n) for n in beta.inputs if not g.is_const(n)), None)
    if inner is None or inner.op_type != "Add" or g.only_consumer(inner.outputs[0]) is None:
        return None
    chain: list[Node] = []
    for x in inner.inputs:
        kappa = g.producer_node(_other(inner, x) or "")
        if kappa is None or kappa.op_type != "Mul":
            continue
        cube = next((g.producer_node(n) for n in kappa.inputs if not g.is_const(n)), None)
        if cube is None or cube.op_type != "Mul" or x not in cube.inputs:
            continue
        square = g.producer_node(_other(cube, x) or "")
        if square is None or square.op_type != "Mul" or square.inputs[:2] != (x, x):
            continue
        chain = [square, cube, kappa]
        break
    if not chain or any(g.only_consumer(n.outputs[0]) is None for n in chain):
        return None
    x = chain[1].inputs[0] if chain[1].inputs[1] == chain[0].outputs[0] else chain[1].inputs[1]
    one = _next(g, tanh.outputs[0], "Add")
    if one is None or not _near(g.scalar(_const_operand(g, one, tanh.outputs[0]) or ""), 1.0):
        return None
    mul = _next(g, one.outputs[0], "Mul")
    if mul is None or _other(mul, one.outputs[0]) != x:
        return None
    half = _next(g, mul.outputs[0], "Mul")
    if half is None or not _near(g.scalar(_const_operand(g, half, mul.outputs[0]) or ""), 0.5):
        return None
    members = (*(n.index for n in chain), inner.index, beta.index, tanh.index, one.index,
               mul.index, half.index)
    return Idiom("gelu", "gelu", OpKind.ACTIVATION, f"{tanh.scope}/Gelu", half.index,
                 tuple(sorted(members)), (x,), half.outputs[0])


def _gated(g: NodeGraph, first: Node, chain: Sequence[str], op: str) -> Idiom | None:
    """``Mul(x, f(x))`` where ``f`` is the unary ops ``chain`` starting at ``first``."""
    x = first.inputs[0]
    nodes = [first]
    for op_type in chain[1:]:
        following = _next(g, nodes[-1].outputs[0], op_type)
        if following is None:
            return None
        nodes.append(following)
    mul = _next(g, nodes[-1].outputs[0], "Mul")
    if mul is None or _other(mul, nodes[-1].outputs[0]) != x:
        return None
    members = tuple(n.index for n in nodes) + (mul.index,)
    return Idiom(op, op, OpKind.ACTIVATION, f"{first.scope}/{op.capitalize()}", mul.index,
                 members, (x,), mul.outputs[0])


def _silu(g: NodeGraph, sigmoid: Node) -> Idiom | None:
    return _gated(g, sigmoid, ("Sigmoid",), "silu")


def _mish(g: NodeGraph, softplus: Node) -> Idiom | None:
    return _gated(g, softplus, ("Softplus", "Tanh"), "mish")


def _scaled(g: NodeGraph, name: str) -> tuple[Node, str] | None:
    """``name`` = Mul(act, const) read only by its consumer: (the Mul, the activation)."""
    mul = g.producer_node(name)
    if mul is None or mul.op_type != "Mul" or g.only_consumer(name) is None:
        return None
    a, b = mul.inputs[:2]
    if g.is_const(b) and not g.is_const(a):
        return mul, a
    if g.is_const(a) and not g.is_const(b):
        return mul, b
    return None


def _attention(g: NodeGraph, softmax: Node) -> Idiom | None:
    shape = g.shapes.get(softmax.inputs[0])
    axis = int(softmax.attrs.get("axis", -1))
    if not shape or axis not in (-1, len(shape) - 1):
        return None
    scores = g.producer_node(softmax.inputs[0])
    mask: str | None = None
    members: list[int] = []
    if (scores is not None and scores.op_type == "Add"
            and g.only_consumer(scores.outputs[0]) is not None):
        for candidate in scores.inputs[:2]:
            producer = g.producer_node(candidate)
            if producer is not None and producer.op_type == "MatMul":
                members.append(scores.index)
                mask = _other(scores, candidate)
                scores = producer
                break
    if scores is None or scores.op_type != "MatMul" or g.only_consumer(scores.outputs[0]) is None:
        return None
    q = _scaled(g, scores.inputs[0])
    k = _scaled(g, scores.inputs[1])
    mix = _next(g, softmax.outputs[0], "MatMul")
    if q is None or k is None or mix is None or mix.inputs[0] != softmax.outputs[0]:
        return None
    v = mix.inputs[1]
    if g.is_const(v):
        return None
    members += [q[0].index, k[0].index, scores.index, softmax.index, mix.index]
    inputs = (q[1], k[1], v) + ((mask,) if mask else ())
    return Idiom("scaled_dot_product_attention", "scaled_dot_product_attention", OpKind.MATMUL,
                 f"{softmax.scope}/ScaledDotProductAttention", mix.index,
                 tuple(sorted(members)), inputs, mix.outputs[0])


def _roll_source(g: NodeGraph, concat: Node) -> tuple[str, list[int]] | None:
    """The tensor a ``Concat`` of two pieces of it along the concatenated axis rolls (each
    piece a Slice of it, or the tensor itself when the exporter dropped a full slice), and the
    Slice nodes."""
    present = [n for n in concat.inputs if n]
    if len(present) != 2:
        return None
    pieces = []
    for name in present:
        node = g.producer_node(name)
        if node is not None and node.op_type == "Slice" and g.only_consumer(name) is not None:
            pieces.append((node.inputs[0], node))
        else:
            pieces.append((name, None))
    sources = {source for source, _ in pieces}
    slices = [node for _, node in pieces if node is not None]
    if len(sources) != 1 or not slices:
        return None
    (source,) = sources
    rank = len(g.shapes.get(source) or ())
    if not rank:
        return None
    axis = int(concat.attrs.get("axis", 0)) % rank
    for node in slices:
        axes = g.const_value(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
        steps = g.const_value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else None
        if axes is None or [int(a) % rank for a in axes.reshape(-1)] != [axis]:
            return None
        if steps is not None and [int(x) for x in steps.reshape(-1)] != [1]:
            return None
    return source, [node.index for node in slices]


def _rolls(g: NodeGraph, taken: set[int]) -> list[Idiom]:
    """Rolls, each chain of per-dimension Concats merged into one."""
    by_output: dict[str, Idiom] = {}
    for node in g.nodes:
        if node.op_type != "Concat" or node.domain != "" or node.index in taken:
            continue
        found = _roll_source(g, node)
        if found is None:
            continue
        source, slices = found
        members = [node.index, *slices]
        earlier = by_output.get(source)
        if earlier is not None and set(g.consumers.get(source, [])) <= set(members):
            del by_output[source]
            members += earlier.members
            source = earlier.inputs[0]
        by_output[node.outputs[0]] = Idiom(
            "roll", "roll", OpKind.DATA_MOVEMENT, f"{node.scope}/Roll", node.index,
            tuple(sorted(members)), (source,), node.outputs[0])
    return list(by_output.values())


def find_idioms(g: NodeGraph) -> list[Idiom]:
    """Every idiom in ``g``; no node belongs to two."""
    found: list[Idiom] = []
    taken: set[int] = set()
    matchers = {"Softmax": _attention, "Erf": _gelu_erf, "Tanh": _gelu_tanh,
                "Sigmoid": _silu, "Softplus": _mish}
    # Attention and GELU first: their MatMuls are not linear layers.
    for node in g.nodes:
        matcher = matchers.get(node.op_type) if node.domain == "" else None
        idiom = matcher(g, node) if matcher is not None else None
        if idiom is not None and not taken.intersection(idiom.members):
            found.append(idiom)
            taken.update(idiom.members)
    for node in g.nodes:
        if node.op_type == "MatMul" and node.domain == "" and node.index not in taken:
            idiom = _linear(g, node)
            if idiom is not None and not taken.intersection(idiom.members):
                found.append(idiom)
                taken.update(idiom.members)
    for idiom in _rolls(g, taken):
        # A roll of one dimension is one Concat either way; only chains change the count.
        if sum(g.nodes[i].op_type == "Concat" for i in idiom.members) > 1:
            found.append(idiom)
            taken.update(idiom.members)
    return found


def attention_gemms(q: Sequence[int], kt: Sequence[int], v: Sequence[int]) -> tuple:
    """The tracer's GEMMs of attention: Q·Kᵀ (heads, L, S, E) and A·V (heads, L, Ev, S), with
    q (..., L, E), kᵀ (..., E, S), v (..., S, Ev) and heads the broadcast batch of q and k."""
    from .ops import matmul_gemm

    scores = matmul_gemm(tuple(q), tuple(kt))
    mix = matmul_gemm((*tuple(q)[:-2], q[-2], kt[-1]), tuple(v))
    return scores, mix
