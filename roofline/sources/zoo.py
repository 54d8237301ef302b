"""The zoo as a model source: the MobileNets and friends under ``models/`` by name.

Owns how a zoo name becomes a source: its family, default resolution and published top-1 come
from the zoo's catalogue (``models/zoo.toml``, ``published_models.csv``) without importing
torch; the network is built only when a graph must be traced.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .base import TorchSource, build_on_meta, files_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..zoo import ModelInfo

__all__ = ["ZooSource"]


class ZooSource(TorchSource):
    """A model of the zoo, by name (``mobilenet_v2``)."""

    kind = "zoo"

    @classmethod
    def claims(cls, spec: str) -> bool:
        return True  # asked last: anything that is not a file or a module path

    @property
    def info(self) -> ModelInfo:
        from ..zoo import get_model_info

        return get_model_info(self.spec)  # UnknownNameError with close matches

    def check(self) -> None:
        self.info  # noqa: B018 - raises for an unknown name

    def fingerprint(self) -> str:
        return _zoo_fingerprint()

    def build(self, width: float | None = None, *, meta: bool = False) -> nn.Module:
        from ..zoo import create_model

        w = 1.0 if width is None else width
        if not meta:
            return create_model(self.spec, width=w)
        return build_on_meta(lambda: create_model(self.spec, width=w))

    @property
    def family(self) -> str:
        return self.info.family

    def default_resolution(self) -> int:
        return self.info.default_resolution

    def shows_width(self, width: float | None) -> bool:
        return width is not None and width != 1.0

    def top1(self, width: float, resolution: int | None) -> float | None:
        return None if resolution is None else self.info.top1(width, resolution)

    def top1_source(self, width: float, resolution: int | None) -> str | None:
        return None if resolution is None else self.info.top1_source(width, resolution)

    def published_variants(self) -> list[tuple[float, int]]:
        return [(f.width, f.resolution) for f in self.info.published if f.top1 is not None]


@lru_cache(maxsize=1)
def _zoo_fingerprint() -> str:
    from .. import zoo

    folder = Path(zoo.__file__).parent
    return files_fingerprint(sorted([*folder.glob("*.py"), *folder.glob("*.csv"),
                                     *folder.glob("*.toml")]))
