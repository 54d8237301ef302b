"""Design-space sweeps: width × resolution grids of one model on many devices, fast.

Owns grid parsing, tracing many variants (from the on-disk cache, else in worker processes or
on a backend such as a Ray cluster: ``roofline.analyses.backends``),
evaluating the whole grid on every device as arrays (one kernel table per distinct kernel view,
one ``evaluate`` call per device), the per-device frontiers, and keeping what finished when
the user interrupts. No plotting (``roofline.report.sweep_page``) and no printing (the CLI).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError
from ..sources.variant import MAX_RESOLUTION, MIN_RESOLUTION, Variant, check_batch
from .pareto import pareto_mask, uncertain_order

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..core.engine import KernelTable
    from ..core.graph import LayerGraph
    from ..core.hardware import HardwareProfile
    from .backends import Backend

__all__ = ["parse_grid", "sweep_variants", "trace_all", "evaluate_grid", "SweepResult", "views_of",
           "KernelGrid",
           "MAX_VARIANTS", "ROW_FIELDS"]

#: A sweep larger than this is almost certainly a typo in a range.
MAX_VARIANTS = 100_000

ROW_FIELDS = ("model", "label", "width", "resolution", "batch", "hardware", "precision", "macs",
              "params", "latency_ms", "latency_range_ms", "supported", "top1", "pareto_macs",
              "pareto_top1")


# -- grids ---------------------------------------------------------------------------------------

def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UsageError(f"{what}: {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise UsageError(f"{what}: {text.strip()!r} is not a finite number")
    return value


def parse_grid(text: str, what: str, *, integer: bool = False,
               allow_zero: bool = False) -> list[float] | list[int]:
    """Values of ``START:STOP:STEP`` (STOP included when it lands on the grid), ``a,b,c``, or
    a single value. Decimal arithmetic, so ``0.25:1.5:0.05`` is exactly 26 clean values.
    ``integer``: resolutions (whole pixels, 8..8192); otherwise widths (> 0), or values >= 0
    with ``allow_zero`` (ridge points)."""
    text = str(text).strip()
    if not text:
        raise UsageError(f"{what}: empty; give START:STOP:STEP, a list a,b,c or one value")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise UsageError(f"{what}: {text!r} is not START:STOP:STEP")
        start, stop, step = (_decimal(p, what) for p in parts)
        if step <= 0:
            raise UsageError(f"{what}: step must be > 0, got {step}")
        if start > stop:
            raise UsageError(f"{what}: start {start} is above stop {stop}")
        count = int((stop - start) / step) + 1
        if count > MAX_VARIANTS:
            raise UsageError(f"{what}: {text!r} has {count} values; at most {MAX_VARIANTS}")
        values = [start + i * step for i in range(count)]
    else:
        values = [_decimal(p, what) for p in text.split(",") if p.strip()]
        if not values:
            raise UsageError(f"{what}: empty list")
    out: list[Any] = []
    for v in values:
        if integer:
            if v != v.to_integral_value():
                raise UsageError(f"{what}: {v} is not a whole number of pixels")
            number: int | float = int(v)
            if not MIN_RESOLUTION <= number <= MAX_RESOLUTION:
                raise UsageError(f"{what}: {number} is outside {MIN_RESOLUTION}.."
                                 f"{MAX_RESOLUTION} pixels")
        else:
            number = float(v)
            if number < 0 or (number == 0 and not allow_zero):
                raise UsageError(f"{what}: values must be > 0" + (" or 0" if allow_zero else "")
                                 + f", got {v}")
        if number not in out:
            out.append(number)
    return out


def sweep_variants(model: str, widths: Sequence[float], resolutions: Sequence[int],
                   batch: int = 1) -> list[Variant]:
    """Every width × resolution of ``model`` (validated once)."""
    check_batch(batch)
    count = len(widths) * len(resolutions)
    if count > MAX_VARIANTS:
        raise UsageError(f"{count} variants ({len(widths)} widths x {len(resolutions)} "
                         f"resolutions); at most {MAX_VARIANTS}")
    Variant(model, widths[0], resolutions[0], batch).validate()
    return [Variant(model, w, r, batch) for r in resolutions for w in widths]


# -- tracing ---------------------------------------------------------------------------------------

View = tuple[bool, frozenset[str]]


def _arrays_for(variant: Variant, views: list[View]) -> tuple[list[dict[str, Any]], bool]:
    return variant.kernel_arrays(views)


@dataclass
class TraceStats:
    traced: int = 0  # variants that had to be traced (or re-read from their graph) now
    cached: int = 0  # variants whose kernel arrays came straight from the cache
    interrupted: bool = False


@dataclass(frozen=True)
class KernelGrid:
    """Every variant of a grid in each kernel view as one kernel table per view, with each
    variant's MACs and parameters: what the one-file grid cache holds."""

    views: tuple[View, ...]
    tables: tuple[KernelTable, ...]
    macs: np.ndarray
    params: np.ndarray

    @classmethod
    def of_arrays(cls, views: Sequence[View], arrays: Sequence[list[dict[str, Any]]]
                  ) -> KernelGrid:
        """From per-variant kernel arrays (``arrays[v][k]``: variant ``v`` in view ``k``)."""
        from ..core.engine import KernelTable

        tables = tuple(KernelTable.from_arrays([a[k] for a in arrays])
                       for k in range(len(views)))
        return cls(tuple(views), tables,
                   np.array([float(a[0]["graph_macs"]) for a in arrays]),
                   np.array([float(a[0]["graph_params"]) for a in arrays]))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"macs": self.macs, "params": self.params}
        for k, table in enumerate(self.tables):
            out.update({f"{k}.{name}": value for name, value in table.fields().items()})
        return out

    @classmethod
    def from_arrays(cls, views: Sequence[View], data: dict[str, np.ndarray]) -> KernelGrid:
        from ..core.engine import KernelTable

        tables = tuple(KernelTable.from_fields({name.split(".", 1)[1]: value
                                                for name, value in data.items()
                                                if name.startswith(f"{k}.")})
                       for k in range(len(views)))
        return cls(tuple(views), tables, data["macs"], data["params"])


