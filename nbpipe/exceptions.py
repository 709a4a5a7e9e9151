"""Exceptions raised by nbpipe.

Every error derives from :class:`NbpipeError` (an ``Exception``), so ``except Exception`` catches
them. Errors that cross a process boundary carry plain strings only, so they survive pickling.
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


class DAGRenderError(NbpipeError):
    """Rendering found problems; ``problems`` lists each as ``(task name, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  - {task}: {message}" for task, message in problems)
        super().__init__(f"The DAG cannot be built, {len(problems)} problem(s):\n{lines}")

    def __reduce__(self):
        return (type(self), (self.problems,))


class MissingKernelError(NbpipeError):
    """A notebook asks for a Jupyter kernel that is not installed."""


class NotebookExecutionError(NbpipeError):
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
