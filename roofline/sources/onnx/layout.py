"""Memory layouts of activations read from an ONNX graph: which reshapes are views, and which
must copy, by PyTorch's rules.

Owns the stride arithmetic the ONNX reader uses so that it decides "view or copy" the way the
torch tracer does (``roofline.sources.pytorch.tracer`` runs PyTorch itself and reads the result):
a Transpose, Slice, Split, Expand, Squeeze or Unsqueeze is a view with new strides, and a
Reshape or Flatten is a view when PyTorch's ``view`` could make it one from those strides, else
a copy. Element-wise ops keep their input's layout (PyTorch's TensorIterator); every other op
writes a contiguous tensor. Pure functions of shapes and strides, counted in elements; knows
nothing about ONNX or torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["contiguous_strides", "is_contiguous", "view_strides", "permuted", "expanded",
           "selected", "sliced", "elementwise_strides"]

Shape = tuple[int, ...]


def contiguous_strides(shape: Sequence[int]) -> Shape:
    """Row-major strides of ``shape``."""
    strides = []
    step = 1
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def is_contiguous(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """PyTorch's ``is_contiguous``: row-major strides, ignoring dimensions of size 1."""
    if math.prod(shape) == 0:
        return True
    expected = 1
    for size, stride in zip(reversed(tuple(shape)), reversed(tuple(strides)), strict=True):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


def view_strides(shape: Sequence[int], strides: Sequence[int],
                 new_shape: Sequence[int]) -> Shape | None:
    """The strides of ``view(new_shape)`` of a tensor with ``shape`` and ``strides``, or None
    when no view can express it and PyTorch's ``reshape`` copies.

    A port of ``at::detail::computeStride`` (aten/src/ATen/TensorUtils.cpp): the old dimensions
    are cut into chunks that are contiguous among themselves; every chunk must be rebuilt
    exactly by consecutive new dimensions.
    """
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    if math.prod(shape) != math.prod(new_shape):
        return None
    if not new_shape:
        return ()
    if math.prod(shape) == 0 or not shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (shape[tensor_d - 1] != 1
                             and strides[tensor_d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base = strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def permuted(shape: Sequence[int], strides: Sequence[int],
             perm: Sequence[int]) -> tuple[Shape, Shape]:
    """Shape and strides after a Transpose with ``perm`` (a view)."""
    return tuple(shape[p] for p in perm), tuple(strides[p] for p in perm)


def expanded(shape: Sequence[int], strides: Sequence[int],
             new_shape: Sequence[int]) -> Shape:
    """Strides of an Expand (broadcast) view: 0 along every broadcast dimension."""
    offset = len(new_shape) - len(shape)
    out = []
    for i, size in enumerate(new_shape):
        j = i - offset
        if j < 0 or (shape[j] == 1 and size != 1):
            out.append(0)
        else:
            out.append(strides[j])
    return tuple(out)


def selected(strides: Sequence[int], axis: int) -> Shape:
    """Strides after selecting one index along ``axis`` (the dimension goes away)."""
    return tuple(s for i, s in enumerate(strides) if i != axis)


def sliced(strides: Sequence[int], steps: dict[int, int]) -> Shape:
    """Strides after a Slice with positive ``steps`` per axis (a view)."""
    return tuple(s * steps.get(i, 1) for i, s in enumerate(strides))


def _broadcast_strides(shape: Sequence[int], strides: Sequence[int],
                       out_shape: Sequence[int]) -> Shape:
    offset = len(out_shape) - len(shape)
    out = []
    for i, size in enumerate(out_shape):
        j = i - offset
        out.append(0 if j < 0 or shape[j] != size or shape[j] == 1 else strides[j])
    return tuple(out)


def elementwise_strides(operands: Sequence[tuple[Sequence[int], Sequence[int]]],
                        out_shape: Sequence[int]) -> Shape:
    """The strides PyTorch gives the output of an element-wise op on ``operands`` (shape,
    strides): contiguous when every operand is, else the dimension order of the operands'
    strides (``TensorIteratorBase::reorder_dimensions``: the first operand that orders two
    dimensions decides, broadcast dimensions are skipped, ties go to the larger size)."""
    out_shape = tuple(out_shape)
    ndim = len(out_shape)
    full = [_broadcast_strides(s, st, out_shape) for s, st in operands]
    if all(is_contiguous(s, st) for s, st in operands) or ndim < 2:
        return contiguous_strides(out_shape)

    def should_swap(dim0: int, dim1: int) -> int:
        for st in full:
            s0, s1 = st[dim0], st[dim1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if out_shape[dim0] > out_shape[dim1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))  # perm[0] moves fastest
    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    strides = [0] * ndim
    step = 1
    for d in perm:
        strides[d] = step
        step *= max(out_shape[d], 1)
    return tuple(strides)
