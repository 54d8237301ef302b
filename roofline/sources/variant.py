"""Model variants: one model from one source at one width, input size and batch, and lists of them.

Owns :class:`Variant` (what the CLI and API mean by a model), parsing ``NAME[@WIDTH][:RES]``,
the model-list grammar of ``--models`` and tracing a variant into its op-view LayerGraph through
the graph cache. Which source a name belongs to, and how that source builds or reads it, is the
sources' business (``roofline.sources.source_for``); nothing here depends on the kind of source.

Model list grammar (comma-separated, in order, duplicates dropped):
    ``all``             the default set: every zoo model marked for the default comparison, at
                        every published width and resolution with a published ImageNet top-1
    ``NAME``            a model at its default width and input
    ``NAME@WIDTH:RES``  at that width and resolution (either part optional)
    ``NAME@*``          a zoo model at each of its published variants with a top-1
    ``file.py:fn``      a user model (``pkg.mod:fn`` too; ``@WIDTH`` and ``:RES`` apply)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import source_for
from .spec import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    check_batch,
    check_resolution,
    check_width,
    split_spec,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..core.engine import View
    from ..core.graph import InputSpec, LayerGraph
    from .base import ModelSource

__all__ = ["Variant", "parse_variant", "resolve_models", "default_variants", "check_width",
           "check_resolution", "check_batch", "MIN_RESOLUTION", "MAX_RESOLUTION"]


@dataclass(frozen=True)
class Variant:
    """One model at one width, input and batch size.

    ``name`` names the model for its source (a zoo name, ``file.py:callable``,
    ``pkg.mod:callable``, ``model.onnx``). ``width`` None means the model's own default.
    ``inputs``, when given, replace the source's default input (an image batch of
    ``batch`` × 3 × ``resolution``²).
    """

    name: str
    width: float | None = None
    resolution: int | None = None
    batch: int = 1
    inputs: tuple[InputSpec, ...] | None = None

    @cached_property
    def source(self) -> ModelSource:
        return source_for(self.name)

    @property
    def effective_width(self) -> float:
        return 1.0 if self.width is None else self.width

    @property
    def effective_resolution(self) -> int | None:
        """The image resolution: given, read from the inputs given, or the source's default
        (None for a model whose input is not an image)."""
        if self.resolution is not None:
            return self.resolution
        if self.inputs is not None:
            shape = self.inputs[0].shape if self.inputs else ()
            return shape[2] if len(shape) == 4 and shape[2] == shape[3] else None
        return self.source.default_resolution()

    @property
    def input_specs(self) -> tuple[InputSpec, ...]:
        if self.inputs is not None:
            return self.inputs
        return self.source.default_inputs(self.batch, self.effective_resolution)

    @property
    def input_shape(self) -> tuple[int, ...]:
        specs = self.input_specs
        return specs[0].shape if specs else ()

    @property
    def label(self) -> str:
        """The spec that names this variant, e.g. ``mobilenet_v2@0.75:160``."""
        width = f"@{self.width:g}" if self.source.shows_width(self.width) else ""
        if self.inputs is not None:
            return f"{self.name}{width}[{','.join(str(s) for s in self.inputs)}]"
        res = self.effective_resolution
        return f"{self.name}{width}" + (f":{res}" if res is not None else "")

    @property
    def short_label(self) -> str:
        """The label charts show: a user file by its file name and callable."""
        return self.source.short_name + self.label[len(self.name):]

    @property
    def display_name(self) -> str:
        """A short human name: ``mobilenet_v2 0.75× 160px``."""
        short = self.source.short_name.rsplit(":", 1)[-1]
        res = self.effective_resolution
        return f"{short} {self.effective_width:g}×" + (f" {res}px" if res else "")

    @property
    def family(self) -> str:
        return self.source.family

    def top1(self) -> float | None:
        """The published ImageNet top-1 (%) of this variant, or None."""
        return self.source.top1(self.effective_width, self.effective_resolution)

    def top1_source(self) -> str | None:
        return self.source.top1_source(self.effective_width, self.effective_resolution)

    def validate(self) -> Variant:
        """Check the name, width, resolution, batch and inputs; returns self."""
        if self.width is not None:
            check_width(self.width)
            if not self.source.takes_width:
                raise UsageError(f"{self.name!r} is one fixed network: a width multiplier "
                                 f"cannot apply to it (drop --width / @WIDTH)")
        if self.resolution is not None:
            check_resolution(self.resolution)
        check_batch(self.batch)
        if self.inputs is not None and not self.inputs:
            raise UsageError("an empty input list; give one --input per model input")
        self.source.check()
        return self

    @property
    def cache_key(self) -> str:
        """The name of this variant's entry in the graph cache: what defines the model (its
        source's fingerprint), the code that makes its graph, and every size."""
        source = self.source
        inputs = ",".join(str(s) for s in self.input_specs)
        text = "|".join([source.kind, self.name, repr(self.effective_width), inputs,
                         source.frontend_fingerprint(), source.fingerprint()])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def build(self, *, meta: bool = False) -> nn.Module:
        """The module of a PyTorch source (on the meta device when ``meta``)."""
        from .base import TorchSource

        if not isinstance(self.source, TorchSource):
            raise UsageError(f"{self.name!r} is not a PyTorch model: it cannot be built")
        return self.source.build(self.width, meta=meta)

    def trace(self, precision: str | None = None, *, cache: bool = True) -> LayerGraph:
        """The op view of this variant, from the on-disk graph cache when it holds it (see
        ``roofline.sources.cache``), else built or read and traced. With a ``precision`` the
        graph is priced at it everywhere; without, at its own or each device's."""
        from .cache import cached_graph

        if cache and self.source.cacheable():
            graph, hit = cached_graph(self.cache_key, self.trace_uncached)
            if hit:  # a fresh trace warned already; a cached one must say the same
                graph.warn_unknown_ops(stacklevel=2)
        else:
            graph = self.trace_uncached()
        return graph.at_precision(precision) if precision is not None else graph

    def kernel_arrays(self, views: Sequence[View], *,
                      graph: Callable[[], LayerGraph] | None = None
                      ) -> tuple[list[dict[str, Any]], bool]:
        """The engine's kernel arrays of this variant in each kernel view (cached like its
        graph), and whether a graph had to be made; ``graph()`` makes its op view when the
        cache has not (default: :meth:`trace_uncached`)."""
        from ..core.engine import kernel_arrays, kernel_graph
        from .cache import cached_arrays

        make = graph or self.trace_uncached
        if self.source.cacheable():
            return cached_arrays(self.cache_key, views, make)
        graph = make()
        out = []
        for view in views:
            arrays = kernel_arrays(kernel_graph(graph, *view))
            arrays["graph_macs"] = float(graph.macs)
            arrays["graph_params"] = float(graph.params)
            out.append(arrays)
        return out, True

    def trace_uncached(self) -> LayerGraph:
        """Build or read this variant and trace it (no cache)."""
        return self.source.graph(self.width, self.input_specs, self.label)


