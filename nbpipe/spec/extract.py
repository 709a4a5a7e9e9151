"""Reading what a task's source declares, without running it.

A notebook declares its upstream tasks (and, with ``meta.extract_product``, its product) in its
``parameters`` cell::

    upstream = ['load', 'clean']     # or {'load': None, 'clean': None}, or None
    product = {'nb': 'out/clean.ipynb', 'data': 'out/clean.csv'}

A function declares upstream tasks by using them: every ``upstream['load']`` in its body. Both
are found by parsing the code with ``ast``; nothing is executed.

An R or Julia notebook's parameters cell holds literals of its language, read by a small reader
here (again, nothing runs)::

    upstream = list('load', 'clean')       # R (or c(...), or NULL; `<-` works too)
    product = list(nb = 'out/clean.ipynb')
    upstream = ["load", "clean"]           # Julia (or nothing)
    product = Dict("nb" => "out/clean.ipynb")
"""

from __future__ import annotations

import ast
import inspect
import re
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
    from nbpipe.notebooks.source import notebook_language

    language = (notebook_language(notebook, path.suffix) or "python").lower()
    if language in FOREIGN_LITERALS:
        values = _foreign_assignments(path, index, source, ("upstream", "product"), language)
    else:
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
        if line.replace(" ", "").startswith((f"{name}=", f"{name}<-")):
            return number
    return None


# -- R and Julia parameters cells -----------------------------------------------------------------
#: Per language: the names of constants, and the calls that build lists or dicts (``list(...)``
#: is a dict when its items are named, ``list(nb = 'x')``).
FOREIGN_LITERALS: dict[str, dict[str, Any]] = {
    "r": {
        "constants": {"NULL": None, "NA": None, "TRUE": True, "FALSE": False},
        "calls": ("list", "c"),
        "assign": ("=", "<-"),
        "example": "upstream = list('load', 'clean') or upstream = NULL",
    },
    "julia": {
        "constants": {"nothing": None, "missing": None, "true": True, "false": False},
        "calls": ("Dict",),
        "assign": ("=",),
        "example": 'upstream = ["load", "clean"] or upstream = nothing',
    },
}
_FOREIGN_TOKEN = re.compile(
    r"""(?P<skip>[ \t\r]+|\#[^\n]*)
    |(?P<end>\n|;)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?L?)
    |(?P<name>[A-Za-z_.][A-Za-z0-9_.]*)
    |(?P<op><-|=>|[-=(),\[\]])
    |(?P<other>.)""",
    re.VERBOSE,
)


class _NotALiteral(ValueError):
    pass


def _foreign_assignments(
    path: Path, index: int, source: str, names: tuple[str, ...], language: str
) -> dict[str, Any]:
    """``name = literal`` statements of an R or Julia parameters cell, for ``names``; other
    statements are skipped, but one of ``names`` assigned something else is an error."""
    rules = FOREIGN_LITERALS[language]
    statements: list[list[tuple[str, str, int]]] = [[]]
    depth, line = 0, 1
    for match in _FOREIGN_TOKEN.finditer(source):
        kind, text = match.lastgroup or "other", match.group()
        if kind == "end" and depth == 0:
            statements.append([])
        elif kind not in ("skip", "end"):
            depth += text in "([" if kind == "op" else 0
            depth -= text in ")]" if kind == "op" else 0
            statements[-1].append((kind, text, line))
        line += text.count("\n")
    values: dict[str, Any] = {}
    for tokens in statements:
        if (
            len(tokens) < 2
            or tokens[0][0] != "name"
            or tokens[0][1] not in names
            or tokens[1][1] not in rules["assign"]
        ):
            continue
        name, at = tokens[0][1], tokens[0][2]
        try:
            value, rest = _foreign_value(tokens[2:], rules)
            if rest:
                raise _NotALiteral
        except _NotALiteral:
            code = source.splitlines()[at - 1].strip() if source.splitlines() else ""
            raise UpstreamError(
                f"`{name} = ...` in the parameters cell (cell {index + 1}) must be a literal, "
                f"e.g. {rules['example']}, not {code!r}",
                file=str(path),
                line=_file_line(path, source, at, index),
                key=name,
            ) from None
        values[name] = value
    return values


def _foreign_value(tokens: list[tuple[str, str, int]], rules: dict[str, Any]) -> tuple[Any, list]:
    """The literal at the start of ``tokens``, and the tokens after it."""
    if not tokens:
        raise _NotALiteral
    (kind, text, _), rest = tokens[0], tokens[1:]
    if kind == "op" and text == "-" and rest and rest[0][0] == "number":
        value, rest = _foreign_value(rest, rules)
        return -value, rest
    if kind == "string":
        try:
            return ast.literal_eval(text), rest
        except (ValueError, SyntaxError):
            raise _NotALiteral from None
    if kind == "number":
        number = text.rstrip("L")
        return (float(number) if any(c in number for c in ".eE") else int(number)), rest
    if kind == "name" and text in rules["constants"]:
        return rules["constants"][text], rest
    if kind == "op" and text == "[":
        items, rest = _foreign_items(rest, "]", rules)
        return _list_or_dict(items), rest
    if kind == "name" and text in rules["calls"] and rest and rest[0][1] == "(":
        items, rest = _foreign_items(rest[1:], ")", rules)
        return _list_or_dict(items), rest
    raise _NotALiteral


def _foreign_items(
    tokens: list[tuple[str, str, int]], close: str, rules: dict[str, Any]
) -> tuple[list[tuple[Any, Any]], list]:
    """The items up to ``close``: ``(key, value)``, key None when the item is not named
    (R's ``name = value``, Julia's ``key => value``)."""
    items: list[tuple[Any, Any]] = []
    while True:
        if not tokens:
            raise _NotALiteral
        if tokens[0][1] == close:
            return items, tokens[1:]
        key = None
        if len(tokens) > 1 and tokens[0][0] in ("name", "string") and tokens[1][1] == "=":
            key = ast.literal_eval(tokens[0][1]) if tokens[0][0] == "string" else tokens[0][1]
            tokens = tokens[2:]
        value, tokens = _foreign_value(tokens, rules)
        if tokens and tokens[0][1] == "=>":
            key, (value, tokens) = value, _foreign_value(tokens[1:], rules)
        items.append((key, value))
        if tokens and tokens[0][1] == ",":
            tokens = tokens[1:]
        elif not tokens or tokens[0][1] != close:
            raise _NotALiteral


def _list_or_dict(items: list[tuple[Any, Any]]) -> Any:
    if items and all(key is not None for key, _ in items):
        return {key: value for key, value in items}
    if any(key is not None for key, _ in items):
        raise _NotALiteral
    return [value for _, value in items]


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
