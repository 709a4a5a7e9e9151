"""The ``nbpipe`` command line: build, inspect and plot a pipeline from a terminal, CI or a batch job.

``main(argv) -> int`` parses the command, runs it and is the one place where exceptions become
messages and exit codes:

    0    built (an early stop counts), or the command did what it was asked
    1    a task failed (the others were built; the report says which)
    2    bad usage, or a problem in the spec or the pipeline (``file:line: message``)
    130  interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM. Running kernels and workers are
         stopped and no half-written product is left.

Output: the build report (a table) goes to stdout; progress goes to stderr (a bar on a terminal,
log lines otherwise). With ``--json``, stdout carries only JSON lines, one per build event (see
``docs/json-events.md``); everything else, including anything tasks print, goes to stderr.
``status --json`` writes one JSON object: the tasks (kind, source, upstream, products, state) and
edges, or the error that kept the pipeline from loading (exit code 2).

Start-up is kept fast (``nbpipe --help``): only argparse is imported up front; the spec loader,
the engine and Jupyter's libraries are imported by the command that needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbpipe.dag import DAG
    from nbpipe.events import Event

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

#: The ``--json`` lines format; its version is the engine's EVENT_SCHEMA_VERSION.
JSON_FORMAT = "nbpipe-build-events"
#: ``status --json``'s format; versioned the same way.
STATUS_FORMAT = "nbpipe-status"

DESCRIPTION = """\
Build pipelines of Jupyter notebooks and Python functions described in a pipeline.yaml.

The pipeline is found in the working directory or its nearest parent folder that has a
pipeline.yaml; -e/--entry-point or $NBPIPE_ENTRY_POINT picks another."""

EPILOG = """\
examples:
  nbpipe build                      build what is out of date
  nbpipe build --force              rebuild everything
  nbpipe build --partially clean    build 'clean' and what it needs
  nbpipe build -p a -p b            build 'a', 'b' and what they need
  nbpipe build --env n_rows=1000    override a value of env.yaml
  nbpipe build --json               one JSON object per event on stdout (for programs)
  nbpipe status                     what is up to date, and why not
  nbpipe plot -o pipeline.html      the pipeline as a Mermaid diagram

