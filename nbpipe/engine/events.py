"""The build's event stream: the one source of truth about what happens during a build.

The scheduler emits an :class:`Event` at every change of a task's state. Everything that shows or
stores progress (task statuses, the build report, progress bars, the CLI's JSON lines, the server,
the magic) is an *observer*: a callable that receives events. None of them re-derives state.

A build's events, in order::

    build_started                         details: dag, executor, tasks (the plan, in order)
    task_queued | task_skipped            once per task in the plan, before anything runs
    task_started ... task_finished        or task_failed / task_stopped_early
    task_aborted                          an upstream task failed
    task_cancelled                        the build stopped (early stop, interrupt) first
    build_finished                        details: outcome, elapsed, counts

Events are immutable and JSON-friendly (``Event.to_dict``), so they can cross a process or a
network boundary as they are.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("nbpipe")

#: Bumped whenever an event's fields change incompatibly (the CLI's JSON lines carry it).
EVENT_SCHEMA_VERSION = 1


class EventKind(str, enum.Enum):
    BUILD_STARTED = "build_started"
    TASK_QUEUED = "task_queued"
    TASK_SKIPPED = "task_skipped"
    TASK_STARTED = "task_started"
    TASK_FINISHED = "task_finished"
    TASK_FAILED = "task_failed"
    TASK_ABORTED = "task_aborted"
    TASK_STOPPED_EARLY = "task_stopped_early"
    TASK_CANCELLED = "task_cancelled"
    BUILD_FINISHED = "build_finished"


class TaskStatus(str, enum.Enum):
    """Where a task stands in the current (or last) build."""

    PENDING = "pending"  # not part of a build yet
    QUEUED = "queued"  # will run once its upstream tasks are done
    RUNNING = "running"
    EXECUTED = "executed"
    SKIPPED = "skipped"  # up to date
    FAILED = "failed"
    ABORTED = "aborted"  # an upstream task failed
    STOPPED_EARLY = "stopped_early"  # raised DAGBuildEarlyStop (itself or a hook)
    CANCELLED = "cancelled"  # never started: the build stopped first


#: The status a task ends in after each task event.
STATUS_AFTER = {
    EventKind.TASK_QUEUED: TaskStatus.QUEUED,
    EventKind.TASK_SKIPPED: TaskStatus.SKIPPED,
    EventKind.TASK_STARTED: TaskStatus.RUNNING,
    EventKind.TASK_FINISHED: TaskStatus.EXECUTED,
    EventKind.TASK_FAILED: TaskStatus.FAILED,
    EventKind.TASK_ABORTED: TaskStatus.ABORTED,
    EventKind.TASK_STOPPED_EARLY: TaskStatus.STOPPED_EARLY,
    EventKind.TASK_CANCELLED: TaskStatus.CANCELLED,
}


class BuildOutcome(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    STOPPED_EARLY = "stopped_early"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Event:
    """One thing that happened in a build. ``task`` is None for build-level events."""

    kind: EventKind
    task: str | None = None
    time: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind.value, "task": self.task, "time": self.time, **self.details}


Observer = Callable[[Event], None]


class EventStream:
    """Fans each event out to every observer, in the order they were added.

    An observer that raises is logged and kept: a broken progress bar must not break a build.
    """

    def __init__(self, observers: Iterable[Observer] = ()):
        self._observers = list(observers)

    def emit(self, kind: EventKind, task: str | None = None, **details: Any) -> Event:
        event = Event(kind, task, details=details)
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                logger.exception("Observer %r failed on %s", observer, kind.value)
        return event
