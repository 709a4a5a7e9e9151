"""The build report, assembled from the build's events (it is one more observer)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from nbpipe.engine.events import STATUS_AFTER, BuildOutcome, Event, EventKind, TaskStatus
from nbpipe.engine.table import Cell, html_table, text_table

HEADER = ["name", "ran", "status", "elapsed (s)", "products"]


@dataclass
class TaskReport:
    name: str
    status: TaskStatus = TaskStatus.QUEUED
    elapsed: float | None = None
    products: list[str] = field(default_factory=list)
    detail: str = ""  # why it was aborted or cancelled, the early-stop message, the error

    @property
    def ran(self) -> bool:
        return self.status in (TaskStatus.EXECUTED, TaskStatus.FAILED, TaskStatus.STOPPED_EARLY)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ran": self.ran,
            "status": self.status.value,
            "elapsed": self.elapsed,
            "products": self.products,
            "detail": self.detail,
        }


@dataclass
class BuildReport:
    """What a build did: one row per task, and how the build ended.

    Prints as a table; shows as HTML in Jupyter; ``report['task']`` gives one row.
    """

    tasks: dict[str, TaskReport] = field(default_factory=dict)
    outcome: BuildOutcome | None = None
    stop_reason: str | None = None
    started: float | None = None
    ended: float | None = None

    @property
    def stopped_early(self) -> bool:
        return self.outcome is BuildOutcome.STOPPED_EARLY

    @property
    def elapsed(self) -> float | None:
        return None if self.started is None or self.ended is None else self.ended - self.started

    def __getitem__(self, name: str) -> TaskReport:
        return self.tasks[name]

    def __iter__(self):
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value if self.outcome else None,
            "stop_reason": self.stop_reason,
            "elapsed": self.elapsed,
            "tasks": [row.to_dict() for row in self],
        }

    # -- rendering ------------------------------------------------------------------------------
    def _rows(self) -> list[list[Cell]]:
        return [
            [
                row.name,
                "yes" if row.ran else "no",
                row.status.value,
                "" if row.elapsed is None else f"{row.elapsed:.2f}",
                row.products,
            ]
            for row in self
        ]

    def summary(self) -> str:
        elapsed = f" in {self.elapsed:.2f} s" if self.elapsed is not None else ""
        if self.stopped_early:
            return f"Build stopped early{elapsed}: {self.stop_reason}"
        outcome = self.outcome.value if self.outcome else "not finished"
        return f"Build {outcome}{elapsed}"

    def __str__(self) -> str:
        return f"{text_table(HEADER, self._rows())}\n\n{self.summary()}"

    def _repr_html_(self) -> str:
        return f"{html_table(HEADER, self._rows())}<p>{html.escape(self.summary())}</p>"


class ReportCollector:
    """Observer that fills a :class:`BuildReport` from events."""

    def __init__(self):
        self.report = BuildReport()

    def __call__(self, event: Event) -> None:
        report = self.report
        if event.kind is EventKind.BUILD_STARTED:
            report.started = event.time
            return
        if event.kind is EventKind.BUILD_FINISHED:
            report.ended = event.time
            report.outcome = BuildOutcome(event.details["outcome"])
            report.stop_reason = event.details.get("stop_reason")
            return
        row = report.tasks.setdefault(event.task, TaskReport(event.task))
        row.status = STATUS_AFTER[event.kind]
        details = event.details
        if "elapsed" in details:
            row.elapsed = details["elapsed"]
        if "products" in details:
            row.products = details["products"]
        for key in ("reason", "message", "error"):
            if details.get(key):
                row.detail = details[key]
