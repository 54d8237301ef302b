"""The model-source interface: one implementation per place a model can come from.

Owns :class:`ModelSource`, the small contract every source meets — the zoo
(``roofline.sources.zoo``), a Python file or module (``roofline.sources.python``), an ONNX
file — and :class:`TorchSource`, the part the two PyTorch sources share (build an ``nn.Module``,
trace it). Answering what a model is called, what input it takes by default, what defines it
(its fingerprint, for the graph cache) and its published top-1 never imports torch; only
:meth:`ModelSource.graph` builds or reads the model.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..core.graph import InputSpec, LayerGraph

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["ModelSource", "TorchSource", "image_input", "files_fingerprint", "USER_FAMILY",
           "DEFAULT_RESOLUTION", "build_on_meta"]

#: The input resolution of a model whose source names none.
DEFAULT_RESOLUTION = 224

#: The family of a model that belongs to none (charts colour user models by it).
USER_FAMILY = "user model"


def image_input(batch: int, resolution: int) -> tuple[InputSpec, ...]:
    """One float image batch (batch, 3, resolution, resolution)."""
    return (InputSpec((batch, 3, resolution, resolution)),)


def files_fingerprint(paths: Sequence[Path], *extra: str) -> str:
    """A short hash of the names and contents of ``paths`` (and ``extra`` strings)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    for text in extra:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


class ModelSource(ABC):
    """Where one model comes from: how it is named, what input it takes, what defines it, and
    how it becomes an op-view :class:`~roofline.core.graph.LayerGraph`.

    ``spec`` is the model as the user named it (``mobilenet_v2``, ``nets.py:build``,
    ``model.onnx``), without width or resolution.
    """

    #: The registry name of this kind of source.
    kind: ClassVar[str]
    #: Whether a width multiplier applies (a file holds one fixed network).
    takes_width: ClassVar[bool] = True

    def __init__(self, spec: str):
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.spec == self.spec  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.spec))

    @classmethod
    @abstractmethod
    def claims(cls, spec: str) -> bool:
        """Whether ``spec`` names a model of this kind (asked in the registry's order)."""

    @abstractmethod
    def check(self) -> None:
        """Cheap checks that the model exists (no build): raise a RooflineError if not."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A hash of everything that defines the model (its code or file), for the cache."""

    @abstractmethod
    def frontend_fingerprint(self) -> str:
        """A hash of the code that turns this source into a graph (tracer or reader)."""

    @abstractmethod
    def graph(self, width: float | None, inputs: tuple[InputSpec, ...],
              name: str) -> LayerGraph:
        """The op view of the model at ``width`` on ``inputs`` (builds or reads it)."""

    # -- metadata, with defaults for models that publish nothing ---------------------------------
    @property
    def family(self) -> str:
        """The family charts colour it by."""
        return USER_FAMILY

    @property
    def short_name(self) -> str:
        """The name tables and charts show (a user file by its file name and callable)."""
        return self.spec

    def default_resolution(self) -> int | None:
        """The resolution used when none is given; None when the input is not an image."""
        return DEFAULT_RESOLUTION

    def default_inputs(self, batch: int, resolution: int | None) -> tuple[InputSpec, ...]:
        """The inputs traced when none are given."""
        return image_input(batch, resolution or DEFAULT_RESOLUTION)

    def cacheable(self) -> bool:
        """Whether graphs of this source may be stored in and served from the cache."""
        return True

    def shows_width(self, width: float | None) -> bool:
        """Whether a label names ``width`` (the zoo leaves its default 1.0 out)."""
        return width is not None

    def top1(self, width: float, resolution: int | None) -> float | None:
        """The published ImageNet top-1 (%) of this variant, or None."""
        return None

    def top1_source(self, width: float, resolution: int | None) -> str | None:
        """Where :meth:`top1` comes from, or None."""
        return None

    def published_variants(self) -> list[tuple[float, int]]:
        """(width, resolution) of every variant with a published top-1."""
        return []


class TorchSource(ModelSource):
    """A source that builds a PyTorch ``nn.Module`` and traces it (the zoo, Python files)."""

    @abstractmethod
    def build(self, width: float | None = None, *, meta: bool = False) -> nn.Module:
        """The module at ``width`` (on the meta device when ``meta``: no memory, no init)."""

    def frontend_fingerprint(self) -> str:
        return _tracer_fingerprint()

    def cacheable(self) -> bool:
        # A rule a user registered (roofline.register_op_rule) is code the cache key cannot
        # see: graphs traced under a changed op table are never stored or served. The table
        # can only have changed if its module was imported.
        ops = sys.modules.get("roofline.sources.pytorch.ops")
        return ops is None or not ops.table_changed()

    def graph(self, width: float | None, inputs: tuple[InputSpec, ...],
              name: str) -> LayerGraph:
        from .pytorch.tracer import trace

        with _collector_paused():
            return trace(_module(self, width, self.fingerprint()), inputs=inputs, name=name)


_frozen: list[bool] = []


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # Building and tracing allocate hundreds of thousands of small objects that live until the
    # graph is made; each allocation burst would run the cyclic collector over everything torch
    # imported (about 1 s of a cold compare). So: torch's import-time objects are frozen out of
    # the collector once (gc.freeze, a few MB kept for the life of the process), and the
    # collector waits while one model is built and traced. Reference counting still frees
    # everything that is not part of a cycle.
    if not _frozen:
        import torch  # noqa: F401 - imported before the freeze so its objects are frozen

        gc.freeze()
        _frozen.append(True)
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@lru_cache(maxsize=8)
def _module(source: TorchSource, width: float | None, fingerprint: str) -> nn.Module:
    # One build per (model, width): every resolution of it traces the same module (the tracer
    # never writes it and restores its training flags). A handful suffices: variants come in
    # model order. The fingerprint is in the key so that a Python file edited while the
    # process runs is built again. It is kept in eval mode, the mode it is traced in.
    return source.build(width, meta=True).eval()


@contextlib.contextmanager
def _initialisers_skipped() -> Iterator[None]:
    # torch.nn.init's in-place initialisers (kaiming_uniform_, zeros_, trunc_normal_, ...)
    # become the identity: on the meta device they compute nothing, yet their Python costs
    # about a third of building a model.
    from torch.nn import init

    saved = {name: getattr(init, name) for name in dir(init)
             if name.endswith("_") and not name.startswith("_")}

    def keep(tensor: object, *args: object, **kwargs: object) -> object:
        return tensor

    for name in saved:
        setattr(init, name, keep)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def build_on_meta(make: Callable[[], nn.Module]) -> nn.Module:
    """``make()`` with every tensor on the meta device (shapes, no memory), without autograd
    and with parameter initialisation skipped: a module to trace, never to run. A model
    built this way is 3x faster to build than with its initialisation on meta."""
    import torch

    with torch.device("meta"), torch.no_grad(), _initialisers_skipped():
        return make()


#: The code a traced graph depends on, relative to the roofline package folder: a change to any
#: of it makes every cached graph stale.
_TRACER_FILES = ("core/graph.py", "units.py", "sources/pytorch/ops.py",
                 "sources/pytorch/tracer.py")
_PACKAGE = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def _tracer_fingerprint() -> str:
    """The tracer's source, roofline's version and torch's version (read from the installed
    package's metadata: torch is not imported)."""
    from importlib.metadata import version

    from .. import __version__

    return files_fingerprint([_PACKAGE / f for f in _TRACER_FILES], __version__,
                             version("torch"))