def _grid_keys(variants: Sequence[Variant]) -> list[str] | None:
    from ..sources.cache import cache_enabled

    if not cache_enabled() or not all(v.source.cacheable() for v in variants):
        return None
    return [v.cache_key for v in variants]


def trace_all(variants: Sequence[Variant], views: Sequence[View], workers: int = 1,
              progress: Callable[[int, int], None] | None = None,
              backend: Backend | None = None
              ) -> tuple[list[list[dict[str, Any]] | None] | KernelGrid, TraceStats]:
    """The kernel arrays of every variant in every kernel view (None for the variants not
    finished when interrupted), or, when the whole grid is cached as one file, that grid.

    Arrays already cached are read in this process; the rest are traced (and cached) by
    ``workers`` processes (in-process when 1), or by ``backend``'s workers when one is given
    (``roofline.analyses.backends``: a Ray cluster), whose results this process also stores
    in its own cache. ``progress(done, total)`` is called as variants finish. A
    KeyboardInterrupt stops the workers and returns what finished, with
    ``stats.interrupted`` set.
    """
    from ..sources.cache import cache_enabled, load_arrays, load_grid

    views = list(views)
    stats = TraceStats()
    keys = _grid_keys(variants)
    grid = load_grid(keys, views) if keys else None
    if grid is not None:
        try:
            kernels = KernelGrid.from_arrays(views, grid)
        except KeyError:  # a file of another layout: the variants' own files serve
            kernels = None
        if kernels is not None:
            stats.cached = len(variants)
            if progress:
                progress(len(variants), len(variants))
            return kernels, stats
    found: list[list[dict[str, Any]] | None] = [None] * len(variants)
    todo: list[int] = []
    for i, v in enumerate(variants):
        key = v.cache_key if cache_enabled() and v.source.cacheable() else ""
        arrays = [load_arrays(key, view) for view in views] if key else [None]
        if all(a is not None for a in arrays):
            found[i] = arrays  # type: ignore[assignment]
            stats.cached += 1
        else:
            todo.append(i)
    # Traced model by model, width by width: a worker takes one (model, width) at a time,
    # builds it once, and traces two of its resolutions (the rest derived; _group_task).
    todo.sort(key=lambda i: (variants[i].name, variants[i].effective_width))
    done = stats.cached
    if progress:
        progress(done, len(variants))
    try:
        if todo:
            from .backends import LocalBackend

            _trace_on(backend or LocalBackend(workers), variants, views, todo, found, stats,
                      progress, done)
    except KeyboardInterrupt:
        stats.interrupted = True
    return found, stats


def _groups(variants: Sequence[Variant], todo: list[int]) -> list[list[int]]:
    """``todo`` as groups of one model at one width and batch, on its default image input,
    by resolution (everything else alone): a group's resolutions can share two traces."""
    groups: dict[Any, list[int]] = {}
    for i in todo:
        v = variants[i]
        image = v.inputs is None and v.effective_resolution is not None
        key = (v.name, v.effective_width, v.batch) if image else ("", i)
        groups.setdefault(key, []).append(i)
    return [sorted(g, key=lambda i: variants[i].effective_resolution or 0)
            for g in groups.values()]


