"""The roofline engine: one pricing function from kernels to milliseconds.

Owns the arithmetic from kernels to latency and the one place where a precision is chosen and a
fallback device is used; imports neither torch nor plotly (numpy only, pandas for
``to_dataframe``). :func:`price` takes graphs (or cached kernel arrays) and profiles and returns
every latency; :func:`predict`, :func:`predict_many`, sweeps, calibration and compare all go
through it. For each kernel:

* compute time = Σ over its GEMMs of MACs / (peak MACs/s at the precision × efficiency), where
  efficiency = the profile's efficiency for the kernel's op kind × the fraction of the device's
  MAC lanes the kernel's geometry fills (each GEMM dimension rounded up to the device's tile;
  depthwise convolutions tile across channels);
* memory time = max over memory levels of (bytes served by that level or a slower one) /
  (that level's bandwidth; a level without a bandwidth is never the bottleneck). A tensor is
  served by the smallest on-chip level that still holds it: one that fits the tensor plus
  everything the kernels between its producer and its consumer touched (its reuse distance).
  Weights stay on chip when the whole model's weights fit in a level that holds weights;
  otherwise they stream from DRAM each inference. A tensor is written to DRAM when it is a
  model output or would be evicted before its last reader;
* latency = max(compute, memory) + the per-kernel overhead (a fixed cost, an extra one by op
  kind, and one per weight byte for runtimes that repack weights on every call); the model adds
  a per-inference overhead. The bound is whichever of compute, memory and overhead is largest.

Precision: the one given to :func:`price` (for all graphs, or one per graph), else the graph's
own (a graph traced or read at a precision keeps it), else the profile's ``default_precision``.
Kernels of an op kind the device cannot run are priced on its ``support.fallback`` profile
(with a transfer at each switch), or make the model unsupported (latency NaN / None) when it
has none; that is decided in :func:`evaluate` and nowhere else.

With efficiency 1, no overhead and no on-chip memory this is exactly the MobileNetV4 paper's
roofline, Σ max(MACs / peak, bytes / bandwidth). Batch size changes activations, not weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..units import PRECISIONS, bias_bytes_per_element, bytes_per_element
from .fuse import fuse
from .graph import LayerGraph, OpKind
from .hardware import HardwareProfile, load_hardware

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["price", "Pricing", "predict", "predict_many", "Prediction", "KernelSet",
           "KernelTable", "KernelCosts", "evaluate", "kernel_graph", "kernel_arrays",
           "ARRAY_KEYS", "io_on_chip", "resolve_precision", "View", "KIND_ORDER", "BOUNDS",
           "STRUCTURAL_SIGMA", "RANGE_COVERAGE",
           "PRECISION_ORDER"]

KIND_ORDER: tuple[OpKind, ...] = tuple(OpKind)
_KIND_CODE = {kind: i for i, kind in enumerate(KIND_ORDER)}
_DW = _KIND_CODE[OpKind.DEPTHWISE_CONV]
BOUNDS = ("compute", "memory", "overhead")

#: Precisions by code, as kernel arrays store them (-1: no precision of its own).
PRECISION_ORDER: tuple[str, ...] = tuple(PRECISIONS)
_PRECISION_CODE = {p: i for i, p in enumerate(PRECISION_ORDER)}
_ELEMENT_BYTES = np.array([bytes_per_element(p) for p in PRECISION_ORDER], dtype=np.float64)
_BIAS_BYTES = np.array([bias_bytes_per_element(p) for p in PRECISION_ORDER], dtype=np.float64)

#: How a device turns ops into kernels: (fuses at all, what joins an epilogue). Profiles with
#: the same view share one kernel table (``HardwareProfile.kernel_view``).
View = tuple[bool, frozenset[str]]


# -- kernels as arrays ----------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelTable:
    """The kernels of one or more fused graphs as flat arrays (one entry per kernel).

    Element counts, not bytes: a table is priced at any precision. ``edges`` are activation
    reads (kernel, elements, fixed bytes per element or 0, reuse-distance elements) and
    ``writes`` activation writes (the same, the distance up to the last reader); a distance is
    inf for the model's input (it comes from DRAM) and outputs (they go to DRAM).
    """

    graphs: tuple[LayerGraph, ...]
    graph: np.ndarray  # graph index of each kernel
    kind: np.ndarray
    macs: np.ndarray
    weight_elements: np.ndarray
    bias_elements: np.ndarray
    gemm: np.ndarray  # (kernels, 2 GEMMs, [groups, m, n, k]) float; zeros when absent
    input_elements: np.ndarray
    output_elements: np.ndarray
    edge_kernel: np.ndarray
    edge_elements: np.ndarray
    edge_element_bytes: np.ndarray  # 0: at the pricing precision
    edge_distance: np.ndarray
    write_kernel: np.ndarray
    write_elements: np.ndarray
    write_element_bytes: np.ndarray
    write_distance: np.ndarray
    graph_weight_elements: np.ndarray  # per graph
    graph_bias_elements: np.ndarray
    graph_kernels: np.ndarray  # per graph: number of kernels
    graph_precision: np.ndarray  # per graph: code in PRECISION_ORDER of its own precision, -1
    winograd: np.ndarray  # 1 for a dense 3x3 convolution at stride 1 (Winograd-eligible)
    window_ops: np.ndarray  # windowed pooling's comparisons/adds (Layer.window_ops); else 0
    transcendental_ops: np.ndarray  # exp/tanh/erf/sigmoid evaluations (Layer.transcendental_ops)

    @property
    def n_graphs(self) -> int:
        return len(self.graph_kernels)

    def fields(self) -> dict[str, np.ndarray]:
        """Every array of the table by name (what :meth:`from_fields` takes back)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "graphs"}

    @classmethod
    def from_fields(cls, fields: Mapping[str, np.ndarray]) -> KernelTable:
        """The table :meth:`fields` describes (without graphs: it prices, names no kernel)."""
        return cls(graphs=(), **{f.name: np.asarray(fields[f.name])
                                 for f in dataclasses.fields(cls) if f.name != "graphs"})

    @cached_property
    def gemm_macs(self) -> np.ndarray:
        """(kernels, 2): the MACs of each kernel's GEMMs (the same on every profile)."""
        g = self.gemm
        return g[..., 0] * g[..., 1] * g[..., 2] * g[..., 3]

    @cached_property
    def has_windows(self) -> bool:
        """Whether any kernel is a windowed pooling op (Layer.window_ops)."""
        return bool(self.window_ops.any())

    @cached_property
    def has_transcendentals(self) -> bool:
        """Whether any kernel evaluates a transcendental function (Layer.transcendental_ops)."""
        return bool(self.transcendental_ops.any())

    @cached_property
    def no_geometry(self) -> np.ndarray:
        """Kernels with MACs but no GEMM geometry (unknown ops)."""
        macs = self.gemm_macs
        return (macs[:, 0] + macs[:, 1] == 0) & (self.macs > 0)

    @property
    def starts(self) -> np.ndarray:
        """Index of each graph's first kernel, and one past the last kernel."""
        return np.concatenate([[0], np.cumsum(self.graph_kernels)]).astype(np.int64)

    @classmethod
    def for_view(cls, graphs: Sequence[LayerGraph], view: View) -> KernelTable:
        """The kernels a runtime with kernel view ``view`` launches for ``graphs``."""
        kernel_graphs = tuple(kernel_graph(g, *view) for g in graphs)
        return cls.from_arrays([kernel_arrays(k) for k in kernel_graphs], kernel_graphs)

    @classmethod
    def from_arrays(cls, arrays: Sequence[Mapping[str, np.ndarray]],
                    graphs: Sequence[LayerGraph] = ()) -> KernelTable:
        """Concatenate per-graph :func:`kernel_arrays` (as cached on disk) into one table.

        Without ``graphs`` the table evaluates (:func:`evaluate`) but cannot make
        :class:`Prediction` objects, which need each kernel's names.
        """
        counts = [len(a["macs"]) for a in arrays]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        def cat(key: str, dtype: Any = np.float64) -> np.ndarray:
            parts = [np.asarray(a[key], dtype=dtype).ravel() for a in arrays]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        def local(key: str) -> np.ndarray:  # kernel indices, shifted to the whole table
            parts = [np.asarray(a[key], dtype=np.int64) + offsets[i]
                     for i, a in enumerate(arrays)]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        return cls(
            graphs=tuple(graphs),
            graph=np.repeat(np.arange(len(arrays), dtype=np.int64), counts),
            kind=cat("kind", np.int64), macs=cat("macs"),
            weight_elements=cat("weight_elements"), bias_elements=cat("bias_elements"),
            gemm=cat("gemm").reshape(-1, 2, 4), input_elements=cat("input_elements"),
            output_elements=cat("output_elements"), edge_kernel=local("edge_kernel"),
            edge_elements=cat("edge_elements"), edge_element_bytes=cat("edge_element_bytes"),
            edge_distance=cat("edge_distance"),
            write_kernel=local("write_kernel"), write_elements=cat("write_elements"),
            write_element_bytes=cat("write_element_bytes"),
            write_distance=cat("write_distance"),
            graph_weight_elements=np.array([float(np.sum(a["weight_elements"]))
                                            for a in arrays]),
            graph_bias_elements=np.array([float(np.sum(a["bias_elements"])) for a in arrays]),
            graph_kernels=np.asarray(counts, dtype=np.int64),
            graph_precision=cat("precision", np.int64),
            winograd=cat("winograd"), window_ops=cat("window_ops"),
            transcendental_ops=cat("transcendental_ops"),
        )


