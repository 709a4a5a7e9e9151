"""The event contract: what a build says about itself, as typed, immutable values.

The scheduler emits one event at every change of a task's state. Everything that shows or stores
progress (the report, the DAG's task statuses, progress bars, the CLI's JSON lines, the server,
the magic, the JupyterLab panel) observes these events and folds them into state with one
reducer per language (``nbpipe.engine.state.BuildState`` here, ``labextension/src/reducer.ts``
in the browser). Nothing else keeps a transition table.

A build's events, in order::

    build_started                         the plan: every task, and those that will run
    task_queued | task_skipped            once per task of the plan, before anything runs
    task_started ... task_finished        or task_failed / task_stopped_early
    task_aborted                          an upstream task failed
    task_cancelled                        the build stopped (early stop, interrupt) first
    build_finished                        exactly once, whatever happened

Between a task's ``task_started`` and its end come what a running notebook reports:
``task_cell_started``/``task_cell_finished`` per code cell and ``task_output`` (the tail of its
output, throttled). They change no status; the scheduler emits them in order with the task's
other events, never after its end.

A build run by a supervisor (the Jupyter server runs ``nbpipe build --json`` as a child process)
also gets the supervisor's events: ``build_created`` before the process starts,
``build_cancelling`` when a cancel is asked, and ``build_ended`` once the process is gone (with
the final state; tasks the process left unsettled because it died are settled by the reducer's
rule, not by invented events).

Every event is a frozen dataclass; ``to_dict``/``event_from_dict`` turn it into the JSON form
(``{"event": kind, "time": ..., "task": ..., **fields}``) and back. The JSON Schema
(``events.schema.json``, committed) is generated from these classes by ``nbpipe.engine.schema``,
and the panel's TypeScript types are generated from the schema.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

logger = logging.getLogger("nbpipe")

#: Bumped whenever an event's fields change incompatibly (the CLI's JSON lines carry it).
EVENT_SCHEMA_VERSION = 2


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
    CANCELLED = "cancelled"  # did not finish: the build stopped first


class BuildOutcome(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    STOPPED_EARLY = "stopped_early"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, kw_only=True)
class TaskFailure:
    """Why a task failed, as data, so that no front end parses text.

    ``type`` is the exception's class name (for a notebook, the failing cell's exception);
    ``cell`` counts the source notebook's cells from 0 (the injected parameters cell is not
    counted), ``line`` is the line within that cell, ``code`` that line's text, and
    ``partial_notebook`` the partially executed copy kept for inspection.
    """

    task: str
    type: str
    message: str
    traceback: str = ""
    source: str | None = None
    cell: int | None = None
    line: int | None = None
    code: str | None = None
    partial_notebook: str | None = None

    def summary(self) -> str:
        """One line: ``KeyError: 'units' (cell 4, line 2)``."""
        text = f"{self.type}: {self.message}" if self.message else self.type
        if self.cell is not None:
            text += f" (cell {self.cell + 1}{f', line {self.line}' if self.line else ''})"
        return text

    def text(self, with_traceback: bool = True) -> str:
        """Everything a person needs: where it failed, why, and the traceback (a notebook's
        failure reads well without it: its cell, line, code and partial copy)."""
        if self.cell is None:
            return self.traceback or self.summary()
        where = f"cell {self.cell + 1}" + (f", line {self.line}" if self.line else "")
        lines = [f"{self.source}, {where}: {self.type}: {self.message}"]
        if self.code:
            lines.append(f"    {self.code}")
        if self.partial_notebook:
            lines.append(f"Partially executed notebook: {self.partial_notebook}")
        head = "\n".join(lines)
        return f"{head}\n\n{self.traceback}" if with_traceback and self.traceback else head

    def __str__(self) -> str:
        return self.text()

    def with_note(self, note: str) -> TaskFailure:
        """The same failure with ``note`` added to its traceback (e.g. a failing hook)."""
        return dataclasses.replace(self, traceback=f"{self.traceback}\n\n{note}".strip())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskFailure:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


# -- the events -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened in a build. Subclasses name their ``kind``."""

    kind: ClassVar[str]
    time: float = field(default_factory=time.time)
    task: str | None = None  # the task concerned; None for build-level events

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.kind}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, TaskFailure):
                value = value.to_dict()
            elif isinstance(value, enum.Enum):
                value = value.value
            data[item.name] = value
        return data


@dataclass(frozen=True, kw_only=True)
class TaskEvent(Event):
    task: str


@dataclass(frozen=True, kw_only=True)
class BuildStarted(Event):
    """The plan is made: ``tasks`` is every task of the build (upstream first), ``to_run`` those
    that will run. ``dashboard``: where to watch the workers (a Dask cluster's dashboard)."""

    kind: ClassVar[str] = "build_started"
    dag: str
    executor: str
    tasks: list[str]
    to_run: list[str]
    dashboard: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskQueued(TaskEvent):
    """The task will run once its upstream tasks are done; ``reasons`` says why it runs."""

    kind: ClassVar[str] = "task_queued"
    reasons: list[str]


@dataclass(frozen=True, kw_only=True)
class TaskSkipped(TaskEvent):
    """The task is up to date."""

    kind: ClassVar[str] = "task_skipped"
    products: list[str]


@dataclass(frozen=True, kw_only=True)
class TaskStarted(TaskEvent):
    """The task's job began on a worker (one handed ahead may have waited there first); again
    for a task retried after its worker died."""

    kind: ClassVar[str] = "task_started"


@dataclass(frozen=True, kw_only=True)
class TaskFinished(TaskEvent):
    """The task, its hooks and its build records succeeded; its products are in place."""

    kind: ClassVar[str] = "task_finished"
    elapsed: float
    products: list[str]


