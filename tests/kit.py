"""The test kit: what many test files need, written once.

- ``run_cli(capsys, *argv)`` runs ``roofline ARGS...`` in this process and returns a
  ``CLIResult`` (also the ``cli`` fixture of conftest.py, which needs no capsys).
- ``CLIResult.error_line`` asserts the house rule for bad input (exit 2, one line on stderr,
  no traceback) and returns that line; ``.ok`` asserts exit 0 and returns stdout; ``.json()``
  parses it. A result unpacks as ``code, out, err``.
- ``profile(...)`` builds a hardware profile for arithmetic tests: one peak, DRAM only, no
  overhead, efficiency 1 unless given; every section given is sourced "test" so a test states
  only the numbers its arithmetic uses.
- ``zoo_params(names)`` parametrizes a test over zoo models: the small models of distinct
  families in ``FAST_ZOO`` run in the fast lane (``pytest -m "not slow"``), the others are
  marked slow and run in the full suite (CI).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

# One model per family, the smallest: V1, V2, V3 (with SE and h-swish), V4 (universal inverted
# bottleneck). The hybrids' attention is traced in the fast lane by test_engine and test_trace.
FAST_ZOO = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v4_conv_small")


class CLIResult:
    """What one ``roofline`` command did: its exit code and what it printed."""

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __iter__(self) -> Iterator[Any]:
        return iter((self.code, self.out, self.err))

    @property
    def error_line(self) -> str:
        """The one error line of a failed command; an assertion error otherwise."""
        lines = self.err.strip().splitlines()
        assert self.code == 2, f"exit code {self.code}, expected 2; stderr: {self.err!r}"
        assert len(lines) == 1, f"expected one error line, got {lines!r}"
        assert "Traceback" not in self.err
        return lines[0]

    @property
    def ok(self) -> str:
        """Stdout of a command that succeeded; an assertion error (showing stderr) otherwise."""
        assert self.code == 0, f"exit code {self.code}; stderr: {self.err!r}"
        return self.out

    def json(self) -> Any:
        return json.loads(self.ok)


def run_cli(capsys, *argv: object) -> CLIResult:
    """Run ``roofline ARGS...`` in this process, capturing what it prints."""
    from roofline.cli import main

    capsys.readouterr()  # what earlier code printed is not this command's output
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse rejects an argument before main returns
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return CLIResult(code, out, err)


def profile(name: str = "test", *, kind: str = "cpu", peak: float = 1e9,
            bandwidth: float = 1e15, precision: str = "int8",
            peaks: dict[str, float] | None = None, **sections: Any):
    """A profile whose latency a test can work out by hand.

    ``peak`` MACs/s at ``precision`` (or ``peaks``, a table of them), DRAM of ``bandwidth``
    bytes/s and nothing else unless a section (``memory``, ``overhead``, ``efficiency``,
    ``geometry``, ``support``, ``fit``, ...) is given as a keyword.
    """
    from roofline.core.hardware import profile_from_dict

    given = sections.pop("sources", {})
    sources = {key: "test" for key in ("peak_macs_per_s", "dram", *sections)} | given
    return profile_from_dict({
        "name": name, "kind": kind, "description": f"test profile {name}",
        "default_precision": precision,
        "peak_macs_per_s": dict(peaks) if peaks else {precision: peak},
        "dram": {"bandwidth_bytes_per_s": bandwidth},
        **sections, "sources": sources,
    })


def zoo_params(names: Iterable[str]) -> list:
    """Zoo model names as parameters, those outside ``FAST_ZOO`` marked slow."""
    return [pytest.param(name, marks=() if name in FAST_ZOO else pytest.mark.slow)
            for name in names]
