"""Fitting a hardware profile's free parameters to measured whole-model latencies.

Owns reading measurement files (validated row by row), the bounded least-squares fit on
relative error, and its report: per-model error, median absolute error, Spearman rank
correlation and leave-one-out error. Imports neither torch nor plotly; models are traced
through ``roofline.sources.variant`` only when measurements name them.

Free parameters are named by field path, as in a profile's ``[fit] free`` list:

* ``efficiency.KIND`` or ``efficiency.KIND1+KIND2+...`` (several kinds tied to one value),
  and ``memory_efficiency.KIND...`` likewise, bounded to (0, 1];
* ``overhead.per_kernel_s``, ``overhead.per_inference_s`` and ``overhead.per_kind_s.KIND``
  (or ``...KIND1+KIND2``), bounded to [0, 50 ms];
* ``dram.bandwidth_bytes_per_s``, ``memory.NAME.bandwidth_bytes_per_s`` and
  ``peak_macs_per_s.PRECISION``, bounded above by the base profile's value (the datasheet), so
  a fit can never claim more bandwidth or compute than the hardware has;
* ``memory.NAME.capacity_bytes`` and ``geometry.FIELD``, searched over powers of two.

The fit uses the kernel view (fused kernels), the convention the engine predicts with.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.engine import KernelSet, evaluate
from ..core.engine import io_on_chip as _io_on_chip
from ..core.hardware import HardwareProfile
from ..errors import MeasurementError, ProfileError, RooflineError, UsageError
from ..units import PRECISIONS

__all__ = ["Measurement", "load_measurements", "FitResult", "fit_profile", "spearman",
           "kendall", "ParameterSpace"]

REQUIRED_COLUMNS = ("model", "width", "resolution", "latency_ms")
OPTIONAL_COLUMNS = ("precision", "device", "source", "batch")
_MAX_OVERHEAD_S = 0.05
_MIN_EFFICIENCY = 1e-3


@dataclass(frozen=True)
class Measurement:
    """One measured latency: a model variant on a device at a precision."""

    model: str
    width: float
    resolution: int
    latency_ms: float
    precision: str | None = None
    device: str | None = None
    batch: int = 1
    source: str = ""
    row: int = 0  # line number in the file (1 = header)

    @property
    def label(self) -> str:
        return f"{self.model}@{self.width:g}:{self.resolution}" + (
            f" {self.precision}" if self.precision else "")


def load_measurements(path: str | Path, *, device: str | None = None,
                      known_models: Callable[[str], bool] | None = None) -> list[Measurement]:
    """Read a measurement CSV; every problem is a MeasurementError naming the file and row.

    Columns: model, width, resolution, latency_ms (required); precision, device, batch,
    source (optional). With ``device``, only rows for that device are kept (a file without
    a device column is taken to be for it). ``known_models`` validates model names.
    """
    from ..core.hardware import shipped_path

    path = shipped_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MeasurementError(f"measurement file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasurementError(f"{path}: cannot read: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise MeasurementError(f"{path}: missing column(s) {', '.join(missing)}; need "
                               f"{', '.join(REQUIRED_COLUMNS)} (optional: "
                               f"{', '.join(OPTIONAL_COLUMNS)})")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise MeasurementError(f"{path}: unknown column(s) {', '.join(unknown)}; valid: "
                               f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    rows: list[Measurement] = []
    for line, raw in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        if None in raw:
            raise MeasurementError(f"{path}: row {line}: more fields than columns")
        rows.append(_parse_row(path, line, record, known_models))
    if device is not None and "device" in header:
        rows = [r for r in rows if r.device == device]
    if not rows:
        where = f" for device {device!r}" if device else ""
        raise MeasurementError(f"{path}: no measurements{where}")
    return rows


def _parse_row(path: Path, line: int, record: dict[str, str],
               known_models: Callable[[str], bool] | None) -> Measurement:
    def fail(column: str, why: str) -> MeasurementError:
        return MeasurementError(f"{path}: row {line}, column {column!r}: {why}")

    model = record.get("model", "")
    if not model:
        raise fail("model", "empty")
    if known_models is not None and not known_models(model):
        raise fail("model", f"unknown model {model!r}")
    number = {}
    for column in ("width", "latency_ms"):
        try:
            value = float(record.get(column, ""))
        except ValueError:
            raise fail(column, f"not a number: {record.get(column)!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise fail(column, f"must be a finite number > 0, got {record.get(column)!r}")
        number[column] = value
    try:
        resolution = int(record.get("resolution", ""))
    except ValueError:
        raise fail("resolution", f"not a whole number: {record.get('resolution')!r}") from None
    if not 8 <= resolution <= 8192:
        raise fail("resolution", f"must be from 8 to 8192, got {resolution}")
    precision = record.get("precision") or None
    if precision is not None and precision not in PRECISIONS:
        raise fail("precision", f"unknown precision {precision!r}; valid: "
                                f"{', '.join(PRECISIONS)}")
    batch_text = record.get("batch") or "1"
    try:
        batch = int(batch_text)
    except ValueError:
        raise fail("batch", f"not a whole number: {batch_text!r}") from None
    if batch < 1:
        raise fail("batch", f"must be >= 1, got {batch}")
    return Measurement(model=model, width=number["width"], resolution=resolution,
                       latency_ms=number["latency_ms"], precision=precision,
                       device=record.get("device") or None, batch=batch,
                       source=record.get("source", ""), row=line)


# -- parameters -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Param:
    path: str
    lower: float
    upper: float
    start: float
    grid: tuple[int, ...] = ()  # a discrete (geometry) parameter: the values to search


#: Values searched for a discrete geometry parameter: powers of two (and 0 for fill_rows).
_GEOMETRY_GRID = tuple(2 ** i for i in range(15))


class ParameterSpace:
    """The named free parameters of a profile, their bounds and how to set them."""

    def __init__(self, base: HardwareProfile, free: Sequence[str]):
        if not free:
            raise UsageError("nothing to fit: the profile lists no free parameters "
                             "(its [fit] free list) and none were given")
        self.base = base
        self.params = [self._param(path) for path in free]

    def _param(self, path: str) -> _Param:
        base = self.base
        head, _, rest = path.partition(".")
        if head in ("efficiency", "memory_efficiency") and rest:
            kinds = rest.split("+")
            of = base.efficiency_of if head == "efficiency" else base.memory_efficiency_of
            start = min(of(k) for k in kinds)
            return _Param(path, _MIN_EFFICIENCY, 1.0, start)
        if head == "overhead" and rest in ("per_kernel_s", "per_inference_s"):
            start = getattr(base.overhead, rest)
            return _Param(path, 0.0, _MAX_OVERHEAD_S, start)
        if path == "overhead.per_weight_byte_s":
            # At most 1e-8 s/byte: no runtime repacks weights slower than 100 MB/s.
            return _Param(path, 0.0, 1e-8, base.overhead.per_weight_byte_s)
        if head == "overhead" and rest.startswith("per_kind_s."):
            kinds = rest[len("per_kind_s."):].split("+")
            start = min(base.overhead.per_kind_s.get(k, 0.0) for k in kinds)
            return _Param(path, 0.0, _MAX_OVERHEAD_S, start)
        if head == "peak_macs_per_s" and rest in base.peak_macs_per_s:
            # The datasheet peak is an upper bound; a fit may find the runtime reaches less.
            peak = base.peak_macs_per_s[rest]  # type: ignore[index]
            return _Param(path, peak / 1000, peak, peak)
        if path == "dram.bandwidth_bytes_per_s":
            bw = base.dram.bandwidth_bytes_per_s
            return _Param(path, bw / 1000, bw, bw)
        if head == "geometry" and rest in type(base.geometry).model_fields:
            grid = ((0,) if rest == "fill_rows" else ()) + _GEOMETRY_GRID
            start = getattr(base.geometry, rest)
            return _Param(path, min(grid), max(grid), start, grid)
        if head == "memory" and rest.endswith(".capacity_bytes"):
            name = rest.rsplit(".", 1)[0]
            for level in base.memory:
                if level.name == name:
                    grid = tuple(2 ** i for i in range(14, 27))  # 16 KiB .. 64 MiB
                    return _Param(path, grid[0], grid[-1], level.capacity_bytes, grid)
        if head == "memory" and rest.endswith(".bandwidth_bytes_per_s"):
            name = rest.rsplit(".", 1)[0]
            for level in base.memory:
                if level.name == name and level.bandwidth_bytes_per_s:
                    bw = level.bandwidth_bytes_per_s
                    return _Param(path, bw / 1000, bw, bw)
        raise ProfileError(f"{base.path or base.name}: field 'fit.free': cannot fit {path!r}; "
                           f"free parameters are efficiency.KIND[+KIND...], "
                           f"memory_efficiency.KIND[+KIND...], "
                           f"peak_macs_per_s.PRECISION, "
                           f"overhead.per_kernel_s, overhead.per_inference_s, "
                           f"overhead.per_weight_byte_s, "
                           f"overhead.per_kind_s.KIND[+KIND...], "
                           f"dram.bandwidth_bytes_per_s, memory.NAME.bandwidth_bytes_per_s, "
                           f"memory.NAME.capacity_bytes, "
                           f"geometry.FIELD (searched over powers of two)")

    # Optimisation runs on a transformed vector of the continuous parameters: log for
    # multiplicative ones, a scaled linear value for overheads (which may be exactly 0).
    # Discrete (geometry) parameters are searched over their grid around it.
    @property
    def continuous(self) -> list[_Param]:
        return [p for p in self.params if not p.grid]

    @property
    def discrete(self) -> list[_Param]:
        return [p for p in self.params if p.grid]

    def _is_log(self, p: _Param) -> bool:
        return not p.path.startswith("overhead.")

    def _scale(self, p: _Param) -> float:
        # Overheads are optimised in ms (and weight-byte costs in ns/byte) so that all the
        # transformed parameters are of order 1.
        return 1e9 if p.path == "overhead.per_weight_byte_s" else 1e3

    def to_x(self, values: Sequence[float]) -> np.ndarray:
        """The continuous part of a full value vector, transformed."""
        return np.array([math.log(v) if self._is_log(p) else v * self._scale(p)
                         for p, v in zip(self.params, values, strict=True) if not p.grid])

    def from_x(self, x: np.ndarray, discrete: Sequence[float] = ()) -> list[float]:
        """A full value vector from transformed continuous values and discrete values."""
        xs = iter(x)
        ds = iter(discrete)
        out = []
        for p in self.params:
            if p.grid:
                out.append(float(next(ds)))
            else:
                v = next(xs)
                out.append(math.exp(v) if self._is_log(p) else v / self._scale(p))
        return out

    def bounds_x(self) -> tuple[np.ndarray, np.ndarray]:
        cont = self.continuous
        lo = [math.log(p.lower) if self._is_log(p) else p.lower * self._scale(p) for p in cont]
        hi = [math.log(p.upper) if self._is_log(p) else p.upper * self._scale(p) for p in cont]
        return np.array(lo), np.array(hi)

    def discrete_choices(self) -> list[tuple[int, ...]]:
        """Every combination of the discrete parameters' grids."""
        import itertools

        return list(itertools.product(*(p.grid for p in self.discrete))) or [()]

    def start_values(self) -> list[float]:
        return [min(max(p.start, p.lower), p.upper) for p in self.params]


    def apply(self, values: Sequence[float], source: str = "fitted") -> HardwareProfile:
        """The base profile with ``values`` set and ``source`` recorded for each of them."""
        data = self.base.model_dump(exclude={"path"})
        sources = dict(data["sources"])
        for path in self.source_keys():
            sources[path] = source
        data["sources"] = sources
        for p, v in zip(self.params, values, strict=True):
            head, _, rest = p.path.partition(".")
            if head in ("efficiency", "memory_efficiency"):
                eff = dict(data[head])
                for kind in rest.split("+"):
                    eff[kind] = min(1.0, float(v))
                data[head] = eff
            elif head == "overhead" and rest.startswith("per_kind_s."):
                per_kind = dict(data["overhead"]["per_kind_s"])
                for kind in rest[len("per_kind_s."):].split("+"):
                    per_kind[kind] = max(0.0, float(v))
                data["overhead"] = {**data["overhead"], "per_kind_s": per_kind}
            elif head == "overhead":
                data["overhead"] = {**data["overhead"], rest: max(0.0, float(v))}
            elif head == "dram":
                data["dram"] = {**data["dram"], "bandwidth_bytes_per_s": float(v)}
            elif head == "geometry":
                data["geometry"] = {**data["geometry"], rest: int(v)}
            elif head == "peak_macs_per_s":
                data["peak_macs_per_s"] = {**data["peak_macs_per_s"], rest: float(v)}
            else:
                name, field_name = rest.rsplit(".", 1)
                data["memory"] = tuple({**lv, field_name: float(v)}
                                       if lv["name"] == name else lv for lv in data["memory"])
        return HardwareProfile.model_validate(data)

    def source_keys(self) -> list[str]:
        """The [sources] keys the free parameters live under."""
        keys = []
        for p in self.params:
            head, _, rest = p.path.partition(".")
            if head in ("efficiency", "memory_efficiency"):
                keys.extend(f"{head}.{kind}" for kind in rest.split("+"))
            elif rest.startswith("per_kind_s."):
                keys.extend(f"overhead.per_kind_s.{kind}"
                            for kind in rest[len("per_kind_s."):].split("+"))
            elif head == "memory":
                keys.append(f"memory.{rest}")
            else:
                keys.append(p.path)
        return keys

    def fast_apply(self, values: Sequence[float]) -> HardwareProfile:
        """Like :meth:`apply` without re-validation (the values are within bounds)."""
        profile = self.base
        updates: dict[str, Any] = {}
        eff = dict(profile.efficiency)
        memory_eff = dict(profile.memory_efficiency)
        overhead = profile.overhead
        dram = profile.dram
        geometry = profile.geometry
        memory = list(profile.memory)
        for p, v in zip(self.params, values, strict=True):
            head, _, rest = p.path.partition(".")
            if head in ("efficiency", "memory_efficiency"):
                target = eff if head == "efficiency" else memory_eff
                for kind in rest.split("+"):
                    target[kind] = min(1.0, float(v))
            elif head == "overhead" and rest.startswith("per_kind_s."):
                per_kind = dict(overhead.per_kind_s)
                for kind in rest[len("per_kind_s."):].split("+"):
                    per_kind[kind] = max(0.0, float(v))
                overhead = overhead.model_copy(update={"per_kind_s": per_kind})
            elif head == "overhead":
                overhead = overhead.model_copy(update={rest: max(0.0, float(v))})
            elif head == "dram":
                dram = dram.model_copy(update={"bandwidth_bytes_per_s": float(v)})
            elif head == "geometry":
                geometry = geometry.model_copy(update={rest: int(v)})
            elif head == "peak_macs_per_s":
                peaks = {**(updates.get("peak_macs_per_s") or profile.peak_macs_per_s),
                         rest: float(v)}
                updates["peak_macs_per_s"] = peaks
            else:
                name, field_name = rest.rsplit(".", 1)
                memory = [lv.model_copy(update={field_name: float(v)})
                          if lv.name == name else lv for lv in memory]
        updates.update(efficiency=eff, memory_efficiency=memory_eff, overhead=overhead,
                       dram=dram, memory=tuple(memory), geometry=geometry)
        return profile.model_copy(update=updates)


