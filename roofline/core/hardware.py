"""Hardware profiles: the validated description of a device the engine predicts latency for.

Owns the profile schema (pydantic, strict: unknown keys, wrong types, non-positive or
non-finite peaks and bandwidths and missing sources are all errors naming the file and the
field), loading profiles by name or path, aliases (``cpu`` = ``pixel6-cpu``), and listing them.
Imports neither torch nor plotly; profiles are read as data (TOML) and no code runs from them.

Where profiles are found, first match wins: a path given directly (anything ending in
``.toml`` or containing a path separator), the folders in ``$ROOFLINE_HARDWARE_PATH``
(separated by ``os.pathsep``), then the shipped ``hardware_profiles/`` folder.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ProfileError, UnknownNameError, UsageError
from ..units import PRECISIONS, check_precision
from .fuse import INT8_MARK
from .graph import OpKind

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["HardwareProfile", "MemoryLevel", "Overhead", "Geometry", "Support", "FitInfo",
           "JointFit", "Fusion", "load_hardware", "list_hardware", "hardware_dirs",
           "profile_from_dict", "shipped_path", "profile_to_toml", "KINDS", "resolve_hardware"]

KINDS = ("cpu", "dsp", "gpu", "edgetpu", "npu")
# The names are defined once, where they belong (roofline.units, roofline.core.graph): a new
# precision or op kind is valid in a profile without an edit here.
PrecisionName = Literal[tuple(PRECISIONS)]  # type: ignore[valid-type]
KindName = Literal[tuple(kind.value for kind in OpKind)]  # type: ignore[valid-type]
DeviceKind = Literal[KINDS]  # type: ignore[valid-type]


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def _finite_positive(value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value!r}")
    return value


def _finite_non_negative(value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _number(v: Any) -> Any:
    # TOML integers are fine where floats are expected; booleans are not numbers.
    if isinstance(v, bool):
        raise ValueError("must be a number, not true/false")
    return float(v) if isinstance(v, int) else v


def _numbers(v: Any) -> Any:
    """A table of numbers (peaks, efficiencies, per-kind overheads), integers taken as floats."""
    return {k: _number(x) for k, x in v.items()} if isinstance(v, dict) else v


def _listed(v: Any) -> Any:
    """A TOML array where the schema keeps a tuple."""
    return tuple(v) if isinstance(v, list) else v


class MemoryLevel(_Strict):
    """An on-chip memory (cache, scratchpad, parameter SRAM) that can serve kernels' bytes.

    Without ``bandwidth_bytes_per_s`` the level is never the bottleneck: only its capacity
    matters (what it keeps off DRAM). Use that when no figure is published rather than invent
    one.
    """

    name: str
    capacity_bytes: float
    bandwidth_bytes_per_s: float | None = None
    holds: Literal["weights", "activations", "both"] = "both"

    _num = field_validator("capacity_bytes", "bandwidth_bytes_per_s", mode="before")(_number)

    @field_validator("capacity_bytes")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _finite_positive(v)

    @field_validator("bandwidth_bytes_per_s")
    @classmethod
    def _positive_or_none(cls, v: float | None) -> float | None:
        return None if v is None else _finite_positive(v)


class Dram(_Strict):
    """Off-chip memory: everything that does not stay on chip comes from here."""

    bandwidth_bytes_per_s: float

    _num = field_validator("bandwidth_bytes_per_s", mode="before")(_number)

    @field_validator("bandwidth_bytes_per_s")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _finite_positive(v)


class Overhead(_Strict):
    """Fixed costs: per kernel launched (dispatch, launch, sync), extra per kernel of some
    kinds (an eager framework pays more for a module call than for a bare add), and per
    inference."""

    per_kernel_s: float = 0.0
    per_kind_s: dict[KindName, float] = Field(default_factory=dict)
    per_inference_s: float = 0.0
    # Seconds per byte of a kernel's weights, paid on every call: a runtime that repacks
    # weights into its kernel's layout each time (eager PyTorch on oneDNN) pays this.
    per_weight_byte_s: float = 0.0
    # Seconds per output element of a windowed pooling op, beside its window's comparisons
    # or adds (efficiency.pooling): a loop's own cost per output. Eager PyTorch's max_pool2d
    # spends most of its time here (per output: 2x2 windows 21.6 ns, 3x3 24 ns here).
    per_pool_output_s: float = 0.0
    # Seconds per evaluation of a transcendental function (Layer.transcendental_ops: a
    # sigmoid's exp, GELU's erf, a softmax), by the precision a kernel runs at; a precision
    # left out pays none. Eager PyTorch here: SiLU and GELU 1.7-1.9 G elements/s against ReLU's
    # 7-9; ONNX Runtime's int8 QLinearSigmoid (a lookup table) 0.29-0.40 ns an element.
    per_transcendental_s: dict[PrecisionName, float] = Field(default_factory=dict)
    # Seconds per output element of an int8 kernel of each kind, beside its bytes: the
    # rescaling a quantised element-wise kernel does per element (scale, round, clamp, zero
    # point) and the conversions of QuantizeLinear and DequantizeLinear. ONNX Runtime here:
    # QuantizeLinear 0.07-0.09 ns an element, DequantizeLinear 0.10-0.17, QLinearAdd
    # 0.11-0.16, QLinearMul 0.21-0.27, where their bytes take a few hundredths of that.
    per_int8_element_s: dict[KindName, float] = Field(default_factory=dict)

    _num = field_validator("per_kernel_s", "per_inference_s", "per_weight_byte_s",
                           "per_pool_output_s", mode="before")(_number)

    @field_validator("per_kernel_s", "per_inference_s", "per_weight_byte_s",
                     "per_pool_output_s")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        return _finite_non_negative(v)

    _kind_numbers = field_validator("per_kind_s", "per_transcendental_s",
                                    "per_int8_element_s", mode="before")(_numbers)

    @field_validator("per_kind_s", "per_transcendental_s", "per_int8_element_s")
    @classmethod
    def _keyed_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for key, value in v.items():  # an op kind or a precision
            try:
                _finite_non_negative(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return v


class Algorithms(_Strict):
    """Algorithms a runtime uses that change the arithmetic a kernel does.

    ``winograd_3x3``: how many times fewer multiplies a dense 3×3 convolution at stride 1
    takes where the runtime computes it with Winograd's minimal filtering (Lavin & Gray 2016:
    F(4×4, 3×3) takes 36 multiplies per 16 outputs where direct convolution takes 144, 4× in
    theory; the transforms cost part of it back). 1: direct convolution (XNNPACK, ruy).
    """

    winograd_3x3: float = 1.0

    _num = field_validator("winograd_3x3", mode="before")(_number)

    @field_validator("winograd_3x3")
    @classmethod
    def _at_least_one(cls, v: float) -> float:
        if not math.isfinite(v) or not 1 <= v <= 4:
            raise ValueError(f"must be from 1 (none) to 4 (the F(4x4, 3x3) bound), got {v!r}")
        return v


class Geometry(_Strict):
    """How many MAC lanes each GEMM dimension must fill (1 = no rounding waste).

    A kernel's arithmetic is ``groups`` products of (m × k)·(k × n) (see
    ``roofline.core.graph.Gemm``).
    The device computes output tiles of m × n (over a reduction cut into k-sized steps) and
    rounds each dimension up to its tile; depthwise convolutions (n = 1) are tiled as
    ``channels`` × m instead. ``parallel_tiles`` tiles run at once (GPU cores × resident
    workgroups; 1 for a single CPU core or one systolic array), so a kernel with fewer tiles
    leaves units idle and the last wave of tiles may be partly empty. The filled fraction of
    all this is the kernel's utilisation. A systolic array also spends ``fill_rows`` cycles
    filling and draining its pipeline for every weight tile, so m rows stream at
    m / (m + fill_rows) of peak: layers with few pixels run far below peak (0 for SIMD units).
    """

    m: int = 1
    n: int = 1
    k: int = 1
    channels: int = 1
    parallel_tiles: int = 1
    fill_rows: int = 0

    @field_validator("m", "n", "k", "channels", "parallel_tiles")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be a whole number >= 1, got {v}")
        return v

    @field_validator("fill_rows")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be a whole number >= 0, got {v}")
        return v


class Support(_Strict):
    """Op kinds the device cannot run, and what runs them instead (if anything)."""

    unsupported: tuple[KindName, ...] = ()
    fallback: str | None = None
    fallback_transfer_s: float = 0.0

    _num = field_validator("fallback_transfer_s", mode="before")(_number)

    @field_validator("fallback_transfer_s")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        return _finite_non_negative(v)

    _tuple = field_validator("unsupported", mode="before")(_listed)


class Fusion(_Strict):
    """What the device's runtime runs inside a producer's kernel (see ``roofline.core.fuse``).

    ``epilogue`` lists op kinds (``activation``, ``elementwise``) and/or op names as the tracer
    records them, without a trailing underscore (``relu``, ``hardtanh`` for ReLU6, ``clamp``,
    ``add``, ``mul``, ``hardswish``...). Batch norm always folds into a preceding convolution.

    ``int8_epilogue``, when set, replaces ``epilogue`` for the layers of a quantised graph
    (layers whose own precision is int8, as an int8 QDQ ONNX file is read): a runtime may fuse
    differently when it runs quantised kernels (ONNX Runtime's CPU provider fuses a residual
    add into an fp32 convolution but runs each QLinear op as a kernel of its own). Graphs
    traced in float and priced at int8 keep ``epilogue``.
    """

    epilogue: tuple[str, ...] = ("activation", "elementwise")
    int8_epilogue: tuple[str, ...] | None = None

    _tuple = field_validator("epilogue", "int8_epilogue", mode="before")(_listed)


class Prior(_Strict):
    """What a free parameter is expected to be before any measurement is seen: a soft
    constraint of the fit (a penalty of one unit of squared error per standard deviation).

    For a field fitted on a log scale (peaks, bandwidths, efficiencies) ``typical`` is its
    expected value (with ``relative``, a fraction of the base profile's own value: the
    datasheet figure) and ``spread`` the factor (> 1) one standard deviation spans. For a
    field fitted linearly (overheads, in seconds) ``typical`` is its expected value and
    ``spread`` one standard deviation in the same unit. ``floor`` is a hard lower bound where
    physics sets one (relative like ``typical``).
    """

    typical: float
    spread: float
    floor: float | None = None
    relative: bool = False

    _num = field_validator("typical", "spread", "floor", mode="before")(_number)

    @field_validator("typical", "spread")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _finite_positive(v) if v != 0 else v

    @field_validator("floor")
    @classmethod
    def _floor(cls, v: float | None) -> float | None:
        return None if v is None else _finite_non_negative(v)


class JointFit(_Strict):
    """A fit made together with other devices (``roofline calibrate --hw A,B --share ...``):
    every device of it, this one included, in the order fitted; the fields that took one
    value across them (``A/B`` for a shared ratio); those values (a ratio's is the ratio);
    and how many measurements the joint problem had. The command is the fit's ``command``."""

    devices: tuple[str, ...]
    shared: tuple[str, ...] = ()
    values: dict[str, float] = Field(default_factory=dict)
    models: int = 0

    _tuple = field_validator("devices", "shared", mode="before")(_listed)


class FitInfo(_Strict):
    """How the profile's free parameters were fitted (written by ``roofline calibrate``),
    and how far its predictions may be off.

    ``covariance`` is the fit's posterior covariance of the continuous free parameters (in
    ``free`` order, grid-searched ones left out) in fit coordinates: natural log for fields
    fitted on a log scale, the field's unit for the others. ``structural_sigma`` is the
    relative error (natural-log units, one standard deviation) of the engine itself on models
    unlike those fitted, measured on held-out splits (``benchmarks/bench_fit.py``). Together
    they give every prediction its range. ``flags`` say where the fit is weak.
    """

    measurements: str
    command: str
    select: str = ""  # the measurement rows used: KEY=VALUE,... (roofline.fitting)
    convention: str = "fused kernels"
    date: str = ""
    free: tuple[str, ...] = ()
    models: int = 0
    median_abs_error_pct: float | None = None
    loo_median_abs_error_pct: float | None = None
    spearman: float | None = None
    loo_spearman: float | None = None
    model_sigma: float | None = None
    priors: dict[str, Prior] = Field(default_factory=dict)
    covariance: tuple[tuple[float, ...], ...] = ()
    structural_sigma: float | None = None
    flags: tuple[str, ...] = ()
    joint: JointFit | None = None
    # A profile of this machine (calibrate --local): the median time of the machine-speed
    # reference (roofline.fitting.local_torch.REFERENCE) when it was calibrated. validate
    # times it again and says how much faster or slower the machine runs now.
    reference_ms: float | None = None

    _tuple = field_validator("free", "flags", mode="before")(_listed)

    _num = field_validator("median_abs_error_pct", "loo_median_abs_error_pct", "spearman",
                           "loo_spearman", "model_sigma", "structural_sigma", "reference_ms",
                           mode="before")(_number)

    @field_validator("covariance", mode="before")
    @classmethod
    def _matrix(cls, v: Any) -> Any:
        if isinstance(v, list):
            return tuple(tuple(_number(x) for x in row) if isinstance(row, list) else row
                         for row in v)
        return v

    @model_validator(mode="after")
    def _square(self) -> FitInfo:
        n = len(self.covariance)
        if any(len(row) != n for row in self.covariance):
            raise ValueError("covariance must be a square matrix, one row per continuous "
                             "free parameter")
        for i in range(n):
            if not math.isfinite(self.covariance[i][i]) or self.covariance[i][i] < 0:
                raise ValueError(f"covariance: variance {i} must be a finite number >= 0")
        if self.structural_sigma is not None:
            _finite_non_negative(self.structural_sigma)
        return self


class HardwareProfile(_Strict):
    """A device: peak compute, memory hierarchy, overheads, efficiencies, support, sources.

    Every number needs a source: ``sources`` maps a field path (``"dram"``,
    ``"peak_macs_per_s.int8"``, ``"efficiency"``, ``"memory.L2"``...) to where it came from;
    a key covers every field below it.
    """

    name: str
    kind: DeviceKind
    description: str = ""
    default_precision: PrecisionName
    fuses_kernels: bool = True  # False: the runtime runs every op on its own (eager PyTorch)
    threads: int | None = None  # CPU threads the profile describes, when it says
    fusion: Fusion = Fusion()
    peak_macs_per_s: dict[PrecisionName, float]
    memory: tuple[MemoryLevel, ...] = ()
    dram: Dram
    overhead: Overhead = Overhead()
    efficiency: dict[KindName, float] = Field(default_factory=dict)
    # Where a kernel priced at int8 reaches a different fraction of the int8 peak than
    # ``efficiency`` says (a runtime whose quantised kernels are tuned less, or differently,
    # than its float ones); kinds left out use ``efficiency``.
    int8_efficiency: dict[KindName, float] = Field(default_factory=dict)
    # Fraction of each level's bandwidth a kernel of this kind streams at (strided or
    # layout-converting kernels stream slower); default 1.
    memory_efficiency: dict[KindName, float] = Field(default_factory=dict)
    geometry: Geometry = Geometry()
    algorithms: Algorithms = Algorithms()
    support: Support = Support()
    sources: dict[str, str]
    fit: FitInfo | None = None
    path: str | None = Field(default=None, exclude=True)

    @field_validator("threads")
    @classmethod
    def _threads(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be a whole number >= 1, got {v}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"must be letters, digits and . _ + - (starting with a letter or "
                             f"digit), got {v!r}")
        return v

    _memory_tuple = field_validator("memory", mode="before")(_listed)
    _peaks_numbers = field_validator("peak_macs_per_s", mode="before")(_numbers)

    @field_validator("peak_macs_per_s")
    @classmethod
    def _peaks_positive(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("needs at least one precision")
        for precision, peak in v.items():
            try:
                _finite_positive(peak)
            except ValueError as exc:
                raise ValueError(f"{precision}: {exc}") from None
        return v

    _eff_numbers = field_validator("efficiency", "int8_efficiency", "memory_efficiency",
                                   mode="before")(_numbers)

    @field_validator("efficiency", "int8_efficiency", "memory_efficiency")
    @classmethod
    def _eff_range(cls, v: dict[str, float]) -> dict[str, float]:
        for kind, eff in v.items():
            if isinstance(eff, bool) or not math.isfinite(eff) or not 0 < eff <= 1:
                raise ValueError(f"{kind}: must be in (0, 1], got {eff!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> HardwareProfile:
        if self.default_precision not in self.peak_macs_per_s:
            raise ValueError(f"default_precision {self.default_precision!r} has no entry in "
                             f"peak_macs_per_s")
        names = [level.name for level in self.memory]
        if len(set(names)) != len(names):
            raise ValueError(f"memory level names must be unique, got {names}")
        for missing in self._numbers_without_source():
            raise ValueError(f"missing source for {missing!r} (add it to [sources])")
        return self

    def _numbers_without_source(self) -> Iterator[str]:
        from .fields import unsourced

        return unsourced(self)

    # -- derived ------------------------------------------------------------------------------
    def peak(self, precision: str) -> float:
        """Peak MACs/s at ``precision`` (a precision the profile lacks is an UnknownNameError)."""
        try:
            return self.peak_macs_per_s[precision]  # type: ignore[index]
        except KeyError:
            raise UnknownNameError(f"precision for {self.name}", precision,
                                   self.peak_macs_per_s) from None

    def efficiency_of(self, kind: OpKind | str, precision: str | None = None) -> float:
        """The fraction of peak a kernel of ``kind`` reaches (at ``precision``: int8 has its
        own table where the profile gives one)."""
        if precision == "int8" and str(kind) in self.int8_efficiency:
            return self.int8_efficiency[str(kind)]  # type: ignore[index]
        return self.efficiency.get(str(kind), 1.0)  # type: ignore[call-overload]

    def memory_efficiency_of(self, kind: OpKind | str) -> float:
        return self.memory_efficiency.get(str(kind), 1.0)  # type: ignore[call-overload]

    def ridge_point(self, precision: str | None = None) -> float:
        """Peak MACs/s at ``precision`` (default: the profile's own) over DRAM bytes/s: the
        intensity (MACs/byte) above which a kernel that reads everything from DRAM is
        compute-bound. The one definition (roofline.analyses.roofs.ridge_point is this)."""
        return self.peak(precision or self.default_precision) / self.dram.bandwidth_bytes_per_s

    def kernel_view(self) -> tuple[bool, frozenset[str]]:
        """How this device turns ops into kernels: (fuses at all, what joins an epilogue).
        Profiles with the same view share one kernel table. An ``int8_epilogue`` enters the
        set as ``int8:NAME`` entries and an ``int8:`` marker (``roofline.core.fuse``)."""
        epilogue = set(self.fusion.epilogue)
        if self.fusion.int8_epilogue is not None:
            epilogue |= {INT8_MARK} | {INT8_MARK + name for name in self.fusion.int8_epilogue}
        return self.fuses_kernels, frozenset(epilogue)

    def supports(self, kind: OpKind | str) -> bool:
        return str(kind) not in self.support.unsupported

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "default_precision": self.default_precision,
            "peak_macs_per_s": self.peak(self.default_precision),
            "pointwise_efficiency": self.efficiency_of("pointwise_conv"),
            "dram_bytes_per_s": self.dram.bandwidth_bytes_per_s,
            "ridge_point": self.ridge_point(),
            "alias_of": None,
            "path": self.path,
        }

    def with_changes(self, **changes: Any) -> HardwareProfile:
        """A validated copy with some fields replaced (used by calibration and sweeps)."""
        data = self.model_dump(exclude={"path"})
        data.update(changes)
        return HardwareProfile.model_validate(data)


# -- loading --------------------------------------------------------------------------------------

def _shipped_dir() -> Path:
    from .. import profiles  # the hardware_profiles/ folder, installed as roofline.profiles

    return Path(profiles.__file__).parent


def hardware_dirs() -> list[Path]:
    """Folders searched for ``<name>.toml``, in order."""
    extra = [Path(p).expanduser() for p in os.environ.get("ROOFLINE_HARDWARE_PATH", "")
             .split(os.pathsep) if p]
    return [*extra, _shipped_dir()]


def shipped_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as given, or, when it is a relative ``hardware_profiles/...`` path that does not
    exist from here, the same file in the installed profiles folder.

    Every shipped profile's ``[fit] command`` and the README name their priors and measurements
    as ``hardware_profiles/priors/...`` and ``hardware_profiles/measurements/...``: this lets
    those commands run from any folder after a non-editable install too.
    """
    given = Path(path).expanduser()
    parts = given.parts
    if given.exists() or given.is_absolute() or not parts or parts[0] != "hardware_profiles":
        return given
    installed = _shipped_dir().joinpath(*parts[1:])
    return installed if installed.exists() else given


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name or "/" in name


def _find(name: str) -> Path:
    if _looks_like_path(name):
        path = shipped_path(name)
        if not path.is_file():
            raise ProfileError(f"hardware profile file {name!r} does not exist")
        return path
    for folder in hardware_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise UnknownNameError("hardware", name, list_hardware())


def list_hardware() -> list[str]:
    """Names of every profile found (shipped and on $ROOFLINE_HARDWARE_PATH), sorted."""
    names: set[str] = set()
    for folder in hardware_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None


_KEYED_TABLES = {"peak_macs_per_s", "efficiency", "int8_efficiency", "memory_efficiency",
                 "overhead.per_kind_s", "overhead.per_transcendental_s",
                 "overhead.per_int8_element_s"}


def _format_validation(path: Path | str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required field missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        # Validators of per-key tables (peaks, efficiencies) say which key: "int8: must be...".
        key, sep, rest = msg.partition(": ")
        if sep and key.replace("_", "").isalnum() and field in _KEYED_TABLES:
            field, msg = f"{field}.{key}", rest
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: field {field!r}: {msg}{more}"


def profile_from_dict(data: dict[str, Any], path: Path | str = "<profile>") -> HardwareProfile:
    """Validate a profile given as plain data (as read from TOML)."""
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a table of fields")
    try:
        profile = HardwareProfile.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        raise ProfileError(_format_validation(path, exc)) from None
    return profile


def load_hardware(name_or_path: str | os.PathLike[str] | HardwareProfile) -> HardwareProfile:
    """Load a profile by name (``pixel6-cpu``, ``cpu``) or path (``my/device.toml``).

    Aliases (a file holding only ``alias = "other"`` and an optional ``description``) are
    followed; a cycle is a ProfileError. Files are read as data (TOML); nothing in them runs.
    """
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    seen: list[Path] = []
    current = str(name_or_path)
    while True:
        path = _find(current).resolve()
        if path in seen:
            chain = " -> ".join([*(s.stem for s in seen), path.stem])
            raise ProfileError(f"{path}: field 'alias': alias cycle {chain}")
        seen.append(path)
        target = _alias_in(path)
        if target is None:
            break
        current = target
    profile = _load_file(path, *_stamp(path))
    if profile.name != path.stem and not _looks_like_path(str(name_or_path)) and len(seen) == 1:
        raise ProfileError(f"{path}: field 'name': {profile.name!r} must match the file name "
                           f"{path.stem!r}")
    return profile


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _alias_in(path: Path) -> str | None:
    data = _read_cached(path, *_stamp(path))
    if "alias" not in data:
        return None
    extra = set(data) - {"alias", "description"}
    if extra:
        raise ProfileError(f"{path}: field {sorted(extra)[0]!r}: unknown key (an alias file "
                           f"holds only 'alias' and 'description')")
    target = data["alias"]
    if not isinstance(target, str) or not target.strip():
        raise ProfileError(f"{path}: field 'alias': must be a profile name")
    return target


@lru_cache(maxsize=256)
def _read_cached(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    return _read_toml(path)


@lru_cache(maxsize=256)
def _load_file(path: Path, mtime_ns: int, size: int) -> HardwareProfile:
    # Keyed by modification time and size too: a profile edited while the process runs is
    # read again.
    return profile_from_dict(_read_cached(path, mtime_ns, size), path)


def resolve_hardware(names: Sequence[HardwareProfile | str], precision: str | None = None
                     ) -> list[HardwareProfile]:
    """Load each named profile (name, alias, .toml path or a profile), in order, once each.

    An empty list is a UsageError; ``precision`` (if given) must be one every profile has.
    Two different profiles with one name (two files) are a UsageError: rows are keyed by name.
    """
    if not names:
        raise UsageError("empty hardware list; give one or more profile names separated by "
                         "commas (see 'roofline list hardware')")
    out: list[HardwareProfile] = []
    for name in names:
        hw = load_hardware(name)
        same = [h for h in out if h.name == hw.name]
        if same and same[0] != hw:
            raise UsageError(f"two different profiles are named {hw.name!r} ({same[0].path} "
                             f"and {hw.path}); rename one")
        if not same:
            out.append(hw)
    if precision is not None:
        check_precision(precision)
        for hw in out:
            hw.peak(precision)  # UnknownNameError naming the precisions the device has
    return out


def alias_target(name: str) -> str | None:
    """The profile an alias name points to (None when ``name`` is not an alias)."""
    if _looks_like_path(name):
        return None
    data = _read_toml(_find(name))
    target = data.get("alias")
    return target if isinstance(target, str) else None


def profile_to_toml(profile: HardwareProfile, header: str = "") -> str:
    """Serialise a profile as TOML (the format the loader reads back), after ``header``
    (comment lines)."""
    data = profile.model_dump(exclude={"path"}, exclude_defaults=False)
    lines: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    top_scalars = ["name", "kind", "description", "default_precision", "fuses_kernels",
                   "threads"]
    for key in top_scalars:
        if data[key] is not None:
            lines.append(f"{key} = {_toml_value(data[key])}")
    lines.append("")
    lines.append("[peak_macs_per_s]  # multiply-accumulates per second (1 MAC = 2 FLOPs)")
    for k, v in data["peak_macs_per_s"].items():
        lines.append(f"{k} = {_toml_value(v)}")
    lines.append("")
    lines.append("[dram]")
    lines.append(f"bandwidth_bytes_per_s = {_toml_value(data['dram']['bandwidth_bytes_per_s'])}")
    lines.append("")
    for level in data["memory"]:
        lines.append("[[memory]]  # on-chip, smallest first")
        for k, v in level.items():
            if v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    for table in ("fusion", "overhead", "efficiency", "int8_efficiency", "memory_efficiency",
                  "geometry", "algorithms", "support"):
        lines.append(f"[{table}]")
        nested = []
        for k, v in data[table].items():
            if v is None:
                continue
            if isinstance(v, dict):
                nested.append((k, v))
                continue
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
        for k, v in nested:
            if v:
                lines.append(f"[{table}.{k}]")
                lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
                lines.append("")
    if data.get("fit"):
        lines.append("[fit]")
        tables = []
        for k, v in data["fit"].items():
            if v is None or v == () or v == []:
                continue
            if isinstance(v, dict):
                tables.append((k, v))
                continue
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
        for k, v in tables:
            if v:
                lines.append(f"[fit.{k}]")
                lines.extend(f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items())
                lines.append("")
    lines.append("[sources]")
    for k, v in data["sources"].items():
        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    if key.replace("_", "").replace("-", "").isalnum():
        return key
    return _toml_value(key)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan"
        if v.is_integer() and abs(v) < 1e15:
            return f"{v:.1f}" if abs(v) < 1e6 else f"{v:.6g}" if float(f"{v:.6g}") == v \
                else repr(v)
        short = f"{v:.6g}"
        return short if float(short) == v else f"{v:.10g}"
    if isinstance(v, str):
        escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                   .replace("\t", "\\t"))
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table; None values are left out
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()
                                if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
