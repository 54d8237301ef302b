"""The numbers of a hardware profile as data: every field by path, how to read, set and source it.

Owns the table of a profile's numeric fields (:data:`FIELDS`): each with its path pattern
(``efficiency.{kind}``, ``memory.{level}.capacity_bytes``...), its unit, the ``[sources]`` key
that must cite it, the value it has when a profile leaves it out, and how a fit may move it
(multiplicatively within bounds, linearly from 0, or over a grid of powers of two). Reading
(:func:`get`), writing (:func:`with_values`), the sourced-number check (:func:`unsourced`) and
calibration's free parameters (:func:`fit_spec`) all read this one table, so a new fittable
parameter is one row. Imports neither torch nor plotly.

Paths: ``peak_macs_per_s.int8``, ``dram.bandwidth_bytes_per_s``, ``memory.L2.capacity_bytes``,
``overhead.per_kernel_s``, ``overhead.per_kind_s.depthwise_conv``, ``efficiency.conv``,
``memory_efficiency.depthwise_conv``, ``geometry.m``, ``support.fallback_transfer_s``. A fit may
tie several op kinds to one value: ``efficiency.conv+pointwise_conv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ProfileError
from ..units import PRECISIONS

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import HardwareProfile

__all__ = ["Field", "FIELDS", "FitSpec", "DEFAULT_FREE", "get", "with_values", "expand",
           "source_key", "unsourced", "fit_spec", "describe_fittable"]

Transform = Literal["log", "linear", "grid"]

#: Powers of two a discrete field is searched over.
_POWERS = tuple(2 ** i for i in range(15))
_CAPACITIES = tuple(2 ** i for i in range(14, 27))  # 16 KiB .. 64 MiB


@dataclass(frozen=True)
class Field:
    """One kind of number a profile holds.

    ``pattern``: its path, with ``{precision}``, ``{kind}``, ``{level}`` or ``{geometry}`` for
    a part that names a precision, an op kind, a memory level or a geometry field. ``source``:
    the ``[sources]`` key that covers it (a key covers every path below it). ``default``: its
    value when the profile leaves it out (a number equal to it needs no source). ``fit``: how a
    fit moves it — ``log`` (multiplicatively, within [lower, upper]; a bound of None is the
    base profile's own value, the datasheet ceiling), ``linear`` (from 0, optimised in units
    of ``scale``), ``grid`` (over ``grid``) — or None when it is never fitted.
    """

    pattern: str
    unit: str
    source: str
    default: float | None = None
    fit: Transform | None = None
    lower: float | None = None
    upper: float | None = None
    scale: float = 1.0
    grid: tuple[int, ...] = ()
    ceiling_factor: float = 1000.0  # for log fields bounded by the base: lower = base / this
    # The generic prior of a fit that states none: (typical, spread, relative to the base's
    # value), as in roofline.core.hardware.Prior. Deliberately weak: a profile's own
    # [fit.priors] say what its datasheet and runtime suggest, with sources.
    prior: tuple[float, float, bool] | None = None

    def parts(self) -> list[str]:
        return self.pattern.split(".")


#: Every numeric field of a profile. A new fittable parameter is a new row (and its field in
#: ``roofline.core.hardware``).
FIELDS: tuple[Field, ...] = (
    # A datasheet peak or bandwidth is a ceiling: expected near it (throttling, contention
    # and runtimes reach less), never above.
    Field("peak_macs_per_s.{precision}", "MACs/s", "peak_macs_per_s.{precision}", fit="log",
          prior=(0.8, 1.6, True)),
    Field("dram.bandwidth_bytes_per_s", "bytes/s", "dram.bandwidth_bytes_per_s", fit="log",
          prior=(0.6, 1.6, True)),
    Field("memory.{level}.capacity_bytes", "bytes", "memory.{level}", fit="grid",
          grid=_CAPACITIES),
    Field("memory.{level}.bandwidth_bytes_per_s", "bytes/s", "memory.{level}", fit="log",
          prior=(0.6, 1.6, True)),
    # Fixed costs: expected small, a standard deviation of the size a dispatch (tens of
    # microseconds) or a whole inference set-up (a millisecond) takes on a phone.
    Field("overhead.per_kernel_s", "s", "overhead.per_kernel_s", 0.0, "linear", 0.0, 0.05,
          1e3, prior=(0.0, 30e-6, False)),
    Field("overhead.per_inference_s", "s", "overhead.per_inference_s", 0.0, "linear", 0.0,
          0.05, 1e3, prior=(0.0, 1e-3, False)),
    # At most 1e-8 s/byte: no runtime repacks weights slower than 100 MB/s.
    Field("overhead.per_weight_byte_s", "s/byte", "overhead.per_weight_byte_s", 0.0, "linear",
          0.0, 1e-8, 1e9, prior=(0.0, 1e-9, False)),
    # At most 1e-6 s per pooled output: 40x eager PyTorch's max_pool2d loop here.
    Field("overhead.per_pool_output_s", "s/output element", "overhead.per_pool_output_s", 0.0,
          "linear", 0.0, 1e-6, 1e9, prior=(0.0, 30e-9, False)),
    # At most 1e-7 s per evaluation: 100x eager PyTorch's SiLU here.
    Field("overhead.per_transcendental_s.{precision}", "s/evaluation",
          "overhead.per_transcendental_s", 0.0, "linear", 0.0, 1e-7, 1e9,
          prior=(0.0, 1e-9, False)),
    # At most 1e-7 s per element: 1000x ONNX Runtime's int8 QuantizeLinear here.
    Field("overhead.per_int8_element_s.{kind}", "s/output element",
          "overhead.per_int8_element_s", 0.0, "linear", 0.0, 1e-7, 1e9,
          prior=(0.0, 1e-9, False)),
    Field("overhead.per_kind_s.{kind}", "s", "overhead.per_kind_s.{kind}", 0.0, "linear", 0.0,
          0.05, 1e3, prior=(0.0, 30e-6, False)),
    # An op kind's share of peak: anywhere from a few percent (depthwise on wide SIMD) to
    # nearly all of it (large GEMMs); a factor of 3 either side of a half.
    Field("efficiency.{kind}", "fraction of peak", "efficiency.{kind}", 1.0, "log", 1e-3, 1.0,
          prior=(0.5, 3.0, False)),
    Field("int8_efficiency.{kind}", "fraction of int8 peak", "int8_efficiency.{kind}", 1.0,
          "log", 1e-3, 1.0, prior=(0.5, 3.0, False)),
    Field("memory_efficiency.{kind}", "fraction of bandwidth", "memory_efficiency.{kind}",
          1.0, "log", 1e-3, 1.0, prior=(0.7, 2.0, False)),
    Field("geometry.{geometry}", "MAC lanes", "geometry.{geometry}", 1.0, "grid",
          grid=_POWERS),
    Field("support.fallback_transfer_s", "s", "support.fallback_transfer_s", 0.0, "linear",
          0.0, 0.05, 1e3, prior=(0.0, 1e-3, False)),
    Field("algorithms.winograd_3x3", "x fewer multiplies", "algorithms.winograd_3x3", 1.0),
)


#: Generic priors of single op kinds where they differ from their field's. Depthwise
#: convolutions run far below a device's peak everywhere: the 16 shipped profiles that fit
#: ``efficiency.depthwise_conv`` to published latencies found 0.015 (Pixel 4 EdgeTPU) to 0.43
#: (Pixel 3 CPU), geometric mean 0.090 and a factor of 2.4 one standard deviation either side
#: (``grep '^depthwise_conv' hardware_profiles/*.toml`` before this prior); stated as 0.09
#: within a factor of 3. The field's own (0.5 within 3) sat above every one of them, so
#: a fit with few models leaned towards a fast depthwise and a slow everything else
#: (``benchmarks/bench_fit.py`` and ``benchmarks/bench_extrapolate_local.py``, README).
KIND_PRIORS: dict[str, tuple[float, float, bool]] = {
    "efficiency.depthwise_conv": (0.09, 3.0, False),
}


def _kinds() -> tuple[str, ...]:
    from .graph import OpKind

    return tuple(kind.value for kind in OpKind)




def _match(path: str, profile: HardwareProfile) -> tuple[Field, dict[str, str]] | None:
    """The field ``path`` is an instance of, and what its placeholders stand for."""
    for spec in FIELDS:
        pattern = spec.parts()
        if "{level}" in spec.pattern:
            # A memory level's name may hold any character but ".": match it between the
            # fixed head and tail.
            head, tail = pattern[0], pattern[-1]
            parts = path.split(".")
            if len(parts) >= 3 and parts[0] == head and parts[-1] == tail:
                return spec, {"level": ".".join(parts[1:-1])}
            continue
        parts = path.split(".")
        if len(parts) != len(pattern):
            continue
        bound: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{"):
                bound[want[1:-1]] = got
            elif want != got:
                break
        else:
            if _valid(bound, profile):
                return spec, bound
    return None


def _valid(bound: Mapping[str, str], profile: HardwareProfile) -> bool:
    for name, value in bound.items():
        if name == "precision" and value not in PRECISIONS:
            return False
        if name == "kind" and value not in _kinds():
            return False
        if name == "geometry" and value not in type(profile.geometry).model_fields:
            return False
    return True


def expand(path: str) -> list[str]:
    """The paths a free-parameter path sets: ``efficiency.conv+linear`` is two."""
    head, sep, last = path.rpartition(".")
    if sep and "+" in last and not path.startswith("memory."):
        return [f"{head}.{kind}" for kind in last.split("+")]
    return [path]


def stated(profile: HardwareProfile, path: str) -> bool:
    """Whether ``profile`` gives ``path`` a value of its own, rather than leaving a kind out of
    a table (``[efficiency]`` without ``depthwise_conv``: 1, the full peak; a kind's fixed cost
    absent from ``[overhead.per_kind_s]``: 0). Every other field counts as stated: a written
    profile holds each of them, so a file cannot tell a chosen value from a default there."""
    parts = path.split(".")
    if parts[0] in ("efficiency", "int8_efficiency", "memory_efficiency"):
        return parts[1] in getattr(profile, parts[0])
    if parts[0] == "overhead" and len(parts) == 3:
        return parts[2] in getattr(profile.overhead, parts[1])
    return True


def unstated(profile: HardwareProfile, path: str, covered: Sequence[str] = ()) -> str | None:
    """The part of ``path`` (perhaps tied: ``efficiency.conv+linear``) that ``profile`` leaves
    at its default and that no path in ``covered`` sets, as one tied path; None if nothing
    is left."""
    done = {q for c in covered for q in expand(c)}
    left = [q for q in expand(path) if q not in done and not stated(profile, q)]
    if not left:
        return None
    head = left[0].rpartition(".")[0]
    return f"{head}.{'+'.join(q.rpartition('.')[2] for q in left)}" if len(left) > 1 else left[0]


def _level(profile: HardwareProfile, name: str) -> Any:
    for level in profile.memory:
        if level.name == name:
            return level
    return None


def get(profile: HardwareProfile, path: str) -> float:
    """The value of ``path`` in ``profile`` (its default where the profile leaves it out).
    An unknown path, or a memory level or precision the profile lacks, is a KeyError."""
    found = _match(path, profile)
    if found is None:
        raise KeyError(path)
    spec, bound = found
    parts = path.split(".")
    if spec.pattern.startswith("memory."):
        level = _level(profile, bound["level"])
        if level is None:
            raise KeyError(path)
        value = getattr(level, parts[-1])
        if value is None:
            raise KeyError(path)
        return float(value)
    if spec.pattern == "peak_macs_per_s.{precision}":
        return float(profile.peak_macs_per_s[bound["precision"]])  # type: ignore[index]
    if spec.pattern == "int8_efficiency.{kind}":
        return float(profile.efficiency_of(bound["kind"], "int8"))
    node: Any = profile
    for part in parts[:-1]:
        node = getattr(node, part)
    if isinstance(node, Mapping):
        value = node.get(parts[-1], spec.default)
    else:
        value = getattr(node, parts[-1])
    if value is None:
        raise KeyError(path)
    return float(value)


def with_values(profile: HardwareProfile, values: Mapping[str, float], *,
                validate: bool = True) -> HardwareProfile:
    """``profile`` with each path of ``values`` (tied paths allowed) set. With ``validate``
    the result is checked like a profile read from a file; without, it is a fast copy for a
    fit's inner loop (the values must already be within their bounds)."""
    data: dict[str, Any] = {}
    for path, value in values.items():
        for one in expand(path):
            found = _match(one, profile)
            if found is None:
                raise KeyError(one)
            spec, bound = found
            parts = one.split(".")
            number: float | int = int(value) if spec.fit == "grid" else float(value)
            if spec.pattern.startswith("memory."):
                levels = data.setdefault("memory", {})
                levels.setdefault(bound["level"], {})[parts[-1]] = number
            else:
                node = data
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = number
    if validate:
        dumped = profile.model_dump(exclude={"path"})
        _merge(dumped, data)
        return type(profile).model_validate(dumped)
    return _fast_update(profile, data)