# -- statistics -----------------------------------------------------------------------------------

def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN with fewer than 2 points."""
    from scipy.stats import spearmanr

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    return float(spearmanr(a, b).statistic)


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b rank correlation; NaN with fewer than 2 points."""
    from scipy.stats import kendalltau

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    return float(kendalltau(a, b).statistic)


# -- the fit --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitResult:
    """A fitted profile and how well it explains the measurements."""

    profile: HardwareProfile
    measurements: tuple[Measurement, ...]
    free: tuple[str, ...]
    values: tuple[float, ...]
    predicted_ms: tuple[float, ...]
    loo_predicted_ms: tuple[float, ...] = ()
    start_values: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def measured_ms(self) -> list[float]:
        return [m.latency_ms for m in self.measurements]

    @property
    def errors_pct(self) -> list[float]:
        return [100 * (p / m - 1) for p, m in zip(self.predicted_ms, self.measured_ms,
                                                    strict=True)]

    @property
    def loo_errors_pct(self) -> list[float]:
        return [100 * (p / m - 1) for p, m in zip(self.loo_predicted_ms, self.measured_ms,
                                                    strict=True)]

    @property
    def median_abs_error_pct(self) -> float:
        return float(np.median(np.abs(self.errors_pct)))

    @property
    def loo_median_abs_error_pct(self) -> float:
        return float(np.median(np.abs(self.loo_errors_pct))) if self.loo_predicted_ms \
            else math.nan

    @property
    def spearman(self) -> float:
        return spearman(self.measured_ms, self.predicted_ms)

    @property
    def loo_spearman(self) -> float:
        return spearman(self.measured_ms, self.loo_predicted_ms) if self.loo_predicted_ms \
            else math.nan

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i, m in enumerate(self.measurements):
            row = {"model": m.model, "width": m.width, "resolution": m.resolution,
                   "precision": m.precision or self.profile.default_precision,
                   "measured_ms": m.latency_ms, "predicted_ms": self.predicted_ms[i],
                   "error_pct": self.errors_pct[i]}
            if self.loo_predicted_ms:
                row["loo_predicted_ms"] = self.loo_predicted_ms[i]
                row["loo_error_pct"] = self.loo_errors_pct[i]
            out.append(row)
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "hardware": self.profile.name,
            "models": len(self.measurements),
            "free": list(self.free),
            "values": dict(zip(self.free, self.values, strict=True)),
            "median_abs_error_pct": self.median_abs_error_pct,
            "spearman": self.spearman,
            "loo_median_abs_error_pct": self.loo_median_abs_error_pct,
            "loo_spearman": self.loo_spearman,
        }


