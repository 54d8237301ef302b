"""Fitting several devices at once, some of their parameters shared.

``roofline calibrate --hw A,B --share FIELD`` fits every device's free parameters in one
least-squares problem over all devices' measurements (each row its log error over its own
uncertainty, each device's priors as in a single fit, :mod:`roofline.fitting.calibrate`). Each
device keeps its own value of every free parameter except the shared ones, which take one value
across the devices: what a runtime decides is the same on every device that runs it (the XNNPACK
CPUs run depthwise convolutions through the same micro-kernels; the TF-Lite GPU delegates fuse
and launch alike).

What sharing means:

* ``FIELD`` shares the field's value. A field relative to a device's own peak or bandwidth
  (``efficiency.*``, ``int8_efficiency.*``, ``memory_efficiency.*``) then means the same fraction
  of each device's own peak, not the same MAC/s; an absolute one (overheads in seconds,
  bandwidths, peaks, capacities) the same absolute value, within every device's bounds (the
  intersection of their boxes, so every device's floor and datasheet ceiling still hold).
* ``A/B``, both fitted on a log scale (e.g. ``efficiency.depthwise_conv/efficiency.conv``),
  shares the ratio A ÷ B: each device keeps its own B, and its A is the shared ratio times its
  B (then held within A's own bounds).

Priors. Every device keeps its priors on its own fields. The priors on a shared field are
pooled, not multiplied: each device's prior on it counts 1/N (N devices share it). That is the
logarithmic opinion pool with equal weights: N devices stating one prior about one runtime give
that prior once (multiplying them would count one belief N times and make it √N times
narrower), and different priors give the precision-weighted mean of their means with the mean
of their precisions. For a ratio ``A/B``, each device's prior on its A counts 1/N and its prior
on B counts whole (B is its own).

The posterior covariance is the joint problem's (its Jacobian at the optimum); each device's
fitted profile keeps the part about its own free parameters, in its own coordinates (a linear
map of the joint ones), so the engine's latency ranges come out for it as for a single fit.
Leave-one-out leaves one measurement out of the joint problem at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.fields import FitSpec, expand
from ..core.hardware import HardwareProfile
from ..errors import RooflineError, UsageError
from .calibrate import (
    Coordinates,
    FitResult,
    Measurement,
    ParameterSpace,
    _Best,
    _covariance,
    _finite,
    _flags,
    _least_squares,
    _Objective,
    _objective,
    _Problem,
    _rounding_flag,
    _unstated_flags,
    default_free,
    trace_measurements,
)

__all__ = ["Share", "parse_share", "JointSpace", "JointFitResult", "fit_joint"]


@dataclass(frozen=True)
class Share:
    """One ``--share`` entry: a field whose value is shared, or with ``per`` the ratio
    ``field / per`` shared while each device keeps its own ``per``."""

    field: str
    per: str | None = None

    @property
    def text(self) -> str:
        return self.field if self.per is None else f"{self.field}/{self.per}"


def parse_share(text: str) -> Share:
    """``FIELD`` or ``FIELD/FIELD`` (a ratio)."""
    field, sep, per = str(text).strip().partition("/")
    field, per = field.strip(), per.strip()
    if not field or (sep and not per) or "/" in per:
        raise UsageError(f"--share {text!r}: expected FIELD or NUMERATOR/DENOMINATOR (a "
                         f"ratio), e.g. efficiency.depthwise_conv")
    if per and set(expand(field)) == set(expand(per)):
        raise UsageError(f"--share {text!r}: a ratio of a field to itself")
    return Share(field, per or None)


def _find(space: ParameterSpace, path: str) -> int | None:
    """The index of ``space``'s free parameter that sets exactly ``path``'s fields (ties match
    in any order: ``efficiency.conv+linear`` is ``efficiency.linear+conv``)."""
    wanted = set(expand(path))
    for i, p in enumerate(space.params):
        if set(p.paths) == wanted:
            return i
    return None


class JointSpace(Coordinates):
    """The coordinates of a joint fit: the shared ones first (in ``--share`` order), then each
    device's own, device by device. A device's continuous fit vector is a linear map of the
    joint one (:attr:`maps`): a shared value is one coordinate; a shared ratio's numerator is
    the ratio's coordinate plus the denominator's (log scale)."""

    def __init__(self, spaces: Sequence[ParameterSpace], shares: Sequence[Share],
                 names: Sequence[str]):
        self.spaces = list(spaces)
        self.names = list(names)
        self.shares = list(shares)
        if self.shares and len(self.spaces) < 2:
            raise UsageError("--share needs two or more devices to share between (--hw A,B)")
        owner: dict[tuple[int, int], int] = {}  # (device, parameter) -> the coordinate
        ratio: dict[tuple[int, int], tuple[int, int]] = {}  # numerator -> (coordinate, den)
        self.params: list[FitSpec] = []
        self.tied: set[tuple[int, int]] = set()  # device parameters whose prior is pooled
        for share in self.shares:
            numerators = self._locate(share, share.field)
            for d, j in enumerate(numerators):
                if (d, j) in owner or (d, j) in ratio:
                    raise UsageError(f"--share {share.text}: {share.field} is shared twice")
            k = len(self.params)
            if share.per is None:
                self.params.append(self._shared_value(share, numerators))
                owner.update({(d, j): k for d, j in enumerate(numerators)})
            else:
                denominators = self._locate(share, share.per)
                self.params.append(self._shared_ratio(share, numerators, denominators))
                ratio.update({(d, j): (k, denominators[d]) for d, j in enumerate(numerators)})
            self.tied.update(enumerate(numerators))
        for share in self.shares:  # a denominator must be a coordinate, not another ratio
            if share.per is not None:
                for d, j in enumerate(self._locate(share, share.per)):
                    if (d, j) in ratio:
                        raise UsageError(f"--share {share.text}: {share.per} is the numerator "
                                         f"of another shared ratio")
        for d, space in enumerate(self.spaces):
            for j, p in enumerate(space.params):
                if (d, j) not in owner and (d, j) not in ratio:
                    owner[(d, j)] = len(self.params)
                    self.params.append(dataclasses.replace(p, path=f"{self.names[d]}: {p.path}"))
        self.owner, self.ratio = owner, ratio
        column = {}
        for k, p in enumerate(self.params):
            if p.transform != "grid":
                column[k] = len(column)
        grid = {k: i for i, k in enumerate(k for k, p in enumerate(self.params)
                                           if p.transform == "grid")}
        #: per device, its continuous fit vector = map @ the joint one
        self.maps: list[np.ndarray] = []
        #: per device, the joint discrete index of each of its discrete parameters
        self.discrete_maps: list[list[int]] = []
        for d, space in enumerate(self.spaces):
            rows, picks = [], []
            for j, p in enumerate(space.params):
                if p.transform == "grid":
                    picks.append(grid[owner[(d, j)]])
                    continue
                row = np.zeros(len(column))
                if (d, j) in ratio:
                    k, den = ratio[(d, j)]
                    row[column[k]] += 1.0
                    row[column[owner[(d, den)]]] += 1.0
                else:
                    row[column[owner[(d, j)]]] = 1.0
                rows.append(row)
            self.maps.append(np.array(rows).reshape(len(rows), len(column)))
            self.discrete_maps.append(picks)

    def _locate(self, share: Share, path: str) -> list[int]:
        found = []
        for space, name in zip(self.spaces, self.names, strict=True):
            j = _find(space, path)
            if j is None:
                free = ", ".join(p.path for p in space.params)
                raise UsageError(f"--share {share.text}: {path} is not free in {name} (its "
                                 f"free parameters: {free}); a shared field must be free in "
                                 f"every device")
            if share.per is not None and space.params[j].transform != "log":
                raise UsageError(f"--share {share.text}: a ratio needs two fields fitted on a "
                                 f"log scale (efficiencies, bandwidths, peaks); {path} is not")
            found.append(j)
        return found

    def _shared_value(self, share: Share, index: Sequence[int]) -> FitSpec:
        specs = [space.params[j] for space, j in zip(self.spaces, index, strict=True)]
        lower, upper = max(p.lower for p in specs), min(p.upper for p in specs)
        first = specs[0]
        if first.transform == "grid":
            grid = tuple(v for v in first.grid if all(v in p.grid for p in specs))
            if not grid:
                raise UsageError(f"--share {share.text}: the devices have no grid value in "
                                 f"common")
            start = min(grid, key=lambda v: abs(v - first.start))
            return dataclasses.replace(first, path=share.text, lower=min(grid),
                                       upper=max(grid), start=start, grid=grid)
        if not lower < upper:
            raise UsageError(f"--share {share.text}: the devices' bounds do not overlap "
                             f"(lower {lower:.4g} is not below upper {upper:.4g})")
        if first.transform == "log":
            start = math.exp(float(np.mean([math.log(p.start) for p in specs])))
        else:
            start = float(np.mean([p.start for p in specs]))
        return dataclasses.replace(first, path=share.text, lower=lower, upper=upper,
                                   start=min(max(start, lower), upper))

    def _shared_ratio(self, share: Share, num: Sequence[int], den: Sequence[int]) -> FitSpec:
        pairs = [(space.params[i], space.params[j])
                 for space, i, j in zip(self.spaces, num, den, strict=True)]
        # The loosest box: each device's own numerator is then held within its own bounds.
        lower = min(a.lower / b.upper for a, b in pairs)
        upper = max(a.upper / b.lower for a, b in pairs)
        start = math.exp(float(np.mean([math.log(a.start / b.start) for a, b in pairs])))
        return FitSpec(share.text, (), "log", lower, upper, min(max(start, lower), upper),
                       unit="ratio")

    # -- from joint values to each device's -----------------------------------------------------

    def _split(self, values: Sequence[float]) -> tuple[np.ndarray, list[float]]:
        return self.to_x(values), [v for p, v in zip(self.params, values, strict=True)
                                   if p.transform == "grid"]

    def device_x(self, d: int, x: np.ndarray) -> np.ndarray:
        """Device ``d``'s continuous fit vector at joint ``x``, within its own bounds."""
        lo, hi = self.spaces[d].bounds_x()
        return np.clip(self.maps[d] @ x, lo, hi) if len(lo) else np.zeros(0)

    def device_choice(self, d: int, choice: Sequence[float]) -> tuple[int, ...]:
        return tuple(int(choice[k]) for k in self.discrete_maps[d])

    def device_values(self, d: int, values: Sequence[float]) -> list[float]:
        """Device ``d``'s full value vector (its own free parameters, in its own order)."""
        x, choice = self._split(values)
        return self.spaces[d].from_x(self.device_x(d, x), self.device_choice(d, choice))

    def fast_apply(self, values: Sequence[float]) -> tuple[HardwareProfile, ...]:
        return tuple(space.fast_apply(self.device_values(d, values))
                     for d, space in enumerate(self.spaces))

    def shared_values(self, values: Sequence[float]) -> list[float]:
        """The value of each share (a ratio's: the ratio)."""
        return [float(v) for v in values[:len(self.shares)]]


