"""The report for programs (``--json``), such as the server extension; the formats are described
in ``docs/json-events.md``.

``build --json`` and ``task --json`` (:class:`JsonOutput`) write one JSON line per build event,
between a header and a summary; ``status --json`` (:class:`StatusJsonOutput`) writes one JSON
object: the tasks (kind, source, upstream, products, state) and edges, or the error that kept the
pipeline from loading. Either way stdout carries only JSON; everything else, including anything
tasks print, goes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from nbpipe.cli.errors import describe_error, error_dict, say, signal_exit_code
from nbpipe.cli.output import Output, setup_logging

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG
    from nbpipe.engine.events import Event, Observer
    from nbpipe.engine.report import BuildReport
    from nbpipe.engine.status import StatusReport, StatusRow
    from nbpipe.tasks import Task

#: The ``--json`` lines format; its version is the engine's EVENT_SCHEMA_VERSION.
JSON_FORMAT = "nbpipe-build-events"
#: ``status --json``'s format; versioned the same way.
STATUS_FORMAT = "nbpipe-status"
#: Characters a failure's message or traceback keeps in a ``--json`` line (head and tail).
FAILURE_TEXT_LIMIT = 100_000


def _cut(text: str, limit: int = FAILURE_TEXT_LIMIT) -> str:
    """``text``, or its head and tail saying how much was cut between them."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


class _JsonStdout(Output):
    """JSON on the real stdout. File descriptor 1 is pointed at stderr meanwhile, so nothing else
    (what tasks or the user's imported code print, worker or kernel output) can slip into it.
    A reader that went away (a closed pipe: the program reading the JSON died) ends the writing,
    never the command: a build then still stops its kernels and workers cleanly.

    Forked worker processes must not hold the JSON pipe open: a reader waiting for its end would
    otherwise wait for the workers too. In a forked child the pipe's descriptors are pointed at
    /dev/null."""

    def __init__(self):
        import json

        from nbpipe.engine.events import EVENT_SCHEMA_VERSION

        self._json = json
        self.version = EVENT_SCHEMA_VERSION
        sys.stdout.flush()
        self._saved = os.dup(1)
        self._stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        self._reader_gone = False
        self._closed = False
        os.register_at_fork(after_in_child=self._let_go_in_child)

    def _let_go_in_child(self) -> None:
        if self._closed:
            return
        self._reader_gone = True
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (self._saved, self._stream.fileno()):
            os.dup2(null, fd)
        os.close(null)

    def write_json(self, data: Any) -> None:
        if self._reader_gone:
            return
        try:
            self._stream.write(self._json.dumps(data, default=str) + "\n")
            self._stream.flush()
        except OSError:  # BrokenPipeError, mostly
            self._reader_gone = True

    def close(self) -> None:
        self._closed = True
        try:
            with contextlib.suppress(OSError):
                sys.stdout.flush()
            os.dup2(self._saved, 1)
        finally:
            os.close(self._saved)
            with contextlib.suppress(OSError):
                self._stream.close()


