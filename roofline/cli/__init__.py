"""``roofline`` on the command line: parse, call the library, print.

Owns the top-level parser, the one-line error contract (exit 2, no traceback, for anything the
user gave us that is wrong) and the command registry; each command lives in its own module
with ``register(subparsers)`` and does its heavy imports only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from ..errors import RooflineError, close_matches

__all__ = ["main", "build_parser", "COMMANDS"]

#: Subcommand modules under roofline.cli, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("list", "graph", "profile", "compare", "sweep", "search",
                             "calibrate", "validate")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message and "argument COMMAND" in message:
            bad = message.split("'")[1] if "'" in message else ""
            hint = close_matches(bad, _available_commands())
            message = (f"unknown command {bad!r}; " + (f"did you mean {', '.join(hint)}?" if hint
                       else f"valid: {', '.join(_available_commands())}"))
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: object) -> str:
    """``message`` on one printable line: control characters (newlines included) escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(message))


def _available_commands() -> list[str]:
    return [c for c in COMMANDS if importlib.util.find_spec(f"roofline.cli.{c}_cmd")]


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(
        prog="roofline",
        description="Hardware-aware latency modelling and roofline simulation for mobile "
                    "vision models. MACs are multiply-accumulates (1 MAC = 2 FLOPs).",
    )
    parser.add_argument("--version", action="version", version=f"roofline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in _available_commands():
        importlib.import_module(f"roofline.cli.{name}_cmd").register(sub)
    for command in sub.choices.values():  # every command prints a table
        if "--wide" not in command._option_string_actions:
            command.add_argument("--wide", action="store_true",
                                 help="tables with every column and full numbers, however "
                                      "wide the terminal (default: the columns that fit)")
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    print(f"roofline: warning: {one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # for provenance: reports and profiles record the command that made them
    with warnings.catch_warnings():
        # Warnings meant for the user (unknown ops, ...) are printed as one line each,
        # whatever filters the calling process set.
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ._common import wide_tables

    try:
        with wide_tables(getattr(args, "wide", False)):
            return int(args.func(args) or 0)
    except RooflineError as exc:
        print(f"roofline {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"roofline {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``); stop quietly, as other command-line tools do.
        sys.stdout = None  # type: ignore[assignment]
        return 0
