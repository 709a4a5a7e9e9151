"""Reading a notebook task's source (``.ipynb``, or a jupytext script such as percent ``.py``).

Runs in the scheduling process at render time, so it stays light: ``.ipynb`` files are read as
plain JSON (nbformat's validation is slow and runs later, in the worker) and jupytext is imported
only for scripts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nbpipe.exceptions import MissingKernelError

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


@dataclass(frozen=True)
class NotebookSource:
    path: Path
    notebook: dict[str, Any]  # nbformat v4 as plain JSON data

    @classmethod
    def read(cls, path: Path) -> NotebookSource:
        if path.suffix.lower() == ".ipynb":
            with open(path, encoding="utf-8") as f:
                notebook = json.load(f)
        else:
            import jupytext

            notebook = json.loads(json.dumps(jupytext.read(path)))
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise ValueError(f"{path} is not a notebook (no 'cells' list)")
        if notebook.get("nbformat_minor", 0) >= 5:  # ids became required in nbformat 4.5
            for index, cell in enumerate(notebook["cells"]):
                cell.setdefault("id", f"nbpipe-cell-{index}")
        return cls(path, notebook)

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

    def to_json(self) -> str:
        return json.dumps(self.notebook)


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
