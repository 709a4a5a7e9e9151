"""Reading what a task's source declares, without running it.

A notebook declares its upstream tasks (and, with ``meta.extract_product``, its product) in its
``parameters`` cell::

    upstream = ['load', 'clean']     # or {'load': None, 'clean': None}, or None
    product = {'nb': 'out/clean.ipynb', 'data': 'out/clean.csv'}

A function declares upstream tasks by using them: every ``upstream['load']`` in its body. Both
are found by parsing the code with ``ast``; nothing is executed.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbpipe.spec.errors import UpstreamError

MISSING: Any = object()


@dataclass
class Declaration:
    """What a notebook's parameters cell says; ``MISSING`` when it does not assign the name.

    ``line`` is where ``upstream`` is assigned (in a script; None in an ``.ipynb``) and ``cell``
    the parameters cell's number, counted from 1.
    """

    upstream: list[str] | None
    product: Any
    parameters_cell: bool
    line: int | None = None
    cell: int | None = None


def read_notebook_declaration(path: Path, notebook: dict[str, Any]) -> Declaration:
    """``notebook`` is nbformat-v4 JSON data (as ``nbpipe.notebooks.source`` reads it)."""
    index, cell = next(
        (
            (i, cell)
            for i, cell in enumerate(notebook.get("cells", []))
            if cell.get("cell_type") == "code"
            and "parameters" in (cell.get("metadata", {}).get("tags") or [])
        ),
        (None, None),
    )
    if cell is None:
        return Declaration(None, MISSING, False)
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    values = _assignments(path, index, source, ("upstream", "product"))
    upstream = values.get("upstream", None)
    upstream = _upstream_names(path, index, source, upstream)
    line = _file_line(path, source, _assignment_line(source, "upstream"), index)
    return Declaration(upstream, values.get("product", MISSING), True, line, index + 1)


def _assignments(path: Path, index: int, source: str, names: tuple[str, ...]) -> dict[str, Any]:
    code = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )  # IPython magics and shell escapes are not Python
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise UpstreamError(
            f"the parameters cell (cell {index + 1}) does not parse: {error.msg}",
            file=str(path),
            line=_file_line(path, source, error.lineno, index),
        ) from None
    values: dict[str, Any] = {}
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names and node.value is not None:
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise UpstreamError(
                        f"`{target.id} = ...` in the parameters cell (cell {index + 1}) must be a literal "
                        f"(a list, a dict, a string or None), not {ast.unparse(node.value)!r}",
                        file=str(path),
                        line=_file_line(path, source, node.lineno, index),
                        key=target.id,
                    ) from None
    return values


def _upstream_names(path: Path, index: int, source: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, (list, tuple, set)) and all(isinstance(name, str) for name in value):
        return list(dict.fromkeys(value))
    raise UpstreamError(
        f"`upstream` in the parameters cell (cell {index + 1}) must be a list of task names, "
        "a dict keyed by task "
        f"name, or None; got {value!r}",
        file=str(path),
        line=_file_line(path, source, _assignment_line(source, "upstream"), index),
        key="upstream",
    )


def _assignment_line(source: str, name: str) -> int | None:
    for number, line in enumerate(source.splitlines(), 1):
        if line.replace(" ", "").startswith(f"{name}="):
            return number
    return None


def _file_line(path: Path, cell_source: str, cell_line: int | None, cell_index: int) -> int | None:
    """A line in the source file: exact for scripts (found by text), else None (for ``.ipynb``,
    whose cells are JSON strings, the message names the cell instead)."""
    if cell_line is None or path.suffix.lower() == ".ipynb":
        return None
    lines = cell_source.splitlines()
    if not 0 < cell_line <= len(lines):
        return None
    wanted = lines[cell_line - 1].strip()
    try:
        file_lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for number, line in enumerate(file_lines, 1):
        if line.strip() == wanted:
            return number
    return None


def function_upstream(fn: Callable) -> dict[str, int | None]:
    """The names in every ``upstream['name']`` in ``fn``'s source, in order of first use, each
    with the line (in the function's file) where it is first used."""
    try:
        lines, start = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return {}
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "upstream"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            found.append((node.lineno, node.col_offset, node.slice.value))
    names: dict[str, int | None] = {}
    for lineno, _col, name in sorted(found):
        names.setdefault(name, start + lineno - 1 if start else lineno)
    return names
