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
        self, imports: Sequence[str] = (), warm_up: Callable[[], None] | None = None
    ) -> Iterator[InlinePool]:
        """Jobs run in this process, whose imports and signals belong to the caller: the warm-up
        hints (worker imports, warm kernels) are for worker processes and are not used here."""
        yield InlinePool()
