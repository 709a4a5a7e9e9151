"""Kernels for notebook tasks: forked from a template, and warm (started ahead of their notebook).

Every notebook runs in a fresh kernel of its own. A Python kernel is forked from this process's
kernel template when it can be (``nbpipe.notebooks.forking``): ``KernelKey``'s last field holds
the template's preload modules then, and None for a kernel started as a new process.

The build warms up before its first notebook (``WarmUp``): it starts the template, whose imports
then overlap the process's own (papermill's), and when every worker will get a notebook, each
worker starts its first notebook's kernel as it starts. And a worker that will run another
notebook starts that kernel while the current one runs, so the next task finds it ready
(``warm_kernel``). A warm kernel is never reused: it runs exactly one notebook, then exits as
papermill's kernels do (``exiting``: its notebook's files flushed, its exit handlers run).

Only worker processes keep warm kernels, and a process says it is one
(``declare_notebook_worker``): a ``Parallel`` worker as it starts, a Dask runner too. The building
process itself (the Serial executor, the CLI, a notebook's kernel running ``%pipeline``, the
server) does not: its signal handling belongs to its caller, and a kernel starting there races
with a Ctrl-C. It does start a template (a process that runs nothing of the user's until asked
for a kernel), which its pool stops when it closes.

At most one kernel is kept warm per process, keyed by what its start depends on (kernel name,
working directory, arguments, template); a task whose key differs shuts it down and starts its
own. Warm kernels are shut down when the build's pool closes: a ``Parallel`` worker's by a
finaliser as the worker exits; a Dask runner outlives the build (it serves the next one on a
running cluster), so the pool asks each runner of its build to ``shutdown_warm_kernels``, and a
runner also does it when it exits. An orphan would stop by itself anyway: ipykernel exits when
its parent process (the worker, or the template) dies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.util import Finalize

#: kernel name, working directory, kernel arguments, and the template's preload modules when
#: the kernel is forked (None: a new process)
KernelKey = tuple[str, str, tuple[str, ...], tuple[str, ...] | None]

_warm: dict[KernelKey, object] = {}
_finaliser: Finalize | None = None
_notebook_worker = False  # see declare_notebook_worker


@dataclass
class WarmUp:
    """A build's warm-up for ``key``'s kernels. ``share()``, in the building process of a build
    with worker processes, starts one kernel template for all its workers; calling the warm-up,
    in each process that runs notebooks before its first one, starts this process's template
    (forked by the shared one, if any; it returns at once: the template imports in the
    background), and, in a worker of a build with a notebook for every worker
    (``kernel_ahead``), that first notebook's kernel: it starts as soon as the template is
    ready, rather than when the notebook arrives. The call returns what stops what it started."""

    key: KernelKey
    kernel_ahead: bool = False  # each worker warms its first notebook's kernel as it starts
    shared: str | None = None  # the shared template's address

    def share(self) -> Callable[[], None] | None:
        """Starts the shared template (forked kernels only), or orders the one started ahead of
        the build (``forking.start_template_ahead``); returns what stops it."""
        if self.key[3] is None:
            return None
        from nbpipe.notebooks.forking import shared_template

        template = shared_template(self.key[3], self.key[1])
        self.shared = template.address
        return template.close

    def __call__(self) -> Callable[[], None]:
        template = self.key[3]
        if template is not None:
            from nbpipe.notebooks.forking import stop_template, template_for, use_shared_template

            if self.shared is not None:
                use_shared_template(self.shared, template)
            template_for(template, self.key[1])
        if self.kernel_ahead:
            try:
                warm_kernel(self.key)
            except Exception:  # a template that failed: the first notebook's job says why
                shutdown_warm_kernels()
        if template is not None:
            return stop_template
        return shutdown_warm_kernels


def new_kernel_manager(key: KernelKey):
    """An unstarted manager for ``key``'s kernel (papermill starts it): forked from the
    template, or else started as a new process, by nbpipe's manager either way (its kernels
    talk over private sockets, ``nbpipe.notebooks.provisioner``). Raises KernelTemplateError
    when the template could not start (a preload that failed)."""
    template = key[3]
    if template is None:
        from nbpipe.notebooks.provisioner import OwnKernelManager

        return OwnKernelManager(kernel_name=key[0])
    from nbpipe.notebooks.forking import template_for
    from nbpipe.notebooks.provisioner import ForkingKernelManager

    template_for(template, key[1]).ready()
    return ForkingKernelManager(kernel_name=key[0], preload=list(template))


def take_warm_kernel(key: KernelKey):
    """The kernel manager warmed for ``key`` (its kernel alive and unused), or None."""
    from jupyter_core.utils import run_sync

    manager = _warm.pop(key, None)
    if manager is not None and run_sync(manager.is_alive)():
        return manager
    shutdown_warm_kernels()
    return None


def declare_notebook_worker() -> None:
    """Says, once, that this process is a worker that runs notebooks for builds (a ``Parallel``
    worker, a Dask runner): from now on it may keep a warm kernel (``warm_kernel``).

    Such a process ignores Ctrl-C: the building process handles it, and stops its workers and
    their kernels. The building process itself must not call this (under ``Serial``, in the
    CLI, in a user's kernel running ``%pipeline``, in the server): its signal handling belongs to
    its caller, and a kernel it started ahead, for no notebook running yet, races with a Ctrl-C
    (the interrupt may come while the kernel starts, and leave it behind)."""
    global _notebook_worker
    _notebook_worker = True


def warm_kernel(key: KernelKey) -> None:
    """Starts a kernel for ``key`` in the background (returns once its process is launched); only
    in a process that called ``declare_notebook_worker`` (elsewhere it does nothing)."""
    global _finaliser
    if key in _warm or not _notebook_worker:
        return
    from jupyter_core.utils import run_sync

    shutdown_warm_kernels()
    _, cwd, arguments, _ = key
    manager = new_kernel_manager(key)
    run_sync(manager.start_kernel)(cwd=cwd, extra_arguments=list(arguments))
    _warm[key] = manager
    if _finaliser is None:
        # multiprocessing's workers skip atexit; its finalisers with a priority run on exit in
        # every process (from atexit in the others)
        _finaliser = Finalize(None, shutdown_warm_kernels, exitpriority=100)


def stop_kernel(manager) -> None:
    """Kills a kernel now: one that never ran a notebook (warm, unused), one whose notebook was
    interrupted or whose start failed (its connection file goes). A kernel that ran its notebook
    exits instead (``exiting``)."""
    from jupyter_core.utils import run_sync

    with contextlib.suppress(Exception):  # already gone
        if hasattr(manager, "close_clients"):
            manager.close_clients()
        if manager.has_kernel:
            run_sync(manager.shutdown_kernel)(now=True)
        else:
            run_sync(manager.cleanup_resources)()


@contextlib.contextmanager
def exiting(manager) -> Iterator[None]:
    """Asks the kernel of a notebook that ran to its end (or to a failing cell) to exit, as
    papermill and Jupyter do, runs the block while it exits (the notebook's files are written
    meanwhile), then waits for its end.

    A kernel killed instead would lose what its user's code left in buffers (a file written
    and never closed) and skip the exit handlers that code registered. A kernel that does not
    end within jupyter_client's ``shutdown_wait_time`` is terminated, then killed; and if the
    wait itself is interrupted (Ctrl-C, a build cancelled), the kernel is killed at once."""
    from jupyter_core.utils import run_sync

    try:
        if hasattr(manager, "close_clients"):
            manager.close_clients()
        run_sync(manager.request_exit)()
    except BaseException:
        stop_kernel(manager)
        raise
    try:
        yield
    finally:
        try:
            run_sync(manager.finish_exit)()
        except BaseException:
            stop_kernel(manager)
            raise


def shutdown_warm_kernels() -> int:
    """Shuts this process's warm kernel down, if any; returns how many it stopped."""
    if not _warm:
        return 0
    managers = list(_warm.values())
    _warm.clear()
    for manager in managers:
        stop_kernel(manager)
    return len(managers)
