"""Pricing many candidates at once: their units' kernel arrays composed into kernel tables and
priced by the engine's one pricing path, :func:`roofline.core.engine.price`.

Owns composition (gathering each candidate's units from a :class:`UnitBank` into one
:class:`~roofline.core.engine.KernelTable` per kernel view, with the reuse distances across
unit boundaries set as a whole-network trace has them), chunked pricing of candidate rows, and
building a candidate as one ``nn.Module`` (what the tests and ``--check`` compare against). No
per-candidate Python objects: a chunk of thousands of candidates is a handful of numpy gathers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.engine import KernelSet, KernelTable, price
from .blocks import UnitBank, View, build_part
from .candidates import Genome

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ...core.hardware import HardwareProfile

__all__ = ["ComposedKernels", "compose", "price_rows", "RowPrices", "build_network",
           "trace_network", "CHUNK"]

#: Candidates priced together: the more, the more unit contexts they share (and the fewer
#: kernels the engine prices per candidate), within a few hundred MB.
CHUNK = 25_000


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.cumsum(counts) - counts
    return np.repeat(starts - first, counts) + np.arange(total, dtype=np.int64)


@dataclass(frozen=True)
class Layout:
    """Where each unit of a composed batch sits: per flattened unit its candidate, unit id and
    first kernel (global index into the table)."""

    candidate: np.ndarray
    unit: np.ndarray
    first_kernel: np.ndarray
    kernel_count: np.ndarray


def compose(bank: UnitBank, units: np.ndarray, view: View, *,
            next_in_read: np.ndarray | None = None,
            graph_weights: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[KernelTable, Layout]:
    """The kernel table of the candidates whose unit ids are the rows of ``units`` (-1
    padded), in ``view``: exactly the table :meth:`KernelTable.from_arrays` builds from each
    candidate's whole-network kernel arrays.

    ``next_in_read`` (per unit of ``units[units >= 0]``): the reuse distance of the unit's
    output write, when it is not the next unit of its row that reads it (context tables, see
    :func:`price_contexts`); ``graph_weights``: (weight, bias) elements per row that the
    engine places weights by, instead of the rows' own."""
    flat = bank.flat(view)
    n = len(units)
    valid = units >= 0
    cand = np.nonzero(valid)[0]
    uid = units[valid]
    if not flat["filled"][uid].all():
        raise KeyError("compose() needs every unit filled first (UnitBank.fill)")
    kc, ec, wc = flat["k_count"][uid], flat["e_count"][uid], flat["w_count"][uid]
    k_idx = _ranges(flat["k_start"][uid], kc)
    e_idx = _ranges(flat["e_start"][uid], ec)
    w_idx = _ranges(flat["w_start"][uid], wc)
    first_kernel = np.cumsum(kc) - kc
    graph_kernels = np.bincount(cand, weights=kc, minlength=n).astype(np.int64)
    graph = np.repeat(np.arange(n, dtype=np.int64), graph_kernels)
    # A unit's output is read by the next unit of the same candidate: its write's reuse
    # distance is that unit's farthest read of its input. The last unit's output is the
    # model's (inf: it goes to DRAM).
    same_next = np.zeros(len(uid), dtype=bool)
    same_next[:-1] = cand[1:] == cand[:-1]
    next_uid = np.zeros(len(uid), dtype=np.int64)
    next_uid[:-1] = uid[1:]
    next_in = np.where(same_next, flat["in_read"][next_uid], np.inf) \
        if next_in_read is None else next_in_read
    is_out = flat["is_out"][w_idx] > 0
    write_distance = np.where(is_out, np.repeat(next_in, wc), flat["write_distance"][w_idx])
    weight = flat["weight_elements"][k_idx]
    bias = flat["bias_elements"][k_idx]
    table = KernelTable(
        graphs=(), graph=graph, kind=flat["kind"][k_idx], macs=flat["macs"][k_idx],
        weight_elements=weight, bias_elements=bias, gemm=flat["gemm"][k_idx],
        input_elements=flat["input_elements"][k_idx],
        output_elements=flat["output_elements"][k_idx],
        edge_kernel=flat["edge_kernel"][e_idx] + np.repeat(first_kernel, ec),
        edge_elements=flat["edge_elements"][e_idx],
        edge_element_bytes=flat["edge_element_bytes"][e_idx],
        edge_distance=flat["edge_distance"][e_idx],
        write_kernel=flat["write_kernel"][w_idx] + np.repeat(first_kernel, wc),
        write_elements=flat["write_elements"][w_idx],
        write_element_bytes=flat["write_element_bytes"][w_idx],
        write_distance=write_distance,
        # Sums of whole numbers below 2**53: exact in any order, so equal to from_arrays'.
        graph_weight_elements=np.bincount(graph, weights=weight, minlength=n)
        if graph_weights is None else graph_weights[0],
        graph_bias_elements=np.bincount(graph, weights=bias, minlength=n)
        if graph_weights is None else graph_weights[1],
        graph_kernels=graph_kernels,
        graph_precision=np.full(n, -1, dtype=np.int64),
        winograd=flat["winograd"][k_idx], window_ops=flat["window_ops"][k_idx],
        transcendental_ops=flat["transcendental_ops"][k_idx],
    )
    return table, Layout(cand, uid, first_kernel, kc)


