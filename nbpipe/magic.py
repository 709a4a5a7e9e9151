"""The ``%pipeline`` magic: build, inspect and plot pipelines from inside a notebook.

    %load_ext nbpipe
    %pipeline build                  # pipeline.yaml found from the notebook's folder upwards
    %pipeline build -e other.yaml --force
    %pipeline build dag              # a DAG variable defined in the notebook
    %pipeline status | plot | help

Progress shows live in one output area (a display handle updated in place from the build's
events); the build report is returned, so it displays as a table and can be reused
(``report = %pipeline build``). Failures and early stops show compactly, not as tracebacks.

Inside a kernel the Parallel executor starts its workers with ``spawn``: forking a kernel process
(which runs threads) is unsafe. Spawned workers cannot import functions defined in the notebook
itself, so such a DAG is refused up front with a message saying what to do.
"""

from __future__ import annotations

import argparse
import html
import os
import shlex
import threading
import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import HTML, display

from nbpipe.engine.events import BuildFinished, BuildStarted, Event, TaskFailure
from nbpipe.engine.report import BuildReport
from nbpipe.engine.state import BuildState

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

SAFE_START_METHOD = "spawn"


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as IPython's UsageError instead of exiting."""

    def error(self, message: str):
        raise UsageError(f"{message}\n\n{self.format_usage()}")

    def exit(self, status: int = 0, message: str | None = None):
        raise UsageError(message or self.format_usage())


