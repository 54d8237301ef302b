"""The search: sample candidates (random, or a constrained evolution), price each on every
device, and find per device the latency–MACs and latency–params frontiers and the candidates
that meet every latency target on every device at once.

Owns the search loop, the fitness of the evolutionary search, frontiers over many candidates
(vectorised, the same rule as ``roofline.analyses.pareto.pareto_mask``), the result rows, and
accumulating each block's in-context latency for lookup tables (``lut``). Work runs on a
backend (``roofline.analyses.backends``): tracing missing units, then pricing chunks of
candidates. No printing, no HTML.

Evolution is regularised ("aging") evolution (Real et al. 2019) under constraints: a random
population, then generations of children, each a one-choice mutation of the fittest of a
random tournament; the oldest leave. Fitness: a candidate that meets every target (and runs
on every device) scores its MACs (or params) — the largest network that is fast everywhere;
any other scores minus its worst latency / target ratio, so the search walks towards the
feasible set first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import UsageError
from ..backends import Backend, LocalBackend
from .blocks import UnitBank
from .candidates import Genome
from .pricing import CHUNK, RowPrices
from .space import SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ...core.hardware import HardwareProfile

__all__ = ["SearchConfig", "SearchResult", "run_search", "frontier_mask", "STRATEGIES",
           "OBJECTIVES", "MAX_SAMPLES", "row_fields", "weight_levels", "MAX_WEIGHT_LEVELS"]

STRATEGIES = ("random", "evolution")
OBJECTIVES = ("macs", "params")
#: A search larger than this is almost certainly a typo.
MAX_SAMPLES = 10_000_000

#: Units traced per task (small tasks balance well; each unit is a few milliseconds).
_TRACE_BATCH = 16


def frontier_mask(cost: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """True where no other candidate has cost <= and gain >= with one strictly better; equal
    points are all on it; NaN costs or gains never are. The rule of
    :func:`roofline.analyses.pareto.pareto_mask`, vectorised for many candidates."""
    cost = np.asarray(cost, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    mask = np.zeros(len(cost), dtype=bool)
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(gain))
    if not ok.size:
        return mask
    order = ok[np.lexsort((-gain[ok], cost[ok]))]
    c, g = cost[order], gain[order]
    new_group = np.r_[True, c[1:] != c[:-1]]
    group = np.cumsum(new_group) - 1
    top = g[new_group]  # highest gain at each cost
    best_before = np.r_[-np.inf, np.maximum.accumulate(top)[:-1]]
    mask[order] = (g == top[group]) & (top[group] > best_before[group])
    return mask


@dataclass(frozen=True)
class SearchConfig:
    """What to search: ``targets`` maps a device index (into ``hardware``) to seconds."""

    space: SearchSpace
    hardware: tuple[HardwareProfile, ...]
    samples: int
    strategy: str = "random"
    seed: int = 0
    targets: tuple[tuple[int, float], ...] = ()
    objective: str = "macs"
    precision: str | None = None
    population: int | None = None  # evolution; default min(max(64, samples / 20), 1000)
    tournament: int = 10
    chunk: int = CHUNK

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            from ...errors import UnknownNameError

            raise UnknownNameError("strategy", self.strategy, STRATEGIES)
        if self.objective not in OBJECTIVES:
            from ...errors import UnknownNameError

            raise UnknownNameError("objective", self.objective, OBJECTIVES)
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise UsageError(f"--samples must be from 1 to {MAX_SAMPLES:,}, got {self.samples}")
        if self.strategy == "evolution" and not self.targets:
            raise UsageError("--strategy evolution searches under latency targets: give "
                             "--latency-ms DEVICE=MS")


@dataclass
class SearchStats:
    units: int = 0
    traced: int = 0
    from_cache: int = 0
    trace_s: float = 0.0
    price_s: float = 0.0
    interrupted: bool = False
    generations: int = 0
    backend: str = "local"


@dataclass
class BlockTotals:
    """Sums over every priced candidate, per LUT block id (the genome's blocks, then heads):
    ``latency_s[h, b, level]`` and ``count[h, b, level]`` of the block's in-context latency in
    candidates whose weights live at ``level`` (:func:`weight_levels`); ``unsupported[h, b]``
    kernels the device cannot run; ``weight_bytes[h, b]`` over ``clean[h, b]`` occurrences
    (those where no later part of its unit put a kernel into the block's last one)."""

    latency_s: np.ndarray
    count: np.ndarray
    unsupported: np.ndarray
    weight_bytes: np.ndarray
    clean: np.ndarray

    @classmethod
    def zeros(cls, devices: int, blocks: int) -> BlockTotals:
        shape = (devices, blocks, MAX_WEIGHT_LEVELS)
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape[:2]), np.zeros(shape[:2]),
                   np.zeros(shape[:2]))

    def add(self, other: BlockTotals) -> None:
        for name in ("latency_s", "count", "unsupported", "weight_bytes", "clean"):
            getattr(self, name).__iadd__(getattr(other, name))


