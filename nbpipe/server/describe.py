"""``python -m nbpipe.server.describe PIPELINE``: a pipeline's tasks, edges and status as JSON.

The server runs this in a child process, never in its own: loading a spec imports the user's
functions and hooks (arbitrary code, maybe slow, maybe crashing) and puts the pipeline's folder on
``sys.path``; none of that may happen inside the Jupyter server. It is ``nbpipe status --json``
plus what the panel needs to draw the graph (each task's upstream tasks, source and kind), plus
the files whose changes can change the answer (``watch``), so the server can cache it.

Prints one JSON object on stdout. Exit code 0, or 2 with ``{"error": {...}}`` for a pipeline
that cannot be loaded (the spec error's file, line and key when there are some).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

FORMAT_VERSION = 1


def describe(path: str) -> dict[str, Any]:
    from nbpipe.spec import DAGSpec

    spec = DAGSpec(path)
    dag = spec.to_dag()
    status = {row.name: row for row in dag.status()}
    tasks = []
    for task in dag.values():
        row = status[task.name]
        tasks.append(
            {
                "name": task.name,
                "kind": "notebook" if hasattr(task, "notebook") else "function",
                "source": task.source_path,
                "upstream": list(task.upstream),
                "products": [os.path.abspath(str(file)) for file in task.files],
                "state": row.state,
                "reasons": row.reasons,
                "last_built": row.last_built,
            }
        )
    spec_folder = os.path.dirname(os.path.abspath(path))
    watch = {os.path.abspath(path), os.path.join(spec_folder, "env.yaml")}
    for task in tasks:
        if task["source"]:
            watch.add(os.path.abspath(task["source"]))
        watch.update(task["products"])
        watch.update(os.path.dirname(product) for product in task["products"])
    return {
        "v": FORMAT_VERSION,
        "name": dag.name,
        "executor": repr(dag.executor),
        "tasks": tasks,
        "warnings": list(getattr(spec, "warnings", []) or []),
        "watch": sorted(watch),
    }


def _error(error: BaseException) -> dict[str, Any]:
    if hasattr(error, "to_dict"):
        return error.to_dict()
    from nbpipe.exceptions import DAGRenderError

    data: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, DAGRenderError):
        data["problems"] = [{"task": task, "message": text} for task, text in error.problems]
    return data


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m nbpipe.server.describe PIPELINE", file=sys.stderr)
        return 2
    # Whatever user code prints while loading must not end up in the JSON on stdout.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        result, code = describe(argv[0]), 0
    except Exception as error:
        result, code = {"v": FORMAT_VERSION, "error": _error(error)}, 2
    out.write(json.dumps(result, default=str) + "\n")
    out.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
