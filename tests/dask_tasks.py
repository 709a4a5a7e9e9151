"""Task functions for the Dask cluster tests (importable by the runners on the workers), and a
notebook that shows which kernels were alive beside it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

#: A notebook's cell (parameters ``name``, ``folder``): writes ``folder/NAME.json`` with its
#: kernel's pid and the other kernels alive beside it, started by the same process (the
#: runner's kernel template, or the runner): a kernel warmed there for a later notebook.
KERNELS_BESIDE = """\
import json, os, psutil
kernel = psutil.Process()
beside = [p.pid for p in kernel.parent().children() if p.pid != kernel.pid]
path = os.path.join(folder, name + ".json")
with open(path + ".part", "w") as f:
    json.dump({"pid": kernel.pid, "beside": beside}, f)
os.replace(path + ".part", path)  # whole, for a test that waits for it
"""


def kernels_beside(folder: Path) -> dict[str, dict]:
    """What each notebook running ``KERNELS_BESIDE`` wrote, by its name."""
    return {path.stem: json.loads(path.read_text()) for path in Path(folder).glob("*.json")}


def hang_once(product, marker):
    """The first run notes its Dask worker's pid in ``marker`` and hangs until its worker is
    killed; the run that Dask starts again elsewhere finds the marker and finishes."""
    if Path(marker).exists():
        Path(product).write_text("second run")
        return
    Path(marker).write_text(str(os.getppid()))  # the runner's parent: the Dask worker process
    time.sleep(600)


def held(product, folder, name):
    """Notes its start (``started-NAME`` in ``folder`` holds the pid of the runner running it),
    then waits until the test creates ``release-NAME``, and writes its product."""
    folder = Path(folder)
    (folder / f"started-{name}").write_text(str(os.getpid()))
    while not (folder / f"release-{name}").exists():
        time.sleep(0.02)
    Path(product).write_text(name)


def held_then_stop(product, folder, name):
    """``held``, then stops the build early instead of writing its product."""
    from nbpipe.exceptions import DAGBuildEarlyStop

    folder = Path(folder)
    (folder / f"started-{name}").write_text(str(os.getpid()))
    while not (folder / f"release-{name}").exists():
        time.sleep(0.02)
    raise DAGBuildEarlyStop(f"{name} had enough")


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
