"""Options, argument types and output helpers shared by the commands.

Owns how the CLI spells widths, resolutions, batches, precisions and hardware lists, and how it
prints tables, numbers and JSON; the library does the work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import RooflineError
from ..sources.spec import check_batch, check_resolution, check_width, parse_input
from ..units import PRECISIONS

__all__ = [
    "add_variant_options", "add_input_option",
    "add_precision_option", "arg_type", "split_list", "console",
    "fmt_count", "fmt_bytes", "fmt_ms", "print_json", "make_table", "positive_int",
    "seconds_between", "write_rows_csv", "ProgressBar",
]


def arg_type(check: Callable[[Any], Any], label: str) -> Callable[[str], Any]:
    """Wrap a library validator as an argparse type (its message becomes argparse's)."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except RooflineError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = label
    return convert


def _precision(text: str) -> str:
    if text not in PRECISIONS:
        raise argparse.ArgumentTypeError(
            f"unknown precision {text!r}; valid: {', '.join(PRECISIONS)}")
    return text


def add_variant_options(parser: argparse.ArgumentParser, *, batch: bool = True) -> None:
    """--width, --resolution and (optionally) --batch."""
    parser.add_argument("--width", type=arg_type(check_width, "width"), default=None,
                        metavar="A", help="width multiplier, any number > 0 (default 1.0)")
    parser.add_argument("--resolution", type=arg_type(check_resolution, "resolution"),
                        default=None, metavar="R",
                        help="input resolution in pixels, 8-8192 (default: the model's own)")
    if batch:
        parser.add_argument("--batch", type=arg_type(check_batch, "batch"), default=1,
                            metavar="B", help="batch size (default 1)")
    add_input_option(parser)


def add_input_option(parser: argparse.ArgumentParser) -> None:
    """--input SHAPE[:DTYPE], repeatable: the model's inputs instead of an image batch."""
    parser.add_argument("--input", dest="input", action="append", default=None,
                        type=arg_type(parse_input, "input"), metavar="SHAPE[:DTYPE]",
                        help="a model input instead of the default image batch, repeatable "
                             "for several (1x3x224x224, 1x16:int64; NAME=SHAPE[:DTYPE] for a "
                             "keyword input); dtypes: float32, float16, int64, int32, int8, "
                             "uint8, bool")


def add_precision_option(parser: argparse.ArgumentParser, default: str | None) -> None:
    what = f"default {default}" if default else "default: the hardware's own"
    parser.add_argument("--precision", type=_precision, default=default,
                        metavar="|".join(PRECISIONS),
                        help=f"bytes per weight and activation ({what})")


def split_list(text: str, what: str) -> list[str]:
    """Split ``a,b,c`` into names; an empty list is an error."""
    items = [item.strip() for item in str(text).split(",")]
    items = [item for item in items if item]
    if not items:
        raise argparse.ArgumentTypeError(f"empty {what} list; give one or more names "
                                         f"separated by commas")
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def console(stderr: bool = False) -> Any:
    """A rich console without markup; wide and without colour when not on a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # markup=False: names come from users (model files, profiles) and must print as they are.
    if stream.isatty():
        return Console(file=stream, highlight=False, markup=False)
    width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(file=stream, width=width, color_system=None, highlight=False,
                   soft_wrap=False, markup=False)


def make_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]],
               title: str | None = None) -> Any:
    """A rich table; each column is (header, "left"|"right")."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def fmt_count(n: float) -> str:
    """300774272 -> '300.8M'."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:g}"


def fmt_bytes(n: float) -> str:
    """14155936 -> '14.2 MB' (decimal units)."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g} B"


def fmt_ms(ms: float | None) -> str:
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return "-"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 0.1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def seconds_between(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``low`` to ``high``."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") \
                from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g} seconds, got "
                                             f"{text}")
        return value

    convert.__name__ = "seconds"
    return convert


def write_rows_csv(path: str, rows: Sequence[dict[str, Any]],
                   fields: Sequence[str] | None = None) -> None:
    """Write ``rows`` (dicts) to ``path`` as CSV, atomically. A list cell (a latency range,
    unsupported op kinds) is written as its JSON text, ``[0.93, 1.21]``, so it reads back."""
    import csv
    import json

    from ..io import atomic_open

    names = list(fields) if fields is not None else (list(rows[0]) if rows else [])
    with atomic_open(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, (list, tuple)) else v
                          for k, v in row.items()} for row in rows)


class ProgressBar:
    """A progress bar on stderr when it is a terminal, silent otherwise (no garbage in pipes
    or CI logs). ``update(completed, description=None)`` with ``completed`` out of ``total``.
    """

    def __init__(self, total: float, description: str = "") -> None:
        self.total = total
        self.description = description
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> ProgressBar:
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("{task.description:<22}"), BarColumn(),
                                TaskProgressColumn(), TimeElapsedColumn(),
                                console=console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=self.total)
        return self

    def update(self, completed: float, description: str | None = None) -> None:
        if self.bar is not None:
            if description is None:
                self.bar.update(self.task, completed=completed)
            else:
                self.bar.update(self.task, completed=completed, description=description)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
