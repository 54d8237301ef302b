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
from ..core.fields import FitSpec, fit_spec, source_key, values_by_path, with_values
from ..core.hardware import HardwareProfile
from ..errors import MeasurementError, RooflineError, UsageError
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

class ParameterSpace:
    """The named free parameters of a profile: their bounds, how a fit moves them, and how to
    set them. Which fields may be fitted and how is ``roofline.core.fields``' table."""

    def __init__(self, base: HardwareProfile, free: Sequence[str]):
        if not free:
            raise UsageError("nothing to fit: the profile lists no free parameters "
                             "(its [fit] free list) and none were given")
        self.base = base
        self.params = [fit_spec(base, path) for path in free]

    # Optimisation runs on a transformed vector of the continuous parameters: log for
    # multiplicative ones, a scaled linear value for overheads (which may be exactly 0).
    # Discrete (grid) parameters are searched over their grid around it.
    @property
    def continuous(self) -> list[FitSpec]:
        return [p for p in self.params if p.transform != "grid"]

    @property
    def discrete(self) -> list[FitSpec]:
        return [p for p in self.params if p.transform == "grid"]

    def to_x(self, values: Sequence[float]) -> np.ndarray:
        """The continuous part of a full value vector, transformed."""
        return np.array([math.log(v) if p.transform == "log" else v * p.scale
                         for p, v in zip(self.params, values, strict=True)
                         if p.transform != "grid"])

    def from_x(self, x: np.ndarray, discrete: Sequence[float] = ()) -> list[float]:
        """A full value vector from transformed continuous values and discrete values."""
        xs = iter(x)
        ds = iter(discrete)
        out = []
        for p in self.params:
            if p.transform == "grid":
                out.append(float(next(ds)))
            else:
                v = next(xs)
                out.append(math.exp(v) if p.transform == "log" else v / p.scale)
        return out

    def bounds_x(self) -> tuple[np.ndarray, np.ndarray]:
        cont = self.continuous
        lo = [math.log(p.lower) if p.transform == "log" else p.lower * p.scale for p in cont]
        hi = [math.log(p.upper) if p.transform == "log" else p.upper * p.scale for p in cont]
        return np.array(lo), np.array(hi)

    def discrete_choices(self) -> list[tuple[int, ...]]:
        """Every combination of the discrete parameters' grids."""
        import itertools

        return list(itertools.product(*(p.grid for p in self.discrete))) or [()]

    def start_values(self) -> list[float]:
        return [p.start for p in self.params]

    def apply(self, values: Sequence[float], source: str = "fitted") -> HardwareProfile:
        """The base profile with ``values`` set and ``source`` recorded for each of them."""
        sources = {**self.base.sources, **{key: source for key in self.source_keys()}}
        cited = self.base.with_changes(sources=sources)
        return with_values(cited, values_by_path(self.params, values))

    def source_keys(self) -> list[str]:
        """The [sources] keys the free parameters live under."""
        keys: list[str] = []
        for p in self.params:
            for path in p.paths:
                key = path if path.startswith("memory.") else source_key(path, self.base)
                if key not in keys:
                    keys.append(key)
        return keys

    def fast_apply(self, values: Sequence[float]) -> HardwareProfile:
        """Like :meth:`apply` without re-validation (the values are within bounds)."""
        return with_values(self.base, values_by_path(self.params, values), validate=False)


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
