"""The worker plugin of the Dask executor, in a module of its own: importing it imports
``distributed``, which the building process, Parallel's workers and the Dask runners need not pay
for (half a second) unless a Dask build registers the plugin."""

from __future__ import annotations

import asyncio
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from nbpipe.executors.dask import STOP_GRACE, stop_jobs


class StopAbandonedJobs(WorkerPlugin):
    """On every worker: a running job whose Dask task the worker is told to drop (its client
    cancelled it, or went away: the building process was killed) has its runner stopped, as a
    cancel would, instead of running on to its end for nobody."""

    name = "nbpipe-stop-abandoned-jobs"
    idempotent = True  # registered by every build: once per worker is enough

    def __init__(self):
        self._stopping: set[asyncio.Task] = set()

    def transition(self, key, start: str, finish: str, **kwargs: Any) -> None:
        # a task dropped while it runs goes from "executing" to "released" (or "cancelled")
        dropped = start == "executing" and finish in ("released", "cancelled")
        if dropped and str(key).startswith("nbpipe-"):
            stopping = asyncio.get_running_loop().create_task(stop_jobs([key], STOP_GRACE))
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)