def _merge(dumped: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if key == "memory":
            dumped["memory"] = tuple({**lv, **value.get(lv["name"], {})}
                                     for lv in dumped["memory"])
        elif isinstance(value, dict) and isinstance(dumped.get(key), dict):
            _merge(dumped[key], value)
        else:
            dumped[key] = value


def _fast_update(model: Any, changes: dict[str, Any]) -> Any:
    update: dict[str, Any] = {}
    for key, value in changes.items():
        current = getattr(model, key) if not isinstance(model, Mapping) else model.get(key)
        if key == "memory":
            update[key] = tuple(lv.model_copy(update=value[lv.name]) if lv.name in value
                                else lv for lv in current)
        elif isinstance(value, dict) and isinstance(current, Mapping):
            update[key] = {**current, **value}
        elif isinstance(value, dict):
            update[key] = _fast_update(current, value)
        else:
            update[key] = value
    return model.model_copy(update=update)


def source_key(path: str, profile: HardwareProfile) -> str:
    """The ``[sources]`` key that must cite ``path``."""
    found = _match(path, profile)
    if found is None:
        raise KeyError(path)
    spec, bound = found
    return spec.source.format(**bound)


def _present(profile: HardwareProfile) -> Iterator[tuple[str, float]]:
    """Every concrete numeric path the profile holds, with its value."""
    for precision, peak in profile.peak_macs_per_s.items():
        yield f"peak_macs_per_s.{precision}", peak
    yield "dram.bandwidth_bytes_per_s", profile.dram.bandwidth_bytes_per_s
    for level in profile.memory:
        yield f"memory.{level.name}.capacity_bytes", level.capacity_bytes
        if level.bandwidth_bytes_per_s is not None:
            yield f"memory.{level.name}.bandwidth_bytes_per_s", level.bandwidth_bytes_per_s
    overhead = profile.overhead
    for name in ("per_kernel_s", "per_inference_s", "per_weight_byte_s", "per_pool_output_s"):
        yield f"overhead.{name}", getattr(overhead, name)
    for kind, value in overhead.per_kind_s.items():
        yield f"overhead.per_kind_s.{kind}", value
    for precision, value in overhead.per_transcendental_s.items():
        yield f"overhead.per_transcendental_s.{precision}", value
    for kind, value in overhead.per_int8_element_s.items():
        yield f"overhead.per_int8_element_s.{kind}", value
    for table in ("efficiency", "int8_efficiency", "memory_efficiency"):
        for kind, value in getattr(profile, table).items():
            yield f"{table}.{kind}", value
    for name, value in profile.geometry:
        yield f"geometry.{name}", value
    yield "support.fallback_transfer_s", profile.support.fallback_transfer_s
    yield "algorithms.winograd_3x3", profile.algorithms.winograd_3x3


def _fit_numbers(profile: HardwareProfile) -> Iterator[str]:
    """The [sources] keys a profile's fit numbers need: each prior (a stated expectation is a
    number like any other) and the structural error."""
    fit = profile.fit
    if fit is None:
        return
    for path in fit.priors:
        yield f"fit.priors.{path}"
    if fit.structural_sigma is not None:
        yield "fit.structural_sigma"


def unsourced(profile: HardwareProfile) -> Iterator[str]:
    """The ``[sources]`` keys a profile's numbers need and lack, each once: every number it
    gives that differs from its field's default (an efficiency given explicitly needs a
    source even at 1), and every empty source text."""
    covered = set(profile.sources)

    def has(key: str) -> bool:
        parts = key.split(".")
        return any(".".join(parts[:i]) in covered for i in range(1, len(parts) + 1))

    missing: list[str] = []
    for path, value in _present(profile):
        spec, _ = _match(path, profile)  # type: ignore[misc]
        in_table = spec.pattern.startswith(("efficiency.", "int8_efficiency.",
                                            "memory_efficiency.", "overhead.per_kind_s."))
        trivial = value in (0, 1) if spec.pattern.startswith("geometry.") else (
            not in_table and spec.default is not None and value == spec.default)
        key = source_key(path, profile)
        if not trivial and not has(key) and key not in missing:
            missing.append(key)
    for key in _fit_numbers(profile):
        if not has(key) and key not in missing:
            missing.append(key)
    yield from missing
    for key, text in profile.sources.items():
        if not text.strip():
            yield key


# -- what a fit may move --------------------------------------------------------------------------

#: The parameters a fit moves when a profile names none ([fit] free), by device kind: what
#: the measurements of whole models can tell apart on that kind of device (how fast its dense
#: and depthwise convolutions run, what each kernel costs, and on an accelerator how fast it
#: streams from DRAM and what an inference costs). A profile that was never fitted is unsure
#: of these, by their generic priors.
DEFAULT_FREE: dict[str, tuple[str, ...]] = {
    "cpu": ("efficiency.conv+pointwise_conv+linear+matmul", "efficiency.depthwise_conv",
            "overhead.per_kernel_s"),
    **{kind: ("efficiency.conv+pointwise_conv+linear+matmul", "efficiency.depthwise_conv",
              "dram.bandwidth_bytes_per_s", "overhead.per_kernel_s", "overhead.per_inference_s")
       for kind in ("gpu", "dsp", "edgetpu", "npu")},
}

@dataclass(frozen=True)
class FitSpec:
    """One free parameter of a fit: the paths it sets, how it moves, its bounds and start, and
    the field's generic prior (typical, spread, relative) when the profile states none."""

    path: str  # as given, perhaps tied (efficiency.conv+linear)
    paths: tuple[str, ...]
    transform: Transform
    lower: float
    upper: float
    start: float
    scale: float = 1.0
    grid: tuple[int, ...] = ()
    unit: str = ""
    base_value: float = 1.0  # the base profile's value (relative priors are fractions of it)
    generic_prior: tuple[float, float, bool] | None = None


def fit_spec(profile: HardwareProfile, path: str) -> FitSpec:
    """How ``path`` may be fitted starting from ``profile`` (the base, whose datasheet values
    bound peaks and bandwidths from above). A path that cannot be fitted is a ProfileError
    naming the ones that can."""
    paths = expand(path)
    found = [_match(p, profile) for p in paths]
    specs = {f[0] for f in found if f is not None}
    if None in found or len(specs) != 1:
        raise _not_fittable(profile, path)
    (spec,) = specs
    if spec.fit is None:
        raise _not_fittable(profile, path)
    try:
        values = [get(profile, p) for p in paths]
    except KeyError:
        raise _not_fittable(profile, path) from None
    start = min(values)
    if spec.fit == "grid":
        grid = ((0,) if paths[0] == "geometry.fill_rows" else ()) + spec.grid
        return FitSpec(path, tuple(paths), "grid", min(grid), max(grid), start, grid=grid,
                       unit=spec.unit)
    upper = start if spec.upper is None else spec.upper
    lower = upper / spec.ceiling_factor if spec.lower is None else spec.lower
    return FitSpec(path, tuple(paths), spec.fit, lower, upper, min(max(start, lower), upper),
                   scale=spec.scale, unit=spec.unit, base_value=start,
                   generic_prior=KIND_PRIORS.get(path, spec.prior))


def describe_fittable() -> str:
    """The fittable paths, for an error message."""
    names = [f.pattern.replace("{kind}", "KIND[+KIND...]").replace("{level}", "NAME")
             .replace("{precision}", "PRECISION").replace("{geometry}", "FIELD")
             for f in FIELDS if f.fit is not None]
    return ", ".join(names) + " (capacities and geometry searched over powers of two)"


def _not_fittable(profile: HardwareProfile, path: str) -> ProfileError:
    return ProfileError(f"{profile.path or profile.name}: field 'fit.free': cannot fit "
                        f"{path!r}; free parameters are {describe_fittable()}")


def log_span(spec: FitSpec) -> float:
    """The width of a log-transformed parameter's box, in natural-log units."""
    return math.log(spec.upper) - math.log(spec.lower)


def values_by_path(specs: Sequence[FitSpec], values: Sequence[float]) -> dict[str, float]:
    """A fit's value vector as {path: value}, ties expanded, clipped into each box."""
    out: dict[str, float] = {}
    for spec, value in zip(specs, values, strict=True):
        clipped = min(max(float(value), spec.lower), spec.upper)
        for p in spec.paths:
            out[p] = clipped
    return out
