"""The tracer: run any ``nn.Module`` once and record every tensor operation as a layer.

Owns turning a PyTorch model into a :class:`~roofline.core.graph.LayerGraph`. It intercepts each op
at PyTorch's dispatcher (a ``TorchDispatchMode``) under ``torch.inference_mode``, so functional code
(``x + y``, ``F.*``, ``torch.cat``, ``matmul``, ``einsum``, attention) is seen as the model wrote
it, and tags each op with the module it ran in (global forward hooks). Costs and shapes come from
the op-rule registry in ``roofline.sources.pytorch.ops``, which binds each op's arguments to
their schema names before a rule reads them.

No real activation is ever computed: each op's outputs are shape-only tensors on the ``meta``
device, made from the op table's shape rules (ops without one run on the meta device). A
model at resolution 4096 and batch 64 costs no more memory and little more time than at 224.
Parameters are only read for their shapes; the model is left as it was given.

Inputs may have any shape and dtype and be passed by keyword (token ids, masks). A tensor that
is not floating point (int64 ids, bool masks, argmax indices) keeps its own element size in its
``TensorUse.element_bytes`` wherever it flows, so it is never priced as a float activation.
"""

from __future__ import annotations

import operator
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ...core.graph import (  # noqa: F401 (UnknownOpWarning re-exported)
    DTYPE_BYTES,
    InputSpec,
    Layer,
    LayerGraph,
    Ledger,
    OpKind,
    TensorUse,
    UnknownOpWarning,
    transcendental_ops,
)
from ...errors import TraceError, UnknownNameError, UsageError
from ...units import check_precision
from .ops import IGNORE_RULES, OpRule, _NeedsMeta, bind, conv_kind_of, rule_for

__all__ = ["trace", "InputLike", "UnknownOpWarning"]


_META = torch.device("meta")

#: One model input: a shape (float32), ``(shape, dtype)`` with a dtype name of
#: :data:`~roofline.core.graph.DTYPE_BYTES` or a ``torch.dtype``, an :class:`InputSpec`, or a
#: tensor (only its shape and dtype are used).
InputLike = Sequence[int] | tuple[Sequence[int], str | torch.dtype] | InputSpec | torch.Tensor


class _Const:
    """A weight, buffer or other constant tensor: folded into the layers that read it.

    ``sources`` are the parameters it was computed from: the parameter itself, or those a
    constant folded ahead of time read (a relative-position bias gathered from its table).
    """

    __slots__ = ("key", "is_param", "sources")

    def __init__(self, key: int, is_param: bool, sources: frozenset[int] = frozenset()):
        self.key = key
        self.is_param = is_param
        self.sources = frozenset({key}) if is_param else sources


class _Act:
    """An activation tensor: the value with graph-wide id ``tid`` (views share their base's)."""

    __slots__ = ("tid",)

    def __init__(self, tid: int):
        self.tid = tid


class _Op(NamedTuple):
    """What the recorder knows of one op overload: its ledger name, rule and schema facts."""

    name: str  # "conv2d" for ATen ops, "mylib::my_op" for others
    rule: OpRule | None
    multi_output: bool  # the schema returns several tensors
    inplace: bool  # the schema writes its first argument and returns it


def _op_of(func: Any) -> _Op:
    packet = func._overloadpacket.__name__
    namespace = getattr(func, "namespace", "aten")
    name = packet if namespace == "aten" else f"{namespace}::{packet}"
    schema = getattr(func, "_schema", None)
    multi = inplace = False
    if schema is not None:
        multi = len(schema.returns) > 1
        first = schema.arguments[0] if schema.arguments else None
        alias = getattr(first, "alias_info", None)
        inplace = bool(alias is not None and alias.is_write and not first.kwarg_only
                       and len(schema.returns) == 1)
    return _Op(name, rule_for(func), multi, inplace)


def fixed_element_bytes(t: torch.Tensor) -> int:
    """0 for a floating-point tensor (priced at the graph's precision), else its element size."""
    return 0 if t.dtype.is_floating_point else t.element_size()


