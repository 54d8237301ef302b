"""User models as a model source: ``path/to/file.py:callable`` or ``package.module:callable``.

Owns importing the user's file or module (a file is named by its path and contents, so one
edited since it was imported is imported again), calling the factory (``width=`` passed only
when a width is given), and checking that it returns an ``nn.Module``. Every failure is a
one-line ModelLoadError naming what failed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelLoadError, close_matches
from .base import TorchSource, build_on_meta, files_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["PythonSource", "load_user_model"]


class PythonSource(TorchSource):
    """A factory (or module instance) in a Python file or an importable module."""

    kind = "python"

    @classmethod
    def claims(cls, spec: str) -> bool:
        return ":" in spec or spec.endswith(".py")

    @property
    def path(self) -> Path | None:
        """The file, for ``file.py:callable`` (None for ``package.module:callable``)."""
        return _user_file(self.spec)

    def check(self) -> None:
        _check_user_spec(self.spec)

    def fingerprint(self) -> str:
        path = self.path
        if path is None:
            path = _module_file(self.spec.rsplit(":", 1)[0])
        if path is None or not path.is_file():
            return files_fingerprint([], self.spec)
        stat = path.stat()
        return _file_fingerprint(path, stat.st_mtime_ns, stat.st_size, self.spec)

    def build(self, width: float | None = None, *, meta: bool = False) -> nn.Module:
        if not meta:
            return load_user_model(self.spec, width)
        try:
            return build_on_meta(lambda: load_user_model(self.spec, width))
        except ModelLoadError:
            # Some factories cannot run on the meta device (they read tensor values while
            # building); build them for real instead. The tracer never needs their values.
            return load_user_model(self.spec, width)

    @property
    def short_name(self) -> str:
        """``nets/tiny.py:build`` → ``tiny.py:build``; a module path as given."""
        target, _, attr = self.spec.rpartition(":")
        return f"{Path(target).name}:{attr}" if target.endswith(".py") else self.spec


@lru_cache(maxsize=256)
def _file_fingerprint(path: Path, _mtime_ns: int, _size: int, spec: str) -> str:
    # Keyed by modification time and size too: a file edited while the process runs is
    # hashed again.
    return files_fingerprint([path], spec)


def _module_file(module: str) -> Path | None:
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


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


def _import_target(spec: str) -> Any:
    _check_user_spec(spec)
    target, attr = spec.rsplit(":", 1)
    path = _user_file(spec)
    if path is not None:
        module = _import_file(path, target)
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
        hint = close_matches(attr, public)
        extra = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise ModelLoadError(f"{target!r} has no attribute {attr!r}{extra}")
    return getattr(module, attr)


def _import_file(path: Path, target: str) -> Any:
    # Named by path and contents: a file edited since it was imported is imported again (the
    # graph cache keys on the contents, so a stale module would be cached as new).
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {target!r}: {exc.strerror}") from None
    digest = hashlib.sha256(str(path).encode() + b"\0" + source).hexdigest()[:16]
    module_name = "_roofline_user_" + digest
    module = sys.modules.get(module_name)
    if module is not None:
        return module
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
    return module


def load_user_model(spec: str, width: float | None = None) -> nn.Module:
    """Call the factory named by ``spec`` and check it returns an ``nn.Module``.

    A width is passed as ``width=`` and only when given; the factory must accept it.
    """
    from torch import nn

    factory = _import_target(spec)
    if isinstance(factory, nn.Module):
        if width is not None and width != 1.0:
            raise ModelLoadError(f"{spec!r} is a module instance; it cannot take a width")
        return factory
    if not callable(factory):
        raise ModelLoadError(f"{spec!r} is not callable (it is a {type(factory).__name__})")
    kwargs: dict[str, Any] = {}
    if width is not None:
        try:
            parameters = inspect.signature(factory).parameters.values()
            accepts = any(p.name == "width" or p.kind is p.VAR_KEYWORD for p in parameters)
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