class _Problem:
    """The measured models as one kernel table in the base profile's kernel view, priced by
    :func:`roofline.core.engine.evaluate` (each at its measured precision, unsupported kernels
    on the fallback device as everywhere else)."""

    def __init__(self, base: HardwareProfile, measurements: Sequence[Measurement],
                 graphs: Sequence[Any], io_on_chip: bool = False):
        self.base = base
        self.measured = np.array([m.latency_ms for m in measurements]) / 1e3
        self.precisions = [m.precision for m in measurements]
        table = KernelSet(graphs).table(base.kernel_view())
        self.table = _io_on_chip(table) if io_on_chip else table
        evaluate(self.table, base, self.precisions)  # every precision must be the profile's

    def predict(self, profile: HardwareProfile) -> np.ndarray:
        return evaluate(self.table, profile, self.precisions).graph_latency_s


def _least_squares(problem: _Problem, space: ParameterSpace, rows: np.ndarray) -> list[float]:
    """Best full value vector on ``rows``: continuous parameters by bounded least squares,
    discrete ones by trying every grid combination."""
    from scipy.optimize import least_squares

    lo, hi = space.bounds_x()
    measured = problem.measured[rows]
    best_cost, best_values = math.inf, space.start_values()
    for choice in space.discrete_choices():

        def residuals(x: np.ndarray, choice: tuple[int, ...] = choice) -> np.ndarray:
            profile = space.fast_apply(space.from_x(x, choice))
            pred = problem.predict(profile)[rows]
            res = pred / measured - 1.0
            return np.where(np.isfinite(res), res, 10.0)

        if not len(lo):
            cost = 0.5 * float(np.sum(residuals(np.array([])) ** 2))
            if cost < best_cost:
                best_cost, best_values = cost, space.from_x(np.array([]), choice)
            continue
        # Two starts (the base profile's values and the middle of the box) guard against a
        # poor local minimum.
        starts = [space.to_x(space.start_values()), (lo + hi) / 2]
        for x0 in starts:
            x0 = np.clip(x0, lo + 1e-12 * (hi - lo), hi - 1e-12 * (hi - lo))
            result = least_squares(residuals, x0, bounds=(lo, hi), method="trf",
                                   x_scale="jac", max_nfev=400)
            if result.cost < best_cost:
                best_cost, best_values = float(result.cost), space.from_x(result.x, choice)
    return best_values


