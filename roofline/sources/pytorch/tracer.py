"""The tracer: run any ``nn.Module`` once and record every tensor operation as a layer.

Owns turning a PyTorch model into a :class:`~roofline.core.graph.LayerGraph`. It intercepts each op
at PyTorch's dispatcher (a ``TorchDispatchMode``) under ``torch.inference_mode``, so functional code
(``x + y``, ``F.*``, ``torch.cat``, ``matmul``, ``einsum``, attention) is seen as the model wrote
it, and tags each op with the module it ran in (global forward hooks). Costs and shapes come from
the op table in ``roofline.sources.pytorch.ops``.

No real activation is ever computed: each op's outputs are shape-only tensors on the ``meta``
device, made from the op table's shape rules (ops without one run on the meta device). A
model at resolution 4096 and batch 64 costs no more memory and little more time than at 224.
Parameters are only read for their shapes; the model is left as it was given.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ...core.graph import (  # noqa: F401 (UnknownOpWarning re-exported)
    InputSpec,
    Layer,
    LayerGraph,
    Ledger,
    OpKind,
    TensorUse,
    UnknownOpWarning,
)  # noqa: F401 (re-exported)
from ...errors import TraceError, UsageError
from ...units import check_precision
from .ops import IGNORE_RULES, OpRule, _NeedsMeta, conv_kind, rule_for

__all__ = ["trace", "UnknownOpWarning"]


_META = torch.device("meta")


class _Const:
    """A weight, buffer or other constant tensor: folded into the layers that read it."""

    __slots__ = ("key", "is_param")

    def __init__(self, key: int, is_param: bool):
        self.key = key
        self.is_param = is_param


class _Act:
    """An activation tensor: the value with graph-wide id ``tid`` (views share their base's)."""

    __slots__ = ("tid",)

    def __init__(self, tid: int):
        self.tid = tid


class _Recorder(TorchDispatchMode):
    """Records one raw layer per counted op; keeps every tensor alive until the trace ends."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ so that torch.compile skips it, and the
        # wrapper imports torch._dynamo on its first call: 1-1.6 s, in every process that
        # traces. The tracer never runs under torch.compile, so it opts out of the wrapper.
        return False

    def __init__(self, model: nn.Module):
        super().__init__()
        self.info: dict[int, _Const | _Act] = {}
        self.keep: list[Any] = []
        self.param_numel: dict[int, int] = {}
        for p in model.parameters():
            self._register_const(p, True)
        for b in model.buffers():
            self._register_const(b, False)
        self.module_names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[tuple[str, str]] = [("", type(model).__name__)]
        self.raw: list[dict[str, Any]] = []
        self.counted: Counter[str] = Counter()
        self.ignored: Counter[tuple[str, str]] = Counter()
        self.unknown: Counter[str] = Counter()
        self.tensor_elements: dict[int, int] = {}
        self.params_read: set[int] = set()
        self._next_tid = 0
        self._rules: dict[Any, tuple[str, OpRule | None]] = {}
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

    def new_activation(self, t: Any) -> _Act:
        act = _Act(self._next_tid)
        self._next_tid += 1
        self.info[id(t)] = act
        self.keep.append(t)
        self.tensor_elements[act.tid] = t.numel()
        return act

    def info_of(self, t: Any) -> _Const | _Act:
        found = self.info.get(id(t))
        if found is None:
            # A tensor the model holds outside its parameters and buffers (a plain attribute,
            # a tensor built at import time): it is a constant of the model.
            found = _Const(id(t), False)
            self.info[id(t)] = found
            self.keep.append(t)
        return found

    def rule(self, func: Any) -> tuple[str, OpRule | None]:
        cached = self._rules.get(func)
        if cached is None:
            name = func._overloadpacket.__name__
            cached = (name, rule_for(name))
            self._rules[func] = cached
        return cached

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

    def run_on_meta(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        margs = [self.to_meta(a) for a in args]
        mkwargs = {k: self.to_meta(v) for k, v in kwargs.items()}
        if "device" in mkwargs:
            mkwargs["device"] = _META
        try:
            return func(*margs, **mkwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the user with the op's name
            module = self.stack[-1][0] or "<root>"
            raise TraceError(
                f"cannot trace op {func._overloadpacket.__name__!r} in module {module}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None

    # -- the dispatch hook -----------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        name, rule = self.rule(func)
        tensors = _tensor_args(args, kwargs)

        if rule is not None and rule.kind is None:
            return self._ignored(func, name, rule.ignore or "view", args, kwargs, tensors)

        infos = [self.info_of(t) for t in tensors]
        if tensors and all(isinstance(i, _Const) for i in infos):
            # Every input is a weight or constant: inference runtimes fold this ahead of time.
            self.ignored[(name, "constant")] += 1
            out = self.run_on_meta(func, args, kwargs)
            for leaf in _leaves(out):
                self.info[id(leaf)] = _Const(id(leaf), False)
                self.keep.append(leaf)
            return out

        if rule is None:
            return self._unknown(func, name, args, kwargs, tensors, infos)

        if rule.may_alias:
            out = self.run_on_meta(func, args, kwargs)
            source = tensors[0]
            if _shares_storage(out, self.to_meta(source)):
                return self._alias(name, "view", source, out)
            return self._record(func, name, rule, args, kwargs, tensors, infos, out=out)
        return self._record(func, name, rule, args, kwargs, tensors, infos)

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
            self.info[id(leaf)] = _Const(id(leaf), False)
            self.keep.append(leaf)
        return out

    def _alias(self, name: str, why: str, source: Any, out: Any) -> Any:
        self.ignored[(name, why)] += 1
        src = self.info_of(source)
        for leaf in _leaves(out):
            self.info[id(leaf)] = src
            self.keep.append(leaf)
        return out

    def _unknown(self, func: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any],
                 tensors: list[Any], infos: list[_Const | _Act]) -> Any:
        out = self.run_on_meta(func, args, kwargs)
        self.unknown[name] += 1
        leaves = [leaf for leaf in _leaves(out) if isinstance(leaf, torch.Tensor)]
        inplace = name.endswith("_") and tensors and not name.startswith("_")
        if inplace:
            out, leaves = args[0], [args[0]]
        self._append(name, OpKind.UNKNOWN, tensors, infos, leaves, 0, (), None)
        return out

    def _record(self, func: Any, name: str, rule: OpRule, args: Sequence[Any],
                kwargs: dict[str, Any], tensors: list[Any], infos: list[_Const | _Act],
                out: Any = None) -> Any:
        if out is None:
            out = self._outputs(func, rule, args, kwargs, tensors)
        if rule.tuple_output:
            # Extra outputs (pooling indices, normalisation statistics) are not written at
            # inference: only the first output is an activation.
            leaves = [out[0]]
        else:
            leaves = [leaf for leaf in _leaves(out) if isinstance(leaf, torch.Tensor)]
        out_shapes = [tuple(t.shape) for t in leaves]
        macs, gemms = rule.cost(args, kwargs, out_shapes) if rule.cost else (0, ())
        kind = rule.kind
        if kind is OpKind.CONV:
            w = args[1]
            transposed = name.startswith("conv_transpose") or (
                len(args) > 6 and args[6] is True)
            groups = _conv_groups(name, args, kwargs)
            kind = conv_kind(tuple(args[0].shape), tuple(w.shape), groups, transposed)
        elif kind is OpKind.LINEAR or kind is OpKind.MATMUL:
            operands = [i for k, i in enumerate(infos) if _arg_position(args, tensors[k])
                        != rule.bias_arg]
            kind = (OpKind.LINEAR if any(isinstance(i, _Const) for i in operands)
                    else OpKind.MATMUL)
        bias = args[rule.bias_arg] if rule.bias_arg is not None and len(args) > rule.bias_arg \
            else kwargs.get("bias")
        self._append(name, kind, tensors, infos, leaves, macs, gemms, bias)
        self.counted[name] += 1
        return out

    def _outputs(self, func: Any, rule: OpRule, args: Sequence[Any], kwargs: dict[str, Any],
                 tensors: list[Any]) -> Any:
        if rule.inplace:
            return args[0]
        shapes = None
        if rule.shape is not None:
            try:
                shapes = rule.shape(args, kwargs)
            except _NeedsMeta:
                shapes = None
        if shapes is None or not all(t.is_contiguous() for t in tensors):
            # Made from shapes, outputs are contiguous; PyTorch's follow the strides of
            # non-contiguous inputs, which decides whether a later view works and whether
            # reshape or contiguous copies. The meta device gives PyTorch's own strides.
            return self.run_on_meta(func, args, kwargs)
        dtype = _output_dtype(func._overloadpacket.__name__, args, kwargs, tensors)
        made = [torch.empty(s, dtype=dtype, device=_META) for s in shapes]
        return tuple(made) if rule.tuple_output else made[0]

    def _append(self, name: str, kind: OpKind, tensors: list[Any], infos: list[_Const | _Act],
                leaves: list[Any], macs: int, gemms: tuple[Any, ...], bias: Any) -> None:
        inputs: list[TensorUse] = []
        input_shapes: list[tuple[int, ...]] = []
        seen: set[int] = set()
        weight_elements = bias_elements = params = 0
        for t, info in zip(tensors, infos, strict=True):
            if id(t) in seen:
                continue
            seen.add(id(t))
            n = t.numel()
            if isinstance(info, _Act):
                inputs.append(TensorUse(info.tid, n))
                input_shapes.append(tuple(t.shape))
            elif t is bias:
                bias_elements += n
                if info.is_param:
                    params += n
                    self.params_read.add(info.key)
            else:
                weight_elements += n
                if info.is_param:
                    params += n
                    self.params_read.add(info.key)
        outputs = []
        for leaf in leaves:
            act = self.new_activation(leaf)
            outputs.append(TensorUse(act.tid, self.tensor_elements[act.tid]))
        module, module_type = self.stack[-1]
        self.raw.append({
            "module": module, "module_type": module_type, "op": name, "kind": kind,
            "input_shapes": tuple(input_shapes),
            "output_shapes": tuple(tuple(t.shape) for t in leaves),
            "macs": int(macs), "params": params, "weight_elements": weight_elements,
            "bias_elements": bias_elements, "inputs": tuple(inputs), "outputs": tuple(outputs),
            "gemms": tuple(gemms),
        })


#: Ops whose result is a boolean mask whatever their inputs' type.
_BOOL_OUTPUT = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                          "logical_xor", "logical_not", "isnan", "isinf"})


def _output_dtype(name: str, args: Sequence[Any], kwargs: dict[str, Any],
                  tensors: list[Any]) -> torch.dtype:
    """The dtype of an output made from shapes: masks are bool, casts (``x.long()``,
    ``sum(dtype=...)``) take the dtype asked for, everything else its first input's."""
    if name in _BOOL_OUTPUT:
        return torch.bool
    asked = kwargs.get("dtype")
    if isinstance(asked, torch.dtype):
        return asked
    for a in args[1:]:
        if isinstance(a, torch.dtype):
            return a
    if name in ("to", "type_as") and len(tensors) > 1:
        return tensors[1].dtype
    return tensors[0].dtype if tensors else torch.float32


def _conv_groups(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> int:
    if name in ("convolution", "_convolution"):
        return int(args[8] if len(args) > 8 else kwargs.get("groups", 1))
    if name.startswith("conv_transpose"):
        return int(args[6] if len(args) > 6 else kwargs.get("groups", 1))
    return int(args[6] if len(args) > 6 else kwargs.get("groups", 1))


def _arg_position(args: Sequence[Any], t: Any) -> int:
    for i, a in enumerate(args):
        if a is t:
            return i
    return -1


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


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise UsageError(f"input shape must be a sequence of integers, got {input_shape!r}") \
            from None
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(f"input shape must have positive sizes, got {shape}")
    return shape


def trace(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224),
          precision: str | None = None, *, name: str = "") -> LayerGraph:
    """Trace one forward pass of ``model`` on an input of ``input_shape`` into a LayerGraph.

    The model runs in eval mode under ``torch.inference_mode`` on shape-only tensors; its
    training flags are restored afterwards and its parameters are never written. Ops without a
    cost rule become layers of kind ``unknown`` and raise an :class:`UnknownOpWarning` listing
    them. Raises :class:`~roofline.errors.TraceError` when the model cannot run on shapes alone
    (for example, control flow that reads tensor values).
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"trace() needs a torch.nn.Module, got {type(model).__name__}")
    if precision is not None:
        check_precision(precision)
    shape = _check_shape(input_shape)
    recorder = _Recorder(model)
    training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            x = torch.empty(shape, device=_META)
            recorder.new_activation(x)
            with _ModuleTracking(recorder), recorder:
                out = model(x)
    except TraceError:
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
            m.training = flag

    outputs = []
    for leaf in _leaves(out):
        info = recorder.info.get(id(leaf))
        if isinstance(info, _Act):
            outputs.append(TensorUse(info.tid, leaf.numel()))
    graph = _build_graph(recorder, shape, precision, tuple(outputs), name)
    graph.warn_unknown_ops(stacklevel=2)
    return graph


def _ignored_entries(ignored: Counter[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    rules_per_op = Counter(op for op, _ in ignored)
    return {(op if rules_per_op[op] == 1 else f"{op} [{why}]"): (n, IGNORE_RULES[why])
            for (op, why), n in sorted(ignored.items())}


def _build_graph(rec: _Recorder, shape: tuple[int, ...], precision: str | None,
                 outputs: tuple[TensorUse, ...], model_name: str) -> LayerGraph:
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
    inputs = (TensorUse(0, math.prod(shape)),)
    return LayerGraph(layers=tuple(layers), input_specs=(InputSpec(shape),), precision=precision,
                      ledger=ledger, params=params, inputs=inputs, outputs=outputs,
                      model_name=model_name)