exit codes: 0 built (early stop included), 1 a task failed, 2 bad usage or spec,
130/143 interrupted (SIGINT/SIGTERM)."""


# -- argument parsing -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from nbpipe._version import __version__

    parser = argparse.ArgumentParser(
        prog="nbpipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbpipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "-e",
            "--entry-point",
            metavar="ENTRY",
            help="the pipeline: a pipeline.yaml, a folder holding one, or a dotted path to a "
            "function returning a DAG (default: pipeline.yaml here or in a parent folder; "
            "$NBPIPE_ENTRY_POINT overrides)",
        )
        sub.add_argument(
            "--env",
            metavar="KEY=VALUE",
            action="append",
            default=[],
            help="override a value of env.yaml (repeatable; KEY may be dotted for nested "
            "values; VALUE is read as YAML, so 3 is a number). Ploomber's --env--KEY VALUE "
            "works too",
        )
        return sub

    build = command(
        "build",
        "build the pipeline's outdated tasks",
        "Build the tasks whose source, params or upstream products changed since their last "
        "build\n(all of them with --force). Prints the build report.",
    )
    build.add_argument("--force", "-f", action="store_true", help="build every task")
    build.add_argument(
        "--partially",
        "-p",
        metavar="TASK",
        action="append",
        help="build only TASK and the tasks it needs (repeatable: several tasks and what "
        "they need)",
    )
    build.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="run up to N tasks at once in worker processes (the Parallel executor)",
    )
    build.add_argument(
        "--json",
        action="store_true",
        help="write one JSON object per line on stdout for each build event, then a summary "
        "(format: docs/json-events.md); logs go to stderr",
    )
    build.set_defaults(handler=cmd_build)

    status = command(
        "status",
        "show which tasks are up to date, and why not",
        "Show, for each task, whether it is up to date and why not, without building anything.",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help="print the status as one JSON object on stdout, with each task's kind, source, "
        "upstream tasks and products (format: docs/json-events.md); errors too",
    )
    status.set_defaults(handler=cmd_status)

    plot = command(
        "plot",
        "draw the pipeline as a Mermaid diagram",
        "Draw the pipeline as a Mermaid flowchart. Without -o, print the Mermaid source.",
    )
    plot.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write it to FILE: .md (a fenced mermaid block), .html (a page) or .mmd (Mermaid)",
    )
    plot.set_defaults(handler=cmd_plot)

    task = command(
        "task",
        "build one task (its upstream tasks must be built already)",
        "Build the task NAME alone, if it is outdated (always with --force). Its upstream\n"
        "tasks are not built: use 'nbpipe build --partially NAME' for that.",
    )
    task.add_argument("name", metavar="NAME", help="the task's name")
    task.add_argument("--force", "-f", action="store_true", help="build it even if up to date")
    task.add_argument("--json", action="store_true", help="JSON lines output, as for build")
    task.set_defaults(handler=cmd_task)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def ploomber_env_arguments(argv: list[str]) -> list[str]:
    """Ploomber's ``--env--KEY VALUE`` / ``--env--KEY=VALUE`` as ``--env KEY=VALUE``
    (``__`` in KEY stands for a dot, as in Ploomber's nested keys)."""
    result: list[str] = []
    items = iter(argv)
    for item in items:
        if item.startswith("--env--"):
            key, equals, value = item[len("--env--") :].partition("=")
            if not equals:
                value = next(items, "")
            result += ["--env", f"{key.replace('__', '.')}={value}"]
        else:
            result.append(item)
    return result


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env


class UsageError(Exception):
    """A command-line mistake argparse cannot see (exit code 2)."""


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = ploomber_env_arguments(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version (0) and usage errors (2)
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _setup_logging(level="WARNING")
    output: Output
    if not getattr(args, "json", False):
        output = HumanOutput()
    elif args.command == "status":
        output = StatusJsonOutput()
    else:
        output = JsonOutput(args.command)
    interrupts = Interrupts()
    try:
        with interrupts:
            return args.handler(args, output)
    except KeyboardInterrupt:
        return output.interrupted(interrupts.signal_number or signal.SIGINT)
    except Exception as error:
        return output.error(error)
    finally:
        output.close()


class Interrupts:
    """SIGTERM is handled like Ctrl-C: KeyboardInterrupt, which makes the engine stop running
    kernels and workers and discard their staged products. Signals arriving while that cleanup
    runs are ignored, so a second Ctrl-C cannot leave kernels behind."""

    def __init__(self):
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signal_number is not None:
            with contextlib.suppress(OSError):  # stderr may be a pipe nobody reads any more
                print("nbpipe: still stopping running tasks...", file=sys.stderr, flush=True)
            return
        self.signal_number = signum
        raise KeyboardInterrupt

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


# -- commands -------------------------------------------------------------------------------------
def cmd_build(args: argparse.Namespace, output: Output) -> int:
    dag = _load(args, output)
    if args.processes:
        from nbpipe.executors import Parallel

        previous = dag.executor
        dag.executor = Parallel(
            processes=args.processes, start_method=getattr(previous, "start_method", None)
        )
    targets = list(dict.fromkeys(args.partially or []))
    unknown = [name for name in targets if name not in dag]
    if unknown:
        raise UsageError(_unknown_task(unknown, dag))
    return _build(
        dag,
        output,
        lambda observers: (
            dag.build_partially(targets, args.force, observers)
            if targets
            else dag.build(args.force, observers)
        ),
    )


def cmd_task(args: argparse.Namespace, output: Output) -> int:
    dag = _load(args, output)
    if args.name not in dag:
        raise UsageError(_unknown_task([args.name], dag))
    task = dag[args.name]
    missing = [
        f"{name} ({file})"
        for name, upstream in task.upstream.items()
        for file in upstream.files
        if not file.exists()
    ]
    if missing:
        raise UsageError(
            f"task {args.name!r} needs upstream products that do not exist yet: "
            f"{', '.join(missing)}; run 'nbpipe build --partially {args.name}' to build them too"
        )
    return _build(dag, output, lambda observers: dag.build_task(task.name, args.force, observers))


def cmd_status(args: argparse.Namespace, output: Output) -> int:
    dag = _load(args, output)
    output.status(dag, dag.status())
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, output: Output) -> int:
    if args.output and os.path.splitext(args.output)[1].lower() not in (".md", ".html", ".mmd"):
        raise UsageError(f"-o {args.output}: the file must end in .md, .html or .mmd")
    dag = _load(args, output)
    diagram = dag.plot()
    if args.output:
        path = diagram.write(args.output)
        print(f"Wrote {path}", file=sys.stderr)
    else:
        print(diagram.source)
    return EXIT_OK


# -- loading --------------------------------------------------------------------------------------
def _load(args: argparse.Namespace, output: Output) -> DAG:
    """The DAG of the entry point (a spec, a folder with one, or a dotted path to a factory)."""
    env = parse_env(args.env)
    entry = args.entry_point or os.environ.get("NBPIPE_ENTRY_POINT")
    if entry and _is_dotted_factory(entry):
        output.header(entry)
        if env:
            raise UsageError("--env applies to pipeline.yaml entry points only")
        return _load_factory(entry)
    from nbpipe.spec import DAGSpec, find_entry_point

    if entry:
        path = entry if not os.path.isdir(entry) else os.path.join(entry, "pipeline.yaml")
    else:
        path = str(find_entry_point())
    output.header(os.path.abspath(path))
    spec = DAGSpec(path, env=env)
    output.warnings(spec.warnings)
    return spec.to_dag()


def _is_dotted_factory(entry: str) -> bool:
    return (
        not os.path.exists(entry)
        and not entry.endswith((".yaml", ".yml"))
        and "/" not in entry
        and "." in entry
        and all(part.isidentifier() for part in entry.split("."))
    )


def _load_factory(entry: str) -> DAG:
    from nbpipe.dag import DAG
    from nbpipe.spec.dotted import ensure_on_path, import_dotted

    ensure_on_path(os.getcwd())
    factory = import_dotted(entry, file=None, line=None, key="entry point", what="function")
    dag = factory() if callable(factory) and not isinstance(factory, DAG) else factory
    if not isinstance(dag, DAG):
        raise UsageError(f"entry point {entry!r} returned {type(dag).__name__}, not a DAG")
    return dag


def _unknown_task(names: list[str], dag: DAG) -> str:
    from nbpipe.spec.errors import did_you_mean

    tasks = list(dag)
    unknown = "; ".join(f"no task named {name!r}{did_you_mean(name, tasks)}" for name in names)
    return f"{unknown}; tasks: {', '.join(tasks)}"


# -- building -------------------------------------------------------------------------------------
def _build(dag: DAG, output: Output, run) -> int:
    from nbpipe.exceptions import DAGBuildError
    from nbpipe.report import ReportCollector

    dag.executor.print_progress = False  # the CLI shows its own progress
    collector = ReportCollector()  # so the report exists even after an interrupt
    failures = FailureDetails()
    output.report_collector = collector
    try:
        report = run([collector, failures, *output.observers()])
        code = EXIT_OK
    except DAGBuildError as error:
        report = error.report or collector.report
        output.failed(error.failures, failures.details)
        code = EXIT_TASK_FAILED
    output.finished(report, code)
    return code


class FailureDetails:
    """Observer keeping the structured details of each failed task (cell, line, partial copy)."""

    def __init__(self):
        self.details: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Event) -> None:
        if event.kind.value == "task_failed":
            self.details[event.task] = event.details.get("details") or {}


