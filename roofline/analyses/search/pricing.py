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

#: Candidates composed and priced together: large enough for numpy to dominate, small enough
#: to stay within a few hundred MB.
CHUNK = 4096


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


def compose(bank: UnitBank, units: np.ndarray, view: View) -> tuple[KernelTable, Layout]:
    """The kernel table of the candidates whose unit ids are the rows of ``units`` (-1
    padded), in ``view``: exactly the table :meth:`KernelTable.from_arrays` builds from each
    candidate's whole-network kernel arrays."""
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
    next_in = np.where(same_next, flat["in_read"][next_uid], np.inf)
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
        graph_weight_elements=np.bincount(graph, weights=weight, minlength=n),
        graph_bias_elements=np.bincount(graph, weights=bias, minlength=n),
        graph_kernels=graph_kernels,
        graph_precision=np.full(n, -1, dtype=np.int64),
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
        parts.append(price_units(bank, units, hardware, precision))
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
