"""Ploomber's status names (``from nbpipe.constants import TaskStatus``, as
``from ploomber.constants import TaskStatus``), mapped onto nbpipe's task statuses.

``task.exec_status`` is an ``nbpipe.engine.events.TaskStatus``; each member here has the same
value as the nbpipe status it stands for, so the two compare equal and hash alike::

    task.exec_status == TaskStatus.Executed          # an executed task
    task.exec_status in {TaskStatus.Executed, TaskStatus.Skipped}

Mapping (Ploomber name -> nbpipe status):

==================  ================================================================
WaitingRender       pending: not part of a build yet
WaitingExecution    queued: will run (nbpipe does not tell "ready" from "waiting for
WaitingUpstream     upstream", so both names are the one member ``queued``)
Skipped             skipped: up to date
Executed            executed
Errored             failed
Aborted             aborted: an upstream task failed
==================  ================================================================

Ploomber's ``WaitingDownload``, ``ErroredRender``, ``AbortedRender`` and ``BrokenProcessPool``
exist but no nbpipe task ever has them: nbpipe has no remote products, a render problem stops
the whole build before any task gets a status (``DAGRenderError``), and a worker that dies
fails its task (``failed``). nbpipe's ``running``, ``stopped_early`` and ``cancelled`` have no
Ploomber name; compare with ``nbpipe.engine.events.TaskStatus`` for those.
"""

from __future__ import annotations

import enum

from nbpipe.engine.events import TaskStatus as _Status

__all__ = ["DAGStatus", "TaskStatus"]


class TaskStatus(str, enum.Enum):
    """Ploomber's task statuses; each equals the nbpipe status it maps to (module docstring)."""

    WaitingRender = _Status.PENDING.value
    WaitingExecution = _Status.QUEUED.value
    WaitingUpstream = _Status.QUEUED.value  # an alias: the same member as WaitingExecution
    Skipped = _Status.SKIPPED.value
    Executed = _Status.EXECUTED.value
    Errored = _Status.FAILED.value
    Aborted = _Status.ABORTED.value
    # statuses no nbpipe task takes (module docstring)
    WaitingDownload = "waiting_download"
    ErroredRender = "errored_render"
    AbortedRender = "aborted_render"
    BrokenProcessPool = "broken_process_pool"

    __hash__ = str.__hash__  # hash as the value, like nbpipe's statuses (sets, dict keys)


class DAGStatus(str, enum.Enum):
    """Ploomber's DAG statuses. nbpipe's DAG has no status attribute; a build's outcome is
    ``report.outcome`` (``nbpipe.engine.events.BuildOutcome``). Kept so that imports work."""

    WaitingRender = "waiting_render"
    WaitingExecution = "waiting_execution"
    ErroredRender = "errored_render"
    Executed = "executed"
    Errored = "errored"
