"""How a command reports, and the report for people.

Every command talks to an :class:`Output`; ``main`` picks one from the arguments:
:class:`HumanOutput` here, or one of the JSON outputs in :mod:`nbpipe.cli.json_output` for
programs. For people, the build report (a table) goes to stdout; progress goes to stderr: a
:class:`ProgressBar` on a terminal, log lines otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

from nbpipe.cli.errors import describe_error, signal_exit_code

if TYPE_CHECKING:
    import logging

    from nbpipe.engine.dag import DAG
    from nbpipe.engine.events import Observer, TaskFailure
    from nbpipe.engine.report import BuildReport
    from nbpipe.engine.state import BuildState
    from nbpipe.engine.status import StatusReport


class Output:
    """How a command reports: for people (HumanOutput) or for programs (the JSON outputs).

    The calls come in this order: ``header`` and ``warnings`` while the pipeline loads; then
    ``status``, or a build (``observers``, then ``failed`` if tasks failed, then ``finished``);
    or ``interrupted``/``error`` instead, whose return value is the exit code; ``close`` always.
    """

    #: Set when a build starts, so an interrupted build can still show what it did.
    build_state: BuildState | None = None

    def header(self, entry_point: str | None) -> None:
        pass

    def warnings(self, warnings: list[str]) -> None:
        """Spec warnings; they are also logged (to stderr) by the loader."""

    def observers(self) -> list[Observer]:
        return []

    def failed(self, failures: dict[str, TaskFailure]) -> None:
        pass

    def finished(self, report: BuildReport, code: int) -> None:
        pass

    def status(self, dag: DAG, status: StatusReport) -> None:
        raise NotImplementedError

    def interrupted(self, signum: int) -> int:
        raise NotImplementedError

    def error(self, error: BaseException) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HumanOutput(Output):
    """Tables on stdout; progress, tracebacks and one-line failure summaries on stderr."""

    def __init__(self):
        self._failures: dict[str, TaskFailure] = {}

    def observers(self) -> list[Observer]:
        from nbpipe.engine.progress import ProgressObserver

        if sys.stderr.isatty():
            setup_logging(level="WARNING")
            return [ProgressObserver(bar=True, file=sys.stderr)]
        setup_logging(level="INFO")
        return []

    def failed(self, failures: dict[str, TaskFailure]) -> None:
        for name, failure in failures.items():
            print(f"\n--- task {name!r} failed ---\n{failure.text().rstrip()}", file=sys.stderr)
        self._failures = failures

    def finished(self, report: BuildReport, code: int) -> None:
        print(report.table(_short))
        for name, failure in self._failures.items():
            print(_failure_summary(name, failure), file=sys.stderr)

    def status(self, dag: DAG, status: StatusReport) -> None:
        print(_with_short_paths_status(status))

    def interrupted(self, signum: int) -> int:
        from nbpipe.engine.report import BuildReport

        if self.build_state is not None and self.build_state.tasks:
            print(BuildReport(self.build_state).table(_short))
        name = signal.Signals(signum).name
        if self.build_state is None:  # before any build started
            print(f"nbpipe: interrupted ({name})", file=sys.stderr)
        else:
            print(
                f"nbpipe: build interrupted ({name}); running tasks were stopped and their "
                "products discarded",
                file=sys.stderr,
            )
        return signal_exit_code(signum)

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        print(f"error: {message}", file=sys.stderr)
        return code


def _failure_summary(name: str, failure: TaskFailure) -> str:
    """One failed task in a line or three, after the report: where it failed and why."""
    if failure.cell is None:
        return f"error: task {name!r} failed: {failure.summary()}"
    where = f"cell {failure.cell + 1}" + (f", line {failure.line}" if failure.line else "")
    lines = [
        f"error: task {name!r} failed in {_short(failure.source or '')}, {where}: "
        f"{failure.type}: {failure.message}"
    ]
    if failure.code:
        lines.append(f"    {failure.code}")
    if failure.partial_notebook:
        lines.append(f"  partially executed notebook: {_short(failure.partial_notebook)}")
    return "\n".join(lines)


def _short(path: str) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("..") else path


def _with_short_paths_status(status: StatusReport) -> StatusReport:
    import dataclasses

    from nbpipe.engine.status import StatusReport

    return StatusReport(
        [dataclasses.replace(row, products=[_short(p) for p in row.products]) for row in status]
    )


# -- logging and progress -------------------------------------------------------------------------
class _Formatter:
    """Spec warnings as ``warning: file:line: message``; other records with their time."""

    def __init__(self):
        import logging

        self._plain = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        import logging

        if record.levelno >= logging.WARNING and record.name == "nbpipe.spec":
            return f"warning: {record.getMessage()}"
        return self._plain.format(record)


#: The level ``--log`` asked for; it wins over the level a command would choose.
_requested_level: str | None = None


def log_to(level: str | None, file: str | None) -> None:
    """Ploomber's ``--log LEVEL`` and ``--log-file FILE``: the root logger (so the pipeline's
    own code too, and papermill's) logs at ``level`` to stderr, and to ``file`` when given
    (at ``level``, default INFO); nbpipe's own messages go to both at that level."""
    global _requested_level
    import logging

    if level is None and file is None:
        return
    _requested_level = level or "INFO"
    root = logging.getLogger()
    root.setLevel(_requested_level)
    if level is not None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.addHandler(stream)
    if file is not None:
        handler = logging.FileHandler(file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        logging.getLogger("nbpipe").addHandler(handler)  # nbpipe's logger does not propagate


def setup_logging(level: str) -> None:
    """Send the ``nbpipe`` logger to stderr at ``level`` (or ``--log``'s). The handler is added
    once per process; later calls only change the level (a build decides it once it knows where
    stderr goes)."""
    import logging

    level = _requested_level or level
    logger = logging.getLogger("nbpipe")
    if getattr(logger, "_nbpipe_cli", False):
        logger.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())  # type: ignore[arg-type]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    logger._nbpipe_cli = True  # type: ignore[attr-defined]
    logging.getLogger("nbpipe.spec").propagate = True
