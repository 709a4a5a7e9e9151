"""Executing a notebook task in a worker: inject parameters, run with papermill, convert.

Papermill runs the notebook in a fresh kernel (forked from the kernel template, or a new process:
``nbpipe.notebooks.kernels``), injecting ``product``, ``upstream`` and the params in a cell after
the one tagged ``parameters``. We turn off its save-after-every-cell (quadratic in
the number of cells) and write the notebook once at the end, while the kernel exits as papermill's
would (``kernels.exiting``). A failing notebook is kept beside its product as
``<name>.failed.ipynb`` so the user can open it at the failing cell.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbpipe.engine.products import new_token
from nbpipe.exceptions import NotebookExecutionError
from nbpipe.notebooks.cell_progress import CellReporter
from nbpipe.notebooks.convert import export
from nbpipe.notebooks.kernels import (
    KernelKey,
    exiting,
    new_kernel_manager,
    stop_kernel,
    take_warm_kernel,
    warm_kernel,
)
from nbpipe.notebooks.source import INJECTED_TAG


@dataclass
class NotebookJob:
    """Everything a worker needs to run one notebook task."""

    task: str
    source: str  # the notebook's path, for messages
    source_text: str  # read at render time, so the run matches the recorded digest
    source_format: str  # "ipynb", or a jupytext script format ("py", "md", ...)
    parameters: dict[str, Any]
    kernel_name: str
    language: str
    kernel_key: KernelKey  # kernel name, working directory, arguments, template (or None)
    outputs: list[tuple[str, str]]  # (staged path, extension) per product that gets the notebook
    partial_path: str
    shown_paths: dict[str, str] = field(default_factory=dict)  # staged path -> real path
    export_kwargs: dict[str, Any] = field(default_factory=dict)
    papermill_params: dict[str, Any] = field(default_factory=dict)
    warm_next: bool = False  # another notebook will follow: start its kernel during this one

    def run(self) -> None:
        execute(self)


def execute(job: NotebookJob) -> None:
    from nbpipe.notebooks.imports import unused_imports_hidden

    with unused_imports_hidden():  # a no-op in workers, which imported these already
        import nbformat
        import papermill
        from nbclient.exceptions import DeadKernelError
        from papermill.exceptions import PapermillExecutionError

    if job.source_format == "ipynb":
        notebook = nbformat.reads(job.source_text, as_version=4)
    else:
        import jupytext

        notebook = jupytext.reads(job.source_text, fmt=job.source_format)
    options = {
        "kernel_name": job.kernel_name,
        "language": job.language,
        "progress_bar": False,
        "request_save_on_cell_execute": False,
        "cwd": job.kernel_key[1],  # papermill_params may override it, and then the key has it too
        **job.papermill_params,
    }
    kernel = take_warm_kernel(job.kernel_key)
    if kernel is None:
        kernel = new_kernel_manager(job.kernel_key)
    if job.warm_next:
        warm_kernel(job.kernel_key)
    partial = Path(job.partial_path)
    scratch = partial.parent / f".nbpipe-{new_token()}-{partial.name}"
    running: list[int] = []  # the cells started, for a kernel that dies

    def cell_started(cell, cell_index: int) -> None:
        running.append(cell_index)

    progress = CellReporter(job.task, notebook)  # cells and output, as progress events
    try:
        executed = papermill.execute_notebook(
            notebook,
            scratch,
            parameters=job.parameters,
            km=kernel,
            on_cell_start=cell_started,
            **{**progress.papermill_options(), **options},
        )
    except PapermillExecutionError as error:
        with exiting(kernel):
            _keep_failed(scratch, partial, job)
        line = _failing_line(error.traceback)
        raise NotebookExecutionError(
            source=job.source,
            cell_index=_source_index(notebook, error.cell_index),
            line=line,
            code=_code_line(error.source, line),
            ename=error.ename,
            evalue=error.evalue,
            traceback=strip_ansi("\n".join(error.traceback)),
            partial_path=str(partial),
        ) from None
    except DeadKernelError:
        died = _kernel_died(job, notebook, running[-1] if running else None, kernel)
        stop_kernel(kernel)
        raise died from None
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) inside papermill
        _cancel_pending_tasks()
        stop_kernel(kernel)
        raise
    finally:
        progress.close()
        scratch.unlink(missing_ok=True)

    with exiting(kernel):  # the notebook's files are written while its kernel exits
        _show_real_paths(executed, job.shown_paths)
        _record_paths(executed, job)
        for staged, suffix in job.outputs:
            body = export(executed, suffix, job.export_kwargs)
            mode, encoding = ("wb", None) if isinstance(body, bytes) else ("w", "utf-8")
            with open(staged, mode, encoding=encoding) as f:
                f.write(body)
    partial.unlink(missing_ok=True)  # an old failure is no longer current


def _cancel_pending_tasks() -> None:
    """An interrupt inside papermill leaves nbclient's tasks pending in this thread's event loop;
    they are cancelled, rather than left to run on when the kernel is stopped (and to fail,
    logging "Task exception was never retrieved")."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    if loop.is_running() or loop.is_closed():
        return
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _kernel_died(job: NotebookJob, notebook, index: int | None, kernel) -> NotebookExecutionError:
    """The kernel process ended in the middle of the notebook (``os._exit``, a crash in native
    code, killed): the error names the cell it was running, and its exit code when known."""
    process = getattr(getattr(kernel, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    died = "the kernel died while running this cell" + (
        f" (exit code {code})" if code is not None else ""
    )
    return NotebookExecutionError(
        source=job.source,
        cell_index=_source_index(notebook, index) if index is not None else 0,
        line=None,
        code=None,
        ename="DeadKernelError",
        evalue=died,
        traceback=died,
        partial_path=None,
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In\s*\[[^\]]*\]|<ipython-input-[^>]*>),\s*line\s*(\d+)")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _failing_line(traceback: list[str]) -> int | None:
    """The line, within the failing cell, of the innermost frame that is in that cell."""
    lines = _CELL_LINE.findall(strip_ansi("\n".join(traceback)))
    return int(lines[-1]) if lines else None


def _source_index(notebook, index: int) -> int:
    """The failing cell's index in the user's notebook: papermill counts the cell it injected
    right after the ``parameters`` cell (unless the notebook already had one, which it replaced).
    """
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    if any(INJECTED_TAG in cell_tags for cell_tags in tags):
        return index
    parameters = next((i for i, cell_tags in enumerate(tags) if "parameters" in cell_tags), -1)
    return index - 1 if index > parameters else index


def _code_line(source: str, line: int | None) -> str | None:
    lines = source.splitlines()
    return lines[line - 1].strip() if line and 0 < line <= len(lines) else None


def _record_paths(notebook, job: NotebookJob) -> None:
    """Papermill's metadata names the notebook's input and output paths and its parameters; it
    ran from a notebook in memory (which papermill would embed whole as ``input_path``) to staged
    files, so name the task's source, its first notebook product and the real product paths."""
    first_output = job.outputs[0][0] if job.outputs else job.partial_path
    metadata = notebook.metadata.setdefault("papermill", {})
    metadata["input_path"] = job.source
    metadata["output_path"] = str(job.shown_paths.get(first_output, first_output))
    if "parameters" in metadata:
        parameters = json.dumps(metadata["parameters"])
        for staged, real in job.shown_paths.items():
            parameters = parameters.replace(json.dumps(staged)[1:-1], json.dumps(real)[1:-1])
        metadata["parameters"] = json.loads(parameters)


def _keep_failed(scratch: Path, partial: Path, job: NotebookJob) -> None:
    """Keeps the notebook papermill saved at the failing cell as ``partial``, with the paths of
    its metadata and injected cell as a successful run would show them."""
    import nbformat

    notebook = nbformat.read(scratch, as_version=nbformat.NO_CONVERT)
    _show_real_paths(notebook, job.shown_paths)
    _record_paths(notebook, job)
    nbformat.write(notebook, scratch)
    os.replace(scratch, partial)


def _show_real_paths(notebook, shown_paths: dict[str, str]) -> None:
    """The task ran against staged product paths; the saved notebook shows the real ones."""
    for cell in notebook.cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            for staged, real in shown_paths.items():
                cell.source = cell.source.replace(staged, real)