@dataclass
class SearchResult:
    """Every priced candidate on every device (rows of ``genome``), with where it came from."""

    config: SearchConfig
    genome: Genome
    rows: np.ndarray  # (candidates, genome columns)
    prices: RowPrices
    origin: np.ndarray  # 0 random, 1 evolution
    generation: np.ndarray
    stats: SearchStats = field(default_factory=SearchStats)
    blocks: BlockTotals | None = None  # for lookup tables

    @property
    def hardware(self) -> tuple[HardwareProfile, ...]:
        return self.config.hardware

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def partial(self) -> bool:
        return self.stats.interrupted or self.count < min(self.config.samples,
                                                          _space_cap(self.genome))

    @cached_property
    def encodings(self) -> list[str]:
        return self.genome.encode(self.rows)

    @cached_property
    def resolution(self) -> np.ndarray:
        return np.asarray(self.genome.space.resolution)[self.rows[:, 0].astype(np.int64)]

    def frontier(self, h: int, by: str = "macs") -> np.ndarray:
        """Device ``h``'s latency–MACs (``by="macs"``) or latency–params frontier."""
        return self._frontiers[(h, by)]

    @cached_property
    def _frontiers(self) -> dict[tuple[int, str], np.ndarray]:
        out = {}
        for h in range(len(self.hardware)):
            for by, gain in (("macs", self.prices.macs), ("params", self.prices.params)):
                out[(h, by)] = frontier_mask(self.prices.latency_s[h], gain)
        return out

    @cached_property
    def meets(self) -> np.ndarray:
        """Candidates that run on every device and meet every target (all False without
        targets)."""
        return _meets(self.prices.latency_s, self.config.targets)

    def rows_out(self) -> list[dict[str, Any]]:
        """One plain row per candidate (the CSV / JSON rows; see :func:`row_fields`)."""
        names = [hw.name for hw in self.hardware]
        p = self.prices
        cols: dict[str, Any] = {
            "candidate": self.encodings,
            "resolution": self.resolution.tolist(),
            "macs": p.macs.astype(np.int64).tolist(),
            "params": p.params.astype(np.int64).tolist(),
            "origin": np.where(self.origin == 1, "evolution", "random").tolist(),
            "generation": self.generation.tolist(),
            "meets_targets": self.meets.tolist(),
        }
        for h, name in enumerate(names):
            for key, values in (("latency_ms", p.latency_s[h]),
                                ("latency_low_ms", p.latency_low_s[h]),
                                ("latency_high_ms", p.latency_high_s[h])):
                ms = values * 1e3
                cols[f"{name}.{key}"] = [None if math.isnan(x) else x for x in ms.tolist()]
            cols[f"{name}.pareto_macs"] = self.frontier(h, "macs").tolist()
            cols[f"{name}.pareto_params"] = self.frontier(h, "params").tolist()
        fields = row_fields(names)
        return [dict(zip(fields, values, strict=True))
                for values in zip(*(cols[f] for f in fields), strict=True)]

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        names = [hw.name for hw in self.hardware]
        return pd.DataFrame.from_records(self.rows_out(), columns=row_fields(names))


