"""The build's state, derived from its events: the one reducer on the Python side.

``BuildState.apply(event)`` is the only place where an event becomes task or build state; the
report, the DAG's task statuses, the CLI's progress and summary, the magic's live table and the
server's history all read a ``BuildState``. The panel's TypeScript reducer
(``labextension/src/reducer.ts``) follows the same rules, and a golden test feeds recorded
streams to both and compares what they derive (``tests/golden/``).

The rules, in short::

    build_created          state "starting"
    build_started          state "running" (unless a cancel was asked); every task listed, pending;
                           the executor and its dashboard link kept
    task_<kind>            the task's status becomes STATUS_AFTER[kind]; times, products, reasons,
                           detail (why aborted/cancelled, the early-stop message) and failure kept
    task_cell_started      (only while the task runs) its cell, cells, the cell's first line and
                           start time; task_cell_finished: the cell's elapsed, no cell running;
                           task_output: the output tail, replaced. task_started clears these;
                           the task's end leaves them but for the running cell's start
    build_cancelling       state "cancelling"
    build_finished         outcome, stop reason; state becomes the outcome (unless cancelling)
    build_ended            state becomes the supervisor's final state; every task not yet settled
                           (its process died) becomes cancelled, with the reason UNSETTLED_REASON
                           gives for that state

Example: ``build_started(tasks=[a, b])``, ``task_queued(a)``, ``task_queued(b)``,
``task_started(a)`` and then ``build_ended(state="interrupted")`` (the server stopped) leaves
``a`` and ``b`` cancelled with the detail "the server stopped" and the build interrupted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nbpipe.engine.events import (
    BuildCancelling,
    BuildCreated,
    BuildEnded,
    BuildFinished,
    BuildStarted,
    Event,
    TaskAborted,
    TaskCancelled,
    TaskCellFinished,
    TaskCellStarted,
    TaskEvent,
    TaskFailed,
    TaskFailure,
    TaskFinished,
    TaskOutput,
    TaskProgress,
    TaskQueued,
    TaskSkipped,
    TaskStarted,
    TaskStatus,
    TaskStoppedEarly,
)

#: The status a task is in after each task event: the transition table.
STATUS_AFTER: dict[type[TaskEvent], TaskStatus] = {
    TaskQueued: TaskStatus.QUEUED,
    TaskSkipped: TaskStatus.SKIPPED,
    TaskStarted: TaskStatus.RUNNING,
    TaskFinished: TaskStatus.EXECUTED,
    TaskFailed: TaskStatus.FAILED,
    TaskAborted: TaskStatus.ABORTED,
    TaskStoppedEarly: TaskStatus.STOPPED_EARLY,
    TaskCancelled: TaskStatus.CANCELLED,
}

#: Statuses a task does not leave within a build.
FINAL_STATUSES = frozenset(
    {
        TaskStatus.EXECUTED,
        TaskStatus.SKIPPED,
        TaskStatus.FAILED,
        TaskStatus.ABORTED,
        TaskStatus.STOPPED_EARLY,
        TaskStatus.CANCELLED,
    }
)
#: Statuses in which a task ran (some of its code executed).
RAN_STATUSES = frozenset({TaskStatus.EXECUTED, TaskStatus.FAILED, TaskStatus.STOPPED_EARLY})

#: Build states a build does not leave.
FINAL_BUILD_STATES = frozenset(
    {"success", "failed", "stopped_early", "interrupted", "cancelled", "error"}
)

#: Why a task still unsettled when its build ended (its process died) counts as cancelled.
UNSETTLED_REASON = {
    "cancelled": "the build was cancelled",
    "interrupted": "the server stopped",
}
DEFAULT_UNSETTLED_REASON = "the build stopped"


@dataclass
class TaskState:
    """One task in a build."""

    name: str
    status: TaskStatus = TaskStatus.PENDING
    reasons: list[str] = field(default_factory=list)  # why it runs
    started: float | None = None
    ended: float | None = None
    elapsed: float | None = None
    products: list[str] = field(default_factory=list)
    detail: str | None = None  # why aborted or cancelled, the early-stop message, the failure
    failure: TaskFailure | None = None
    cell: int | None = None  # the notebook cell running (or last run), counted from 1
    cells: int | None = None  # the notebook's cells
    cell_line: str | None = None  # that cell's first line
    cell_started: float | None = None  # when the running cell started; None between cells
    cell_elapsed: float | None = None  # how long the last finished cell took
    output: str = ""  # the tail of the notebook's output (stdout and stderr)

    @property
    def ran(self) -> bool:
        return self.status in RAN_STATUSES

    @property
    def settled(self) -> bool:
        return self.status in FINAL_STATUSES

    def cell_text(self) -> str | None:
        """Where a running notebook is, for people: ``cell 12/40 · df = load(path)``."""
        if self.status is not TaskStatus.RUNNING or self.cell is None:
            return None
        where = f"cell {self.cell}/{self.cells}"
        return f"{where} · {self.cell_line}" if self.cell_line else where

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["failure"] = self.failure.to_dict() if self.failure else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskState:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["status"] = TaskStatus(values.get("status", "pending"))
        if values.get("failure"):
            values["failure"] = TaskFailure.from_dict(values["failure"])
        return cls(**values)


@dataclass
class BuildState:
    """A build as its events describe it. ``apply`` each event in order."""

    state: str = "pending"  # starting, running, cancelling, or a final build state
    dag: str | None = None
    executor: str | None = None
    dashboard: str | None = None  # where to watch the workers (a Dask dashboard)
    tasks: dict[str, TaskState] = field(default_factory=dict)  # upstream before downstream
    to_run: list[str] = field(default_factory=list)
    outcome: str | None = None  # the engine's: success, failed, stopped_early, interrupted
    stop_reason: str | None = None
    message: str | None = None  # the supervisor's word on how it ended
    exit_code: int | None = None
    started: float | None = None
    ended: float | None = None

    # -- the reducer ----------------------------------------------------------------------------
    def apply(self, event: Event) -> list[TaskState]:
        """Folds ``event`` into the state; returns the tasks it changed (so an observer that
        stores tasks writes only those)."""
        if isinstance(event, TaskProgress):
            task = self.tasks.get(event.task)
            if task is None or task.status is not TaskStatus.RUNNING:
                return []
            _apply_progress(task, event)
            return [task]
        if isinstance(event, TaskEvent):
            return [self._apply_task(event)]
        if isinstance(event, BuildCreated):
            self.state = "starting"
        elif isinstance(event, BuildStarted):
            return self._start(event)
        elif isinstance(event, BuildCancelling):
            self.state = "cancelling"
        elif isinstance(event, BuildFinished):
            self.outcome = event.outcome.value
            self.stop_reason = event.stop_reason
            self.ended = event.time
            if self.state != "cancelling":
                self.state = self.outcome
        elif isinstance(event, BuildEnded):
            return self._end(event)
        return []

    def _start(self, event: BuildStarted) -> list[TaskState]:
        if self.state in ("pending", "starting"):
            self.state = "running"
        self.dag = event.dag
        self.executor = event.executor
        self.dashboard = event.dashboard
        self.to_run = list(event.to_run)
        self.started = event.time
        added = [TaskState(name) for name in event.tasks if name not in self.tasks]
        self.tasks.update((task.name, task) for task in added)
        return added

    def _apply_task(self, event: TaskEvent) -> TaskState:
        task = self.tasks.setdefault(event.task, TaskState(event.task))
        task.status = STATUS_AFTER[type(event)]
        task.cell_started = None
        if isinstance(event, TaskQueued):
            task.reasons = list(event.reasons)
        elif isinstance(event, TaskStarted):
            task.started, task.ended, task.failure, task.detail = event.time, None, None, None
            task.cell = task.cells = task.cell_line = task.cell_elapsed = None
            task.output = ""
        elif isinstance(event, (TaskSkipped, TaskFinished)):
            task.products = list(event.products)
        elif isinstance(event, (TaskAborted, TaskCancelled)):
            task.detail = event.reason
        elif isinstance(event, TaskStoppedEarly):
            task.detail = event.message
        elif isinstance(event, TaskFailed):
            task.failure = event.failure
            task.detail = event.failure.summary()
        if isinstance(event, (TaskFinished, TaskFailed, TaskStoppedEarly)):
            task.ended, task.elapsed = event.time, event.elapsed
        elif isinstance(event, TaskCancelled) and task.started is not None:
            task.ended = event.time
        return task

    def _end(self, event: BuildEnded) -> list[TaskState]:
        self.state = event.state
        self.message = event.message or self.message
        self.exit_code = event.exit_code
        self.ended = self.ended or event.time
        reason = UNSETTLED_REASON.get(event.state, DEFAULT_UNSETTLED_REASON)
        unsettled = [task for task in self.tasks.values() if not task.settled]
        for task in unsettled:
            task.status = TaskStatus.CANCELLED
            task.cell_started = None
            task.detail = task.detail or reason
            if task.started is not None:
                task.ended = event.time
        return unsettled

    # -- reading --------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in FINAL_BUILD_STATES

    @property
    def elapsed(self) -> float | None:
        return None if self.started is None or self.ended is None else self.ended - self.started

    def failures(self) -> dict[str, TaskFailure]:
        return {name: task.failure for name, task in self.tasks.items() if task.failure}

    def counts(self) -> dict[str, int]:
        """How many tasks are in each status (only statuses that occur)."""
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.status.value] = counts.get(task.status.value, 0) + 1
        return counts

    def progress(self) -> tuple[int, int]:
        """(tasks of the plan that settled, tasks of the plan): what a progress bar shows."""
        done = sum(self.tasks[name].settled for name in self.to_run if name in self.tasks)
        return done, len(self.to_run)

    def running(self) -> list[str]:
        return [name for name, task in self.tasks.items() if task.status is TaskStatus.RUNNING]

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["tasks"] = [task.to_dict() for task in self.tasks.values()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildState:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["tasks"] = {
            task["name"]: TaskState.from_dict(task) for task in data.get("tasks") or []
        }
        return cls(**values)


def _apply_progress(task: TaskState, event: TaskProgress) -> None:
    """A running task's report: its cell, or its output tail."""
    if isinstance(event, TaskCellStarted):
        task.cell, task.cells, task.cell_line = event.cell, event.cells, event.line
        task.cell_started, task.cell_elapsed = event.time, None
    elif isinstance(event, TaskCellFinished):
        task.cell, task.cells = event.cell, event.cells
        task.cell_started, task.cell_elapsed = None, event.elapsed
    elif isinstance(event, TaskOutput):
        task.output = event.text
