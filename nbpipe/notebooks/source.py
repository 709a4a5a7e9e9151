"""Reading a notebook task's source (``.ipynb``, or a jupytext script such as percent ``.py``).

Runs in the scheduling process at render time (and for ``nbpipe status``), so it stays light:
``.ipynb`` files are read as plain JSON, and percent scripts (``# %%`` cells, in Python, R or
Julia) by :mod:`nbpipe.notebooks.percent`, which reads them as jupytext does. Importing jupytext
means importing nbformat and jsonschema's format checkers, seconds in a fresh process; that
happens only in the worker that runs the notebook, or here for what the percent reader leaves to
jupytext (other jupytext formats, and the rare constructs it lists). Render needs the code digest,
the ``parameters`` cell, the kernel name and the upstream declaration; the worker converts the
script with jupytext itself, with the same format argument (the file's extension).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nbpipe.exceptions import MissingKernelError
from nbpipe.notebooks.percent import LANGUAGES, NotHandled, read_percent_script

__all__ = ["NotebookSource", "kernel_language", "quiet_kernel_arguments", "read_percent_script"]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


@dataclass(frozen=True)
class NotebookSource:
    path: Path
    notebook: dict[str, Any]  # nbformat v4 as plain JSON data (cells, metadata)
    text: str  # what the worker converts: the script, or the notebook's JSON
    format: str  # "ipynb", or the script's extension for jupytext ("py", "md", "r", ...)

    @classmethod
    def read(cls, path: Path) -> NotebookSource:
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower().lstrip(".")
        if suffix == "ipynb":
            notebook = json.loads(text)
            if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
                raise ValueError(f"{path} is not a notebook (no 'cells' list)")
            if notebook.get("nbformat_minor", 0) >= 5:  # ids became required in nbformat 4.5
                for index, cell in enumerate(notebook["cells"]):
                    cell.setdefault("id", f"nbpipe-cell-{index}")
            return cls(path, notebook, json.dumps(notebook), "ipynb")
        if f".{suffix}" in LANGUAGES:
            try:
                return cls(path, read_percent_script(text, suffix), text, suffix)
            except NotHandled:
                pass  # jupytext reads it (or says what is wrong with it)
        import jupytext

        notebook = json.loads(json.dumps(jupytext.reads(text, fmt=suffix)))
        return cls(path, notebook, text, suffix)

    @property
    def code_cells(self) -> list[dict[str, Any]]:
        return [
            cell
            for cell in self.notebook["cells"]
            if cell.get("cell_type") == "code" and INJECTED_TAG not in _tags(cell)
        ]

    def has_parameters_cell(self) -> bool:
        return any(PARAMETERS_TAG in _tags(cell) for cell in self.code_cells)

    def digest(self) -> str:
        """Changes when code changes; markdown edits and outputs do not count."""
        text = "\n# -- cell --\n".join(_text(cell.get("source", "")) for cell in self.code_cells)
        return hashlib.sha256(text.encode()).hexdigest()

    def kernel_name(self) -> str | None:
        return self.notebook.get("metadata", {}).get("kernelspec", {}).get("name")


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", []) or []


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


@cache
def _kernel_specs():
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().get_all_specs()


def kernel_language(name: str) -> str:
    """The language of installed kernel ``name``; a clear error when it is not installed."""
    specs = _kernel_specs()
    if name not in specs:
        raise MissingKernelError(
            f"Jupyter kernel {name!r} is not installed (installed: {', '.join(sorted(specs))}). "
            "Install it, or pass kernelspec_name= to choose another."
        )
    return specs[name]["spec"].get("language", "python")


def quiet_kernel_arguments(name: str) -> list[str]:
    """Kernel arguments that silence ipykernel's start/stop log noise on the build's stderr
    (errors in the notebook still arrive through its outputs)."""
    argv = _kernel_specs()[name]["spec"].get("argv", [])
    return ["--IPKernelApp.log_level=CRITICAL"] if any("ipykernel" in a for a in argv) else []