class ComposedKernels(KernelSet):
    """A :class:`KernelSet` whose tables are composed from a unit bank (see :func:`compose`)."""

    def __init__(self, bank: UnitBank, units: np.ndarray):
        super().__init__()
        self.count = len(units)
        self.bank = bank
        self.units = units
        self.layouts: dict[View, Layout] = {}

    def table(self, view: View) -> KernelTable:
        if view not in self._tables:
            self._tables[view], self.layouts[view] = compose(self.bank, self.units, view)
        return self._tables[view]

    def kernel_arrays_of(self, g: int, view: View) -> dict[str, np.ndarray]:
        """Candidate ``g``'s kernel arrays in ``view`` (as ``kernel_arrays`` of its whole
        network gives them; for tests)."""
        t = self.table(view)
        starts = t.starts
        lo, hi = int(starts[g]), int(starts[g + 1])
        e = (t.edge_kernel >= lo) & (t.edge_kernel < hi)
        w = (t.write_kernel >= lo) & (t.write_kernel < hi)
        return {
            "kind": t.kind[lo:hi], "macs": t.macs[lo:hi],
            "weight_elements": t.weight_elements[lo:hi], "bias_elements": t.bias_elements[lo:hi],
            "gemm": t.gemm[lo:hi], "input_elements": t.input_elements[lo:hi],
            "output_elements": t.output_elements[lo:hi], "edge_kernel": t.edge_kernel[e] - lo,
            "edge_elements": t.edge_elements[e], "edge_element_bytes": t.edge_element_bytes[e],
            "edge_distance": t.edge_distance[e], "write_kernel": t.write_kernel[w] - lo,
            "write_elements": t.write_elements[w],
            "write_element_bytes": t.write_element_bytes[w],
            "write_distance": t.write_distance[w], "precision": np.array([-1]),
            "winograd": t.winograd[lo:hi], "window_ops": t.window_ops[lo:hi],
            "transcendental_ops": t.transcendental_ops[lo:hi],
        }


@dataclass
class RowPrices:
    """Candidates priced on every device: ``latency_s[h, i]`` (NaN: cannot run), the range
    ``latency_low_s``/``latency_high_s`` (the engine's range; the latency itself if it has none),
    MACs and params per candidate, and the precision per device."""

    latency_s: np.ndarray
    latency_low_s: np.ndarray
    latency_high_s: np.ndarray
    macs: np.ndarray
    params: np.ndarray
    precisions: list[str]

    @staticmethod
    def concat(parts: Sequence[RowPrices], n_devices: int) -> RowPrices:
        if not parts:
            empty = np.zeros((n_devices, 0))
            return RowPrices(empty, empty, empty, np.zeros(0), np.zeros(0), [])
        return RowPrices(
            np.concatenate([p.latency_s for p in parts], axis=1),
            np.concatenate([p.latency_low_s for p in parts], axis=1),
            np.concatenate([p.latency_high_s for p in parts], axis=1),
            np.concatenate([p.macs for p in parts]), np.concatenate([p.params for p in parts]),
            parts[0].precisions)


def _range(pricing: Any, name: str) -> np.ndarray:
    value = getattr(pricing, name, None)
    return pricing.latency_s if value is None else np.asarray(value)


def price_summary(bank: UnitBank, units: np.ndarray, pricing: Any,
                  hardware: Sequence[HardwareProfile], precision: str | None = None
                  ) -> RowPrices:
    """The rows' latencies (and ranges) from ``pricing`` and their MACs and params."""
    flat = bank.flat(bank.views[0])
    valid = units >= 0
    cand = np.nonzero(valid)[0]
    uid = units[valid]
    n = len(units)
    macs = np.bincount(cand, weights=flat["macs_total"][uid], minlength=n)
    params = np.bincount(cand, weights=flat["params_total"][uid], minlength=n)
    return RowPrices(pricing.latency_s, _range(pricing, "latency_low_s"),
                     _range(pricing, "latency_high_s"), macs, params,
                     [p[0] if p else (precision or hw.default_precision)
                      for p, hw in zip(pricing.precisions, hardware, strict=True)])


