"""Fitting a hardware profile's free parameters to measured whole-model latencies.

Owns reading measurement files (validated row by row), the bounded least-squares fit on
relative error, and its report: per-model error, median absolute error, Spearman rank
correlation and leave-one-out error. Imports neither torch nor plotly; models are traced
through ``roofline.sources.variant`` only when measurements name them.

Free parameters are named by field path, as in a profile's ``[fit] free`` list:

* ``efficiency.KIND`` or ``efficiency.KIND1+KIND2+...`` (several kinds tied to one value),
  and ``memory_efficiency.KIND...`` likewise, bounded to (0, 1];
* ``overhead.per_kernel_s``, ``overhead.per_inference_s`` and ``overhead.per_kind_s.KIND``
  (or ``...KIND1+KIND2``), bounded to [0, 50 ms]; ``overhead.per_weight_byte_s`` and
  ``overhead.per_pool_output_s`` likewise from 0;
* ``dram.bandwidth_bytes_per_s``, ``memory.NAME.bandwidth_bytes_per_s`` and
  ``peak_macs_per_s.PRECISION``, bounded above by the base profile's value (the datasheet), so
  a fit can never claim more bandwidth or compute than the hardware has;
* ``memory.NAME.capacity_bytes`` and ``geometry.FIELD``, searched over powers of two.

The fit uses the kernel view (fused kernels), the convention the engine predicts with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.engine import KernelSet, evaluate
from ..core.engine import io_on_chip as _io_on_chip
from ..core.fields import FitSpec, fit_spec, source_key, values_by_path, with_values
from ..core.hardware import HardwareProfile
from ..errors import ProfileError, RooflineError, UsageError
from .measurements import Measurement, load_measurements, trace_measurements

__all__ = ["FitResult", "fit_profile", "default_free", "spearman", "kendall", "ParameterSpace",
           # the measurements a fit reads (roofline.fitting.measurements), for its callers
           "Measurement", "load_measurements", "trace_measurements"]



# -- parameters -----------------------------------------------------------------------------------

class Coordinates:
    """How a fit moves its parameters (``params``, a list of FitSpec): the vector it optimises,
    bounds, starts and the grids of the discrete ones. Shared by one profile's
    :class:`ParameterSpace` and a joint fit's (``roofline.fitting.joint``)."""

    params: list[FitSpec]

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

    def fast_apply(self, values: Sequence[float]) -> Any:
        """What a fit prices at ``values``: a profile, or a joint fit's profiles."""
        raise NotImplementedError


class ParameterSpace(Coordinates):
    """The named free parameters of a profile: their bounds, how a fit moves them, and how to
    set them. Which fields may be fitted and how is ``roofline.core.fields``' table."""

    def __init__(self, base: HardwareProfile, free: Sequence[str], *, priors: bool = True):
        if not free:
            raise UsageError("nothing to fit: the profile lists no free parameters "
                             "(its [fit] free list) and none were given")
        self.base = base
        self.params = [fit_spec(base, path) for path in free]
        if priors:  # a prior's floor is a hard bound
            self.params = [self._floored(p) for p in self.params]

    def _stated(self, p: FitSpec) -> Any:
        priors = self.base.fit.priors if self.base.fit else {}
        return priors.get(p.path)

    def _floored(self, p: FitSpec) -> FitSpec:
        stated = self._stated(p)
        if stated is None or stated.floor is None:
            return p
        floor = stated.floor * (p.base_value if stated.relative else 1.0)
        if floor >= p.upper:
            raise ProfileError(f"{self.base.path or self.base.name}: field "
                               f"'fit.priors.{p.path}': floor {floor:.4g} is not below the "
                               f"upper bound {p.upper:.4g}")
        lower = max(p.lower, floor)
        return dataclasses.replace(p, lower=lower, start=min(max(p.start, lower), p.upper))

    def prior(self, p: FitSpec) -> tuple[float, float]:
        """(mean, standard deviation) of ``p``'s prior in fit coordinates: the profile's own
        ``[fit.priors]`` entry, else the field's generic prior."""
        stated = self._stated(p)
        if stated is not None:
            typical, spread, relative = stated.typical, stated.spread, stated.relative
        elif p.generic_prior is not None:
            typical, spread, relative = p.generic_prior
        else:  # pragma: no cover - every continuous field has a generic prior
            raise ProfileError(f"no prior for {p.path}")
        value = typical * (p.base_value if relative else 1.0)
        if p.transform == "log":
            if value <= 0 or spread <= 1:
                raise ProfileError(f"{self.base.path or self.base.name}: field "
                                   f"'fit.priors.{p.path}': a log-scale prior needs typical "
                                   f"> 0 and spread > 1, got {typical:g}, {spread:g}")
            return math.log(value), math.log(spread)
        if spread <= 0:
            raise ProfileError(f"{self.base.path or self.base.name}: field "
                               f"'fit.priors.{p.path}': spread must be > 0")
        return value * p.scale, spread * p.scale

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

