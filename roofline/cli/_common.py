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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..errors import RooflineError
from ..sources.spec import check_batch, check_resolution, check_width, parse_input
from ..units import PRECISIONS

__all__ = [
    "add_variant_options", "add_input_option",
    "add_precision_option", "arg_type", "split_list", "console",
    "fmt_count", "fmt_bytes", "fmt_ms", "fmt_range", "print_json", "make_table",
    "positive_int", "Col", "Alt",
    "FitTable", "wide_tables", "top1_pair", "add_top1_option", "count_cell", "bytes_cell",
    "kind_cell", "plural",
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


#: Set for the length of one command by ``--wide`` (see :func:`wide_tables`).
_WIDE: ContextVar[bool] = ContextVar("roofline_wide_tables", default=False)

#: The width of a console when every column is shown (``--wide``): wider than any table.
WIDE_WIDTH = 10_000


@contextmanager
def wide_tables(on: bool) -> Iterator[None]:
    """Within this block tables show every column with full numbers (``--wide``), however
    wide the terminal is; lines longer than it wrap in the terminal."""
    token = _WIDE.set(bool(on))
    try:
        yield
    finally:
        _WIDE.reset(token)


def console(stderr: bool = False) -> Any:
    """A rich console without markup; wide and without colour when not on a terminal.

    Its width is the terminal's (rich measures it), else ``$COLUMNS``, else 200; with
    ``--wide`` (:func:`wide_tables`) it is :data:`WIDE_WIDTH` so that no table is squeezed.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = _WIDE.get()
    # markup=False: names come from users (model files, profiles) and must print as they are.
    if stream.isatty():
        return Console(file=stream, highlight=False, markup=False,
                       width=WIDE_WIDTH if wide else None)
    width = WIDE_WIDTH if wide else (int(os.environ.get("COLUMNS", "0") or 0) or 200)
    return Console(file=stream, width=width, color_system=None, highlight=False,
                   soft_wrap=False, markup=False)


# -- tables that fit -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Col:
    """A table column.

    ``priority`` 0 is always shown; when the table is too wide for the terminal the column
    with the highest priority goes first (the rightmost of equals). ``short`` is the header
    used with short cells. ``full_only``: a column whose content the short cell of another
    column carries (``width`` and ``res`` inside ``mobilenet_v2@0.75:160``), shown only when
    the full table fits. ``wrap``: a column of names that may fold onto several lines when
    nothing else helps.
    """

    header: str
    justify: str = "right"
    priority: int = 0
    short: str | None = None
    full_only: bool = False
    wrap: bool = False


@dataclass(frozen=True)
class Alt:
    """A cell with a full and a short form (``300.8M`` / ``301M``); a plain value is both."""

    full: str
    short: str

    def __str__(self) -> str:
        return self.full


#: Characters between two columns.
_GAP = 2


class FitTable:
    """A table that fits the width it is printed at: full cells when they fit; else the short
    cells; else without the columns of highest ``priority``, named in a last line; else its
    ``wrap`` columns folded. A cell is never cut. With ``--wide`` every column is shown, full.

    ``hidden`` lists the headers of the columns left out at the last printing.
    """

    def __init__(self, columns: Sequence[Col | tuple[str, str]], rows: Iterable[Sequence[Any]],
                 title: str | None = None) -> None:
        # (header, justify) columns: text (left) may fold, numbers (right) never do.
        self.columns = [c if isinstance(c, Col) else Col(c[0], c[1], wrap=c[1] == "left")
                        for c in columns]
        self.rows = [[c if isinstance(c, Alt) else str(c) for c in row] for row in rows]
        self.title = title
        self.hidden: list[str] = []
        self._fitted: tuple[int | None, Any] | None = None

    def _cell(self, cell: Alt | str, short: bool) -> str:
        if isinstance(cell, Alt):
            return cell.short if short else cell.full
        return cell

    def _header(self, i: int, short: bool) -> str:
        col = self.columns[i]
        return (col.short or col.header) if short else col.header

    def _widths(self, short: bool) -> list[int]:
        from rich.cells import cell_len

        return [max([cell_len(self._header(i, short))]
                    + [cell_len(self._cell(row[i], short)) for row in self.rows])
                for i in range(len(self.columns))]

    @staticmethod
    def _total(widths: Sequence[int], shown: Sequence[int]) -> int:
        return sum(widths[i] for i in shown) + _GAP * max(len(shown) - 1, 0)

    def layout(self, width: int | None) -> tuple[list[int], bool, dict[int, int]]:
        """(shown column indexes, short cells?, folded widths by column) for ``width``
        characters (None: everything, full)."""
        everything = list(range(len(self.columns)))
        if width is None or self._total(self._widths(False), everything) <= width:
            return everything, False, {}
        short = self._widths(True)
        shown = [i for i in everything if not self.columns[i].full_only]
        drop = sorted((i for i in shown if self.columns[i].priority > 0),
                      key=lambda i: (-self.columns[i].priority, -i))
        while self._total(short, shown) > width and drop:
            shown.remove(drop.pop(0))
        folded: dict[int, int] = {}
        excess = self._total(short, shown) - width
        for i in (i for i in shown if self.columns[i].wrap):
            if excess <= 0:
                break
            narrower = max(short[i] - excess, min(short[i], 8))
            excess -= short[i] - narrower
            folded[i] = narrower
        return shown, True, folded

    def _table(self, width: int | None) -> Any:
        from rich import box
        from rich.table import Table

        shown, short, folded = self.layout(width)
        widths = self._widths(short)
        self.hidden = [self.columns[i].header for i, c in enumerate(self.columns)
                       if i not in shown and not c.full_only]
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True, padding=(0, 1))
        for i in shown:
            col = self.columns[i]
            if i in folded:
                table.add_column(self._header(i, short), justify=col.justify,
                                 overflow="fold", width=folded[i])
            else:  # as wide as its widest cell: rich never needs to shorten it
                table.add_column(self._header(i, short), justify=col.justify, no_wrap=True,
                                 overflow="fold", min_width=widths[i])
        for row in self.rows:
            table.add_row(*(self._cell(row[i], short) for i in shown))
        return table

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.text import Text

        width = None if _WIDE.get() else options.max_width
        if self.title:
            yield Text(self.title)
        yield self._table(width)
        if self.hidden:
            yield Text(f"(not shown at {width} columns: {', '.join(self.hidden)}; --wide shows "
                       f"every column)")


def make_table(columns: Sequence[Col | tuple[str, str]], rows: Iterable[Sequence[Any]],
               title: str | None = None) -> FitTable:
    """A table that fits the terminal (:class:`FitTable`); each column is a :class:`Col` or
    (header, "left"|"right"), and a cell an :class:`Alt` (full and short form) or any value."""
    return FitTable(columns, rows, title)


def _scaled(n: float, short: bool) -> str:
    """One decimal, or (short) two significant digits and none below 10: 14.16 -> '14'."""
    text = f"{n:.1f}"
    return f"{n:.0f}" if short and abs(n) >= 10 else text


def fmt_count(n: float, short: bool = False) -> str:
    """300774272 -> '300.8M' (short: '301M')."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{_scaled(n / scale, short)}{unit}"
    return f"{n:g}"


def fmt_bytes(n: float, short: bool = False) -> str:
    """14155936 -> '14.2 MB' (short: '14 MB'; decimal units)."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(n) >= scale:
            return f"{_scaled(n / scale, short)} {unit}"
    return f"{n:g} B"


def count_cell(n: float) -> Alt:
    """A count as a table cell: '300.8M', short '301M'."""
    return Alt(fmt_count(n), fmt_count(n, short=True))


def bytes_cell(n: float) -> Alt:
    """Bytes as a table cell: '14.2 MB', short '14 MB'."""
    return Alt(fmt_bytes(n), fmt_bytes(n, short=True))


#: Short names of op kinds for narrow tables.
_SHORT_KINDS = {"depthwise_conv": "dw conv", "pointwise_conv": "1x1 conv",
                "elementwise": "eltwise", "normalization": "norm", "activation": "act",
                "data_movement": "copy"}


def kind_cell(kind: str) -> Alt:
    """An op kind as a table cell: 'depthwise_conv', short 'dw conv'."""
    return Alt(kind, _SHORT_KINDS.get(kind, kind))


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """'1 kernel', '2 kernels' (``plural_form`` for nouns that do not add an s)."""
    return f"{n} {noun if n == 1 else (plural_form or noun + 's')}"


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


def fmt_range(low_high: Sequence[float] | None) -> str:
    """A latency range as ``low–high`` in milliseconds (``-`` when there is none)."""
    if not low_high:
        return "-"
    low, high = low_high
    return f"{fmt_ms(low)}–{fmt_ms(high)}"


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def top1_pair(text: str) -> tuple[str, float]:
    """An argparse type: ``MODEL=PERCENT`` (the model as written in --models, 0-100 %)."""
    spec, sep, value = str(text).rpartition("=")
    if not sep or not spec.strip():
        raise argparse.ArgumentTypeError(f"must be MODEL=PERCENT (e.g. mynet.py:build=75.0), "
                                         f"got {text!r}")
    from ..analyses.compare import check_top1

    try:
        return spec.strip(), check_top1(value.strip().removesuffix("%"), spec.strip())
    except RooflineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_top1_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--top1 MODEL=PERCENT, repeatable."""
    parser.add_argument("--top1", type=top1_pair, action="append", default=[],
                        metavar="MODEL=PERCENT",
                        help=f"ImageNet top-1 (0-100 %%) of {what}, as written in --models; "
                             "repeat for more models. It puts a model the zoo has no figure "
                             "for (your own) on the accuracy charts and the frontier, and "
                             "replaces a published figure")


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