def parse_variant(spec: str, *, width: float | None = None, resolution: int | None = None,
                  batch: int = 1, inputs: Sequence[InputSpec] | None = None) -> Variant:
    """Parse ``NAME[@WIDTH][:RESOLUTION]``; explicit keyword values fill what the spec omits.

    A width or resolution given both in the spec and as a keyword must agree; ``inputs``
    replace the default input and cannot be combined with a resolution.
    """
    parts = split_spec(spec)
    if parts.width is not None and width is not None and parts.width != check_width(width):
        raise UsageError(f"{spec!r} names width {parts.width:g} but --width is {width:g}")
    if parts.resolution is not None and resolution is not None and \
            parts.resolution != resolution:
        raise UsageError(f"{spec!r} names resolution {parts.resolution} but --resolution is "
                         f"{resolution}")
    final_width = parts.width if parts.width is not None else (
        check_width(width) if width is not None else None)
    final_res = parts.resolution if parts.resolution is not None else (
        check_resolution(resolution) if resolution is not None else None)
    given = tuple(inputs) if inputs else None
    if given is not None and final_res is not None:
        raise UsageError("give the input size either as a resolution or as --input, not both")
    if given is not None and batch != 1:
        raise UsageError("--batch does not apply with --input: the batch is the inputs' first "
                         "dimension")
    return Variant(parts.name, final_width, final_res, check_batch(batch), given).validate()


# -- lists of models -----------------------------------------------------------------------------

def default_variants() -> list[Variant]:
    """Every zoo model of the default comparison (``compare_default`` in zoo.toml: the
    MobileNets) at every published (width, resolution) with a published top-1, in zoo order
    then as listed in ``published_models.csv``."""
    from ..zoo import get_model_info, list_models

    return [Variant(name, fig.width, fig.resolution) for name in list_models()
            if get_model_info(name).compare_default
            for fig in get_model_info(name).published if fig.top1 is not None]


def _published_variants(name: str) -> list[Variant]:
    source = source_for(name)
    source.check()
    variants = source.published_variants()
    if not variants:
        raise UsageError(f"{name!r} has no published variant with a top-1; name a width and "
                         f"resolution instead (NAME@WIDTH:RES)")
    return [Variant(name, w, r) for w, r in variants]


def resolve_models(specs: str | Iterable[str] | None,
                   inputs: Sequence[InputSpec] | None = None) -> list[Variant]:
    """The variants named by ``specs`` (see the module docstring); None means ``all``.
    ``inputs`` (``--input``) replace every model's default input.

    Raises UsageError / UnknownNameError / ModelLoadError for a bad name, width or resolution.
    """
    if specs is None:
        items = ["all"]
    elif isinstance(specs, str):
        items = [s.strip() for s in specs.split(",")]
    else:
        items = [str(s).strip() for s in specs]
    items = [s for s in items if s]
    if not items:
        raise UsageError("empty model list; give 'all' or one or more model names separated "
                         "by commas")
    out: list[Variant] = []
    seen: set[str] = set()
    for item in items:
        if inputs and (item == "all" or item.endswith("@*")):
            raise UsageError(f"--input gives one input size: it cannot apply to {item!r}, "
                             f"a set of published sizes; name the models instead")
        if item == "all":
            found = default_variants()
        elif item.endswith("@*"):
            found = _published_variants(item[:-2])
        else:
            found = [parse_variant(item, inputs=inputs)]
        for v in found:
            if v.label not in seen:
                seen.add(v.label)
                out.append(v)
    return out
