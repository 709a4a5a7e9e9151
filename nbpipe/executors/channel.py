"""The progress channel: how a running task tells the scheduler loop what it is doing.

A job reports progress events (``TaskCellStarted``, ``TaskCellFinished``, ``TaskOutput``) with
:func:`report_progress`, in batches (a list of events, in order: the job decides how often, see
``nbpipe.notebooks.cell_progress``), wherever it runs and knowing nothing of executors. Each
executor installs a *sink* where its jobs run, which carries each batch whole to the building
process; there the loop, and only the loop, emits the events::

    job ─ report_progress(batch) ─► sink ─► ProgressLine ─► the loop ─► EventStream

- Serial: the job runs inside the loop's own ``pool.submit`` call, so the sink is
  ``line.handle``: the batch is handled at once, while the loop waits for the job (in the
  thread nbclient runs its hooks in, which is the loop's own unless an event loop already runs
  there, as in a Jupyter kernel).
- Parallel: workers write their batches to one pipe; a thread of the building process reads it
  and ``line.send``\\ s each to the loop's queue. The pool drains the pipe before it relays a
  job's result, so a task's events are queued before its end.
- Dask: a runner sends its batches to its worker thread over the runner's connection; the
  worker publishes them on the build's topic (``Worker.log_event``), and the client's
  subscription ``line.send``\\ s them. The scheduler relays them to the client on the same
  stream as the task's completion, before it.

The loop emits an event only for a task that is running, so none ever follows the task's end.
A sink that fails loses that report, never the task.

The same line carries one more message, for executors whose pool queues jobs handed ahead
(``Executor.queue_ahead``, Dask): ``line.started(task)``, sent when the task's job begins on a
worker, before any of its progress. The loop starts such a task (``task_started``) then, not when
it hands the job over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nbpipe.engine.events import TaskProgress

logger = logging.getLogger("nbpipe")

Batch = list[TaskProgress]
Sink = Callable[[Batch], None]

_sink: Sink | None = None  # where this process's reports go; None: nobody listens


@dataclass(frozen=True)
class ProgressLine:
    """The loop's end of the channel, handed to ``Executor.pool``.

    ``handle`` handles a batch at once: only for a job the loop runs inline (inside its call to
    ``submit``). ``send`` queues it for the loop, from any thread. ``started`` queues the news
    that a task's job began on a worker (its name), from any thread: only a pool that holds jobs
    handed ahead sends it, before the job's first report and before its end.
    """

    handle: Sink
    send: Sink
    started: Callable[[str], None]


def report_progress(batch: Batch) -> None:
    """Tells the build what the running task did since its last report (a no-op when nobody
    listens)."""
    sink = _sink
    if sink is None or not batch:
        return
    try:
        sink(batch)
    except Exception:  # a lost report must not fail the task
        logger.debug("progress report of %d event(s) lost", len(batch), exc_info=True)


def install_sink(sink: Sink | None) -> Sink | None:
    """Where this process's reports go from now on (a worker's, for its whole life); returns
    the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


@contextmanager
def sink_installed(sink: Sink | None) -> Iterator[None]:
    """``install_sink`` for the duration of a block (a build's inline pool)."""
    previous = install_sink(sink)
    try:
        yield
    finally:
        install_sink(previous)