def _group_task(views: list[View], group: list[Variant]) -> list[list[dict[str, Any]]]:
    """The kernel arrays of every variant of one group (see :func:`_groups`). With three
    resolutions or more, the smallest and largest are traced and every other one is derived
    from those two in each kernel view (``roofline.core.rescale.at_resolution``: exact, or
    traced after all)."""
    if len(group) < 3:
        return [_arrays_for(v, views)[0] for v in group]
    first, last = group[0], group[-1]
    ends: dict[str, LayerGraph] = {}

    def end(v: Variant) -> LayerGraph:
        if v.label not in ends:
            ends[v.label] = v.trace()
        return ends[v.label]

    out = []
    for v in group:
        if v is first or v is last:
            out.append(v.kernel_arrays(views, graph=lambda v=v: end(v))[0])
            continue
        arrays = _derived_arrays(v, views, first, last, end)
        out.append(arrays if arrays is not None else _arrays_for(v, views)[0])
    return out


def _derived_arrays(v: Variant, views: list[View], first: Variant, last: Variant,
                    end: Callable[[Variant], LayerGraph]) -> list[dict[str, Any]] | None:
    """``v``'s kernel arrays with each kernel view derived from the two ends' kernel views
    (no op view of ``v`` is made, fused or stored); None when one cannot be derived."""
    from ..core.engine import kernel_arrays, kernel_graph
    from ..core.rescale import at_resolution
    from ..sources.cache import cache_enabled, load_arrays, store_arrays

    store = cache_enabled() and v.source.cacheable()
    out = []
    for view in views:
        arrays = load_arrays(v.cache_key, view) if store else None
        if arrays is None:
            kernels = at_resolution(kernel_graph(end(first), *view),
                                    kernel_graph(end(last), *view),
                                    v.effective_resolution, v.label)
            if kernels is None:
                return None
            arrays = kernel_arrays(kernels)
            arrays["graph_macs"] = np.asarray(kernels.macs, dtype=np.float64)
            arrays["graph_params"] = np.asarray(kernels.params, dtype=np.float64)
            if store:
                store_arrays(v.cache_key, view, arrays)
        out.append(arrays)
    return out


def _trace_on(backend: Backend, variants: Sequence[Variant], views: list[View],
              todo: list[int], found: list[Any], stats: TraceStats,
              progress: Callable[[int, int], None] | None, done: int) -> None:
    from ..sources.cache import cache_enabled, load_arrays, store_arrays

    groups = _groups(variants, todo)
    for j, results in backend.run(_group_task, [[variants[i] for i in g] for g in groups],
                                  views):
        for i, arrays in zip(groups[j], results, strict=True):
            found[i] = arrays
            stats.traced += 1
            done += 1
            if cache_enabled() and backend.name != "local":  # cached on another machine
                key = variants[i].cache_key
                for view, a in zip(views, arrays, strict=True):
                    if load_arrays(key, view) is None:
                        store_arrays(key, view, a)
        if progress:
            progress(done, len(variants))


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


