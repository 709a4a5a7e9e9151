"""ScriptRunner: a Python script (``.py`` in a jupytext format, or an ``.ipynb``) run as a script.

Ploomber's ScriptRunner, for code that needs no notebook: no kernel, no papermill, no executed
notebook as a product. The script declares ``upstream`` and ``product`` in its cell tagged
``parameters`` like a notebook; the task injects ``product`` (its staged paths), the params and
``upstream`` right after that cell, as papermill would, and runs the code cells in a fresh
``python`` process (the interpreter of the worker) with the script's folder as working directory
and on ``PYTHONPATH``. The script writes its products itself.

Line numbers stay the script's own: a ``.py`` script runs as written (its cell markers are
comments), the injected values in a chunk of their own after the parameters cell, so a failure
names the script's file and line; an ``.ipynb`` runs cell by cell, and a failure names the cell
and its line, as a notebook's does. The child reports its exception (type, message, traceback)
in a file, which the worker turns into the task's failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpipe.engine.events import TaskFailure
from nbpipe.engine.products import File, MultiProduct, Product, map_files
from nbpipe.notebooks.source import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    NotebookSource,
)
from nbpipe.tasks.base import Task
from nbpipe.tasks.child import ProgramFailed, exit_description, run_program
from nbpipe.tasks.source_checks import (
    own_source_problems,
    reserved_params_problems,
    source_problems,
)

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

INJECTED_NAME = "<injected parameters>"

#: Runs in the child: dies with its parent, compiles every chunk, runs them in one namespace as
#: ``__main__``; an exception is written to the report file (the worker shows it), not printed.
BOOTSTRAP = """\
import json, linecache, os, signal, sys, traceback
spec_path, parent = sys.argv[1], int(sys.argv[2])
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
if os.getppid() != parent:
    os._exit(137)
with open(spec_path, encoding="utf-8") as f:
    spec = json.load(f)
for name, text in spec["chunks"]:
    if name != spec["file"]:
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
sys.argv = [spec["file"]]

def report(error, tb):
    frames = [[f.filename, f.lineno, f.line] for f in traceback.extract_tb(tb)]
    if isinstance(error, SyntaxError) and error.filename:
        frames.append([error.filename, error.lineno, (error.text or "").strip()])
    with open(spec["report"], "w", encoding="utf-8") as f:
        json.dump({"type": type(error).__name__, "message": str(error), "frames": frames,
                   "traceback": "".join(traceback.format_exception(type(error), error, tb))}, f)
    sys.exit(1)

try:
    codes = [compile(text, name, "exec", dont_inherit=True) for name, text in spec["chunks"]]
except SyntaxError as error:
    report(error, None)
namespace = {"__name__": "__main__", "__file__": spec["file"], "__builtins__": __builtins__}
try:
    for code in codes:
        exec(code, namespace)
except SystemExit:
    raise
except BaseException as error:
    report(error, error.__traceback__.tb_next)