# -- output ---------------------------------------------------------------------------------------
class Output:
    """How a command reports: for people (HumanOutput) or for programs (JsonOutput)."""

    report_collector = None

    def header(self, entry_point: str | None) -> None:
        pass

    def warnings(self, warnings: list[str]) -> None:
        """Spec warnings; they are also logged (to stderr) by the loader."""

    def observers(self) -> list:
        return []

    def failed(self, failures: dict[str, str], details: dict[str, dict[str, Any]]) -> None:
        pass

    def finished(self, report, code: int) -> None:
        pass

    def status(self, dag: DAG, status) -> None:
        raise NotImplementedError

    def interrupted(self, signum: int) -> int:
        raise NotImplementedError

    def error(self, error: BaseException) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HumanOutput(Output):
    def __init__(self):
        self._failures: tuple[dict, dict] = ({}, {})

    def observers(self) -> list:
        if sys.stderr.isatty():
            _setup_logging(level="WARNING")
            return [ProgressBar()]
        _setup_logging(level="INFO")
        return []

    def failed(self, failures, details) -> None:
        for name, text in failures.items():
            print(f"\n--- task {name!r} failed ---\n{text.rstrip()}", file=sys.stderr)
        self._failures = (failures, details)

    def finished(self, report, code: int) -> None:
        print(_with_short_paths(report))
        for name, text in self._failures[0].items():
            print(_failure_summary(name, text, self._failures[1].get(name, {})), file=sys.stderr)

    def status(self, dag: DAG, status) -> None:
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
        return 128 + signum

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        print(f"error: {message}", file=sys.stderr)
        return code