def price_units(bank: UnitBank, units: np.ndarray, hardware: Sequence[HardwareProfile],
                precision: str | None = None) -> RowPrices:
    """Price candidates given as unit-id rows (every unit filled) on every device."""
    return price_summary(bank, units, price(ComposedKernels(bank, units), hardware, precision),
                         hardware, precision)


# -- pricing by context: every distinct (unit, next unit, weight placement) once ----------------

@dataclass
class DeviceParts:
    """One device's per-part results of :func:`price_contexts`, for lookup tables: for every
    unit instance (``units[units >= 0]``, row-major) its context, and per context and part the
    latency (s, at the profile itself), unsupported kernels and weight bytes; per candidate
    the index of the place its weights live (:func:`weight_places`)."""

    context: np.ndarray
    latency_s: np.ndarray  # (contexts, parts)
    unsupported: np.ndarray
    weight_bytes: np.ndarray
    weight_place: np.ndarray  # per candidate


def weight_places(hw: HardwareProfile) -> np.ndarray:
    """Capacities of where ``hw`` can keep a model's weights, smallest first (DRAM: inf): the
    engine keeps them in the first one the whole model's weights fit in."""
    import math

    return np.array([lv.capacity_bytes if lv.holds != "activations" else -1.0
                     for lv in hw.memory] + [math.inf])


def _range_members() -> Any:
    """The engine's profiles one standard deviation along each direction of a profile's
    uncertainty, and its range multiplier, or None when this engine has no such ranges."""
    from ...core import engine

    directions = getattr(engine, "_uncertain_directions", None)
    z = getattr(engine, "_RANGE_Z", None)
    return None if directions is None or z is None else (directions, z)


