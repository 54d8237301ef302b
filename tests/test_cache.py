"""The on-disk cache: keys, invalidation, corrupt entries."""

from __future__ import annotations

import os

import pytest

import roofline.sources.base as base
import roofline.sources.cache as cache
from roofline.core.engine import kernel_arrays, kernel_graph
from roofline.core.hardware import load_hardware
from roofline.sources.variant import Variant


def cached_trace(v: Variant):
    """The graph of ``v`` through the cache, and whether it was a hit."""
    return cache.cached_graph(v.cache_key, v.trace_uncached)


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_keys_follow_the_variant():
    first = Variant("mobilenet_v2", 1.0, 224, 1).cache_key
    assert first == Variant("mobilenet_v2", 1.0, 224, 1).cache_key
    assert first == Variant("mobilenet_v2", None, None, 1).cache_key  # the defaults
    others = {v.cache_key for v in (
        Variant("mobilenet_v2", 0.75, 224, 1), Variant("mobilenet_v2", 1.0, 192, 1),
        Variant("mobilenet_v2", 1.0, 224, 2), Variant("mobilenet_v1", 1.0, 224, 1))}
    assert first not in others and len(others) == 4


def test_a_new_tracer_invalidates(private_cache, monkeypatch):
    v = Variant("mobilenet_v3_small", 0.5, 96)
    _, hit = cached_trace(v)
    assert not hit
    assert cached_trace(v)[1]
    monkeypatch.setattr(base, "_tracer_fingerprint", lambda: "another-tracer")
    assert not cached_trace(v)[1]


def test_editing_a_user_model_invalidates(private_cache, tmp_path):
    path = tmp_path / "net.py"
    path.write_text("from torch import nn\ndef build():\n    return nn.Conv2d(3, 8, 3)\n")
    v = Variant(f"{path}:build", resolution=32)
    first, hit = cached_trace(v)
    assert not hit and first.macs == 30 * 30 * 8 * 27  # outputs x channels x 3*3*3
    path.write_text("from torch import nn\ndef build():\n    return nn.Conv2d(3, 16, 3)\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second, hit = cached_trace(v)
    assert not hit and second.macs == 30 * 30 * 16 * 27


def test_corrupt_graph_is_ignored_and_replaced(private_cache):
    v = Variant("mobilenet_v3_small", 0.5, 96)
    graph, _ = cached_trace(v)
    path = private_cache / "graphs" / f"{v.cache_key}.json"
    path.write_text('{"format": 1, "layers": [')
    again, hit = cached_trace(v)
    assert not hit and again.macs == graph.macs
    assert cache.load_graph(v.cache_key) is not None


def test_kernel_arrays_round_trip_and_corruption(private_cache):
    v = Variant("mobilenet_v2", 0.5, 96)
    view = load_hardware("cpu").kernel_view()
    (arrays,), traced = cache.cached_arrays(v.cache_key, [view], v.trace_uncached)
    assert traced
    expected = kernel_arrays(kernel_graph(v.trace(), *view))
    (again,), traced = cache.cached_arrays(v.cache_key, [view], v.trace_uncached)
    assert not traced
    for name, value in expected.items():
        assert (again[name] == value).all(), name
    assert again["graph_macs"] == v.trace().macs
    files = list((private_cache / "kernels").iterdir())
    assert len(files) == 1
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    assert cache.load_arrays(v.cache_key, view) is None
    assert not files[0].exists()


def test_cache_can_be_turned_off(private_cache, monkeypatch):
    monkeypatch.setenv("ROOFLINE_NO_CACHE", "1")
    v = Variant("mobilenet_v3_small", 0.5, 96)
    assert not cached_trace(v)[1]
    assert not cached_trace(v)[1]
    assert not private_cache.exists()
