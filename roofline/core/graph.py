"""The layer graph: frozen per-layer records of MACs, parameters and bytes, and their totals.

Owns the records the tracer produces and everything downstream reads (op kinds, layers, the
ledger of ignored and unknown ops). Imports neither torch nor plotly; tracing lives in
``roofline.sources.pytorch.tracer`` and fusion in ``roofline.core.fuse``.

A ``LayerGraph`` has two views of the same model:

* the *op view* (``graph.fused is False``): one layer per tensor operation the model ran;
* the *kernel view* (``graph.fused is True``, from :func:`roofline.core.fuse.fuse`): one layer per
  kernel an inference runtime would launch, with batch norm folded into its convolution and
  activations and element-wise ops run inside their producer. ``fused_ops`` names what each
  kernel absorbed; bytes count only tensors that cross the kernel's boundary.

Sizes are stored as element counts, so the same graph can be priced at any precision
(:meth:`LayerGraph.at_precision`); ``*_bytes`` are derived from them. A graph traced without a
precision (``precision is None``) is priced at each device's own precision; its ``*_bytes`` are
shown at fp32, the precision a model is traced in. A tensor whose type is fixed whatever the
precision (int64 token ids, a quantised ONNX graph's int8 tensors) says so in
``TensorUse.element_bytes``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from ..units import bias_bytes_per_element, bytes_per_element, check_precision

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["OpKind", "TensorUse", "InputSpec", "Gemm", "Layer", "Ledger", "LayerGraph",
           "UnknownOpWarning", "TRACED_PRECISION", "DTYPE_BYTES"]

#: The precision a graph without one of its own shows its bytes at: PyTorch traces in fp32.
TRACED_PRECISION = "fp32"

#: Bytes per element of the tensor types a model input may have (``InputSpec.dtype``).
DTYPE_BYTES: dict[str, int] = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
}


class UnknownOpWarning(UserWarning):
    """The model ran ops roofline has no cost rule for; they are layers of kind ``unknown``."""


class OpKind(str, Enum):
    """The canonical op vocabulary every layer is classified into."""

    CONV = "conv"  # a full (or grouped) k×k convolution
    DEPTHWISE_CONV = "depthwise_conv"  # one input channel per group
    POINTWISE_CONV = "pointwise_conv"  # 1×1 kernel
    LINEAR = "linear"  # activation × weight matrix
    MATMUL = "matmul"  # activation × activation: attention (Q·Kᵀ, A·V, SDPA)
    POOLING = "pooling"  # pooling and reductions (mean over H×W, ...)
    ELEMENTWISE = "elementwise"  # add, mul, ... (residuals, squeeze-excite gates, layer scale)
    NORMALIZATION = "normalization"  # batch/layer/group norm
    ACTIVATION = "activation"  # relu, hardswish, gelu, softmax, ...
    DATA_MOVEMENT = "data_movement"  # copies: cat, contiguous, pad, resize, ...
    UNKNOWN = "unknown"  # an op roofline has no rule for: still moves its bytes

    def __str__(self) -> str:
        return self.value


#: Kinds that multiply weights or activations and therefore carry MACs.
MAC_KINDS = frozenset({OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.POINTWISE_CONV,
                       OpKind.LINEAR, OpKind.MATMUL})

#: Ops that evaluate a transcendental function per output element, and how many: the logistic
#: sigmoid and what is built on it (SiLU, and ONNX Runtime's lookup-table QLinearSigmoid), tanh,
#: GELU (erf or its tanh form), exp, log, softmax and the softplus family; Mish is
#: x * tanh(softplus(x)), two. PyTorch's names (in-place forms end in "_") and ONNX's op types
#: in snake case (``roofline.sources.onnx.ops``). Piecewise-linear activations (ReLU, ReLU6,
#: hard-sigmoid, hard-swish, leaky ReLU) need none.
TRANSCENDENTAL_OPS: dict[str, int] = {
    **dict.fromkeys(("sigmoid", "silu", "tanh", "gelu", "exp", "exp2", "expm1", "log",
                     "log1p", "log2", "erf", "erfc", "softmax", "_softmax", "log_softmax",
                     "_log_softmax", "softplus", "elu", "selu", "celu", "log_sigmoid_forward",
                     "fast_gelu", "bias_gelu", "quick_gelu", "q_linear_sigmoid",
                     "q_linear_softmax", "sin", "cos", "tan", "atan"), 1),
    "mish": 2,
}


def transcendental_ops(op: str, output_elements: int, gemms: Sequence[Gemm] = ()) -> int:
    """The transcendental evaluations of one op (``Layer.transcendental_ops``): per output
    element by :data:`TRANSCENDENTAL_OPS`; an attention's softmax, one per score of its first
    product (Q·Kᵀ)."""
    if op == "scaled_dot_product_attention" and gemms:
        g = gemms[0]
        return g.groups * g.m * g.n
    return TRANSCENDENTAL_OPS.get(op.removesuffix("_"), 0) * output_elements


class TensorUse(NamedTuple):
    """One activation tensor read or written by a layer: its graph-wide id and element count.

    ``element_bytes`` is 0 for a tensor stored at the precision the graph is priced at (every
    float activation), else its fixed size per element: 8 for int64 token ids, 1 for a bool
    mask or a quantised graph's int8 tensor.
    """

    id: int
    elements: int
    element_bytes: int = 0

    def bytes_at(self, precision_bytes: int) -> int:
        return self.elements * (self.element_bytes or precision_bytes)


class InputSpec(NamedTuple):
    """One model input: its shape, its type (a key of :data:`DTYPE_BYTES`) and, where the
    model's forward takes it by keyword, its name."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str = ""

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith(("float", "bfloat"))

    def __str__(self) -> str:
        text = "x".join(str(d) for d in self.shape)
        if self.dtype != "float32":
            text += f":{self.dtype}"
        return f"{self.name}={text}" if self.name else text


