"""What runs inside a worker: one job in, one picklable :class:`Outcome` out.

Exceptions are turned into text here, in the worker, because a user's exception object may not
survive pickling back to the scheduler.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from nbpipe.engine.events import TaskFailure
from nbpipe.exceptions import DAGBuildEarlyStop, NotebookExecutionError
from nbpipe.executors.channel import Sink, install_sink
from nbpipe.executors.lifeline import die_with_parent


@dataclass(frozen=True)
class Outcome:
    task: str
    state: str  # "ok" | "failed" | "early_stop"
    started: float
    ended: float
    message: str = ""  # the early-stop message
    failure: TaskFailure | None = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


def run_job(job) -> Outcome:
    started = time.time()
    try:
        job.run()
    except DAGBuildEarlyStop as stop:
        return Outcome(job.task, "early_stop", started, time.time(), str(stop))
    except Exception as error:  # a task's failure is data for the report, not a crash
        return Outcome(
            job.task, "failed", started, time.time(), failure=describe_error(job.task, error)
        )
    return Outcome(job.task, "ok", started, time.time())


def describe_error(task: str, error: BaseException) -> TaskFailure:
    """The error as data: for a notebook, its failing cell and line; for an error that carries
    its own ``task_failure`` (a task's program that failed in a child process, see
    ``nbpipe.tasks.child``), that; else the traceback from the user's code on."""
    carried = getattr(error, "task_failure", None)
    if isinstance(carried, TaskFailure):
        return dataclasses.replace(carried, task=task)
    if isinstance(error, NotebookExecutionError):
        return TaskFailure(
            task=task,
            type=error.ename,
            message=error.evalue,
            traceback=error.traceback,
            source=error.source,
            cell=error.cell_index,
            line=error.line,
            code=error.code,
            partial_notebook=error.partial_path,
        )
    text = "".join(traceback.format_exception(type(error), error, _user_frames(error))).rstrip()
    return TaskFailure(task=task, type=type(error).__name__, message=str(error), traceback=text)


def _user_frames(error: BaseException):
    """The traceback without nbpipe's own leading frames (the job runner), so it starts at the
    user's code."""
    tb = error.__traceback__
    while (
        tb is not None
        and tb.tb_next is not None
        and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE)
    ):
        tb = tb.tb_next
    return tb


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def init_worker(
    imports: tuple[str, ...] = (),
    warm_up: Callable[[], object] | None = None,
    progress: Sink | None = None,
) -> None:
    """Worker start-up: the scheduler alone handles Ctrl-C; SIGTERM unwinds the task so that
    papermill shuts its kernel down instead of leaving it orphaned. Slow imports the tasks need
    (papermill, nbformat) are paid here, once per worker, without the modules they would import
    and nbpipe never uses (``nbpipe.notebooks.imports``). The warm-up comes first (e.g. it starts the kernel template,
    a process whose imports then overlap the worker's own); what it started stops when the worker
    exits (its own finaliser).

    A worker dies with its parent (``lifeline``): a build killed outright leaves no worker behind.
    A SIGTERM during start-up means the build is being stopped: the worker leaves quietly (a
    SystemExit escaping an initializer would print "Exception in initializer" and a traceback).
    The jobs' progress reports go to ``progress``, the executor's sink (``executors.channel``).
    A worker may keep the next notebook's kernel warm (``kernels.declare_notebook_worker``).

    What a worker inherits (forked) and imports lasts as long as it does: it is frozen
    (``gc.freeze``), first thing and once the imports are done, so that the worker's collections
    scan only what its jobs make (a full scan of the notebook stack: 0.03-0.13 CPU-s), and do not
    copy the pages it shares with its parent by writing to every object on them."""
    from nbpipe.notebooks.kernels import declare_notebook_worker

    gc.freeze()  # what it inherited, before it allocates anything
    install_sink(progress)
    declare_notebook_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid is not None:
            die_with_parent(parent.pid)
        if warm_up is not None or imports:
            from nbpipe.notebooks.imports import unused_imports_hidden

            with unused_imports_hidden():
                if warm_up is not None:
                    warm_up()
                for module in imports:
                    importlib.import_module(module)
        gc.freeze()  # and what it imported
    except SystemExit as stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # leaving already: a second one waits
        from nbpipe.notebooks.forking import stop_template
        from nbpipe.notebooks.kernels import shutdown_warm_kernels

        shutdown_warm_kernels()
        stop_template()
        os._exit(stop.code if isinstance(stop.code, int) else 1)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
