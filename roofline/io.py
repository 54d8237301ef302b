"""Writing output files atomically: a temporary file in the same folder, then a rename.

Owns every write of a report, profile, CSV or JSON file, so that a failure at any point leaves
the previous file as it was and never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from .errors import OutputError

__all__ = ["atomic_write_text", "atomic_write_texts", "atomic_write_bytes", "atomic_open",
           "check_writable"]


def check_writable(path: str | os.PathLike[str], *, create_parent: bool = True) -> Path:
    """Resolve ``path`` and check its folder can be written (creating it if asked)."""
    target = Path(path).expanduser()
    if target.exists() and target.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: it is a folder")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        if not create_parent:
            raise OutputError(f"cannot write {str(target)!r}: folder {str(parent)!r} does not "
                              f"exist")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder {str(parent)!r}: {exc.strerror or exc}") \
                from None
    if not parent.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {str(target)!r}: folder {str(parent)!r} is not "
                          f"writable")
    return target


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *,
                create_parent: bool = True, durable: bool = True) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched. ``durable``
    flushes the file to the disk before the rename (fsync): what a report or a profile needs
    to survive a crash; a cache entry, which is re-made when it is missing or unreadable,
    does without.
    """
    target = check_writable(path, create_parent=create_parent)
    binary = "b" in mode
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent or ".")
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else
                                                        {"encoding": "utf-8",
                                                         "newline": ""})) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if target.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, **kwargs: bool) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path written."""
    with atomic_open(path, "w", **kwargs) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_texts(files: Sequence[tuple[str | os.PathLike[str], str]]) -> list[Path]:
    """Write several text files together: each to a temporary file beside it, and only when
    every one is written and flushed to the disk, rename them into place (a failure before
    then leaves every previous file as it was). Returns the paths written."""
    with contextlib.ExitStack() as stack:
        for path, text in files:
            handle = stack.enter_context(atomic_open(path, "w"))
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return [Path(path) for path, _ in files]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, **kwargs: bool) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written."""
    with atomic_open(path, "wb", **kwargs) as handle:
        handle.write(data)
    return Path(path)