class _JointProblem:
    """Every device's measured models, priced by its own profile, as one row vector."""

    def __init__(self, problems: Sequence[_Problem]):
        self.problems = list(problems)
        sizes = [len(p.measured) for p in self.problems]
        self.measured = np.concatenate([p.measured for p in self.problems])
        self.device = np.repeat(np.arange(len(sizes)), sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def predict(self, profiles: Sequence[HardwareProfile]) -> np.ndarray:
        return np.concatenate([p.predict(hw) for p, hw in zip(self.problems, profiles,
                                                                strict=True)])


def _joint_objective(space: JointSpace, measurements: Sequence[Sequence[Measurement]],
                     priors: bool) -> _Objective:
    """Each device's rows weighed as in its own fit; each device's prior on each of its
    continuous fields, as a term on the joint vector, a pooled one counting 1/N."""
    if not priors:
        return _Objective(np.zeros(0), np.zeros(0), np.zeros(0))
    sigma, means, sds, rows = [], [], [], []
    n = len(space.spaces)
    for d, (sub, rows_d) in enumerate(zip(space.spaces, measurements, strict=True)):
        sigma.append(_objective(sub, rows_d, True).sigma)
        jc = 0
        for j, p in enumerate(sub.params):
            if p.transform == "grid":
                continue
            mean, sd = sub.prior(p)
            means.append(mean)
            sds.append(sd * math.sqrt(n) if (d, j) in space.tied else sd)
            rows.append(space.maps[d][jc])
            jc += 1
    width = len(space.continuous)
    return _Objective(np.concatenate(sigma), np.array(means), np.array(sds),
                      np.array(rows).reshape(len(rows), width))


@dataclass(frozen=True)
class JointFitResult:
    """A joint fit: each device's :class:`FitResult` (its own rows, values, posterior part,
    flags and leave-one-out predictions from the joint refits) and what was shared."""

    fits: tuple[FitResult, ...]
    shares: tuple[str, ...]
    shared_values: tuple[float, ...]  # per share, its value (a ratio's: the ratio)
    # per share, each device's value of the shared field (a ratio's numerator differs)
    device_values: tuple[tuple[float, ...], ...]
    labels: tuple[str, ...]  # the joint coordinates, shared ones first
    values: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]  # the continuous joint coordinates

    @property
    def models(self) -> int:
        return sum(len(f.measurements) for f in self.fits)

    def _pooled(self, loo: bool) -> float:
        errors = [e for f in self.fits for e in (f.loo_errors_pct if loo else f.errors_pct)]
        return float(np.median(np.abs(errors))) if errors else math.nan

    @property
    def median_abs_error_pct(self) -> float:
        return self._pooled(False)

    @property
    def loo_median_abs_error_pct(self) -> float:
        return self._pooled(True) if all(f.loo_predicted_ms for f in self.fits) else math.nan

    def joint_table(self, names: Sequence[str]) -> dict[str, Any]:
        """The ``[fit.joint]`` table each written profile carries (``names``: the profiles as
        written, in the order fitted)."""
        return {"devices": list(names), "shared": list(self.shares),
                "values": {s: float(f"{v:.10g}") for s, v in zip(self.shares,
                                                                 self.shared_values,
                                                                 strict=True)},
                "models": self.models}

    def fit_record(self, index: int, base: HardwareProfile, names: Sequence[str],
                   **stated: Any) -> dict[str, Any]:
        """Device ``index``'s ``[fit]`` table: as a single fit's, plus the joint one."""
        record = self.fits[index].fit_record(base, **stated)
        record["joint"] = self.joint_table(names)
        return record

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        return {**self.joint_table(names),
                "per_device": {s: dict(zip(names, v, strict=True))
                               for s, v in zip(self.shares, self.device_values, strict=True)},
                "median_abs_error_pct": _finite(self.median_abs_error_pct),
                "loo_median_abs_error_pct": _finite(self.loo_median_abs_error_pct)}


