"""Measured latencies: reading a measurement file, choosing its rows, tracing what they name.

Owns the measurement CSV (validated row by row: every problem is one MeasurementError naming
the file, row and column), which rows belong to a device set-up (``--select``), the rounding
each published figure carries, and tracing each distinct measured variant once. Imports no
torch until a model must be traced.

Columns: model, width, latency_ms (required); resolution (empty: the model's own), precision
(fp32, fp16, int8; ``int8-ptq`` and ``int8-qat`` are int8; empty: the profile's default),
device, runtime, threads, batch, source (optional).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MeasurementError, UsageError
from ..units import PRECISIONS

if TYPE_CHECKING:  # pragma: no cover
    from ..core.graph import LayerGraph
    from ..sources.variant import Variant

__all__ = ["Measurement", "load_measurements", "select", "parse_select", "format_select",
           "trace_measurements",
           "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS"]

REQUIRED_COLUMNS = ("model", "width", "latency_ms")
OPTIONAL_COLUMNS = ("resolution", "precision", "device", "runtime", "threads", "batch",
                    "source")
#: Quantisation schemes a published int8 figure may name: priced as int8.
_INT8_SCHEMES = {"int8-ptq": "post-training quantisation", "int8-qat": "quantisation-aware"}
#: Row attributes ``--select`` may filter on.
SELECT_KEYS = ("device", "runtime", "threads", "precision", "model")


@dataclass(frozen=True)
class Measurement:
    """One measured latency: a model variant on a device set-up at a precision.

    ``step_ms`` is the rounding step of the figure as published (0.1 for ``0.7``, 1 for
    ``61``): the true latency lies within half a step of ``latency_ms``.
    """

    model: str
    width: float
    resolution: int | None
    latency_ms: float
    precision: str | None = None
    device: str | None = None
    batch: int = 1
    source: str = ""
    row: int = 0  # line number in the file (1 = header)
    runtime: str | None = None
    threads: int | None = None
    step_ms: float = 0.0

    @property
    def label(self) -> str:
        res = f":{self.resolution}" if self.resolution is not None else ""
        return f"{self.model}@{self.width:g}{res}" + (
            f" {self.precision}" if self.precision else "")

    @property
    def rounding_sd(self) -> float:
        """The relative standard deviation the published rounding alone implies (a uniform
        error over one step: step / √12)."""
        return self.step_ms / math.sqrt(12) / self.latency_ms

    def variant(self) -> Variant:
        """The measured model; width 1 is the model's own (a factory without a width
        argument is called without one)."""
        from ..sources.variant import Variant

        width = None if self.width == 1.0 else self.width
        return Variant(self.model, width, self.resolution, self.batch)


def _step(text: str) -> float:
    """The rounding step of a number as written: ``2.35`` -> 0.01, ``61`` -> 1."""
    text = text.strip().lower()
    if "e" in text:
        return 0.0  # scientific notation: no decimals to read the rounding from
    _, _, decimals = text.partition(".")
    return 10.0 ** -len(decimals)


Criteria = Mapping[str, str] | Sequence[Mapping[str, str]]


def load_measurements(path: str | Path, *, device: str | None = None,
                      where: Criteria | None = None,
                      known_models: Callable[[str], bool] | None = None,
                      aliases: Mapping[str, str] | None = None,
                      empty_ok: bool = False) -> list[Measurement]:
    """Read a measurement CSV; every problem is a MeasurementError naming the file and row.

    ``device`` keeps the rows of one device (a file without a device column is taken to be
    for it); ``where`` keeps rows whose columns equal the given values, or that match any of
    several such sets (see :func:`select`).
    ``aliases`` renames models (a published name to a model spec roofline knows);
    ``known_models`` validates the names that remain. A file with no row selected is an
    error unless ``empty_ok`` (a joint fit reads every device's rows from several files).
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
        if None in raw:
            raise MeasurementError(f"{path}: row {line}: more fields than columns")
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        if aliases and record.get("model") in aliases:
            record["model"] = aliases[record["model"]]
        rows.append(_parse_row(path, line, record, known_models))
    alternatives = _alternatives(where)
    if "device" not in header:
        # A file without a device column is one device's: a selection naming a device (a
        # profile's [fit] select) keeps all of it.
        alternatives = [{k: v for k, v in c.items() if k != "device"} for c in alternatives]
    elif device is not None:
        alternatives = [{**c, "device": c.get("device", device)} for c in alternatives]
    rows = select(rows, alternatives)
    if not rows and not empty_ok:
        shown = format_select(alternatives)
        raise MeasurementError(f"{path}: no measurements" + (f" with {shown}" if shown else ""))
    return rows


def _alternatives(where: Criteria | None) -> list[dict[str, str]]:
    if not where:
        return [{}]
    if isinstance(where, Mapping):
        return [dict(where)]
    return [dict(c) for c in where] or [{}]


def format_select(alternatives: Criteria) -> str:
    """The ``--select`` text of criteria: ``a=1,b=2;c=3``."""
    return ";".join(",".join(f"{k}={v}" for k, v in c.items())
                    for c in _alternatives(alternatives))


def parse_select(text: str) -> list[dict[str, str]]:
    """``KEY=VALUE[,KEY=VALUE...]`` with keys from :data:`SELECT_KEYS`; several such sets
    separated by ``;`` select the rows that match any of them."""
    out: list[dict[str, str]] = []
    for group in str(text).split(";"):
        criteria: dict[str, str] = {}
        for item in (p.strip() for p in group.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in SELECT_KEYS:
                raise UsageError(f"--select {text!r}: expected KEY=VALUE with KEY one of "
                                 f"{', '.join(SELECT_KEYS)}")
            criteria[key] = value.strip()
        if criteria:
            out.append(criteria)
    return out


def select(rows: Iterable[Measurement], criteria: Criteria) -> list[Measurement]:
    """The rows whose attributes equal ``criteria``, or any of several sets of criteria
    (values compared as text; an empty value matches a row that leaves the column empty)."""
    def value(row: Measurement, key: str) -> str:
        got = getattr(row, key)
        return "" if got is None else str(got)

    alternatives = _alternatives(criteria)
    return [r for r in rows if any(all(value(r, k) == str(v).strip() for k, v in c.items())
                                   for c in alternatives)]


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
    resolution_text = record.get("resolution", "")
    resolution: int | None = None
    if resolution_text:
        try:
            resolution = int(resolution_text)
        except ValueError:
            raise fail("resolution", f"not a whole number: {resolution_text!r}") from None
        if not 8 <= resolution <= 8192:
            raise fail("resolution", f"must be from 8 to 8192, got {resolution}")
    precision = record.get("precision") or None
    if precision in _INT8_SCHEMES:
        precision = "int8"
    if precision is not None and precision not in PRECISIONS:
        raise fail("precision", f"unknown precision {precision!r}; valid: "
                                f"{', '.join([*PRECISIONS, *_INT8_SCHEMES])}")
    whole = {}
    for column, default, low in (("batch", "1", 1), ("threads", "", 1)):
        text = record.get(column) or default
        if not text:
            whole[column] = None
            continue
        try:
            whole[column] = int(text)
        except ValueError:
            raise fail(column, f"not a whole number: {text!r}") from None
        if whole[column] < low:
            raise fail(column, f"must be >= {low}, got {whole[column]}")
    return Measurement(model=model, width=number["width"], resolution=resolution,
                       latency_ms=number["latency_ms"], precision=precision,
                       device=record.get("device") or None, batch=whole["batch"] or 1,
                       source=record.get("source", ""), row=line,
                       runtime=record.get("runtime") or None, threads=whole["threads"],
                       step_ms=_step(record.get("latency_ms", "")))


def trace_measurements(measurements: Sequence[Measurement]) -> list[LayerGraph]:
    """Op-view graphs of every measured variant (each distinct variant traced once)."""
    cache: dict[tuple[str, float, int | None, int], LayerGraph] = {}
    graphs = []
    for m in measurements:
        key = (m.model, m.width, m.resolution, m.batch)
        if key not in cache:
            cache[key] = m.variant().validate().trace()
        graphs.append(cache[key])
    return graphs
