"""NotebookRunner: a task that executes a notebook (``.ipynb`` or a jupytext script).

The notebook runs in a fresh kernel through papermill, with ``product``, ``upstream`` and the
params injected after its cell tagged ``parameters``. The executed notebook is written to every
product named in ``nb_product_key``, converted by extension (``.ipynb``, ``.html``, ``.md``, ...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpipe.engine.products import File, MultiProduct, Product, files_of, map_files
from nbpipe.exceptions import (
    MissingKernelError,
    TaskBuildError,
    TaskInitializationError,
    ValidationError,
)
from nbpipe.notebooks.convert import SUPPORTED, format_problem
from nbpipe.notebooks.convert import exporter_problem as exporter_requirements
from nbpipe.notebooks.execute import NotebookJob
from nbpipe.notebooks.forking import kernel_launch, say_how_kernels_start
from nbpipe.notebooks.kernels import KernelKey, WarmUp
from nbpipe.notebooks.source import (
    NotebookSource,
    history_in_memory,
    kernel_language,
    quiet_kernel_arguments,
)
from nbpipe.tasks.base import Task
from nbpipe.tasks.source_checks import (
    own_source_problems,
    reserved_params_problems,
    source_problems,
)

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

STATIC_ANALYSIS = ("disabled", "regular", "strict", True, False)


class NotebookPath(type(Path())):  # type: ignore[misc]
    """A notebook task's source: its path (a ``pathlib.Path``), with Ploomber's source API:
    ``task.source.loc`` is the path."""

    @property
    def loc(self) -> Path:
        return self


class NotebookText(str):
    """A notebook task's source given as text (``ext_in``); like Ploomber's, its ``loc`` is
    None."""

    loc = None

    @property
    def primitive(self) -> str:
        return str(self)


class NotebookRunner(Task):
    """Executes the notebook at ``source``; see the module docstring.

    The arguments are Ploomber's, in Ploomber's order:

    - ``source``: the notebook's path (``str`` or ``Path``); or, with ``ext_in`` (``"py"``,
      ``"ipynb"``, ...), the notebook itself as text (then ``name`` is required, and it runs in
      the working directory).
    - ``executor``: ``"papermill"`` (the only one; ``"ploomber-engine"`` is not supported);
      ``executor_params``: more ``papermill_params`` (which they override, as in Ploomber).
    - ``papermill_params`` go to ``papermill.execute_notebook`` (e.g. ``execution_timeout``;
      ``log_output=True`` shows the notebook's output, its logging included, on stderr).
    - ``kernelspec_name`` picks the kernel (else the notebook's own kernelspec, else
      ``python3``); ``check_if_kernel_installed=False`` leaves that check to the build (the
      task then fails alone) instead of render.
    - ``nbconvert_exporter_name``: the nbconvert exporter for the executed notebook instead of
      the one the extension implies (``"webpdf"``); a dict by key when ``nb_product_key`` is
      a list. ``nbconvert_export_kwargs`` configure the exporters (``exclude_input=True``).
    - ``nb_product_key``: the product key(s) (an index for a list product) that receive the
      executed notebook.
    - ``static_analysis``: ``"disabled"``, ``"regular"`` or ``"strict"`` (or a bool):
      accepted; nbpipe does not run pyflakes on notebooks (docs/spec.md).
    - ``local_execution``: ``True`` runs the notebook in its own folder (nbpipe's default),
      ``False`` in the working directory at the time the task is made (Ploomber's default).
    - ``debug_mode``: only ``None`` (Ploomber's debugging sessions are not supported).
    """

    def __init__(
        self,
        source: str | os.PathLike,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "papermill",
        executor_params: Mapping[str, Any] | None = None,
        papermill_params: Mapping[str, Any] | None = None,
        kernelspec_name: str | None = None,
        nbconvert_exporter_name: str | Mapping[Any, str] | None = None,
        ext_in: str | None = None,
        nb_product_key: str | int | list = "nb",
        static_analysis: str | bool = "regular",
        nbconvert_export_kwargs: Mapping[str, Any] | None = None,
        local_execution: bool | None = None,
        check_if_kernel_installed: bool = True,
        debug_mode: str | None = None,
    ):
        self.ext_in = ext_in
        self._text: str | None = None
        if ext_in is not None:
            if not isinstance(source, str):
                raise ValidationError(
                    "ext_in must be None when the source is a path (pathlib.Path); pass the "
                    "notebook's text as a str to use ext_in"
                )
            if name is None:
                raise ValidationError(
                    "a notebook given as text (ext_in) needs a name: pass name='...'"
                )
            self._text = source
            self.source: NotebookPath | NotebookText = NotebookText(source)
        elif isinstance(source, str) and "\n" in source:
            raise ValidationError(
                "this str source looks like a notebook's text, not a path: pass ext_in "
                "(e.g. ext_in='py') to use it as text, or a path to the notebook"
            )
        else:
            self.source = NotebookPath(source)
        self._single_key = isinstance(nb_product_key, (str, int))
        self.nb_product_key = [nb_product_key] if self._single_key else list(nb_product_key)
        if executor != "papermill":
            raise ValidationError(
                f"executor {executor!r} is not supported by nbpipe: notebooks run with "
                "papermill (executor='papermill')"
            )
        self.executor = executor
        if static_analysis not in STATIC_ANALYSIS:
            raise ValidationError(
                f"static_analysis must be 'disabled', 'regular' or 'strict', not "
                f"{static_analysis!r}"
            )
        self.static_analysis = static_analysis
        if debug_mode is not None:
            raise ValidationError(
                f"debug_mode={debug_mode!r} is not supported by nbpipe: a failing notebook "
                "is kept as <product>.failed.ipynb, open it at the failing cell instead"
            )
        self.debug_mode = None
        self.kernelspec_name = kernelspec_name
        self.papermill_params = {**dict(papermill_params or {}), **dict(executor_params or {})}
        self.executor_params = self.papermill_params
        if local_execution and "cwd" in self.papermill_params:
            raise KeyError(
                'If local_execution is set to True, "cwd" should not appear in '
                "papermill_params, as such parameter will be set by the task itself"
            )
        self.local_execution = local_execution
        self._folder = (
            Path(os.getcwd())
            if self._text is not None or local_execution is False
            else Path(self.source).parent
        )
        self.check_if_kernel_installed = check_if_kernel_installed
        self.nbconvert_exporter_name = nbconvert_exporter_name
        self.nbconvert_export_kwargs = dict(nbconvert_export_kwargs or {})
        self._notebook: NotebookSource | None = None
        super().__init__(product, dag, name, params)
        self._check_exporter_names()

    def _check_exporter_names(self) -> None:
        """Ploomber's rules for ``nbconvert_exporter_name``: a str for one notebook product, a
        dict (keys among ``nb_product_key``) for several."""
        names = self.nbconvert_exporter_name
        if names is None:
            return
        if not self._single_key and isinstance(names, str):
            raise TaskInitializationError(
                "When specifying nb_product_key as a list, create a dictionary under "
                f"nbconvert_exporter_name with required keys in {self.nb_product_key!r}."
            )
        if self._single_key and isinstance(names, Mapping):
            raise TaskInitializationError(
                "Please specify a single nbconvert_exporter_name when generating a single "
                "notebook product. Example : 'nbconvert_exporter_name': '<exporter name>'"
            )
        if isinstance(names, Mapping):
            unknown = [key for key in names if key not in self.nb_product_key]
            if unknown:
                raise TaskInitializationError(
                    f"Invalid nbconvert exporter : {unknown[0]!r}. All exporter names in "
                    "nbconvert_exporter_name should be present in nb_product_key"
                )

    def _exporter_for(self, key: Any) -> str | None:
        names = self.nbconvert_exporter_name
        if names is None:
            return None
        return names if isinstance(names, str) else names.get(key)

    @property
    def worker_imports(self) -> tuple[str, ...]:  # type: ignore[override]
        """What a worker imports as it starts: jupytext only for a script source, nbconvert only
        for reports (an executed notebook is written by nbformat)."""
        scripts = () if self.notebook.format == "ipynb" else ("jupytext",)
        reports = [file for file in self.notebook_files() if file.suffix != ".ipynb"]
        return ("nbformat", "papermill", *scripts, *(("nbconvert",) if reports else ()))

    def _default_name(self) -> str:
        return Path(self.source).stem

    @property
    def source_path(self) -> str | None:
        return None if self._text is not None else str(self.source)

    @property
    def notebook(self) -> NotebookSource:
        """The source, read once per render (``refresh`` re-reads it)."""
        if self._notebook is None:
            if self._text is not None:
                self._notebook = NotebookSource.from_text(
                    self._text, self.ext_in or "", Path(f"<{self.name}>")
                )
            else:
                self._notebook = NotebookSource.read(self.source)
        return self._notebook

    @property
    def _shown_source(self) -> str:
        """The source as messages name it: its path, or ``<name>`` for a notebook given as text."""
        return f"<{self.name}>" if self._text is not None else str(self.source)

    def refresh(self) -> None:
        self._notebook = None

    def source_digest(self) -> str:
        return self.notebook.digest()

    @property
    def kernel_name(self) -> str:
        return self.kernelspec_name or self.notebook.kernel_name() or "python3"

    def notebook_files(self) -> list[File]:
        """The products that receive the executed notebook."""
        return [file for _key, file in self._notebook_outputs()]

    def _notebook_outputs(self) -> list[tuple[Any, File]]:
        """(key, File) for each product that receives the executed notebook."""
        if isinstance(self.product, MultiProduct):
            return [(key, self.product[key]) for key in self.nb_product_key if key in self.product]
        return [(self.nb_product_key[0], self.product)]

    def product_fingerprints(self) -> Any:
        """Executed notebooks and their reports count by their build record, not their file:
        opening one in JupyterLab (which may save it) must not make downstream tasks outdated.
        Data products count by their file, so editing or touching one does."""
        renditions = {file.absolute() for file in self.notebook_files()}

        def fingerprint(file: File) -> str | None:
            if file.absolute() in renditions:
                record = file.read_metadata()
                return f"built:{record.get('timestamp')}" if record else None
            return file.fingerprint()

        return map_files(self.product, fingerprint)

    def problems(self) -> list[str]:
        """Render-time checks. A product format whose program (xelatex, pandoc) is missing is
        not one: the task fails alone when it is built (``make_job``), so it does not keep the
        other tasks from building."""
        exists = self._text is not None or self.source.exists()
        notebook, problems = source_problems(
            "notebook", self.source, self._shown_source, exists, lambda: self.notebook
        )
        if notebook is None:
            return problems
        if self.check_if_kernel_installed:
            try:
                kernel_language(self.kernel_name)
            except MissingKernelError as error:
                problems.append(str(error))
        if isinstance(self.product, MultiProduct):
            unknown = [key for key in self.nb_product_key if key not in self.product]
            if unknown:
                problems.append(
                    f"nb_product_key {', '.join(map(repr, unknown))} not among the products "
                    f"({', '.join(map(str, self.product.keys()))})"
                )
        for key, file in self._notebook_outputs():
            exporter = self._exporter_for(key)
            if exporter is not None:  # a name nbconvert has, and what it needs here
                problem = exporter_problem(exporter) or exporter_requirements(exporter, file.suffix)
            elif file.suffix not in SUPPORTED:
                problem = format_problem(file.suffix)
            else:
                problem = None
            if problem:
                problems.append(f"product {file}: {problem}")
        source = None if self._text is not None else os.path.abspath(self.source)
        problems += own_source_problems("notebook", self.files, source)
        problems += reserved_params_problems(self.params)
        return problems

    def kernel_key(self) -> KernelKey:
        """What this notebook's kernel start depends on: a warm kernel must match it. The last
        field is the kernel template's preload modules when the kernel is forked, else None
        (``nbpipe.notebooks.forking.kernel_launch``)."""
        arguments = history_in_memory(
            self.kernel_name,
            self.papermill_params.get("extra_arguments", quiet_kernel_arguments(self.kernel_name)),
        )
        cwd = self.papermill_params.get("cwd", self._folder)
        template, _ = kernel_launch(self.kernel_name, self.dag)
        return (self.kernel_name, os.path.abspath(cwd), tuple(arguments), template)

    def worker_warm_up(self, ahead: bool = False) -> Callable[[], object]:
        """The build's warm-up (for its first notebook, whose kernel each worker starts as it
        starts when ``ahead``), which also says once how kernels start: forked from a template
        with the DAG's ``preload``, or as new processes, and why."""
        key = self.kernel_key()
        say_how_kernels_start(self.kernel_name, self.dag)
        return WarmUp(key, kernel_ahead=ahead)

    def injected_parameters(self, product: Product | None = None) -> dict[str, Any]:
        """What a run injects after the parameters cell: ``product`` (``product``'s absolute
        paths: a run passes its staged files; by default the task's own), the params, and
        ``upstream`` (each upstream task's absolute product paths)."""
        parameters: dict[str, Any] = {
            "product": map_files(self.product if product is None else product, File.absolute),
            **self.params,
        }
        if self.upstream:
            parameters["upstream"] = self.grouped_upstream(
                lambda upstream: map_files(upstream, File.absolute)
            )
        return parameters

    def injected_code(self) -> str:
        """The injected-parameters cell a build adds, with the task's real product paths:
        papermill's own rendering (``translate_parameters``, as ``execute_notebook`` calls it),
        so that a kernel given this code sees what the task's run sees. Front ends run it in an
        interactive kernel (JupyterLab's "Load task parameters"); nothing is written to the file."""
        from papermill.translators import translate_parameters

        return translate_parameters(
            self.kernel_name,
            kernel_language(self.kernel_name),
            self.injected_parameters(),
            "Parameters",
        )

    def make_job(self, staged: Product, more_to_come: bool = False) -> NotebookJob:
        """The job for this run. A product format whose program is not installed (a ``.pdf``
        needs xelatex) fails this task here, alone, at build time."""
        missing = [
            f"product {file}: {problem}"
            for key, file in self._notebook_outputs()
            if self._exporter_for(key) is None and (problem := format_problem(file.suffix))
        ]
        if missing:
            raise TaskBuildError("; ".join(missing))
        parameters = self.injected_parameters(staged)
        staged_files = dict(zip(map(File.absolute, self.files), files_of(staged), strict=True))
        outputs = [
            (staged_files[file.absolute()].absolute(), self._exporter_for(key) or file.suffix)
            for key, file in self._notebook_outputs()
        ]
        first = self.notebook_files()[0]
        job_class = LoggedNotebookJob if self.papermill_params.get("log_output") else NotebookJob
        return job_class(
            task=self.name,
            source=self._shown_source,
            source_text=self.notebook.text,
            source_format=self.notebook.format,
            parameters=parameters,
            kernel_name=self.kernel_name,
            language=kernel_language(self.kernel_name),
            kernel_key=self.kernel_key(),
            outputs=outputs,
            partial_path=str(first.path.parent.absolute() / f"{first.path.stem}.failed.ipynb"),
            shown_paths={temp.absolute(): real for real, temp in staged_files.items()},
            export_kwargs=self.nbconvert_export_kwargs,
            papermill_params={
                "extra_arguments": list(self.kernel_key()[2]),
                **self.papermill_params,
            },
            warm_next=more_to_come,
        )


def exporter_problem(name: str) -> str | None:
    """Why ``name`` is not an nbconvert exporter here, or None when it is. Read from nbconvert's
    entry points, so render does not import nbconvert."""
    from importlib.metadata import entry_points

    names = sorted({entry.name for entry in entry_points(group="nbconvert.exporters")})
    if name in names or name in ("ipynb", "notebook"):
        return None
    return f"{name!r} is not a valid 'nbconvert_exporter_name' value. Choose one from: " + (
        ", ".join(names)
    )


@dataclass
class LoggedNotebookJob(NotebookJob):
    """A notebook job run with papermill's ``log_output``: what the notebook prints and logs
    reaches this process's stderr, each line after the task's name. (papermill logs it to its
    ``papermill`` logger at INFO, which nothing shows unless it is given a handler.)"""

    def run(self) -> None:
        with _papermill_to_stderr(self.task):
            super().run()


@contextlib.contextmanager
def _papermill_to_stderr(task: str) -> Iterator[None]:
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TaskLines(task))
    previous = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # shown once, even when the root logger has a handler too
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


class _TaskLines(logging.Formatter):
    def __init__(self, task: str):
        super().__init__()
        self._task = task

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().rstrip("\n")
        return "\n".join(f"[{self._task}] {line}" for line in text.splitlines() or [""])
