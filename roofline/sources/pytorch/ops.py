"""What each tensor operation costs: the op-rule registry the tracer reads.

Owns the rules keyed by op name (``"conv2d"`` for ATen ops, ``"mylib::my_op"`` for others):
the canonical kind, how to compute output shapes without running the op, the MAC formula,
which arguments are biases and how much of a weight an op reads. Rules are pure functions of
their arguments *by name*: the tracer binds each call's positional and keyword arguments to
the op's schema once (:func:`bind`), with the schema's defaults filled in, so a rule reads
``a["input"]``, ``a["weight"]``, ``a["stride"]``, ``a["groups"]``, ``a["ceil_mode"]`` and
never a position. Rules read ``.shape`` and ``.dtype`` of tensors, never their values; the
tracer owns dispatch and bookkeeping.

Ops are seen as the model calls them under ``torch.inference_mode`` (``linear``, ``matmul``,
``einsum``, ``batch_norm``, ``lstm``, ``scaled_dot_product_attention``, ...), before PyTorch
decomposes them, so one user-level call is one layer.

Every op the tracer meets is either

* counted: a rule below gives its kind, shapes and MACs;
* ignored by a stated rule (:data:`IGNORE_RULES`): views and reshapes that alias their input,
  allocations, metadata queries;
* unknown: no rule. It becomes a layer of kind ``unknown`` that still moves its bytes, runs on
  the meta device to learn its output shapes, and is listed in a warning.

Users add rules for their own ops with :func:`register_op_rule` (exported as
``roofline.register_op_rule``); :func:`list_op_rules` lists every registered name.

MAC conventions: convolutions, linear layers, recurrent layers and activation×activation
products (attention's Q·Kᵀ and A·V) count one MAC per multiply-accumulate; normalisation,
activations, pooling, element-wise ops, lookups and softmax count 0 MACs but still move bytes.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ...core.graph import MAC_KINDS, Gemm, OpKind
from ...errors import UnknownNameError, UsageError

__all__ = ["OpRule", "Args", "RULES", "IGNORE_RULES", "register_op_rule", "unregister_op_rule",
           "list_op_rules", "rule_for", "op_key", "bind", "conv_output_shape", "einsum_cost"]

Shape = tuple[int, ...]
#: An op's arguments by schema name, defaults filled in (see :func:`bind`).
Args = Mapping[str, Any]
ShapeFn = Callable[[Args], Sequence[Shape]]
#: MACs as a number, one GEMM, or several GEMMs (their MACs summed).
MacsResult = int | Gemm | Iterable[Gemm]
MacsFn = Callable[[Args, list[Shape]], MacsResult]
ReadsFn = Callable[[Args, list[Shape]], Mapping[str, int]]
BiasFn = Callable[[Args], Sequence[Any]]


@dataclass(frozen=True)
class OpRule:
    """How the tracer treats one op. Build one with :func:`register_op_rule`.

    ``kind`` None means the op is ignored under ``ignore`` (a key of :data:`IGNORE_RULES`).
    ``shape(a)`` gives the output shapes (None: run the op on the meta device); ``macs(a,
    out)`` the MACs (None: 0); ``biases(a)`` the tensors that are biases; ``reads(a, out)``
    the elements read of constant arguments by name, where an op reads less than the whole
    tensor (an embedding reads its looked-up rows); ``dtype(a)`` the output dtype(s) when they
    differ from the inputs'. ``conv_kind`` rules (ops with ``input``, ``weight`` and
    ``groups`` arguments) are refined into depthwise/pointwise from the weight shape;
    ``linear_if_weight`` rules are ``linear`` when an operand is a weight and ``matmul`` when
    every operand is an activation. ``activations`` is how many leading
    outputs of a multi-output op are activations (None: all; pooling indices and
    normalisation statistics are not written at inference). ``may_alias`` ops are views when
    PyTorch can make them views and copies otherwise (reshape, contiguous, flatten): the
    tracer runs them on meta tensors and checks whether the result shares its input's storage.
    ``host_args`` name arguments PyTorch needs as CPU tensors even with meta inputs (a packed
    sequence's lengths and batch sizes): the tracer leaves them on the CPU when it runs the op
    on meta. ``window(a, out)`` is a windowed pooling op's work (``Layer.window_ops``: one
    comparison or add per element of each output's window).
    """

    name: str
    kind: OpKind | None
    shape: ShapeFn | None = None
    macs: MacsFn | None = None
    biases: BiasFn | None = None
    reads: ReadsFn | None = None
    dtype: Callable[[Args], Any] | None = None
    conv_kind: bool = False
    linear_if_weight: bool = False
    activations: int | None = None
    may_alias: bool = False
    ignore: str | None = None
    host_args: tuple[str, ...] = ()
    window: Callable[[Args, list[Shape]], int] | None = None

    def cost(self, a: Args, out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
        """(MACs, GEMMs) of one call."""
        if self.macs is None:
            return 0, ()
        result = self.macs(a, out)
        if isinstance(result, Gemm):
            return result.macs, (result,)
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            macs = int(result)
            if macs < 0:
                raise UsageError(f"op rule {self.name!r} gave negative MACs: {macs}")
            return macs, ()  # a bare count: no geometry, the engine prices it at peak rate
        gemms = tuple(result)
        if not all(isinstance(g, Gemm) for g in gemms):
            raise UsageError(f"op rule {self.name!r}: macs must return an int, a Gemm or "
                             f"Gemms, got {result!r}")
        return sum(g.macs for g in gemms), gemms


#: The rules by which an op is ignored. Each ignored op is still listed in the ledger.
IGNORE_RULES: dict[str, str] = {
    "view": "views and reshapes alias their input: no data moves",
    "alloc": "allocations and constant fills: no activation is read, values are written by "
             "the op that consumes them or folded ahead of time",
    "meta": "shape and metadata queries: no data moves",
    "constant": "every input is a weight or constant: folded ahead of time by inference "
                "runtimes",
    "identity": "no-op at inference (dropout in eval, detach, contiguous on a contiguous tensor)",
}

#: The registry: op key (see :func:`op_key`) → rule.
RULES: dict[str, OpRule] = {}

#: The built-in table as shipped (filled at import); :func:`table_changed` compares with it.
_BUILTIN: dict[str, OpRule] = {}


def table_changed() -> bool:
    """Whether rules were registered, replaced or removed since import: graphs traced now may
    differ from those of the shipped table, so the on-disk cache must not serve them."""
    return RULES != _BUILTIN


# -- the registry ---------------------------------------------------------------------------

def op_key(op: Any) -> str:
    """The registry key of an op: its name for ATen ops (``"conv2d"``), ``"ns::name"`` for
    others. Accepts ``"aten::conv2d"``, ``"mylib::op"``, ``torch.ops.mylib.op`` or one of its
    overloads; an overload name (``"add.Tensor"``) keys that overload alone."""
    if not isinstance(op, str):
        packet = getattr(op, "_overloadpacket", op)
        namespace = getattr(op, "namespace", None) or getattr(packet, "_qualified_op_name",
                                                                "").partition("::")[0]
        name = getattr(packet, "__name__", None)
        if not namespace or not name:
            raise UsageError(f"an op rule needs an op name or a torch.ops op, got {op!r}")
        overload = getattr(op, "_overloadname", None)
        name = f"{name}.{overload}" if overload and overload != "default" else name
        op = f"{namespace}::{name}"
    op = op.strip()
    namespace, sep, name = op.rpartition("::")
    if not name or (sep and not namespace) or " " in op:
        raise UsageError(f"invalid op name {op!r}: use 'name' for an ATen op or "
                         f"'namespace::name'")
    return name if namespace in ("", "aten") else f"{namespace}::{name}"


def register_op_rule(
    name: str | Any | Sequence[str | Any], kind: OpKind | str | None, *,
    shape: ShapeFn | None = None, macs: MacsFn | None = None,
    bias: str | BiasFn | None = None, reads: ReadsFn | None = None,
    dtype: Callable[[Args], Any] | None = None, replace: bool = False,
    ignore: str | None = None, conv_kind: bool = False, linear_if_weight: bool = False,
    activations: int | None = None, may_alias: bool = False, host_args: Sequence[str] = (),
    window: Callable[[Args, list[Shape]], int] | None = None,
) -> OpRule:
    """Register how the tracer costs the op ``name``; the next :func:`~roofline.trace` uses it.

    ``name``: ``"aten::sort"`` (or ``"sort"``) for an ATen op, ``"mylib::my_op"`` for a
    ``torch.library`` custom op, the op object itself (``torch.ops.mylib.my_op``), an
    overload (``"aten::add.Tensor"``) or a list of names sharing one rule. ``kind``: an
    :class:`~roofline.core.graph.OpKind` or its value (``"linear"``, ``"elementwise"``, ...);
    None with ``ignore=`` one of :data:`IGNORE_RULES` for an op that moves no data.

    Every callable receives ``a``, the op's arguments by the names of its schema with the
    schema's defaults filled in (``a["input"]``, ``a["stride"]``), and must be a pure
    function of shapes:

    * ``shape(a) -> [output shape, ...]``, one per output; without it the op runs on the meta
      device to learn its shapes (a custom op then needs ``torch.library.register_fake``);
    * ``macs(a, out_shapes) -> int | Gemm | [Gemm, ...]`` (MAC kinds only: conv, linear,
      matmul); a layer's GEMMs give devices its geometry, so prefer them to a bare count;
    * ``bias``: the argument name of a bias (its bytes are counted as bias, int32 under int8),
      or ``bias(a) -> [tensors]``;
    * ``reads(a, out_shapes) -> {argument name: elements}``: the elements read of a weight
      argument when the op reads only part of it (a lookup reads its rows; for a list
      argument, of each of its tensors);
    * ``dtype(a)``: the output dtype, or one per output, when it is not the inputs';
    * ``window(a, out_shapes) -> int`` (pooling only): a windowed pooling op's work, one
      comparison or add per element of each output's window (``Layer.window_ops``).

    A name that already has a rule is refused unless ``replace=True``. Returns the rule.

    Example, a fused linear+GELU custom op ``mylib::linear_gelu(Tensor x, Tensor w)``::

        roofline.register_op_rule(
            "mylib::linear_gelu", "linear",
            shape=lambda a: [(*a["x"].shape[:-1], a["w"].shape[0])],
            macs=lambda a, out: Gemm(1, math.prod(a["x"].shape[:-1]), a["w"].shape[0],
                                     a["x"].shape[-1]))
    """
    names = [name] if isinstance(name, str) or not isinstance(name, Sequence) else list(name)
    keys = [op_key(n) for n in names]
    if kind is not None and not isinstance(kind, OpKind):
        valid = [k.value for k in OpKind]
        if kind not in valid:
            raise UnknownNameError("op kind", str(kind), valid)
        kind = OpKind(kind)
    if kind is OpKind.UNKNOWN:
        raise UsageError("an op rule cannot have kind 'unknown': ops without a rule are "
                         "unknown already")
    if kind is None:
        if ignore not in IGNORE_RULES:
            raise UnknownNameError("ignore rule", str(ignore), IGNORE_RULES)
        if any(f is not None for f in (shape, macs, bias, reads, dtype)):
            raise UsageError("an ignored op (kind None) takes no shape, macs, bias, reads or "
                             "dtype")
    elif ignore is not None:
        raise UsageError(f"ignore={ignore!r} is only for ops of kind None")
    if window is not None and kind is not OpKind.POOLING:
        raise UsageError(f"window= is the work of a windowed pooling op; kind {kind} has none")
    if macs is not None and kind not in MAC_KINDS:
        raise UsageError(f"kind {kind} counts 0 MACs by convention; give macs= only to "
                         f"{', '.join(sorted(k.value for k in MAC_KINDS))}")
    for label, fn in (("shape", shape), ("macs", macs), ("reads", reads), ("dtype", dtype)):
        if fn is not None and not callable(fn):
            raise UsageError(f"{label}= must be a function of the op's arguments, got {fn!r}")
    if isinstance(bias, str):
        biases: BiasFn | None = partial(_named_bias, bias)
    elif bias is None or callable(bias):
        biases = bias
    else:
        raise UsageError(f"bias= must be an argument name or a function, got {bias!r}")
    if not replace:
        taken = [k for k in keys if k in RULES]
        if taken or len(set(keys)) != len(keys):
            raise UsageError(f"op rule for {', '.join(taken or keys)} already registered; "
                             f"pass replace=True to override it")
    rule = None
    for key in keys:
        rule = OpRule(key, kind, shape, macs, biases, reads, dtype, conv_kind,
                      linear_if_weight, activations, may_alias, ignore, tuple(host_args),
                      window)
        RULES[key] = rule
    assert rule is not None
    return rule


def unregister_op_rule(name: str | Any) -> OpRule:
    """Remove and return the rule for ``name``; the op is unknown from the next trace on."""
    key = op_key(name)
    if key not in RULES:
        raise UnknownNameError("op rule", key, RULES)
    return RULES.pop(key)


def list_op_rules() -> list[str]:
    """Every op with a rule (counted or ignored), sorted."""
    return sorted(RULES)


def rule_for(op: str | Any) -> OpRule | None:
    """The rule for an op (a name, see :func:`op_key`, or a ``torch.ops`` overload): the
    overload's own rule if one is registered, else its op's; None if unknown."""
    key = op_key(op)
    found = RULES.get(key)
    if found is None and "." in key.rpartition("::")[2]:
        found = RULES.get(key.rsplit(".", 1)[0])
    return found


def bind(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``func``'s arguments by schema name, in schema order, with the schema's defaults."""
    return _binder(func)(args, kwargs)


_BINDERS: dict[Any, Callable[[Sequence[Any], Mapping[str, Any]], dict[str, Any]]] = {}
_REQUIRED = object()


def _binder(func: Any) -> Callable[[Sequence[Any], Mapping[str, Any]], dict[str, Any]]:
    found = _BINDERS.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        if schema is None:
            def found(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
                return {**{f"arg{i}": v for i, v in enumerate(args)}, **kwargs}
        else:
            spec = tuple((arg.name, arg.default_value if arg.has_default_value()
                          else _REQUIRED) for arg in schema.arguments)

            def found(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
                bound = dict(zip((n for n, _ in spec), args, strict=False))
                for n, default in spec[len(args):]:
                    value = kwargs.get(n, default)
                    if value is not _REQUIRED:
                        bound[n] = value
                return bound
        _BINDERS[func] = found
    return found


def _named_bias(name: str, a: Args) -> list[Any]:
    value = a.get(name)
    return [value] if value is not None else []


# -- shape helpers ------------------------------------------------------------------------------

class _NeedsMeta(Exception):
    """A shape rule that cannot decide from shapes alone; the tracer runs the op on meta."""


def _is_tensor(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _tensor_values(a: Args) -> list[Any]:
    return [v for v in a.values() if _is_tensor(v)]


def _like(name: str, a: Args) -> list[Shape]:
    return [tuple(a[name].shape)]


def _like_first(a: Args) -> list[Shape]:
    return [tuple(_tensor_values(a)[0].shape)]


def broadcast(*shapes: Shape) -> Shape:
    """NumPy broadcasting of several shapes."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            if len(s) >= -i:
                d = s[i]
                if d != 1:
                    if size != 1 and size != d:
                        raise ValueError(f"shapes {shapes} do not broadcast")
                    size = d
        out.append(size)
    return tuple(out)


def _broadcast_tensors(a: Args) -> list[Shape]:
    return [broadcast(*(tuple(t.shape) for t in _tensor_values(a)))]


def _expand(value: Sequence[int] | int, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


# -- convolutions ------------------------------------------------------------------------------

def conv_output_shape(in_shape: Shape, weight_shape: Shape, stride: Sequence[int],
                      padding: Sequence[int], dilation: Sequence[int], transposed: bool = False,
                      output_padding: Sequence[int] = (), groups: int = 1) -> Shape:
    """Output shape of an N-d convolution (batch, channels, *spatial)."""
    spatial_in = in_shape[2:]
    kernel = weight_shape[2:]
    nd = len(spatial_in)
    stride, padding, dilation = (_expand(v, nd) for v in (stride, padding, dilation))
    out = []
    if transposed:
        output_padding = _expand(output_padding or (0,), nd)
        channels = weight_shape[1] * groups
        for i in range(nd):
            out.append((spatial_in[i] - 1) * stride[i] - 2 * padding[i]
                       + dilation[i] * (kernel[i] - 1) + output_padding[i] + 1)
    else:
        channels = weight_shape[0]
        for i in range(nd):
            out.append((spatial_in[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1)
                       // stride[i] + 1)
    return (in_shape[0], channels, *out)


def _transposed(fixed: bool | None, a: Args) -> bool:
    # aten.convolution says so in an argument; conv_transposeNd and convNd by their name.
    return bool(a["transposed"]) if fixed is None else fixed


def _conv_shape(fixed: bool | None, a: Args) -> list[Shape]:
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
    # groups); convNd(input, weight, bias, stride, padding, dilation, groups);
    # conv_transposeNd(input, weight, bias, stride, padding, output_padding, groups, dilation).
    x, w = tuple(a["input"].shape), tuple(a["weight"].shape)
    transposed, groups = _transposed(fixed, a), a["groups"]
    if isinstance(a["padding"], str):  # "same"/"valid": left to the meta device
        raise _NeedsMeta
    _check_fit(x, w, transposed, groups)
    return [conv_output_shape(x, w, a["stride"], a["padding"], a["dilation"], transposed,
                              a.get("output_padding") or (), groups)]


def _check_fit(x: Shape, w: Shape, transposed: bool, groups: int) -> None:
    # Operands PyTorch would reject (an input with the wrong number of channels, an unbatched
    # input): the meta kernel raises PyTorch's own error or gives PyTorch's own shape.
    if len(x) != len(w) or x[1] != (w[0] if transposed else w[1] * groups):
        raise _NeedsMeta


def _conv_macs(fixed: bool | None, a: Args, out: list[Shape]) -> Gemm:
    return conv_gemm(tuple(a["input"].shape), tuple(a["weight"].shape), out[0],
                     _transposed(fixed, a), a["groups"])


def conv_gemm(x_shape: Shape, w_shape: Shape, out_shape: Shape, transposed: bool,
              groups: int) -> Gemm:
    """A convolution as its implicit GEMM (see :class:`~roofline.core.graph.Gemm`).

    NB: the cost is read from the weight shape, so depthwise and grouped convolutions need no
    special case; padding positions count as MACs, as in PyTorch's and fvcore's counters.
    """
    kernel_area = math.prod(w_shape[2:])
    batch = x_shape[0]
    if transposed:
        # Each input pixel scatters C_out/g × kernel outputs: the input plays the GEMM's m.
        return Gemm(groups, batch * math.prod(x_shape[2:]), w_shape[1] * kernel_area,
                    w_shape[0] // groups)
    return Gemm(groups, batch * math.prod(out_shape[2:]), w_shape[0] // groups,
                w_shape[1] * kernel_area)


def conv_kind(x_shape: Shape, w_shape: Shape, groups: int, transposed: bool = False) -> OpKind:
    """Depthwise when every group has one input channel; pointwise for a 1×1 kernel."""
    in_channels = x_shape[1]
    per_group_in = w_shape[0] // groups if transposed else w_shape[1]
    if groups > 1 and groups == in_channels and per_group_in == 1:
        return OpKind.DEPTHWISE_CONV
    if all(k == 1 for k in w_shape[2:]):
        return OpKind.POINTWISE_CONV
    return OpKind.CONV


def conv_kind_of(rule: OpRule, a: Args) -> OpKind:
    """The kind of one call of a convolution rule."""
    fixed = None if rule.name in ("convolution", "_convolution") else \
        rule.name.startswith("conv_transpose")
    return conv_kind(tuple(a["input"].shape), tuple(a["weight"].shape), a["groups"],
                     _transposed(fixed, a))


# -- matrix products ----------------------------------------------------------------------------

def matmul_shape(a: Shape, b: Shape) -> Shape:
    """torch.matmul's output shape (1-d operands promoted and squeezed, batch broadcast)."""
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return (*b[:-2], b[-1])
    if len(b) == 1:
        return a[:-1]
    batch = broadcast(a[:-2], b[:-2])
    return (*batch, a[-2], b[-1])


def _matmul_gemm(a: Shape, b: Shape) -> Gemm:
    a2 = (1, a[0]) if len(a) == 1 else a
    b2 = (b[0], 1) if len(b) == 1 else b
    batch = math.prod(broadcast(a2[:-2], b2[:-2]))
    return Gemm(batch, a2[-2], b2[-1], a2[-1])


def _fitting_matmul_shape(a: Shape, b: Shape) -> Shape:
    if not a or not b or a[-1] != b[0 if len(b) == 1 else -2]:
        raise _NeedsMeta  # the inner dimensions differ: PyTorch's meta kernel says so
    return matmul_shape(a, b)


def _product_shape(left: str, right: str, a: Args) -> list[Shape]:
    return [_fitting_matmul_shape(tuple(a[left].shape), tuple(a[right].shape))]


def _product_macs(left: str, right: str, a: Args, out: list[Shape]) -> Gemm:
    return _matmul_gemm(tuple(a[left].shape), tuple(a[right].shape))


def _linear_shape(a: Args) -> list[Shape]:
    x, w = tuple(a["input"].shape), tuple(a["weight"].shape)
    if not x or x[-1] != w[-1]:
        raise _NeedsMeta  # in_features differ: PyTorch's meta kernel says so
    return [(*x[:-1], w[0])] if len(w) == 2 else [x[:-1]]


def _linear_macs(a: Args, out: list[Shape]) -> Gemm:
    x, w = tuple(a["input"].shape), tuple(a["weight"].shape)
    return Gemm(1, math.prod(x[:-1]), w[0] if len(w) == 2 else 1, x[-1])


def _sdpa_shape(a: Args) -> list[Shape]:
    q, v = tuple(a["query"].shape), tuple(a["value"].shape)
    return [(*q[:-1], v[-1])]


def _sdpa_macs(a: Args, out: list[Shape]) -> tuple[Gemm, Gemm]:
    # softmax(Q·Kᵀ·scale)·V with Q (..., L, E), K (..., S, E), V (..., S, Ev); K and V broadcast
    # over Q's batch and head dimensions (grouped/multi-query attention). Q·Kᵀ is L·S·E MACs per
    # (batch, head) and A·V is L·S·Ev. NB: scaling, masking and softmax count 0 MACs, and a
    # causal mask (is_causal) still counts every product, as PyTorch's flop counter does.
    q, k, v = (tuple(a[n].shape) for n in ("query", "key", "value"))
    heads = math.prod(broadcast(q[:-2], k[:-2]))
    return Gemm(heads, q[-2], k[-2], q[-1]), Gemm(heads, q[-2], v[-1], k[-2])


def einsum_cost(equation: str, shapes: Sequence[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    """MACs of an einsum contracted left to right, one pairwise product at a time.

    For two operands this is the product of the sizes of every distinct index. NB: PyTorch
    may choose another contraction order for three or more operands (with opt_einsum).
    """
    equation = equation.replace(" ", "")
    if "..." in equation:
        equation = _expand_ellipsis(equation, shapes)
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if not rhs and "->" not in equation:
        counts: dict[str, int] = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = "".join(sorted(c for c, n in counts.items() if n == 1))
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        for c, d in zip(term, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), d)
    if len(terms) == 1:
        return 0, ()
    macs = 0
    gemms: list[Gemm] = []
    current = terms[0]
    for i, term in enumerate(terms[1:], start=1):
        remaining = set(rhs).union(*terms[i + 1:])
        letters = set(current) | set(term)
        keep = {c for c in letters if c in remaining}
        batch = {c for c in keep if c in current and c in term}
        contracted = letters - keep
        m = math.prod(sizes[c] for c in set(current) & keep - batch)
        n = math.prod(sizes[c] for c in set(term) & keep - batch)
        k = math.prod(sizes[c] for c in contracted)
        g = math.prod(sizes[c] for c in batch)
        gemm = Gemm(g, m, n, k)
        gemms.append(gemm)
        macs += gemm.macs
        current = "".join(sorted(keep))
    return macs, tuple(gemms)


def _expand_ellipsis(equation: str, shapes: Sequence[Shape]) -> str:
    """``equation`` with each ``...`` spelled out in unused letters (broadcast from the right)."""
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    spare = [c for c in string.ascii_letters if c not in equation]
    ranks = [len(shape) - (len(term) - 3) if "..." in term else 0
             for term, shape in zip(terms, shapes, strict=True)]
    letters = "".join(spare[:max(ranks)])
    terms = [term.replace("...", letters[len(letters) - rank:]) if "..." in term else term
             for term, rank in zip(terms, ranks, strict=True)]
    if not arrow:
        # Implicit output: the broadcast dimensions, then the letters used once, sorted.
        once = [c for c in sorted(set(lhs) - set(".,")) if lhs.count(c) == 1]
        rhs = "..." + "".join(once)
    return ",".join(terms) + "->" + rhs.replace("...", letters)


def _einsum_macs(a: Args, out: list[Shape]) -> tuple[Gemm, ...]:
    return einsum_cost(a["equation"], [tuple(t.shape) for t in a["tensors"]])[1]


# -- recurrent layers ----------------------------------------------------------------------------

#: Gate count of each recurrent op: the rows of its weight_ih per hidden unit.
RNN_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


class _RnnGeometry:
    """What an ``aten.lstm/gru/rnn_*`` call computes, read from its flat weight list.

    ``params`` holds, per layer and direction, w_ih (G·H, I), w_hh (G·H, P), then b_ih and
    b_hh (G·H,) when ``has_biases``, then w_hr (P, H) with projections (LSTM ``proj_size``);
    P is the recurrent size: ``proj_size`` with projections, else H.
    """

    def __init__(self, gates: int, a: Args):
        params = list(a["params"])
        self.layers, self.directions = a["num_layers"], 2 if a["bidirectional"] else 1
        per = len(params) // (self.layers * self.directions)
        self.groups = [params[i:i + per] for i in range(0, len(params), per)]
        self.biases = [t for g in self.groups for t in (g[2:4] if a["has_biases"] else ())]
        w_ih, w_hh = self.groups[0][0], self.groups[0][1]
        self.gates = gates
        self.hidden = w_ih.shape[0] // gates
        self.recurrent = w_hh.shape[1]  # P
        self.projected = per in (3, 5)  # w_hr follows the weights and biases
        self.packed = "batch_sizes" in a
        x = a["data"] if self.packed else a["input"]
        self.x = tuple(x.shape)
        if self.packed:  # (sum of sequence lengths, I); batch_sizes has one entry per step
            self.steps, self.batch, self.rows = a["batch_sizes"].shape[0], None, self.x[0]
        elif len(self.x) == 2:  # unbatched (T, I)
            self.steps, self.batch, self.rows = self.x[0], 1, self.x[0]
        else:
            t_dim = 1 if a["batch_first"] else 0
            self.steps, self.batch = self.x[t_dim], self.x[1 - t_dim]
            self.rows = self.steps * self.batch
        self.batch_first = bool(a.get("batch_first", False))

    def gemms(self) -> list[Gemm]:
        # NB: a recurrent layer is a sequence of GEMMs with the weights, counted as `linear`:
        # per layer and direction, the input projection of every step at once (m = T·B rows,
        # n = G·H gates, k = I, as PyTorch's CPU kernels and cuDNN compute it), then one
        # recurrent product per step (T products of m = B, n = G·H, k = P) and, with
        # projections, one h·W_hr per step (m = B, n = P, k = H). That is G·H·(I + P) MACs per
        # step (+ H·P with projections). Gate non-linearities and element-wise updates count 0.
        # A packed sequence's steps have varying batch: its recurrent products are given as one
        # GEMM over all the rows, which keeps the MACs exact.
        # Products of one geometry (the directions, the steps, layers ≥ 2) are merged into one
        # Gemm with their count as groups.
        merged: dict[tuple[int, int, int], int] = {}
        n = self.gates * self.hidden
        for group in self.groups:
            products = [(1, self.rows, n, group[0].shape[1])]
            if self.batch is None:
                products.append((1, self.rows, n, self.recurrent))
                if self.projected:
                    products.append((1, self.rows, self.recurrent, self.hidden))
            else:
                products.append((self.steps, self.batch, n, self.recurrent))
                if self.projected:
                    products.append((self.steps, self.batch, self.recurrent, self.hidden))
            for groups, m, n_, k in products:
                merged[(m, n_, k)] = merged.get((m, n_, k), 0) + groups
        return [Gemm(groups, m, n_, k) for (m, n_, k), groups in merged.items()]

    def shapes(self, with_cell: bool) -> list[Shape]:
        features = self.directions * self.recurrent
        stacked = self.layers * self.directions
        if self.packed:
            raise _NeedsMeta  # the batch of h_n is batch_sizes[0]: a value
        if self.batch == 1 and len(self.x) == 2:
            output: Shape = (self.steps, features)
            h, c = (stacked, self.recurrent), (stacked, self.hidden)
        else:
            b = self.batch
            output = (b, self.steps, features) if self.batch_first else (self.steps, b, features)
            h, c = (stacked, b, self.recurrent), (stacked, b, self.hidden)
        return [output, h, c] if with_cell else [output, h]


def _rnn_shape(op: str, a: Args) -> list[Shape]:
    return _RnnGeometry(RNN_GATES[op], a).shapes(with_cell=op == "lstm")


def _rnn_macs(op: str, a: Args, out: list[Shape]) -> list[Gemm]:
    return _RnnGeometry(RNN_GATES[op], a).gemms()


def _rnn_biases(op: str, a: Args) -> list[Any]:
    return _RnnGeometry(RNN_GATES[op], a).biases


def _rnn_reads(a: Args, out: list[Shape]) -> dict[str, int]:
    # The initial state nn.LSTM/GRU/RNN makes when none is given is zeros, not a weight: the
    # layer's weights are its parameters. (A state passed in is an activation, read whole.)
    return {"hx": 0, "batch_sizes": 0} if "batch_sizes" in a else {"hx": 0}


def _sizes_only(name: str, a: Args, out: list[Shape]) -> dict[str, int]:
    return {name: 0}  # sequence lengths: a few integers of metadata, not data moved


def _cell_shape(op: str, a: Args) -> list[Shape]:
    # lstm_cell(input, hx[h, c], w_ih, w_hh, b_ih, b_hh) → (h, c); gru_cell and rnn_*_cell
    # (input, hx, w_ih, w_hh, b_ih, b_hh) → h. Hidden size from w_hh (G·H, H).
    x, hidden = tuple(a["input"].shape), a["w_hh"].shape[1]
    h = (*x[:-1], hidden)
    return [h, h] if op == "lstm_cell" else [h]


def _cell_macs(op: str, a: Args, out: list[Shape]) -> list[Gemm]:
    # One step: x·W_ihᵀ (m = B, n = G·H, k = I) and h·W_hhᵀ (k = H).
    x, w_ih, w_hh = tuple(a["input"].shape), a["w_ih"].shape, a["w_hh"].shape
    rows = math.prod(x[:-1])
    return [Gemm(1, rows, w_ih[0], w_ih[1]), Gemm(1, rows, w_hh[0], w_hh[1])]


def _cell_biases(a: Args) -> list[Any]:
    return [a[n] for n in ("b_ih", "b_hh") if a.get(n) is not None]


# -- pooling and reductions -----------------------------------------------------------------------

def _pool_shape(nd: int, a: Args) -> list[Shape]:
    # avg_poolNd(self, kernel_size, stride=[], padding, ceil_mode, count_include_pad, ...);
    # max_poolNd[_with_indices](self, kernel_size, stride=[], padding, dilation, ceil_mode).
    x = tuple(a["self"].shape)
    kernel = _expand(a["kernel_size"], nd)
    stride = _expand(a["stride"] or kernel, nd)
    padding = _expand(a["padding"], nd)
    dilation = _expand(a.get("dilation", 1), nd)
    ceil_mode = bool(a["ceil_mode"])
    out = []
    for i in range(nd):
        size = x[-nd + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1
        o = (-(-size // stride[i]) if ceil_mode else size // stride[i]) + 1
        if ceil_mode and (o - 1) * stride[i] >= x[-nd + i] + padding[i]:
            o -= 1  # the last window would start in the padding: PyTorch drops it
        out.append(o)
    return [(*x[:-nd], *out)]


def _pool_window(nd: int, a: Args, out: list[Shape]) -> int:
    # Each output element compares (max) or adds (average) the kernel's window of inputs.
    return math.prod(out[0]) * math.prod(_expand(a["kernel_size"], nd))


def _with_indices(fn: Callable[[Args], list[Shape]], a: Args) -> list[Shape]:
    shape = fn(a)[0]
    return [shape, shape]


def _values_and_indices(a: Args) -> list[Any]:
    return [a["self"].dtype, _int64()]


def _int64() -> Any:
    import torch

    return torch.int64


def _adaptive_shape(nd: int, a: Args) -> list[Shape]:
    x = tuple(a["self"].shape)
    size = a["output_size"]
    size = _expand(size, nd if isinstance(size, int) else len(size))
    nd = len(size)
    out = tuple(x[-nd + i] if s is None else s for i, s in enumerate(size))
    return [(*x[:-nd], *out)]


def _reduce_shape(a: Args) -> list[Shape]:
    # mean/sum/amax(self, dim=None, keepdim=False, ...); norm(self, p, dim, keepdim);
    # linalg_vector_norm(self, ord, dim, keepdim). An overload without dim reduces everything.
    return [_reduced(tuple(a["self"].shape), a.get("dim"), bool(a.get("keepdim", False)))]


def _reduced(x: Shape, dim: Any, keepdim: bool) -> Shape:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        dims = set(range(len(x)))
    else:
        dims = {d % len(x) for d in ([dim] if isinstance(dim, int) else dim)}
    if keepdim:
        return tuple(1 if i in dims else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in dims)


# -- normalisation, activations and data movement --------------------------------------------------

def _cat_shape(a: Args) -> list[Shape]:
    tensors = [t for t in a["tensors"] if t.dim() > 1 or t.numel() > 0]
    first = tuple(tensors[0].shape)
    dim = a["dim"] % len(first)
    total = sum(t.shape[dim] for t in tensors)
    return [(*first[:dim], total, *first[dim + 1:])]


def _stack_shape(a: Args) -> list[Shape]:
    tensors = list(a["tensors"])
    first = tuple(tensors[0].shape)
    dim = a["dim"] % (len(first) + 1)
    return [(*first[:dim], len(tensors), *first[dim:])]


def _pad_shape(a: Args) -> list[Shape]:
    # constant_pad_nd / pad(self, pad, ...): (left, right) pairs from the last dimension back.
    x = list(a["self"].shape)
    pad = list(a["pad"])
    for i in range(len(pad) // 2):
        x[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return [tuple(x)]


def _glu_shape(a: Args) -> list[Shape]:
    x = list(a["self"].shape)
    x[a["dim"] % len(x)] //= 2  # the first half gated by the second
    return [tuple(x)]


def _with_statistics(name: str, a: Args) -> list[Shape]:
    # native_layer_norm / native_group_norm return (out, mean, rstd); the statistics are not
    # activations at inference.
    return [tuple(a[name].shape), (0,), (0,)]


def _embedding_shape(a: Args) -> list[Shape]:
    return [(*a["indices"].shape, a["weight"].shape[-1])]


def _gathered(name: str, a: Args, out: list[Shape]) -> dict[str, int]:
    # A lookup reads one row of its table per index: the elements it writes, at most the
    # table. NB: the whole table still counts once in the model's parameters.
    return {name: min(math.prod(out[0]), a[name].numel())}


def _weight_dtype(a: Args) -> Any:
    return a["weight"].dtype


# -- the table ---------------------------------------------------------------------------------

def _register_builtin_rules() -> None:
    def add(names: str, kind: OpKind | None, **rule: Any) -> None:
        register_op_rule(names.split(), kind, **rule)

    C, L, M = OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL
    add("convolution _convolution", C, conv_kind=True, bias="bias",
        shape=partial(_conv_shape, None), macs=partial(_conv_macs, None))
    add("conv1d conv2d conv3d", C, conv_kind=True, bias="bias",
        shape=partial(_conv_shape, False), macs=partial(_conv_macs, False))
    add("conv_transpose1d conv_transpose2d conv_transpose3d", C, conv_kind=True, bias="bias",
        shape=partial(_conv_shape, True), macs=partial(_conv_macs, True))

    add("linear", L, linear_if_weight=True, bias="bias", shape=_linear_shape, macs=_linear_macs)
    for names, left, right in (("mm bmm", "self", "mat2"), ("matmul", "self", "other"),
                               ("dot", "self", "tensor"), ("mv", "self", "vec")):
        add(names, M, linear_if_weight=True, shape=partial(_product_shape, left, right),
            macs=partial(_product_macs, left, right))
    for names, left, right in (("addmm", "mat1", "mat2"), ("baddbmm", "batch1", "batch2"),
                               ("addmv", "mat", "vec")):
        add(names, M, linear_if_weight=True, bias="self",
            shape=partial(_product_shape, left, right), macs=partial(_product_macs, left, right))
    add("einsum", M, linear_if_weight=True, macs=_einsum_macs)
    add("scaled_dot_product_attention", M, shape=_sdpa_shape, macs=_sdpa_macs)

    for op in RNN_GATES:  # kind linear: activations × weight matrices (see _RnnGeometry.gemms)
        add(op, L, shape=partial(_rnn_shape, op), macs=partial(_rnn_macs, op),
            bias=partial(_rnn_biases, op), reads=_rnn_reads, host_args=("batch_sizes",))
    # Packed sequences: the lengths are values PyTorch reads on the CPU (enforce_sorted=True,
    # with the lengths a CPU tensor of the model); the data is the activation.
    add("_pack_padded_sequence", OpKind.DATA_MOVEMENT, activations=1, host_args=("lengths",),
        reads=partial(_sizes_only, "lengths"))
    add("_pad_packed_sequence", OpKind.DATA_MOVEMENT, activations=1,
        host_args=("batch_sizes",), reads=partial(_sizes_only, "batch_sizes"))
    for op in ("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"):
        add(op, L, shape=partial(_cell_shape, op), macs=partial(_cell_macs, op),
            bias=_cell_biases, reads=_rnn_reads)

    P = OpKind.POOLING
    for nd in (1, 2, 3):
        pool = partial(_pool_shape, nd)
        window = partial(_pool_window, nd)
        add(f"avg_pool{nd}d max_pool{nd}d", P, shape=pool, window=window)
        add(f"max_pool{nd}d_with_indices", P, shape=partial(_with_indices, pool),
            dtype=_values_and_indices, activations=1, window=window)
        adaptive = partial(_adaptive_shape, nd)
        add(f"adaptive_avg_pool{nd}d", P, shape=adaptive)
        add(f"adaptive_max_pool{nd}d", P, shape=partial(_with_indices, adaptive),
            dtype=_values_and_indices, activations=1)
    add("_adaptive_avg_pool2d _adaptive_avg_pool3d", P, shape=partial(_adaptive_shape, 2))
    add("lp_pool1d lp_pool2d lp_pool3d", P)
    add("mean sum amax amin prod nansum nanmean logsumexp norm linalg_vector_norm", P,
        shape=_reduce_shape)
    add("var std var_mean std_mean max min argmax argmin cumsum", P)

    add("batch_norm native_batch_norm _native_batch_norm_legit_no_training "
        "_native_batch_norm_legit instance_norm group_norm layer_norm rms_norm "
        "local_response_norm", OpKind.NORMALIZATION, shape=partial(_like, "input"))
    add("native_layer_norm native_group_norm", OpKind.NORMALIZATION,
        shape=partial(_with_statistics, "input"), activations=1)

    acts = ("relu relu6 hardtanh hardswish hardsigmoid sigmoid tanh gelu silu mish elu selu "
            "celu leaky_relu softplus threshold rrelu clamp clamp_min clamp_max")
    no_inplace = ("softsign hardshrink softshrink tanhshrink log_sigmoid logsigmoid softmax "
                  "_softmax log_softmax _log_softmax _safe_softmax prelu _prelu_kernel")
    add(f"{acts} {' '.join(a + '_' for a in acts.split())} {no_inplace}", OpKind.ACTIVATION,
        shape=partial(_like, "self"))
    add("glu", OpKind.ACTIVATION, shape=_glu_shape)

    binary = ("add sub mul div rsub true_divide floor_divide remainder fmod pow maximum "
              "minimum fmax fmin atan2 hypot eq ne lt le gt ge logical_and logical_or "
              "logical_xor bitwise_and bitwise_or bitwise_xor where lerp addcmul addcdiv "
              "masked_fill xlogy copysign")
    unary = ("neg abs sqrt rsqrt exp exp2 expm1 log log2 log10 log1p reciprocal sign floor "
             "ceil round trunc frac sin cos tan asin acos atan sinh cosh erf erfc erfinv "
             "square logical_not bitwise_not isnan isinf nan_to_num tril triu")
    add(f"{binary} {unary}", OpKind.ELEMENTWISE, shape=_broadcast_tensors)
    inplace = [n + "_" for n in f"{binary} {unary}".split()
               if n not in ("rsub", "where", "maximum", "minimum", "fmax", "fmin", "isnan",
                            "isinf", "logical_and", "logical_or", "logical_xor", "bitwise_not")]
    add(" ".join(inplace), OpKind.ELEMENTWISE, shape=partial(_like, "self"))

    D = OpKind.DATA_MOVEMENT
    add("clone _to_copy to type_as copy_", D, shape=partial(_like, "self"))
    add("cat concat concatenate", D, shape=_cat_shape)
    add("stack", D, shape=_stack_shape)
    add("constant_pad_nd", D, shape=_pad_shape)
    add("embedding", D, shape=_embedding_shape, reads=partial(_gathered, "weight"),
        dtype=_weight_dtype)
    add("index_select gather index take", D, reads=partial(_gathered, "self"))
    add("pad reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d "
        "replication_pad2d replication_pad3d upsample_nearest1d upsample_nearest2d "
        "upsample_nearest3d upsample_linear1d upsample_bilinear2d upsample_trilinear3d "
        "upsample_bicubic2d _upsample_nearest_exact1d _upsample_nearest_exact2d "
        "_upsample_nearest_exact3d _upsample_bilinear2d_aa interpolate grid_sampler "
        "grid_sampler_2d roll flip repeat repeat_interleave tile pixel_shuffle pixel_unshuffle "
        "channel_shuffle native_channel_shuffle im2col col2im narrow_copy masked_select "
        "scatter scatter_add index_put index_copy", D)

    # View-or-copy ops: a copy when the input's strides do not allow a view.
    add("reshape flatten contiguous unflatten view_as reshape_as", D, may_alias=True)

    add("view _unsafe_view _reshape_alias permute transpose t expand expand_as unsqueeze "
        "squeeze slice select split split_with_sizes unsafe_split chunk unbind narrow "
        "as_strided alias movedim moveaxis swapaxes swapdims unfold diagonal view_as_real "
        "view_as_complex numpy_T mT mH adjoint tensor_split hsplit vsplit detach lift_fresh "
        "_conj _neg_view real imag align_as rename refine_names", None, ignore="view")
    add("empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones "
        "ones_like full full_like new_zeros new_ones new_full scalar_tensor arange linspace "
        "logspace eye fill fill_ zero_ rand rand_like randn randn_like randint randperm "
        "lift_fresh_copy tensor _to_dense", None, ignore="alloc")
    add("sym_size sym_stride sym_numel sym_storage_offset is_same_size size stride numel dim "
        "is_contiguous is_nonzero _assert_async _assert_tensor_metadata", None, ignore="meta")
    add("dropout feature_dropout alpha_dropout feature_alpha_dropout native_dropout "
        "_has_compatible_shallow_copy_type", None, ignore="identity")


_register_builtin_rules()
_BUILTIN.update(RULES)
