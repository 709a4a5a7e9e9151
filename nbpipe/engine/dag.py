"""The DAG: a named collection of tasks, and the entry point for rendering and building.

``render`` checks everything that can be checked before anything runs (cycles, sources, kernels,
product formats, hook signatures, products claimed twice) and reports all problems at once.
``build`` plans which tasks are outdated, hands the plan to the scheduler (``nbpipe.engine.scheduler``)
and returns the report, which like the task statuses is derived from the build's event stream.
"""

from __future__ import annotations

import fnmatch
import graphlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from nbpipe.engine.events import (
    BuildFinished,
    BuildOutcome,
    BuildStarted,
    EventStream,
    Observer,
    TaskFailure,
    TaskStatus,
)
from nbpipe.engine.hooks import (
    call_with_available,
    describe,
    describe_exception,
    missing_arguments,
)
from nbpipe.engine.plot import Mermaid, mermaid
from nbpipe.engine.progress import ProgressObserver
from nbpipe.engine.report import BuildReport
from nbpipe.engine.scheduler import Build
from nbpipe.engine.state import BuildState
from nbpipe.engine.status import StatusReport, StatusRow
from nbpipe.exceptions import (
    DAGBuildEarlyStop,
    DAGBuildError,
    DAGCycle,
    DAGRenderError,
    DuplicateTaskNameError,
    PlotException,
    ValidationError,
)
from nbpipe.executors.base import Executor
from nbpipe.executors.serial import UncaughtTaskError
from nbpipe.executors.worker import describe_error
from nbpipe.tasks.base import Task

logger = logging.getLogger("nbpipe")

TASK_HOOK_ARGUMENTS = {"task", "product", "params", "upstream", "dag", "client"}
DAG_HOOK_ARGUMENTS = {
    "on_render": {"dag"},
    "on_finish": {"dag", "report"},
    "on_failure": {"dag", "traceback", "report"},
}


