"""Executing a notebook task in a worker: inject parameters, run with papermill, convert.

Papermill runs the notebook in a fresh kernel, injecting ``product``, ``upstream`` and the params
in a cell after the one tagged ``parameters``. We turn off its save-after-every-cell (quadratic in
the number of cells) and write the notebook once at the end. A failing notebook is kept beside its
product as ``<name>.failed.ipynb`` so the user can open it at the failing cell.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbpipe.engine.products import new_token
from nbpipe.exceptions import NotebookExecutionError
from nbpipe.notebooks.convert import export
from nbpipe.notebooks.kernels import take_warm_kernel, warm_kernel
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
    kernel_key: tuple[str, str, tuple[str, ...]]  # kernel name, working directory, arguments
    outputs: list[tuple[str, str]]  # (staged path, extension) per product that gets the notebook
    partial_path: str
    shown_paths: dict[str, str] = field(default_factory=dict)  # staged path -> real path
    export_kwargs: dict[str, Any] = field(default_factory=dict)
    papermill_params: dict[str, Any] = field(default_factory=dict)
    warm_next: bool = False  # another notebook will follow: start its kernel during this one

    def run(self) -> None:
        execute(self)


def execute(job: NotebookJob) -> None:
    import nbformat
    import papermill
    from jupyter_core.utils import run_sync
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
    if job.warm_next:
        warm_kernel(job.kernel_key)
    partial = Path(job.partial_path)
    scratch = partial.parent / f".nbpipe-{new_token()}-{partial.name}"
    try:
        executed = papermill.execute_notebook(
            notebook, scratch, parameters=job.parameters, km=kernel, **options
        )
    except PapermillExecutionError as error:
        os.replace(scratch, partial)
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
    finally:
        scratch.unlink(missing_ok=True)
        if kernel is not None:  # a warm kernel is ours to stop (papermill stops the ones it starts)
            run_sync(kernel.shutdown_kernel)(now=True)

    _show_real_paths(executed, job.shown_paths)
    for staged, suffix in job.outputs:
        body = export(executed, suffix, job.export_kwargs)
        mode, encoding = ("wb", None) if isinstance(body, bytes) else ("w", "utf-8")
        with open(staged, mode, encoding=encoding) as f:
            f.write(body)
    partial.unlink(missing_ok=True)  # an old failure is no longer current


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


def _show_real_paths(notebook, shown_paths: dict[str, str]) -> None:
    """The task ran against staged product paths; the saved notebook shows the real ones."""
    for cell in notebook.cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            for staged, real in shown_paths.items():
                cell.source = cell.source.replace(staged, real)
