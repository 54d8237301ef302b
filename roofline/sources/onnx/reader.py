"""The ONNX reader: an ``.onnx`` file turned into the LayerGraph the torch tracer builds for the
same model.

Owns loading the file, binding its dynamic dimensions, shape inference, and the walk that turns
every node into a layer (through the op table in ``roofline.sources.onnx.ops``), an ignored
entry or an unknown layer; the content fingerprint the graph cache keys on. Imports ``onnx``
(and numpy), never torch or onnxruntime.

How a file becomes the tracer's graph:

* Initializers and Constant nodes are weights, read by the layers that read them; a parameter
  is counted once however many nodes read it (the exporter's Identity copies of tied or
  equal-valued initializers, and a weight it stored again transposed for a tied ``nn.Linear``,
  are the same parameter). Conv/Gemm/linear biases are ``bias_elements``; batch norm's running
  statistics are weights, not parameters; a one-element constant read by an element-wise op is
  a scalar operand (PyTorch passes those as Python numbers), not a weight.
* A node whose every input is a constant is folded ahead of time ("constant"); so are shape
  queries (every dimension is bound) and everything computed from them.
* Views follow PyTorch (``roofline.sources.onnx.layout``): Transpose, Slice, Split, Expand,
  Squeeze/Unsqueeze and Gather of one index are views; Reshape and Flatten are views when
  PyTorch's ``view`` could make them one, else a copy (``data_movement``). Copies that move
  data (Concat, Pad, Resize, DepthToSpace, Gather of many indices, Cast) are layers.
* The exporter's multi-node forms of one PyTorch op (``idioms``) are read back as that op;
  QDQ pairs are fused as ONNX Runtime fuses them (``qdq``).

Layer names are node names (op type + index when a node has none); ``module`` is the module
path in a torch-exported node name (``/features/features.3/conv/Conv`` → ``features.3.conv``),
``module_type`` the ONNX op type, ``op`` the op type in lower snake case.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ...core.graph import (
    InputSpec,
    Layer,
    LayerGraph,
    Ledger,
    OpKind,
    TensorUse,
    transcendental_ops,
)
from ...errors import ModelLoadError, TraceError, UsageError
from ...units import check_precision
from . import layout
from .idioms import Idiom, attention_gemms, find_idioms
from .nodes import FLOAT_TYPES, QUANT_TYPES, Node, NodeGraph, dtype_bytes, dtype_name
from .ops import IGNORE_RULES, OnnxRule, linear_gemm, matmul_gemm, op_name, rule_for
from .qdq import QUANT_OPS, plan_qdq
from .shapes import infer_static_shapes

__all__ = ["read_onnx", "onnx_fingerprint", "onnx_input_specs", "bind_inputs", "bound_inputs",
           "module_path"]

Shape = tuple[int, ...]
T = onnx.TensorProto
#: Ops that read rows of their data input picked by indices (an embedding is a Gather).
_LOOKUPS = frozenset({"Gather", "GatherElements", "GatherND"})

#: Initializer types that hold trained parameters (quantised weights and int32 biases too);
#: int64 and bool initializers are index tables and masks, buffers of the model.
_PARAM_TYPES = FLOAT_TYPES | QUANT_TYPES | {T.INT32}


# -- values the walk tracks --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Act:
    """An activation: graph-wide tensor id, the shape and strides (in elements) of this view
    of it, and its element type."""

    tid: int
    shape: Shape
    strides: Shape
    dtype: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class _Const:
    """A constant: ``key`` names it (reads of the same key count once per layer), ``sources``
    are the parameter tensors it is made from (counted once per graph)."""

    key: str
    shape: Shape | None
    sources: frozenset[str]

    @property
    def elements(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 0


_Value = _Act | _Const


# -- loading and binding -------------------------------------------------------------------------

def _load(path: str | Path) -> tuple[onnx.ModelProto, Path]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelLoadError(f"ONNX file {str(path)!r} does not exist")
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's own errors: not an ONNX file
        raise ModelLoadError(f"{str(path)!r} is not an ONNX model: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    if not model.ir_version or not model.HasField("graph") or not (
            model.graph.node or model.graph.output):
        raise ModelLoadError(f"{str(path)!r} is not an ONNX model (no graph in it)")
    return model, file.resolve().parent


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def onnx_fingerprint(path: str | Path) -> str:
    """A hash of the model's content: the file's bytes and those of any external data files it
    names (for caches keyed on it)."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read ONNX file {str(path)!r}: {exc.strerror}") from None
    digest = hashlib.sha256(data)
    try:
        model = onnx.load_from_string(data, load_external_data=False) if b"location" in data \
            else None
    except Exception:  # noqa: BLE001 - not an ONNX file: its bytes are its fingerprint
        model = None
    if model is not None:
        names = sorted({e.value for t in model.graph.initializer if t.data_location == T.EXTERNAL
                        for e in t.external_data if e.key == "location"})
        for name in names:
            extra = file.parent / name
            if extra.is_file():
                digest.update(name.encode())
                digest.update(extra.read_bytes())
    return digest.hexdigest()[:16]


