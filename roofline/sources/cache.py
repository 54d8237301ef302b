"""The on-disk cache of traced graphs and of the kernel arrays the engine reads, so repeated
runs re-run only the engine.

Owns where cached graphs and kernel arrays live, how they are written and read, and what makes
a kernel array stale. Entries are named by a key the caller makes
(:attr:`roofline.sources.variant.Variant.cache_key`: the model's source fingerprint, the code
that traced it, every size); a change to any of those gives another key and the entry is simply
not found. A graph is stored as JSON (data only: nothing is executed when it is read back).
Kernel arrays (``roofline.core.engine.kernel_arrays``, one raw float64 file per model and kernel
view) are keyed by the graph's key, the kernel view and a hash of the fusion and engine source.
A whole sweep grid is also kept as one file (``store_grid``: every variant's kernel table in
each view, as numpy arrays without pickle), keyed by its variants' keys and its views: a repeated
sweep reads one file instead of one per variant. A corrupt entry is ignored and replaced.

Location: ``$ROOFLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/roofline``, else
``~/.cache/roofline``. ``ROOFLINE_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.graph import LayerGraph

__all__ = ["cache_dir", "cache_enabled", "load_graph", "store_graph", "cached_graph",
           "load_arrays", "store_arrays", "cached_arrays", "view_key", "load_grid", "store_grid"]

View = tuple[bool, frozenset[str]]
_PACKAGE = Path(__file__).resolve().parents[1]


def cache_enabled() -> bool:
    return os.environ.get("ROOFLINE_NO_CACHE", "").strip() not in ("1", "true", "yes")


def cache_dir() -> Path:
    explicit = os.environ.get("ROOFLINE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "roofline"


def _path(key: str) -> Path:
    return cache_dir() / "graphs" / f"{key}.json"


def _read_or_discard(path: Path, read: Callable[[Path], Any],
                     corrupt: tuple[type[BaseException], ...]) -> Any:
    """``read(path)``; None when the entry is absent, and when reading it raises one of
    ``corrupt`` (the entry is removed, to be made again)."""
    try:
        return read(path)
    except FileNotFoundError:
        return None
    except corrupt:
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def _read_graph(path: Path) -> LayerGraph:
    with path.open("r", encoding="utf-8") as handle:
        return LayerGraph.from_dict(json.load(handle))


def load_graph(key: str) -> LayerGraph | None:
    """The cached graph for ``key``, or None when absent or unreadable."""
    return _read_or_discard(_path(key), _read_graph, (OSError, ValueError, KeyError, TypeError))


def store_graph(key: str, graph: LayerGraph) -> None:
    """Write ``graph`` under ``key``; a cache that cannot be written is skipped silently
    (it only costs a re-trace next time)."""
    from ..io import atomic_write_text

    with contextlib.suppress(Exception):
        atomic_write_text(_path(key), json.dumps(graph.to_dict(), separators=(",", ":")),
                          durable=False)


def cached_graph(key: str, make: Callable[[], LayerGraph]) -> tuple[LayerGraph, bool]:
    """The graph cached under ``key``, else ``make()`` (stored); and whether it was cached."""
    if not cache_enabled():
        return make(), False
    graph = load_graph(key)
    if graph is not None:
        return graph, True
    graph = make()
    store_graph(key, graph)
    return graph, False


# -- kernel arrays: what the engine reads, cached per kernel view --------------------------------

_ENGINE_FILES = ("core/fuse.py", "core/engine.py")


@lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _ENGINE_FILES:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


def view_key(view: View) -> str:
    """A short stable name of a kernel view (``HardwareProfile.kernel_view()``)."""
    fused, epilogue = view
    text = f"{fused}|{','.join(sorted(epilogue))}|{_engine_fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _arrays_path(key: str, view: View) -> Path:
    return cache_dir() / "kernels" / f"{key}-{view_key(view)}.f64"


# The arrays of one model in one view are stored as one raw little-endian float64 vector: the
# element count of each array in _ARRAY_ORDER, then the arrays one after another. One small
# read per file, no header to parse, no pickle: a sweep reads thousands of them.
_ARRAY_ORDER = ("kind", "macs", "weight_elements", "bias_elements", "gemm", "input_elements",
                "output_elements", "edge_kernel", "edge_elements", "edge_element_bytes",
                "edge_distance", "write_kernel", "write_elements", "write_element_bytes",
                "write_distance", "precision", "winograd", "window_ops", "transcendental_ops",
                "graph_macs", "graph_params")
_INTEGER_ARRAYS = {"kind", "edge_kernel", "write_kernel", "precision"}


def load_arrays(key: str, view: View) -> dict[str, Any] | None:
    """The cached kernel arrays (``roofline.core.engine.kernel_arrays`` plus ``graph_macs`` and
    ``graph_params``) of a model in one kernel view, or None. Read without pickle."""
    return _read_or_discard(_arrays_path(key, view), _read_arrays,
                            (OSError, ValueError, IndexError, EOFError))


def _read_arrays(path: Path) -> dict[str, Any]:
    import numpy as np

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


def store_arrays(key: str, view: View, arrays: dict[str, Any]) -> None:
    """Write kernel arrays under ``key`` and ``view`` (skipped silently if it cannot)."""
    import numpy as np

    from ..io import atomic_write_bytes

    with contextlib.suppress(Exception):
        parts = [np.asarray(arrays[name], dtype=np.float64).ravel() for name in _ARRAY_ORDER]
        flat = np.concatenate([np.array([len(p) for p in parts], dtype=np.float64), *parts])
        atomic_write_bytes(_arrays_path(key, view), flat.astype("<f8").tobytes(),
                           durable=False)


def cached_arrays(key: str, views: Sequence[View], graph: Callable[[], LayerGraph]
                  ) -> tuple[list[dict[str, Any]], bool]:
    """The kernel arrays of the model cached under ``key`` in each of ``views``, made from
    ``graph()`` (its op view) where missing; and whether a graph had to be traced."""
    import numpy as np

    from ..core.engine import kernel_arrays, kernel_graph

    use = cache_enabled()
    found = [load_arrays(key, view) if use else None for view in views]
    if all(a is not None for a in found):
        return found, False  # type: ignore[return-value]
    op_view, hit = cached_graph(key, graph)
    out = []
    for view, arrays in zip(views, found, strict=True):
        if arrays is None:
            arrays = kernel_arrays(kernel_graph(op_view, *view))
            arrays["graph_macs"] = np.asarray(op_view.macs, dtype=np.float64)
            arrays["graph_params"] = np.asarray(op_view.params, dtype=np.float64)
            if use:
                store_arrays(key, view, arrays)
        out.append(arrays)
    return out, not hit


# -- whole grids: one file per sweep grid -------------------------------------------------------

def _grid_path(keys: Sequence[str], views: Sequence[View]) -> Path:
    text = "\n".join(keys) + "|" + ",".join(view_key(v) for v in views)
    return cache_dir() / "grids" / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.npz"


def store_grid(keys: Sequence[str], views: Sequence[View], arrays: dict[str, Any]) -> None:
    """Write the named numpy ``arrays`` of the grid of variants ``keys`` in ``views`` as one
    file (skipped silently if it cannot be written)."""
    import io

    import numpy as np

    from ..io import atomic_write_bytes

    with contextlib.suppress(Exception):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(_grid_path(keys, views), buffer.getvalue(), durable=False)


def load_grid(keys: Sequence[str], views: Sequence[View]) -> dict[str, Any] | None:
    """The arrays :func:`store_grid` wrote for this grid, or None (absent or unreadable)."""
    if not cache_enabled():
        return None
    return _read_or_discard(_grid_path(keys, views), _read_grid,
                            (OSError, ValueError, KeyError, EOFError))


def _read_grid(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