@dataclass(frozen=True, kw_only=True)
class TaskFailed(TaskEvent):
    kind: ClassVar[str] = "task_failed"
    elapsed: float
    failure: TaskFailure


@dataclass(frozen=True, kw_only=True)
class TaskAborted(TaskEvent):
    """An upstream task failed, so this one will not run."""

    kind: ClassVar[str] = "task_aborted"
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskStoppedEarly(TaskEvent):
    """The task (or its hook) raised ``DAGBuildEarlyStop``."""

    kind: ClassVar[str] = "task_stopped_early"
    elapsed: float
    message: str


@dataclass(frozen=True, kw_only=True)
class TaskCancelled(TaskEvent):
    """The build stopped (early stop, interrupt, an error) before this task finished."""

    kind: ClassVar[str] = "task_cancelled"
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskProgress(TaskEvent):
    """What a running task reports on the way (reached through ``nbpipe.executors.channel``):
    it changes what the task shows, never its status, and only while the task runs."""


@dataclass(frozen=True, kw_only=True)
class TaskCellStarted(TaskProgress):
    """A notebook task started a code cell: ``cell`` of ``cells``, counted from 1 over every
    cell of the source notebook (the numbering of a failure's cell), ``line`` the cell's first
    non-blank line (at most ``CELL_LINE_LIMIT`` characters)."""

    kind: ClassVar[str] = "task_cell_started"
    cell: int
    cells: int
    line: str


@dataclass(frozen=True, kw_only=True)
class TaskCellFinished(TaskProgress):
    """The cell ended (an error included: ``task_failed`` follows), after ``elapsed`` seconds."""

    kind: ClassVar[str] = "task_cell_finished"
    cell: int
    cells: int
    elapsed: float


@dataclass(frozen=True, kw_only=True)
class TaskOutput(TaskProgress):
    """The tail of what the running notebook printed, stdout and stderr as they came: the whole
    tail each time (at most ``OUTPUT_TAIL_LINES`` lines and ``OUTPUT_TAIL_CHARS`` characters),
    so a reader replaces what it had; at most one every ``OUTPUT_INTERVAL`` seconds per task."""

    kind: ClassVar[str] = "task_output"
    text: str


#: Bounds of the progress events, so that a chatty notebook cannot flood the event stream.
CELL_LINE_LIMIT = 120
OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_CHARS = 4096
OUTPUT_INTERVAL = 0.5


@dataclass(frozen=True, kw_only=True)
class BuildFinished(Event):
    """The build ended: emitted exactly once per build, whatever escaped."""

    kind: ClassVar[str] = "build_finished"
    outcome: BuildOutcome
    stop_reason: str | None = None
    failed: list[str] = field(default_factory=list)


# -- a supervisor's events (the server runs builds as child processes) ----------------------------
@dataclass(frozen=True, kw_only=True)
class BuildCreated(Event):
    """A supervisor accepted the build; its process is starting."""

    kind: ClassVar[str] = "build_created"
    force: bool = False
    targets: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BuildCancelling(Event):
    """A cancel was asked; the build's processes are being stopped."""

    kind: ClassVar[str] = "build_cancelling"


@dataclass(frozen=True, kw_only=True)
class BuildEnded(Event):
    """The build's process is gone. ``state`` is final: ``success``, ``failed``,
    ``stopped_early``, ``cancelled``, ``interrupted`` (the supervisor stopped) or ``error`` (the
    process could not start, or ended without an outcome); ``message`` says why."""

    kind: ClassVar[str] = "build_ended"
    state: str
    message: str | None = None
    exit_code: int | None = None


ENGINE_EVENTS: tuple[type[Event], ...] = (
    BuildStarted,
    TaskQueued,
    TaskSkipped,
    TaskStarted,
    TaskFinished,
    TaskFailed,
    TaskAborted,
    TaskStoppedEarly,
    TaskCancelled,
    TaskCellStarted,
    TaskCellFinished,
    TaskOutput,
    BuildFinished,
)
SUPERVISOR_EVENTS: tuple[type[Event], ...] = (BuildCreated, BuildCancelling, BuildEnded)
EVENT_TYPES: dict[str, type[Event]] = {
    kind.kind: kind for kind in (*ENGINE_EVENTS, *SUPERVISOR_EVENTS)
}


class UnknownEvent(ValueError):
    """A dict that is not an event of this schema (another kind, or a missing field)."""


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event a ``to_dict`` form describes. Unknown fields are ignored (a newer writer may add
    some); an unknown kind or a missing field raises ``UnknownEvent``."""
    kind = EVENT_TYPES.get(data.get("event"))  # type: ignore[arg-type]
    if kind is None:
        raise UnknownEvent(f"not an nbpipe event: {data.get('event')!r}")
    values: dict[str, Any] = {}
    for item in dataclasses.fields(kind):
        if item.name not in data:
            continue
        value = data[item.name]
        if item.name == "failure" and isinstance(value, dict):
            value = TaskFailure.from_dict(value)
        elif item.name == "outcome":
            value = BuildOutcome(value)
        values[item.name] = value
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise UnknownEvent(f"malformed {kind.kind} event: {error}") from None


Observer = Callable[[Event], None]


class EventStream:
    """Fans each event out to every observer, in the order they were added.

    An observer that raises is logged and kept: a broken progress bar must not break a build.
    """

    def __init__(self, observers: Iterable[Observer] = ()):
        self._observers = list(observers)

    def emit(self, event: Event) -> Event:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                logger.exception("Observer %r failed on %s", observer, event.kind)
        return event
