"""A model's graph at another input resolution, derived from two traces instead of traced.

Owns :func:`at_resolution`. Sweeping a width × resolution grid traces the same op structure
again and again: only the sizes change. Given the op views of one model traced at two
resolutions ``a`` and ``b`` (the ends of the grid), every integer of the graph — each tensor
dimension, element count, MAC count, GEMM size and parameter count — is checked to follow a
power law of the resolution between the two, ``x_b = x_a · (b / a)^p`` exactly, with ``p`` a
whole number (0 for channels and weights, 1 for a height or width, 2 for a token count or an
activation's elements, 4 for the MACs of Q·Kᵀ); the graph at ``r`` is then ``x_a · (r / a)^p``
for every one of them. Nothing is derived, and the caller traces instead, when:

* the two graphs differ in anything but those integers (ops, names, kinds, tensor ids, the
  ledger): the structure changed with the resolution;
* an integer does not follow an exact power law between ``a`` and ``b`` (``H - 2`` of an
  unpadded convolution, a ceiling that rounds differently at the two sizes);
* a tensor dimension at ``r`` would not be a whole number (a stride that does not divide
  ``r``: the real network rounds there, and how is not known from two points).

Both ends are real traces, and the derivation is exact wherever the sizes are proportional to
the resolution, which is what every dimension that passes the three checks is. A model whose
code branches on the input size between ``a`` and ``b`` and back again is the case it cannot
see; ``tests/test_sweep.py`` compares derived graphs with traced ones across the zoo.

Pure Python: imports neither torch nor numpy.
"""

from __future__ import annotations

from fractions import Fraction

from .graph import Gemm, InputSpec, Layer, LayerGraph, TensorUse

__all__ = ["at_resolution"]

#: The largest power of the resolution a quantity may follow (MACs of attention over tokens of
#: tokens: 4; a batch of those, still 4; 6 leaves room and costs nothing).
_MAX_POWER = 6


class _NotDerivable(Exception):
    pass


class _Law:
    """x_r = x_a · (r / a)^p for the whole p with x_b = x_a · (b / a)^p, in integers."""

    def __init__(self, a: int, b: int, r: int):
        s, t = Fraction(b, a), Fraction(r, a)
        powers = range(_MAX_POWER + 1)
        self.sn = [s.numerator ** p for p in powers]
        self.sd = [s.denominator ** p for p in powers]
        self.tn = [t.numerator ** p for p in powers]
        self.td = [t.denominator ** p for p in powers]

    def value(self, xa: int, xb: int, *, dim: bool = False) -> int:
        if xa == xb:
            return xa
        if xa == 0:
            raise _NotDerivable
        for p in range(1, 3 if dim else _MAX_POWER + 1):
            if xb * self.sd[p] == xa * self.sn[p]:
                out, rest = divmod(xa * self.tn[p], self.td[p])
                if rest:
                    raise _NotDerivable
                return out
        raise _NotDerivable

    def shape(self, sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
        if len(sa) != len(sb):
            raise _NotDerivable
        return tuple(self.value(x, y, dim=True) for x, y in zip(sa, sb, strict=True))

    def shapes(self, sa: tuple[tuple[int, ...], ...], sb: tuple[tuple[int, ...], ...]
               ) -> tuple[tuple[int, ...], ...]:
        if len(sa) != len(sb):
            raise _NotDerivable
        return tuple(self.shape(x, y) for x, y in zip(sa, sb, strict=True))

    def uses(self, ua: tuple[TensorUse, ...], ub: tuple[TensorUse, ...]
             ) -> tuple[TensorUse, ...]:
        if len(ua) != len(ub):
            raise _NotDerivable
        out = []
        for x, y in zip(ua, ub, strict=True):
            if x.id != y.id or x.element_bytes != y.element_bytes:
                raise _NotDerivable
            out.append(TensorUse(x.id, self.value(x.elements, y.elements), x.element_bytes))
        return tuple(out)

    def gemms(self, ga: tuple[Gemm, ...], gb: tuple[Gemm, ...]) -> tuple[Gemm, ...]:
        if len(ga) != len(gb):
            raise _NotDerivable
        return tuple(Gemm(*(self.value(x, y) for x, y in zip(g, h, strict=True)))
                     for g, h in zip(ga, gb, strict=True))


def _layer(law: _Law, x: Layer, y: Layer) -> Layer:
    if (x.index, x.name, x.module, x.module_type, x.op, x.kind, x.fused_ops, x.precision) != \
            (y.index, y.name, y.module, y.module_type, y.op, y.kind, y.fused_ops, y.precision):
        raise _NotDerivable
    return Layer(
        index=x.index, name=x.name, module=x.module, module_type=x.module_type, op=x.op,
        kind=x.kind, input_shapes=law.shapes(x.input_shapes, y.input_shapes),
        output_shapes=law.shapes(x.output_shapes, y.output_shapes),
        macs=law.value(x.macs, y.macs), params=law.value(x.params, y.params),
        weight_elements=law.value(x.weight_elements, y.weight_elements),
        bias_elements=law.value(x.bias_elements, y.bias_elements),
        inputs=law.uses(x.inputs, y.inputs), outputs=law.uses(x.outputs, y.outputs),
        gemms=law.gemms(x.gemms, y.gemms), fused_ops=x.fused_ops, precision=x.precision,
        window_ops=law.value(x.window_ops, y.window_ops),
        transcendental_ops=law.value(x.transcendental_ops, y.transcendental_ops))


def at_resolution(a: LayerGraph, b: LayerGraph, resolution: int, model_name: str
                  ) -> LayerGraph | None:
    """The graph of the model of ``a`` and ``b`` (traced at two different resolutions, one
    image input each; both op views or both the same kernel view) at ``resolution``, named
    ``model_name``; None when it cannot be derived exactly (see the module docstring), and the
    caller must trace."""
    ra, rb = a.resolution, b.resolution
    if (ra is None or rb is None or ra == rb or a.fused != b.fused or len(a.input_specs) != 1
            or len(b.input_specs) != 1 or len(a.layers) != len(b.layers)
            or a.ledger != b.ledger or a.precision != b.precision):
        return None
    law = _Law(ra, rb, resolution)
    try:
        layers = tuple(_layer(law, x, y) for x, y in zip(a.layers, b.layers, strict=True))
        (sa,), (sb,) = a.input_specs, b.input_specs
        if (sa.dtype, sa.name) != (sb.dtype, sb.name):
            return None
        spec = InputSpec(law.shape(sa.shape, sb.shape), sa.dtype, sa.name)
        if spec.shape[2:] != (resolution, resolution):
            return None
        return LayerGraph(layers=layers, input_specs=(spec,), precision=a.precision,
                          ledger=a.ledger, params=law.value(a.params, b.params),
                          inputs=law.uses(a.inputs, b.inputs),
                          outputs=law.uses(a.outputs, b.outputs), fused=a.fused,
                          model_name=model_name)
    except _NotDerivable:
        return None
