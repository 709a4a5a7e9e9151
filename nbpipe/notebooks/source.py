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

__all__ = [
    "NotebookSource",
    "history_in_memory",
    "kernel_language",
    "quiet_kernel_arguments",
    "read_percent_script",
]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"

#: A script's language by its format (its lowercased extension), when the notebook does not say
#: (as jupytext reads the extension; an ``.ipynb`` says it in its metadata).
FORMAT_LANGUAGES = {"py": "python", "r": "R", "rmd": "R", "jl": "julia"}
#: The kernel for a language when the notebook names none, as Ploomber picks it (IRkernel's
#: kernel is ``ir``). Julia's is named after its version (``julia-1.10``): see default_kernel.
LANGUAGE_KERNELS = {"python": "python3", "r": "ir"}
#: jupytext's format names where they are not the lowercased extension.
JUPYTEXT_FORMATS = {"rmd": "Rmd"}


@dataclass(frozen=True)
class NotebookSource:
    path: Path
    notebook: dict[str, Any]  # nbformat v4 as plain JSON data (cells, metadata)
    text: str  # what the worker converts: the script, or the notebook's JSON
    format: str  # "ipynb", or the script's extension for jupytext ("py", "md", "r", ...)

    @classmethod
    def read(cls, path: Path) -> NotebookSource:
        return cls.from_text(path.read_text(encoding="utf-8"), path.suffix, path)

    @classmethod
    def from_text(cls, text: str, extension: str, path: Path) -> NotebookSource:
        """A notebook given as text in the format of ``extension`` (``.ipynb``, ``py``, ...);
        ``path`` names it in messages."""
        suffix = extension.lower().lstrip(".")
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

        fmt = JUPYTEXT_FORMATS.get(suffix, suffix)
        notebook = json.loads(json.dumps(jupytext.reads(text, fmt=fmt)))
        return cls(path, notebook, text, fmt)

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
        """The notebook's kernel, else the one for its language (``.R`` -> ``ir``)."""
        named = self.notebook.get("metadata", {}).get("kernelspec", {}).get("name")
        return named or default_kernel(self.language())

    def language(self) -> str | None:
        return notebook_language(self.notebook, self.format)


def missing_parameters_cell(shown: object) -> str:
    """The render problem of a notebook or script ``shown`` without a ``parameters`` cell."""
    return (
        f"{shown} has no cell tagged 'parameters'; add one declaring "
        '`upstream = None` and `product = None` (in a .py script: # %% tags=["parameters"])'
    )


def notebook_language(notebook: dict[str, Any], fmt: str) -> str | None:
    """A notebook's language: its kernelspec's, its ``language_info``, else what jupytext or
    the format (the extension) says: ``r``/``Rmd`` R, ``jl`` julia, ``py`` python."""
    metadata = notebook.get("metadata", {})
    return (
        metadata.get("kernelspec", {}).get("language")
        or metadata.get("language_info", {}).get("name")
        or metadata.get("jupytext", {}).get("main_language")
        or FORMAT_LANGUAGES.get(fmt.lower().lstrip("."))
    )


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", []) or []


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


@cache
def _kernel_specs():
    from nbpipe.notebooks.kernelspec_files import installed_kernelspecs

    return installed_kernelspecs()


def default_kernel(language: str | None) -> str | None:
    """The kernel that runs a notebook in ``language`` when the notebook names none: Ploomber's
    choice (``python3``; ``ir`` for R), else an installed kernel for the language (Julia's is
    named after its version), else the language's name, which ``kernel_language`` then reports
    as not installed. None when the language is unknown."""
    if not language:
        return None
    language = language.lower()
    if language in LANGUAGE_KERNELS:
        return LANGUAGE_KERNELS[language]
    installed = sorted(
        name
        for name, spec in _kernel_specs().items()
        if str(spec["spec"].get("language", "")).lower() == language
    )
    return installed[0] if installed else language


def _install_advice(name: str) -> str:
    """How to get kernel ``name`` when it is one nbpipe picks for R or Julia notebooks."""
    if name == "ir":
        return (
            "R notebooks (.R, .r, .Rmd) run in IRkernel's kernel 'ir': install R and IRkernel "
            "(in R: install.packages('IRkernel'); IRkernel::installspec()), or set "
            "kernelspec_name to choose another kernel."
        )
    if name == "julia" or name.startswith("julia-"):
        return (
            "Julia notebooks (.jl) run in IJulia's kernel (named julia-<version>): install Julia "
            'and IJulia (in Julia: using Pkg; Pkg.add("IJulia")), or set kernelspec_name to '
            "choose another kernel."
        )
    return "Install it, or pass kernelspec_name= to choose another."


def kernel_language(name: str) -> str:
    """The language of installed kernel ``name``; a clear error when it is not installed."""
    specs = _kernel_specs()
    if name not in specs:
        raise MissingKernelError(
            f"Jupyter kernel {name!r} is not installed (installed: {', '.join(sorted(specs))}). "
            + _install_advice(name)
        )
    return specs[name]["spec"].get("language", "python")


def quiet_kernel_arguments(name: str) -> list[str]:
    """Kernel arguments that silence ipykernel's start/stop log noise on the build's stderr
    (errors in the notebook still arrive through its outputs)."""
    argv = _kernel_specs()[name]["spec"].get("argv", [])
    return ["--IPKernelApp.log_level=CRITICAL"] if any("ipykernel" in a for a in argv) else []


#: The kernels that nbclient takes for IPython kernels (jupyter_client's ``KernelManager.ipykernel``)
IPYTHON_KERNEL_NAMES = frozenset({"python", "python2", "python3"})
HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"


def history_in_memory(name: str, arguments: list[str]) -> list[str]:
    """A kernel's ``arguments`` with IPython's history kept in memory, as nbclient (so papermill,
    so Ploomber) starts its IPython kernels: a notebook's cells are then not written to the
    user's history file (``~/.ipython/profile_default/history.sqlite``), which kernels running
    side by side would write at once, nor does each kernel open and sync it. Arguments that
    already name a history file are left as they are, as nbclient leaves them."""
    if name not in IPYTHON_KERNEL_NAMES:
        return list(arguments)
    if any(argument.startswith("--HistoryManager.hist_file") for argument in arguments):
        return list(arguments)
    return [*arguments, HISTORY_IN_MEMORY]