class JsonOutput(_JsonStdout):
    """``build --json``, ``task --json``: one JSON line per build event, between a header and a
    summary (docs/json-events.md)."""

    def __init__(self, command: str):
        super().__init__()
        self.command = command
        self._header_written = False
        setup_logging(level="INFO")

    def _line(self, event: str, **fields: Any) -> None:
        import time

        self.write_json({"v": self.version, "event": event, "time": time.time(), **fields})

    def header(self, entry_point: str | None) -> None:
        if self._header_written:
            return
        from nbpipe._version import __version__

        self._header_written = True
        self._line(
            "header",
            format=JSON_FORMAT,
            command=self.command,
            nbpipe_version=__version__,
            entry_point=entry_point,
            pid=os.getpid(),
        )

    def warnings(self, warnings: list[str]) -> None:
        for warning in warnings:
            self._line("warning", message=warning)

    def observers(self) -> list[Observer]:
        return [self._event]

    def _event(self, event: Event) -> None:
        data = event.to_dict()
        failure = data.get("failure")
        if isinstance(failure, dict):  # a reader has a line limit: cut, never lose, the failure
            for key in ("message", "traceback"):
                if isinstance(failure.get(key), str):
                    failure[key] = _cut(failure[key])
        self.write_json({"v": self.version, **data})

    def finished(self, report: BuildReport, code: int) -> None:
        self._summary(
            report.outcome.value if report.outcome else None,
            code,
            report=report.to_dict(),
            stop_reason=report.stop_reason,
        )

    def _summary(self, outcome: str | None, code: int, **fields: Any) -> None:
        self.header(None)  # a command that failed before loading still starts with a header
        fields.setdefault("report", None)
        fields.setdefault("stop_reason", None)
        fields.setdefault("error", None)
        self._line("summary", outcome=outcome, exit_code=code, **fields)

    def interrupted(self, signum: int) -> int:
        from nbpipe.engine.report import BuildReport

        code = signal_exit_code(signum)
        state = self.build_state
        self._summary(
            "interrupted",
            code,
            report=BuildReport(state).to_dict() if state is not None else None,
            signal=signal.Signals(signum).name,
        )
        say(f"nbpipe: interrupted ({signal.Signals(signum).name})")
        return code

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        say(f"error: {message}")
        self._summary("error", code, error=error_dict(error, message))
        return code


class StatusJsonOutput(_JsonStdout):
    """``status --json``: one JSON object, the status or the error (docs/json-events.md)."""

    def __init__(self):
        super().__init__()
        self._entry_point: str | None = None
        self._warnings: list[str] = []

    def header(self, entry_point: str | None) -> None:
        self._entry_point = entry_point

    def warnings(self, warnings: list[str]) -> None:
        self._warnings = list(warnings)

    def _document(self, **fields: Any) -> None:
        from nbpipe._version import __version__

        self.write_json(
            {
                "v": self.version,
                "format": STATUS_FORMAT,
                "nbpipe_version": __version__,
                "entry_point": self._entry_point,
                **fields,
            }
        )

    def status(self, dag: DAG, status: StatusReport) -> None:
        states = {row.name: row for row in status}
        tasks = [_task_status(task, states[task.name]) for task in dag.values()]
        self._document(
            dag=dag.name,
            executor=repr(dag.executor),
            warnings=self._warnings,
            tasks=tasks,
            edges=[[up, task["name"]] for task in tasks for up in task["upstream"]],
        )

    def interrupted(self, signum: int) -> int:
        name = signal.Signals(signum).name
        say(f"nbpipe: interrupted ({name})")
        self._document(error={"type": "Interrupted", "message": f"interrupted ({name})"})
        return signal_exit_code(signum)

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        say(f"error: {message}")
        self._document(error=error_dict(error, message))
        return code


def _task_status(task: Task, row: StatusRow) -> dict[str, Any]:
    """One task of ``status --json``: what it is (kind, source, upstream) and its state."""
    from nbpipe.tasks import NotebookRunner, PythonCallable

    function = None
    if isinstance(task, NotebookRunner):
        kind = "notebook"
    elif isinstance(task, PythonCallable):
        kind = "function"
        function = _dotted_name(task.source)
    else:
        kind = type(task).__name__
    source = task.source_path
    return {
        "name": task.name,
        "kind": kind,
        "source": os.path.abspath(source) if source else None,
        "function": function,
        "upstream": list(task.upstream),
        "grid": task.grid,
        "products": [os.path.abspath(path) for path in row.products],
        "state": row.state,
        "reasons": row.reasons,
        "last_built": row.last_built,
    }


def _dotted_name(fn: Any) -> str | None:
    """``module.qualname`` of a task's function, so a program can open its source."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}.{name}" if module and name else name
