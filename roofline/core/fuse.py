"""Fusion: the op view of a LayerGraph turned into the kernels an inference runtime launches.

Owns the fusion rules and the recomputation of bytes across kernel boundaries; imports neither
torch nor plotly. The rules, in execution order:

1. Anchors start kernels: convolutions, linear layers, matmuls/attention, pooling, data
   movement, normalisations other than batch norm, unknown ops, and any activation or
   element-wise op that cannot join the kernel before it.
2. An activation, element-wise op or batch norm joins the kernel launched just before it when
   it reads a tensor that kernel produced (its epilogue). Its other inputs (the skip tensor of
   a residual add, the full-size input of a squeeze-excite multiply) are read from memory.
   Runtimes differ in what they can fuse: ``epilogue`` names the op kinds (``activation``,
   ``elementwise``) or op names (``relu``, ``hardtanh``, ``add``, ...) that may join; the
   default is every activation and element-wise op. TensorFlow Lite's CPU runtime, for
   example, fuses only ReLU-style clamps into a convolution and runs hard-swish, sigmoid,
   multiplies and adds as kernels of their own.
3. A batch norm directly after a convolution or linear layer, on a tensor nobody else reads,
   is folded into that layer's weights: it adds a per-channel bias (unless the layer had one)
   and has no weights of its own. A batch norm that cannot fold runs as a per-channel scale and
   shift (2 constants per channel).
4. A tensor produced inside a kernel is memory traffic only if something outside the kernel
   (or the model's output) reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .graph import Layer, LayerGraph, OpKind, TensorUse

__all__ = ["fuse", "BATCH_NORM_OPS", "DEFAULT_EPILOGUE", "INT8_MARK"]

#: In an epilogue set, ``int8:NAME`` entries (and the bare marker, present whenever the device
#: has an epilogue of its own for quantised layers, possibly empty) say what may join a layer
#: whose own precision is int8; the plain entries are for every other layer.
INT8_MARK = "int8:"

#: Ops that are inference batch norm (foldable into a preceding conv or linear layer).
BATCH_NORM_OPS = frozenset({"batch_norm", "native_batch_norm",
                            "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"})

_EPILOGUE_KINDS = frozenset({OpKind.ACTIVATION, OpKind.ELEMENTWISE})
_FOLD_INTO = frozenset({OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.POINTWISE_CONV,
                        OpKind.LINEAR})
_NO_EPILOGUE = frozenset({OpKind.UNKNOWN})


def _is_batch_norm(layer: Layer) -> bool:
    return layer.kind is OpKind.NORMALIZATION and layer.op in BATCH_NORM_OPS


@dataclass
class _Kernel:
    anchor: Layer
    members: list[Layer] = field(default_factory=list)
    produced: set[int] = field(default_factory=set)
    folded_bias: int = 0
    extra_weights: int = 0
    extra_params: int = 0

    def __post_init__(self) -> None:
        self.members.append(self.anchor)
        self.produced.update(t.id for t in self.anchor.outputs)
        if _is_batch_norm(self.anchor):
            # Runs as a per-channel scale and shift: 2 constants per channel, whatever the
            # framework keeps (running mean and variance, weight and bias).
            self.extra_weights = 2 * _channels(self.anchor) - self.anchor.weight_elements

    def reads_own_output(self, layer: Layer) -> bool:
        return any(t.id in self.produced for t in layer.inputs)

    def add(self, layer: Layer, consumers: dict[int, list[int]]) -> None:
        if _is_batch_norm(layer):
            self._add_batch_norm(layer, consumers)
        else:
            self.extra_weights += layer.weight_elements
            self.extra_params += layer.params
            self.folded_bias += layer.bias_elements
        self.members.append(layer)
        self.produced.update(t.id for t in layer.outputs)

    def _add_batch_norm(self, bn: Layer, consumers: dict[int, list[int]]) -> None:
        channels = _channels(bn)
        anchor_out = {t.id for t in self.anchor.outputs}
        foldable = (
            len(self.members) == 1
            and self.anchor.kind in _FOLD_INTO
            and any(t.id in anchor_out for t in bn.inputs)
            and all(consumers.get(t, []) == [bn.index] for t in anchor_out)
        )
        if foldable:
            # Folded into the weights: a per-channel bias, unless the layer already had one.
            if self.anchor.bias_elements == 0:
                self.folded_bias += channels
                self.extra_params += channels
        else:
            self.extra_weights += 2 * channels  # per-channel scale and shift
            self.extra_params += bn.params

    def build(self, index: int, consumers: dict[int, list[int]],
              graph_outputs: set[int]) -> Layer:
        member_ids = {m.index for m in self.members}
        # tensor id -> the reads of it the kernel keeps: one member's reads of distinct views
        # (the two halves of a chunk) add up; a tensor several members read is loaded once,
        # by the member that reads the most of it.
        reads: dict[int, list[tuple[TensorUse, tuple[int, ...]]]] = {}
        for m in self.members:
            mine: dict[int, list[tuple[TensorUse, tuple[int, ...]]]] = {}
            for use, shape in zip(m.inputs, m.input_shapes, strict=True):
                if use.id not in self.produced:
                    mine.setdefault(use.id, []).append((use, shape))
            for tid, uses in mine.items():
                if sum(u.elements for u, _ in uses) > sum(
                        u.elements for u, _ in reads.get(tid, [])):
                    reads[tid] = uses
        inputs = [use for uses in reads.values() for use, _ in uses]
        input_shapes = [shape for uses in reads.values() for _, shape in uses]
        outputs: list[TensorUse] = []
        output_shapes: list[tuple[int, ...]] = []
        for m in self.members:
            for use, shape in zip(m.outputs, m.output_shapes, strict=True):
                readers = consumers.get(use.id, [])
                if use.id in graph_outputs or any(r not in member_ids for r in readers):
                    outputs.append(use)
                    output_shapes.append(shape)
        a = self.anchor
        # Built field by field (dataclasses.replace costs twice as much, per kernel).
        return Layer(
            index=index, name=a.name, module=a.module, module_type=a.module_type, op=a.op,
            kind=a.kind, input_shapes=tuple(input_shapes), output_shapes=tuple(output_shapes),
            macs=sum(m.macs for m in self.members),
            params=a.params + self.extra_params,
            weight_elements=a.weight_elements + self.extra_weights,
            bias_elements=a.bias_elements + self.folded_bias,
            inputs=tuple(inputs), outputs=tuple(outputs), gemms=a.gemms,
            fused_ops=tuple(m.name for m in self.members[1:]), precision=a.precision,
            window_ops=sum(m.window_ops for m in self.members),
            transcendental_ops=sum(m.transcendental_ops for m in self.members),
        )


def _channels(bn: Layer) -> int:
    shape = bn.input_shapes[0] if bn.input_shapes else ()
    return shape[1] if len(shape) > 1 else 1


#: What joins a producer's kernel by default: every activation and element-wise op.
DEFAULT_EPILOGUE: frozenset[str] = frozenset({OpKind.ACTIVATION.value, OpKind.ELEMENTWISE.value})


def _can_join(layer: Layer, epilogue: frozenset[str]) -> bool:
    if _is_batch_norm(layer):
        return True
    if layer.kind not in _EPILOGUE_KINDS:
        return False
    prefix = INT8_MARK if layer.precision == "int8" and INT8_MARK in epilogue else ""
    return (prefix + layer.kind.value in epilogue
            or prefix + layer.op.rstrip("_") in epilogue)


def _joins(kernel: _Kernel | None, layer: Layer, epilogue: frozenset[str]) -> bool:
    if kernel is None or kernel.anchor.kind in _NO_EPILOGUE:
        return False
    return _can_join(layer, epilogue) and kernel.reads_own_output(layer)


def fuse(graph: LayerGraph, epilogue: frozenset[str] | None = None) -> LayerGraph:
    """The kernel view of ``graph`` (returned unchanged if it is already fused).

    ``epilogue``: op kinds or op names that may run inside their producer's kernel
    (default :data:`DEFAULT_EPILOGUE`); batch norm always folds where it can.
    """
    if graph.fused:
        return graph
    epilogue = DEFAULT_EPILOGUE if epilogue is None else frozenset(epilogue)
    # A graph is immutable: its kernel view under one epilogue is computed once (the compare
    # report asks for the same views in pricing, the ridge chart and the per-kernel charts).
    views = graph.__dict__.setdefault("_kernel_views", {})
    if epilogue not in views:
        views[epilogue] = _fuse(graph, epilogue)
    return views[epilogue]


def _fuse(graph: LayerGraph, epilogue: frozenset[str]) -> LayerGraph:
    consumers: dict[int, list[int]] = {}
    for layer in graph.layers:
        for use in layer.inputs:
            consumers.setdefault(use.id, []).append(layer.index)
    kernels: list[_Kernel] = []
    for layer in graph.layers:
        current = kernels[-1] if kernels else None
        if current is not None and _joins(current, layer, epilogue):
            current.add(layer, consumers)
        else:
            kernels.append(_Kernel(layer))
    graph_outputs = {t.id for t in graph.outputs}
    layers = tuple(k.build(i, consumers, graph_outputs) for i, k in enumerate(kernels))
    return dataclasses.replace(graph, layers=layers, fused=True)
