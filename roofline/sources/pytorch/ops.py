"""What each tensor operation costs: the op table the tracer reads.

Owns the rules keyed by ATen op name: the canonical kind, how to compute output shapes without
running the op, and the MAC formula. Rules are pure functions of shapes (they read ``.shape``
of their tensor arguments and never their values); the tracer owns dispatch and bookkeeping.

Ops are seen as the model calls them under ``torch.inference_mode`` (``linear``, ``matmul``,
``einsum``, ``batch_norm``, ``scaled_dot_product_attention``, ...), before PyTorch decomposes
them, so one user-level call is one layer.

Every op the tracer meets is either

* counted: a rule below gives its kind, shapes and MACs;
* ignored by a stated rule (:data:`IGNORE_RULES`): views and reshapes that alias their input,
  allocations, metadata queries;
* unknown: no rule. It becomes a layer of kind ``unknown`` that still moves its bytes, runs on
  the meta device to learn its output shapes, and is listed in a warning.

MAC conventions: convolutions, linear layers and activation×activation products (attention's
Q·Kᵀ and A·V) count one MAC per multiply-accumulate; normalisation, activations, pooling,
element-wise ops and softmax count 0 MACs but still move bytes.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.graph import Gemm, OpKind

__all__ = ["OpRule", "RULES", "IGNORE_RULES", "rule_for", "conv_output_shape"]

Shape = tuple[int, ...]
ShapeFn = Callable[[Sequence[Any], dict[str, Any]], list[Shape]]
CostFn = Callable[[Sequence[Any], dict[str, Any], list[Shape]], tuple[int, tuple[Gemm, ...]]]


@dataclass(frozen=True)
class OpRule:
    """How the tracer treats one ATen op.

    ``kind`` None means the op is ignored under ``ignore`` (a key of IGNORE_RULES).
    ``shape`` computes output shapes from input shapes (None: run the op on the meta device).
    ``cost`` gives (MACs, GEMMs); None means 0 MACs. ``bias_arg`` is the position of a
    conv/linear bias. ``inplace`` ops return their first argument. ``tuple_output`` ops return
    a tuple of ``len(shape(...))`` tensors. ``may_alias`` ops are views when PyTorch can make
    them views and copies otherwise (reshape, contiguous, flatten): the tracer runs them on meta
    tensors and checks whether the result shares its input's storage.
    """

    kind: OpKind | None
    shape: ShapeFn | None = None
    cost: CostFn | None = None
    bias_arg: int | None = None
    inplace: bool = False
    tuple_output: bool = False
    may_alias: bool = False
    ignore: str | None = None


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


# -- shape helpers ------------------------------------------------------------------------------

def _tensors(args: Sequence[Any]) -> list[Any]:
    return [a for a in args if hasattr(a, "shape") and hasattr(a, "dtype")]


def _same_as_first(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    return [tuple(args[0].shape)]


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


def _broadcast_tensors(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    return [broadcast(*(tuple(t.shape) for t in _tensors(args)))]


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


def _expand(value: Sequence[int] | int, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _conv_args(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # aten.convolution(input, weight, bias, stride, padding, dilation, transposed,
    #                  output_padding, groups)
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "transposed",
             "output_padding", "groups")
    full = list(args) + [kwargs.get(n) for n in names[len(args):]]
    return tuple(full)


def _conv_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    x, w, _, stride, padding, dilation, transposed, output_padding, groups = _conv_args(
        args, kwargs)
    _check_fit(tuple(x.shape), tuple(w.shape), bool(transposed), groups or 1)
    return [conv_output_shape(tuple(x.shape), tuple(w.shape), stride, padding, dilation,
                              bool(transposed), output_padding or (), groups or 1)]


def _convnd_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # aten.conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups);
    # string padding ("same"/"valid") is left to the meta device.
    x, w = args[0], args[1]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    padding = args[4] if len(args) > 4 else kwargs.get("padding", 0)
    dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    if isinstance(padding, str):
        raise _NeedsMeta
    _check_fit(tuple(x.shape), tuple(w.shape), False, groups)
    return [conv_output_shape(tuple(x.shape), tuple(w.shape), stride, padding, dilation,
                              False, (), groups)]


class _NeedsMeta(Exception):
    """A shape rule that cannot decide from shapes alone; the tracer runs the op on meta."""


def _check_fit(x: Shape, w: Shape, transposed: bool, groups: int) -> None:
    # Operands PyTorch would reject (an input with the wrong number of channels, an unbatched
    # input): the meta kernel raises PyTorch's own error or gives PyTorch's own shape.
    if len(x) != len(w) or x[1] != (w[0] if transposed else w[1] * groups):
        raise _NeedsMeta


def _conv_cost(args: Sequence[Any], kwargs: dict[str, Any],
               out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    x, w = args[0], args[1]
    if len(args) > 6 and isinstance(args[6], bool):  # aten.convolution
        transposed, groups = args[6], args[8] if len(args) > 8 else kwargs.get("groups", 1)
    else:  # aten.convNd(input, weight, bias, stride, padding, dilation, groups)
        transposed = False
        groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    return _conv_gemm(tuple(x.shape), tuple(w.shape), out[0], bool(transposed), groups or 1)


def _conv_transpose_cost(args: Sequence[Any], kwargs: dict[str, Any],
                         out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    # aten.conv_transposeNd(input, weight, bias, stride, padding, output_padding, groups,
    #                       dilation)
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    return _conv_gemm(tuple(args[0].shape), tuple(args[1].shape), out[0], True, groups or 1)


def _conv_gemm(x_shape: Shape, w_shape: Shape, out_shape: Shape, transposed: bool,
               groups: int) -> tuple[int, tuple[Gemm, ...]]:
    kernel_area = math.prod(w_shape[2:])
    batch = x_shape[0]
    if transposed:
        # Each input pixel scatters C_out/g × kernel outputs: the input plays the GEMM's m.
        m = batch * math.prod(x_shape[2:])
        n = w_shape[1] * kernel_area
        k = w_shape[0] // groups
    else:
        m = batch * math.prod(out_shape[2:])
        n = w_shape[0] // groups
        k = w_shape[1] * kernel_area
    gemm = Gemm(groups, m, n, k)
    return gemm.macs, (gemm,)


def conv_kind(x_shape: Shape, w_shape: Shape, groups: int, transposed: bool = False) -> OpKind:
    """Depthwise when every group has one input channel; pointwise for a 1×1 kernel."""
    in_channels = x_shape[1]
    per_group_in = w_shape[0] // groups if transposed else w_shape[1]
    if groups > 1 and groups == in_channels and per_group_in == 1:
        return OpKind.DEPTHWISE_CONV
    if all(k == 1 for k in w_shape[2:]):
        return OpKind.POINTWISE_CONV
    return OpKind.CONV


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


def _matmul_shape_fn(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    return [_fitting_matmul_shape(tuple(args[0].shape), tuple(args[1].shape))]


def _fitting_matmul_shape(a: Shape, b: Shape) -> Shape:
    if a[-1] != b[0 if len(b) == 1 else -2]:
        raise _NeedsMeta  # the inner dimensions differ: PyTorch's meta kernel says so
    return matmul_shape(a, b)


def _matmul_cost(args: Sequence[Any], kwargs: dict[str, Any],
                 out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    gemm = _matmul_gemm(tuple(args[0].shape), tuple(args[1].shape))
    return gemm.macs, (gemm,)


def _addmm_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # addmm(bias, a, b) / baddbmm(bias, a, b) / addmv(bias, mat, vec)
    return [_fitting_matmul_shape(tuple(args[1].shape), tuple(args[2].shape))]


def _addmm_cost(args: Sequence[Any], kwargs: dict[str, Any],
                out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    gemm = _matmul_gemm(tuple(args[1].shape), tuple(args[2].shape))
    return gemm.macs, (gemm,)


def _linear_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    x, w = tuple(args[0].shape), tuple(args[1].shape)
    if not x or x[-1] != w[-1]:
        raise _NeedsMeta  # in_features differ: PyTorch's meta kernel says so
    return [(*x[:-1], w[0])] if len(w) == 2 else [x[:-1]]


def _linear_cost(args: Sequence[Any], kwargs: dict[str, Any],
                 out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    x, w = tuple(args[0].shape), tuple(args[1].shape)
    rows = math.prod(x[:-1])
    gemm = Gemm(1, rows, w[0] if len(w) == 2 else 1, x[-1])
    return gemm.macs, (gemm,)


def _sdpa_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    q, v = tuple(args[0].shape), tuple(args[2].shape)
    return [(*q[:-1], v[-1])]


def _sdpa_cost(args: Sequence[Any], kwargs: dict[str, Any],
               out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    # softmax(Q·Kᵀ·scale)·V with Q (..., L, E), K (..., S, E), V (..., S, Ev); K and V broadcast
    # over Q's batch and head dimensions (grouped/multi-query attention). Q·Kᵀ is L·S·E MACs per
    # (batch, head) and A·V is L·S·Ev. NB: scaling, masking and softmax count 0 MACs.
    q, k, v = (tuple(a.shape) for a in args[:3])
    heads = math.prod(broadcast(q[:-2], k[:-2]))
    scores = Gemm(heads, q[-2], k[-2], q[-1])
    mix = Gemm(heads, q[-2], v[-1], k[-2])
    return scores.macs + mix.macs, (scores, mix)


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


def _einsum_operands(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, list[Any]]:
    equation = args[0]
    operands = args[1] if len(args) > 1 else kwargs["tensors"]
    return equation, list(operands)


def _einsum_cost(args: Sequence[Any], kwargs: dict[str, Any],
                 out: list[Shape]) -> tuple[int, tuple[Gemm, ...]]:
    equation, operands = _einsum_operands(args, kwargs)
    return einsum_cost(equation, [tuple(t.shape) for t in operands])


# -- pooling and reductions -----------------------------------------------------------------------

def _pool_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # avg_pool2d / max_pool2d(input, kernel_size, stride, padding, [dilation,] ceil_mode, ...)
    x = tuple(args[0].shape)
    nd = 2
    kernel = _expand(args[1], nd)
    stride = _expand(args[2] if len(args) > 2 and args[2] else kernel, nd)
    padding = _expand(args[3] if len(args) > 3 else 0, nd)
    is_max = len(args) > 4 and not isinstance(args[4], bool)
    dilation = _expand(args[4], nd) if is_max else (1,) * nd
    ceil_index = 5 if is_max else 4
    ceil_mode = bool(args[ceil_index]) if len(args) > ceil_index else bool(
        kwargs.get("ceil_mode", False))
    out = []
    for i in range(nd):
        size = x[-nd + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1
        o = (-(-size // stride[i]) if ceil_mode else size // stride[i]) + 1
        if ceil_mode and (o - 1) * stride[i] >= x[-nd + i] + padding[i]:
            o -= 1
        out.append(o)
    return [(*x[:-nd], *out)]


def _max_pool_with_indices_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    shape = _pool_shape(args, kwargs)[0]
    return [shape, shape]


def _adaptive_pool_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    x = tuple(args[0].shape)
    size = args[1]
    nd = len(size) if not isinstance(size, int) else 2
    size = _expand(size, nd)
    out = tuple(x[-nd + i] if s is None else s for i, s in enumerate(size))
    return [(*x[:-nd], *out)]


def _adaptive_max_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    shape = _adaptive_pool_shape(args, kwargs)[0]
    return [shape, shape]


def _reduce_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # mean/sum/amax(input, dim=None, keepdim=False, ...)
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = bool(args[2]) if len(args) > 2 else bool(kwargs.get("keepdim", False))
    return [_reduced(tuple(args[0].shape), dim, keepdim)]


def _norm_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # norm/linalg_vector_norm(input, p, dim=None, keepdim=False, ...): the order comes first.
    dim = args[2] if len(args) > 2 else kwargs.get("dim")
    keepdim = bool(args[3]) if len(args) > 3 else bool(kwargs.get("keepdim", False))
    return [_reduced(tuple(args[0].shape), dim, keepdim)]


def _reduced(x: Shape, dim: Any, keepdim: bool) -> Shape:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        dims = set(range(len(x)))
    else:
        dims = {d % len(x) for d in ([dim] if isinstance(dim, int) else dim)}
    if keepdim:
        return tuple(1 if i in dims else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in dims)


# -- normalisation and data movement ---------------------------------------------------------------

def _cat_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    tensors = [t for t in args[0] if t.dim() > 1 or t.numel() > 0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    first = tuple(tensors[0].shape)
    dim %= len(first)
    total = sum(t.shape[dim] for t in tensors)
    return [(*first[:dim], total, *first[dim + 1:])]


def _stack_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    tensors = list(args[0])
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    first = tuple(tensors[0].shape)
    dim %= len(first) + 1
    return [(*first[:dim], len(tensors), *first[dim:])]


def _pad_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    x = list(args[0].shape)
    pad = list(args[1])
    for i in range(len(pad) // 2):
        x[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return [tuple(x)]


def _layer_norm_tuple_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    # native_layer_norm returns (out, mean, rstd); the statistics are not activations here.
    return [tuple(args[0].shape), (0,), (0,)]


def _bn_tuple_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Shape]:
    return [tuple(args[0].shape), (0,), (0,)]


# -- the table ---------------------------------------------------------------------------------

def _rules() -> dict[str, OpRule]:
    rules: dict[str, OpRule] = {}

    def add(names: str, rule: OpRule) -> None:
        for name in names.split():
            if name in rules:
                raise ValueError(f"duplicate op rule for {name}")
            rules[name] = rule

    conv = OpRule(OpKind.CONV, _conv_shape, _conv_cost, bias_arg=2)
    add("convolution _convolution", conv)
    add("conv1d conv2d conv3d", OpRule(OpKind.CONV, _convnd_shape, _conv_cost, bias_arg=2))
    add("conv_transpose1d conv_transpose2d conv_transpose3d",
        OpRule(OpKind.CONV, None, _conv_transpose_cost, bias_arg=2))

    add("linear", OpRule(OpKind.LINEAR, _linear_shape, _linear_cost, bias_arg=2))
    add("mm bmm matmul dot mv", OpRule(OpKind.MATMUL, _matmul_shape_fn, _matmul_cost))
    add("addmm baddbmm addmv", OpRule(OpKind.MATMUL, _addmm_shape, _addmm_cost, bias_arg=0))
    add("einsum", OpRule(OpKind.MATMUL, None, _einsum_cost))
    add("scaled_dot_product_attention", OpRule(OpKind.MATMUL, _sdpa_shape, _sdpa_cost))

    pool = OpRule(OpKind.POOLING, _pool_shape)
    add("avg_pool2d max_pool2d", pool)
    add("max_pool2d_with_indices", OpRule(OpKind.POOLING, _max_pool_with_indices_shape,
                                          tuple_output=True))
    add("adaptive_avg_pool2d _adaptive_avg_pool2d adaptive_avg_pool1d adaptive_avg_pool3d "
        "_adaptive_avg_pool3d", OpRule(OpKind.POOLING, _adaptive_pool_shape))
    add("adaptive_max_pool2d adaptive_max_pool1d",
        OpRule(OpKind.POOLING, _adaptive_max_shape, tuple_output=True))
    add("avg_pool1d avg_pool3d max_pool1d max_pool3d max_pool3d_with_indices lp_pool2d",
        OpRule(OpKind.POOLING))
    add("mean sum amax amin prod nansum nanmean logsumexp", OpRule(OpKind.POOLING, _reduce_shape))
    add("norm linalg_vector_norm", OpRule(OpKind.POOLING, _norm_shape))
    add("var std var_mean std_mean max min argmax argmin cumsum", OpRule(OpKind.POOLING))

    add("batch_norm native_batch_norm _native_batch_norm_legit_no_training "
        "_native_batch_norm_legit instance_norm group_norm layer_norm rms_norm "
        "local_response_norm", OpRule(OpKind.NORMALIZATION, _same_as_first))
    add("native_layer_norm native_group_norm",
        OpRule(OpKind.NORMALIZATION, _layer_norm_tuple_shape, tuple_output=True))

    activation = OpRule(OpKind.ACTIVATION, _same_as_first)
    activation_ = OpRule(OpKind.ACTIVATION, _same_as_first, inplace=True)
    acts = ("relu relu6 hardtanh hardswish hardsigmoid sigmoid tanh gelu silu mish elu selu "
            "celu leaky_relu softplus softsign hardshrink softshrink tanhshrink threshold "
            "log_sigmoid logsigmoid rrelu glu clamp clamp_min clamp_max")
    add(acts, activation)
    add(" ".join(a + "_" for a in acts.split() if a not in ("log_sigmoid", "logsigmoid",
                                                            "softsign", "tanhshrink", "glu",
                                                            "hardshrink", "softshrink")),
        activation_)
    add("softmax _softmax log_softmax _log_softmax _safe_softmax", activation)
    add("prelu _prelu_kernel", OpRule(OpKind.ACTIVATION, _same_as_first))

    elementwise = OpRule(OpKind.ELEMENTWISE, _broadcast_tensors)
    elementwise_ = OpRule(OpKind.ELEMENTWISE, _same_as_first, inplace=True)
    binary = ("add sub mul div rsub true_divide floor_divide remainder fmod pow maximum "
              "minimum fmax fmin atan2 hypot eq ne lt le gt ge logical_and logical_or "
              "logical_xor bitwise_and bitwise_or bitwise_xor where lerp addcmul addcdiv "
              "masked_fill xlogy copysign")
    unary = ("neg abs sqrt rsqrt exp exp2 expm1 log log2 log10 log1p reciprocal sign floor "
             "ceil round trunc frac sin cos tan asin acos atan sinh cosh erf erfc erfinv "
             "square logical_not bitwise_not isnan isinf nan_to_num tril triu")
    add(binary + " " + unary, elementwise)
    inplace_names = [n + "_" for n in (binary + " " + unary).split()
                     if n not in ("rsub", "where", "maximum", "minimum", "fmax", "fmin",
                                  "isnan", "isinf", "logical_and", "logical_or",
                                  "logical_xor", "bitwise_not")]
    add(" ".join(inplace_names), elementwise_)

    copy = OpRule(OpKind.DATA_MOVEMENT, _same_as_first)
    add("clone _to_copy to type_as", copy)
    add("copy_", OpRule(OpKind.DATA_MOVEMENT, _same_as_first, inplace=True))
    add("cat concat concatenate", OpRule(OpKind.DATA_MOVEMENT, _cat_shape))
    add("stack", OpRule(OpKind.DATA_MOVEMENT, _stack_shape))
    add("constant_pad_nd", OpRule(OpKind.DATA_MOVEMENT, _pad_shape))
    add("pad reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d "
        "upsample_nearest1d upsample_nearest2d upsample_bilinear2d upsample_bicubic2d "
        "_upsample_nearest_exact2d _upsample_bilinear2d_aa interpolate grid_sampler "
        "grid_sampler_2d index_select gather index take embedding roll flip repeat "
        "repeat_interleave tile pixel_shuffle pixel_unshuffle channel_shuffle im2col col2im "
        "narrow_copy masked_select scatter index_put index_copy", OpRule(OpKind.DATA_MOVEMENT))

    # View-or-copy ops: a copy when the input's strides do not allow a view.
    maybe = OpRule(OpKind.DATA_MOVEMENT, None, may_alias=True)
    add("reshape flatten contiguous unflatten view_as reshape_as", maybe)

    views = ("view _unsafe_view _reshape_alias permute transpose t expand expand_as unsqueeze "
             "squeeze slice select split split_with_sizes unsafe_split chunk unbind narrow "
             "as_strided alias movedim moveaxis swapaxes swapdims unfold diagonal "
             "view_as_real view_as_complex numpy_T mT mH adjoint tensor_split hsplit vsplit "
             "detach lift_fresh _conj _neg_view real imag align_as rename refine_names")
    add(views, OpRule(None, ignore="view"))
    allocs = ("empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones "
              "ones_like full full_like new_zeros new_ones new_full scalar_tensor arange "
              "linspace logspace eye fill fill_ zero_ rand rand_like randn randn_like randint "
              "lift_fresh_copy tensor _to_dense")
    add(allocs, OpRule(None, ignore="alloc"))
    add("sym_size sym_stride sym_numel sym_storage_offset is_same_size size stride numel "
        "dim is_contiguous is_nonzero _assert_async _assert_tensor_metadata",
        OpRule(None, ignore="meta"))
    add("dropout feature_dropout alpha_dropout feature_alpha_dropout native_dropout "
        "_has_compatible_shallow_copy_type", OpRule(None, ignore="identity"))
    return rules


RULES: dict[str, OpRule] = _rules()


def rule_for(op_name: str) -> OpRule | None:
    """The rule for an ATen op packet name (e.g. ``"convolution"``), or None if unknown."""
    return RULES.get(op_name)