def row_fields(device_names: Sequence[str]) -> list[str]:
    """The columns of the search rows, in order."""
    fields = ["candidate", "resolution", "macs", "params", "origin", "generation",
              "meets_targets"]
    for name in device_names:
        fields += [f"{name}.{k}" for k in ("latency_ms", "latency_low_ms", "latency_high_ms",
                                           "pareto_macs", "pareto_params")]
    return fields


def _meets(latency_s: np.ndarray, targets: Sequence[tuple[int, float]]) -> np.ndarray:
    n = latency_s.shape[1]
    if not targets:
        return np.zeros(n, dtype=bool)
    ok = np.isfinite(latency_s).all(axis=0)
    for h, seconds in targets:
        ok &= latency_s[h] <= seconds
    return ok


def _space_cap(genome: Genome) -> int:
    size = genome.size()
    return int(size) if size < MAX_SAMPLES else MAX_SAMPLES


# -- tasks (run in this process, forked workers or on Ray) ---------------------------------------

def _trace_units(context: Any, keys: list[Any]) -> list[Any]:
    from .blocks import trace_task

    views = context
    return trace_task(keys, views)


#: Most weight levels a device can have for the lookup tables (on-chip levels + DRAM).
MAX_WEIGHT_LEVELS = 4


def weight_levels(hw: HardwareProfile) -> list[tuple[str, float]]:
    """Where a model's weights can live on ``hw``, smallest first: each on-chip level that
    holds weights, then DRAM (capacity inf). The engine keeps them in the first level the
    whole model's weights fit in."""
    levels = [(lv.name, float(lv.capacity_bytes)) for lv in hw.memory
              if lv.holds != "activations"]
    return [*levels, ("DRAM", math.inf)][-MAX_WEIGHT_LEVELS:]


def _price_chunk(context: Any, item: tuple[np.ndarray, np.ndarray]
                 ) -> tuple[RowPrices, BlockTotals]:
    """Price candidates whose unit ids are ``item[0]`` and accumulate their blocks'
    in-context latency by where the candidate's weights live (``item[1]``: each unit's block
    ids per part, -1 padded): by context (:func:`~.pricing.price_contexts`) where that gives
    the engine's numbers, else through ``price()`` on the composed kernel tables."""
    from .pricing import price_contexts

    bank, hardware, precision, n_blocks = context
    units, unit_blocks = item
    fast = price_contexts(bank, units, hardware, precision, parts=True)
    if fast is None:
        return _price_chunk_composed(context, item)
    prices, details = fast
    totals = BlockTotals.zeros(len(hardware), n_blocks)
    valid = units >= 0
    cand = np.nonzero(valid)[0]
    uid = units[valid]
    parts_per_unit = (unit_blocks >= 0).sum(axis=1)
    n_lv = MAX_WEIGHT_LEVELS
    for h, (hw, d) in enumerate(zip(hardware, details, strict=True)):
        level = _level_index(hw)[d.weight_place][cand]
        for j in range(d.latency_s.shape[1]):
            block = unit_blocks[uid, j] if j < unit_blocks.shape[1] else np.full(len(uid), -1)
            used = block >= 0
            b, ctx, lv = block[used], d.context[used], level[used]
            cell = b * n_lv + lv
            totals.latency_s[h] += np.bincount(cell, weights=d.latency_s[ctx, j],
                                               minlength=n_blocks * n_lv).reshape(n_blocks, n_lv)
            totals.count[h] += np.bincount(cell, minlength=n_blocks * n_lv).reshape(n_blocks,
                                                                                      n_lv)
            totals.unsupported[h] += np.bincount(b, weights=d.unsupported[ctx, j],
                                                 minlength=n_blocks)
            # A block's weight bytes, from the occurrences where no later part of its unit
            # put a batch norm into its last kernel (Mobile MQA's, which is added back to the
            # MQA block by the lookup table).
            own = parts_per_unit[uid[used]] - 1 == j
            totals.weight_bytes[h] += np.bincount(b[own], weights=d.weight_bytes[ctx[own], j],
                                                  minlength=n_blocks)
            totals.clean[h] += np.bincount(b[own], minlength=n_blocks)
    return prices, totals


