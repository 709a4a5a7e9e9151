"""A running notebook's progress as events: its cells as they run, and the tail of its output.

``CellReporter`` is hooked into nbclient (through papermill) by ``execute``: ``cell_started`` and
``cell_finished`` are nbclient's ``on_cell_execute`` and ``on_cell_executed`` hooks (code cells
that run, not markdown or empty ones), and ``output`` is the file papermill writes the
notebook's stdout and stderr to. Each becomes a progress event for
``nbpipe.executors.channel.report_progress``.

Cells are numbered as a failure numbers them: from 1, over every cell of the source notebook
(the parameters cell papermill injects is not reported). Output is kept as a bounded tail and
made an event at most once every ``OUTPUT_INTERVAL`` seconds: a write within the interval is
held, and sent by a timer or when its cell ends, whichever comes first. A notebook that prints in
a tight loop costs one event per interval, not one per line.

Events go out in batches, at most one every ``BATCH_INTERVAL`` seconds: an event within the
interval waits for a timer (so a long cell's start is reported at most that late), and the run's
end sends what is left. Every event arrives, in order; a notebook of 300 quick cells costs a few
dozen messages to the building process, not 600. The timers run on nbclient's own event loop, so
everything stays in the thread the hooks run in.

``NBPIPE_CELL_PROGRESS=0`` in the environment turns the reports off (``benchmarks/cell_progress.py``
measures builds with and without them).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbpipe.engine.events import (
    CELL_LINE_LIMIT,
    OUTPUT_INTERVAL,
    OUTPUT_TAIL_CHARS,
    OUTPUT_TAIL_LINES,
    TaskCellFinished,
    TaskCellStarted,
    TaskOutput,
    TaskProgress,
)
from nbpipe.executors.channel import report_progress
from nbpipe.notebooks.source import INJECTED_TAG

if TYPE_CHECKING:
    import asyncio

#: Seconds between two batches of a run's progress events.
BATCH_INTERVAL = 0.1


class CellReporter:
    """Reports one notebook run's cells and output for ``task``. ``notebook`` is the source
    notebook as read (before papermill injects its parameters cell)."""

    def __init__(self, task: str, notebook: Any):
        self.task = task
        self.cells = len(notebook.cells)
        # papermill adds a cell after the one tagged "parameters" (at the top without one),
        # unless the notebook has an injected cell already, which it replaces
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
        parameters = next((i for i, t in enumerate(tags) if "parameters" in t), -1)
        already = any(INJECTED_TAG in cell_tags for cell_tags in tags)
        self._injected = None if already else parameters + 1  # its index in the run
        self._started: dict[int, float] = {}  # executed index -> monotonic start
        self.output = OutputTail(self._send_output)
        self._batch = Throttle(BATCH_INTERVAL, self._send_batch)
        self._pending: list[TaskProgress] = []

    def papermill_options(self) -> dict[str, Any]:
        """The nbclient hooks and output file that make the reports (none when turned off)."""
        if os.environ.get("NBPIPE_CELL_PROGRESS", "1") == "0":
            return {}
        return {
            "on_cell_execute": self.cell_started,
            "on_cell_executed": self.cell_finished,
            "stdout_file": self.output,
            "stderr_file": self.output,
        }

    def _number(self, index: int) -> int | None:
        """The cell's number in the source notebook (from 1); None for papermill's cell."""
        if self._injected is None or index < self._injected:
            return index + 1
        return None if index == self._injected else index

    def cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        number = self._number(cell_index)
        if number is None:
            return
        self._started[cell_index] = time.monotonic()
        self._report(
            TaskCellStarted(
                task=self.task, cell=number, cells=self.cells, line=first_line(cell.source)
            )
        )

    def cell_finished(self, cell: Any, cell_index: int, **_: Any) -> None:
        started = self._started.pop(cell_index, None)
        number = self._number(cell_index)
        if started is None or number is None:
            return
        elapsed = time.monotonic() - started
        self.output.flush_now()  # what the cell printed comes before its end
        self._report(
            TaskCellFinished(task=self.task, cell=number, cells=self.cells, elapsed=elapsed)
        )

    def close(self) -> None:
        """The run ended (a kernel that died included): everything held is sent."""
        self.output.flush_now()
        self._batch.flush_now()

    def _send_output(self, text: str) -> None:
        self._report(TaskOutput(task=self.task, text=text))

    def _report(self, event: TaskProgress) -> None:
        self._pending.append(event)
        self._batch.changed()

    def _send_batch(self) -> None:
        batch, self._pending = self._pending, []
        report_progress(batch)


class Throttle:
    """Calls ``send`` after a change, at most once every ``interval`` seconds: a change within
    the interval is sent by a timer on the running event loop (or by the next ``flush_now``)."""

    def __init__(self, interval: float, send: Callable[[], None]):
        self._interval = interval
        self._send = send
        self._dirty = False
        self._sent_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        self._dirty = True
        wait = self._sent_at + self._interval - time.monotonic()
        if wait <= 0:
            self.flush_now()
        elif self._timer is None:
            import asyncio  # here: the job runs in nbclient's event loop, which imported it

            with contextlib.suppress(RuntimeError):  # no event loop: the next flush sends it
                self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush_now()

    def flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dirty:
            self._dirty = False
            self._sent_at = time.monotonic()
            self._send()


class OutputTail:
    """A file-like object keeping the last lines written to it (at most ``OUTPUT_TAIL_LINES``
    lines and ``OUTPUT_TAIL_CHARS`` characters), handing the tail to ``send`` at most once
    every ``OUTPUT_INTERVAL`` seconds."""

    def __init__(self, send: Callable[[str], None]):
        self.text = ""
        self._throttle = Throttle(OUTPUT_INTERVAL, lambda: send(self.text))

    def write(self, text: str) -> int:
        tail = (self.text + text)[-OUTPUT_TAIL_CHARS:]
        lines = tail.splitlines(keepends=True)
        if len(lines) > OUTPUT_TAIL_LINES:
            tail = "".join(lines[-OUTPUT_TAIL_LINES:])
        self.text = tail
        self._throttle.changed()
        return len(text)

    def flush(self) -> None:
        """Papermill flushes after each write; the throttle decides when the tail goes."""

    def flush_now(self) -> None:
        self._throttle.flush_now()


def first_line(source: str) -> str:
    """A cell's first non-blank line, cut to ``CELL_LINE_LIMIT`` characters."""
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= CELL_LINE_LIMIT else line[: CELL_LINE_LIMIT - 1] + "…"
