"""Execution backends: local processes and a local Ray cluster give the same rows for
``sweep`` and ``search``; results stream back in any order; stopping cancels the rest."""

from __future__ import annotations

import csv
import os

import pytest

from roofline.analyses.backends import LocalBackend, make_backend, ray_available
from roofline.errors import UnknownNameError, UsageError

from kit import run_cli

WHY_NO_RAY = ray_available()


def _square(context, item):
    return context * item * item


@pytest.mark.parametrize("workers", [1, 2])
def test_local_backend_returns_every_result(workers):
    got = dict(LocalBackend(workers).run(_square, list(range(12)), 3))
    assert got == {i: 3 * i * i for i in range(12)}


def test_backend_names_are_checked():
    with pytest.raises(UnknownNameError, match="did you mean ray"):
        make_backend("rey")
    with pytest.raises(UsageError, match="--address goes with --backend ray"):
        make_backend("local", address="host:6379")


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def local_ray():
    if WHY_NO_RAY is not None:
        pytest.skip(f"Ray cannot be imported here ({WHY_NO_RAY}); pip install "
                    f"'roofline[distributed]' to run the Ray backend tests")
    import ray

    # Workers read and write the session's graph cache (tests never touch ~/.cache).
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"ROOFLINE_CACHE_DIR": os.environ["ROOFLINE_CACHE_DIR"]}})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_sweep_writes_the_same_rows_as_local(local_ray, capsys, tmp_path, monkeypatch):
    args = ["sweep", "mobilenet_v2", "--width", "0.35,0.5,0.8", "--resolution", "96,128",
            "--hw", "cpu,gpu", "--no-report"]
    # Each backend traces from an empty cache of its own: the Ray workers really trace.
    monkeypatch.setenv("ROOFLINE_NO_CACHE", "1")
    code, out, err = run_cli(capsys, *args, "--backend", "ray", "--csv", str(tmp_path / "ray.csv"))
    assert code == 0, err
    assert "ray (running cluster" in out  # the fixture's cluster: joined, not started
    assert "6 traced" in out
    code, _, err = run_cli(capsys, *args, "--csv", str(tmp_path / "local.csv"))
    assert code == 0, err
    assert _rows(tmp_path / "ray.csv") == _rows(tmp_path / "local.csv")
    assert len(_rows(tmp_path / "ray.csv")) == 1 + 6 * 2


@pytest.mark.slow
def test_ray_search_writes_the_same_rows_as_local(local_ray, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_NO_CACHE", "1")
    args = ["search", "mobilenet_v3", "--hw", "cpu,edgetpu", "--samples", "600",
            "--latency-ms", "cpu=10", "--no-report"]
    code, out, err = run_cli(capsys, *args, "--backend", "ray", "--csv", str(tmp_path / "ray.csv"))
    assert code == 0, err
    assert "(ray (" in out
    code, _, err = run_cli(capsys, *args, "--csv", str(tmp_path / "local.csv"))
    assert code == 0, err
    ray_rows = _rows(tmp_path / "ray.csv")
    assert ray_rows == _rows(tmp_path / "local.csv") and len(ray_rows) == 601


@pytest.mark.slow
def test_ray_search_prices_chunks_on_the_cluster(local_ray):
    from roofline.analyses.backends import RayBackend
    from roofline.analyses.search.search import SearchConfig, run_search
    from roofline.analyses.search.space import load_space
    from roofline.core.hardware import load_hardware

    hw = (load_hardware("gpu"),)
    config = SearchConfig(load_space("mobilenet_v3"), hw, 900, chunk=200)
    on_ray = run_search(config, RayBackend())
    local = run_search(config, LocalBackend(1))
    assert (on_ray.rows == local.rows).all()
    assert (on_ray.prices.latency_s == local.prices.latency_s).all()
    assert on_ray.stats.backend.startswith("ray")