def price_contexts(bank: UnitBank, units: np.ndarray, hardware: Sequence[HardwareProfile],
                   precision: str | None = None, parts: bool = False
                   ) -> tuple[RowPrices, list[DeviceParts]] | None:
    """The same numbers as ``price(ComposedKernels(bank, units), hardware)`` (latency and the
    engine's range; to rounding), pricing each distinct unit context once instead of every
    kernel of every candidate.

    A kernel's cost depends only on itself, on the reuse distances of what it reads and
    writes, and on where the whole model's weights live. Inside a unit the distances are its
    own; its output's is set by the next unit; the weights' place by the model's weight bytes.
    So a candidate's latency on a profile is the sum over its units of the latency of the
    unit in its context (unit, next unit, weights' place on that profile and on each profile
    the engine's range moves it to) plus the per-inference cost, and its range follows from
    those sums as the engine computes it. Returns None where that does not hold (a device
    with a fallback device, whose hand-overs cost per switch; an engine without ranges of
    this form): price() it is.
    """
    from ...core.engine import evaluate, resolve_precision
    from ...units import bias_bytes_per_element, bytes_per_element

    machinery = _range_members()
    if machinery is None or any(hw.support.fallback for hw in hardware):
        return None
    directions, z = machinery
    n = len(units)
    valid = units >= 0
    cand = np.nonzero(valid)[0]
    uid = units[valid]
    same_next = np.zeros(len(uid), dtype=bool)
    same_next[:-1] = cand[1:] == cand[:-1]
    next_uid = np.full(len(uid), -1, dtype=np.int64)
    next_uid[:-1] = np.where(same_next[:-1], uid[1:], -1)
    first = bank.flat(bank.views[0])
    macs = np.bincount(cand, weights=first["macs_total"][uid], minlength=n)
    params = np.bincount(cand, weights=first["params_total"][uid], minlength=n)
    shape = (len(hardware), n)
    latency, low, high = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    precisions: list[str] = []
    details: list[DeviceParts] = []
    for h, hw in enumerate(hardware):
        view = hw.kernel_view()
        flat = bank.flat(view)
        members, structural = directions(hw)
        profiles = [hw, *members]
        chosen = resolve_precision(hw, precision)
        precisions.append(chosen)
        # Each candidate's weight (and bias) elements in this view, and where they live on
        # every profile: the context's third coordinate.
        kernel_unit = np.repeat(np.arange(len(flat["k_count"])), flat["k_count"])
        unit_w = np.bincount(kernel_unit, weights=flat["weight_elements"],
                             minlength=len(flat["k_count"]))
        unit_b = np.bincount(kernel_unit, weights=flat["bias_elements"],
                             minlength=len(flat["k_count"]))
        cand_w = np.bincount(cand, weights=unit_w[uid], minlength=n)
        cand_b = np.bincount(cand, weights=unit_b[uid], minlength=n)
        place_code = np.zeros(n, dtype=np.int64)
        center_place = np.zeros(n, dtype=np.int64)
        for k, p in enumerate(profiles):
            prec = resolve_precision(p, precision)
            nbytes = cand_w * bytes_per_element(prec) + cand_b * bias_bytes_per_element(prec)
            caps = weight_places(p)
            place = np.argmax(nbytes[:, None] <= caps[None, :], axis=1)
            place_code = place_code * len(caps) + place
            if k == 0:
                center_place = place
        # One integer per (unit, next unit, places): np.unique on rows would sort far slower.
        n_units = len(flat["k_count"]) + 1
        n_places = int(place_code.max()) + 1 if n else 1
        key = (uid * n_units + (next_uid + 1)) * n_places + place_code[cand]
        unique, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.ravel()
        contexts = np.stack([unique // n_places // n_units, unique // n_places % n_units - 1],
                            axis=1)
        # One representative candidate per context carries its weight totals.
        rep = np.zeros(len(contexts), dtype=np.int64)
        rep[inverse] = cand
        next_in = np.where(contexts[:, 1] >= 0, flat["in_read"][np.maximum(contexts[:, 1], 0)],
                           np.inf)
        table, layout = compose(bank, contexts[:, :1], view, next_in_read=next_in,
                                graph_weights=(cand_w[rep], cand_b[rep]))
        sums = []
        for k, p in enumerate(profiles):
            costs = evaluate(table, p, precision)
            ctx = np.bincount(table.graph, weights=costs.latency_s, minlength=len(contexts))
            bad = np.bincount(table.graph, weights=~costs.supported, minlength=len(contexts))
            total = np.bincount(cand, weights=ctx[inverse], minlength=n) \
                + p.overhead.per_inference_s
            unsupported = np.bincount(cand, weights=bad[inverse], minlength=n) > 0
            sums.append(np.where(unsupported, np.nan, total))
            if k == 0 and parts:
                details.append(_parts(flat, table, layout, costs, inverse, center_place))
        center = sums[0]
        variance = np.full(n, structural ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            for moved in sums[1:]:
                variance += np.square(np.log(moved / center))
        spread = np.exp(z * np.sqrt(variance))
        latency[h], low[h], high[h] = center, center / spread, center * spread
    return RowPrices(latency, low, high, macs, params, precisions), details


def _parts(flat: dict[str, np.ndarray], table: KernelTable, layout: Layout, costs: Any,
           inverse: np.ndarray, place: np.ndarray) -> DeviceParts:
    k_idx = _ranges(flat["k_start"][layout.unit], layout.kernel_count)
    part = flat["part"][k_idx].astype(np.int64)
    width = int(part.max()) + 1 if part.size else 1
    cell = table.graph * width + part
    size = len(layout.unit) * width

    def per(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=values, minlength=size).reshape(-1, width)

    return DeviceParts(inverse, per(costs.latency_s), per(~costs.supported),
                       per(costs.weight_bytes), place)


def price_rows(genome: Genome, rows: np.ndarray, hardware: Sequence[HardwareProfile],
               precision: str | None = None, *, chunk: int = CHUNK,
               fill: Callable[[np.ndarray], None] | None = None,
               progress: Callable[[int], None] | None = None) -> RowPrices:
    """Price candidate ``rows`` of ``genome`` on every device, ``chunk`` at a time.

    ``fill(unit_ids)`` makes sure the units have arrays (default: the bank traces what is
    missing in this process); ``progress(done)`` is called after each chunk.
    """
    bank = genome.bank
    assert bank is not None
    parts = []
    done = 0
    for start in range(0, len(rows), chunk):
        units = genome.units(rows[start:start + chunk])
        if fill is not None:
            fill(units)
        else:
            bank.fill(units)
        fast = price_contexts(bank, units, hardware, precision)
        parts.append(fast[0] if fast is not None else
                     price_units(bank, units, hardware, precision))
        done += len(units)
        if progress:
            progress(done)
    return RowPrices.concat(parts, len(hardware))


# -- the same candidate as one module (the reference composition is checked against) ---------

def build_network(genome: Genome, row: np.ndarray) -> nn.Module:
    """Candidate ``row`` as one ``nn.Module``: its blocks and head in order (on the current
    torch device; wrap in ``torch.device("meta")`` to build without memory)."""
    from torch import nn

    parts = [part for key in genome.unit_keys(np.asarray(row)) for part in key.parts]
    return nn.Sequential(*(build_part(p) for p in parts))


def trace_network(genome: Genome, row: np.ndarray) -> Any:
    """The op-view graph of candidate ``row`` built as one module and traced."""
    import torch

    from ...sources.pytorch.tracer import trace

    res = genome.space.resolution[int(row[0])]
    with torch.device("meta"):
        model = build_network(genome, row)
    return trace(model, (genome.space.batch, 3, res, res), name=genome.encode(row[None])[0])
