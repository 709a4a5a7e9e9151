"""The Parallel executor: tasks in a pool of worker processes that live for the whole build.

Workers are reused across tasks (nbformat, papermill and nbconvert are imported once per worker,
not once per task) and each receives only its task's job, never the DAG.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from nbpipe.executors.base import Executor, WorkerLost
from nbpipe.executors.worker import init_worker

START_METHODS = ("fork", "spawn", "forkserver")


class Parallel(Executor):
    """Runs a DAG in parallel using multiprocessing (Ploomber's arguments, in Ploomber's order).

    ``processes``: how many worker processes (default: ``os.cpu_count()``; settable).
    ``print_progress``: show a progress bar on stdout, otherwise log progress to ``nbpipe``.
    ``start_method``: 'fork', 'spawn' or 'forkserver'; None or '' uses multiprocessing's default.
    """

    def __init__(
        self,
        processes: int | None = None,
        print_progress: bool = False,
        start_method: str | None = None,
    ):
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ValueError(f"processes must be a positive integer or None, got {processes!r}")
        if start_method and start_method not in multiprocessing.get_all_start_methods():
            valid = [m for m in START_METHODS if m in multiprocessing.get_all_start_methods()]
            raise ValueError(
                f"Invalid start_method {start_method!r}; valid methods are: {', '.join(valid)}"
            )
        self._processes = processes
        self.print_progress = print_progress
        self.start_method = start_method or None

    @property
    def processes(self) -> int:
        return self._processes or os.cpu_count() or 1

    @processes.setter
    def processes(self, value: int | None) -> None:
        """Settable, as Ploomber's ``executor.processes = 4``."""
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"processes must be a positive integer or None, got {value!r}")
        self._processes = value

    def __repr__(self) -> str:
        return f"Parallel(processes={self._processes}, start_method={self.start_method!r})"

    @contextmanager
    def pool(
        self, imports: Sequence[str] = (), warm_up: Callable[[], None] | None = None
    ) -> Iterator[ProcessPool]:
        context = multiprocessing.get_context(self.start_method)
        pool = ProcessPool(self.processes, context, imports, warm_up)
        try:
            yield pool
        finally:
            pool.close()


class ProcessPool:
    """A ProcessPoolExecutor that replaces itself when a worker dies (segfault, OOM kill), so
    one crashing task fails alone instead of taking the rest of the build with it."""

    def __init__(
        self, processes: int, context, imports: Sequence[str], warm_up: Callable[[], None] | None
    ):
        self._processes = processes
        self._context = context
        self._imports = tuple(imports)
        self._warm_up = warm_up
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._processes,
            mp_context=self._context,
            initializer=init_worker,
            initargs=(self._imports, self._warm_up),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        try:
            inner = self._executor.submit(fn, *args)
        except BrokenProcessPool:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            inner = self._executor.submit(fn, *args)
        return _relay(inner)

    def terminate(self) -> None:
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _relay(inner: Future) -> Future:
    """A future that settles as ``inner`` does, a dead worker (BrokenProcessPool) reported as
    the executors' neutral ``WorkerLost``."""
    outer: Future = Future()

    def settle(done: Future) -> None:
        if done.cancelled():  # the pool was shut down before the job started
            outer.set_exception(WorkerLost("the job was cancelled with its pool"))
            return
        error = done.exception()
        if isinstance(error, BrokenProcessPool):
            outer.set_exception(WorkerLost(str(error)))
        elif error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(done.result())

    inner.add_done_callback(settle)
    return outer