def _dims(info: onnx.ValueInfoProto) -> list[int | str | None]:
    dims: list[int | str | None] = []
    for d in info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _shape_text(dims: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _positive(value: object, what: str) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
        if number != float(value):  # type: ignore[arg-type]
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{what} must be a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise UsageError(f"{what} must be a whole number >= 1, got {number}")
    return number


Declared = list[tuple[str, list[int | str | None], str]]


def _declared(model: onnx.ModelProto) -> Declared:
    """The model's inputs as the file declares them: (name, dims with names for dynamic ones,
    dtype name)."""
    initializers = {t.name for t in model.graph.initializer}
    out: Declared = []
    for info in model.graph.input:
        if info.name in initializers:
            continue
        elem = info.type.tensor_type.elem_type
        dtype = dtype_name(elem)
        if dtype is None:
            raise ModelLoadError(f"input {info.name!r} has ONNX type "
                                 f"{T.DataType.Name(elem)}, which roofline cannot size")
        out.append((info.name, _dims(info), dtype))
    return out


def bind_inputs(declared: Declared, inputs: Sequence[InputSpec | Sequence[int]] | None = None,
                dims: Mapping[str, int] | None = None, batch: int | None = None,
                resolution: int | None = None) -> list[InputSpec]:
    """Every declared input's static shape, from the file and what the caller gave (see
    :func:`read_onnx`)."""
    declared_dims = {name: d for name, d, _ in declared}
    bound: dict[str, list[int | str | None]] = {n: list(d) for n, d in declared_dims.items()}
    named: dict[str, int] = {}

    def bind_param(param: str, value: int, where: str) -> None:
        if param in named and named[param] != value:
            raise UsageError(f"dynamic dimension {param!r} is bound to both {named[param]} and "
                             f"{value} ({where})")
        named[param] = value

    names = [name for name, _, _ in declared]
    dtypes = {name: dtype for name, _, dtype in declared}
    given_keys: set[str] = set()
    for position, spec in enumerate(inputs or ()):
        if isinstance(spec, InputSpec):
            shape, key = spec.shape, spec.name
        else:
            shape, key = tuple(spec), ""
        if key and key not in declared_dims:
            raise UsageError(f"the model has no input {key!r}; its inputs are "
                             f"{', '.join(names) or 'none'}")
        if not key:
            if position >= len(names):
                raise UsageError(f"{len(inputs or ())} input shapes given; the model takes "
                                 f"{len(names)} ({', '.join(names)})")
            key = names[position]
        given_keys.add(key)
        if isinstance(spec, InputSpec) and spec.dtype not in ("float32", dtypes[key]):
            raise UsageError(f"input {key!r} is {dtypes[key]} in the file, not {spec.dtype}")
        want = declared_dims[key]
        shape = tuple(_positive(d, f"dimension {i} of input {key!r}") for i, d in enumerate(shape))
        if len(shape) != len(want):
            raise UsageError(f"input {key!r} is {len(want)}-d {_shape_text(want)}, got shape "
                             f"{shape}")
        for i, (have, given) in enumerate(zip(want, shape, strict=True)):
            if isinstance(have, int) and have != given:
                raise UsageError(f"input {key!r} has a fixed dimension {i} of {have} "
                                 f"{_shape_text(want)}, got {given}")
            if isinstance(have, str):
                bind_param(have, given, f"input {key!r}")
            bound[key][i] = given
    for param, value in (dims or {}).items():
        bind_param(param, _positive(value, f"dimension {param!r}"), "dims")
    if batch is not None:
        batch = _positive(batch, "batch")
    if resolution is not None:
        resolution = _positive(resolution, "resolution")
        if not any(len(d) == 4 for d in declared_dims.values()):
            raise UsageError("a resolution needs an image input (N, C, H, W); the model's "
                             "inputs are " + ", ".join(f"{n} {_shape_text(d)}"
                                                       for n, d in declared_dims.items()))
    for key, shape in bound.items():
        declared_shape = declared_dims[key]
        for i, d in enumerate(shape):
            if isinstance(d, int):
                if key in given_keys:
                    continue
                if i == 0 and batch is not None and d != batch:
                    raise UsageError(f"input {key!r} has a fixed batch of {d}; the file cannot "
                                     f"run at batch {batch}")
                if resolution is not None and len(shape) == 4 and i in (2, 3) \
                        and d != resolution:
                    raise UsageError(f"input {key!r} has a fixed {'height' if i == 2 else 'width'}"
                                     f" of {d}; the file cannot run at resolution {resolution}")
                continue
            if isinstance(d, str) and d in named:
                shape[i] = named[d]
            elif i == 0:
                # The batch: the caller's, else 1 (every model source defaults to batch 1).
                shape[i] = batch if batch is not None else 1
            elif resolution is not None and len(shape) == 4 and i in (2, 3):
                shape[i] = resolution
            else:
                label = f" ({d!r})" if isinstance(d, str) else ""
                raise UsageError(
                    f"dynamic dimension {i}{label} of input {key!r} {_shape_text(declared_shape)}"
                    f" is not bound: give the input's shape (--input SHAPE[:DTYPE]"
                    + (" or a resolution" if len(shape) == 4 and i in (2, 3) else "")
                    + "; in Python inputs="
                    + (f" or dims={{{d!r}: size}}" if isinstance(d, str) else "") + ")")
            if isinstance(d, str):
                named.setdefault(d, int(shape[i]))  # type: ignore[arg-type]
    return [InputSpec(tuple(int(d) for d in bound[name]), dtypes[name], name)  # type: ignore
            for name in names]


def bound_inputs(path: str | Path, *, batch: int | None = None,
                 resolution: int | None = None) -> list[InputSpec]:
    """The file's inputs with a dynamic batch and image size bound (the source's default)."""
    return bind_inputs(onnx_input_specs(path), batch=batch, resolution=resolution)


def onnx_input_specs(path: str | Path) -> Declared:
    """The model's inputs as the file declares them: (name, dims with names for dynamic ones,
    dtype)."""
    model, _ = _load(path)
    return _declared(model)


#: Initializers with more elements than this go to shape inference as typed inputs without
#: their data: nothing infers a shape from a weight's values, and serialising the weights is
#: most of inference's time.
_INFER_DATA_LIMIT = 4096


def _infer(model: onnx.ModelProto, specs: Sequence[InputSpec]) -> onnx.ModelProto:
    """A skeleton of ``model`` (no large weights) with its inputs bound and every value's
    shape inferred."""
    src = model.graph
    bound = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                            functions=model.functions)
    graph = bound.graph
    graph.name = src.name
    graph.node.extend(src.node)
    graph.output.extend(src.output)
    by_name = {s.name: s for s in specs}
    for info in src.input:
        if info.name not in by_name:
            continue
        bound_input = graph.input.add()
        bound_input.CopyFrom(info)
        shape = bound_input.type.tensor_type.shape
        del shape.dim[:]
        for d in by_name[info.name].shape:
            shape.dim.add().dim_value = d
    for t in src.initializer:
        if math.prod(t.dims) <= _INFER_DATA_LIMIT and t.data_location != T.EXTERNAL:
            graph.initializer.append(t)
        else:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    # What the exporter recorded for dynamic shapes is stale once dimensions are bound.
    for info in graph.output:
        if info.type.HasField("tensor_type"):
            info.type.tensor_type.ClearField("shape")
    return infer_static_shapes(bound)


