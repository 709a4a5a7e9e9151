"""Progress display: a tqdm bar on stdout, or log lines on the ``nbpipe`` logger."""

from __future__ import annotations

import logging
import sys

from nbpipe.engine.events import Event, EventKind

logger = logging.getLogger("nbpipe")

_DONE = {
    EventKind.TASK_FINISHED: "finished",
    EventKind.TASK_FAILED: "failed",
    EventKind.TASK_ABORTED: "aborted",
    EventKind.TASK_STOPPED_EARLY: "stopped the build early",
    EventKind.TASK_CANCELLED: "cancelled",
}


class ProgressObserver:
    """Counts tasks to run and reports each as it settles."""

    def __init__(self, bar: bool = False):
        self._use_bar = bar
        self._bar = None

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.BUILD_STARTED:
            total = len(event.details.get("to_run", []))
            if self._use_bar:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, file=sys.stdout, unit="task", desc="Building")
            logger.info("Building %d task(s) of %s", total, event.details.get("dag"))
        elif kind is EventKind.TASK_STARTED:
            if self._bar is not None:
                self._bar.set_postfix_str(event.task)
            logger.info("%s: started", event.task)
        elif kind in _DONE:
            if self._bar is not None:
                self._bar.update(1)
            elapsed = event.details.get("elapsed")
            took = f" in {elapsed:.2f} s" if elapsed is not None else ""
            level = logging.ERROR if kind is EventKind.TASK_FAILED else logging.INFO
            logger.log(level, "%s: %s%s", event.task, _DONE[kind], took)
        elif kind is EventKind.BUILD_FINISHED:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            logger.info("Build %s", event.details.get("outcome"))