def _level_index(hw: HardwareProfile) -> np.ndarray:
    """Map an index into :func:`~.pricing.weight_places` to one into :func:`weight_levels`
    (levels that hold no weights are never chosen)."""
    from .pricing import weight_places

    holds = weight_places(hw) >= 0
    return np.minimum(np.cumsum(holds) - 1, MAX_WEIGHT_LEVELS - 1)


def _price_chunk_composed(context: Any, item: tuple[np.ndarray, np.ndarray]
                          ) -> tuple[RowPrices, BlockTotals]:
    """:func:`_price_chunk` through ``price()`` on the composed kernel tables."""
    from ...core.engine import price
    from .pricing import ComposedKernels, price_summary

    bank, hardware, precision, n_blocks = context
    units, unit_blocks = item
    kernels = ComposedKernels(bank, units)
    pricing = price(kernels, hardware, precision)
    prices = price_summary(bank, units, pricing, hardware, precision)
    n_dev, n_lv = len(hardware), MAX_WEIGHT_LEVELS
    sums = np.zeros((n_dev, n_blocks, n_lv))
    counts = np.zeros((n_dev, n_blocks, n_lv))
    bad = np.zeros((n_dev, n_blocks))
    weights = np.zeros((n_dev, n_blocks))
    clean = np.zeros((n_dev, n_blocks))
    parts_per_unit = (unit_blocks >= 0).sum(axis=1)
    for h, hw in enumerate(hardware):
        view = hw.kernel_view()
        table = kernels.table(view)
        layout = kernels.layouts[view]
        flat = bank.flat(view)
        part = _kernel_parts(flat, layout)
        kernel_unit = np.repeat(np.arange(len(layout.unit)), layout.kernel_count)
        block = unit_blocks[layout.unit[kernel_unit], part]
        costs = pricing.costs[h]
        model_weights = np.bincount(table.graph, weights=costs.weight_bytes,
                                    minlength=len(units))
        caps = np.array([cap for _, cap in weight_levels(hw)])
        level = np.argmax(model_weights[:, None] <= caps[None, :], axis=1)[table.graph]
        cell = block * n_lv + level
        sums[h] = np.bincount(cell, weights=costs.latency_s,
                              minlength=n_blocks * n_lv).reshape(n_blocks, n_lv)
        # One occurrence per (unit, part): the kernels of a part are contiguous.
        change = np.r_[True, (part[1:] != part[:-1]) | (kernel_unit[1:] != kernel_unit[:-1])]
        counts[h] = np.bincount(cell[change], minlength=n_blocks * n_lv).reshape(n_blocks, n_lv)
        bad[h] = np.bincount(block, weights=~costs.supported, minlength=n_blocks)
        own = part == parts_per_unit[layout.unit[kernel_unit]] - 1
        weights[h] = np.bincount(block[own], weights=costs.weight_bytes[own],
                                 minlength=n_blocks)
        clean[h] = np.bincount(block[own & change], minlength=n_blocks)
    return prices, BlockTotals(sums, counts, bad, weights, clean)


def _kernel_parts(flat: dict[str, np.ndarray], layout: Any) -> np.ndarray:
    from .pricing import _ranges

    k_idx = _ranges(flat["k_start"][layout.unit], layout.kernel_count)
    return flat["part"][k_idx].astype(np.int64)


def unit_block_table(genome: Genome) -> np.ndarray:
    """For every unit id of ``genome.bank``, its parts' lookup-table ids (blocks, then heads
    after the last block id), -1 padded."""
    bank = genome.bank
    assert bank is not None
    width = max(len(k.parts) for k in bank.keys)
    out = np.full((len(bank), width), -1, dtype=np.int64)
    block_index = genome._block_index
    head_index = {h: i for i, h in enumerate(genome.head_keys)}
    for u, key in enumerate(bank.keys):
        for j, part in enumerate(key.parts):
            found = block_index.get(part)  # type: ignore[call-overload]
            out[u, j] = found if found is not None else len(genome.blocks) + head_index[part]
    return out


# -- the loop ------------------------------------------------------------------------------------