class Gemm(NamedTuple):
    """A layer's arithmetic as ``groups`` independent (m × k) · (k × n) products.

    ``macs == groups * m * n * k``. A convolution is its implicit GEMM: m = batch × output
    pixels, n = output channels per group, k = input channels per group × kernel area; a
    depthwise convolution has one group per channel with n = 1 and k = kernel area.
    """

    groups: int
    m: int
    n: int
    k: int

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.n * self.k


@dataclass(frozen=True, slots=True)
class Layer:
    """One op (op view) or one kernel (kernel view) with its cost at ``precision``.

    Element counts are exact; bytes are element counts times the precision's element size
    (biases of integer kernels are int32, see ``roofline.units``).
    """

    index: int
    name: str  # unique: module path, with ".<op>" where the module ran several ops
    module: str  # qualified name of the innermost module that ran it ("" = the root)
    module_type: str  # class name of that module
    op: str  # the tensor operation, e.g. "convolution", "add", "scaled_dot_product_attention"
    kind: OpKind
    input_shapes: tuple[tuple[int, ...], ...]  # activation inputs
    output_shapes: tuple[tuple[int, ...], ...]
    macs: int
    params: int  # trainable parameter elements this layer reads
    weight_elements: int  # constant elements read (parameters and buffers), biases excluded
    bias_elements: int  # conv/linear bias elements
    inputs: tuple[TensorUse, ...]  # activation tensors read
    outputs: tuple[TensorUse, ...]  # activation tensors written
    gemms: tuple[Gemm, ...] = ()
    fused_ops: tuple[str, ...] = ()  # kernel view: names of the ops run inside this kernel
    precision: str | None = None  # None: the graph's bytes are shown at TRACED_PRECISION
    #: Windowed pooling's work: one comparison or add per element of each output's window
    #: (N·C·OH·OW·kh·kw for a 2-d max or average pool). Not MACs: a device prices it at its
    #: pooling efficiency; 0 for every other op (and for global pooling, a plain reduction).
    window_ops: int = 0
    #: Evaluations of a transcendental function (exp, tanh, erf, a logistic sigmoid) the
    #: layer computes: one per output element of a sigmoid, SiLU, GELU, tanh or softmax, two
    #: of a Mish, one per attention score (its softmax). A device prices them beside the
    #: bytes (``overhead.per_transcendental_s``); a ReLU or hard-swish needs none.
    transcendental_ops: int = 0

    @property
    def byte_precision(self) -> str:
        """The precision this layer's bytes are counted at."""
        return self.precision or TRACED_PRECISION

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights, biases and other constants read."""
        return (self.weight_elements * bytes_per_element(self.byte_precision)
                + self.bias_elements * bias_bytes_per_element(self.byte_precision))

    @property
    def input_elements(self) -> int:
        return sum(t.elements for t in self.inputs)

    @property
    def output_elements(self) -> int:
        return sum(t.elements for t in self.outputs)

    @property
    def input_bytes(self) -> int:
        """Bytes of activations read."""
        b = bytes_per_element(self.byte_precision)
        return sum(t.bytes_at(b) for t in self.inputs)

    @property
    def output_bytes(self) -> int:
        """Bytes of activations written."""
        b = bytes_per_element(self.byte_precision)
        return sum(t.bytes_at(b) for t in self.outputs)

    @property
    def total_bytes(self) -> int:
        """Weights plus activations in and out: the bytes a plain roofline charges this layer."""
        return self.weight_bytes + self.input_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """Operational intensity in MACs per byte moved (0 for a layer that moves nothing)."""
        moved = self.total_bytes
        return self.macs / moved if moved else 0.0

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shapes[0] if self.output_shapes else ()


@dataclass(frozen=True)
class Ledger:
    """Where every tensor operation the model ran went.

    ``counted``: op → how many times it became a layer. ``ignored``: op → (count, rule) for ops
    that move no data by a stated rule (views, allocations, ...). ``unknown``: op → count for ops
    roofline has no cost rule for; they are layers of kind ``unknown`` that still move bytes.
    """

    counted: Mapping[str, int] = field(default_factory=dict)
    ignored: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    unknown: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_ops(self) -> int:
        return (sum(self.counted.values()) + sum(c for c, _ in self.ignored.values())
                + sum(self.unknown.values()))


@dataclass(frozen=True)
class LayerGraph:
    """A traced model: layers in execution order, their tensors and the ledger.

    Totals are sums over ``layers`` except ``params``, which counts each parameter tensor once.
    """

    layers: tuple[Layer, ...]
    input_specs: tuple[InputSpec, ...]  # the model's inputs, in the order it takes them
    precision: str | None  # None: priced at each device's own precision
    ledger: Ledger
    params: int  # trainable parameters the model read, each tensor counted once
    inputs: tuple[TensorUse, ...] = ()  # the model's input activations, as input_specs
    outputs: tuple[TensorUse, ...] = ()  # the model's output activations
    fused: bool = False
    model_name: str = ""

    # -- totals -----------------------------------------------------------------------------
    @cached_property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass (not FLOPs: 1 MAC = 2 FLOPs)."""
        return sum(layer.macs for layer in self.layers)

    @cached_property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @cached_property
    def input_bytes(self) -> int:
        """Activation bytes read, summed over layers."""
        return sum(layer.input_bytes for layer in self.layers)

    @cached_property
    def output_bytes(self) -> int:
        """Activation bytes written, summed over layers."""
        return sum(layer.output_bytes for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Activation bytes read plus written."""
        return self.input_bytes + self.output_bytes

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The first input's shape (() for a model without inputs)."""
        return self.input_specs[0].shape if self.input_specs else ()

    @property
    def byte_precision(self) -> str:
        """The precision this graph's bytes are counted at."""
        return self.precision or TRACED_PRECISION

    @property
    def batch(self) -> int:
        return self.input_shape[0] if self.input_shape else 1

    @property
    def resolution(self) -> int | None:
        """The first input's height when it is an image batch (N, C, H, W) with H == W."""
        if len(self.input_shape) == 4 and self.input_shape[2] == self.input_shape[3]:
            return self.input_shape[2]
        return None

    @property
    def unknown_ops(self) -> list[str]:
        return sorted(self.ledger.unknown)

    def warn_unknown_ops(self, stacklevel: int = 2) -> None:
        """Warn (:class:`UnknownOpWarning`) listing the ops without a cost rule, if any."""
        if self.ledger.unknown:
            counts = ", ".join(f"{op} ×{n}" for op, n in sorted(self.ledger.unknown.items()))
            warnings.warn(UnknownOpWarning(
                f"{len(self.ledger.unknown)} op type(s) have no cost rule and count 0 MACs "
                f"(their bytes are still counted): {counts}"), stacklevel=stacklevel + 1)

    def kind_counts(self) -> Counter[OpKind]:
        return Counter(layer.kind for layer in self.layers)

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> Layer:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(key)
        return self.layers[key]

    def at_precision(self, precision: str | None) -> LayerGraph:
        """The same graph priced at another precision (no re-tracing); None: at each device's
        own."""
        if precision is not None:
            check_precision(precision)
        if precision == self.precision:
            return self
        layers = tuple(dataclasses.replace(layer, precision=precision) for layer in self.layers)
        return dataclasses.replace(self, layers=layers, precision=precision)

    def replace(self, **changes: Any) -> LayerGraph:
        return dataclasses.replace(self, **changes)

    # -- export -------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """One plain dict per layer, in execution order (JSON-friendly)."""
        return [_layer_record(layer) for layer in self.layers]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per layer: name, module, op, kind, shapes, MACs, params and bytes."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records(), columns=list(RECORD_COLUMNS))

    def summary(self) -> dict[str, Any]:
        """Model totals as plain values."""
        return {
            "layers": len(self.layers),
            "precision": self.precision,
            "input_shape": list(self.input_shape),
            "inputs": [{"shape": list(spec.shape), "dtype": spec.dtype, "name": spec.name}
                       for spec in self.input_specs],
            "fused": self.fused,
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "unknown_ops": self.unknown_ops,
        }


    # -- serialisation (the on-disk graph cache) ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal graph."""
        return {
            "format": GRAPH_FORMAT,
            "input_specs": [[list(spec.shape), spec.dtype, spec.name]
                            for spec in self.input_specs],
            "precision": self.precision,
            "params": self.params,
            "fused": self.fused,
            "model_name": self.model_name,
            "inputs": [list(t) for t in self.inputs],
            "outputs": [list(t) for t in self.outputs],
            "ledger": {"counted": dict(self.ledger.counted),
                       "ignored": {k: list(v) for k, v in self.ledger.ignored.items()},
                       "unknown": dict(self.ledger.unknown)},
            "layers": [[layer.name, layer.module, layer.module_type, layer.op, layer.kind.value,
                        [list(s) for s in layer.input_shapes],
                        [list(s) for s in layer.output_shapes], layer.macs, layer.params,
                        layer.weight_elements, layer.bias_elements,
                        [list(t) for t in layer.inputs], [list(t) for t in layer.outputs],
                        [list(g) for g in layer.gemms], list(layer.fused_ops),
                        layer.window_ops, layer.transcendental_ops]
                       for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerGraph:
        if data.get("format") != GRAPH_FORMAT:
            raise ValueError(f"unsupported graph format {data.get('format')!r}")
        precision = data["precision"]
        layers = []
        for i, row in enumerate(data["layers"]):
            (name, module, module_type, op, kind, in_shapes, out_shapes, macs, params, weights,
             biases, inputs, outputs, gemms, fused_ops, window_ops, transcendental_ops) = row
            layers.append(Layer(
                index=i, name=name, module=module, module_type=module_type, op=op,
                kind=OpKind(kind), input_shapes=tuple(tuple(s) for s in in_shapes),
                output_shapes=tuple(tuple(s) for s in out_shapes), macs=macs, params=params,
                weight_elements=weights, bias_elements=biases,
                inputs=tuple(TensorUse(*t) for t in inputs),
                outputs=tuple(TensorUse(*t) for t in outputs),
                gemms=tuple(Gemm(*g) for g in gemms), fused_ops=tuple(fused_ops),
                precision=precision, window_ops=window_ops,
                transcendental_ops=transcendental_ops))
        ledger = data["ledger"]
        return cls(
            layers=tuple(layers),
            input_specs=tuple(InputSpec(tuple(shape), dtype, name)
                              for shape, dtype, name in data["input_specs"]),
            precision=precision,
            ledger=Ledger(counted=dict(ledger["counted"]),
                          ignored={k: (v[0], v[1]) for k, v in ledger["ignored"].items()},
                          unknown=dict(ledger["unknown"])),
            params=data["params"], inputs=tuple(TensorUse(*t) for t in data["inputs"]),
            outputs=tuple(TensorUse(*t) for t in data["outputs"]), fused=data["fused"],
            model_name=data["model_name"])


#: Version of the layout ``LayerGraph.to_dict`` writes.
GRAPH_FORMAT = 4  # 3: Layer.window_ops; 4: Layer.transcendental_ops

RECORD_COLUMNS: Sequence[str] = (
    "name", "module", "module_type", "op", "kind", "input_shapes", "output_shape", "macs",
    "params", "weight_bytes", "input_bytes", "output_bytes", "intensity", "fused_ops",
)


def _layer_record(layer: Layer) -> dict[str, Any]:
    return {
        "name": layer.name,
        "module": layer.module,
        "module_type": layer.module_type,
        "op": layer.op,
        "kind": layer.kind.value,
        "input_shapes": [list(s) for s in layer.input_shapes],
        "output_shape": list(layer.output_shape),
        "macs": layer.macs,
        "params": layer.params,
        "weight_bytes": layer.weight_bytes,
        "input_bytes": layer.input_bytes,
        "output_bytes": layer.output_bytes,
        "intensity": layer.intensity,
        "fused_ops": list(layer.fused_ops),
    }
