"""Block graphs: each distinct block of a search space traced once, as kernel arrays per view.

Owns what a candidate is made of for pricing — *units*: the stem, every block at its input
shape and choice, the head — how a unit is built as an ``nn.Module`` (from the zoo's layers,
on the meta device), traced with the project's tracer, turned into the engine's kernel arrays
in each kernel view, and cached (in memory and on disk under the graph cache's folder). The
composition of units into whole candidates is ``roofline.analyses.search.pricing``.

What makes a unit's arrays the same as its part of a whole-network trace:

* it is traced behind a *stub*, a 1x1 depthwise conv that produces its input, so every read
  of that input (the first conv, and the residual add at the block's end) has the reuse
  distance it has in the network, where the previous unit's last kernel produced it; the stub's
  own kernel is then dropped;
* its output is the traced graph's output (distance inf); composition sets that write's
  distance to the next unit's farthest read of it (``in_read``), as the engine would;
* the unit's first op must not run inside the previous kernel. Mobile MQA starts with a batch
  norm on its input, which does, so an MQA block is one unit together with the block before
  it (:attr:`~roofline.analyses.search.space.BlockOp.leading_norm`); the stub check proves it.

The model input (the stem's) and the model output (the head's) keep distance inf.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .space import BlockOp

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["BlockKey", "HeadKey", "UnitKey", "build_unit", "unit_arrays", "UnitBank",
           "View", "unit_fingerprint"]

View = tuple[bool, frozenset[str]]


@dataclass(frozen=True, order=True)
class BlockKey:
    """One block at one input shape: what it is, its widths, stride and activation."""

    op: BlockOp
    c_in: int
    c_out: int
    stride: int
    activation: str
    height: int  # input
    width: int


@dataclass(frozen=True, order=True)
class HeadKey:
    """The head at its input shape (see :class:`~roofline.analyses.search.space.Head`)."""

    c_in: int
    height: int
    width: int
    conv: int  # 0: none
    hidden: int  # 0: none
    hidden_norm: bool
    classes: int
    activation: str


@dataclass(frozen=True, order=True)
class UnitKey:
    """What is priced as one piece: a run of blocks (one block, or a block and the Mobile MQA
    blocks after it) or the head; ``model_input``: it reads the image (the stem)."""

    parts: tuple[BlockKey | HeadKey, ...]
    batch: int = 1
    model_input: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        first = self.parts[0]
        return (self.batch, first.c_in, first.height, first.width)

    def text(self) -> str:
        """A stable, readable spelling (the cache key hashes it)."""
        parts = []
        for p in self.parts:
            if isinstance(p, HeadKey):
                parts.append(f"head{p.c_in}@{p.height}x{p.width}:{p.conv}/{p.hidden}/"
                             f"{int(p.hidden_norm)}/{p.classes}/{p.activation}")
            else:
                parts.append(f"{p.op.token}:{p.c_in}>{p.c_out}s{p.stride}/{p.activation}@"
                             f"{p.height}x{p.width}")
        return f"b{self.batch}{'i' if self.model_input else ''}|" + "|".join(parts)


# -- modules ------------------------------------------------------------------------------------

def _act(name: str) -> Callable[[], nn.Module]:
    from torch import nn

    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "gelu": nn.GELU}[name]


def hidden_channels(c_in: int, expand: float) -> int:
    """An expanded width: make_divisible(C_in · e, 8), as every MobileNet."""
    from ...zoo.layers import make_divisible

    return make_divisible(c_in * expand)


def build_block(key: BlockKey) -> nn.Module:
    """The block ``key`` names, from the zoo's layers (``roofline.zoo.layers``)."""
    from ...zoo import layers as L

    op, act = key.op, _act(key.activation)
    if op.type == "conv":
        return L.ConvBnAct(key.c_in, key.c_out, op.kernel, key.stride, act=act)
    if op.type == "fused_ib":
        return L.FusedInvertedBottleneck(key.c_in, hidden_channels(key.c_in, op.expand),
                                         key.c_out, op.kernel, key.stride, act)
    if op.type in ("ib", "convnext", "extradw", "ffn"):
        start, middle = {"ib": (0, op.kernel), "convnext": (op.kernel, 0),
                         "extradw": (op.kernel, op.kernel2), "ffn": (0, 0)}[op.type]
        return L.UniversalInvertedBottleneck(key.c_in, hidden_channels(key.c_in, op.expand),
                                             key.c_out, start, middle, key.stride, act)
    if op.type == "ir":
        hidden = hidden_channels(key.c_in, op.expand)
        se = L.make_divisible(hidden / 4) if op.se else None
        return L.InvertedResidual(key.c_in, hidden, key.c_out, op.kernel, key.stride, act, se)
    if op.type == "mqa":
        return L.MobileMQA(key.c_in, key.c_out, op.heads, op.key_dim, op.kv_stride, 3)
    raise ValueError(f"unknown block type {op.type!r}")


