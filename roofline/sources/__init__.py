"""Model sources: where a model comes from and how it becomes an op-view layer graph.

One implementation of :class:`~roofline.sources.base.ModelSource` per place a model can come
from, asked in order which of them a name belongs to: ``path/to/model.onnx`` (``onnx``),
``path/to/file.py:callable`` and ``package.module:callable`` (``python``), then a zoo name
(``zoo``). A new model format is one
new module here and one line in :data:`SOURCE_KINDS`. ``variant`` turns a name plus width,
input and batch into a :class:`~roofline.sources.variant.Variant`; ``cache`` keeps traced
graphs on disk; ``pytorch`` is the PyTorch front end (the tracer and its op table), ``onnx``
the ONNX one (the reader and its op table).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .base import ModelSource

__all__ = ["SOURCE_KINDS", "source_for", "source_classes", "register_source"]

#: Every kind of model source, in the order they are asked whether a name is theirs
#: (``module:Class`` under roofline.sources; the zoo claims whatever is left).
SOURCE_KINDS: tuple[str, ...] = (
    "onnx:OnnxSource",
    "python:PythonSource",
    "zoo:ZooSource",
)


_registered: list[type[ModelSource]] = []


@lru_cache(maxsize=1)
def source_classes() -> tuple[type[ModelSource], ...]:
    """The source classes in the order they are asked: registered ones first, then
    :data:`SOURCE_KINDS` (the zoo, which claims any name, last)."""
    out = list(_registered)
    for entry in SOURCE_KINDS:
        module, _, name = entry.partition(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), name))
    return tuple(out)


def register_source(cls: type[ModelSource]) -> type[ModelSource]:
    """Add a kind of model source (a :class:`~roofline.sources.base.ModelSource` subclass),
    asked before the shipped ones; usable as a class decorator. A kind registered twice is a
    ValueError."""
    if any(c.kind == cls.kind for c in (*_registered, *source_classes())):
        raise ValueError(f"a model source of kind {cls.kind!r} is already registered")
    _registered.append(cls)
    source_classes.cache_clear()
    source_for.cache_clear()
    return cls


@lru_cache(maxsize=1024)
def source_for(spec: str) -> ModelSource:
    """The source ``spec`` (a model name without width or resolution) belongs to."""
    for cls in source_classes():
        if cls.claims(spec):
            return cls(spec)
    raise AssertionError("the zoo claims every name")  # pragma: no cover
