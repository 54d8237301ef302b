"""The on-disk cache of traced graphs, so repeated runs re-run only the engine.

Owns where cached graphs live and what invalidates them. A graph is stored as JSON (data
only: nothing is executed when it is read back) under a key made of the model spec, width,
resolution and batch, the roofline version, a hash of the tracer's own source, the torch
version, and a hash of the code that defines the model (the zoo's files, or the user's file).
Change any of these and the entry is simply not found. A corrupt entry is ignored and
replaced.

Location: ``$ROOFLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/roofline``, else
``~/.cache/roofline``. ``ROOFLINE_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .graph import LayerGraph

if TYPE_CHECKING:  # pragma: no cover
    from .variants import Variant

__all__ = ["cache_dir", "cache_enabled", "cache_key", "load_graph", "store_graph",
           "cached_trace", "tracer_fingerprint"]

_TRACER_FILES = ("graph.py", "ops.py", "trace.py", "units.py", "variants.py")


def cache_enabled() -> bool:
    return os.environ.get("ROOFLINE_NO_CACHE", "").strip() not in ("1", "true", "yes")


def cache_dir() -> Path:
    explicit = os.environ.get("ROOFLINE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "roofline"


@lru_cache(maxsize=1)
def tracer_fingerprint() -> str:
    """Hash of the tracer's source, roofline's version and torch's version."""
    from importlib.metadata import version

    from . import __version__

    digest = hashlib.sha256(f"{__version__}|{version('torch')}".encode())
    here = Path(__file__).parent
    for name in _TRACER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=64)
def _source_fingerprint(variant_name: str, is_zoo: bool, mtime_key: str) -> str:
    from .variants import Variant

    return Variant(variant_name).source_fingerprint()


def _user_mtime(variant: Variant) -> str:
    if variant.is_zoo:
        return ""
    from .variants import _user_file

    path = _user_file(variant.name)
    if path is None or not path.exists():
        return ""
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def cache_key(variant: Variant) -> str:
    """The file-name key of a variant's traced graph."""
    source = _source_fingerprint(variant.name, variant.is_zoo, _user_mtime(variant))
    text = "|".join([variant.name, repr(variant.effective_width),
                     str(variant.effective_resolution), str(variant.batch),
                     tracer_fingerprint(), source])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir() / "graphs" / f"{key}.json"


def load_graph(key: str) -> LayerGraph | None:
    """The cached graph for ``key``, or None when absent or unreadable."""
    path = _path(key)
    try:
        with path.open("r", encoding="utf-8") as handle:
            return LayerGraph.from_dict(json.load(handle))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store_graph(key: str, graph: LayerGraph) -> None:
    """Write ``graph`` under ``key``; a cache that cannot be written is skipped silently
    (it only costs a re-trace next time)."""
    from .io import atomic_write_text

    with contextlib.suppress(Exception):
        atomic_write_text(_path(key), json.dumps(graph.to_dict(), separators=(",", ":")))


def cached_trace(variant: Variant) -> tuple[LayerGraph, bool]:
    """The op-view fp32 graph of ``variant`` and whether it came from the cache."""
    if not cache_enabled():
        return variant.trace_uncached(), False
    key = cache_key(variant)
    graph = load_graph(key)
    if graph is not None:
        return graph, True
    graph = variant.trace_uncached()
    store_graph(key, graph)
    return graph, False
