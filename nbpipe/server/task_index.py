"""``python -m nbpipe.server.task_index SPEC``: a pipeline's tasks with what a build injects.

Run by the server in a child process (loading a spec imports the pipeline's modules: user code
never runs in the server). Prints one JSON object on its last line of stdout::

    {"v": 1, "tasks": [{"name", "kind", "source", "products", "upstream", "params", "grid",
                        "language", "injected_code", "injected_error"}, ...],
     "watch": [files whose size or mtime changes when this answer may]}

or ``{"v": 1, "error": {...}}`` (a spec error: file, line, key, message) with exit code 2.

``injected_code`` is the task's own rendering of its injected-parameters cell
(``NotebookRunner.injected_code``, ``ScriptRunner.injected_code``: papermill's for notebooks)
with the task's real, absolute product and upstream paths, for JupyterLab to run in the
notebook's kernel. Paths are absolute; the server makes them relative to its root for display.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

from nbpipe.engine.products import File, files_of, map_files

#: The version of this output; the server refuses another.
INDEX_VERSION = 1


def task_entry(task: Any) -> dict[str, Any]:
    """One task as the index lists it. A task whose injected code cannot be rendered (a param
    that is no Python literal) keeps its entry, with the reason in ``injected_error``."""
    from nbpipe.notebooks.source import kernel_language
    from nbpipe.tasks import NotebookRunner, PythonCallable

    kind = (
        "notebook"
        if isinstance(task, NotebookRunner)
        else "function"
        if isinstance(task, PythonCallable)
        else type(task).__name__
    )
    source = getattr(task, "source_path", None)
    entry: dict[str, Any] = {
        "name": task.name,
        "kind": kind,
        "source": os.path.abspath(source) if source else None,
        "products": [os.path.abspath(file.absolute()) for file in files_of(task.product)],
        "upstream": task.grouped_upstream(lambda product: map_files(product, File.absolute)),
        "params": task.params,
        "grid": getattr(task, "grid", None),
        "language": None,
        "injected_code": None,
        "injected_error": None,
    }
    if hasattr(task, "injected_code"):
        try:
            entry["injected_code"] = task.injected_code()
            if isinstance(task, NotebookRunner):
                entry["language"] = kernel_language(task.kernel_name)
            else:
                entry["language"] = "python"
        except Exception as error:  # reported to the user, per task
            entry["injected_error"] = f"{type(error).__name__}: {error}"
    return entry


def watched(spec_path: str, dag: Any) -> list[str]:
    """The spec, its env files (watched even when missing, so creating one counts), each task's
    source, and the module file of each function task (its upstream is read from it)."""
    from nbpipe.spec.env import env_files_for

    spec = os.path.abspath(spec_path)
    watch = {spec, *(os.path.abspath(path) for path in env_files_for(Path(spec)))}
    for task in dag.values():
        source = getattr(task, "source_path", None)
        if source:
            watch.add(os.path.abspath(source))
        elif callable(getattr(task, "source", None)):
            try:
                module_file = inspect.getsourcefile(task.source)
            except TypeError:
                module_file = None
            if module_file:
                watch.add(os.path.abspath(module_file))
    return sorted(watch)


def index(spec_path: str) -> dict[str, Any]:
    from nbpipe.spec import DAGSpec

    dag = DAGSpec(spec_path).to_dag()
    return {
        "v": INDEX_VERSION,
        "tasks": [task_entry(task) for task in dag.values()],
        "watch": watched(spec_path, dag),
    }


def main(argv: list[str] | None = None) -> int:
    from nbpipe.cli.errors import describe_error, error_dict
    from nbpipe.notebooks.imports import unused_imports_hidden

    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m nbpipe.server.task_index PIPELINE_YAML", file=sys.stderr)
        return 2
    spec_path = os.path.abspath(arguments[0])
    os.chdir(os.path.dirname(os.path.abspath(spec_path)))
    try:
        # papermill (the injected code's renderer) would import seconds of modules it never
        # uses here, as in the processes that run notebooks.
        with unused_imports_hidden():
            result = index(spec_path)
        code = 0
    except Exception as error:  # sent to the server as data
        message, code = describe_error(error)
        result = {"v": INDEX_VERSION, "error": error_dict(error, message)}
    print(json.dumps(result, default=str), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