def build_head(key: HeadKey) -> nn.Module:
    from torch import nn

    from ...zoo import layers as L

    act = _act(key.activation)
    head = L.ClassifierHead(key.conv or key.c_in, key.classes, hidden_channels=key.hidden or None,
                            hidden_norm=key.hidden_norm, act=act)
    if not key.conv:
        return head
    return nn.Sequential(L.ConvBnAct(key.c_in, key.conv, 1, act=act), head)


def build_part(part: BlockKey | HeadKey) -> nn.Module:
    return build_head(part) if isinstance(part, HeadKey) else build_block(part)


def build_unit(key: UnitKey) -> nn.Module:
    from torch import nn

    return nn.Sequential(*(build_part(p) for p in key.parts))


# -- tracing a unit ------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def unit_fingerprint() -> str:
    """What a unit's arrays depend on: the tracer and engine (via the kernel-array cache's
    view key), the zoo's layers and this module."""
    from importlib import resources

    from ...sources.base import _tracer_fingerprint

    digest = hashlib.sha256(_tracer_fingerprint().encode())
    # Read, not imported: importing the zoo's layers imports torch, which a warm run never
    # needs.
    digest.update(resources.files("roofline.zoo").joinpath("layers.py").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def _trace_unit(key: UnitKey) -> Any:
    import torch
    from torch import nn

    from ...sources.pytorch.tracer import trace

    with torch.device("meta"):
        unit = build_unit(key)
        if not key.model_input:
            c = key.input_shape[1]
            unit = nn.Sequential(nn.Conv2d(c, c, 1, groups=c, bias=False), unit)
    return trace(unit, key.input_shape, name=key.text())


def _split(key: UnitKey, graph: Any, view: View) -> dict[str, np.ndarray]:
    """The unit's kernel arrays in ``view``, without the stub, with its input reads and its
    output write marked."""
    from ...core.engine import kernel_arrays, kernel_graph

    kernels = kernel_graph(graph, *view)
    arrays = kernel_arrays(kernels)
    layers = kernels.layers
    # Entry i of the edge (write) arrays is the i-th (kernel, tensor) pair in kernel order,
    # as kernel_arrays lists them.
    edge_tensor = np.array([t.id for layer in layers for t in layer.inputs], dtype=np.int64)
    write_tensor = np.array([t.id for layer in layers for t in layer.outputs], dtype=np.int64)
    if len(edge_tensor) != len(arrays["edge_kernel"]) or \
            len(write_tensor) != len(arrays["write_kernel"]):
        raise AssertionError("kernel_arrays no longer lists one entry per tensor use")
    out_ids = {t.id for t in kernels.outputs}
    skip = 0
    in_ids: set[int] = set()
    if not key.model_input:
        stub = layers[0]
        if stub.module != "0" or stub.fused_ops:
            raise AssertionError(f"{key.text()}: the unit's first op ran inside the kernel "
                                 f"before it ({stub.fused_ops}); it cannot start a unit")
        skip = 1
        in_ids = {t.id for t in stub.outputs}
    keep_e = arrays["edge_kernel"] >= skip
    keep_w = arrays["write_kernel"] >= skip
    out: dict[str, np.ndarray] = {}
    for name in ("kind", "macs", "weight_elements", "bias_elements", "gemm", "input_elements",
                 "output_elements", "winograd", "window_ops", "transcendental_ops"):
        out[name] = arrays[name][skip:]
    for name in ("edge_kernel", "edge_elements", "edge_element_bytes", "edge_distance"):
        out[name] = arrays[name][keep_e]
    for name in ("write_kernel", "write_elements", "write_element_bytes", "write_distance"):
        out[name] = arrays[name][keep_w]
    out["edge_kernel"] = out["edge_kernel"] - skip
    out["write_kernel"] = out["write_kernel"] - skip
    edge_tensor, write_tensor = edge_tensor[keep_e], write_tensor[keep_w]
    reads_input = np.isin(edge_tensor, list(in_ids))
    is_out = np.isin(write_tensor, list(out_ids))
    n = len(out["macs"])
    if not key.model_input and (not reads_input.any()
                                or not np.isfinite(out["edge_distance"][reads_input]).all()):
        raise AssertionError(f"{key.text()}: its input reads are not where expected")
    if is_out.sum() != 1 or out["write_kernel"][is_out][0] != n - 1:
        raise AssertionError(f"{key.text()}: the unit's output is not written by its last "
                             f"kernel alone")
    out["is_out"] = is_out.astype(np.float64)
    # Which of the unit's parts (blocks, head) each kernel belongs to: the first index of its
    # module path inside the unit (Sequential(stub, Sequential(parts)) or Sequential(parts)).
    depth = 0 if key.model_input else 1
    out["part"] = np.array([_part_of(layer.module, depth) for layer in layers[skip:]],
                           dtype=np.float64)
    out["in_read"] = np.array([out["edge_distance"][reads_input].max()
                               if reads_input.any() else np.inf])
    stub_macs = graph.layers[0].macs if skip else 0
    stub_params = key.input_shape[1] if skip else 0
    out["macs_total"] = np.array([float(graph.macs - stub_macs)])
    out["params_total"] = np.array([float(graph.params - stub_params)])
    return out


def _part_of(module: str, depth: int) -> int:
    names = module.split(".")
    if len(names) <= depth or not names[depth].isdigit():
        raise AssertionError(f"kernel of module {module!r} belongs to no part of its unit")
    return int(names[depth])


def unit_arrays(key: UnitKey, views: Sequence[View]) -> list[dict[str, np.ndarray]]:
    """The unit's arrays in each of ``views`` (traced now; see :class:`UnitBank` for caches)."""
    graph = _trace_unit(key)
    return [_split(key, graph, view) for view in views]


# -- the on-disk cache ---------------------------------------------------------------------------

_ORDER = ("kind", "macs", "weight_elements", "bias_elements", "gemm", "input_elements",
          "output_elements", "edge_kernel", "edge_elements", "edge_element_bytes",
          "edge_distance", "write_kernel", "write_elements", "write_element_bytes",
          "write_distance", "winograd", "window_ops", "transcendental_ops", "is_out", "part",
          "in_read", "macs_total", "params_total")
_INTEGER = {"kind", "edge_kernel", "write_kernel"}


def _path(key: UnitKey, view: View) -> Path:
    from ...sources.cache import cache_dir, view_key

    digest = hashlib.sha256(f"{key.text()}|{unit_fingerprint()}".encode()).hexdigest()[:32]
    return cache_dir() / "search-units" / f"{digest}-{view_key(view)}.f64"


def load_unit(key: UnitKey, view: View) -> dict[str, np.ndarray] | None:
    path = _path(key, view)
    try:
        flat = np.fromfile(path, dtype="<f8")
        n = len(_ORDER)
        sizes = flat[:n].astype(np.int64)
        if len(flat) != n + int(sizes.sum()):
            raise ValueError("truncated")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    out: dict[str, np.ndarray] = {}
    start = n
    for name, size in zip(_ORDER, sizes, strict=True):
        part = flat[start:start + size]
        start += size
        out[name] = part.astype(np.int64) if name in _INTEGER else part
    out["gemm"] = out["gemm"].reshape(-1, 2, 4)
    return out


def store_unit(key: UnitKey, view: View, arrays: dict[str, np.ndarray]) -> None:
    """Write a unit's arrays (skipped silently if it cannot). Renamed into place but not
    fsync'ed: a cache entry needs no durability, a torn one fails the size check and is
    traced again, and thousands of fsyncs would cost more than the tracing."""
    import os
    import tempfile

    path = _path(key, view)
    with contextlib.suppress(Exception):
        parts = [np.asarray(arrays[name], dtype=np.float64).ravel() for name in _ORDER]
        flat = np.concatenate([np.array([len(p) for p in parts], dtype=np.float64), *parts])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(flat.astype("<f8").tobytes())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def cached_unit_arrays(key: UnitKey, views: Sequence[View]) -> list[dict[str, np.ndarray]]:
    """The unit's arrays in each view: from the disk cache, else traced and stored."""
    from ...sources.cache import cache_enabled

    found = [load_unit(key, v) for v in views] if cache_enabled() else [None] * len(views)
    if all(a is not None for a in found):
        return found  # type: ignore[return-value]
    arrays = unit_arrays(key, views)
    if cache_enabled():
        for view, a in zip(views, arrays, strict=True):
            store_unit(key, view, a)
    return arrays


def trace_task(keys: Sequence[UnitKey], views: Sequence[View]
               ) -> list[list[dict[str, np.ndarray]]]:
    """A worker's task: the arrays of several units (cached on the worker's disk too)."""
    return [cached_unit_arrays(k, views) for k in keys]


# -- the bank: every unit's arrays in one view, concatenated ------------------------------------

class UnitBank:
    """Every known unit's arrays, per kernel view, as flat arrays with per-unit offsets, so a
    batch of candidates is composed by gathering (``roofline.analyses.search.pricing``).

    Units get dense ids in the order they are registered (:meth:`ids`); their arrays come from
    memory, the disk cache, or tracing (:meth:`fill`, which may use worker processes or Ray).
    """

    def __init__(self, views: Sequence[View], batch: int = 1):
        self.views = list(views)
        self.batch = batch
        self.keys: list[UnitKey] = []
        self.index: dict[UnitKey, int] = {}
        self._arrays: list[list[dict[str, np.ndarray]] | None] = []
        self._flat: dict[View, dict[str, np.ndarray]] = {}
        self._version = 0  # bumped whenever a unit is added or filled
        self._flat_version = -1
        self.traced = 0
        self.from_cache = 0

    def __len__(self) -> int:
        return len(self.keys)

    def id_of(self, key: UnitKey) -> int:
        uid = self.index.get(key)
        if uid is None:
            uid = len(self.keys)
            self.index[key] = uid
            self.keys.append(key)
            self._arrays.append(None)
            self._version += 1
        return uid

    def missing(self, ids: np.ndarray | Sequence[int]) -> list[int]:
        return [int(u) for u in np.unique(np.asarray(ids)) if u >= 0 and self._arrays[u] is None]

    def fill(self, ids: np.ndarray | Sequence[int],
             run: Callable[[list[UnitKey]], list[list[dict[str, np.ndarray]]]] | None = None,
             progress: Callable[[int, int], None] | None = None) -> None:
        """Make sure units ``ids`` have arrays: from the disk cache, else traced by ``run``
        (a backend's map over unit keys; default: in this process)."""
        from ...sources.cache import cache_enabled

        todo = self.missing(ids)
        later: list[int] = []
        for u in todo:
            found = [load_unit(self.keys[u], v) for v in self.views] if cache_enabled() \
                else [None]
            if all(a is not None for a in found):
                self._arrays[u] = found  # type: ignore[assignment]
                self.from_cache += 1
                self._version += 1
            else:
                later.append(u)
        if not later:
            return
        keys = [self.keys[u] for u in later]
        if run is None:
            results = []
            for i, k in enumerate(keys):
                results.append(cached_unit_arrays(k, self.views))
                if progress:
                    progress(i + 1, len(keys))
        else:
            results = run(keys)
        for u, key, arrays in zip(later, keys, results, strict=True):
            if arrays is None:
                continue
            self._arrays[u] = arrays
            self.traced += 1
            self._version += 1
            if cache_enabled():  # a remote worker's disk is not ours
                for view, a in zip(self.views, arrays, strict=True):
                    if not _path(key, view).exists():
                        store_unit(key, view, a)

    def arrays(self, uid: int, view: View) -> dict[str, np.ndarray]:
        found = self._arrays[uid]
        if found is None:
            raise KeyError(f"unit {self.keys[uid].text()} has no arrays yet")
        return found[self.views.index(view)]

    def flat(self, view: View) -> dict[str, np.ndarray]:
        """Every filled unit's arrays in ``view`` concatenated, with ``k_start``/``k_count``,
        ``e_start``/``e_count``, ``w_start``/``w_count`` per unit id (count 0 when absent)."""
        if self._flat_version != self._version or view not in self._flat:
            self._rebuild()
        return self._flat[view]

    def _rebuild(self) -> None:
        n = len(self.keys)
        self._flat = {}
        for k, view in enumerate(self.views):
            per = [a[k] if a is not None else None for a in self._arrays]
            flat: dict[str, np.ndarray] = {}
            for group, first in (("k", "macs"), ("e", "edge_kernel"), ("w", "write_kernel")):
                counts = np.array([len(a[first]) if a is not None else 0 for a in per],
                                  dtype=np.int64)
                flat[f"{group}_count"] = counts
                flat[f"{group}_start"] = np.concatenate([[0], np.cumsum(counts)[:-1]]) \
                    if n else np.zeros(0, dtype=np.int64)
            filled = [a for a in per if a is not None]
            for name in _ORDER:
                if name in ("in_read", "macs_total", "params_total"):
                    flat[name] = np.array([float(a[name][0]) if a is not None else np.nan
                                           for a in per])
                elif filled:
                    flat[name] = np.concatenate([a[name] for a in filled])
                else:
                    flat[name] = np.zeros((0, 2, 4) if name == "gemm" else 0)
            flat["filled"] = np.array([a is not None for a in per], dtype=bool)
            self._flat[view] = flat
        self._flat_version = self._version

    def describe(self) -> dict[str, Any]:
        return {"units": len(self.keys), "traced": self.traced, "from_cache": self.from_cache}


def key_record(key: UnitKey) -> dict[str, Any]:
    """Plain data describing a unit (for lookup tables)."""
    return json.loads(json.dumps({"parts": [asdict(p) for p in key.parts],
                                  "batch": key.batch, "model_input": key.model_input}))
