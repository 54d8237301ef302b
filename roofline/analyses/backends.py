"""Execution backends for sweeps and searches: where many independent tasks run.

Owns the two ways roofline spreads work: ``local`` (this process, or worker processes forked
from it, as ``sweep`` has always done) and ``ray`` (tasks on a Ray cluster: a local one started
for the run when no address is given, or an existing one at ``--address``; the optional extra
``roofline[distributed]``). Both give results as tasks finish, so callers show progress and
keep what finished when the user presses Ctrl-C; stopping cancels what is still queued or
running and shuts down a cluster the backend started. No roofline logic lives here.

A task is ``fn(context, item)``: ``context`` is shipped to each worker once (inherited by
forked processes; ``ray.put`` once for Ray), ``item`` per task. Workers see the driver's graph
cache folder (``ROOFLINE_CACHE_DIR`` is set for Ray workers), and results come back to the
driver, which also stores them in its own cache, so a remote worker's disk is never relied on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import UsageError

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend", "BACKENDS", "ray_available"]

#: The backends ``--backend`` accepts.
BACKENDS = ("local", "ray")

Task = Callable[[Any, Any], Any]

# The context of the tasks of the current local pool: set in each worker by the initializer.
_CONTEXT: Any = None


def _init_worker(context: Any) -> None:
    # Ctrl-C reaches the whole process group; the parent stops the workers itself, so they
    # must not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _CONTEXT
    _CONTEXT = context


def _call(fn: Task, item: Any) -> Any:
    return fn(_CONTEXT, item)


def _pool_context() -> Any:
    # fork starts a worker in milliseconds and inherits the imported modules (and the
    # context, without pickling it); the tracer runs no real kernels, so no thread pool is
    # forked mid-use.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class Backend:
    """Runs ``fn(context, item)`` for many items; :meth:`run` yields (index, result) as each
    finishes. ``close()`` stops everything still running."""

    name = "backend"
    workers = 1

    def run(self, fn: Task, items: Sequence[Any], context: Any = None) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (and a cluster the backend started)."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalBackend(Backend):
    """This process (``workers == 1``) or ``workers`` forked processes."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    def describe(self) -> str:
        return f"local, {self.workers} process{'es' if self.workers > 1 else ''}"

    def run(self, fn: Task, items: Sequence[Any], context: Any = None) -> Iterator[tuple[int, Any]]:
        if self.workers <= 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(context, item)
            return
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                   mp_context=_pool_context(), initializer=_init_worker,
                                   initargs=(context,))
        pending: dict[Future[Any], int] = {}
        queue = iter(range(len(items)))
        try:
            # A few tasks per worker in flight, so results stream back as they finish.
            for i in _take(queue, 2 * self.workers):
                pending[pool.submit(_call, fn, items[i])] = i
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = pending.pop(future)
                    result = future.result()
                    for j in _take(queue, 1):
                        pending[pool.submit(_call, fn, items[j])] = j
                    yield i, result
        except BaseException:
            for future in pending:
                future.cancel()
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def _take(iterator: Iterator[int], n: int) -> list[int]:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def ray_available() -> str | None:
    """None when Ray can be imported, else why not (one line)."""
    try:
        import ray  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means no Ray here
        return f"{type(exc).__name__}: {exc}"
    return None


class RayBackend(Backend):
    """Tasks on a Ray cluster: ``address`` (``ray://host:10001``, ``host:6379`` or ``auto``),
    or a local cluster of ``num_cpus`` started for this run and shut down after it."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        why = ray_available()
        if why is not None:
            raise UsageError(f"--backend ray needs Ray: pip install 'roofline[distributed]' "
                             f"({why})")
        import ray

        from ..sources.cache import cache_dir, cache_enabled

        self.address = address
        env = {"ROOFLINE_CACHE_DIR": str(cache_dir())}
        if not cache_enabled():
            env["ROOFLINE_NO_CACHE"] = "1"
        self._started = not ray.is_initialized()
        self._own = self._started  # a cluster this backend started (and will shut down)
        if self._started:
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env},
                                      "logging_level": "ERROR", "log_to_driver": False,
                                      "include_dashboard": False, "configure_logging": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or max(1, min(os.cpu_count() or 1, 4))
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local cluster"
                raise UsageError(f"cannot start Ray on {where}: {_first_line(exc)}") from None
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._remote: dict[Task, Any] = {}

    def describe(self) -> str:
        where = self.address or ("local cluster" if self._own else "running cluster")
        return f"ray ({where}, {self.workers} CPUs)"

    def run(self, fn: Task, items: Sequence[Any], context: Any = None) -> Iterator[tuple[int, Any]]:
        import ray

        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(fn)
        context_ref = ray.put(context)
        pending: dict[Any, int] = {}
        queue = iter(range(len(items)))
        try:
            for i in _take(queue, 2 * self.workers):
                pending[remote.remote(context_ref, items[i])] = i
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    result = ray.get(ref)
                    for j in _take(queue, 1):
                        pending[remote.remote(context_ref, items[j])] = j
                    yield i, result
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):  # already finished or gone
                    ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
            self._started = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def make_backend(name: str, *, workers: int = 1, address: str | None = None) -> Backend:
    """The backend ``--backend NAME`` asks for (``--address`` only with ray)."""
    if name not in BACKENDS:
        from ..errors import UnknownNameError

        raise UnknownNameError("backend", name, BACKENDS)
    if name == "local":
        if address:
            raise UsageError("--address goes with --backend ray")
        return LocalBackend(workers)
    return RayBackend(address, num_cpus=workers if workers > 1 else None)
