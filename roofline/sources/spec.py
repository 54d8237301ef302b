"""How models, widths, resolutions, batches and inputs are spelled: the grammar and its checks.

Owns the checks of a width, resolution and batch, the model-spec grammar
``NAME[@WIDTH][:RESOLUTION]`` and the input grammar ``SHAPE[:DTYPE]`` (``1x3x224x224``,
``1x16:int64``, ``mask=1x16:bool``). Pure parsing: knows no model source and imports no torch.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from ..core.graph import DTYPE_BYTES, InputSpec
from ..errors import UsageError

__all__ = ["check_width", "check_resolution", "check_batch", "parse_input", "split_spec",
           "SpecParts", "MIN_RESOLUTION", "MAX_RESOLUTION"]

MIN_RESOLUTION = 8
MAX_RESOLUTION = 8192

_SPEC = re.compile(r"^(?P<name>.+?)(?:@(?P<width>[^:@]+))?(?::(?P<res>\d+))?$")
_INPUT = re.compile(r"^(?:(?P<name>[A-Za-z_]\w*)=)?(?P<shape>\d+(?:x\d+)*)(?::(?P<dtype>\w+))?$")
_MAX_ELEMENTS = 2 ** 40  # a typo guard: 10^12 elements is far beyond any input


def check_width(width: float) -> float:
    """A width multiplier: a finite number > 0 (not a bool)."""
    try:
        value = float(width)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(width, bool) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"width must be a finite number > 0, got {width!r}")
    return value


def check_resolution(resolution: int) -> int:
    """An input resolution in pixels, from 8 to 8192."""
    try:
        value = int(resolution)
        if value != float(resolution):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"resolution must be a whole number of pixels from {MIN_RESOLUTION} "
                         f"to {MAX_RESOLUTION}, got {resolution!r}") from None
    if not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise UsageError(f"resolution must be from {MIN_RESOLUTION} to {MAX_RESOLUTION} pixels, "
                         f"got {value}")
    return value


def check_batch(batch: int) -> int:
    """A batch size: a whole number >= 1."""
    try:
        value = int(batch)
        if value != float(batch):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"batch must be a whole number >= 1, got {batch!r}") from None
    if value < 1:
        raise UsageError(f"batch must be a whole number >= 1, got {value}")
    return value


def parse_input(text: str) -> InputSpec:
    """``SHAPE[:DTYPE]`` with an optional ``NAME=`` for a keyword input: ``1x3x224x224``,
    ``1x16:int64``, ``mask=1x16:bool``. The dtype defaults to float32."""
    text = str(text).strip()
    match = _INPUT.match(text)
    if match is None:
        raise UsageError(f"input {text!r} is not SHAPE[:DTYPE] (e.g. 1x3x224x224 or "
                         f"1x16:int64; NAME=SHAPE[:DTYPE] for a keyword input)")
    shape = tuple(int(d) for d in match["shape"].split("x"))
    if any(d < 1 for d in shape):
        raise UsageError(f"input {text!r}: every dimension must be >= 1")
    if math.prod(shape) > _MAX_ELEMENTS:
        raise UsageError(f"input {text!r} has {math.prod(shape):.3g} elements; at most "
                         f"{_MAX_ELEMENTS:.3g}")
    dtype = match["dtype"] or "float32"
    if dtype not in DTYPE_BYTES:
        raise UsageError(f"input {text!r}: unknown dtype {dtype!r}; valid: "
                         f"{', '.join(DTYPE_BYTES)}")
    return InputSpec(shape, dtype, match["name"] or "")


class SpecParts(NamedTuple):
    """A model spec split into its name and the width and resolution it names (if any)."""

    name: str
    width: float | None
    resolution: int | None


def split_spec(spec: str) -> SpecParts:
    """``NAME[@WIDTH][:RESOLUTION]``: a trailing ``:DIGITS`` is always the resolution and
    ``@WIDTH`` follows the name (``nets.py:build@1.5:256``)."""
    spec = str(spec).strip()
    match = _SPEC.match(spec)
    if not spec or match is None:
        raise UsageError(f"empty or malformed model spec {spec!r}; expected NAME[@WIDTH][:RES]")
    width = check_width(match["width"]) if match["width"] is not None else None
    resolution = check_resolution(match["res"]) if match["res"] is not None else None
    return SpecParts(match["name"], width, resolution)
