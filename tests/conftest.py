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


class CLIResult:
    """What one ``roofline`` command did: its exit code and what it printed."""

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def error_line(self) -> str:
        """The one error line of a failed command (exit 2, one line on stderr, no traceback);
        an assertion error otherwise."""
        lines = self.err.strip().splitlines()
        assert self.code == 2, f"exit code {self.code}, expected 2; stderr: {self.err!r}"
        assert len(lines) == 1, f"expected one error line, got {lines!r}"
        assert "Traceback" not in self.err
        return lines[0]

    def json(self):
        import json

        assert self.code == 0, self.err
        return json.loads(self.out)


@pytest.fixture()
def cli(capsys):
    """Run ``roofline ARGS...`` in this process: ``cli("graph", "mobilenet_v2")``."""
    from roofline.cli import main

    def run(*argv: str) -> CLIResult:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse rejects an argument before main returns
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return CLIResult(code, out, err)

    return run