def module_path(node_name: str) -> str:
    """The PyTorch module path in a torch-exported node name: ``/features/features.3/conv/Conv``
    → ``features.3.conv``; ``/blocks/blocks.0/mlp/mlp.1/Div`` → ``blocks.0.mlp.1``; a name
    without scopes → "" (the root).

    The exporter writes one scope per module, named by the module's attribute name, except that
    a child of a container is written with the container's name in front (``features.3``): a
    scope that extends the one before it replaces it.
    """
    parts: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            parts[-1] = scope
        elif scope:
            parts.append(scope)
    return ".".join(parts)


def _tied_transposes(g: NodeGraph) -> dict[str, str]:
    """Initializers that hold another's transpose: the exporter's folded ``Wᵀ`` of a weight
    tied to another layer (a language model's output head and token embedding)."""
    by_size: dict[tuple[int, int], list[str]] = {}
    for name, t in g.initializers.items():
        if len(t.dims) == 2 and t.data_type in FLOAT_TYPES and t.dims[0] != t.dims[1] \
                and min(t.dims) > 1:
            by_size.setdefault((int(t.dims[0]), int(t.dims[1])), []).append(name)
    tied: dict[str, str] = {}
    for (rows, cols), names in by_size.items():
        partners = by_size.get((cols, rows), [])
        for name in names:
            for partner in partners:
                if partner in tied or name in tied or partner == name:
                    continue
                a, b = g.const_value(name), g.const_value(partner)
                if a is not None and b is not None and np.array_equal(a, b.T):
                    tied[max(name, partner)] = min(name, partner)
    return tied


