"""The model registry: names → factories, and the published figures of published_models.csv.

Owns register_model / list_models / get_model_info / create_model and the CSV of published
params, MACs and top-1 (each row with its source and exactness); builds no model itself.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from torch import nn

from roofline.errors import UnknownNameError, UsageError

__all__ = [
    "EXACTNESS_TOLERANCES",
    "ModelInfo",
    "PublishedFigure",
    "create_model",
    "get_model_info",
    "list_models",
    "published_figures",
    "register_model",
]

# Relative tolerance (params, MACs) that each `exactness` value of published_models.csv allows.
EXACTNESS_TOLERANCES: dict[str, tuple[float, float]] = {
    "exact": (0.0, 0.0),
    "approx_2pct": (0.02, 0.02),
    "params_exact_macs_approx_3pct": (0.0, 0.03),
    "approx_5pct": (0.05, 0.05),
}

_WIDTH_TOLERANCE = 1e-9
_CSV_NAME = "published_models.csv"


@dataclass(frozen=True)
class PublishedFigure:
    """One row of published_models.csv: a published (or exactly counted) model size."""

    width: float
    resolution: int
    params: int
    macs: int
    top1: float | None
    exactness: str
    source: str

    @property
    def tolerances(self) -> tuple[float, float]:
        """Relative tolerance allowed on (params, MACs) by this row's ``exactness``."""
        return EXACTNESS_TOLERANCES[self.exactness]

    def matches(self, width: float, resolution: int) -> bool:
        return abs(self.width - width) <= _WIDTH_TOLERANCE and self.resolution == resolution


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its name, family, default input size and factory."""

    name: str
    family: str
    default_resolution: int
    description: str
    factory: Callable[..., nn.Module]
    published: tuple[PublishedFigure, ...]

    def figure(self, width: float, resolution: int) -> PublishedFigure | None:
        """The published row at this width and resolution, or None."""
        for row in self.published:
            if row.matches(width, resolution):
                return row
        return None

    def top1(self, width: float, resolution: int) -> float | None:
        """Published ImageNet top-1 (%) at this width and resolution, or None."""
        row = self.figure(width, resolution)
        return None if row is None else row.top1

    def top1_source(self, width: float, resolution: int) -> str | None:
        """Where the published figures at this width and resolution come from, or None."""
        row = self.figure(width, resolution)
        return None if row is None else row.source


_REGISTRY: dict[str, ModelInfo] = {}


def _parse_figure(row: dict[str, str]) -> PublishedFigure:
    top1 = row["top1"].strip()
    return PublishedFigure(
        width=float(row["width"]),
        resolution=int(row["resolution"]),
        params=int(row["params"]),
        macs=int(row["macs"]),
        top1=float(top1) if top1 else None,
        exactness=row["exactness"],
        source=row["source"],
    )


@functools.cache
def _load_published() -> tuple[tuple[str, PublishedFigure], ...]:
    text = resources.files(__package__).joinpath(_CSV_NAME).read_text(encoding="utf-8")
    return tuple((row["model"], _parse_figure(row)) for row in csv.DictReader(text.splitlines()))


def published_figures() -> list[tuple[str, PublishedFigure]]:
    """Every row of published_models.csv as (model name, figure), in file order."""
    return list(_load_published())


def register_model(
    name: str, *, family: str, default_resolution: int, description: str
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``factory(width=1.0, num_classes=1000)`` under ``name``.

    Models are listed in registration order (the zoo registers V1, V2, V3-L, V3-S, V4 ...).
    Registering a name twice raises ValueError.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        published = tuple(fig for model, fig in _load_published() if model == name)
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            default_resolution=default_resolution,
            description=description,
            factory=factory,
            published=published,
        )
        return factory

    return decorator


def list_models() -> list[str]:
    """Registered model names in zoo order."""
    return list(_REGISTRY)


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; UnknownNameError (with close matches) if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("model", name, list_models()) from None


def check_width(width: float) -> float:
    """``width`` as a float if it is a finite number > 0, else UsageError."""
    try:
        value = float(width)
    except (TypeError, ValueError):
        raise UsageError(f"width must be a finite number > 0, got {width!r}") from None
    if isinstance(width, bool) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"width must be a finite number > 0, got {width!r}")
    return value


def create_model(name: str, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """Build the registered model ``name`` at width multiplier ``width`` (no weights)."""
    info = get_model_info(name)
    value = check_width(width)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return info.factory(width=value, num_classes=num_classes)