class _Recorder(TorchDispatchMode):
    """Records one raw layer per counted op; keeps every tensor alive until the trace ends."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ so that torch.compile skips it, and the
        # wrapper imports torch._dynamo on its first call: 1-1.6 s, in every process that
        # traces. The tracer never runs under torch.compile, so it opts out of the wrapper.
        return False

    def __init__(self, model: nn.Module, named: list[tuple[str, nn.Module]] | None = None):
        super().__init__()
        self.info: dict[int, _Const | _Act] = {}
        self.keep: list[Any] = []
        self.param_numel: dict[int, int] = {}
        # One walk over the modules (model.parameters(), .buffers() and .named_modules() are
        # a walk each); a tensor shared by several modules is registered once.
        named = list(model.named_modules()) if named is None else named
        self.module_names = {id(m): name for name, m in named}
        for _, m in named:
            for tensors, is_param in ((m._parameters, True), (m._buffers, False)):
                for t in tensors.values():
                    if t is not None and id(t) not in self.info:
                        self._register_const(t, is_param)
        self.stack: list[tuple[str, str]] = [("", type(model).__name__)]
        self.raw: list[dict[str, Any]] = []
        self.counted: Counter[str] = Counter()
        self.ignored: Counter[tuple[str, str]] = Counter()
        self.unknown: Counter[str] = Counter()
        self.tensor_uses: dict[int, TensorUse] = {}
        self.params_read: set[int] = set()
        self._next_tid = 0
        self._ops: dict[Any, _Op] = {}
        self._meta_cache: dict[int, Any] = {}
        # (exception, module) for the innermost module an exception escaped from: the stack
        # itself is already unwound when the exception reaches trace().
        self.failure: tuple[BaseException, str] | None = None

    # -- bookkeeping --------------------------------------------------------------------------
    def _register_const(self, t: torch.Tensor, is_param: bool) -> None:
        self.info[id(t)] = _Const(id(t), is_param)
        self.keep.append(t)
        if is_param:
            self.param_numel[id(t)] = t.numel()

    def new_activation(self, t: Any) -> TensorUse:
        act = _Act(self._next_tid)
        self._next_tid += 1
        self.info[id(t)] = act
        self.keep.append(t)
        use = TensorUse(act.tid, t.numel(), fixed_element_bytes(t))
        self.tensor_uses[act.tid] = use
        return use

    def _new_constant(self, t: Any, sources: frozenset[int] = frozenset()) -> None:
        self.info[id(t)] = _Const(id(t), False, sources)
        self.keep.append(t)

    def info_of(self, t: Any) -> _Const | _Act:
        found = self.info.get(id(t))
        if found is None:
            # A tensor the model holds outside its parameters and buffers (a plain attribute,
            # a tensor built at import time): it is a constant of the model.
            found = _Const(id(t), False)
            self.info[id(t)] = found
            self.keep.append(t)
        return found

    def op(self, func: Any) -> _Op:
        found = self._ops.get(func)
        if found is None:
            found = self._ops[func] = _op_of(func)
        return found

    def to_meta(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if value.device == _META:
                return value
            cached = self._meta_cache.get(id(value))
            if cached is None:
                cached = value.to(_META)
                self._meta_cache[id(value)] = cached
                self.keep.append(value)
            return cached
        if isinstance(value, (list, tuple)):
            return type(value)(self.to_meta(v) for v in value)
        if isinstance(value, torch.device):
            return _META
        return value

    def run_on_meta(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any],
                    hint: str = "") -> Any:
        host = self.op(func).rule.host_args if self.op(func).rule is not None else ()
        if host:  # CPU tensors PyTorch reads even on meta inputs (a packed sequence's sizes)
            names = [arg.name for arg in func._schema.arguments]
            margs = [a if names[i] in host else self.to_meta(a) for i, a in enumerate(args)]
            mkwargs = {k: v if k in host else self.to_meta(v) for k, v in kwargs.items()}
        else:
            margs = [self.to_meta(a) for a in args]
            mkwargs = {k: self.to_meta(v) for k, v in kwargs.items()}
        if "device" in mkwargs:
            mkwargs["device"] = _META
        try:
            return func(*margs, **mkwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the user with the op's name
            module = self.stack[-1][0] or "<root>"
            raise TraceError(
                f"cannot trace op {self.op(func).name!r} in module {module}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{hint}"
            ) from None

    # -- the dispatch hook -----------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        op = self.op(func)
        rule = op.rule
        tensors = _tensor_args(args, kwargs)

        if rule is not None and rule.kind is None:
            return self._ignored(func, op.name, rule.ignore or "view", args, kwargs, tensors)

        infos = [self.info_of(t) for t in tensors]
        if tensors and all(isinstance(i, _Const) for i in infos):
            # Every input is a weight or constant: inference runtimes fold this ahead of time.
            # The parameters it reads are still the model's (a bias table read by an index).
            self.ignored[(op.name, "constant")] += 1
            out = (func(*args, **kwargs) if _small_host_integers(tensors)
                   else self.run_on_meta(func, args, kwargs))
            sources = frozenset().union(*(i.sources for i in infos if isinstance(i, _Const)))
            self.params_read |= sources
            for leaf in _leaves(out):
                self._new_constant(leaf, sources)
            return out

        if rule is None:
            return self._unknown(func, op, args, kwargs, tensors, infos)

        a = bind(func, args, kwargs)
        if rule.may_alias:
            out = self.run_on_meta(func, args, kwargs)
            source = tensors[0]
            if _shares_storage(out, self.to_meta(source)):
                return self._alias(op.name, "view", source, out)
            return self._record(func, op, a, args, kwargs, tensors, infos, out=out)
        return self._record(func, op, a, args, kwargs, tensors, infos)

    def _ignored(self, func: Any, name: str, why: str, args: Sequence[Any],
                 kwargs: dict[str, Any], tensors: list[Any]) -> Any:
        if why == "identity":
            self.ignored[(name, why)] += 1
            return args[0]
        if why == "view" and tensors:
            out = func(*args, **kwargs)
            return self._alias(name, why, tensors[0], out)
        self.ignored[(name, why)] += 1
        out = func(*args, **kwargs) if why == "meta" else self.run_on_meta(func, args, kwargs)
        for leaf in _leaves(out):
            self._new_constant(leaf)
        return out

    def _alias(self, name: str, why: str, source: Any, out: Any) -> Any:
        self.ignored[(name, why)] += 1
        src = self.info_of(source)
        for leaf in _leaves(out):
            self.info[id(leaf)] = src
            self.keep.append(leaf)
        return out

    def _unknown(self, func: Any, op: _Op, args: Sequence[Any], kwargs: dict[str, Any],
                 tensors: list[Any], infos: list[_Const | _Act]) -> Any:
        out = self.run_on_meta(func, args, kwargs, hint=(
            f" (no cost rule either: give one with roofline.register_op_rule({op.name!r}, "
            f"kind, shape=...))"))
        self.unknown[op.name] += 1
        leaves = [leaf for leaf in _leaves(out) if isinstance(leaf, torch.Tensor)]
        if op.inplace and tensors:
            out, leaves = args[0], [args[0]]
        self._append(op.name, OpKind.UNKNOWN, tensors, infos, leaves, 0, ())
        return out

    def _record(self, func: Any, op: _Op, a: dict[str, Any], args: Sequence[Any],
                kwargs: dict[str, Any], tensors: list[Any], infos: list[_Const | _Act],
                out: Any = None) -> Any:
        rule = op.rule
        assert rule is not None
        if out is None:
            out = self._outputs(func, op, a, args, kwargs, tensors)
        leaves = [leaf for leaf in _leaves(out) if isinstance(leaf, torch.Tensor)]
        if rule.activations is not None:
            # Extra outputs (pooling indices, normalisation statistics) are not written at
            # inference: only the leading ones are activations.
            leaves = leaves[:rule.activations]
        out_shapes = [tuple(t.shape) for t in leaves]
        macs, gemms = rule.cost(a, out_shapes)
        biases = {id(t) for t in rule.biases(a)} if rule.biases is not None else set()
        kind = rule.kind
        assert kind is not None
        if rule.conv_kind:
            kind = conv_kind_of(rule, a)
        elif rule.linear_if_weight:
            weights = [i for t, i in zip(tensors, infos, strict=True)
                       if isinstance(i, _Const) and id(t) not in biases]
            kind = OpKind.LINEAR if weights else OpKind.MATMUL
        reads: dict[int, int] = {}
        if rule.reads is not None:
            for arg, elements in rule.reads(a, out_shapes).items():
                value = a[arg]  # a list argument (an RNN's hx): each of its tensors
                for t in value if isinstance(value, (list, tuple)) else [value]:
                    reads[id(t)] = int(elements)
        window = int(rule.window(a, out_shapes)) if rule.window is not None else 0
        self._append(op.name, kind, tensors, infos, leaves, macs, gemms, biases, reads, window)
        self.counted[op.name] += 1
        return out

    def _outputs(self, func: Any, op: _Op, a: dict[str, Any], args: Sequence[Any],
                 kwargs: dict[str, Any], tensors: list[Any]) -> Any:
        if op.inplace:
            return args[0]
        rule = op.rule
        assert rule is not None
        shapes = None
        if rule.shape is not None:
            try:
                shapes = [tuple(int(d) for d in s) for s in rule.shape(a)]
            except _NeedsMeta:
                shapes = None
        if shapes is not None and len(shapes) != (len(func._schema.returns)
                                                  if op.multi_output else 1):
            raise UsageError(f"the shape rule of {op.name!r} gave {len(shapes)} shape(s); the "
                             f"op returns {len(func._schema.returns)}")
        dtypes = None if shapes is None else _output_dtypes(op.name, rule, a, tensors,
                                                           len(shapes))
        if dtypes is None or not all(t.is_contiguous() for t in tensors):
            # Made from shapes, outputs are contiguous; PyTorch's follow the strides of
            # non-contiguous inputs, which decides whether a later view works and whether
            # reshape or contiguous copies. The meta device gives PyTorch's own strides (and
            # its own type promotion where the inputs' dtypes differ).
            return self.run_on_meta(func, args, kwargs)
        assert shapes is not None
        made = [torch.empty(s, dtype=d, device=_META) for s, d in zip(shapes, dtypes,
                                                                     strict=True)]
        return tuple(made) if op.multi_output else made[0]

    def _append(self, name: str, kind: OpKind, tensors: list[Any], infos: list[_Const | _Act],
                leaves: list[Any], macs: int, gemms: tuple[Any, ...],
                biases: set[int] = frozenset(),  # type: ignore[assignment]
                reads: Mapping[int, int] | None = None, window_ops: int = 0) -> None:
        inputs: list[TensorUse] = []
        input_shapes: list[tuple[int, ...]] = []
        seen: set[int] = set()
        sources: set[int] = set()
        weight_elements = bias_elements = 0
        for t, info in zip(tensors, infos, strict=True):
            if id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(info, _Act):
                inputs.append(TensorUse(info.tid, t.numel(), fixed_element_bytes(t)))
                input_shapes.append(tuple(t.shape))
                continue
            n = reads.get(id(t), t.numel()) if reads else t.numel()
            if id(t) in biases:
                bias_elements += n
            else:
                weight_elements += n
            sources |= info.sources
        self.params_read |= sources
        outputs = [self.new_activation(leaf) for leaf in leaves]
        module, module_type = self.stack[-1]
        self.raw.append({
            "module": module, "module_type": module_type, "op": name, "kind": kind,
            "input_shapes": tuple(input_shapes),
            "output_shapes": tuple(tuple(t.shape) for t in leaves),
            "macs": int(macs), "params": sum(self.param_numel[k] for k in sources),
            "weight_elements": weight_elements, "bias_elements": bias_elements,
            "inputs": tuple(inputs), "outputs": tuple(outputs), "gemms": tuple(gemms),
            "window_ops": window_ops,
            "transcendental_ops": transcendental_ops(
                name, sum(t.numel() for t in leaves), tuple(gemms)),
        })


#: Integer constants up to this many elements are folded on the CPU, for real.
_HOST_FOLD_ELEMENTS = 1 << 16


def _small_host_integers(tensors: list[Any]) -> bool:
    """Constants folded for real rather than on meta: small integer tensors on the CPU
    (index buffers, a packed sequence's lengths), whose values PyTorch may need later (a
    packed LSTM reads its batch sizes). Never an activation, never a float weight."""
    return sum(t.numel() for t in tensors) <= _HOST_FOLD_ELEMENTS and all(
        t.device.type == "cpu" and not t.dtype.is_floating_point and not t.dtype.is_complex
        for t in tensors)


#: Ops whose result is a boolean mask whatever their inputs' type.
_BOOL_OUTPUT = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                          "logical_xor", "logical_not", "isnan", "isinf"})


def _output_dtypes(name: str, rule: OpRule, a: Mapping[str, Any], tensors: list[Any],
                   n: int) -> list[torch.dtype] | None:
    """The dtypes of outputs made from shapes, or None when only PyTorch's own type promotion
    can tell (inputs of several dtypes, integer arithmetic): the op then runs on meta."""
    if rule.dtype is not None:
        found = rule.dtype(a)
        return list(found) if isinstance(found, (list, tuple)) else [found] * n
    if name in _BOOL_OUTPUT:
        return [torch.bool] * n
    asked = a.get("dtype")
    if isinstance(asked, torch.dtype):  # casts: x.long(), x.to(torch.half), sum(dtype=...)
        return [asked] * n
    if name in ("to", "type_as") and isinstance(a.get("other"), torch.Tensor):
        return [a["other"].dtype] * n
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) == 1:
        (dtype,) = dtypes
        if dtype.is_floating_point:
            return [dtype] * n
    return None


def _tensor_args(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    found = []
    for a in args:
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(x for x in a if isinstance(x, torch.Tensor))
    for a in kwargs.values():
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(x for x in a if isinstance(x, torch.Tensor))
    return found


def _leaves(out: Any) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):  # models that return {"out": ..., "aux": ...}
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        found = []
        for o in out:
            found.extend(_leaves(o))
        return found
    return []


def _shares_storage(out: Any, source: Any) -> bool:
    if not isinstance(out, torch.Tensor):
        return False
    if out is source:
        return True
    return bool(out.untyped_storage()._cdata == source.untyped_storage()._cdata)



class _ModuleTracking:
    """Global forward hooks that keep the recorder's stack of running modules."""

    def __init__(self, recorder: _Recorder):
        self.recorder = recorder
        self.handles: list[Any] = []

    def __enter__(self) -> _ModuleTracking:
        rec = self.recorder
        names = rec.module_names

        def pre(module: nn.Module, args: Any) -> None:
            name = names.get(id(module))
            if name is None:
                parent = rec.stack[-1][0]
                name = f"{parent}.{type(module).__name__}" if parent else type(module).__name__
            rec.stack.append((name, type(module).__name__))

        def post(module: nn.Module, args: Any, output: Any) -> None:
            # Runs even when forward raised (always_call): remember where it first did.
            failure = sys.exc_info()[1]
            if failure is not None and (rec.failure is None or rec.failure[0] is not failure):
                rec.failure = (failure, rec.stack[-1][0])
            if len(rec.stack) > 1:
                rec.stack.pop()

        self.handles = [
            nn.modules.module.register_module_forward_pre_hook(pre),
            nn.modules.module.register_module_forward_hook(post, always_call=True),
        ]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