# -- the walk --------------------------------------------------------------------------------------

class _Walk:
    def __init__(self, g: NodeGraph, int8: bool):
        self.g = g
        self.int8 = int8
        self.values: dict[str, _Value] = {}
        self.layers: list[Layer] = []
        self.counted: Counter[str] = Counter()
        self.ignored: Counter[tuple[str, str]] = Counter()
        self.unknown: Counter[str] = Counter()
        self.params_read: dict[str, int] = {}
        self.names: Counter[str] = Counter()
        self.next_tid = 0
        self.tied = _tied_transposes(g)
        self.qdq = plan_qdq(g) if int8 else None
        self.idioms: dict[int, Idiom] = {}
        self.in_idiom: set[int] = set()
        for idiom in find_idioms(g):
            self.idioms[idiom.anchor] = idiom
            self.in_idiom.update(idiom.members)
        for name, t in g.initializers.items():
            self.values[name] = self._constant(name, tuple(t.dims), t.data_type)

    # -- values -------------------------------------------------------------------------------
    def _constant(self, name: str, shape: Shape, elem_type: int, node: bool = False) -> _Const:
        """A constant tensor; a parameter when it holds numbers of a parameter type, except a
        single number made in ``forward`` (a Constant node, or a scalar the exporter folded
        into an ``onnx::`` initializer): PyTorch passes those as Python numbers."""
        key = self.tied.get(name, name)
        scalar = math.prod(shape) == 1 and (node or name.startswith("onnx::"))
        is_param = elem_type in _PARAM_TYPES and not scalar
        return _Const(key, shape, frozenset({key}) if is_param else frozenset())

    def new_act(self, shape: Shape, dtype: int, strides: Shape | None = None) -> _Act:
        act = _Act(self.next_tid, tuple(shape), strides or layout.contiguous_strides(shape),
                   dtype)
        self.next_tid += 1
        return act

    def element_bytes(self, dtype: int) -> int:
        """0 for a float tensor of a float graph (priced at the graph's precision), else the
        type's own size: int8 tensors are 1 byte and the float islands of a quantised graph 4
        whatever precision it is priced at."""
        if dtype in FLOAT_TYPES and not self.int8:
            return 0
        return dtype_bytes(dtype)

    def use(self, act: _Act) -> TensorUse:
        return TensorUse(act.tid, act.elements, self.element_bytes(act.dtype))

    def value(self, node: Node, name: str) -> _Value | None:
        if not name:
            return None
        if self.qdq is not None:
            name = self.qdq.reroute.get((node.index, name), name)
        found = self.values.get(name)
        if found is None:
            raise TraceError(f"ONNX node {node.name or node.op_type!r} reads {name!r}, which no "
                             f"earlier node writes (the graph is not in topological order)")
        return found

    # -- nodes ---------------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.g.nodes:
            self.node(node)

    def node(self, node: Node) -> None:
        g = self.g
        op = op_name(node.domain, node.op_type)
        rule = rule_for(node.domain, node.op_type)
        if node.index in self.idioms:
            self.idiom(self.idioms[node.index])
            return
        if node.index in self.in_idiom:
            self.ignored[(op, "idiom")] += 1
            return
        if node.op_type == "Constant" and node.domain == "":
            for name in node.outputs:
                if name:
                    self.values[name] = self._constant(name, g.shapes.get(name) or (),
                                                       g.dtype(name), node=True)
            self.ignored[(op, "constant")] += 1
            return
        ins = [self.value(node, name) for name in node.inputs]
        if rule is not None and rule.ignore in ("meta", "alloc"):
            self.fold(node, op, rule.ignore, ins)
            return
        present = [v for v in ins if v is not None]
        if present and all(isinstance(v, _Const) for v in present):
            self.fold(node, op, "constant", ins)
            return
        if rule is None:
            self.layer(node, op, OpKind.UNKNOWN, None, ins)
            self.unknown[op] += 1
            return
        if rule.ignore == "identity":
            self.alias(node, op, "identity", ins[0])
            return
        if self.qdq is not None and self.quant_node(node, op, ins):
            return
        if rule.view is not None and isinstance(ins[0], _Act) and self.view(node, op, rule, ins):
            return
        self.layer(node, op, None, rule, ins)
        self.counted[op] += 1

    def fold(self, node: Node, op: str, why: str, ins: Sequence[_Value | None]) -> None:
        """Outputs known ahead of time. A view-like op of one constant (Identity, Transpose,
        Reshape, Cast, DequantizeLinear, ...) is that constant; anything else is a new constant
        made from its inputs' parameters."""
        self.ignored[(op, why)] += 1
        consts = [v for v in ins if isinstance(v, _Const)]
        sources = frozenset().union(*(c.sources for c in consts)) if consts else frozenset()
        single = consts[0] if len(consts) == 1 or (consts and node.op_type in _SAME_CONSTANT) \
            else None
        for name in node.outputs:
            if not name:
                continue
            shape = self.g.shapes.get(name)
            if single is not None and node.op_type in _SAME_CONSTANT \
                    and math.prod(shape or ()) == single.elements:
                self.values[name] = _Const(single.key, shape, single.sources)
            else:
                self.values[name] = _Const(name, shape, sources)

    def alias(self, node: Node, op: str, why: str, value: _Value | None) -> None:
        self.ignored[(op, why)] += 1
        if value is None:
            return
        for i, name in enumerate(node.outputs):
            if name and i == 0:
                self.values[name] = value

    def quant_node(self, node: Node, op: str, ins: Sequence[_Value | None]) -> bool:
        """QuantizeLinear/DequantizeLinear that ONNX Runtime fuses away (see ``qdq``)."""
        assert self.qdq is not None
        x = ins[0] if ins else None
        if not isinstance(x, _Act) or node.domain != "":
            return False
        if node.op_type == "DequantizeLinear" and node.index in self.qdq.absorbed_dq:
            self.alias(node, op, "qdq", x)
            return True
        if node.op_type == "QuantizeLinear" and x.dtype in QUANT_TYPES:
            out = node.outputs[0]
            self.alias(node, op, "qdq", _Act(x.tid, x.shape, x.strides, self.g.dtype(out)))
            return True
        return False

    def view(self, node: Node, op: str, rule: OnnxRule, ins: Sequence[_Value | None]) -> bool:
        """Bind the outputs of a view and return True, or return False for a copy."""
        g = self.g
        x = ins[0]
        assert isinstance(x, _Act)
        out = node.outputs[0]
        kind = rule.view
        if kind == "cast":
            if g.dtype(out) != x.dtype:
                return False
            self.alias(node, op, "identity", x)
            return True
        if kind == "split":
            for name in node.outputs:
                if name:
                    self.values[name] = _Act(x.tid, g.shape(name, node), x.strides, x.dtype)
            self.ignored[(op, "view")] += 1
            return True
        shape = g.shape(out, node)
        strides: Shape | None
        if kind == "reshape":
            strides = layout.view_strides(x.shape, x.strides, shape)
        elif kind == "transpose":
            perm = node.attrs.get("perm") or list(range(len(x.shape)))[::-1]
            shape, strides = layout.permuted(x.shape, x.strides, perm)
        elif kind == "expand":
            strides = layout.expanded(x.shape, x.strides, shape)
        elif kind == "slice":
            steps = self._slice_steps(node, len(x.shape))
            if steps is None or any(s < 0 for s in steps.values()):
                return False  # a reversed slice (torch.flip) copies
            strides = layout.sliced(x.strides, steps)
        elif kind == "gather":
            index = ins[1]
            if not isinstance(index, _Const) or index.shape != ():
                return False  # many indices: index_select / embedding, a copy
            axis = int(node.attrs.get("axis", 0)) % len(x.shape)
            strides = layout.selected(x.strides, axis)
        else:  # pragma: no cover - the table names no other view
            raise AssertionError(kind)
        if strides is None:
            return False
        self.values[out] = _Act(x.tid, tuple(shape), tuple(strides), x.dtype)
        self.ignored[(op, "view")] += 1
        return True

    def _slice_steps(self, node: Node, rank: int) -> dict[int, int] | None:
        if len(node.inputs) > 1:  # opset >= 10: starts, ends, axes, steps are inputs
            axes_name = node.inputs[3] if len(node.inputs) > 3 else ""
            steps_name = node.inputs[4] if len(node.inputs) > 4 else ""
            starts = self.g.const_value(node.inputs[1])
            n = 1 if starts is None else int(starts.size)
            axes = self.g.const_value(axes_name) if axes_name else np.arange(n)
            steps = self.g.const_value(steps_name) if steps_name else np.ones(n, dtype=np.int64)
            if axes is None or steps is None:
                return {} if not steps_name else None
        else:
            axes = np.array(node.attrs.get("axes", range(len(node.attrs.get("starts", ())))))
            steps = np.ones(len(axes), dtype=np.int64)
        return {int(a) % rank: int(s) for a, s in zip(axes.reshape(-1), steps.reshape(-1),
                                                      strict=True)}

    # -- layers --------------------------------------------------------------------------------
    def _name(self, base: str) -> str:
        self.names[base] += 1
        count = self.names[base]
        return base if count == 1 else f"{base}_{count - 1}"

    def layer(self, node: Node, op: str, kind: OpKind | None, rule: OnnxRule | None,
              ins: Sequence[_Value | None]) -> None:
        positions = rule.data_positions(len(node.inputs)) if rule is not None \
            else tuple(range(len(node.inputs)))
        shapes: list[Shape | None] = [None] * len(node.inputs)
        const = [False] * len(node.inputs)
        for p, v in enumerate(ins):
            if isinstance(v, _Act):
                shapes[p] = v.shape
            elif isinstance(v, _Const):
                shapes[p] = v.shape
                const[p] = True
        if kind is None:
            assert rule is not None
            kind = rule.classify(node.attrs, shapes, const) if rule.classify else rule.kind
            assert kind is not None
        reads = [(p, node.inputs[p], ins[p]) for p in positions]
        bias = rule.bias if rule is not None else None
        buffers = rule.buffers if rule is not None else ()
        macs, gemms = (rule.cost(node.attrs, shapes, self._out_shapes(node), const)
                       if rule is not None and rule.cost else (0, ()))
        outputs = self._outputs(node, rule, [v for v in ins if isinstance(v, _Act)])
        window = 0
        if node.op_type in _WINDOWED_POOLS and outputs:
            # Each output element compares or adds its kernel window (Layer.window_ops).
            window = math.prod(outputs[0][1].shape) * math.prod(
                int(k) for k in node.attrs.get("kernel_shape", ()))
        self._append(node.name or f"{node.op_type}_{node.index}", module_path(node.name),
                     node.op_type, op, kind, reads, bias, buffers, macs, tuple(gemms), outputs,
                     window)

    def _out_shapes(self, node: Node) -> list[Shape]:
        return [self.g.shape(n, node) if n else () for n in node.outputs]

    def _outputs(self, node: Node, rule: OnnxRule | None,
                 acts: Sequence[_Act]) -> list[tuple[str, _Act]]:
        """The activations a node writes: its first output, and any other that is read."""
        g = self.g
        written = []
        for i, name in enumerate(node.outputs):
            if not name:
                continue
            if i > 0 and rule is not None and not g.consumers.get(name) \
                    and name not in g.output_names:
                continue  # an optional output nobody reads (pooling indices, statistics)
            shape = g.shape(name, node)
            dtype = g.dtype(name)
            if self.qdq is not None and name in self.qdq.int8_outputs:
                dtype = self.qdq.int8_outputs[name]
            strides = None
            if rule is not None and rule.keeps_layout:
                full = [(a.shape, a.strides) for a in acts]
                if full:
                    strides = layout.elementwise_strides(full, shape)
            act = self.new_act(shape, dtype, strides)
            self.values[name] = act
            written.append((name, act))
        return written

    def _append(self, name: str, module: str, op_type: str, op: str, kind: OpKind,
                reads: Sequence[tuple[int, str, _Value | None]], bias: int | None,
                buffers: Sequence[int], macs: int, gemms: tuple,
                outputs: Sequence[tuple[str, _Act]], window_ops: int = 0) -> None:
        inputs: list[TensorUse] = []
        input_shapes: list[Shape] = []
        seen: set[str] = set()
        weight_elements = bias_elements = 0
        sources: set[str] = set()
        scalar_ok = kind in (OpKind.ELEMENTWISE, OpKind.ACTIVATION)
        for position, value_name, v in reads:
            if v is None:
                continue
            if isinstance(v, _Act):
                if value_name in seen:
                    continue
                seen.add(value_name)
                inputs.append(self.use(v))
                input_shapes.append(v.shape)
                continue
            if v.key in seen:
                continue
            seen.add(v.key)
            if v.elements == 1 and not v.sources and scalar_ok:
                continue  # a scalar operand: an immediate of the kernel
            elements = v.elements
            if op_type in _LOOKUPS and position == 0 and outputs:
                # A lookup reads one row of its table per index: the elements it writes, at
                # most the table (as the tracer's embedding); the table's params count whole.
                elements = min(elements, math.prod(outputs[0][1].shape))
            if position == bias:
                bias_elements += elements
            else:
                weight_elements += elements
            if position not in buffers:
                sources.update(v.sources)
        params = 0
        for source in sources:
            size = self.g.initializers[source].dims if source in self.g.initializers \
                else self.g.shapes.get(source, ())
            params += math.prod(size)
            self.params_read[source] = math.prod(size)
        self.layers.append(Layer(
            index=len(self.layers), name=self._name(name), module=module, module_type=op_type,
            op=op, kind=kind, input_shapes=tuple(input_shapes),
            output_shapes=tuple(a.shape for _, a in outputs), macs=int(macs), params=params,
            weight_elements=weight_elements, bias_elements=bias_elements,
            inputs=tuple(inputs), outputs=tuple(self.use(a) for _, a in outputs),
            gemms=gemms, precision="int8" if self.int8 else None, window_ops=window_ops,
            transcendental_ops=transcendental_ops(
                op, sum(math.prod(a.shape) for _, a in outputs), gemms)))

    def idiom(self, idiom: Idiom) -> None:
        g = self.g
        anchor = g.nodes[idiom.anchor]
        reads: list[tuple[int, str, _Value | None]] = []
        for p, name in enumerate(idiom.inputs):
            reads.append((p, name, self.value(anchor, name)))
        bias_position = None
        if idiom.bias is not None:
            bias_position = len(reads)
            reads.append((bias_position, idiom.bias, self.value(anchor, idiom.bias)))
        shapes = [v.shape if v is not None else None for _, _, v in reads]
        gemms: tuple = ()
        if idiom.kind == "linear":
            a, b = shapes[0], shapes[1]
            assert a is not None and b is not None
            b_const = isinstance(reads[1][2], _Const)
            gemms = (linear_gemm(a, b) if b_const else matmul_gemm(a, b),)
        elif idiom.kind == "scaled_dot_product_attention":
            q, kt, v = shapes[0], shapes[1], shapes[2]
            assert q is not None and kt is not None and v is not None
            gemms = attention_gemms(q, kt, v)
        shape = g.shape(idiom.output, anchor)
        acts = [v for _, _, v in reads if isinstance(v, _Act)]
        strides = None
        if idiom.layer_kind is OpKind.ACTIVATION and acts:
            strides = layout.elementwise_strides([(a.shape, a.strides) for a in acts], shape)
        out = self.new_act(shape, g.dtype(idiom.output), strides)
        self.values[idiom.output] = out
        self._append(idiom.name, module_path(idiom.name), anchor.op_type, idiom.op,
                     idiom.layer_kind, reads, bias_position, (), sum(x.macs for x in gemms),
                     gemms, [(idiom.output, out)])
        self.counted[idiom.op] += 1