class DAG:
    """A pipeline of tasks.

    ``executor`` is ``'serial'``, ``'parallel'`` or an executor instance
    (``nbpipe.executors.Serial()``, ``nbpipe.executors.Parallel(processes=2)``).
    DAG hooks ``on_render(dag)``, ``on_finish(dag, report)`` and ``on_failure(dag, traceback)``
    are plain attributes; a hook takes only the arguments it names.

    Python notebooks get their kernels by fork from a template process that has imported
    ipykernel and ``preload`` (module names, e.g. ``["pandas", "numpy"]``), so a notebook neither
    starts an interpreter nor imports those again; ``fork_kernels=False`` (or the environment
    variable ``NBPIPE_FORK_KERNELS=0``) starts every kernel as a new process instead. See
    ``nbpipe.notebooks.forking``.
    """

    def __init__(
        self,
        name: str | None = None,
        executor: str | Executor = "serial",
        *,
        preload: Iterable[str] = (),
        fork_kernels: bool = True,
    ):
        self.name = name or "No name"
        self.executor = executor
        modules = (preload,) if isinstance(preload, str) else tuple(preload)
        if isinstance(preload, str) or not all(isinstance(m, str) and m for m in modules):
            raise ValueError(f"preload must be a list of module names, got {preload!r}")
        if not isinstance(fork_kernels, bool):
            raise ValueError(f"fork_kernels must be True or False, got {fork_kernels!r}")
        self.preload = modules
        self.fork_kernels = fork_kernels
        self._tasks: dict[str, Task] = {}
        self._build_state = BuildState()  # the current (or last) build, from its events
        self.on_render = None
        self.on_finish = None
        self.on_failure = None

    # -- executor -------------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        return self._executor

    @executor.setter
    def executor(self, value: str | Executor) -> None:
        from nbpipe.executors import EXECUTOR_NAMES, executor_named

        if isinstance(value, Executor):
            self._executor = value
        elif value in EXECUTOR_NAMES:
            self._executor = executor_named(value)
        else:
            names = ", ".join(repr(name) for name in EXECUTOR_NAMES)
            raise ValueError(f"executor must be {names} or an Executor instance, got {value!r}")

    # -- the collection of tasks ----------------------------------------------------------------
    def _add(self, task: Task) -> None:
        if task.name in self._tasks:
            raise DuplicateTaskNameError(
                f"DAG {self.name!r} already has a task named {task.name!r}; pass name= to tell them apart"
            )
        self._tasks[task.name] = task

    def __getitem__(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(
                f"No task named {name!r} in DAG {self.name!r}; tasks: {', '.join(self._tasks)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[str]:
        """Task names in topological order (every task after its upstream tasks)."""
        return (task.name for task in self._ordered())

    def keys(self) -> list[str]:
        return list(self)

    def values(self) -> list[Task]:
        return self._ordered()

    def __repr__(self) -> str:
        return f"DAG({self.name!r}, {len(self)} tasks, executor={self.executor!r})"

    def _ordered(self, tasks: Iterable[Task] | None = None) -> list[Task]:
        """Topological order, layer by layer; within a layer, the order tasks were added."""
        tasks = list(self._tasks.values() if tasks is None else tasks)
        position = {name: i for i, name in enumerate(self._tasks)}
        sorter = graphlib.TopologicalSorter({task.name: list(task.upstream) for task in tasks})
        try:
            sorter.prepare()
        except graphlib.CycleError as error:
            cycle = " -> ".join(error.args[1])
            raise DAGCycle(f"DAG {self.name!r} has a cycle: {cycle}") from None
        order = []
        while sorter.is_active():
            layer = sorted(sorter.get_ready(), key=position.__getitem__)
            order += layer
            sorter.done(*layer)
        return [self._tasks[name] for name in order]

    def _with_upstream(self, names: Iterable[str]) -> list[Task]:
        """The tasks named and everything they need, in topological order."""
        seen: dict[str, Task] = {}
        stack = [self[name] for name in names]
        while stack:
            task = stack.pop()
            if task.name not in seen:
                seen[task.name] = task
                stack.extend(task.upstream.values())
        return self._ordered(seen.values())

    # -- render ---------------------------------------------------------------------------------
    def render(self) -> DAG:
        """Checks the DAG and runs the ``on_render`` hooks; raises DAGRenderError listing all
        problems. Sources are re-read, so edits since the last render count."""
        return self._render(self._ordered())

    def _render(self, order: list[Task]) -> DAG:
        """``render`` for the tasks of one build (``order``): a problem of a task the build
        does not run (``build_partially``, ``build_task``) does not keep it from running, as in
        Ploomber, which renders only the tasks a partial build keeps. Products claimed twice are
        checked across the whole DAG."""
        problems: list[tuple[str, str]] = []
        owners: dict[str, list[str]] = defaultdict(list)
        for task in order:
            task.refresh()
            problems += [(task.name, problem) for problem in task.problems()]
            problems += [(task.name, problem) for problem in task.product_problems()]
            problems += self._hook_problems(task)
        for task in self._ordered():
            for file in task.files:
                owners[os.path.realpath(file.path)].append(task.name)  # symlinks resolved
        problems += [
            (names[0], f"product {path} is also a product of {', '.join(names[1:])}")
            for path, names in owners.items()
            if len(names) > 1
        ]
        for kind, accepted in DAG_HOOK_ARGUMENTS.items():
            hook = getattr(self, kind)
            if hook and (missing := missing_arguments(hook, accepted)):
                problems.append(("(dag)", _hook_problem(kind, hook, missing, accepted)))
        if problems:
            raise DAGRenderError(problems)
        for task in order:
            if task.on_render:
                problems += _render_hook(task.name, task.on_render, task.hook_arguments())
        if self.on_render and not problems:
            problems += _render_hook("(dag)", self.on_render, {"dag": self})
        if problems:  # a hook raised: the task errored in render, as in Ploomber
            raise DAGRenderError(problems)
        return self

    @staticmethod
    def _hook_problems(task: Task) -> list[tuple[str, str]]:
        problems = []
        for kind in ("on_render", "on_finish", "on_failure"):
            hook = getattr(task, kind)
            if not hook:
                continue
            accepted = TASK_HOOK_ARGUMENTS | ({"traceback"} if kind == "on_failure" else set())
            if missing := missing_arguments(hook, accepted):
                problems.append((task.name, _hook_problem(kind, hook, missing, accepted)))
        return problems

    # -- planning -------------------------------------------------------------------------------
    def _plan(self, tasks: list[Task], force: bool) -> dict[str, list[str]]:
        """Which tasks must run, and why. A task whose upstream task runs runs too."""
        to_run: dict[str, list[str]] = {}
        for task in tasks:
            reasons = ["forced"] if force else task.outdated_reasons()
            if not reasons:
                running_upstream = [name for name in task.upstream if name in to_run]
                if running_upstream:
                    reasons = [f"upstream {running_upstream[0]!r} will run"]
            if reasons:
                to_run[task.name] = reasons
        return to_run

    def status(self) -> StatusReport:
        """Whether each task is up to date, and if not, why (without building anything)."""
        order = self._ordered()
        for task in order:
            task.refresh()
        problems = {
            name: problem
            for task in order
            for name, problem in [(task.name, task.problems())]
            if problem
        }
        to_run = self._plan([task for task in order if task.name not in problems], force=False)
        rows = []
        for task in order:
            last_built = task.last_built() if not problems.get(task.name) else None
            if task.name in problems:
                state, reasons = "error", problems[task.name]
            elif task.name in to_run:
                state, reasons = ("outdated" if last_built else "never built"), to_run[task.name]
            else:
                state, reasons = "up to date", []
            rows.append(
                StatusRow(task.name, state, reasons, last_built, [str(f) for f in task.files])
            )
        return StatusReport(rows)

    # -- build ----------------------------------------------------------------------------------
    def build(
        self,
        force: bool = False,
        show_progress: bool | None = None,
        observers: Iterable[Observer] = (),
    ) -> BuildReport:
        """Builds outdated tasks (all with ``force``) and returns the report.

        Raises DAGBuildError when a task failed (its downstream tasks are aborted, the rest is
        built). ``show_progress`` draws a progress bar on stdout (default: the executor's
        ``print_progress``). ``observers`` receive every build event (see ``nbpipe.engine.events``).
        """
        return self._build(self._ordered(), force, observers, show_progress)

    def build_partially(
        self,
        target: str | Iterable[str],
        force: bool = False,
        show_progress: bool | None = None,
        debug: str | None = None,
        skip_upstream: bool = False,
        observers: Iterable[Observer] = (),
    ) -> BuildReport:
        """Builds ``target`` and the tasks it needs, nothing else (Ploomber's arguments, in
        Ploomber's order).

        ``target`` is a task's name, a pattern (``'fit-*'``: every task whose name matches,
        with ``*``, ``?`` and ``[...]`` as in ``fnmatch``) or several of them; each task is
        built once, however many targets need it. With ``skip_upstream`` only the targets
        themselves are built (their upstream products must exist). ``debug`` must be None
        (Ploomber's debugging sessions are not supported). A name that is no task, or a
        pattern that matches none, is a KeyError before anything runs.
        """
        if debug is not None:
            raise ValidationError(
                f"debug={debug!r} is not supported by nbpipe; a failing notebook is kept as "
                "<product>.failed.ipynb, and Serial(catch_exceptions=False) raises a failing "
                "function's exception as it is, for a debugger"
            )
        targets = self.match_tasks([target] if isinstance(target, str) else list(target))
        if skip_upstream:
            chosen = [task for task in self._ordered() if task.name in targets]
            return self._build(chosen, force, observers, show_progress)
        return self._build(self._with_upstream(targets), force, observers, show_progress)

    def match_tasks(self, names: Iterable[str]) -> list[str]:
        """Task names for ``names``, each a task's name or a pattern (``*``, ``?``, ``[``
        as in ``fnmatch``), in the order given, each once. Raises KeyError for a name that is no
        task and a pattern that matches none."""
        names = list(names)
        if not names:
            raise ValueError("build_partially needs at least one task name")
        matched: dict[str, None] = {}
        unknown = []
        for name in names:
            if name in self._tasks:
                matched[name] = None
            elif any(char in name for char in "*?["):
                found = fnmatch.filter(list(self._tasks), name)
                matched.update(dict.fromkeys(found))
                if not found:
                    unknown.append(f"No task matches {name!r}")
            else:
                unknown.append(f"No task named {name!r}")
        if unknown:
            tasks = ", ".join(self._tasks)
            raise KeyError(f"{'; '.join(unknown)} in DAG {self.name!r}; tasks: {tasks}")
        return list(matched)

    def build_task(
        self, name: str, force: bool = False, observers: Iterable[Observer] = ()
    ) -> BuildReport:
        """Builds the one task ``name`` (if outdated), not its upstream tasks."""
        return self._build([self[name]], force, observers)

    def _build(
        self,
        tasks: list[Task],
        force: bool,
        observers: Iterable[Observer],
        show_progress: bool | None = None,
    ) -> BuildReport:
        if show_progress is None:
            show_progress = self.executor.print_progress
        state = BuildState()
        self._build_state = state
        report = BuildReport(state)
        stream = EventStream([state.apply, ProgressObserver(show_progress), *observers])
        try:
            self._render(tasks)
        except DAGBuildEarlyStop as stop:
            reason = str(stop) or "a render hook asked to stop"
            stream.emit(
                BuildStarted(
                    dag=self.name,
                    executor=repr(self.executor),
                    tasks=[t.name for t in tasks],
                    to_run=[],
                )
            )
            stream.emit(BuildFinished(outcome=BuildOutcome.STOPPED_EARLY, stop_reason=reason))
            return report
        to_run = self._plan(tasks, force)

        def finish_hook(outcome: BuildOutcome, failures: dict[str, TaskFailure]):
            return self._run_dag_hooks(outcome, failures, report)

        build = Build(tasks, to_run, stream, self.name, finish_hook)
        try:
            outcome = build.run(self.executor)
        except UncaughtTaskError as uncaught:  # Serial(catch_exceptions=False): as it is
            raise uncaught.error from None
        if outcome is BuildOutcome.FAILED:
            raise DAGBuildError(build.failures, report)
        return report

    def _run_dag_hooks(
        self, outcome: BuildOutcome, failures: dict[str, TaskFailure], report: BuildReport
    ) -> tuple[BuildOutcome, str | None]:
        """Runs ``on_finish`` or ``on_failure``; returns the (maybe changed) outcome and reason.
        The hooks see the report as it stands (every task settled) with this outcome."""
        report = BuildReport(report.state, pending=outcome)
        if outcome is BuildOutcome.FAILED:
            if self.on_failure:
                error = DAGBuildError(failures)
                traceback = BuildTraceback(build=f"{type(error).__module__}.DAGBuildError: {error}")
                try:
                    call_with_available(
                        self.on_failure, {"dag": self, "traceback": traceback, "report": report}
                    )
                except DAGBuildEarlyStop as stop:  # as in Ploomber: no error, the build just ends
                    return BuildOutcome.STOPPED_EARLY, str(
                        stop
                    ) or "the DAG's on_failure hook asked to stop"
                except Exception:
                    logger.exception("The DAG's on_failure hook failed")
            return outcome, None
        if self.on_finish:
            try:
                call_with_available(self.on_finish, {"dag": self, "report": report})
            except DAGBuildEarlyStop as stop:
                return BuildOutcome.STOPPED_EARLY, str(
                    stop
                ) or "the DAG's on_finish hook asked to stop"
            except Exception as error:
                failures["(dag on_finish)"] = describe_error("(dag on_finish)", error)
                return BuildOutcome.FAILED, None
        return outcome, None

    def task_status(self, name: str) -> TaskStatus:
        """``name``'s status in this DAG's current (or last) build: ``pending`` before any."""
        task = self._build_state.tasks.get(name)
        return task.status if task is not None else TaskStatus.PENDING

    # -- plot -----------------------------------------------------------------------------------
    def plot(
        self,
        output: str | Path | None = None,
        include_products: bool = False,
        backend: str | None = None,
    ) -> Mermaid:
        """The DAG as Mermaid; with ``output``, also written there (``.html``: a page that
        renders offline, ``.md``, ``.mmd``). Ploomber's arguments: ``output='embed'`` is the
        same as None (the returned diagram shows in Jupyter); ``include_products`` lists each
        task's products in its box; ``backend`` may be None, ``'mermaid'`` or ``'d3'`` (drawn
        with Mermaid too); ``'pygraphviz'`` (PNG) is not supported."""
        if backend not in (None, "mermaid", "d3"):
            raise PlotException(
                f"backend {backend!r} is not supported by nbpipe, which draws with Mermaid: "
                "use backend=None or 'mermaid' (an .html, .md or .mmd output)"
            )
        diagram = mermaid(self._ordered(), include_products=include_products)
        if output is not None and str(output) != "embed":
            suffix = Path(output).suffix.lower()
            if suffix not in (".html", ".md", ".mmd"):
                raise PlotException(
                    f"cannot plot to {str(output)!r}: nbpipe writes .html (a page that renders "
                    "offline), .md or .mmd, not an image"
                )
            diagram.write(output)
        return diagram


class BuildTraceback(dict):
    """What the DAG's ``on_failure`` hook gets as ``traceback``: Ploomber's dict, whose
    ``'build'`` entry is the build error's text (every failed task's error and traceback). Its
    ``str()`` is that text."""

    def __str__(self) -> str:
        return "\n\n".join(str(text) for text in self.values())


def _render_hook(owner: str, hook, arguments: dict) -> list[tuple[str, str]]:
    """Runs an ``on_render`` hook; what it raised as a render problem of ``owner`` (an early
    stop goes through: it ends the build cleanly)."""
    try:
        call_with_available(hook, arguments)
    except DAGBuildEarlyStop:
        raise
    except Exception as error:
        return [(owner, f"on_render hook {describe(hook)} raised {describe_exception(error)}")]
    return []


def _hook_problem(kind: str, hook, missing: list[str], accepted: set[str]) -> str:
    return (
        f"{kind} hook {describe(hook)} asks for {', '.join(missing)}; "
        f"hooks can take: {', '.join(sorted(accepted))}"
    )
