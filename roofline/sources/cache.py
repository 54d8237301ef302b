"""The on-disk cache of traced graphs and of the kernel arrays the engine reads, so repeated
runs re-run only the engine.

Owns where cached graphs and kernel arrays live and what invalidates them. A graph is stored as
JSON (data only: nothing is executed when it is read back) under a key made of the model spec,
width, resolution and batch, the roofline version, a hash of the tracer's own source, the torch
version, and a hash of the code that defines the model (the zoo's files, or the user's file).
Change any of these and the entry is simply not found. A corrupt entry is ignored and replaced.
Kernel arrays (``roofline.core.engine.kernel_arrays``, one raw float64 file per variant and kernel
view) are keyed by the graph's key, the kernel view and a hash of the fusion and engine source.

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
from typing import TYPE_CHECKING, Any

from ..core.graph import LayerGraph

if TYPE_CHECKING:  # pragma: no cover
    from .variant import Variant

__all__ = ["cache_dir", "cache_enabled", "cache_key", "load_graph", "store_graph",
           "cached_trace", "tracer_fingerprint"]

#: The code a traced graph depends on, relative to the roofline package folder: a change to
#: any of it makes every cached graph stale.
_TRACER_FILES = ("core/graph.py", "sources/pytorch/ops.py", "sources/pytorch/tracer.py",
                 "units.py", "sources/variant.py")
_PACKAGE = Path(__file__).resolve().parents[1]


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

    from .. import __version__

    digest = hashlib.sha256(f"{__version__}|{version('torch')}".encode())
    for name in _TRACER_FILES:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=64)
def _source_fingerprint(variant_name: str, is_zoo: bool, mtime_key: str) -> str:
    from .variant import Variant

    return Variant(variant_name).source_fingerprint()


def _user_mtime(variant: Variant) -> str:
    if variant.is_zoo:
        return ""
    from .variant import _user_file

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
    from ..io import atomic_write_text

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


# -- kernel arrays: what the engine reads, cached per kernel view --------------------------------

_ENGINE_FILES = ("core/fuse.py", "core/engine.py")


@lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    digest = hashlib.sha256(tracer_fingerprint().encode())
    for name in _ENGINE_FILES:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


def view_key(view: tuple[bool, frozenset[str]]) -> str:
    """A short stable name of a kernel view (``HardwareProfile.kernel_view()``)."""
    fused, epilogue = view
    text = f"{fused}|{','.join(sorted(epilogue))}|{_engine_fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _arrays_path(key: str, view: tuple[bool, frozenset[str]]) -> Path:
    return cache_dir() / "kernels" / f"{key}-{view_key(view)}.f64"


# The arrays of one variant in one view are stored as one raw little-endian float64 vector:
# the element count of each array in _ARRAY_ORDER, then the arrays one after another. One small
# read per file, no header to parse, no pickle: a sweep reads thousands of them.
_ARRAY_ORDER = ("kind", "macs", "weight_elements", "bias_elements", "gemm", "input_elements",
                "output_elements", "edge_kernel", "edge_elements", "edge_element_bytes",
                "edge_distance", "write_kernel", "write_elements", "write_element_bytes",
                "write_distance", "precision", "graph_macs", "graph_params")
_INTEGER_ARRAYS = {"kind", "edge_kernel", "write_kernel", "precision"}


def load_arrays(key: str, view: tuple[bool, frozenset[str]]) -> dict[str, Any] | None:
    """The cached kernel arrays (``roofline.core.engine.kernel_arrays`` plus ``graph_macs`` and
    ``graph_params``) of a variant in one kernel view, or None. Read without pickle."""
    import numpy as np

    path = _arrays_path(key, view)
    try:
        flat = np.fromfile(path, dtype="<f8")
        n = len(_ARRAY_ORDER)
        sizes = flat[:n].astype(np.int64)
        if flat.ndim != 1 or len(flat) != n + int(sizes.sum()):
            raise ValueError("truncated")
        out: dict[str, Any] = {}
        start = n
        for name, size in zip(_ARRAY_ORDER, sizes, strict=True):
            part = flat[start:start + size]
            start += size
            out[name] = part.astype(np.int64) if name in _INTEGER_ARRAYS else part
        out["gemm"] = out["gemm"].reshape(-1, 2, 4)
        out["graph_macs"] = out["graph_macs"][0]
        out["graph_params"] = out["graph_params"][0]
        return out
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError, EOFError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store_arrays(key: str, view: tuple[bool, frozenset[str]], arrays: dict[str, Any]) -> None:
    """Write kernel arrays under ``key`` and ``view`` (skipped silently if it cannot)."""
    import numpy as np

    from ..io import atomic_write_bytes

    with contextlib.suppress(Exception):
        parts = [np.asarray(arrays[name], dtype=np.float64).ravel() for name in _ARRAY_ORDER]
        flat = np.concatenate([np.array([len(p) for p in parts], dtype=np.float64), *parts])
        atomic_write_bytes(_arrays_path(key, view), flat.astype("<f8").tobytes())


def cached_kernel_arrays(variant: Variant, views: list[tuple[bool, frozenset[str]]]
                         ) -> tuple[list[dict[str, Any]], bool]:
    """The kernel arrays of ``variant`` in each of ``views`` and whether anything had to be
    traced (False when everything came from the cache)."""
    import numpy as np

    from ..core.engine import kernel_arrays, kernel_graph

    key = cache_key(variant) if cache_enabled() else ""
    found = [load_arrays(key, view) if key else None for view in views]
    if all(a is not None for a in found):
        return found, False  # type: ignore[return-value]
    graph, hit = cached_trace(variant)
    out = []
    for view, arrays in zip(views, found, strict=True):
        if arrays is None:
            arrays = kernel_arrays(kernel_graph(graph, *view))
            arrays["graph_macs"] = np.asarray(graph.macs, dtype=np.float64)
            arrays["graph_params"] = np.asarray(graph.params, dtype=np.float64)
            if key:
                store_arrays(key, view, arrays)
        out.append(arrays)
    return out, not hit
