"""Exceptions raised by nbpipe.

Every error derives from :class:`NbpipeError` (an ``Exception``), so ``except Exception`` catches
them. Errors that cross a process boundary carry plain strings only, so they survive pickling.

Ploomber's exception names exist here too (``from nbpipe.exceptions import TaskBuildError`` works
where ``from ploomber.exceptions import TaskBuildError`` did), each an ``Exception`` as in
Ploomber. Where nbpipe raises an error Ploomber code catches as a builtin, it still is one: a
spec that does not exist is a ``FileNotFoundError``, two tasks with one name a ``ValueError``.
docs/spec.md ("Ploomber compatibility") says which names nbpipe raises, and when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbpipe.engine.events import TaskFailure


class NbpipeError(Exception):
    """Base class of every nbpipe error."""


class DAGBuildEarlyStop(NbpipeError):
    """Raise it from a task or a hook to end the build cleanly.

    Tasks already running finish, no further task starts, and ``DAG.build`` returns a report that
    says the build stopped early and why.
    """


class DAGSpecError(NbpipeError):
    """The DAG is wrongly put together: a cycle, a duplicate name, a bad product or hook."""


class DuplicateTaskNameError(DAGSpecError, ValueError):
    """A task's name is already taken in its DAG (a ``ValueError``, as in Ploomber)."""


class DAGCycle(DAGSpecError):
    """Tasks depend on each other in a cycle (Ploomber's name)."""

    def __init__(self, message: str | None = None):
        super().__init__(message or "Failed to process DAG because it contains cycles.")


# -- Ploomber's names ---------------------------------------------------------------------------
class DAGSpecInitializationError(NbpipeError):
    """A spec cannot be loaded. Every ``nbpipe.spec.SpecError`` is one, so Ploomber code that
    catches this around ``DAGSpec(...)`` or ``DAGSpec.find()`` catches nbpipe's spec errors."""


class DAGSpecInvalidError(NbpipeError):
    """No spec where one was looked for (``nbpipe.spec.SpecNotFoundError`` is one)."""


class TaskInitializationError(NbpipeError):
    """A task's constructor got arguments it cannot use."""


class TaskBuildError(NbpipeError):
    """A task failed while building (a notebook's failing cell is a NotebookExecutionError,
    which is one)."""


class TaskRenderError(NbpipeError):
    """A task cannot be rendered (e.g. its notebook's kernel is not installed)."""


class RenderError(NbpipeError):
    """A template cannot be rendered (Ploomber's name; nbpipe has no templates, never raised)."""


class SourceInitializationError(NbpipeError):
    """A task's source cannot be used (Ploomber's name)."""


class MissingParametersCellError(SourceInitializationError):
    """A notebook has no cell tagged ``parameters`` (Ploomber's name)."""


class CallbackSignatureError(NbpipeError):
    """A hook asks for arguments nobody passes (Ploomber's name; nbpipe reports it at render)."""


class CallbackCheckAborted(NbpipeError):
    """Ploomber's name, never raised by nbpipe."""


class UpstreamKeyError(NbpipeError, KeyError):
    """``upstream['name']`` for a task that is not upstream (a ``KeyError`` too)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DAGWithDuplicatedProducts(NbpipeError):
    """Two tasks write the same product (Ploomber's name; nbpipe reports it at render)."""


class ValidationError(NbpipeError, ValueError):
    """A value is not one of those accepted (a ``ValueError`` too)."""


class MissingKeysValidationError(ValidationError):
    """Ploomber's name, never raised by nbpipe."""

    def __init__(self, message: str, missing_keys=None):
        self.missing_keys = missing_keys
        super().__init__(message)


class SpecValidationError(NbpipeError):
    """Ploomber's name, never raised by nbpipe (spec problems are ``nbpipe.spec.SpecError``)."""


class RemoteFileNotFound(NbpipeError):
    """Ploomber's name (remote File clients), never raised by nbpipe."""


class MissingClientError(NbpipeError):
    """Ploomber's name (clients are not supported), never raised by nbpipe."""


class NetworkException(NbpipeError):
    """Ploomber's name, never raised by nbpipe."""


class PlotException(NbpipeError):
    """A plot that cannot be drawn (Ploomber's name)."""


class DebuggingFinished(TaskBuildError):
    """Ploomber's name (debug sessions are not supported), never raised by nbpipe."""


class DAGRenderError(NbpipeError):
    """Rendering found problems; ``problems`` lists each as ``(task name, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  - {task}: {message}" for task, message in problems)
        super().__init__(f"The DAG cannot be built, {len(problems)} problem(s):\n{lines}")

    def __reduce__(self):
        return (type(self), (self.problems,))


class MissingKernelError(TaskRenderError):
    """A notebook asks for a Jupyter kernel that is not installed."""


class NotebookExecutionError(TaskBuildError):
    """A cell of a notebook task raised.

    Names the failing cell (``cell_index`` counts from 0 among the source notebook's cells; the
    message counts from 1), the line in that cell and its code, the error, and where the partially
    executed copy of the notebook was kept.
    """

    def __init__(
        self,
        source: str,
        cell_index: int,
        line: int | None,
        code: str | None,
        ename: str,
        evalue: str,
        traceback: str,
        partial_path: str | None,
    ):
        self.source = source
        self.cell_index = cell_index
        self.line = line
        self.code = code
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.partial_path = partial_path
        where = f"cell {cell_index + 1}" + (f", line {line}" if line else "")
        code_line = f"\n    {code}" if code else ""
        kept = f"\nPartially executed notebook: {partial_path}" if partial_path else ""
        super().__init__(f"{source}, {where}: {ename}: {evalue}{code_line}{kept}")

    def __reduce__(self):
        return (
            type(self),
            (
                self.source,
                self.cell_index,
                self.line,
                self.code,
                self.ename,
                self.evalue,
                self.traceback,
                self.partial_path,
            ),
        )


class DAGBuildError(NbpipeError):
    """One or more tasks failed. ``failures`` maps each failed task to its ``TaskFailure``
    (``nbpipe.engine.events``): type, message, traceback, and for a notebook its cell, line and
    partially executed copy.

    The build report (``report``) says which tasks ran, failed, were aborted or skipped.
    """

    def __init__(self, failures: dict[str, TaskFailure], report=None):
        self.failures = failures
        self.report = report
        parts = [f"{len(failures)} task(s) failed: {', '.join(failures)}"]
        parts += [f"\n--- {name} ---\n{failure.text()}" for name, failure in failures.items()]
        super().__init__("".join(parts))

    def __reduce__(self):
        return (type(self), (self.failures, self.report))
