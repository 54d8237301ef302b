"""Shared test configuration: a private graph cache for the whole session.

Tests never read or write the user's ~/.cache; traced graphs are cached in one temporary folder
for the session so that tests tracing the same variant pay for it once.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_graph_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    import os

    folder = tmp_path_factory.mktemp("graph-cache")
    previous = os.environ.get("ROOFLINE_CACHE_DIR")
    os.environ["ROOFLINE_CACHE_DIR"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("ROOFLINE_CACHE_DIR", None)
    else:
        os.environ["ROOFLINE_CACHE_DIR"] = previous


@pytest.fixture()
def cli(capsys):
    """Run ``roofline ARGS...`` in this process: ``cli("graph", "mobilenet_v2")``."""
    from kit import run_cli

    return lambda *argv: run_cli(capsys, *argv)
