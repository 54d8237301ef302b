"""Model variants: which model, at which width and resolution, and how to build and trace it.

Owns the model-spec grammar the CLI and API accept, loading user models from
``package.module:callable`` or ``path/to/file.py:callable``, and tracing one variant into its
op-view LayerGraph. Torch is imported only when a model is actually built.

Spec grammar: ``NAME[@WIDTH][:RESOLUTION]`` where NAME is a zoo name (``mobilenet_v2@0.75:160``)
or a user model (``my_nets.py:build@1.5:256``, ``pkg.nets:build``). A trailing ``:DIGITS`` is
always the resolution; ``@WIDTH`` follows the name or callable.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelLoadError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..core.graph import LayerGraph

__all__ = ["Variant", "parse_variant", "check_width", "check_resolution", "check_batch",
           "MIN_RESOLUTION", "MAX_RESOLUTION"]

MIN_RESOLUTION = 8
MAX_RESOLUTION = 8192

_SPEC = re.compile(r"^(?P<name>.+?)(?:@(?P<width>[^:@]+))?(?::(?P<res>\d+))?$")


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


def _is_user_spec(name: str) -> bool:
    return ":" in name or name.endswith(".py")


@dataclass(frozen=True)
class Variant:
    """One model at one width, resolution and batch size.

    ``name`` is a zoo name or a user spec (``file.py:callable``, ``pkg.mod:callable``).
    ``width`` None means the model's own default (1.0 for the zoo; user factories are then
    called without a width).
    """

    name: str
    width: float | None = None
    resolution: int | None = None
    batch: int = 1

    @property
    def is_zoo(self) -> bool:
        return not _is_user_spec(self.name)

    @property
    def effective_width(self) -> float:
        return 1.0 if self.width is None else self.width

    @property
    def effective_resolution(self) -> int:
        if self.resolution is not None:
            return self.resolution
        if self.is_zoo:
            from ..zoo import get_model_info

            return get_model_info(self.name).default_resolution
        return 224

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        r = self.effective_resolution
        return (self.batch, 3, r, r)

    @property
    def label(self) -> str:
        """The spec that names this variant, e.g. ``mobilenet_v2@0.75:160``."""
        width = "" if self.width is None or (self.is_zoo and self.width == 1.0) \
            else f"@{self.width:g}"
        return f"{self.name}{width}:{self.effective_resolution}"

    @property
    def display_name(self) -> str:
        """A short human name: ``mobilenet_v2 0.75× 160px``; user models by callable."""
        short = self.name.rsplit(":", 1)[-1] if not self.is_zoo else self.name
        return f"{short} {self.effective_width:g}× {self.effective_resolution}px"

    def top1(self) -> float | None:
        """The published ImageNet top-1 of this variant, or None."""
        if not self.is_zoo:
            return None
        from ..zoo import get_model_info

        return get_model_info(self.name).top1(self.effective_width, self.effective_resolution)

    def validate(self) -> Variant:
        """Check the name, width, resolution and batch; returns self."""
        if self.width is not None:
            check_width(self.width)
        if self.resolution is not None:
            check_resolution(self.resolution)
        check_batch(self.batch)
        if self.is_zoo:
            from ..zoo import get_model_info

            get_model_info(self.name)  # raises UnknownNameError with close matches
        else:
            _check_user_spec(self.name)
        return self

    def source_fingerprint(self) -> str:
        """A hash of the code that defines this model (for caches keyed on it)."""
        if self.is_zoo:
            from .. import zoo

            folder = Path(zoo.__file__).parent
            files = sorted([*folder.glob("*.py"), *folder.glob("*.csv")])
        else:
            path = _user_file(self.name)
            files = [path] if path is not None and path.is_file() else []
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
        if not self.is_zoo and not files:
            digest.update(self.name.encode())
        return digest.hexdigest()[:16]

    def build(self, *, meta: bool = False) -> nn.Module:
        """Construct the module (on the meta device when ``meta``: no memory, no init cost)."""
        import torch

        if not meta:
            return self._build()
        try:
            with torch.device("meta"):
                return self._build()
        except ModelLoadError:
            if self.is_zoo:
                raise
            # Some user factories cannot run on the meta device (they read tensor values while
            # building); build them for real instead. The tracer never needs their values.
            return self._build()

    def _build(self) -> nn.Module:
        if self.is_zoo:
            from ..zoo import create_model

            return create_model(self.name, width=self.effective_width)
        return load_user_model(self.name, self.width)

    def trace(self, precision: str | None = None, *, cache: bool = True) -> LayerGraph:
        """The op view of this variant, from the on-disk graph cache when it holds it (see
        ``roofline.sources.cache``), else built on the meta device and traced. With a
        ``precision`` the graph is priced at it everywhere; without, at each device's own."""
        if cache:
            from .cache import cached_trace

            graph, hit = cached_trace(self)
            if hit:  # a fresh trace warned already; a cached one must say the same
                graph.warn_unknown_ops(stacklevel=2)
        else:
            graph = self.trace_uncached()
        return graph.at_precision(precision)

    def trace_uncached(self) -> LayerGraph:
        """Build (on the meta device) and trace this variant, without a precision."""
        from .pytorch.tracer import trace

        model = self.build(meta=True)
        return trace(model, self.input_shape, name=self.label)