def io_on_chip(table: KernelTable) -> KernelTable:
    """``table`` with each model's input and outputs served like any other activation: read
    from and written to the on-chip level that holds them. That is how a benchmark loop that
    calls one layer on the same tensors again and again runs (they stay in cache); a whole
    model's input otherwise comes from DRAM and its outputs go there."""
    return dataclasses.replace(
        table, edge_distance=np.where(np.isinf(table.edge_distance), 0.0, table.edge_distance),
        write_distance=np.where(np.isinf(table.write_distance), 0.0, table.write_distance))


def kernel_graph(graph: LayerGraph, fused: bool = True,
                 epilogue: frozenset[str] | None = None) -> LayerGraph:
    """The graph whose layers are the kernels a runtime launches: the kernel view when
    ``fused``, else the op view itself."""
    if fused:
        return fuse(graph, epilogue)
    if graph.fused:
        raise ValueError("an unfused kernel table needs the op view of the graph (trace it "
                         "again; the kernel view cannot be split back into ops)")
    return graph


#: The arrays :func:`kernel_arrays` returns (what the on-disk cache stores per variant).
ARRAY_KEYS = ("kind", "macs", "weight_elements", "bias_elements", "gemm", "input_elements",
              "output_elements", "edge_kernel", "edge_elements", "edge_element_bytes",
              "edge_distance", "write_kernel", "write_elements", "write_element_bytes",
              "write_distance", "precision", "winograd", "window_ops", "transcendental_ops")


