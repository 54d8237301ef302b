"""Shape inference for a bound ONNX graph: onnx's own, helped by evaluating the small integer
computations on shapes that its data propagation does not follow.

Owns getting a static shape for every value once the model's dynamic dimensions are bound. An
exporter that keeps dimensions dynamic writes ``Shape → Gather → Div → Unsqueeze → Concat →
Reshape``; onnx's data propagation covers some of those ops (not ``Div``, ``Range``, ``Where``
...), so a shape it cannot see is worked out here with numpy from the shapes already known,
written into the graph as a constant, and inference runs again, until every shape is known or
nothing more can be learnt. Only small tensors (shapes, axes, indices) are evaluated; weights
never are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ...errors import ModelLoadError

__all__ = ["infer_static_shapes", "evaluate"]

#: Tensors larger than this are never evaluated (shapes and indices are far smaller).
_MAX_ELEMENTS = 4096
_MAX_ROUNDS = 12


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute
            if a.type not in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)}


def _axes(node_attrs: Mapping[str, Any], inputs: Sequence[np.ndarray | None],
          at: int) -> list[int] | None:
    if len(inputs) > at and inputs[at] is not None:
        return [int(a) for a in np.asarray(inputs[at]).reshape(-1)]
    value = node_attrs.get("axes")
    return None if value is None else [int(a) for a in value]


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        return (np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX Div truncates
    return a / b


def _reshape(x: np.ndarray, shape: np.ndarray, allowzero: int) -> np.ndarray:
    target = [int(d) for d in shape.reshape(-1)]
    if not allowzero:
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


def _slice(x: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None,
           steps: np.ndarray | None) -> np.ndarray:
    index = [slice(None)] * x.ndim
    axes_list = list(range(len(starts))) if axes is None else [int(a) for a in axes.reshape(-1)]
    steps_list = [1] * len(axes_list) if steps is None else [int(s) for s in steps.reshape(-1)]
    for axis, start, end, step in zip(axes_list, starts.reshape(-1), ends.reshape(-1),
                                      steps_list, strict=True):
        index[axis % x.ndim] = slice(int(start), int(end), step)
    return x[tuple(index)]


Evaluator = Callable[[Mapping[str, Any], list[Any]], Any]

_OPS: dict[str, Evaluator] = {
    "Identity": lambda a, x: x[0],
    "Cast": lambda a, x: x[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
    "Add": lambda a, x: x[0] + x[1],
    "Sub": lambda a, x: x[0] - x[1],
    "Mul": lambda a, x: x[0] * x[1],
    "Div": lambda a, x: _int_div(x[0], x[1]),
    "Mod": lambda a, x: np.fmod(x[0], x[1]) if a.get("fmod") else np.mod(x[0], x[1]),
    "Neg": lambda a, x: -x[0],
    "Abs": lambda a, x: np.abs(x[0]),
    "Floor": lambda a, x: np.floor(x[0]),
    "Ceil": lambda a, x: np.ceil(x[0]),
    "Sqrt": lambda a, x: np.sqrt(x[0]),
    "Reciprocal": lambda a, x: 1 / x[0],
    "Pow": lambda a, x: np.power(x[0], x[1]),
    "Max": lambda a, x: np.maximum.reduce(x),
    "Min": lambda a, x: np.minimum.reduce(x),
    "Equal": lambda a, x: np.equal(x[0], x[1]),
    "Less": lambda a, x: np.less(x[0], x[1]),
    "Greater": lambda a, x: np.greater(x[0], x[1]),
    "LessOrEqual": lambda a, x: np.less_equal(x[0], x[1]),
    "GreaterOrEqual": lambda a, x: np.greater_equal(x[0], x[1]),
    "Not": lambda a, x: np.logical_not(x[0]),
    "And": lambda a, x: np.logical_and(x[0], x[1]),
    "Or": lambda a, x: np.logical_or(x[0], x[1]),
    "Where": lambda a, x: np.where(x[0], x[1], x[2]),
    "Gather": lambda a, x: np.take(x[0], x[1].astype(np.int64), axis=int(a.get("axis", 0))),
    "Concat": lambda a, x: np.concatenate([np.atleast_1d(v) for v in x],
                                          axis=int(a.get("axis", 0))),
    "Unsqueeze": lambda a, x: np.expand_dims(x[0], tuple(_axes(a, x, 1) or ())),
    "Squeeze": lambda a, x: np.squeeze(x[0], tuple(_axes(a, x, 1)) if _axes(a, x, 1) else None),
    "Reshape": lambda a, x: _reshape(x[0], x[1], int(a.get("allowzero", 0))),
    "Expand": lambda a, x: np.broadcast_to(
        x[0], np.broadcast_shapes(x[0].shape, tuple(int(d) for d in x[1].reshape(-1)))),
    "Slice": lambda a, x: _slice(x[0], x[1], x[2], x[3] if len(x) > 3 else None,
                                 x[4] if len(x) > 4 else None),
    "Transpose": lambda a, x: np.transpose(x[0], a.get("perm")),
    "Range": lambda a, x: np.arange(x[0].item(), x[1].item(), x[2].item(),
                                    dtype=np.result_type(x[0], x[1], x[2])),
    "ConstantOfShape": lambda a, x: np.full(
        tuple(int(d) for d in x[0].reshape(-1)),
        numpy_helper.to_array(a["value"]).reshape(-1)[0] if "value" in a else np.float32(0),
        dtype=numpy_helper.to_array(a["value"]).dtype if "value" in a else np.float32),
    "ReduceProd": lambda a, x: np.prod(x[0], axis=tuple(_axes(a, x, 1)) if _axes(a, x, 1)
                                       else None, keepdims=bool(a.get("keepdims", 1))),
    "ReduceSum": lambda a, x: np.sum(x[0], axis=tuple(_axes(a, x, 1)) if _axes(a, x, 1)
                                     else None, keepdims=bool(a.get("keepdims", 1))),
    "ReduceMax": lambda a, x: np.max(x[0], axis=tuple(_axes(a, x, 1)) if _axes(a, x, 1)
                                     else None, keepdims=bool(a.get("keepdims", 1))),
    "ReduceMin": lambda a, x: np.min(x[0], axis=tuple(_axes(a, x, 1)) if _axes(a, x, 1)
                                     else None, keepdims=bool(a.get("keepdims", 1))),
    "Tile": lambda a, x: np.tile(x[0], tuple(int(r) for r in x[1].reshape(-1))),
    "Trilu": lambda a, x: (np.triu if a.get("upper", 1) else np.tril)(
        x[0], int(x[1]) if len(x) > 1 and x[1] is not None else 0),
}


def _shape_value(node: onnx.NodeProto, shape: Sequence[int]) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(math.prod(shape), dtype=np.int64)
    a = _attrs(node)
    start, end = int(a.get("start", 0)), a.get("end")
    dims = list(shape)[start:None if end is None else int(end)]
    return np.array(dims, dtype=np.int64)


def evaluate(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The value of every small tensor computable from constants and the ``shapes`` known."""
    values: dict[str, Any] = {}
    for t in model.graph.initializer:
        if math.prod(t.dims) <= _MAX_ELEMENTS and t.data_location != onnx.TensorProto.EXTERNAL:
            values[t.name] = numpy_helper.to_array(t)
    for node in model.graph.node:
        try:
            if node.op_type == "Constant":
                value = constant_value(node)
            elif node.op_type in ("Shape", "Size"):
                shape = shapes.get(node.input[0])
                value = None if shape is None else _shape_value(node, shape)
            elif node.op_type in _OPS and node.domain in ("", "ai.onnx"):
                ins = [values.get(n) if n else None for n in node.input]
                if any(v is None for n, v in zip(node.input, ins, strict=True) if n):
                    continue
                value = _OPS[node.op_type](_attrs(node), ins)
            else:
                continue
        except Exception:  # noqa: BLE001 - not evaluable here: onnx's inference decides
            continue
        if value is not None and np.size(value) <= _MAX_ELEMENTS and node.output:
            values[node.output[0]] = np.asarray(value)
    return values


def constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value a Constant node holds (None for a sparse or string constant)."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int"):
            return np.array(onnx.helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.array(list(onnx.helper.get_attribute_value(a)))
    return None


def _known_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for info in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        t = info.type.tensor_type
        if info.type.HasField("tensor_type") and t.HasField("shape") and all(
                d.HasField("dim_value") for d in t.shape.dim):
            shapes[info.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    for t in model.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def _stand_in(node: onnx.NodeProto) -> onnx.NodeProto | None:
    """A standard op with the same output shapes and types as a com.microsoft op that
    ONNX Runtime's quantiser or optimiser writes (onnx's inference does not know them), for
    shape inference only; None when there is none."""
    ins, outs, attrs = list(node.input), list(node.output)[:1], _attrs(node)
    make = onnx.helper.make_node
    op = node.op_type
    if op in ("QLinearAdd", "QLinearMul"):  # (A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp)
        return make(op[len("QLinear"):], [ins[0], ins[3]], outs)
    if op in ("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "FastGelu", "Gelu",
              "BiasGelu", "QuickGelu", "SkipLayerNormalization", "SimplifiedLayerNormalization",
              "SkipSimplifiedLayerNormalization"):
        return make("Identity", [ins[0]], outs)
    if op == "QLinearGlobalAveragePool" and not attrs.get("channels_last"):
        return make("GlobalAveragePool", [ins[0]], outs)
    if op == "QLinearConcat":  # (Y_scale, Y_zp, (X, X_scale, X_zp)...)
        return make("Concat", ins[2::3], outs, axis=int(attrs.get("axis", 0)))
    if op == "QGemm":  # (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp)
        return make("Gemm", [ins[0], ins[3]], outs, transA=int(attrs.get("transA", 0)),
                    transB=int(attrs.get("transB", 0)))
    if op == "FusedConv":
        keep = {k: v for k, v in attrs.items()
                if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")}
        return make("Conv", ins[:3], outs, **keep)
    if op == "FusedGemm":
        return make("Gemm", ins[:3], outs, transA=int(attrs.get("transA", 0)),
                    transB=int(attrs.get("transB", 0)))
    return None


def _with_stand_ins(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        if node.domain == "com.microsoft":
            stand_in = _stand_in(node)
            if stand_in is not None:
                stand_in.name = node.name
                node.CopyFrom(stand_in)


def _infer_once(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                            data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx's inference rejects a malformed graph
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"ONNX shape inference failed: {type(exc).__name__}: "
                             f"{text}") from None


def infer_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (inputs bound) with every shape inference can find, rounds of evaluated shape
    arithmetic included. Returns the inferred copy; ``model`` itself is changed (constants
    replace the shape computations that were evaluated, standard stand-ins the com.microsoft
    ops)."""
    _with_stand_ins(model)
    inferred = _infer_once(model)
    for _ in range(_MAX_ROUNDS):
        shapes = _known_shapes(inferred)
        missing = [n for n in model.graph.node
                   if any(o and o not in shapes for o in n.output)]
        if not missing:
            break
        values = evaluate(model, shapes)
        # The values the unknown shapes wait for: small inputs of nodes whose outputs are not
        # known yet, made constants so that inference reads them.
        wanted = {name for n in missing for name in n.input if name in values}
        producers = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
        replaced = 0
        for name in wanted:
            index = producers.get(name)
            if index is None or model.graph.node[index].op_type == "Constant":
                continue
            const = onnx.helper.make_node(
                "Constant", [], [name], name=model.graph.node[index].name or name,
                value=numpy_helper.from_array(np.asarray(values[name]), name))
            model.graph.node[index].CopyFrom(const)
            replaced += 1
        if not replaced:
            break
        inferred = _infer_once(model)
    return inferred