def _is_shape(value: Any) -> bool:
    if isinstance(value, (str, bytes, torch.Tensor)) or not isinstance(value, Sequence):
        return False
    try:
        for d in value:
            if isinstance(d, bool):
                return False
            operator.index(d)
    except TypeError:
        return False
    return True


def _is_pair(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2 and _is_shape(value[0])
            and isinstance(value[1], (str, torch.dtype)))


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    if not _is_shape(input_shape):
        raise UsageError(f"input shape must be a sequence of integers, got {input_shape!r}")
    shape = tuple(operator.index(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(f"input shape must have positive sizes, got {shape}")
    return shape


def _check_dtype(dtype: str | torch.dtype) -> str:
    name = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
    if name not in DTYPE_BYTES:
        raise UnknownNameError("input dtype", str(name), DTYPE_BYTES)
    return name


def input_spec(value: InputLike, name: str = "") -> InputSpec:
    """One input as an :class:`InputSpec`: a shape (float32), ``(shape, dtype)``, an
    InputSpec or a tensor (its shape and dtype; its values are never read)."""
    if isinstance(value, InputSpec):
        shape, dtype, name = value.shape, value.dtype, name or value.name
    elif isinstance(value, torch.Tensor):
        shape, dtype = tuple(value.shape), value.dtype
    elif _is_pair(value):
        shape, dtype = value  # type: ignore[misc]
    else:
        shape, dtype = value, "float32"
    return InputSpec(_check_shape(shape), _check_dtype(dtype), name)


def input_specs(inputs: InputLike | Sequence[InputLike],
                kwargs: Mapping[str, InputLike] | None = None) -> tuple[InputSpec, ...]:
    """The model's inputs, positional then keyword (named), from :func:`trace`'s arguments.

    ``inputs`` is one input (a shape, ``(shape, dtype)``, an InputSpec, a tensor) or a list
    of them; an empty list means no positional input. An InputSpec with a name is passed by
    keyword, like an entry of ``kwargs``.
    """
    if isinstance(inputs, (InputSpec, torch.Tensor)) or _is_shape(inputs) and len(inputs) \
            or _is_pair(inputs):
        positional = [inputs]
    elif isinstance(inputs, (list, tuple)):
        positional = list(inputs)
    else:
        positional = [inputs]
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise UsageError(f"kwargs must map argument names to inputs, got {kwargs!r}")
    specs = [input_spec(v) for v in positional]
    specs += [input_spec(v, str(k)) for k, v in (kwargs or {}).items()]
    if not specs:
        raise UsageError("trace() needs at least one input: a shape, (shape, dtype) or a list")
    names = [s.name for s in specs if s.name]
    if len(set(names)) != len(names):
        raise UsageError(f"input names must be unique, got {names}")
    # A named InputSpec is passed by keyword: positional inputs first, in their order.
    return tuple(sorted(specs, key=lambda s: bool(s.name)))


def _meta_input(spec: InputSpec) -> torch.Tensor:
    return torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device=_META)


def trace(model: nn.Module, inputs: InputLike | Sequence[InputLike] | None = None,
          precision: str | None = None, *, kwargs: Mapping[str, InputLike] | None = None,
          name: str = "", input_shape: Sequence[int] | None = None) -> LayerGraph:
    """Trace one forward pass of ``model`` into a LayerGraph, on shape-only inputs.

    ``inputs`` is the positional input(s): a shape such as ``(1, 3, 224, 224)`` (float32),
    ``(shape, dtype)`` such as ``((1, 16), "int64")`` (dtype: a key of
    :data:`~roofline.core.graph.DTYPE_BYTES` or a ``torch.dtype``), an :class:`InputSpec`, or a
    list of them for a model with several; ``kwargs`` maps forward's keyword arguments to
    inputs (``{"mask": ((1, 16), "bool")}``). Integer and bool inputs are meta tensors of their
    dtype and keep their element size (``TensorUse.element_bytes``): they are never priced as
    float activations. ``graph.input_specs`` and ``graph.inputs`` have one entry per input,
    positional then keyword. ``input_shape=`` names one float input's shape (the same as
    passing it as ``inputs``); without either, one image batch of (1, 3, 224, 224).

    The model runs in eval mode under ``torch.inference_mode``; its training flags are
    restored afterwards and its parameters are never written. Ops without a cost rule become
    layers of kind ``unknown`` and raise an :class:`UnknownOpWarning` listing them (add rules
    with :func:`roofline.register_op_rule`). Raises :class:`~roofline.errors.TraceError` when
    the model cannot run on shapes alone (for example, control flow that reads tensor values).
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"trace() needs a torch.nn.Module, got {type(model).__name__}")
    if precision is not None:
        check_precision(precision)
    if input_shape is not None and inputs is not None:
        raise UsageError("give the input either as inputs or as input_shape, not both")
    if inputs is None:
        inputs = tuple(input_shape) if input_shape is not None else (1, 3, 224, 224)
    specs = input_specs(inputs, kwargs)
    named = list(model.named_modules())
    recorder = _Recorder(model, named)
    training = [(m, m.training) for _, m in named]
    if any(flag for _, flag in training):
        model.eval()
    try:
        with torch.inference_mode():
            values = [_meta_input(spec) for spec in specs]
            uses = tuple(recorder.new_activation(v) for v in values)
            positional = [v for v, s in zip(values, specs, strict=True) if not s.name]
            named = {s.name: v for v, s in zip(values, specs, strict=True) if s.name}
            with _ModuleTracking(recorder), recorder:
                out = model(*positional, **named)
    except (TraceError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own code failed on shape-only input
        failed = recorder.failure
        module = (failed[1] if failed is not None and failed[0] is exc
                  else recorder.stack[-1][0]) or "<root>"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise TraceError(f"model failed while tracing in module {module}: "
                         f"{type(exc).__name__}: {first}") from exc
    finally:
        for m, flag in training:
            if m.training != flag:  # nn.Module's __setattr__ is slow: only what changed
                m.training = flag

    outputs = []
    for leaf in _leaves(out):
        info = recorder.info.get(id(leaf))
        if isinstance(info, _Act):
            outputs.append(TensorUse(info.tid, leaf.numel(), fixed_element_bytes(leaf)))
    graph = _build_graph(recorder, specs, uses, precision, tuple(outputs), name)
    graph.warn_unknown_ops(stacklevel=2)
    return graph


def _ignored_entries(ignored: Counter[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    rules_per_op = Counter(op for op, _ in ignored)
    return {(op if rules_per_op[op] == 1 else f"{op} [{why}]"): (n, IGNORE_RULES[why])
            for (op, why), n in sorted(ignored.items())}


def _build_graph(rec: _Recorder, specs: tuple[InputSpec, ...], inputs: tuple[TensorUse, ...],
                 precision: str | None, outputs: tuple[TensorUse, ...],
                 model_name: str) -> LayerGraph:
    per_module = Counter(r["module"] for r in rec.raw)
    per_module_op = Counter((r["module"], r["op"]) for r in rec.raw)
    seen: Counter[tuple[str, str]] = Counter()
    layers = []
    for i, r in enumerate(rec.raw):
        module, op = r["module"], r["op"]
        if per_module[module] == 1 and module:
            name = module
        else:
            base = f"{module}.{op}" if module else op
            k = seen[(module, op)]
            seen[(module, op)] += 1
            name = base if per_module_op[(module, op)] == 1 or k == 0 else f"{base}_{k}"
        layers.append(Layer(index=i, name=name, precision=precision, **r))
    ledger = Ledger(
        counted=dict(rec.counted),
        ignored=_ignored_entries(rec.ignored),
        unknown=dict(rec.unknown),
    )
    params = sum(rec.param_numel[k] for k in rec.params_read)
    return LayerGraph(layers=tuple(layers), input_specs=specs, precision=precision,
                      ledger=ledger, params=params, inputs=inputs, outputs=outputs,
                      model_name=model_name)
