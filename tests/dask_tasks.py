"""Task functions for the Dask cluster tests (importable by the runners on the workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def hang_once(product, marker):
    """The first run notes its Dask worker's pid in ``marker`` and hangs until its worker is
    killed; the run that Dask starts again elsewhere finds the marker and finishes."""
    if Path(marker).exists():
        Path(product).write_text("second run")
        return
    Path(marker).write_text(str(os.getppid()))  # the runner's parent: the Dask worker process
    time.sleep(600)


def write_pid(product, upstream=None):
    Path(product).write_text(str(os.getpid()))


def nbpipe_task_states(dask_worker) -> dict[str, str]:
    """``client.run`` it: the state of each nbpipe job this worker holds ("executing", or
    "constrained" while it waits for a resource such as KERNEL)."""
    return {
        str(key): task.state
        for key, task in dask_worker.state.tasks.items()
        if str(key).startswith("nbpipe-")
    }
