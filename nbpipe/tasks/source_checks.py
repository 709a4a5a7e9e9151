"""Render-time checks that notebook and script tasks share: the source exists, reads and has a
parameters cell; no param shadows a name nbpipe injects; no product is the source itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbpipe.engine.products import File
from nbpipe.notebooks.source import NotebookSource, missing_parameters_cell

#: Names nbpipe gives a task's code itself: no param may take them.
RESERVED_PARAMS = ("product", "upstream")


def source_problems(
    kind: str, path: Any, shown: Any, exists: bool, read: Callable[[], NotebookSource]
) -> tuple[NotebookSource | None, list[str]]:
    """The source read (None when it cannot be) and what is wrong with it so far. ``kind`` is
    "notebook" or "script"; ``shown`` is the path as messages name it."""
    if not exists:
        return None, [f"source {kind} {path} does not exist"]
    try:
        notebook = read()
    except (OSError, ValueError) as error:
        return None, [f"cannot read {kind} {shown}: {error}"]
    return notebook, [] if notebook.has_parameters_cell() else [missing_parameters_cell(shown)]


def reserved_params_problems(params: Mapping[str, Any], how: str = "injects") -> list[str]:
    """A param named as what nbpipe ``how`` (injects, passes) to the task's code."""
    reserved = [key for key in params if key in RESERVED_PARAMS]
    if not reserved:
        return []
    return [f"params cannot be named {' or '.join(reserved)}: nbpipe {how} those"]


def own_source_problems(kind: str, files: Iterable[File], source: str | None) -> list[str]:
    """A product that is the task's source (``source``: its absolute path) would be overwritten."""
    return [
        f"product {file} is the task's own source {kind}; a build would overwrite it"
        for file in files
        if source is not None and file.absolute() == source
    ]
