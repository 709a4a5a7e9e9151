"""NotebookRunner: a task that executes a notebook (``.ipynb`` or a jupytext script).

The notebook runs in a fresh kernel through papermill, with ``product``, ``upstream`` and the
params injected after its cell tagged ``parameters``. The executed notebook is written to every
product named in ``nb_product_key``, converted by extension (``.ipynb``, ``.html``, ``.md``, ...).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpipe.engine.products import File, MultiProduct, Product, files_of, map_files
from nbpipe.exceptions import MissingKernelError
from nbpipe.notebooks.convert import format_problem
from nbpipe.notebooks.execute import NotebookJob
from nbpipe.notebooks.forking import kernel_launch, say_how_kernels_start
from nbpipe.notebooks.kernels import KernelKey, warm_up
from nbpipe.notebooks.source import NotebookSource, kernel_language, quiet_kernel_arguments
from nbpipe.tasks.base import Task

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

RESERVED_PARAMS = ("product", "upstream")


class NotebookRunner(Task):
    """Executes the notebook at ``source``; see the module docstring.

    ``kernelspec_name`` picks the kernel (else the notebook's own kernelspec, else ``python3``);
    ``papermill_params`` go to ``papermill.execute_notebook`` (e.g. ``execution_timeout``);
    ``nbconvert_export_kwargs`` configure the nbconvert exporters (e.g. ``exclude_input=True``).
    """

    def __init__(
        self,
        source: str | os.PathLike,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        nb_product_key: str | list[str] = "nb",
        kernelspec_name: str | None = None,
        papermill_params: Mapping[str, Any] | None = None,
        nbconvert_export_kwargs: Mapping[str, Any] | None = None,
    ):
        self.source = Path(source)
        self.nb_product_key = (
            [nb_product_key] if isinstance(nb_product_key, str) else list(nb_product_key)
        )
        self.kernelspec_name = kernelspec_name
        self.papermill_params = dict(papermill_params or {})
        self.nbconvert_export_kwargs = dict(nbconvert_export_kwargs or {})
        self._notebook: NotebookSource | None = None
        super().__init__(product, dag, name, params)

    @property
    def worker_imports(self) -> tuple[str, ...]:  # type: ignore[override]
        """What a worker imports as it starts: jupytext only for a script source."""
        scripts = () if self.notebook.format == "ipynb" else ("jupytext",)
        return ("nbformat", "papermill", *scripts)

    def _default_name(self) -> str:
        return self.source.stem

    @property
    def source_path(self) -> str:
        return str(self.source)

    @property
    def notebook(self) -> NotebookSource:
        """The source, read once per render (``refresh`` re-reads it)."""
        if self._notebook is None:
            self._notebook = NotebookSource.read(self.source)
        return self._notebook

    def refresh(self) -> None:
        self._notebook = None

    def source_digest(self) -> str:
        return self.notebook.digest()

    @property
    def kernel_name(self) -> str:
        return self.kernelspec_name or self.notebook.kernel_name() or "python3"

    def notebook_files(self) -> list[File]:
        """The products that receive the executed notebook."""
        if isinstance(self.product, MultiProduct):
            return [self.product[key] for key in self.nb_product_key if key in self.product]
        return [self.product]

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
        if not self.source.exists():
            return [f"source notebook {self.source} does not exist"]
        try:
            notebook = self.notebook
        except (OSError, ValueError) as error:
            return [f"cannot read notebook {self.source}: {error}"]
        problems = []
        if not notebook.has_parameters_cell():
            problems.append(
                f"{self.source} has no cell tagged 'parameters'; add one declaring "
                '`upstream = None` and `product = None` (in a .py script: # %% tags=["parameters"])'
            )
        try:
            kernel_language(self.kernel_name)
        except MissingKernelError as error:
            problems.append(str(error))
        if isinstance(self.product, MultiProduct):
            unknown = [key for key in self.nb_product_key if key not in self.product]
            if unknown:
                problems.append(
                    f"nb_product_key {', '.join(map(repr, unknown))} not among the products "
                    f"({', '.join(self.product)})"
                )
        for file in self.notebook_files():
            problem = format_problem(file.suffix)
            if problem:
                problems.append(f"product {file}: {problem}")
        source = os.path.abspath(self.source)
        problems += [
            f"product {file} is the task's own source notebook; a build would overwrite it"
            for file in self.files
            if file.absolute() == source
        ]
        reserved = [key for key in self.params if key in RESERVED_PARAMS]
        if reserved:
            problems.append(f"params cannot be named {' or '.join(reserved)}: nbpipe injects those")
        return problems

    def kernel_key(self) -> KernelKey:
        """What this notebook's kernel start depends on: a warm kernel must match it. The last
        field is the kernel template's preload modules when the kernel is forked, else None
        (``nbpipe.notebooks.forking.kernel_launch``)."""
        arguments = self.papermill_params.get(
            "extra_arguments", quiet_kernel_arguments(self.kernel_name)
        )
        cwd = self.papermill_params.get("cwd", self.source.parent)
        template, _ = kernel_launch(self.kernel_name, self.dag)
        return (self.kernel_name, os.path.abspath(cwd), tuple(arguments), template)

    def worker_warm_up(self) -> Callable[[], object]:
        """The build's warm-up (for its first notebook), which also says once how kernels start:
        forked from a template with the DAG's ``preload``, or as new processes, and why."""
        key = self.kernel_key()
        say_how_kernels_start(self.kernel_name, self.dag)
        return functools.partial(warm_up, key)

    def make_job(self, staged: Product, more_to_come: bool = False) -> NotebookJob:
        parameters: dict[str, Any] = {
            "product": map_files(staged, File.absolute),
            **self.params,
        }
        if self.upstream:
            parameters["upstream"] = self.grouped_upstream(
                lambda product: map_files(product, File.absolute)
            )
        staged_files = dict(zip(map(File.absolute, self.files), files_of(staged), strict=True))
        outputs = [
            (staged_files[file.absolute()].absolute(), file.suffix)
            for file in self.notebook_files()
        ]
        first = self.notebook_files()[0]
        return NotebookJob(
            task=self.name,
            source=str(self.source),
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