def fit_joint(bases: Sequence[HardwareProfile], measurements: Sequence[Sequence[Measurement]],
              free: Sequence[Sequence[str] | None] | None = None,
              shares: Sequence[str | Share] = (), *,
              graphs: Sequence[Sequence[Any]] | None = None, leave_one_out: bool = True,
              sources: Sequence[str] | None = None, priors: bool = True,
              io_on_chip: bool = False) -> JointFitResult:
    """Fit the devices ``bases`` together, each to its own ``measurements``, each with its own
    ``free`` parameters (default: its [fit] free list), the ``shares`` taking one value across
    them (see the module's doc for what sharing means and how the priors are pooled).

    With no shares the problem falls apart into the devices' own: the result is their
    separate fits. ``sources`` (one per device) is recorded in each profile's [sources] for
    every fitted value; ``graphs`` (per device, one per measurement) are traced when not
    given.
    """
    n = len(bases)
    if len(measurements) != n:
        raise UsageError(f"{n} devices but {len(measurements)} sets of measurements")
    free = [None] * n if free is None else list(free)
    frees = [list(f) if f is not None else default_free(b) for b, f in zip(bases, free,
                                                                          strict=True)]
    spaces = [ParameterSpace(b, f, priors=priors) for b, f in zip(bases, frees, strict=True)]
    names = [b.name for b in bases]
    parsed = [s if isinstance(s, Share) else parse_share(s) for s in shares]
    space = JointSpace(spaces, parsed, names)
    if graphs is None:
        graphs = [trace_measurements(m) for m in measurements]
    problems = [_Problem(b, m, g, io_on_chip)
                for b, m, g in zip(bases, measurements, graphs, strict=True)]
    problem = _JointProblem(problems)
    objective = _joint_objective(space, measurements, priors)
    everything = np.arange(len(problem.measured))
    best = _least_squares(problem, space, everything, objective)
    cov = _covariance(len(space.continuous), best, objective)
    sources = list(sources) if sources is not None else ["fitted to measured latencies "
                                                         "(jointly)"] * n
    fits = []
    for d, (base, sub) in enumerate(zip(bases, spaces, strict=True)):
        values = space.device_values(d, best.values)
        fitted = sub.apply(values, sources[d])
        predicted = problems[d].predict(fitted)
        if not np.all(np.isfinite(predicted)):
            bad = [measurements[d][i].label for i in np.flatnonzero(~np.isfinite(predicted))]
            raise RooflineError(f"{base.name} cannot run {', '.join(bad)} (unsupported op "
                                f"kinds); remove them from the measurements")
        x_d = space.device_x(d, best.x) if best.x.size else np.zeros(0)
        cov_d = space.maps[d] @ cov @ space.maps[d].T if cov.size else cov[:0, :0]
        flags = _device_flags(space, d, best, x_d, values, cov_d, objective)
        if objective.uses_priors:
            flags += _rounding_flag(measurements[d], predicted, problems[d].measured)
        flags += _unstated_flags(base, frees[d], graphs[d])
        result = FitResult(profile=fitted, measurements=tuple(measurements[d]),
                           free=tuple(frees[d]), values=tuple(values),
                           predicted_ms=tuple(float(p) * 1e3 for p in predicted),
                           start_values=tuple(sub.start_values()),
                           covariance=tuple(tuple(float(v) for v in row) for row in cov_d),
                           flags=tuple(flags), used_priors=objective.uses_priors)
        fits.append(result)
    if leave_one_out and len(everything) >= 3:  # once every device's fit is known to be sound
        loo = _leave_one_out(problem, space, objective)
        fits = [dataclasses.replace(f, loo_predicted_ms=tuple(
            loo[problem.offsets[d]:problem.offsets[d + 1]])) for d, f in enumerate(fits)]
    shared = space.shared_values(best.values)
    per_device = []
    for share in parsed:
        column = [space.device_values(d, best.values)[_find(sub, share.field)]
                  for d, sub in enumerate(spaces)]
        per_device.append(tuple(float(v) for v in column))
    joint = JointFitResult(fits=(), shares=tuple(s.text for s in parsed),
                           shared_values=tuple(shared), device_values=tuple(per_device),
                           labels=tuple(p.path for p in space.params),
                           values=tuple(float(v) for v in best.values),
                           covariance=tuple(tuple(float(v) for v in row) for row in cov))
    # Each fitted profile carries its fit (the covariance gives its predictions their range).
    if objective.uses_priors:
        fits = [dataclasses.replace(f, profile=f.profile.with_changes(
            fit={**f.fit_record(base), "joint": joint.joint_table(names)}))
            for f, base in zip(fits, bases, strict=True)]
    return dataclasses.replace(joint, fits=tuple(fits))