#: Pooling over a kernel window (its work is Layer.window_ops); global pooling is a reduction.
_WINDOWED_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool", "QLinearAveragePool"})

#: Ops whose output, folded from one constant, is that constant (the same parameter).
_SAME_CONSTANT = frozenset({"Identity", "Transpose", "Reshape", "Flatten", "Squeeze",
                            "Unsqueeze", "Cast", "CastLike", "DequantizeLinear",
                            "QuantizeLinear", "Expand", "Dropout"})


def _ignored_entries(ignored: Counter[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    ignored = Counter({k: n for k, n in ignored.items() if n})
    rules_per_op = Counter(op for op, _ in ignored)
    return {(op if rules_per_op[op] == 1 else f"{op} [{why}]"): (n, IGNORE_RULES[why])
            for (op, why), n in sorted(ignored.items())}


def read_onnx(path: str | Path, inputs: Sequence[InputSpec | Sequence[int]] | None = None, *,
              batch: int | None = None, resolution: int | None = None,
              dims: Mapping[str, int] | None = None, precision: str | None = None,
              name: str = "") -> LayerGraph:
    """Read the ONNX model at ``path`` into its op-view LayerGraph.

    Dynamic dimensions are bound by ``inputs`` (InputSpecs or shapes, by name or in the file's
    input order), by ``dims`` (dimension name → size), by ``batch`` (every input's leading
    dimension; 1 when not given) and by ``resolution`` (the height and width of a 4-d image
    input). A dynamic dimension left unbound, or a binding that contradicts a fixed one, is a
    :class:`~roofline.errors.UsageError`; a missing or unreadable file a
    :class:`~roofline.errors.ModelLoadError`. A quantised graph (QDQ or QLinear/Integer ops) has
    precision ``int8``; ``precision`` prices the graph at another. Ops without a rule become
    layers of kind ``unknown`` and raise an :class:`~roofline.core.graph.UnknownOpWarning`.
    """
    if precision is not None:
        check_precision(precision)
    model, base_dir = _load(path)
    specs = bind_inputs(_declared(model), inputs, dims, batch, resolution)
    g = NodeGraph(model, _infer(model, specs), base_dir)
    int8 = any(n.op_type in QUANT_OPS for n in g.nodes)
    walk = _Walk(g, int8)
    for spec in specs:
        dtype = g.dtype(spec.name)
        walk.values[spec.name] = walk.new_act(spec.shape, dtype)
    walk.run()
    outputs = []
    for out in g.output_names:
        value = walk.values.get(out)
        if isinstance(value, _Act):
            outputs.append(walk.use(value))
    graph_inputs = tuple(walk.use(walk.values[s.name]) for s in specs
                         if isinstance(walk.values[s.name], _Act))
    ledger = Ledger(counted=dict(walk.counted), ignored=_ignored_entries(walk.ignored),
                    unknown=dict(walk.unknown))
    graph = LayerGraph(
        layers=tuple(walk.layers), input_specs=tuple(specs),
        precision="int8" if int8 else None, ledger=ledger,
        params=sum(walk.params_read.values()), inputs=graph_inputs, outputs=tuple(outputs),
        model_name=name or Path(path).name)
    if precision is not None:
        graph = graph.at_precision(precision)
    graph.warn_unknown_ops(stacklevel=2)
    return graph

