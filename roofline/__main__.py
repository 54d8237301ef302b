"""``python -m roofline``: the command-line interface."""

import atexit
import os
import sys

from .cli import main


def _exit(code: int) -> None:
    """End the process with ``code`` as soon as its work is done.

    The exit handlers run (worker pools, temporary folders, logging), the output is flushed,
    and then the process ends without tearing down every module it imported: with torch
    loaded that teardown alone is about half a second, and it has nothing left to save.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