def parse_variant(spec: str, *, width: float | None = None, resolution: int | None = None,
                  batch: int = 1) -> Variant:
    """Parse ``NAME[@WIDTH][:RESOLUTION]``; explicit keyword values fill what the spec omits.

    A width or resolution given both in the spec and as a keyword must agree.
    """
    spec = str(spec).strip()
    match = _SPEC.match(spec)
    if not spec or match is None:
        raise UsageError(f"empty or malformed model spec {spec!r}; expected NAME[@WIDTH][:RES]")
    name = match["name"]
    spec_width = check_width(match["width"]) if match["width"] is not None else None
    spec_res = check_resolution(match["res"]) if match["res"] is not None else None
    if spec_width is not None and width is not None and spec_width != check_width(width):
        raise UsageError(f"{spec!r} names width {spec_width:g} but --width is {width:g}")
    if spec_res is not None and resolution is not None and spec_res != resolution:
        raise UsageError(f"{spec!r} names resolution {spec_res} but --resolution is "
                         f"{resolution}")
    final_width = spec_width if spec_width is not None else (
        check_width(width) if width is not None else None)
    final_res = spec_res if spec_res is not None else (
        check_resolution(resolution) if resolution is not None else None)
    return Variant(name, final_width, final_res, check_batch(batch)).validate()


# -- user models -----------------------------------------------------------------------------

def _user_file(spec: str) -> Path | None:
    target = spec.rsplit(":", 1)[0] if ":" in spec else spec
    if target.endswith(".py"):
        return Path(target).expanduser().resolve()
    return None


def _check_user_spec(spec: str) -> None:
    """The cheap checks of a user model spec: a callable is named and its file exists."""
    if ":" not in spec:
        raise ModelLoadError(f"user model {spec!r} needs a callable: use "
                             f"path/to/file.py:callable or package.module:callable")
    target, attr = spec.rsplit(":", 1)
    if not attr.isidentifier():
        raise ModelLoadError(f"{attr!r} in {spec!r} is not a Python name")
    path = _user_file(spec)
    if path is not None and not path.is_file():
        raise ModelLoadError(f"model file {target!r} does not exist")


def _import_target(spec: str) -> tuple[Any, str]:
    _check_user_spec(spec)
    target, attr = spec.rsplit(":", 1)
    path = _user_file(spec)
    if path is not None:
        # Named by path and contents: a file edited since it was imported is imported again
        # (the graph cache keys on the contents, so a stale module would be cached as new).
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {target!r}: {exc.strerror}") from None
        digest = hashlib.sha256(str(path).encode() + b"\0" + source).hexdigest()[:16]
        module_name = "_roofline_user_" + digest
        module = sys.modules.get(module_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ModelLoadError(f"cannot load {target!r} as a Python file")
            module = importlib.util.module_from_spec(loader_spec)
            sys.path.insert(0, str(path.parent))
            try:
                sys.modules[module_name] = module
                loader_spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - the user's file failed to import
                sys.modules.pop(module_name, None)
                raise ModelLoadError(f"importing {target!r} failed: {type(exc).__name__}: "
                                     f"{_first_line(exc)}") from exc
            finally:
                if sys.path and sys.path[0] == str(path.parent):
                    sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ModelLoadError(f"cannot import module {target!r}: {_first_line(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - the user's module failed to import
            raise ModelLoadError(f"importing {target!r} failed: {type(exc).__name__}: "
                                 f"{_first_line(exc)}") from exc
    if not hasattr(module, attr):
        public = sorted(n for n in dir(module) if not n.startswith("_")
                        and callable(getattr(module, n)))
        from ..errors import close_matches

        hint = close_matches(attr, public)
        extra = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise ModelLoadError(f"{target!r} has no attribute {attr!r}{extra}")
    return getattr(module, attr), target


def load_user_model(spec: str, width: float | None = None) -> nn.Module:
    """Call the factory named by ``spec`` and check it returns an ``nn.Module``.

    A width is passed as ``width=`` and only when given; the factory must accept it.
    """
    from torch import nn

    factory, _ = _import_target(spec)
    if isinstance(factory, nn.Module):
        if width is not None and width != 1.0:
            raise ModelLoadError(f"{spec!r} is a module instance; it cannot take a width")
        return factory
    if not callable(factory):
        raise ModelLoadError(f"{spec!r} is not callable (it is a {type(factory).__name__})")
    kwargs: dict[str, Any] = {}
    if width is not None:
        try:
            accepts = "width" in inspect.signature(factory).parameters or any(
                p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
        except (TypeError, ValueError):
            accepts = True
        if not accepts:
            raise ModelLoadError(f"{spec!r} takes no 'width' argument; drop --width or add one")
        kwargs["width"] = width
    try:
        model = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's factory failed
        raise ModelLoadError(f"{spec!r} raised {type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{spec!r} returned a {type(model).__name__}, not a "
                             f"torch.nn.Module")
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
