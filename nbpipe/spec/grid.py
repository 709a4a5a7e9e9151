"""``grid``: one task per combination of parameter values (the batch papermill run), named and
numbered as Ploomber names and numbers them, so that products land at the same paths.

A grid is a mapping of parameter names to lists of values (a single value counts as a list of
one), or a list of such mappings (*groups*). Each group gives the cartesian product of its lists,
in the order written (the last key varies fastest); a list of groups concatenates them, and the
combinations are numbered from 0 across all groups. Each combination becomes one task whose
params are the task's ``params`` plus the combination.

Names: ``[[name]]`` placeholders are replaced by the combination's values; a name without
placeholders gets the index appended as is (``fit`` gives ``fit0``, ``fit-`` gives ``fit-0``).
Products: every path gets ``-<index>`` before its extensions, placeholders or not
(``out/fit-[[a]].ipynb`` gives ``out/fit-1-0.ipynb``, ``out/data.tar.gz`` gives
``out/data-0.tar.gz``), then its placeholders are replaced. A placeholder that the
combination's group does not set becomes empty text (``fit-[[a]]-[[b]]`` gives ``fit-1-`` for a
group without ``b``), as in Ploomber; one that no group sets is an error (a typo).

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
#: Ploomber's way of naming a function that returns a grid parameter's values
_FUNCTION = re.compile(r"[A-Za-z_][\w.]*::[A-Za-z_]\w*")


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
        lists: dict[str, list] = {}
        for name, values in block.items():
            where = value_line(block, name) or block_line
            if not isinstance(name, str) or not name.isidentifier():
                raise GridError(
                    f"grid parameter {name!r} is not a valid parameter name (a Python identifier)",
                    file=file,
                    line=where,
                    key=f"grid.{name}",
                )
            if _is_scalar(values) or values is None:
                if isinstance(values, str) and _FUNCTION.fullmatch(values):
                    raise _from_function(name, file, where)
                values = [values]  # a single value, as Ploomber reads it
            if isinstance(values, dict) and "dotted_path" in values:
                raise _from_function(name, file, where)
            if not isinstance(values, list) or not values:
                raise GridError(
                    f"grid parameter {name!r} must be a non-empty list of values (or a single "
                    f"value), not {_describe(values)}",
                    file=file,
                    line=where,
                    key=f"grid.{name}",
                )
            lists[name] = values
        result += [
            dict(zip(lists, values, strict=True)) for values in itertools.product(*lists.values())
        ]
    return result


def substitute(
    text: str,
    values: dict[str, Any],
    known: set[str] | dict[str, Any],
    file: str | None,
    line: int | None,
    where: str,
) -> str:
    """``text`` with each ``[[name]]`` replaced by ``values[name]``; by empty text when ``name``
    is a parameter of another group only (``known``: every group's parameters), as Ploomber's
    templates render it. A name no group has is an error."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        if name in known:
            return ""
        raise GridError(
            f"placeholder [[{name}]] in {where} is not a grid parameter"
            f"{did_you_mean(name, known)}; grid parameters: {listing(known)}",
            file=file,
            line=line,
            key=where,
        )

    return PLACEHOLDER.sub(replace, text)


def has_placeholder(text: Any) -> bool:
    return isinstance(text, str) and bool(PLACEHOLDER.search(text))


def indexed_name(name: str, index: int) -> str:
    """A grid task's name without placeholders: the index appended as is (``fit`` -> ``fit0``)."""
    return f"{name}{index}"


def indexed_path(path: str, index: int) -> str:
    """``out/fit.ipynb`` -> ``out/fit-0.ipynb``, ``out/data.tar.gz`` -> ``out/data-0.tar.gz``:
    ``-<index>`` before every extension of the file name (Ploomber's numbering of grid
    products, placeholders or not)."""
    pure = PurePath(path)
    suffix = "".join(pure.suffixes)
    stem = pure.name[: len(pure.name) - len(suffix)] if suffix else pure.name
    return str(pure.with_name(f"{stem}-{index}{suffix}"))


def _from_function(name: str, file: str | None, line: int | None) -> GridError:
    return GridError(
        f"grid parameter {name!r} takes its values from a function (Ploomber's "
        "'module::function' or dotted_path), which nbpipe does not support; list the values",
        file=file,
        line=line,
        key=f"grid.{name}",
    )


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return f"{type(value).__name__} {value!r}"
