"""``grid``: one task per combination of parameter values (the batch papermill run).

A grid is a mapping of parameter names to lists of values, or a list of such mappings. Each
mapping gives the cartesian product of its lists, in the order written (the last key varies
fastest); a list of mappings concatenates them. Each combination becomes one task whose params are
the task's ``params`` plus the combination.

``[[name]]`` in the task's ``name`` and ``product`` paths is replaced by the value of that
parameter. A name without placeholders gets the combination's index appended (``fit`` gives
``fit-0``, ``fit-1``...; ``fit-`` gives ``fit-0``), and so does each product path without
placeholders (``out/fit.ipynb`` gives ``out/fit-0.ipynb``).

Example: ``grid: {a: [1, 2], b: [x, y]}`` gives four tasks with params
``{a: 1, b: x}``, ``{a: 1, b: y}``, ``{a: 2, b: x}``, ``{a: 2, b: y}``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import PurePath
from typing import Any

from nbpipe.spec.errors import GridError, did_you_mean, listing
from nbpipe.spec.yamlfile import line_of, value_line

PLACEHOLDER = re.compile(r"\[\[\s*([^\[\]]*?)\s*\]\]")


def combinations(grid: Any, file: str | None, line: int | None) -> list[dict[str, Any]]:
    """Every combination the grid describes, in order."""
    if isinstance(grid, dict):
        blocks = [(grid, line)]
    elif isinstance(grid, list) and grid:
        blocks = [(block, line_of(grid, i) or line) for i, block in enumerate(grid)]
    else:
        raise GridError(
            "grid must be a mapping of parameter names to lists of values, or a non-empty list "
            f"of such mappings, not {_describe(grid)}",
            file=file,
            line=line,
            key="grid",
        )
    result: list[dict[str, Any]] = []
    for block, block_line in blocks:
        if not isinstance(block, dict) or not block:
            raise GridError(
                "each grid entry must be a non-empty mapping of parameter names to lists of "
                f"values, not {_describe(block)}",
                file=file,
                line=block_line,
                key="grid",
            )
        for name, values in block.items():
            where = value_line(block, name) or block_line
            if not isinstance(name, str) or not name.isidentifier():
                raise GridError(
                    f"grid parameter {name!r} is not a valid parameter name (a Python identifier)",
                    file=file,
                    line=where,
                    key=f"grid.{name}",
                )
            if not isinstance(values, list) or not values:
                hint = f" (write [{values}] for a single value)" if _is_scalar(values) else ""
                raise GridError(
                    f"grid parameter {name!r} must be a non-empty list of values, not "
                    f"{_describe(values)}{hint}",
                    file=file,
                    line=where,
                    key=f"grid.{name}",
                )
        names = list(block)
        result += [
            dict(zip(names, values, strict=True)) for values in itertools.product(*block.values())
        ]
    return result


def substitute(
    text: str, values: dict[str, Any], file: str | None, line: int | None, where: str
) -> str:
    """``text`` with each ``[[name]]`` replaced by ``values[name]``."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise GridError(
                f"placeholder [[{name}]] in {where} is not a grid parameter"
                f"{did_you_mean(name, values)}; grid parameters: {listing(values)}",
                file=file,
                line=line,
                key=where,
            )
        return str(values[name])

    return PLACEHOLDER.sub(replace, text)


def has_placeholder(text: Any) -> bool:
    return isinstance(text, str) and bool(PLACEHOLDER.search(text))


def indexed_name(name: str, index: int) -> str:
    return f"{name}{index}" if name.endswith(("-", "_")) else f"{name}-{index}"


def indexed_path(path: str, index: int) -> str:
    """``out/fit.ipynb`` -> ``out/fit-0.ipynb`` (a path without placeholders in a grid task)."""
    pure = PurePath(path)
    if not pure.suffix:
        return f"{path}-{index}"
    return str(pure.with_name(f"{pure.stem}-{index}{pure.suffix}"))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return f"{type(value).__name__} {value!r}"