"""


@dataclass
class ScriptJob:
    """Everything a worker needs to run one script."""

    task: str
    source: str  # the script's path (its chunks' file name for a .py script)
    cwd: str
    chunks: list[tuple[str, str]]  # (file name, code): compiled and run in order
    cells: dict[str, int] = field(default_factory=dict)  # chunk name -> cell index (.ipynb)

    def run(self) -> None:
        folder = tempfile.mkdtemp(prefix="nbpipe-script-")
        try:
            spec = os.path.join(folder, "script.json")
            report = os.path.join(folder, "report.json")
            with open(spec, "w", encoding="utf-8") as f:
                json.dump({"file": self.source, "chunks": self.chunks, "report": report}, f)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([self.cwd, *filter(None, [env.get("PYTHONPATH")])])
            argv = [sys.executable, "-c", BOOTSTRAP, spec, str(os.getpid())]
            status, stderr = run_program(argv, self.cwd, env, lifeline=False)
            if status != 0:
                raise ProgramFailed(self._failure(status, stderr, report))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _failure(self, status: int, stderr: str, report_path: str) -> TaskFailure:
        try:
            with open(report_path, encoding="utf-8") as f:
                report = json.load(f)
        except (OSError, ValueError):  # no exception to report: sys.exit(n), a signal
            text = exit_description("python", status)
            if stderr.strip():
                text += f"; the end of its stderr:\n{stderr.rstrip()}"
            return TaskFailure(
                task=self.task,
                type="ScriptError",
                message=exit_description("python", status),
                traceback=f"{self.source}: {text}",
                source=self.source,
            )
        ours = [frame for frame in report["frames"] if frame[0] in self._names()]
        name, line, code = ours[-1] if ours else (None, None, None)
        message = report["message"]
        if report["type"] == "SyntaxError" and code and code.lstrip().startswith(("%", "!")):
            message += (
                " (ScriptRunner runs plain Python: IPython magics and shell escapes are not "
                "supported; remove them or use a NotebookRunner)"
            )
        return TaskFailure(
            task=self.task,
            type=report["type"],
            message=message,
            traceback=report["traceback"].rstrip(),
            source=self.source,
            cell=self.cells.get(name) if name else None,
            line=line,
            code=code or None,
        )

    def _names(self) -> set[str]:
        return {self.source, *self.cells}


class ScriptRunner(Task):
    """Runs the Python script at ``source`` in a fresh ``python`` process; see the module
    docstring. Its products are the files the script writes (``product`` in the script).

    The arguments are Ploomber's, in its order. ``static_analysis`` and ``local_execution`` are
    accepted and change nothing (no pyflakes; a script always runs in its own folder, as
    Ploomber's ScriptRunner does); ``ext_in`` (a script given as text) is not supported.
    """

    def __init__(
        self,
        source: str | os.PathLike,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        ext_in: str | None = None,
        static_analysis: str | bool = "regular",
        local_execution: bool = False,
    ):
        if ext_in is not None:
            raise ValueError(
                "ScriptRunner(ext_in=...) (a script given as text) is not supported by nbpipe: "
                "pass the script's path"
            )
        self.static_analysis = static_analysis
        self.local_execution = local_execution
        self.source = Path(source)
        self._notebook: NotebookSource | None = None
        super().__init__(product, dag, name, params)

    def _default_name(self) -> str:
        return self.source.stem

    @property
    def source_path(self) -> str:
        return str(self.source)

    @property
    def notebook(self) -> NotebookSource:
        """The source as cells, read once per render (``refresh`` re-reads it)."""
        if self._notebook is None:
            self._notebook = NotebookSource.read(self.source)
        return self._notebook

    def refresh(self) -> None:
        self._notebook = None

    def source_digest(self) -> str:
        return self.notebook.digest()

    def problems(self) -> list[str]:
        notebook, problems = source_problems(
            "script", self.source, self.source, self.source.exists(), lambda: self.notebook
        )
        if notebook is None:
            return problems
        language = notebook.language() or "python"
        if language.lower() != "python":
            problems.append(
                f"{self.source} is in {language}; ScriptRunner runs Python scripts. Use a "
                "NotebookRunner (with its kernel), or a ShellScript that runs the script"
            )
        problems += reserved_params_problems(self.params)
        for key, value in self.params.items():
            try:
                python_literal(value)
            except TypeError as error:
                problems.append(f"params[{key!r}] cannot be injected into a script: {error}")
        problems += own_source_problems("script", self.files, os.path.abspath(self.source))
        return problems

    def injected_code(self, product: Product | None = None) -> str:
        """The values a run injects after the parameters cell, as Python source: ``product``
        (``product``'s absolute paths: a run passes its staged files; by default the task's
        own), the params and ``upstream``. Front ends run it in an interactive kernel
        (JupyterLab's "Load task parameters"); nothing is written to the file."""
        product = self.product if product is None else product
        parameters: dict[str, Any] = {"product": map_files(product, File.absolute), **self.params}
        if self.upstream:
            parameters["upstream"] = upstream_paths(self.upstream_products())
        return "# Parameters\n" + "".join(
            f"{name} = {python_literal(value)}\n" for name, value in parameters.items()
        )

    def make_job(self, staged: Product, more_to_come: bool = False) -> ScriptJob:
        injected = self.injected_code(staged)
        source = os.path.abspath(self.source)
        chunks, cells = _chunks(self.notebook, source, injected)
        return ScriptJob(self.name, source, os.path.dirname(source), chunks, cells)


def _chunks(
    notebook: NotebookSource, source: str, injected: str
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The code to run, in order, with the injected values right after the parameters cell."""
    if notebook.format != "ipynb":
        end = _parameters_cell_end(notebook.text)
        if end is not None:  # the script as written, split after its parameters cell
            lines = notebook.text.splitlines(keepends=True)
            head, tail = "".join(lines[:end]), "".join(lines[end:])
            return [(source, head), (INJECTED_NAME, injected), (source, "\n" * end + tail)], {}
    chunks, cells = [], {}
    for index, cell in enumerate(notebook.notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", []) or []
        if cell.get("cell_type") != "code" or INJECTED_TAG in tags:
            continue
        name = f"{source} (cell {index + 1})"
        text = cell.get("source", "")
        chunks.append((name, "".join(text) if isinstance(text, list) else text))
        cells[name] = index
        if PARAMETERS_TAG in tags and INJECTED_NAME not in dict(chunks):
            chunks.append((INJECTED_NAME, injected))
    return chunks, cells


_CELL_START = re.compile(r"^#\s*(%%|\+)")
_LIGHT_CELL_END = re.compile(r"^#\s*-\s*$")


def _parameters_cell_end(text: str) -> int | None:
    """How many lines of a percent (``# %%``) or light (``# +`` ... ``# -``) script come before
    the injected values: those up to the end of its cell tagged ``parameters``. None when the
    script marks its cells otherwise."""
    lines = text.splitlines()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if _CELL_START.match(line) and re.search(r"\bparameters\b", line)
        ),
        None,
    )
    if start is None:
        return None
    for number in range(start + 1, len(lines)):
        if _CELL_START.match(lines[number]):
            return number
        if _LIGHT_CELL_END.match(lines[number]):
            return number + 1
    return len(lines)


def upstream_paths(value: Any) -> Any:
    """Upstream products as absolute paths, in their shape: a path, a dict by product key, and
    a dict by task name for the tasks a pattern matched (``upstream['fit-*']``)."""
    if isinstance(value, File):
        return value.absolute()
    if isinstance(value, MultiProduct):
        return map_files(value, File.absolute)
    return {name: upstream_paths(item) for name, item in value.items()}


def python_literal(value: Any) -> str:
    """``value`` as Python source (what papermill injects): str, numbers, booleans, None, paths,
    and lists, tuples and dicts of them. Anything else is a TypeError."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(
        f"a {type(value).__name__} cannot be written as Python source; use strings, numbers, "
        "booleans, None, lists or dicts"
    )