def _winograd_eligible(layer: Any) -> bool:
    """A dense (one group) 3×3 convolution at stride 1 that keeps its spatial size: what a
    runtime may compute with Winograd's F(4×4, 3×3) (``algorithms.winograd_3x3``)."""
    if layer.kind is not OpKind.CONV or not layer.gemms or not layer.input_shapes:
        return False
    x, out = layer.input_shapes[0], layer.output_shape
    g = layer.gemms[0]
    return (len(x) == 4 and len(out) == 4 and g.groups == 1 and x[2:] == out[2:]
            and g.k == 9 * x[1])


def kernel_arrays(kernels: LayerGraph) -> dict[str, np.ndarray]:
    """One graph's kernels as arrays, kernel indices local to the graph.

    Reuse distances: ``edge_distance`` is, for each activation read, the elements the kernels
    between its producer and its reader touched (inf for the model's input, which comes from
    DRAM); ``write_distance`` the same up to the tensor's last reader (inf for model outputs,
    which go to DRAM). ``precision`` holds the graph's own precision code (-1: none).
    """
    layers = kernels.layers
    producer: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    touched = []
    for i, layer in enumerate(layers):
        for t in layer.outputs:
            producer[t.id] = i
        for t in layer.inputs:
            readers.setdefault(t.id, []).append(i)
        touched.append(layer.weight_elements + layer.bias_elements + layer.input_elements
                       + layer.output_elements)
    # prefix[i] = elements touched by kernels 0..i-1: the reuse distance between producer p
    # and consumer c is prefix[c] - prefix[p + 1] (what the kernels in between touched).
    prefix = np.concatenate([[0.0], np.cumsum(touched, dtype=np.float64)])
    outputs = {t.id for t in kernels.outputs}
    gemm = np.zeros((len(layers), 2, 4))
    ek: list[int] = []
    ee: list[float] = []
    eb: list[float] = []
    ed: list[float] = []
    wk: list[int] = []
    we: list[float] = []
    wb: list[float] = []
    wd: list[float] = []
    for i, layer in enumerate(layers):
        gemms = list(layer.gemms[:2])
        if len(layer.gemms) > 2:  # fold the rest into the second, keeping total MACs
            rest = sum(x.macs for x in layer.gemms[1:])
            last = layer.gemms[1]
            gemms[1] = type(last)(last.groups, last.m, last.n, max(1, rest // max(
                1, last.groups * last.m * last.n)))
        for j, g in enumerate(gemms):
            gemm[i, j] = g
        for t in layer.inputs:
            p = producer.get(t.id)
            ek.append(i)
            ee.append(t.elements)
            eb.append(t.element_bytes)
            ed.append(math.inf if p is None else float(prefix[i] - prefix[p + 1]))
        for t in layer.outputs:
            last = max(readers.get(t.id, [i]))
            wk.append(i)
            we.append(t.elements)
            wb.append(t.element_bytes)
            wd.append(math.inf if t.id in outputs or last <= i
                      else float(prefix[last] - prefix[i + 1]))
    f64 = np.float64
    own = _PRECISION_CODE.get(kernels.precision, -1) if kernels.precision else -1
    return {
        "kind": np.array([_KIND_CODE[layer.kind] for layer in layers], dtype=np.int64),
        "macs": np.array([layer.macs for layer in layers], dtype=f64),
        "weight_elements": np.array([layer.weight_elements for layer in layers], dtype=f64),
        "bias_elements": np.array([layer.bias_elements for layer in layers], dtype=f64),
        "gemm": gemm,
        "input_elements": np.array([layer.input_elements for layer in layers], dtype=f64),
        "output_elements": np.array([layer.output_elements for layer in layers], dtype=f64),
        "edge_kernel": np.array(ek, dtype=np.int64), "edge_elements": np.array(ee, dtype=f64),
        "edge_element_bytes": np.array(eb, dtype=f64), "edge_distance": np.array(ed, dtype=f64),
        "write_kernel": np.array(wk, dtype=np.int64), "write_elements": np.array(we, dtype=f64),
        "write_element_bytes": np.array(wb, dtype=f64),
        "write_distance": np.array(wd, dtype=f64),
        "precision": np.array([own], dtype=np.int64),
        "winograd": np.array([_winograd_eligible(layer) for layer in layers], dtype=f64),
        "window_ops": np.array([layer.window_ops for layer in layers], dtype=f64),
        "transcendental_ops": np.array([layer.transcendental_ops for layer in layers],
                                       dtype=f64),
    }


class KernelSet:
    """The models to price, as one :class:`KernelTable` per kernel view, built on first use.

    From graphs (op or kernel view; fused per view as each device's runtime would), or from
    per-model kernel arrays (as the on-disk cache holds them: ``arrays(view)`` returns one
    :func:`kernel_arrays` mapping per model), which price but carry no kernel names.
    """

    def __init__(self, graphs: Sequence[LayerGraph] = (), *,
                 arrays: Callable[[View], Sequence[Mapping[str, np.ndarray]]] | None = None,
                 count: int | None = None):
        if arrays is None and count is not None and count != len(graphs):
            raise ValueError("count must match the graphs given")
        self.graphs = tuple(graphs)
        self._arrays = arrays
        self.count = len(self.graphs) if arrays is None else int(count or 0)
        self._tables: dict[View, KernelTable] = {}

    @classmethod
    def of_tables(cls, tables: Mapping[View, KernelTable], count: int) -> KernelSet:
        """``count`` models whose kernel tables are already built, one per kernel view."""
        def missing(view: View) -> Sequence[Mapping[str, np.ndarray]]:
            raise KeyError(f"no kernel table for view {view}")

        models = cls(arrays=missing, count=count)
        models._tables.update(tables)
        return models

    def table(self, view: View) -> KernelTable:
        if view not in self._tables:
            if self._arrays is not None:
                self._tables[view] = KernelTable.from_arrays(self._arrays(view))
            else:
                self._tables[view] = KernelTable.for_view(self.graphs, view)
        return self._tables[view]


