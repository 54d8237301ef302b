"""The model registry: the zoo's catalogue (zoo.toml) and published figures (published_models.csv).

Owns list_models / get_model_info / create_model and the published params, MACs and top-1 of
each (width, resolution), each row with its source and exactness. Answers every metadata
question without importing torch: a network's module is imported only by :func:`create_model`.
"""

from __future__ import annotations

import csv
import functools
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from roofline.errors import UnknownNameError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "EXACTNESS_TOLERANCES",
    "ModelInfo",
    "PublishedFigure",
    "create_model",
    "get_model_info",
    "list_models",
    "published_figures",
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
_CATALOG_NAME = "zoo.toml"


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
    """A zoo model: its name, family, default input size, where its factory lives, and its
    published figures."""

    name: str
    family: str
    default_resolution: int
    description: str
    module: str  # the file under models/ that defines a function called ``name``
    published: tuple[PublishedFigure, ...]
    # Whether `roofline compare --models all` includes this model's published variants
    # (zoo.toml ``compare_default``, default true): false for the non-MobileNet families,
    # which users name explicitly.
    compare_default: bool = True

    @property
    def factory(self) -> Callable[..., nn.Module]:
        """``factory(width=1.0, num_classes=1000)``; importing it imports torch."""
        module = importlib.import_module(f"{__package__}.{self.module}")
        return getattr(module, self.name)

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


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _load_published() -> tuple[tuple[str, PublishedFigure], ...]:
    return tuple((row["model"], _parse_figure(row))
                 for row in csv.DictReader(_read(_CSV_NAME).splitlines()))


def _flag(name: str, entry: dict[str, Any], key: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{_CATALOG_NAME} [{name}] {key} must be true or false, got {value!r}")
    return value


@functools.cache
def _registry() -> dict[str, ModelInfo]:
    catalog: dict[str, Any] = tomllib.loads(_read(_CATALOG_NAME))
    figures = _load_published()
    return {
        name: ModelInfo(name=name, family=entry["family"],
                        default_resolution=int(entry["default_resolution"]),
                        description=entry["description"], module=entry["module"],
                        published=tuple(fig for model, fig in figures if model == name),
                        compare_default=_flag(name, entry, "compare_default", True))
        for name, entry in catalog.items()
    }


def published_figures() -> list[tuple[str, PublishedFigure]]:
    """Every row of published_models.csv as (model name, figure), in file order."""
    return list(_load_published())


def list_models() -> list[str]:
    """Zoo model names in catalogue order."""
    return list(_registry())


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; UnknownNameError (with close matches) if none."""
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownNameError("model", name, list_models()) from None


def create_model(name: str, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """Build the zoo model ``name`` at width multiplier ``width`` (no weights)."""
    from roofline.sources.spec import check_width

    info = get_model_info(name)
    value = check_width(width)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return info.factory(width=value, num_classes=num_classes)