# -- evaluation ----------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """Every finished variant on every device: latency (s) per device and variant."""

    variants: list[Variant]
    macs: np.ndarray  # per variant
    params: np.ndarray
    hardware: list[HardwareProfile]
    precisions: list[str]
    latency_s: np.ndarray  # (devices, variants); NaN where unsupported
    latency_low_s: np.ndarray | None = None  # the range of each latency (same shape)
    latency_high_s: np.ndarray | None = None
    stats: TraceStats = field(default_factory=TraceStats)
    total_variants: int = 0
    #: Top-1 (%) given by the caller, by variant label: replaces the published figure.
    given_top1: dict[str, float] = field(default_factory=dict)

    def top1(self, m: int) -> float | None:
        """Variant ``m``'s top-1 (%): given, else published, else None."""
        return self.given_top1.get(self.variants[m].label, self.variants[m].top1())

    @property
    def partial(self) -> bool:
        return self.stats.interrupted or len(self.variants) < self.total_variants

    def frontier(self, h: int) -> tuple[list[bool], list[bool]]:
        """Device ``h``'s latency–MACs and latency–top-1 frontiers (masks over variants)."""
        latency = [None if math.isnan(x) else float(x) for x in self.latency_s[h]]
        top1 = [self.top1(m) for m in range(len(self.variants))]
        return pareto_mask(latency, list(self.macs)), pareto_mask(latency, top1)

    def latency_range_ms(self, h: int, m: int) -> tuple[float, float] | None:
        """Variant ``m``'s 80 % latency range on device ``h`` (ms), or None where it has none
        (unsupported, no ranges priced, or an end that is not a finite number)."""
        if self.latency_low_s is None or self.latency_high_s is None \
                or math.isnan(self.latency_s[h, m]):
            return None
        low, high = float(self.latency_low_s[h, m] * 1e3), float(self.latency_high_s[h, m] * 1e3)
        return (low, high) if math.isfinite(low) and math.isfinite(high) else None

    def order_uncertain(self, h: int) -> list[bool]:
        """For each variant on device ``h``'s latency–MACs frontier, whether its latency range
        overlaps a frontier neighbour's (:func:`roofline.analyses.pareto.uncertain_order`)."""
        by_macs, _ = self.frontier(h)
        latency = [None if math.isnan(x) else float(x) * 1e3 for x in self.latency_s[h]]
        ranges = [self.latency_range_ms(h, m) for m in range(len(self.variants))]
        return uncertain_order(by_macs, latency, ranges)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        top1 = [self.top1(m) for m in range(len(self.variants))]
        for h, hw in enumerate(self.hardware):
            by_macs, by_top1 = self.frontier(h)
            for m, variant in enumerate(self.variants):
                latency = self.latency_s[h, m]
                low_high = self.latency_range_ms(h, m)
                out.append({
                    "model": variant.name, "label": variant.label,
                    "width": variant.effective_width,
                    "resolution": variant.effective_resolution, "batch": variant.batch,
                    "hardware": hw.name, "precision": self.precisions[h],
                    "macs": int(self.macs[m]), "params": int(self.params[m]),
                    "latency_ms": None if math.isnan(latency) else float(latency * 1e3),
                    "latency_range_ms": None if low_high is None else list(low_high),
                    "supported": not math.isnan(latency), "top1": top1[m],
                    "pareto_macs": bool(by_macs[m]), "pareto_top1": bool(by_top1[m]),
                })
        return out

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(self.rows(), columns=list(ROW_FIELDS))


def views_of(hardware: Sequence[HardwareProfile]) -> list[View]:
    """The distinct kernel views of ``hardware``, in order."""
    return list(dict.fromkeys(hw.kernel_view() for hw in hardware))


def evaluate_grid(variants: Sequence[Variant],
                  arrays: Sequence[list[dict[str, Any]] | None] | KernelGrid,
                  hardware: Sequence[HardwareProfile], precision: str | None = None,
                  stats: TraceStats | None = None,
                  top1: dict[str, float] | None = None) -> SweepResult:
    """Price every finished variant on every device through :func:`roofline.core.engine.price`
    (``arrays[v][k]`` are variant ``v``'s kernel arrays in the ``k``-th of :func:`views_of`, or
    a :class:`KernelGrid` from the one-file grid cache; a complete grid of cacheable variants
    is stored as one file for the next sweep of it); ``top1`` gives top-1 (%) by variant label
    (see ``roofline.analyses.compare.given_top1``)."""
    from ..core.engine import KernelSet, price
    from ..sources.cache import store_grid

    views = views_of(hardware)
    if isinstance(arrays, KernelGrid):
        grid, kept = arrays, list(variants)
    else:
        pairs = [(v, a) for v, a in zip(variants, arrays, strict=True) if a is not None]
        kept = [v for v, _ in pairs]
        grid = KernelGrid.of_arrays(views, [a for _, a in pairs])
        keys = _grid_keys(variants)
        if keys and len(kept) == len(variants) and kept:
            store_grid(keys, views, grid.to_arrays())  # the next sweep of it reads one file
    if grid.views != tuple(views):
        raise ValueError("the grid was built for other kernel views than these devices'")
    latency = np.full((len(hardware), len(kept)), np.nan)
    precisions = [precision or hw.default_precision for hw in hardware]
    low = high = latency
    if kept:
        models = KernelSet.of_tables(dict(zip(grid.views, grid.tables, strict=True)),
                                     count=len(kept))
        pricing = price(models, hardware, precision)
        latency = pricing.latency_s
        low, high = pricing.latency_low_s, pricing.latency_high_s
        precisions = [p[0] for p in pricing.precisions]
    return SweepResult(
        variants=kept, macs=grid.macs, params=grid.params,
        hardware=list(hardware), precisions=precisions, latency_s=latency,
        latency_low_s=low, latency_high_s=high,
        stats=stats or TraceStats(), total_variants=len(variants), given_top1=dict(top1 or {}))
