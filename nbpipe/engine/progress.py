"""Progress display: a tqdm bar, or log lines on the ``nbpipe`` logger.

One observer for every front end that shows progress as text (``DAG.build(show_progress=True)``
on stdout, the CLI on stderr). It keeps its own ``BuildState`` through the reducer and draws from
it: the bar counts the plan's settled tasks and names the running ones, with the cell a running
notebook is in (``clean: cell 12/40 · df = load(path)``); in log lines a cell is a debug message.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from nbpipe.engine.events import (
    BuildFinished,
    BuildStarted,
    Event,
    TaskCellStarted,
    TaskEvent,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from nbpipe.engine.state import BuildState

logger = logging.getLogger("nbpipe")

#: How a settled task reads in a log line or under the bar.
_SAID = {
    TaskStatus.EXECUTED: "finished",
    TaskStatus.FAILED: "failed",
    TaskStatus.ABORTED: "aborted",
    TaskStatus.STOPPED_EARLY: "stopped the build early",
    TaskStatus.CANCELLED: "cancelled",
}


class ProgressObserver:
    """With ``bar``, a tqdm bar on ``file`` (tasks settled of tasks to run, and what runs now);
    otherwise (or also) a log line per task on the ``nbpipe`` logger."""

    def __init__(self, bar: bool = False, file: TextIO | None = None):
        self._use_bar = bar
        self._file = file
        self._bar = None
        self.state = BuildState()

    def __call__(self, event: Event) -> None:
        touched = self.state.apply(event)
        if isinstance(event, BuildStarted):
            self._open()
        elif isinstance(event, TaskProgress):
            if isinstance(event, TaskCellStarted) and touched:
                logger.debug("%s: %s", event.task, touched[0].cell_text())
                self._redraw(advance=False)
        elif isinstance(event, TaskStarted):
            logger.info("%s: started", event.task)
            self._redraw(advance=False)
        elif isinstance(event, TaskEvent):
            for task in touched:
                if task.status in _SAID:
                    self._said(task.name, task.status, task.elapsed)
            self._redraw(advance=True)
        elif isinstance(event, BuildFinished):
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            logger.info("Build %s", event.outcome.value)

    def _open(self) -> None:
        total = self.state.progress()[1]
        if self._use_bar:
            from tqdm.auto import tqdm

            file = self._file or sys.stdout
            self._bar = tqdm(total=total, file=file, unit="task", desc="Building")
        logger.info("Building %d task(s) of %s", total, self.state.dag)

    def _redraw(self, advance: bool) -> None:
        if self._bar is None:
            return
        done, _ = self.state.progress()
        running = [self.state.tasks[name] for name in self.state.running()]
        shown = [
            f"{task.name}: {cell}" if (cell := task.cell_text()) else task.name for task in running
        ]
        self._bar.set_postfix_str(", ".join(shown), refresh=not advance)
        if advance:
            self._bar.update(done - self._bar.n)

    def _said(self, name: str, status: TaskStatus, elapsed: float | None) -> None:
        took = f" in {elapsed:.2f} s" if elapsed is not None else ""
        level = logging.ERROR if status is TaskStatus.FAILED else logging.INFO
        logger.log(level, "%s: %s%s", name, _SAID[status], took)
        if self._bar is not None and status is not TaskStatus.EXECUTED:
            self._bar.write(f"{name}: {_SAID[status]}", file=self._file or sys.stdout)