# -- evaluation -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelCosts:
    """Per-kernel results of one profile over a KernelTable (seconds and bytes)."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    overhead_s: np.ndarray
    latency_s: np.ndarray
    efficiency: np.ndarray
    weight_bytes: np.ndarray
    input_bytes: np.ndarray
    output_bytes: np.ndarray
    dram_bytes: np.ndarray
    supported: np.ndarray  # bool: the device itself runs the kernel
    graph_latency_s: np.ndarray  # per graph, NaN where a kernel is unsupported (no fallback)
    graph_supported: np.ndarray


def _fill(size: np.ndarray, tile: float) -> np.ndarray:
    """Fraction of lanes a dimension of ``size`` fills when rounded up to ``tile``."""
    if tile <= 1:
        return np.ones_like(size)
    safe = np.maximum(size, 1.0)
    return safe / (np.ceil(safe / tile) * tile)


def utilisation(gemm: np.ndarray, kind: np.ndarray, hw: HardwareProfile) -> np.ndarray:
    """Filled fraction of MAC lanes for GEMMs (…, 4) = (groups, m, n, k) of kernels ``kind``.

    The product of: each tiled dimension's fill (m, n, k; channels and m for depthwise), the
    pipeline's m / (m + fill_rows), and the fill of the last wave when ``parallel_tiles``
    tiles run at once.
    """
    geo = hw.geometry
    groups, m, n, k = gemm[..., 0], gemm[..., 1], gemm[..., 2], gemm[..., 3]
    is_dw = (kind == _DW)
    if gemm.ndim == 3:
        is_dw = is_dw[:, None]
    safe_m = np.maximum(m, 1.0)
    regular_tiles = groups * np.ceil(safe_m / geo.m) * np.ceil(np.maximum(n, 1.0) / geo.n)
    dw_tiles = np.ceil(np.maximum(groups, 1.0) / geo.channels) * np.ceil(safe_m / geo.m)
    regular = _fill(m, geo.m) * _fill(n, geo.n) * _fill(k, geo.k)
    depthwise = _fill(groups, geo.channels) * _fill(m, geo.m)
    util = np.where(is_dw, depthwise, regular)
    if geo.fill_rows:
        util = util * safe_m / (safe_m + geo.fill_rows)
    if geo.parallel_tiles > 1:
        tiles = np.where(is_dw, dw_tiles, regular_tiles)
        util = util * _fill(tiles, geo.parallel_tiles)
    return util


def resolve_precision(hw: HardwareProfile, precision: str | None = None,
                      graph_precision: str | None = None) -> str:
    """The precision a graph is priced at on ``hw``: ``precision`` if given, else the graph's
    own, else the profile's default. A precision the profile has no peak for is an
    UnknownNameError naming the ones it has."""
    chosen = precision or graph_precision or hw.default_precision
    hw.peak(chosen)
    return chosen


def _codes(table: KernelTable, hw: HardwareProfile,
           precision: str | Sequence[str | None] | None) -> np.ndarray:
    """The precision code each graph of ``table`` is priced at on ``hw``."""
    if precision is None or isinstance(precision, str):
        given = [precision] * table.n_graphs
    else:
        given = list(precision)
        if len(given) != table.n_graphs:
            raise ValueError(f"{len(given)} precisions for {table.n_graphs} models")
    out = np.empty(table.n_graphs, dtype=np.int64)
    for g, p in enumerate(given):
        own = int(table.graph_precision[g]) if table.graph_precision.size else -1
        out[g] = _PRECISION_CODE[resolve_precision(
            hw, p, PRECISION_ORDER[own] if own >= 0 else None)]
    return out


def evaluate(table: KernelTable, hw: HardwareProfile,
             precision: str | Sequence[str | None] | None = None) -> KernelCosts:
    """Price every kernel of ``table`` on ``hw``: at ``precision`` (one for all graphs, or one
    per graph; None: each graph's own, else the profile's), with unsupported kernels on the
    profile's fallback device when it names one (see the module docstring)."""
    codes = _codes(table, hw, precision)
    fallback = load_hardware(hw.support.fallback) if hw.support.fallback else None
    return _evaluate(table, hw, codes, fallback)