class _Search:
    def __init__(self, config: SearchConfig, backend: Backend,
                 progress: Callable[[str, int, int], None] | None):
        from ..sweep import views_of

        config.check()
        self.config = config
        self.backend = backend
        self.progress = progress or (lambda what, done, total: None)
        batch = config.space.batch
        self.bank = UnitBank(views_of(config.hardware), batch)
        self.genome = Genome(config.space, self.bank)
        self.rng = np.random.default_rng(config.seed)
        self.stats = SearchStats(backend=backend.describe())
        self.parts: list[RowPrices] = []
        self.rows: list[np.ndarray] = []
        self.origin: list[np.ndarray] = []
        self.generation: list[np.ndarray] = []
        self.seen: set[bytes] = set()
        n_blocks = len(self.genome.blocks) + len(self.genome.head_keys)
        self.n_blocks = n_blocks
        self.blocks = BlockTotals.zeros(len(config.hardware), n_blocks)
        self.priced = 0

    # The units each candidate is made of must be traced before it is priced.
    def fill(self, units: np.ndarray) -> None:
        missing = self.bank.missing(units)
        if not missing:
            return
        started = time.perf_counter()
        from_cache_before = self.bank.from_cache
        self.bank.fill(missing, run=lambda keys: self._trace(keys))
        self.stats.trace_s += time.perf_counter() - started
        self.stats.from_cache += self.bank.from_cache - from_cache_before

    def _trace(self, keys: list[Any]) -> list[Any]:
        batches = [keys[i:i + _TRACE_BATCH] for i in range(0, len(keys), _TRACE_BATCH)]
        out: list[Any] = [None] * len(batches)
        done = 0
        self.progress("tracing blocks", 0, len(keys))
        try:
            for i, result in self.backend.run(_trace_units, batches, self.bank.views):
                out[i] = result
                done += len(batches[i])
                self.progress("tracing blocks", done, len(keys))
        except KeyboardInterrupt:
            self.stats.interrupted = True
            raise
        return [arrays for batch, result in zip(batches, out, strict=True)
                for arrays in (result if result is not None else [None] * len(batch))]

    def _unit_blocks(self, units: np.ndarray) -> np.ndarray:
        cached = getattr(self, "_ub", None)
        if cached is None or len(cached) != len(self.bank):
            cached = self._ub = unit_block_table(self.genome)
        return cached

    def price(self, rows: np.ndarray, origin: int, generation: int) -> np.ndarray | None:
        """Price ``rows`` (new, unique); returns their latency (devices, rows), or None when
        interrupted before any finished."""
        units = self.genome.units(rows)
        self.fill(units)
        unit_blocks = self._unit_blocks(units)
        started = time.perf_counter()
        chunks = [(units[i:i + self.config.chunk], unit_blocks)
                  for i in range(0, len(units), self.config.chunk)]
        context = (self.bank, self.config.hardware, self.config.precision, self.n_blocks)
        results: list[Any] = [None] * len(chunks)
        backend = self.backend if len(chunks) > 1 else LocalBackend(1)
        try:
            for i, result in backend.run(_price_chunk, chunks, context):
                results[i] = result
                self.priced += len(chunks[i][0])
                self.progress("pricing", self.priced, self._total)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.stats.price_s += time.perf_counter() - started
        kept = [i for i, r in enumerate(results) if r is not None]
        for i in kept:
            prices, totals = results[i]
            size = self.config.chunk
            chunk_rows = rows[i * size:(i + 1) * size]
            self.parts.append(prices)
            self.rows.append(chunk_rows)
            self.origin.append(np.full(len(chunk_rows), origin, dtype=np.int8))
            self.generation.append(np.full(len(chunk_rows), generation, dtype=np.int32))
            self.blocks.add(totals)
        if self.stats.interrupted:
            raise KeyboardInterrupt
        if not kept:
            return None
        return np.concatenate([results[i][0].latency_s for i in kept], axis=1)

    def unique(self, rows: np.ndarray, limit: int | None = None) -> np.ndarray:
        """The rows not seen before (at most ``limit``), now marked seen."""
        keep = []
        for i, row in enumerate(rows):
            b = row.tobytes()
            if b not in self.seen:
                self.seen.add(b)
                keep.append(i)
                if limit is not None and len(keep) == limit:
                    break
        return rows[keep]

    def run(self) -> SearchResult:
        cfg = self.config
        target = min(cfg.samples, _space_cap(self.genome))
        self._total = target
        try:
            if cfg.strategy == "random":
                self._random(target)
            else:
                self._evolve(target)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        self.stats.units = len(self.bank)
        self.stats.traced = self.bank.traced
        n_dev = len(cfg.hardware)
        prices = RowPrices.concat(self.parts, n_dev)
        if not self.parts:
            prices.precisions = [cfg.precision or hw.default_precision for hw in cfg.hardware]
        return SearchResult(
            config=cfg, genome=self.genome,
            rows=np.concatenate(self.rows) if self.rows else
            np.zeros((0, self.genome.columns), dtype=np.int16),
            prices=prices,
            origin=np.concatenate(self.origin) if self.origin else np.zeros(0, np.int8),
            generation=np.concatenate(self.generation) if self.generation else
            np.zeros(0, np.int32),
            stats=self.stats, blocks=self.blocks)

    def _random(self, target: int) -> None:
        rows = self.unique(self.genome.sample(target, self.rng))
        tries = 0
        while len(rows) < target and tries < 50:  # small spaces: draw until full
            draw = max(4 * (target - len(rows)), 1024)
            more = self.unique(self.genome.sample(draw, self.rng), target - len(rows))
            rows = np.concatenate([rows, more])
            tries += 1
        self.price(rows, origin=0, generation=0)

    def _fitness(self, latency_s: np.ndarray, rows_prices: RowPrices) -> np.ndarray:
        gain = rows_prices.macs if self.config.objective == "macs" else rows_prices.params
        ratio = np.full(latency_s.shape[1], 1.0)
        for h, seconds in self.config.targets:
            ratio = np.maximum(ratio, latency_s[h] / seconds)
        unsupported = ~np.isfinite(latency_s).all(axis=0)
        feasible = _meets(latency_s, self.config.targets)
        return np.where(feasible, gain, np.where(unsupported, -np.inf, -ratio))

    def _evolve(self, target: int) -> None:
        cfg = self.config
        population = cfg.population or int(min(max(64, target // 20), 1000))
        population = max(2, min(population, target))
        rows = self.unique(self.genome.sample(population, self.rng))
        self.price(rows, origin=0, generation=0)
        fitness = self._fitness(self.parts[-1].latency_s if len(self.parts) == 1 else
                                np.concatenate([p.latency_s for p in self.parts], axis=1),
                                RowPrices.concat(self.parts, len(cfg.hardware)))
        pop_rows = np.concatenate(self.rows)
        pop_fit = fitness
        generation = 0
        children_per_generation = max(1, population // 2)
        stale = 0
        while self.priced < target and stale < 50:
            generation += 1
            want = min(children_per_generation, target - self.priced)
            picks = self.rng.integers(0, len(pop_rows), (want, min(cfg.tournament,
                                                                   len(pop_rows))))
            parents = picks[np.arange(want), np.argmax(pop_fit[picks], axis=1)]
            children = self.unique(self.genome.mutate(pop_rows[parents], self.rng))
            for _ in range(3):  # a child seen before mutates again
                if len(children) >= want:
                    break
                again = parents[:want - len(children)]
                more = self.unique(self.genome.mutate(pop_rows[again], self.rng))
                children = np.concatenate([children, more])
            if not len(children):
                stale += 1
                continue
            stale = 0
            count_before = len(self.parts)
            self.price(children, origin=1, generation=generation)
            new = RowPrices.concat(self.parts[count_before:], len(cfg.hardware))
            child_fit = self._fitness(new.latency_s, new)
            pop_rows = np.concatenate([pop_rows, children])[-population:]
            pop_fit = np.concatenate([pop_fit, child_fit])[-population:]
        self.stats.generations = generation


def run_search(config: SearchConfig, backend: Backend | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> SearchResult:
    """Search ``config.space`` on ``config.hardware``: ``samples`` distinct candidates priced
    on every device (fewer when the space is smaller). ``progress(what, done, total)``. Ctrl-C
    stops it and returns what was priced (``result.partial``)."""
    own = backend is None
    backend = backend or LocalBackend(1)
    try:
        return _Search(config, backend, progress).run()
    finally:
        if own:
            backend.close()
