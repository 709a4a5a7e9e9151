"""The tasks of ``nbpipe run`` (``nbpipe.cli.run``): NotebookRunners that run as papermill's command
does.

A :class:`PapermillRun` is a NotebookRunner whose notebook gets exactly the parameters given
(papermill injects no ``product`` or ``upstream``), which needs no ``parameters`` cell (papermill
then injects the parameters at the top), and which writes no build record beside its outputs.
Its job (:class:`PapermillJob`) runs the NotebookRunner's job (papermill in a worker, or inline)
and then records INPUT and OUTPUT in the executed notebook's ``papermill`` metadata as papermill
does, instead of the paths the engine ran with.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nbpipe.cli.errors import UsageError
from nbpipe.engine.products import Product, files_of
from nbpipe.exceptions import NotebookExecutionError
from nbpipe.notebooks.execute import NotebookJob
from nbpipe.notebooks.source import NotebookSource
from nbpipe.tasks import NotebookRunner

if TYPE_CHECKING:
    from nbpipe.cli.run import Run
    from nbpipe.engine.dag import DAG

DAG_NAME = "nbpipe run"


def make_dag(runs: list[Run], args: argparse.Namespace, batch: bool) -> DAG:
    """A DAG of one PapermillRun per run, with the executor that runs them soonest."""
    from nbpipe.engine.dag import DAG

    dag = DAG(name=DAG_NAME)
    for run in runs:
        if not os.path.isfile(run.input):
            raise UsageError(f"input notebook {run.input} does not exist")
        PapermillRun(run, args, dag)
    _check_parameter_names(dag)
    dag.executor = _executor(dag, args, batch)
    return dag


def _executor(dag: DAG, args: argparse.Namespace, batch: bool) -> Any:
    """A batch runs in worker processes. A single run goes inline when its kernel is forked from
    a kernel template (which starts while this process imports papermill); otherwise in one
    worker, which starts the kernel while it imports papermill (benchmarks/run_vs_papermill.py
    measures both)."""
    from nbpipe.executors import Parallel, Serial

    if len(dag) == 1 and not batch:
        key = next(iter(dag.values())).kernel_key()
        forked = len(key) > 3 and key[3] is not None  # (name, cwd, arguments, template)
        return Serial() if forked else Parallel(processes=1)
    return Parallel(processes=min(args.processes or os.cpu_count() or 1, len(dag)))


def _check_parameter_names(dag: DAG) -> None:
    """A Python notebook's parameters must be Python names (papermill would inject a cell that
    does not compile); other languages have rules of their own."""
    import keyword

    from nbpipe.notebooks.source import kernel_language

    for task in dag.values():
        language = task.papermill_params.get("language") or kernel_language(task.kernel_name)
        if language.lower() != "python":
            continue
        bad = [
            name
            for name in task.run.parameters
            if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name))
        ]
        if bad:
            raise UsageError(
                f"parameter name {bad[0]!r} is not a Python name, and {task.run.input} runs in "
                f"a Python kernel ({task.kernel_name})"
            )


def papermill_params(args: argparse.Namespace) -> dict[str, Any]:
    """papermill.execute_notebook's options for the command line's."""
    params: dict[str, Any] = {
        "cwd": os.path.abspath(args.cwd or os.getcwd()),  # papermill's default: here
        "start_timeout": args.start_timeout,
        "report_mode": args.report_mode,
        "prepare_only": args.prepare_only,
        "log_output": args.log_output,
    }
    if args.execution_timeout is not None:
        params["execution_timeout"] = args.execution_timeout
    if args.engine:
        params["engine_name"] = args.engine
    if args.language:
        params["language"] = args.language
    return params


class _AnyParametersCell(NotebookSource):
    """papermill runs a notebook without a ``parameters`` cell: it injects the parameters at the
    top (and says so)."""

    def has_parameters_cell(self) -> bool:
        return True


class PapermillRun(NotebookRunner):
    """One notebook of ``nbpipe run``; see the module docstring."""

    def __init__(self, run: Run, args: argparse.Namespace, dag: DAG):
        outputs = run.outputs
        single = len(outputs) == 1
        product: Any = outputs[0] if single else {f"output{i}": o for i, o in enumerate(outputs)}
        self.run = run
        self.args = args
        super().__init__(
            run.input,
            product,
            dag,
            name=run.name,
            nb_product_key="nb" if single else list(product),
            kernelspec_name=args.kernel,
            papermill_params=papermill_params(args),
        )

    @property
    def notebook(self) -> NotebookSource:
        source = super().notebook
        fields = {field.name: getattr(source, field.name) for field in dataclasses.fields(source)}
        return _AnyParametersCell(**fields)

    def save_metadata(self) -> None:
        """No build record: every ``nbpipe run`` runs, and papermill leaves nothing beside its
        output."""

    def make_job(self, staged: Product, more_to_come: bool = False) -> PapermillJob:
        job = super().make_job(staged, more_to_come)
        job.parameters = dict(self.run.parameters)  # no product, no upstream
        notebooks = [
            (staged_file.absolute(), shown)
            for staged_file, shown in zip(files_of(staged), self.run.outputs, strict=True)
            if staged_file.suffix == ".ipynb"
        ]
        return PapermillJob(
            task=self.name,
            job=job,
            input_path=self.run.input,
            notebooks=notebooks,
            output_path=self.run.outputs[0],
            stdout_file=self.run.stdout_file,
            stderr_file=self.run.stderr_file,
            log_level=self.args.log_level,
            log_handler=self.args.log_output and type(job) is NotebookJob,
        )


@dataclasses.dataclass
class PapermillJob:
    """The NotebookRunner's job, with papermill's command-line behaviour around it."""

    task: str
    job: Any  # the NotebookRunner's job
    input_path: str  # INPUT as given (placeholders filled): papermill records it
    notebooks: list[tuple[str, str]]  # (staged .ipynb, OUTPUT as given) per notebook written
    output_path: str  # the OUTPUT a failed notebook's metadata names
    stdout_file: str | None = None
    stderr_file: str | None = None
    log_level: str | None = None
    log_handler: bool = False  # show papermill's log (--log-output) on stderr ourselves

    def run(self) -> None:
        with contextlib.ExitStack() as stack:
            for option, path in (
                ("stdout_file", self.stdout_file),
                ("stderr_file", self.stderr_file),
            ):
                if path:
                    file = stack.enter_context(open(path, "w", encoding="utf-8"))
                    self.job.papermill_params[option] = file
            stack.enter_context(_papermill_logging(self.log_level, self.log_handler))
            try:
                self.job.run()
            except NotebookExecutionError as error:
                if error.partial_path and os.path.exists(error.partial_path):
                    record_paths(error.partial_path, self.input_path, self.output_path)
                raise
        for staged, shown in self.notebooks:
            record_paths(staged, self.input_path, shown)


def record_paths(path: str, input_path: str, output_path: str) -> None:
    """Sets the notebook's ``papermill`` metadata ``input_path``/``output_path`` to what the
    user gave (the engine ran from a notebook in memory to a staged file)."""
    import nbformat

    with open(path, encoding="utf-8") as file:
        notebook = nbformat.read(file, as_version=nbformat.NO_CONVERT)
    metadata = notebook.metadata.setdefault("papermill", {})
    metadata["input_path"] = input_path
    metadata["output_path"] = output_path
    text = nbformat.writes(notebook)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


@contextlib.contextmanager
def _papermill_logging(level: str | None, handler: bool) -> Iterator[None]:
    """``--log-level`` for papermill's logger; with ``handler``, its messages (the notebook's
    output, under ``--log-output``) on stderr."""
    logger = logging.getLogger("papermill")
    previous = logger.level, logger.propagate
    added = None
    if handler:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(added)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    if level:
        logger.setLevel(level)
    try:
        yield
    finally:
        if added is not None:
            logger.removeHandler(added)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]