class _JsonStdout(Output):
    """JSON on the real stdout. File descriptor 1 is pointed at stderr meanwhile, so nothing else
    (what tasks or the user's imported code print, worker or kernel output) can slip into it.
    A reader that went away (a closed pipe: the program reading the JSON died) ends the writing,
    never the command: a build then still stops its kernels and workers cleanly."""

    def __init__(self):
        import json

        from nbpipe.events import EVENT_SCHEMA_VERSION

        self._json = json
        self.version = EVENT_SCHEMA_VERSION
        sys.stdout.flush()
        self._saved = os.dup(1)
        self._stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        self._reader_gone = False

    def write_json(self, data: Any) -> None:
        if self._reader_gone:
            return
        try:
            self._stream.write(self._json.dumps(data, default=str) + "\n")
            self._stream.flush()
        except OSError:  # BrokenPipeError, mostly
            self._reader_gone = True

    def close(self) -> None:
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
        _setup_logging(level="INFO")

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

    def observers(self) -> list:
        return [self._event]

    def _event(self, event: Event) -> None:
        self.write_json({"v": self.version, **event.to_dict()})

    def finished(self, report, code: int) -> None:
        self._summary(
            report.outcome.value if report.outcome else None,
            code,
            report=report.to_dict(),
            stop_reason=report.stop_reason,
        )

    def _summary(self, outcome: str | None, code: int, **fields: Any) -> None:
        self.header(None)
        fields.setdefault("report", None)
        fields.setdefault("stop_reason", None)
        fields.setdefault("error", None)
        self._line("summary", outcome=outcome, exit_code=code, **fields)

    def interrupted(self, signum: int) -> int:
        code = 128 + signum
        report = self.report_collector.report if self.report_collector else None
        self._summary(
            "interrupted",
            code,
            report=report.to_dict() if report is not None else None,
            signal=signal.Signals(signum).name,
        )
        _say(f"nbpipe: interrupted ({signal.Signals(signum).name})")
        return code

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        _say(f"error: {message}")
        self._summary("error", code, error=_error_dict(error, message))
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

    def status(self, dag: DAG, status) -> None:
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
        _say(f"nbpipe: interrupted ({name})")
        self._document(error={"type": "Interrupted", "message": f"interrupted ({name})"})
        return 128 + signum

    def error(self, error: BaseException) -> int:
        message, code = describe_error(error)
        _say(f"error: {message}")
        self._document(error=_error_dict(error, message))
        return code


def _task_status(task, row) -> dict[str, Any]:
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
        "products": [os.path.abspath(path) for path in row.products],
        "state": row.state,
        "reasons": row.reasons,
        "last_built": row.last_built,
        "last_status": row.last_status,
    }


def _dotted_name(fn: Any) -> str | None:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}.{name}" if module and name else name


def _say(text: str) -> None:
    """A message on stderr, which may be a pipe nobody reads any more."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def describe_error(error: BaseException) -> tuple[str, int]:
    """An exception as a message a user can act on, and the exit code."""
    from nbpipe.exceptions import DAGRenderError, NbpipeError

    if isinstance(error, UsageError):
        return str(error), EXIT_USAGE
    if isinstance(error, DAGRenderError):
        lines = "\n".join(f"  {task}: {message}" for task, message in error.problems)
        return (
            f"the pipeline cannot be built, {len(error.problems)} problem(s):\n{lines}",
            EXIT_USAGE,
        )
    if isinstance(error, NbpipeError):
        return str(error), EXIT_USAGE
    import traceback

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"unexpected {type(error).__name__}: {error}\n{text}", EXIT_USAGE


def _error_dict(error: BaseException, message: str) -> dict[str, Any]:
    from nbpipe.exceptions import DAGRenderError

    if hasattr(error, "to_dict"):
        return error.to_dict()
    data: dict[str, Any] = {"type": type(error).__name__, "message": message}
    if isinstance(error, DAGRenderError):
        data["problems"] = [{"task": task, "message": text} for task, text in error.problems]
    return data


def _failure_summary(name: str, text: str, details: dict[str, Any]) -> str:
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


# -- presentation helpers -------------------------------------------------------------------------
def _short(path: str) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("..") else path


def _with_short_paths(report):
    import copy

    shown = copy.deepcopy(report)
    for row in shown:
        row.products = [_short(path) for path in row.products]
    return shown


def _with_short_paths_status(status):
    import dataclasses

    from nbpipe.status import StatusReport

    return StatusReport(
        [dataclasses.replace(row, products=[_short(p) for p in row.products]) for row in status]
    )


class _Formatter:
    def __init__(self):
        import logging

        self._plain = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")

    def format(self, record) -> str:
        import logging

        if record.levelno >= logging.WARNING and record.name == "nbpipe.spec":
            return f"warning: {record.getMessage()}"
        return self._plain.format(record)


def _setup_logging(level: str) -> None:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
