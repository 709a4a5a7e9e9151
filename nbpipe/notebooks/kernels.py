"""Warm kernels: the next notebook's kernel starts while the current notebook runs.

Every notebook runs in a fresh kernel, and starting one costs most of a second (the kernel imports
IPython). A worker starts the first notebook's kernel as it starts, and a process that will run
another notebook starts that kernel during the current one, so the next task finds it ready. A
warm kernel is never reused: it runs exactly one notebook, then is shut down.

Only worker processes keep warm kernels. The building process itself (the Serial executor, the
CLI, a notebook's kernel running ``%pipeline``) does not: its signal handling belongs to its
caller, and a kernel starting there races with a Ctrl-C.

At most one kernel is kept warm per process, keyed by what its start depends on (kernel name,
working directory, arguments); a task whose key differs shuts it down and starts its own. Warm
kernels are shut down when the build's pool closes: by ``shutdown_warm_kernels`` (in-process
executor) or by a finaliser when a worker process exits. An orphan would stop by itself anyway:
ipykernel exits when its parent process dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.util import Finalize

KernelKey = tuple[str, str, tuple[str, ...]]

_warm: dict[KernelKey, object] = {}
_finaliser: Finalize | None = None


def take_warm_kernel(key: KernelKey):
    """The kernel manager warmed for ``key`` (its kernel alive and unused), or None."""
    from jupyter_core.utils import run_sync

    manager = _warm.pop(key, None)
    if manager is not None and run_sync(manager.is_alive)():
        return manager
    shutdown_warm_kernels()
    return None


def warm_kernel(key: KernelKey) -> None:
    """Starts a kernel for ``key`` in the background (returns once its process is launched)."""
    global _finaliser
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    if key in _warm or multiprocessing.parent_process() is None:
        return
    shutdown_warm_kernels()
    kernel_name, cwd, arguments = key
    manager = AsyncKernelManager(kernel_name=kernel_name)
    run_sync(manager.start_kernel)(cwd=cwd, extra_arguments=list(arguments))
    _warm[key] = manager
    if _finaliser is None:
        # worker processes skip atexit; multiprocessing runs finalisers with a priority on exit
        _finaliser = Finalize(None, shutdown_warm_kernels, exitpriority=100)


def shutdown_warm_kernels() -> None:
    if not _warm:
        return
    from jupyter_core.utils import run_sync

    for manager in list(_warm.values()):
        with contextlib.suppress(Exception):  # already gone
            run_sync(manager.shutdown_kernel)(now=True)
    _warm.clear()
