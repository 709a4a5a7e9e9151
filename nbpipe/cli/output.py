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
from typing import TYPE_CHECKING, Any

from nbpipe.cli.errors import describe_error, signal_exit_code

if TYPE_CHECKING:
    import logging

    from nbpipe.engine.dag import DAG
    from nbpipe.engine.events import Event, Observer
    from nbpipe.engine.report import BuildReport, ReportCollector
    from nbpipe.engine.status import StatusReport


class Output:
    """How a command reports: for people (HumanOutput) or for programs (the JSON outputs).

    The calls come in this order: ``header`` and ``warnings`` while the pipeline loads; then
    ``status``, or a build (``observers``, then ``failed`` if tasks failed, then ``finished``);
    or ``interrupted``/``error`` instead, whose return value is the exit code; ``close`` always.
    """

    #: Set when a build starts, so an interrupted build can still show what it did.
    report_collector: ReportCollector | None = None

    def header(self, entry_point: str | None) -> None:
        pass

    def warnings(self, warnings: list[str]) -> None:
        """Spec warnings; they are also logged (to stderr) by the loader."""

    def observers(self) -> list[Observer]:
        return []

    def failed(self, failures: dict[str, str], details: dict[str, dict[str, Any]]) -> None:
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
        self._failures: tuple[dict, dict] = ({}, {})

    def observers(self) -> list[Observer]:
        if sys.stderr.isatty():
            setup_logging(level="WARNING")
            return [ProgressBar()]
        setup_logging(level="INFO")
        return []

    def failed(self, failures: dict[str, str], details: dict[str, dict[str, Any]]) -> None:
        for name, text in failures.items():
            print(f"\n--- task {name!r} failed ---\n{text.rstrip()}", file=sys.stderr)
        self._failures = (failures, details)

    def finished(self, report: BuildReport, code: int) -> None:
        print(_with_short_paths(report))
        for name, text in self._failures[0].items():
            print(_failure_summary(name, text, self._failures[1].get(name, {})), file=sys.stderr)

    def status(self, dag: DAG, status: StatusReport) -> None:
        print(_with_short_paths_status(status))

    def interrupted(self, signum: int) -> int:
        report = self.report_collector.report if self.report_collector else None
        if report is not None and len(report):
            print(_with_short_paths(report))
        name = signal.Signals(signum).name
        if self.report_collector is None:  # before any build started
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


def _failure_summary(name: str, text: str, details: dict[str, Any]) -> str:
    """One failed task in a line or three, after the report: where it failed and why."""
    if details.get("type") == "NotebookExecutionError":
        where = f"cell {details['cell_index'] + 1}"
        if details.get("line"):
            where += f", line {details['line']}"
        lines = [
            f"error: task {name!r} failed in {_short(details.get('source', ''))}, {where}: "
            f"{details.get('ename')}: {details.get('evalue')}"
        ]
        if details.get("code"):
            lines.append(f"    {details['code']}")
        if details.get("partial_path"):
            lines.append(f"  partially executed notebook: {_short(details['partial_path'])}")
        return "\n".join(lines)
    first = (details.get("evalue") and f"{details.get('type')}: {details['evalue']}") or (
        text.strip().splitlines()[-1] if text.strip() else "failed"
    )
    return f"error: task {name!r} failed: {first}"


def _short(path: str) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("..") else path


def _with_short_paths(report: BuildReport) -> BuildReport:
    import copy

    shown = copy.deepcopy(report)
    for row in shown:
        row.products = [_short(path) for path in row.products]
    return shown


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


def setup_logging(level: str) -> None:
    """Send the ``nbpipe`` logger to stderr at ``level``. The handler is added once per process;
    later calls only change the level (a build decides it once it knows where stderr goes)."""
    import logging

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


class ProgressBar:
    """A progress bar on stderr (a terminal): tasks done of tasks to run, and what runs now."""

    def __init__(self):
        self._bar = None
        self._running: list[str] = []

    def __call__(self, event: Event) -> None:
        kind = event.kind.value
        if kind == "build_started":
            from tqdm import tqdm

            total = len(event.details.get("to_run", []))
            self._bar = tqdm(total=total, file=sys.stderr, unit="task", desc="Building")
        elif self._bar is None:
            return
        elif kind == "task_started":
            self._running.append(event.task)
            self._bar.set_postfix_str(", ".join(self._running), refresh=True)
        elif kind in ("task_finished", "task_failed", "task_aborted", "task_stopped_early"):
            if event.task in self._running:
                self._running.remove(event.task)
            self._bar.set_postfix_str(", ".join(self._running), refresh=False)
            self._bar.update(1)
            if kind != "task_finished":
                self._bar.write(f"{event.task}: {kind.replace('task_', '').replace('_', ' ')}")
        elif kind == "task_cancelled":
            self._bar.update(1)
        elif kind == "build_finished":
            self._bar.close()
            self._bar = None
