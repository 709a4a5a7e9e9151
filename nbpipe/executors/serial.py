"""The Serial executor: one task at a time, in the building process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from nbpipe.executors.base import Executor


class InlinePool:
    """Runs each job as it is submitted and hands back an already completed future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as error:
            future.set_exception(error)
        return future

    def terminate(self) -> None:
        """Nothing runs in the background: a Ctrl-C already interrupted the job itself."""


class Serial(Executor):
    """Runs tasks one after another in this process (functions need not be importable)."""

    def __init__(self, print_progress: bool = False):
        self.print_progress = print_progress

    @property
    def processes(self) -> int:
        return 1

    @contextmanager
    def pool(
        self, imports: Sequence[str] = (), warm_up: Callable[[], object] | None = None
    ) -> Iterator[InlinePool]:
        """Jobs run in this process, whose imports and signals belong to the caller: the worker
        imports are not made here. The warm-up runs (here it starts at most a notebook kernel
        template, never a kernel: ``nbpipe.notebooks.kernels``); what it started stops with the
        pool."""
        stop = warm_up() if warm_up is not None else None
        try:
            yield InlinePool()
        finally:
            if callable(stop):
                stop()