def fit_profile(base: HardwareProfile, measurements: Sequence[Measurement],
                free: Sequence[str] | None = None, *, graphs: Sequence[Any] | None = None,
                leave_one_out: bool = True, fit_info: dict[str, Any] | None = None,
                source: str = "fitted to measured latencies",
                io_on_chip: bool = False) -> FitResult:
    """Fit ``free`` parameters of ``base`` to ``measurements`` by bounded least squares on
    relative error; with ``leave_one_out``, also predict each measurement from a fit that
    did not see it. ``source`` is recorded in the profile's [sources] for every fitted value.

    ``graphs`` (op or kernel view, one per measurement) are traced when not given.
    ``io_on_chip``: the measurements are single layers timed in a loop on the same tensors,
    whose inputs and outputs stay in cache (see :func:`roofline.core.engine.io_on_chip`).
    """
    if free is None:
        free = list(base.fit.free) if base.fit else []
    space = ParameterSpace(base, free)
    if graphs is None:
        graphs = trace_measurements(measurements)
    problem = _Problem(base, measurements, graphs, io_on_chip)
    everything = np.arange(len(measurements))
    values = _least_squares(problem, space, everything)
    fitted = space.apply(values, source)
    predicted = problem.predict(fitted)
    if not np.all(np.isfinite(predicted)):
        bad = [measurements[i].label for i in np.flatnonzero(~np.isfinite(predicted))]
        raise RooflineError(f"{base.name} cannot run {', '.join(bad)} (unsupported op kinds); "
                            f"remove them from the measurements")
    loo: list[float] = []
    if leave_one_out and len(measurements) >= 3:
        for i in everything:
            rest = everything[everything != i]
            profile_i = space.apply(_least_squares(problem, space, rest))
            loo.append(float(problem.predict(profile_i)[i]) * 1e3)
    if fit_info is not None:
        fitted = fitted.with_changes(fit=fit_info)
    return FitResult(profile=fitted, measurements=tuple(measurements), free=tuple(free),
                     values=tuple(values), predicted_ms=tuple(float(p) * 1e3
                                                              for p in predicted),
                     loo_predicted_ms=tuple(loo),
                     start_values=tuple(space.start_values()))


def trace_measurements(measurements: Sequence[Measurement]) -> list[Any]:
    """Op-view graphs of every measured variant (each distinct variant traced once)."""
    from ..sources.variant import Variant

    cache: dict[tuple[str, float, int, int], Any] = {}
    graphs = []
    for m in measurements:
        key = (m.model, m.width, m.resolution, m.batch)
        if key not in cache:
            cache[key] = Variant(m.model, m.width, m.resolution, m.batch).validate().trace()
        graphs.append(cache[key])
    return graphs
