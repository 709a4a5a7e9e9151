"""The Parallel executor: tasks in a pool of worker processes that live for the whole build.

Workers are reused across tasks (nbformat, papermill and nbconvert are imported once per worker,
not once per task) and each receives only its task's job, never the DAG. Their jobs' progress
reports come back through one pipe (``ProgressPipe``), drained before each job's result is
relayed.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

from nbpipe.executors.base import Executor, WorkerLost
from nbpipe.executors.channel import ProgressLine
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
        self,
        imports: Sequence[str] = (),
        warm_up: Callable[[], None] | None = None,
        progress: ProgressLine | None = None,
    ) -> Iterator[ProcessPool]:
        context = multiprocessing.get_context(self.start_method)
        # One kernel template for all the workers (``nbpipe.notebooks.kernels.WarmUp``)
        share = getattr(warm_up, "share", None)
        stop_shared = share() if share is not None else None
        try:
            if context.get_start_method() == "fork":
                # forked workers share what this process imported: paid once, not per worker
                from nbpipe.notebooks.imports import prepare_before_fork

                prepare_before_fork(imports)
            pool = ProcessPool(self.processes, context, imports, warm_up, progress)
            try:
                yield pool
            finally:
                pool.close()
        finally:
            if stop_shared is not None:
                stop_shared()


class ProcessPool:
    """A ProcessPoolExecutor that replaces itself when a worker dies (segfault, OOM kill), so
    one crashing task fails alone instead of taking the rest of the build with it."""

    def __init__(
        self,
        processes: int,
        context,
        imports: Sequence[str],
        warm_up: Callable[[], None] | None,
        progress: ProgressLine | None = None,
    ):
        self._processes = processes
        self._context = context
        self._imports = tuple(imports)
        self._warm_up = warm_up
        self._progress = progress
        self._pipe: ProgressPipe | None = None
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        """Workers, and a fresh progress pipe for them (a worker killed while writing to the
        previous one may have left it unusable)."""
        if self._pipe is not None:
            self._pipe.close()
        if self._progress is not None:
            self._pipe = ProgressPipe(self._context, self._progress.send)
        return ProcessPoolExecutor(
            self._processes,
            mp_context=self._context,
            initializer=init_worker,
            initargs=(self._imports, self._warm_up, self._pipe.sink if self._pipe else None),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        try:
            inner = self._executor.submit(fn, *args)
        except BrokenProcessPool:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            inner = self._executor.submit(fn, *args)
        return _relay(inner, self._pipe)

    def terminate(self) -> None:
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._pipe is not None:
            self._pipe.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._pipe is not None:
            self._pipe.close()


class ProgressPipe:
    """Progress reports from the workers: each writes its events to one pipe (under a lock
    shared by the workers); a thread of the building process reads them and hands each to
    ``send``. ``drain`` hands over at once what is already written: a worker writes its job's
    events before its result, so draining before relaying the result keeps them first."""

    def __init__(self, context, send: Callable[[Any], None]):
        self._reader, writer = context.Pipe(duplex=False)
        self.sink = PipeSink(writer, context.Lock())
        self._send = send
        self._stop_reader, self._stop_writer = multiprocessing.Pipe(duplex=False)
        self._reading = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="nbpipe-progress", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            ready = wait([self._reader, self._stop_reader])
            if self._stop_reader in ready:
                return
            self.drain()

    def drain(self) -> None:
        with self._reading:
            while not self._closed and self._reader.poll():
                try:
                    event = self._reader.recv()
                except (EOFError, OSError, pickle.UnpicklingError):
                    return
                self._send(event)

    def close(self) -> None:
        if self._closed:
            return
        self.sink.writer.close()  # the workers' copies are gone with them: nothing is written
        self._stop_writer.send(None)
        self._thread.join()
        with self._reading:
            self._closed = True
            for connection in (self._reader, self._stop_reader, self._stop_writer):
                connection.close()


class PipeSink:
    """A worker's sink (``nbpipe.executors.channel``): its events, written whole to the pipe."""

    def __init__(self, writer: Connection, lock):
        self.writer = writer
        self.lock = lock

    def __call__(self, event: Any) -> None:
        data = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.writer.send_bytes(data)


def _relay(inner: Future, pipe: ProgressPipe | None = None) -> Future:
    """A future that settles as ``inner`` does, a dead worker (BrokenProcessPool) reported as
    the executors' neutral ``WorkerLost``; the progress the job reported first."""
    outer: Future = Future()

    def settle(done: Future) -> None:
        if pipe is not None:
            pipe.drain()
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
