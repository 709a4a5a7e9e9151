"""Executors decide *where* jobs run; the scheduler loop (``nbpipe.engine.scheduler``) is shared.

An executor opens a pool with a ``concurrent.futures``-style ``submit`` and says how many jobs may
run at once (``processes``), and how many more the loop may hand it ahead (``queue_ahead``), so
that a worker finds its next job already waiting instead of idling for a round trip to the loop.
Serial runs each job inline in the scheduling process; Parallel in worker processes (neither
queues ahead); Dask on a cluster, one job ahead per worker thread. A job whose worker went away
ends with :class:`WorkerLost`, whatever the executor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nbpipe.executors.channel import ProgressLine


class WorkerLost(Exception):
    """The worker running a job went away (killed, crashed in native code) before it answered.

    Each executor maps its own form of this (a broken process pool, a lost Dask worker) to this
    one, so the scheduler loop handles every executor's worker loss alike: the job is retried
    once, alone, to tell a culprit from a victim.
    """


class Pool(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def terminate(self) -> None:
        """Stops running jobs now (Ctrl-C), and drops those waiting in the pool."""


class QueuingPool(Pool, Protocol):
    """The pool of an executor with ``queue_ahead > 0``: it reports each job's start
    (``ProgressLine.started``), and can take back jobs that were handed ahead."""

    def withdraw(self, futures: Sequence[Future]) -> None:
        """Takes back jobs handed ahead (an early stop): none of them runs from now on, and one
        that had begun meanwhile is stopped, as ``terminate`` stops it, before this returns."""


class Executor:
    """Base class: subclasses define ``processes`` and ``pool()``."""

    print_progress: bool = False

    @property
    def processes(self) -> int:
        raise NotImplementedError

    @property
    def queue_ahead(self) -> int:
        """How many jobs beyond ``processes`` the loop may hand the pool in advance. Above 0, the
        pool is a :class:`QueuingPool`: a job handed over may wait in it, so its task starts when
        the pool says its job began on a worker."""
        return 0

    @property
    def dashboard_link(self) -> str | None:
        """Where a person can watch the build's workers (the Dask dashboard), once opened."""
        return None

    def __enter__(self) -> Executor:
        """Opens what the executor runs on (a cluster) ahead of a build, so that ``build_started``
        can name its dashboard; nothing for executors on this machine."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    @contextmanager
    def pool(
        self,
        imports: Sequence[str] = (),
        warm_up: Callable[[], None] | None = None,
        progress: ProgressLine | None = None,
    ) -> Iterator[Pool]:
        """A pool for one build; workers may import ``imports`` and run ``warm_up`` (e.g. start
        the first notebook's kernel) ahead of their first job. Jobs' progress reports go to
        ``progress``, the loop's end of ``nbpipe.executors.channel``: the executor installs the
        sink that carries them there."""
        raise NotImplementedError
        yield

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
