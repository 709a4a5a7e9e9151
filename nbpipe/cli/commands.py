"""The commands: ``build``, ``task``, ``status`` and ``plot``, and loading the pipeline they act on.

A handler takes the parsed arguments and an :class:`~nbpipe.cli.output.Output`, returns the exit
code and raises for everything else (``main`` turns exceptions into messages). The spec loader and
the engine are imported here, inside the handlers, never when the module is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from nbpipe.cli.errors import EXIT_OK, EXIT_TASK_FAILED, UsageError
from nbpipe.cli.parser import parse_env
from nbpipe.cli.run import cmd_run

if TYPE_CHECKING:
    from nbpipe.cli.output import Output
    from nbpipe.engine.dag import DAG
    from nbpipe.engine.events import Observer
    from nbpipe.engine.report import BuildReport


def cmd_build(args: argparse.Namespace, output: Output) -> int:
    """Builds the pipeline. A kernel template starts first (``forking.start_template_ahead``):
    it imports ipykernel while the pipeline loads, and serves the build if its notebooks' kernels
    are forked in worker processes; else it is stopped as soon as that is known."""
    from nbpipe.notebooks.forking import drop_template_ahead, start_template_ahead

    start_template_ahead()
    try:
        return _build_command(args, output)
    finally:
        drop_template_ahead()


def _build_command(args: argparse.Namespace, output: Output) -> int:
    dag = load_dag(args, output)
    if getattr(args, "executor", None) == "dask" or getattr(args, "address", None):
        from nbpipe.executors import Dask

        dag.executor = Dask(address=args.address, n_workers=args.processes)
    elif getattr(args, "executor", None) == "serial":
        from nbpipe.executors import Serial

        dag.executor = Serial()
    elif args.processes or getattr(args, "executor", None) == "parallel":
        from nbpipe.executors import Parallel

        previous = dag.executor
        dag.executor = Parallel(
            processes=args.processes, start_method=getattr(previous, "start_method", None)
        )
    if not _forks_kernels_in_workers(dag):
        from nbpipe.notebooks.forking import drop_template_ahead

        drop_template_ahead()
    targets = _targets(args.partially or [], dag)
    if args.skip_upstream and not targets:
        from nbpipe.cli.errors import say

        say("warning: --skip-upstream applies with --partially only; building everything")
    return _build(
        dag,
        output,
        lambda observers: (
            dag.build_partially(
                targets,
                force=args.force,
                skip_upstream=args.skip_upstream,
                observers=observers,
            )
            if targets
            else dag.build(force=args.force, observers=observers)
        ),
    )


def _forks_kernels_in_workers(dag) -> bool:
    """Whether the build will fork notebook kernels in worker processes (a shared template)."""
    from nbpipe.executors import Parallel
    from nbpipe.tasks.notebook import NotebookRunner

    return isinstance(dag.executor, Parallel) and any(
        isinstance(task, NotebookRunner) and task.kernel_key()[3] is not None
        for task in dag.values()
    )


def _targets(names: list[str], dag: DAG) -> list[str]:
    """The tasks ``--partially`` names: names, or patterns such as ``fit-*`` (each task once).
    A name that is no task, or a pattern that matches none, is a usage error."""
    if not names:
        return []
    unknown = [
        name
        for name in dict.fromkeys(names)
        if name not in dag and not any(char in name for char in "*?[")
    ]
    if unknown:
        raise UsageError(_unknown_task(unknown, dag))
    try:
        return dag.match_tasks(names)
    except KeyError as error:
        raise UsageError(f"{error.args[0]}") from None


def cmd_task(args: argparse.Namespace, output: Output) -> int:
    dag = load_dag(args, output)
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
    dag = load_dag(args, output)
    output.status(dag, dag.status())
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, output: Output) -> int:
    """Writes ``pipeline.html`` (``pipeline.NAME.html`` for ``pipeline.NAME.yaml``) in the
    working directory, as Ploomber's ``plot`` does; ``-o FILE`` another file, ``-o -`` prints
    the Mermaid source."""
    target = args.output
    if args.backend == "pygraphviz":
        raise UsageError(
            "--backend pygraphviz (a PNG) is not supported: nbpipe draws with Mermaid "
            "(pipeline.html renders with no network)"
        )
    if target not in (None, "-") and os.path.splitext(target)[1].lower() not in (
        ".md",
        ".html",
        ".mmd",
    ):
        raise UsageError(f"-o {target}: the file must end in .html, .md or .mmd (or be -)")
    dag = load_dag(args, output)
    diagram = dag.plot(include_products=args.include_products)
    if target == "-":
        print(diagram.source)
        return EXIT_OK
    path = diagram.write(target or _default_plot_name(args))
    print(f"Plot saved at: {path}", file=sys.stderr)
    return EXIT_OK


def _default_plot_name(args: argparse.Namespace) -> str:
    """``pipeline.html``, or ``pipeline.NAME.html`` for an entry point ``pipeline.NAME.yaml``."""
    entry = args.entry_point or os.environ.get("NBPIPE_ENTRY_POINT") or ""
    parts = os.path.basename(entry).split(".")
    if len(parts) == 3 and parts[0] == "pipeline" and parts[2] in ("yaml", "yml"):
        return f"pipeline.{parts[1]}.html"
    return "pipeline.html"


#: The handler of each command, by the name ``args.command`` gives it.
COMMANDS: dict[str, Callable[[argparse.Namespace, Output], int]] = {
    "build": cmd_build,
    "task": cmd_task,
    "status": cmd_status,
    "plot": cmd_plot,
    "run": cmd_run,
}


# -- loading --------------------------------------------------------------------------------------
def load_dag(args: argparse.Namespace, output: Output) -> DAG:
    """The DAG of the entry point (a spec, a folder with one, or a dotted path to a factory)."""
    env = parse_env(args.env)
    extra = getattr(args, "extra", None) or []
    entry = args.entry_point or os.environ.get("NBPIPE_ENTRY_POINT")
    if entry and _is_dotted_factory(entry):
        output.header(entry)
        return _load_factory(entry, env, extra)
    if extra:
        raise UsageError(
            f"unrecognized arguments: {' '.join(extra)} (only a function entry point, "
            "-e module.function, takes arguments of its own)"
        )
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


def _load_factory(entry: str, env: dict[str, str], extra: list[str]) -> DAG:
    """The DAG a factory returns. As in Ploomber, the factory's parameters are command-line
    arguments (``--name VALUE`` for those with a default, positional for the others), and a
    factory decorated with ``nbpipe.env.with_env`` takes ``--env KEY=VALUE`` (or
    ``--env--KEY VALUE``) to replace its env values."""
    from nbpipe.engine.dag import DAG
    from nbpipe.spec.dotted import ensure_on_path, import_dotted

    ensure_on_path(os.getcwd())
    factory = import_dotted(entry, file=None, line=None, key="entry point", what="function")
    if isinstance(factory, DAG) or not callable(factory):
        if env or extra:
            raise UsageError(f"entry point {entry!r} is not a function: it takes no arguments")
        dag = factory
    else:
        kwargs = _factory_arguments(factory, entry, extra)
        if env:
            if not hasattr(factory, "_env_source"):
                raise UsageError(
                    f"--env applies to pipeline.yaml entry points and to functions decorated "
                    f"with @with_env (nbpipe.env); {entry} is not"
                )
            kwargs.update({f"env__{key.replace('.', '__')}": value for key, value in env.items()})
        dag = factory(**kwargs)
    if not isinstance(dag, DAG):
        raise UsageError(f"entry point {entry!r} returned {type(dag).__name__}, not a DAG")
    return dag


class _FactoryParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def _factory_arguments(factory: Callable, entry: str, extra: list[str]) -> dict[str, object]:
    """The factory's keyword arguments from ``extra``, parsed by its signature (annotations
    int, float and str convert; a bool parameter with a default is a flag)."""
    import inspect

    parser = _FactoryParser(prog=f"-e {entry}", add_help=False)
    names = []
    for name, parameter in inspect.signature(factory).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        names.append(name)
        annotation = parameter.annotation
        kind = annotation if annotation in (int, float, str) else None
        if parameter.default is parameter.empty:
            parser.add_argument(name, type=kind)
        elif annotation is bool or isinstance(parameter.default, bool):
            parser.add_argument(
                f"--{name}", action="store_false" if parameter.default else "store_true"
            )
        else:
            parser.add_argument(f"--{name}", type=kind, default=parameter.default)
    parsed = parser.parse_args(extra)
    return {name: getattr(parsed, name) for name in names}


def _unknown_task(names: list[str], dag: DAG) -> str:
    from nbpipe.spec.errors import did_you_mean

    tasks = list(dag)
    unknown = "; ".join(f"no task named {name!r}{did_you_mean(name, tasks)}" for name in names)
    return f"{unknown}; tasks: {', '.join(tasks)}"


# -- building -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _opened(executor):
    """An executor on a cluster (Dask) is opened before the build, so that its dashboard link is
    printed and recorded in ``build_started``; other executors need nothing."""
    if not hasattr(executor, "__enter__"):
        yield
        return
    from nbpipe.cli.errors import say

    with executor:
        link = getattr(executor, "dashboard_link", None)
        if link:
            say(f"Dask dashboard: {link}")
        yield


def _build(dag: DAG, output: Output, run: Callable[[Iterable[Observer]], BuildReport]) -> int:
    """Run one of the DAG's build methods (``run`` calls it with the observers) and report it:
    exit code 0 when it built, 1 when a task failed."""
    from nbpipe.engine.report import BuildReport
    from nbpipe.engine.state import BuildState
    from nbpipe.exceptions import DAGBuildError

    dag.executor.print_progress = False  # the CLI shows its own progress
    state = BuildState()  # the CLI's view of the build: a report exists even after an interrupt
    output.build_state = state
    try:
        with _opened(dag.executor):
            run([state.apply, *output.observers()])
        code = EXIT_OK
    except DAGBuildError as error:
        output.failed(error.failures)
        code = EXIT_TASK_FAILED
    output.finished(BuildReport(state), code)
    return code
