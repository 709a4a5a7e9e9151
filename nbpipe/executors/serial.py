"""The Serial executor: one task at a time, in the building process.

Ploomber's three switches are accepted; each is honoured when passed, and left at ``None`` it
keeps nbpipe's behaviour (which differs from Ploomber's defaults, see docs/spec.md):

- ``build_in_subprocess=True``: each function task runs in a fresh child process (the default
  start method: fork on Linux), so the memory it used is given back when it ends. Notebook tasks
  run in their kernel anyway. nbpipe's default runs functions in the building process.
- ``catch_exceptions=False``: a task's exception is not caught: the build stops and raises it as
  it is, its traceback into the task's code (for ``%debug``/pdb); ``on_failure`` does not run.
- ``catch_warnings=True``: warnings raised by tasks are collected (not DeprecationWarning) and
  shown once, after the build, as one warning naming each task. nbpipe's default lets each
  warning through when it happens.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from nbpipe.exceptions import DAGBuildEarlyStop
from nbpipe.executors.base import Executor
from nbpipe.executors.channel import ProgressLine, sink_installed


class UncaughtTaskError(BaseException):
    """Carries a task's exception out of the scheduler untouched (``catch_exceptions=False``);
    ``DAG.build`` raises ``error`` itself. A BaseException, so nothing on the way catches it."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


class InlinePool:
    """Runs each job as it is submitted and hands back an already completed future."""

    def __init__(
        self,
        catch_exceptions: bool = True,
        in_subprocess: bool = False,
        warnings_seen: list[tuple[str, str]] | None = None,
    ):
        self._catch_exceptions = catch_exceptions
        self._in_subprocess = in_subprocess
        self._warnings = warnings_seen  # None: warnings are not caught
        self._child = None  # the process pool of the function job running in a subprocess

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(self._run(fn, *args))
        except Exception as error:
            future.set_exception(error)
        return future

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._warnings is None:
            return self._call(fn, *args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", DeprecationWarning)
            result = self._call(fn, *args)
        task = getattr(args[0], "task", "?") if args else "?"
        self._warnings += [(task, str(warning.message)) for warning in caught]
        return result

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        from nbpipe.tasks.callable import CallableJob

        job = args[0] if args else None
        if self._in_subprocess and isinstance(job, CallableJob):
            return self._in_child(fn, *args)
        if not self._catch_exceptions and job is not None and hasattr(job, "run"):
            return _run_uncaught(job)
        return fn(*args)

    def _in_child(self, fn: Callable[..., Any], *args: Any) -> Any:
        from nbpipe.executors.parallel import ProcessPool

        self._child = ProcessPool(1, multiprocessing.get_context(), (), None)
        try:
            return self._child.submit(fn, *args).result()
        finally:
            child, self._child = self._child, None
            child.close()

    def terminate(self) -> None:
        """A Ctrl-C already interrupted an inline job; a job in a child process is stopped."""
        if self._child is not None:
            self._child.terminate()


def _run_uncaught(job) -> Any:
    """``run_job`` without catching the job's exception (an early stop stays an early stop)."""
    from nbpipe.executors.worker import Outcome

    started = time.time()
    try:
        job.run()
    except DAGBuildEarlyStop as stop:
        return Outcome(job.task, "early_stop", started, time.time(), str(stop))
    except Exception as error:
        raise UncaughtTaskError(error) from None
    return Outcome(job.task, "ok", started, time.time())


class Serial(Executor):
    """Runs tasks one after another in this process (functions need not be importable).

    ``build_in_subprocess``, ``catch_exceptions`` and ``catch_warnings`` are Ploomber's (see
    the module docstring); ``print_progress`` shows a progress bar.
    """

    def __init__(
        self,
        build_in_subprocess: bool | None = None,
        catch_exceptions: bool | None = None,
        catch_warnings: bool | None = None,
        print_progress: bool = False,
    ):
        for name, value in (
            ("build_in_subprocess", build_in_subprocess),
            ("catch_exceptions", catch_exceptions),
            ("catch_warnings", catch_warnings),
        ):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{name} must be True, False or None, not {value!r}")
        self.build_in_subprocess = build_in_subprocess
        self.catch_exceptions = catch_exceptions
        self.catch_warnings = catch_warnings
        self.print_progress = print_progress

    @property
    def processes(self) -> int:
        return 1

    def __repr__(self) -> str:
        options = [
            f"{name}={value!r}"
            for name in ("build_in_subprocess", "catch_exceptions", "catch_warnings")
            if (value := getattr(self, name)) is not None
        ]
        return f"Serial({', '.join(options)})"

    @contextmanager
    def pool(
        self,
        imports: Sequence[str] = (),
        warm_up: Callable[[], object] | None = None,
        progress: ProgressLine | None = None,
    ) -> Iterator[InlinePool]:
        """Jobs run in this process, whose imports and signals belong to the caller: the worker
        imports are not made here. The warm-up runs (here it starts at most a notebook kernel
        template, never a kernel: ``nbpipe.notebooks.kernels``); what it started stops with the
        pool. A job runs inside the loop's call to ``submit``, so its progress reports are
        handled at once (``progress.handle``)."""
        seen: list[tuple[str, str]] | None = [] if self.catch_warnings else None
        stop = warm_up() if warm_up is not None else None
        sink = progress.handle if progress is not None else None
        try:
            with sink_installed(sink):
                yield InlinePool(
                    catch_exceptions=self.catch_exceptions is not False,
                    in_subprocess=bool(self.build_in_subprocess),
                    warnings_seen=seen,
                )
        finally:
            if callable(stop):
                stop()
            if seen:
                text = "\n".join(f"- {task}: {message}" for task, message in seen)
                warnings.warn(f"Warnings raised by tasks during the build:\n{text}", stacklevel=2)
