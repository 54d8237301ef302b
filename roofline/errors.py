"""Named errors, each carrying the one-line message the CLI prints (exit code 2).

Owns the error hierarchy and the "did you mean" suggestion helper; does not print or exit.

    RooflineError                  base: a problem with what the user gave us
    ├── UsageError                 a bad argument value (width <= 0, resolution out of range, ...)
    ├── UnknownNameError           an unknown model, hardware, precision, ... with close matches
    ├── ProfileError               a hardware profile that does not parse or validate (file, field)
    ├── MeasurementError           a measurement CSV that cannot be used (file, row, column)
    ├── ModelLoadError             a user model that cannot be imported or built
    ├── TraceError                 a model the tracer cannot run (data-dependent code, ...)
    └── OutputError                an output path that cannot be written

Anything else that escapes is a bug in roofline and is allowed to show its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "RooflineError",
    "UsageError",
    "UnknownNameError",
    "ProfileError",
    "MeasurementError",
    "ModelLoadError",
    "TraceError",
    "OutputError",
    "close_matches",
]


class RooflineError(Exception):
    """A problem with the user's input; ``str(error)`` is one line fit to print as is."""

    exit_code = 2


class UsageError(RooflineError, ValueError):
    """An argument value outside its valid range."""


class UnknownNameError(RooflineError, KeyError):
    """A name that is not registered; the message lists the closest valid names."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind = kind
        self.name = name
        self.choices = sorted(choices)
        self.suggestions = close_matches(name, self.choices)
        super().__init__(self._message())

    def _message(self) -> str:
        if self.suggestions:
            hint = "did you mean " + ", ".join(self.suggestions) + "?"
        else:
            shown = ", ".join(self.choices[:12])
            more = f", ... ({len(self.choices)} in all)" if len(self.choices) > 12 else ""
            hint = f"valid: {shown}{more}"
        return f"unknown {self.kind} {self.name!r}; {hint}"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ProfileError(RooflineError, ValueError):
    """A hardware profile file that does not parse or validate."""


class MeasurementError(RooflineError, ValueError):
    """A measurement file that cannot be used."""


class ModelLoadError(RooflineError, RuntimeError):
    """A user model spec that cannot be imported, called, or does not give an nn.Module."""


class TraceError(RooflineError, RuntimeError):
    """A model that the tracer cannot follow."""


class OutputError(RooflineError, OSError):
    """An output file or folder that cannot be written."""


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name``: prefix matches first, then by edit similarity."""
    choices = list(choices)
    lowered = name.lower()
    prefixed = [c for c in choices if c.lower().startswith(lowered) and lowered]
    similar = difflib.get_close_matches(lowered, choices, n=n, cutoff=0.5)
    out: list[str] = []
    for c in prefixed + similar:
        if c not in out:
            out.append(c)
    return out[:n]