def _evaluate(table: KernelTable, hw: HardwareProfile, graph_codes: np.ndarray,
              fallback: HardwareProfile | None) -> KernelCosts:
    kernel_codes = graph_codes[table.graph]
    peaks = np.array([hw.peak_macs_per_s.get(p, math.nan)  # type: ignore[call-overload]
                      for p in PRECISION_ORDER])
    peak = peaks[kernel_codes]

    # Compute: MACs over the lanes the geometry fills, at the op kind's efficiency.
    base = np.array([hw.efficiency_of(k) for k in KIND_ORDER])[table.kind]
    if hw.int8_efficiency:
        int8 = np.array([hw.efficiency_of(k, "int8") for k in KIND_ORDER])[table.kind]
        base = np.where(kernel_codes == _PRECISION_CODE["int8"], int8, base)
    # The lanes filled depend on the geometry alone, which the members of a range share.
    util = _kept(table, "utilisation", hw.geometry,
                 lambda: utilisation(table.gemm, table.kind, hw))  # (kernels, 2)
    gemm_macs, no_geo = table.gemm_macs, table.no_geometry
    work = gemm_macs
    if hw.algorithms.winograd_3x3 != 1 and table.winograd.any():
        # Winograd-eligible convolutions do winograd_3x3 times fewer multiplies.
        work = gemm_macs.copy()
        work[:, 0] = np.where(table.winograd > 0, gemm_macs[:, 0] / hw.algorithms.winograd_3x3,
                              gemm_macs[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        gemm_s = np.where(gemm_macs > 0, work / (peak[:, None] * base[:, None] * util), 0.0)
    compute_s = gemm_s[:, 0] + gemm_s[:, 1]
    # Kernels with MACs but no GEMM geometry (unknown ops) run at the kind's efficiency.
    compute_s = np.where(no_geo, table.macs / (peak * base), compute_s)
    if table.has_windows:
        # Windowed pooling: its comparisons or adds at the device's pooling efficiency, and
        # the loop's own cost per output element.
        with np.errstate(divide="ignore", invalid="ignore"):
            compute_s = compute_s + np.where(
                table.window_ops > 0, table.window_ops / (peak * base)
                + table.output_elements * hw.overhead.per_pool_output_s, 0.0)
    if table.has_transcendentals and hw.overhead.per_transcendental_s:
        # Transcendental functions (a sigmoid's exp, GELU's erf, a softmax): their cost per
        # evaluation at the kernel's precision, on the device's arithmetic units.
        per_eval = np.array([hw.overhead.per_transcendental_s.get(p, 0.0)  # type: ignore
                             for p in PRECISION_ORDER])[kernel_codes]
        compute_s = compute_s + table.transcendental_ops * per_eval
    if hw.overhead.per_int8_element_s:
        # An int8 kernel's rescaling per output element (scale, round, clamp).
        per_out = np.array([hw.overhead.per_int8_element_s.get(k.value, 0.0)  # type: ignore
                            for k in KIND_ORDER])[table.kind]
        compute_s = compute_s + np.where(kernel_codes == _PRECISION_CODE["int8"],
                                         table.output_elements * per_out, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(compute_s > 0, table.macs / (peak * compute_s), base)

    # Memory: bytes by the level that serves them; levels are on-chip (smallest first) + DRAM.
    levels = list(hw.memory)
    dram = len(levels)
    served, input_bytes, output_bytes, weight_bytes = _traffic(table, levels, kernel_codes,
                                                               graph_codes)
    bandwidth = np.array([lv.bandwidth_bytes_per_s or math.inf for lv in levels]
                         + [hw.dram.bandwidth_bytes_per_s])
    # The slowest level: bytes served by level ≥ ℓ cross level ℓ's bandwidth. Level by level
    # (a handful), not as reductions along a short axis, which numpy does slowly.
    crossing = served[:, dram].copy()
    slowest = crossing / bandwidth[dram]
    for lv in range(dram - 1, -1, -1):
        crossing += served[:, lv]
        slowest = np.maximum(slowest, crossing / bandwidth[lv])
    memory_eff = np.array([hw.memory_efficiency_of(k) for k in KIND_ORDER])[table.kind]
    memory_s = slowest / memory_eff

    per_kind = np.array([hw.overhead.per_kind_s.get(k.value, 0.0) for k in KIND_ORDER])
    overhead_s = (hw.overhead.per_kernel_s + per_kind[table.kind]
                  + weight_bytes * hw.overhead.per_weight_byte_s)
    latency_s = np.maximum(compute_s, memory_s) + overhead_s

    unsupported_codes = [_KIND_CODE[OpKind(k)] for k in hw.support.unsupported]
    supported = ~np.isin(table.kind, unsupported_codes)
    if fallback is not None and not supported.all():
        # NB: the fallback device prices the same kernels (this device's kernel view), at the
        # same precision where it has it, else at its own default.
        fb_codes = np.array([_PRECISION_CODE[resolve_precision(
            fallback, PRECISION_ORDER[c] if PRECISION_ORDER[c] in fallback.peak_macs_per_s
            else None)] for c in graph_codes], dtype=np.int64)
        fb = _evaluate(table, fallback, fb_codes, None)
        latency_s = np.where(supported, latency_s, fb.latency_s)
        compute_s = np.where(supported, compute_s, fb.compute_s)
        memory_s = np.where(supported, memory_s, fb.memory_s)
        overhead_s = np.where(supported, overhead_s, fb.overhead_s)
        # Handing a tensor to the fallback device and back costs a transfer at each switch.
        switches = _switch_counts(table, supported)
        graph_latency = (np.bincount(table.graph, latency_s, minlength=table.n_graphs)
                         + hw.overhead.per_inference_s
                         + switches * hw.support.fallback_transfer_s)
        graph_supported = np.ones(table.n_graphs, dtype=bool)
    else:
        graph_latency = (np.bincount(table.graph, latency_s, minlength=table.n_graphs)
                         + hw.overhead.per_inference_s)
        bad = np.bincount(table.graph, ~supported, minlength=table.n_graphs) > 0
        graph_supported = ~bad
        graph_latency = np.where(bad, np.nan, graph_latency)
    return KernelCosts(
        compute_s=compute_s, memory_s=memory_s, overhead_s=overhead_s, latency_s=latency_s,
        efficiency=efficiency, weight_bytes=weight_bytes, input_bytes=input_bytes,
        output_bytes=output_bytes, dram_bytes=served[:, dram], supported=supported,
        graph_latency_s=graph_latency, graph_supported=graph_supported)


def _traffic(table: KernelTable, levels: list[Any], kernel_codes: np.ndarray,
             graph_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bytes each kernel has served by each memory level (on-chip levels, then DRAM), its
    activation bytes in and out, and its weight bytes. They depend on the precisions and the
    levels' capacities only, so the members of a range (which move bandwidths, efficiencies
    and overheads) share them: computed once per table."""
    key = (graph_codes.tobytes(), tuple((lv.capacity_bytes, lv.holds) for lv in levels))
    return _kept(table, "traffic", key,
                 lambda: _traffic_of(table, levels, kernel_codes, graph_codes))


def _traffic_of(table: KernelTable, levels: list[Any], kernel_codes: np.ndarray,
                graph_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    b = _ELEMENT_BYTES[kernel_codes]
    bb = _BIAS_BYTES[kernel_codes]
    n_levels = len(levels) + 1
    n_kernels = len(table.macs)
    served = np.zeros((n_kernels, n_levels))
    act_caps = np.array([lv.capacity_bytes if lv.holds != "weights" else -1.0
                         for lv in levels] + [math.inf])
    input_bytes = np.zeros(n_kernels)
    output_bytes = np.zeros(n_kernels)
    for kernel, elements, fixed, distance, moved in (
            (table.edge_kernel, table.edge_elements, table.edge_element_bytes,
             table.edge_distance, input_bytes),
            (table.write_kernel, table.write_elements, table.write_element_bytes,
             table.write_distance, output_bytes)):
        if not kernel.size:
            continue
        per_element = b[kernel]
        nbytes = elements * np.where(fixed > 0, fixed, per_element)
        # Served by (or, for a write, landing in) the smallest level that keeps the tensor
        # until its reader: the tensor plus what was touched in between must fit.
        need = distance * per_element + nbytes
        level = _first_fit(need, act_caps)
        served += np.bincount(kernel * n_levels + level, nbytes,
                              minlength=n_kernels * n_levels).reshape(n_kernels, n_levels)
        moved += np.bincount(kernel, nbytes, minlength=n_kernels)
    weight_bytes = table.weight_elements * b + table.bias_elements * bb
    graph_b = _ELEMENT_BYTES[graph_codes]
    graph_bb = _BIAS_BYTES[graph_codes]
    model_weight_bytes = (table.graph_weight_elements * graph_b
                          + table.graph_bias_elements * graph_bb)
    weight_caps = np.array([lv.capacity_bytes if lv.holds != "activations" else -1.0
                            for lv in levels] + [math.inf])
    weight_level = _first_fit(model_weight_bytes, weight_caps)
    served[np.arange(n_kernels), weight_level[table.graph]] += weight_bytes
    return served, input_bytes, output_bytes, weight_bytes


def _kept(table: KernelTable, what: str, key: Any, make: Callable[[], Any]) -> Any:
    """``make()``, computed once per table and ``key`` and kept on the table (which is
    immutable); the arrays kept are made read-only, since every evaluation shares them."""
    known = table.__dict__.setdefault(f"_kept_{what}", {})
    if key not in known:
        value = make()
        for array in value if isinstance(value, tuple) else (value,):
            array.setflags(write=False)
        known[key] = value
    return known[key]


def _first_fit(need: np.ndarray, capacities: np.ndarray) -> np.ndarray:
    """Index of the first capacity each ``need`` fits in (the last capacity is inf)."""
    level = np.full(need.shape, len(capacities) - 1, dtype=np.int64)
    for lv in range(len(capacities) - 2, -1, -1):
        level = np.where(need <= capacities[lv], lv, level)
    return level


def _switch_counts(table: KernelTable, supported: np.ndarray) -> np.ndarray:
    counts = np.zeros(table.n_graphs)
    if supported.size < 2:
        return counts
    change = (supported[1:] != supported[:-1]) & (table.graph[1:] == table.graph[:-1])
    np.add.at(counts, table.graph[1:][change], 1.0)
    # A graph that starts on the fallback device pays one hand-over at the start.
    starts = np.r_[True, table.graph[1:] != table.graph[:-1]]
    np.add.at(counts, table.graph[starts & ~supported], 1.0)
    return counts


# -- how far a prediction may be off ---------------------------------------------------------------

#: The coverage of a prediction's range: the central 80 % of the latencies consistent with the
#: profile's fit and the engine's own error.
RANGE_COVERAGE = 0.80
_RANGE_Z = 1.2815515655446004  # the standard normal's 90th percentile: 80 % two-sided

#: The engine's own relative error (natural-log units, one standard deviation) on models unlike
#: those a profile was fitted to, by device kind, for a profile whose [fit] does not state its
#: own. Measured, not chosen: the value that makes the 80 % ranges of the extrapolating splits
#: of ``python benchmarks/bench_fit.py`` (a family left out, the largest models, other
#: resolutions, non-MobileNets from V1-V3 alone) cover 80 % of the held-out measurements —
#: CPUs over 338 of them, GPUs over 122, and the DSP, EdgeTPUs and Neural Engine pooled over
#: their 37 (too few to tell apart).
STRUCTURAL_SIGMA: dict[str, float] = {"cpu": 0.11, "gpu": 0.16, "dsp": 0.20, "edgetpu": 0.20,
                                      "npu": 0.20}



def _uncertain_directions(hw: HardwareProfile) -> tuple[list[HardwareProfile], float]:
    """Profiles one standard deviation away from ``hw`` along each principal direction of its
    parameters' uncertainty, and the engine's structural error (ln units).

    A fitted profile's uncertainty is its fit's posterior covariance; an unfitted one's, the
    generic priors of the parameters a fit would move (``roofline.core.fields.DEFAULT_FREE``):
    a datasheet alone is a guess, and its range says so. A fit that left such a parameter
    neither free nor stated (a depthwise efficiency that stays 1 because ``--free`` named
    only the dense one) is as unsure of it as a datasheet is: its generic prior joins the
    posterior, independent of it.
    """
    from .fields import DEFAULT_FREE, fit_spec, unstated, values_by_path, with_values

    fit = hw.fit
    structural = (fit.structural_sigma if fit is not None and fit.structural_sigma is not None
                  else STRUCTURAL_SIGMA.get(hw.kind, 0.2))
    fitted = fit is not None and bool(fit.covariance)
    guessed = []
    for path in DEFAULT_FREE.get(hw.kind, ()):
        left = unstated(hw, path, fit.free) if fitted else path
        if left is None:
            continue
        try:
            guessed.append(fit_spec(hw, left))
        except Exception:  # noqa: BLE001 - a field this profile lacks is not uncertain
            continue
    guessed = [s for s in guessed if s.generic_prior]
    sds = [math.log(s.generic_prior[1]) if s.transform == "log" else
           s.generic_prior[1] * s.scale for s in guessed]
    if fitted:
        specs = [s for s in (fit_spec(hw, p) for p in fit.free) if s.transform != "grid"]
        posterior = np.array(fit.covariance, dtype=np.float64)
        if len(specs) != len(posterior):
            return [], structural
        cov = np.zeros((len(specs) + len(sds),) * 2)
        cov[:len(specs), :len(specs)] = posterior
        cov[len(specs):, len(specs):] = np.diag(np.square(sds))
        specs += guessed
    else:
        specs = guessed
        cov = np.diag(np.square(sds)) if sds else np.zeros((0, 0))
    def coord(spec: Any, value: float) -> float:
        return math.log(value) if spec.transform == "log" else value * spec.scale

    center = np.array([coord(s, s.start) for s in specs])
    lo = np.array([coord(s, s.lower) if s.transform != "log" or s.lower > 0 else -np.inf
                   for s in specs])
    hi = np.array([coord(s, s.upper) for s in specs])
    lam, vec = np.linalg.eigh(cov) if cov.size else (np.zeros(0), np.zeros((0, 0)))
    members = []
    for i in range(len(lam)):
        if lam[i] <= 1e-12:
            continue
        step = math.sqrt(lam[i]) * vec[:, i]
        # One standard deviation to the side that stays inside the parameters' box (an
        # efficiency of 0.9 can only be 3x lower, not 3x higher); if both leave it, the side
        # that leaves it less.
        outside = [float(np.sum(np.maximum(x - hi, 0) + np.maximum(lo - x, 0)))
                   for x in (center + step, center - step)]
        x = center + step if outside[0] <= outside[1] else center - step
        values = [math.exp(v) if s.transform == "log" else v / s.scale
                  for s, v in zip(specs, x, strict=True)]
        members.append(with_values(hw, values_by_path(specs, values), validate=False))
    return members, structural


def _ranges(table: KernelTable, hw: HardwareProfile, codes: np.ndarray,
            fallback: HardwareProfile | None, latency: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The low and high ends of each graph's latency range on ``hw`` (see RANGE_COVERAGE): the
    spread of latency over the parameters consistent with the fit (one-sided differences one
    standard deviation along each principal direction), combined with the engine's own
    error."""
    members, structural = _uncertain_directions(hw)
    variance = np.full(latency.shape, structural ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        for member in members:
            moved = _evaluate(table, member, codes, fallback).graph_latency_s
            variance += np.square(np.log(moved / latency))
    spread = np.exp(_RANGE_Z * np.sqrt(variance))
    return latency / spread, latency * spread


# -- the pricing function -------------------------------------------------------------------------

@dataclass(frozen=True)
class Pricing:
    """Every model priced on every profile: ``latency_s[h, g]`` (NaN where model ``g`` cannot
    run on profile ``h``), the precision each was priced at, and, per profile, the per-kernel
    costs and the kernel table they index."""

    models: KernelSet
    hardware: tuple[HardwareProfile, ...]
    precisions: tuple[tuple[str, ...], ...]  # [h][g]
    latency_s: np.ndarray
    supported: np.ndarray
    costs: tuple[KernelCosts, ...]
    tables: tuple[KernelTable, ...]
    latency_low_s: np.ndarray  # the range (RANGE_COVERAGE) of each latency; NaN unsupported
    latency_high_s: np.ndarray

    @property
    def latency_ms(self) -> np.ndarray:
        return self.latency_s * 1e3

    def prediction(self, h: int, g: int) -> Prediction:
        """Model ``g`` on profile ``h`` with its per-kernel breakdown (needs graphs)."""
        table = self.tables[h]
        if not table.graphs:
            raise ValueError("these models were priced from kernel arrays: there are no "
                             "kernel names to build a Prediction from")
        hw = self.hardware[h]
        starts = table.starts
        ok = bool(self.supported[h, g])
        return Prediction(
            graph=table.graphs[g], hardware=hw, precision=self.precisions[h][g],
            latency_ms=float(self.latency_s[h, g] * 1e3) if ok else None, supported=ok,
            per_inference_ms=hw.overhead.per_inference_s * 1e3,
            latency_range_ms=(float(self.latency_low_s[h, g] * 1e3),
                              float(self.latency_high_s[h, g] * 1e3)) if ok else None,
            _costs=self.costs[h], _rows=slice(int(starts[g]), int(starts[g + 1])))

    def predictions(self) -> list[list[Prediction]]:
        """``result[h][g]``: every model on every profile."""
        return [[self.prediction(h, g) for g in range(self.models.count)]
                for h in range(len(self.hardware))]


def _as_profile(hardware: HardwareProfile | str) -> HardwareProfile:
    return hardware if isinstance(hardware, HardwareProfile) else load_hardware(hardware)


def price(models: Sequence[LayerGraph] | KernelSet,
          hardware: Sequence[HardwareProfile | str],
          precision: str | Sequence[str | None] | None = None) -> Pricing:
    """Price every model on every profile: the one path from kernels to latency.

    ``models``: graphs (op or kernel view) or a :class:`KernelSet`. ``precision``: one for
    every model, one per model, or None (each model's own, else each profile's default).
    """
    kernels = models if isinstance(models, KernelSet) else KernelSet(models)
    profiles = tuple(_as_profile(h) for h in hardware)
    latency = np.full((len(profiles), kernels.count), np.nan)
    low, high = latency.copy(), latency.copy()
    supported = np.zeros((len(profiles), kernels.count), dtype=bool)
    costs, tables, precisions = [], [], []
    for h, hw in enumerate(profiles):
        table = kernels.table(hw.kernel_view())
        codes = _codes(table, hw, precision)
        fallback = load_hardware(hw.support.fallback) if hw.support.fallback else None
        result = _evaluate(table, hw, codes, fallback)
        latency[h] = result.graph_latency_s
        low[h], high[h] = _ranges(table, hw, codes, fallback, result.graph_latency_s)
        supported[h] = result.graph_supported
        costs.append(result)
        tables.append(table)
        precisions.append(tuple(PRECISION_ORDER[c] for c in codes))
    return Pricing(models=kernels, hardware=profiles, precisions=tuple(precisions),
                   latency_s=latency, supported=supported, costs=tuple(costs),
                   tables=tuple(tables), latency_low_s=low, latency_high_s=high)


def predict(graph: LayerGraph, hardware: HardwareProfile | str,
            precision: str | None = None) -> Prediction:
    """Predict the latency of ``graph`` (fused first if needed) on ``hardware``, at
    ``precision`` (default: the graph's own, else the profile's ``default_precision``)."""
    return price([graph], [hardware], precision).prediction(0, 0)


def predict_many(graphs: Sequence[LayerGraph], hardware: Sequence[HardwareProfile | str],
                 precision: str | Sequence[str | None] | None = None
                 ) -> list[list[Prediction]]:
    """Predictions for every graph on every profile: ``result[h][g]``."""
    return price(graphs, hardware, precision).predictions()


# -- results --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """Predicted latency of one model on one device, with the per-kernel breakdown.

    ``latency_ms`` is None when a kernel's op kind is unsupported and the profile has no
    fallback (``supported`` is then False and ``unsupported_kinds`` names the kinds).
    """

    graph: LayerGraph  # the kernel view
    hardware: HardwareProfile
    precision: str
    latency_ms: float | None
    supported: bool
    per_inference_ms: float
    # (low, high): the central RANGE_COVERAGE of the latencies consistent with the profile's
    # fit and the engine's own error; None when unsupported.
    latency_range_ms: tuple[float, float] | None
    _costs: KernelCosts = field(repr=False)
    _rows: slice = field(repr=False)

    @property
    def name(self) -> str:
        return self.graph.model_name

    @cached_property
    def unsupported_kinds(self) -> list[str]:
        """Op kinds among the kernels that the device itself cannot run (run on the fallback
        device when it has one)."""
        sup = self._costs.supported[self._rows]
        return sorted({layer.kind.value for layer, ok in zip(self.graph.layers, sup,
                                                             strict=True) if not ok})

    def _col(self, values: np.ndarray) -> np.ndarray:
        return values[self._rows]

    @cached_property
    def bounds(self) -> list[str]:
        c = self._costs
        compute = self._col(c.compute_s)
        memory = self._col(c.memory_s)
        overhead = self._col(c.overhead_s)
        out = []
        for cs, ms, os_ in zip(compute, memory, overhead, strict=True):
            if os_ > max(cs, ms):
                out.append("overhead")
            elif ms > cs:
                out.append("memory")
            else:
                out.append("compute")
        return out

    def bound_breakdown(self) -> dict[str, float]:
        """Milliseconds of kernels by their bound, plus the per-inference overhead."""
        lat = self._col(self._costs.latency_s) * 1e3
        out = {b: 0.0 for b in BOUNDS}
        for bound, ms in zip(self.bounds, lat, strict=True):
            if math.isfinite(ms):
                out[bound] += float(ms)
        out["overhead"] += self.per_inference_ms
        return out

    def kernel_records(self) -> list[dict[str, Any]]:
        c = self._costs
        cols = {name: self._col(getattr(c, name)) for name in (
            "compute_s", "memory_s", "overhead_s", "latency_s", "efficiency", "weight_bytes",
            "input_bytes", "output_bytes", "dram_bytes", "supported")}
        records = []
        for i, layer in enumerate(self.graph.layers):
            moved = cols["weight_bytes"][i] + cols["input_bytes"][i] + cols["output_bytes"][i]
            ok = bool(cols["supported"][i])
            records.append({
                "name": layer.name,
                "op": layer.op,
                "kind": layer.kind.value,
                "module": layer.module,
                "macs": layer.macs,
                "weight_bytes": int(cols["weight_bytes"][i]),
                "input_bytes": int(cols["input_bytes"][i]),
                "output_bytes": int(cols["output_bytes"][i]),
                "dram_bytes": int(cols["dram_bytes"][i]),
                "intensity": float(layer.macs / moved) if moved else 0.0,
                "efficiency": float(cols["efficiency"][i]),
                "compute_ms": float(cols["compute_s"][i] * 1e3),
                "memory_ms": float(cols["memory_s"][i] * 1e3),
                "overhead_ms": float(cols["overhead_s"][i] * 1e3),
                "latency_ms": float(cols["latency_s"][i] * 1e3) if ok or self.supported
                else None,
                "bound": self.bounds[i],
                "supported": ok,
                "fused_ops": list(layer.fused_ops),
            })
        return records

    def to_dataframe(self) -> pd.DataFrame:
        """One row per kernel: name, op, kind, MACs, bytes, times (ms), bound, intensity."""
        import pandas as pd

        return pd.DataFrame.from_records(self.kernel_records())