def default_free(base: HardwareProfile) -> list[str]:
    """The free parameters of a fit of ``base``: its ``[fit] free`` list, else what a fit
    moves on its kind of device (``roofline.core.fields.DEFAULT_FREE``)."""
    from ..core.fields import DEFAULT_FREE

    if base.fit is not None and base.fit.free:
        return list(base.fit.free)
    return list(DEFAULT_FREE.get(base.kind, ()))


def _finite(value: float) -> float | None:
    """None for NaN (JSON has no NaN): a statistic with too few measurements to compute."""
    return None if math.isnan(value) else float(value)


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


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
    covariance: tuple[tuple[float, ...], ...] = ()  # continuous free parameters, fit coords
    flags: tuple[str, ...] = field(default=())
    used_priors: bool = False

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

    def fit_record(self, base: HardwareProfile, **stated: Any) -> dict[str, Any]:
        """The profile's ``[fit]`` table: what the base profile stated about its fit (priors,
        error allowances, the rows it uses), what this fit found (free parameters, posterior
        covariance, flags, how well it fits) and ``stated`` (measurements, command, date)."""
        record: dict[str, Any] = base.fit.model_dump() if base.fit else {
            "measurements": "", "command": ""}
        record.update(free=list(self.free), models=len(self.measurements),
                      median_abs_error_pct=round(self.median_abs_error_pct, 2),
                      spearman=_round(self.spearman),
                      covariance=[[float(f"{v:.6g}") for v in row] for row in self.covariance],
                      flags=list(self.flags))
        record.pop("loo_median_abs_error_pct", None)
        record.pop("loo_spearman", None)
        record.pop("joint", None)  # a refit on its own is no longer a joint fit
        if self.loo_predicted_ms:
            record["loo_median_abs_error_pct"] = round(self.loo_median_abs_error_pct, 2)
            record["loo_spearman"] = _round(self.loo_spearman)
        record.update(stated)
        return record

    def summary(self) -> dict[str, Any]:
        return {
            "hardware": self.profile.name,
            "models": len(self.measurements),
            "free": list(self.free),
            "values": dict(zip(self.free, self.values, strict=True)),
            "median_abs_error_pct": _finite(self.median_abs_error_pct),
            "spearman": _finite(self.spearman),
            "loo_median_abs_error_pct": _finite(self.loo_median_abs_error_pct),
            "loo_spearman": _finite(self.loo_spearman),
            "flags": list(self.flags),
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


#: The relative error (natural-log units) the engine is allowed on a measured model beyond the
#: rounding of the published figure, when the profile's [fit] does not say: it keeps a handful
#: of precisely printed latencies from outweighing every prior. Chosen on the held-out splits
#: of benchmarks/bench_fit.py.
MODEL_SIGMA = 0.08


@dataclass(frozen=True)
class _Objective:
    """What a fit minimises: each measurement's log error over its standard deviation
    (rounding and the engine's own error), plus each continuous parameter's distance from its
    prior in standard deviations. Without priors, the plain relative error of each row."""

    sigma: np.ndarray  # per measurement (ln units); empty: unweighted relative errors
    prior_mean: np.ndarray  # per prior term (one per continuous parameter), fit coordinates
    prior_sd: np.ndarray
    # What each prior term is about, as a linear map of the fit vector (None: term i is about
    # parameter i). A joint fit's devices keep their priors on their own fields, which are
    # sums of its shared coordinates (roofline.fitting.joint).
    prior_map: np.ndarray | None = None
    # Without priors: each row's log error instead of its relative error, which weighs an
    # over-prediction and an under-prediction by the same factor alike (p / m - 1 lies in
    # (-1, inf), so least squares on it leans to predicting low).
    log_errors: bool = False
    # Without priors: a robust loss (scipy's soft_l1, rho(z) = 2 (sqrt(1 + z^2) - 1) of the
    # residual over this scale), quadratic for residuals well below the scale and linear above
    # it, so a few rows the engine does not model (a 3-channel stem, a 2x2-pixel convolution,
    # GELU's arithmetic) do not drag an efficiency that serves all the others. None: plain
    # least squares. soft_l1 is convex: the fit keeps one minimum.
    robust_scale: float | None = None

    @property
    def uses_priors(self) -> bool:
        return self.prior_sd.size > 0

    def prior_x(self) -> np.ndarray:
        """The fit vector the priors alone favour (where the first start of a fit is)."""
        if self.prior_map is None:
            return self.prior_mean
        weighted = self.prior_map / self.prior_sd[:, None]
        return np.linalg.lstsq(weighted, self.prior_mean / self.prior_sd, rcond=None)[0]

    def prior_sd_x(self) -> np.ndarray:
        """Each fit coordinate's standard deviation under the priors alone."""
        if self.prior_map is None:
            return self.prior_sd
        weighted = self.prior_map / self.prior_sd[:, None]
        return np.sqrt(np.maximum(np.diag(np.linalg.pinv(weighted.T @ weighted)), 0.0))

    def residuals(self, predicted: np.ndarray, measured: np.ndarray, rows: np.ndarray,
                  x: np.ndarray) -> np.ndarray:
        if not self.uses_priors:
            with np.errstate(divide="ignore", invalid="ignore"):
                res = np.log(predicted / measured) if self.log_errors \
                    else predicted / measured - 1.0
            return np.where(np.isfinite(res), res, 10.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = np.log(predicted / measured) / self.sigma[rows]
        res = np.where(np.isfinite(res), res, 1e3)
        about = x if self.prior_map is None else self.prior_map @ x
        return np.concatenate([res, (about - self.prior_mean) / self.prior_sd])


def _objective(space: ParameterSpace, measurements: Sequence[Measurement],
               priors: bool, log_errors: bool = False,
               robust_scale: float | None = None) -> _Objective:
    if not priors:
        return _Objective(np.zeros(0), np.zeros(0), np.zeros(0), log_errors=log_errors,
                          robust_scale=robust_scale)
    fit = space.base.fit
    model_sigma = fit.model_sigma if fit is not None and fit.model_sigma else MODEL_SIGMA
    sigma = np.sqrt(np.array([m.rounding_sd for m in measurements]) ** 2 + model_sigma ** 2)
    means, sds = [], []
    for p in space.continuous:
        mean, sd = space.prior(p)
        means.append(mean)
        sds.append(sd)
    return _Objective(sigma, np.array(means), np.array(sds))


@dataclass
class _Best:
    values: list[float]
    cost: float = math.inf
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    jac: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    choice: tuple[int, ...] = ()
    # cost of the best continuous fit at every grid choice (for the cliff flags)
    by_choice: dict[tuple[int, ...], float] = field(default_factory=dict)


def _least_squares(problem: Any, space: Coordinates, rows: np.ndarray,
                   objective: _Objective) -> _Best:
    """The best full value vector on ``rows``: continuous parameters by bounded least squares
    on ``objective``, discrete ones by trying every grid combination. ``problem`` prices what
    ``space.fast_apply`` makes (a :class:`_Problem`, or a joint fit's)."""
    from scipy.optimize import least_squares

    lo, hi = space.bounds_x()
    measured = problem.measured[rows]
    best = _Best(space.start_values())
    for choice in space.discrete_choices():

        def residuals(x: np.ndarray, choice: tuple[int, ...] = choice) -> np.ndarray:
            profile = space.fast_apply(space.from_x(x, choice))
            return objective.residuals(problem.predict(profile)[rows], measured, rows, x)

        if not len(lo):
            cost = 0.5 * float(np.sum(residuals(np.array([])) ** 2))
            best.by_choice[choice] = cost
            if cost < best.cost:
                best = _Best(space.from_x(np.array([]), choice), cost, np.zeros(0),
                             np.zeros((0, 0)), choice, best.by_choice)
            continue
        # Two starts (the base profile's values, or the priors' means, and the middle of the
        # box) guard against a poor local minimum.
        first = objective.prior_x() if objective.uses_priors else space.to_x(
            space.start_values())
        choice_cost = math.inf
        for x0 in (first, (lo + hi) / 2):
            x0 = np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
            robust = {"loss": "soft_l1", "f_scale": objective.robust_scale} \
                if objective.robust_scale else {}
            result = least_squares(residuals, x0, bounds=(lo, hi), method="trf",
                                   x_scale="jac", max_nfev=400, **robust)
            choice_cost = min(choice_cost, float(result.cost))
            if result.cost < best.cost:
                best = _Best(space.from_x(result.x, choice), float(result.cost), result.x,
                             result.jac, choice, best.by_choice)
        best.by_choice[choice] = choice_cost
    return best


def _covariance(n: int, best: _Best, objective: _Objective) -> np.ndarray:
    """The posterior covariance of the ``n`` continuous fit coordinates (Laplace: the inverse
    of JᵀJ at the optimum); zeros without priors."""
    if n and objective.uses_priors and best.jac.size:
        return np.linalg.pinv(best.jac.T @ best.jac)
    return np.zeros((n, n))


def _posterior(space: ParameterSpace, best: _Best, objective: _Objective
               ) -> tuple[np.ndarray, list[str]]:
    """The posterior covariance of the continuous parameters and the flags a user should read
    before trusting the fit."""
    cov = _covariance(len(space.continuous), best, objective)
    return cov, _flags(space, best, cov, objective.prior_sd if objective.uses_priors else None)


def _flags(space: Coordinates, best: _Best, cov: np.ndarray,
           prior_sd: np.ndarray | None) -> list[str]:
    """What a user should read before trusting a fit at ``best`` (in ``space``'s coordinates)
    with posterior covariance ``cov``: parameters at a bound, parameters the measurements
    barely constrain (posterior spread near ``prior_sd``, per continuous parameter; None
    without priors) and cliffs among the discrete ones."""
    flags: list[str] = []
    cont = space.continuous
    lo, hi = space.bounds_x()
    for i, p in enumerate(cont):
        x = best.x[i] if best.x.size else math.nan
        span = hi[i] - lo[i]
        value = space.from_x(best.x, best.choice)[space.params.index(p)] if best.x.size \
            else math.nan
        if math.isfinite(x) and x <= lo[i] + 1e-6 * span and not (
                p.transform == "linear" and p.lower == 0):  # a fixed cost of 0 is physical
            flags.append(f"{p.path} is at its lower bound ({value:.3g}): the measurements "
                         f"push it below what physics allows; suspect the model, not the bound")
        elif math.isfinite(x) and x >= hi[i] - 1e-6 * span:
            flags.append(f"{p.path} is at its upper bound ({value:.3g})")
        if prior_sd is not None and cov.size:
            ratio = math.sqrt(max(cov[i, i], 0.0)) / prior_sd[i]
            if ratio > 0.8:
                flags.append(f"{p.path} is barely constrained by the measurements (posterior "
                             f"{ratio:.0%} of the prior's spread): predictions lean on its "
                             f"prior")
    for j, p in enumerate(space.discrete):
        near = sorted({c[j] for c, cost in best.by_choice.items()
                       if cost <= best.cost + 0.5 and c[j] != best.choice[j]})
        if near:
            shown = ", ".join(f"{v:g}" for v in near[:4])
            flags.append(f"{p.path} is a cliff: {best.choice[j]:g} fits best, but {shown} fit "
                         f"within one standard deviation; latency jumps where a model's "
                         f"tensors cross it")
    return flags


def _unstated_flags(base: HardwareProfile, free: Sequence[str],
                    graphs: Sequence[Any]) -> list[str]:
    """The flag of each efficiency a fit on this kind of device would move
    (``DEFAULT_FREE``) that this fit leaves neither free nor stated while the measured models
    have kernels of it: those kernels run at the full peak, and the free parameters absorb
    their error (ranges carry it as the field's generic prior). Kinds under 1 % of the
    models' MACs (a classifier's one linear layer) are not worth a note."""
    from ..core.fields import DEFAULT_FREE, expand, unstated

    models = list({id(g): g for g in graphs}.values())  # a model measured twice counts once
    flags = []
    for path in DEFAULT_FREE.get(base.kind, ()):
        left = unstated(base, path, free)
        if left is None:
            continue
        kinds = {q.rpartition(".")[2] for q in expand(left)}
        layers = [layer for g in models for layer in g.layers if layer.kind.value in kinds]
        share = sum(layer.macs for layer in layers) / max(sum(g.macs for g in models), 1)
        if share < 0.01:
            continue
        flags.append(f"{left} is neither free nor stated: the measured models' "
                     f"{len(layers)} {'/'.join(sorted(kinds))} layers ({share:.0%} of their "
                     f"MACs) run at the full peak and the free parameters take up their "
                     f"error; free it or state it in [efficiency]")
    return flags


def _rounding_flag(measurements: Sequence[Measurement], predicted: np.ndarray,
                   measured: np.ndarray) -> list[str]:
    """The flag of a fit tighter than the rounding of its measurements (its in-sample error
    then says nothing), if it is."""
    if len(measurements) < 2:
        return []
    errors = np.log(predicted / measured)
    rounding = float(np.median([m.rounding_sd for m in measurements]))
    rms = float(np.sqrt(np.mean(errors ** 2)))
    if rounding > 0 and rms < rounding:
        return [f"the fit is tighter than the rounding of the measurements (rms error "
                f"{rms:.1%} against {rounding:.1%}): in-sample error says nothing; read the "
                f"leave-one-out error"]
    return []


def fit_profile(base: HardwareProfile, measurements: Sequence[Measurement],
                free: Sequence[str] | None = None, *, graphs: Sequence[Any] | None = None,
                leave_one_out: bool = True, fit_info: dict[str, Any] | None = None,
                source: str = "fitted to measured latencies",
                io_on_chip: bool = False, priors: bool = True,
                log_errors: bool = False, robust_scale: float | None = None) -> FitResult:
    """Fit ``free`` parameters of ``base`` to ``measurements``; with ``leave_one_out``, also
    predict each measurement from a fit that did not see it. ``source`` is recorded in the
    profile's [sources] for every fitted value.

    With ``priors`` (the default) the fit is a maximum a-posteriori one: each measurement's
    log error is weighed by its rounding and the engine's own error (:data:`MODEL_SIGMA`, or
    ``[fit] model_sigma``), and each parameter is held near its prior (``[fit.priors]``, else
    the field's generic one in ``roofline.core.fields``); the posterior covariance and the
    flags of a weak fit are returned. Without, plain least squares on relative error.

    ``log_errors`` (without priors): least squares on each row's log error, not its relative
    error; ``robust_scale`` (without priors): a robust loss at that scale of the error (see
    ``_Objective``).

    ``graphs`` (op or kernel view, one per measurement) are traced when not given.
    ``io_on_chip``: the measurements are single layers timed in a loop on the same tensors,
    whose inputs and outputs stay in cache (see :func:`roofline.core.engine.io_on_chip`).
    """
    if free is None:
        free = default_free(base)
    space = ParameterSpace(base, free, priors=priors)
    if graphs is None:
        graphs = trace_measurements(measurements)
    problem = _Problem(base, measurements, graphs, io_on_chip)
    if priors and robust_scale:
        raise ValueError("a robust loss is for fits without priors")
    objective = _objective(space, measurements, priors, log_errors, robust_scale)
    everything = np.arange(len(measurements))
    best = _least_squares(problem, space, everything, objective)
    values = best.values
    fitted = space.apply(values, source)
    predicted = problem.predict(fitted)
    if not np.all(np.isfinite(predicted)):
        bad = [measurements[i].label for i in np.flatnonzero(~np.isfinite(predicted))]
        raise RooflineError(f"{base.name} cannot run {', '.join(bad)} (unsupported op kinds); "
                            f"remove them from the measurements")
    covariance, flags = _posterior(space, best, objective)
    if objective.uses_priors:
        flags += _rounding_flag(measurements, predicted, problem.measured)
    flags += _unstated_flags(base, free, graphs)
    loo: list[float] = []
    if leave_one_out and len(measurements) >= 3:
        for i in everything:
            rest = everything[everything != i]
            profile_i = space.apply(_least_squares(problem, space, rest, objective).values)
            loo.append(float(problem.predict(profile_i)[i]) * 1e3)
    result = FitResult(profile=fitted, measurements=tuple(measurements), free=tuple(free),
                       values=tuple(values), predicted_ms=tuple(float(p) * 1e3
                                                                for p in predicted),
                       loo_predicted_ms=tuple(loo),
                       start_values=tuple(space.start_values()),
                       covariance=tuple(tuple(float(v) for v in row) for row in covariance),
                       flags=tuple(flags), used_priors=objective.uses_priors)
    # The fitted profile carries its fit (the covariance gives its predictions their range).
    record = fit_info if fit_info is not None else (
        result.fit_record(base) if objective.uses_priors else None)
    if record is not None:
        result = dataclasses.replace(result, profile=fitted.with_changes(fit=record))
    return result
