"""The ONNX graph as the reader walks it: nodes in order, who produces and who reads each value,
which values are constants, their shapes, types and (for small constants) their values.

Owns the static facts about a loaded, shape-inferred ONNX model that the reader, the idiom
matcher and the QDQ planner share; decides nothing about costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import TraceError
from .ops import rule_for
from .shapes import constant_value

__all__ = ["Node", "NodeGraph", "FLOAT_TYPES", "QUANT_TYPES", "dtype_name", "dtype_bytes"]

T = onnx.TensorProto
#: ONNX element types that are floating point.
FLOAT_TYPES = frozenset({T.FLOAT, T.FLOAT16, T.BFLOAT16, T.DOUBLE})
#: 8-bit (and narrower) integer types a quantised graph stores tensors in.
QUANT_TYPES = frozenset({T.INT8, T.UINT8, T.INT4, T.UINT4})
_DTYPE_NAMES = {T.FLOAT: "float32", T.FLOAT16: "float16", T.BFLOAT16: "bfloat16",
                T.DOUBLE: "float64", T.INT64: "int64", T.INT32: "int32", T.INT16: "int16",
                T.INT8: "int8", T.UINT8: "uint8", T.BOOL: "bool"}


def dtype_name(elem_type: int) -> str | None:
    """The roofline name of an ONNX element type (a key of ``DTYPE_BYTES``), or None."""
    return _DTYPE_NAMES.get(elem_type)


def dtype_bytes(elem_type: int) -> int:
    """Bytes per element of an ONNX element type (4-bit types round up to 1)."""
    if elem_type in (T.INT4, T.UINT4):
        return 1
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize


@dataclass(frozen=True)
class Node:
    """One node: its position, identity, inputs and outputs by value name ("" = absent)."""

    index: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """The node name without its last component (``/blocks/blocks.0/attn``)."""
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            continue
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        out[a.name] = value
    return out


class NodeGraph:
    """Nodes, producers, consumers, constants, shapes and element types of one model."""

    def __init__(self, model: onnx.ModelProto, inferred: onnx.ModelProto, base_dir: Path):
        """``model``: the file as loaded; ``inferred``: its skeleton after shape inference
        (the same nodes, with every value's type and shape)."""
        graph = model.graph
        self.base_dir = base_dir
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.nodes: list[Node] = [
            Node(i, n.name, n.op_type, "" if n.domain == "ai.onnx" else n.domain,
                 tuple(n.input), tuple(n.output),
                 _attrs(n) if n.op_type != "Constant" else {})
            for i, n in enumerate(graph.node)]
        self._constant_protos = {n.output[0]: n for n in graph.node
                                 if n.op_type == "Constant" and n.output}
        self.input_names = [i.name for i in graph.input if i.name not in self.initializers]
        self.output_names = [o.name for o in graph.output]
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for node in self.nodes:
            for name in node.outputs:
                if name:
                    self.producer[name] = node.index
            for name in dict.fromkeys(node.inputs):
                if name:
                    self.consumers.setdefault(name, []).append(node.index)
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.types: dict[str, int] = {}
        for info in (*inferred.graph.input, *inferred.graph.value_info,
                     *inferred.graph.output):
            self._record(info)
        for name, t in self.initializers.items():
            self.shapes[name] = tuple(t.dims)
            self.types[name] = t.data_type
        for name in self._constant_protos:
            value = self.const_value(name)
            if value is not None:
                self.shapes[name] = tuple(value.shape)
                self.types[name] = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
        self.constants = self._constant_values()

    def _record(self, info: onnx.ValueInfoProto) -> None:
        t = info.type.tensor_type
        if not info.type.HasField("tensor_type"):
            return
        if t.elem_type:
            self.types[info.name] = t.elem_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            self.shapes[info.name] = tuple(int(d.dim_value) for d in t.shape.dim)

    def _constant_values(self) -> set[str]:
        """Values known before the model runs: initializers, Constant outputs, shape queries
        (every dimension is bound), allocations, and anything computed from those alone."""
        const = set(self.initializers)
        for node in self.nodes:
            rule = rule_for(node.domain, node.op_type)
            present = [n for n in node.inputs if n]
            shape_query = rule is not None and rule.ignore in ("meta", "alloc")
            if (node.op_type == "Constant" or shape_query
                    or (present and all(n in const for n in present))):
                const.update(n for n in node.outputs if n)
        return const

    # -- queries ------------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.constants

    def shape(self, name: str, node: Node | None = None) -> tuple[int, ...]:
        """The static shape of value ``name`` (a TraceError when inference could not tell)."""
        shape = self.shapes.get(name)
        if shape is None:
            where = f" (output of node {node.name or node.op_type!r}, {node.op_type})" \
                if node is not None else ""
            raise TraceError(f"cannot infer the shape of ONNX value {name!r}{where}: the graph "
                             f"needs a shape that shape inference could not work out")
        return shape

    def dtype(self, name: str) -> int:
        return self.types.get(name, T.FLOAT)

    def only_consumer(self, name: str) -> int | None:
        """The one node that reads ``name`` when exactly one does and it is no graph output."""
        readers = self.consumers.get(name, [])
        if len(readers) != 1 or name in self.output_names:
            return None
        return readers[0]

    def producer_node(self, name: str) -> Node | None:
        index = self.producer.get(name)
        return None if index is None else self.nodes[index]

    def const_value(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output (None for anything else)."""
        t = self.initializers.get(name)
        if t is not None:
            if t.data_location == T.EXTERNAL:
                from onnx.external_data_helper import load_external_data_for_tensor

                t = T.FromString(t.SerializeToString())
                try:
                    load_external_data_for_tensor(t, str(self.base_dir))
                except OSError:
                    return None
            return numpy_helper.to_array(t)
        node = self._constant_protos.get(name)
        return None if node is None else constant_value(node)

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, else None."""
        value = self.const_value(name)
        if value is None or value.size != 1:
            return None
        return float(value.reshape(()).item())

    def readers(self, names: Iterable[str]) -> set[int]:
        return {i for n in names for i in self.consumers.get(n, [])}