def _parser() -> _Parser:
    parser = _Parser(prog="%pipeline", description="Build and inspect nbpipe pipelines.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    build = commands.add_parser("build", help="build the pipeline (only what is outdated)")
    build.add_argument("entry", nargs="?", help="a DAG variable in the notebook")
    build.add_argument("-e", "--entry-point", help="a pipeline.yaml (default: found upwards)")
    build.add_argument("--force", action="store_true", help="rebuild every task")
    build.add_argument("--partially", metavar="TASK", help="build TASK and what it needs")
    build.add_argument("--processes", type=int, metavar="N", help="worker processes (Parallel)")
    for name, text in (("status", "which tasks are up to date"), ("plot", "the DAG as Mermaid")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("entry", nargs="?", help="a DAG variable in the notebook")
        sub.add_argument("-e", "--entry-point", help="a pipeline.yaml (default: found upwards)")
    commands.add_parser("help", help="show this help")
    return parser


@magics_class
class PipelineMagics(Magics):
    @line_magic
    def pipeline(self, line: str):
        """Build and inspect nbpipe pipelines; ``%pipeline help`` for the commands."""
        parser = _parser()
        args = parser.parse_args(shlex.split(line))
        if args.command in (None, "help"):
            print(parser.format_help())
            return None
        dag = self._load(args.entry, args.entry_point)
        if args.command == "status":
            return dag.status()
        if args.command == "plot":
            return dag.plot()
        return self._build(dag, args)

    # -- finding the pipeline -------------------------------------------------------------------
    def _load(self, variable: str | None, entry_point: str | None) -> DAG:
        from nbpipe.engine.dag import DAG

        if variable is not None:
            value = self.shell.user_ns.get(variable)
            if not isinstance(value, DAG):
                found = "not defined" if value is None else f"a {type(value).__name__}"
                raise UsageError(f"{variable!r} is {found}, not an nbpipe DAG")
            return value
        from nbpipe.spec import DAGSpec, SpecError, find_entry_point

        try:
            path = entry_point or find_entry_point(os.getcwd())
            return DAGSpec(path).to_dag()
        except SpecError as error:
            raise UsageError(str(error)) from None

    # -- building -------------------------------------------------------------------------------
    def _build(self, dag: DAG, args: argparse.Namespace):
        from nbpipe.exceptions import DAGBuildError, NbpipeError

        _make_kernel_safe(dag, args.processes)
        progress = LiveProgress()
        report = BuildReport(progress.state)
        try:
            if args.partially:
                dag.build_partially(args.partially, force=args.force, observers=[progress])
            else:
                dag.build(force=args.force, observers=[progress])
        except DAGBuildError as error:
            display(HTML(failure_html(error.failures)))
        except KeyboardInterrupt:
            display(HTML("<p><b>Build interrupted</b>: its workers and kernels were stopped.</p>"))
        except KeyError as error:  # --partially with an unknown task
            raise UsageError(str(error.args[0])) from None
        except NbpipeError as error:  # the DAG cannot be built (render problems, a cycle)
            raise UsageError(str(error)) from None
        if report.stopped_early:
            display(HTML(f"<p><b>Stopped early</b>: {html.escape(report.stop_reason or '')}</p>"))
        return report


def _make_kernel_safe(dag: DAG, processes: int | None) -> None:
    """Switch a Parallel executor to a start method that is safe in a kernel, and refuse
    functions that its workers could not import."""
    from nbpipe.executors import Parallel
    from nbpipe.tasks import PythonCallable

    executor = dag.executor
    if not isinstance(executor, Parallel):
        return
    if executor.start_method in (None, "fork") or processes:
        dag.executor = Parallel(
            processes=processes or executor._processes,
            print_progress=False,
            start_method=SAFE_START_METHOD
            if executor.start_method in (None, "fork")
            else executor.start_method,
        )
    local = [
        task.name
        for task in dag.values()
        if isinstance(task, PythonCallable)
        and getattr(task.source, "__module__", None) == "__main__"
    ]
    if local:
        raise UsageError(
            f"Task(s) {', '.join(local)} use functions defined in this notebook, which the Parallel "
            "executor's worker processes cannot import. Move them to a module next to the notebook "
            "(e.g. tasks.py) and import them from there, or use executor='serial'."
        )


class LiveProgress:
    """Observer that keeps one output area up to date with each task's state, read from its
    ``BuildState`` (the one reducer): a running notebook shows the cell it is in.

    Redraws are at least ``MIN_INTERVAL`` apart; a change that comes sooner is drawn by a timer
    when the interval is over (so a long cell shows even when it started right after another).
    """

    MIN_INTERVAL = 0.25  # seconds between redraws, so fast builds do not flood the front end

    def __init__(self):
        self.state = BuildState()
        self._handle = None
        self._drawn = 0.0
        self._lock = threading.Lock()  # the timer's redraw and the build's events
        self._timer: threading.Timer | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.state.apply(event)
            if isinstance(event, BuildStarted):
                self._handle = display(HTML(self._html("Building…")), display_id=True)
                return
            if self._handle is None:
                return
            if isinstance(event, BuildFinished):
                if self._timer is not None:
                    self._timer.cancel()
                self._draw(f"Build {event.outcome.value}")
                self._handle = None
                return
            wait = self._drawn + self.MIN_INTERVAL - time.monotonic()
            if wait <= 0:
                self._draw("Building…")
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._draw_late)
                self._timer.daemon = True
                self._timer.start()

    def _draw_late(self) -> None:
        with self._lock:
            self._timer = None
            if self._handle is not None:
                self._draw("Building…")

    def _draw(self, title: str) -> None:
        self._handle.update(HTML(self._html(title)))
        self._drawn = time.monotonic()

    def _html(self, title: str) -> str:
        done, total = self.state.progress()
        rows = "".join(
            f"<tr><td>{html.escape(task.name)}</td>"
            f"<td class='nbpipe-{task.status.value}'>{task.status.value}</td>"
            f"<td>{'' if task.elapsed is None else f'{task.elapsed:.2f} s'}</td>"
            f"<td><code>{html.escape(task.cell_text() or '')}</code></td></tr>"
            for task in self.state.tasks.values()
        )
        return (
            f"<details open><summary><b>{html.escape(title)}</b> {done}/{total} tasks</summary>"
            "<table><thead><tr><th>task</th><th>state</th><th>elapsed</th><th>now</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></details>"
        )


def failure_html(failures: dict[str, TaskFailure]) -> str:
    """Each failed task with the head of its error: where it failed and why (for a notebook,
    the cell, line and partial copy), never the whole traceback."""
    items = "".join(
        f"<li><b>{html.escape(name)}</b><pre>{html.escape(_head(failure))}</pre></li>"
        for name, failure in failures.items()
    )
    return f"<div><p><b>Build failed</b>: {len(failures)} task(s)</p><ul>{items}</ul></div>"


def _head(failure: TaskFailure, lines: int = 6) -> str:
    if failure.cell is not None:
        return failure.text(with_traceback=False)  # where, why, the partial copy
    return "\n".join(failure.text().strip().splitlines()[-lines:])


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(PipelineMagics)


def unload_ipython_extension(ipython: Any) -> None:
    ipython.magics_manager.registry.pop("PipelineMagics", None)
    ipython.magics_manager.magics["line"].pop("pipeline", None)