def _leave_one_out(problem: _JointProblem, space: JointSpace, objective: _Objective
                   ) -> list[float]:
    """Each measurement (ms) predicted by a joint fit without it."""
    everything = np.arange(len(problem.measured))
    out = []
    for i in everything:
        rest = everything[everything != i]
        values = _least_squares(problem, space, rest, objective).values
        d = int(problem.device[i])
        profile = space.spaces[d].apply(space.device_values(d, values))
        out.append(float(problem.problems[d].predict(profile)[i - problem.offsets[d]]) * 1e3)
    return out


def _device_flags(space: JointSpace, d: int, best: _Best, x_d: np.ndarray,
                  values: Sequence[float], cov_d: np.ndarray, objective: _Objective
                  ) -> list[str]:
    """Device ``d``'s flags, in its own coordinates and against its own priors, and where a
    shared value is held by the bound of another device sharing it."""
    sub = space.spaces[d]
    by_choice: dict[tuple[int, ...], float] = {}
    for choice, cost in best.by_choice.items():
        mine = space.device_choice(d, choice)
        by_choice[mine] = min(cost, by_choice.get(mine, math.inf))
    own = _Best(list(values), best.cost, x_d, np.zeros((0, 0)),
                space.device_choice(d, best.choice), by_choice)
    prior_sd = np.array([sub.prior(p)[1] for p in sub.continuous]) \
        if objective.uses_priors else None
    flags = _flags(sub, own, cov_d, prior_sd)
    if not best.x.size:
        return flags
    # A shared value at the joint box's edge where this device's own box goes further: held
    # there by another device's bound (its floor, its datasheet).
    columns = [k for k, p in enumerate(space.params) if p.transform != "grid"]
    lo, hi = space.bounds_x()
    for k, share in enumerate(space.shares):
        if share.per is not None or space.params[k].transform == "grid":
            continue
        c = columns.index(k)
        j = _find(sub, share.field)
        jc = sum(q.transform != "grid" for q in sub.params[:j])
        lo_d, hi_d = sub.bounds_x()
        span = hi[c] - lo[c]
        for side, bound, own_bound in (("lower", lo[c], lo_d[jc]), ("upper", hi[c], hi_d[jc])):
            if abs(best.x[c] - bound) <= 1e-6 * span and abs(bound - own_bound) > 1e-6 * span:
                flags.append(f"{sub.params[j].path} is held at {values[j]:.3g} by the {side} "
                             f"bound of another device it is shared with, not by its own")
    return flags
