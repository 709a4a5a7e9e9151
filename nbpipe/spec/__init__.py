"""Pipelines described in ``pipeline.yaml`` (Ploomber's format).

    from nbpipe.spec import DAGSpec

    dag = DAGSpec("pipeline.yaml").to_dag()
    dag.build()

``DAGSpec.find()`` looks for ``pipeline.yaml`` in the working directory and its parents
(``$NBPIPE_ENTRY_POINT`` overrides). Errors are :class:`SpecError` subclasses that carry the file,
line and key to fix. The format is described in ``docs/spec.md``.

``DAGSpec`` also has Ploomber's API: ``DAGSpec(path, env=None, lazy_import=False, reload=False,
parent_path=None)``, read-only mapping access (``spec['tasks']``, ``spec['meta']`` with its
defaults), ``DAGSpec.find(env=None, reload=False, lazy_import=False, starting_dir=None,
name=None)``, ``DAGSpec.from_directory(path)`` and ``DAGSpec.from_files(files)``.
"""

from __future__ import annotations

import glob
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbpipe.spec.errors import (
    CycleError,
    DottedPathError,
    DuplicateTaskError,
    GridError,
    InvalidValueError,
    MissingKeyError,
    MissingSourceError,
    PlaceholderError,
    ProductError,
    SpecError,
    SpecNotFoundError,
    UnknownKeyError,
    UnsupportedKeyError,
    UpstreamError,
    YAMLSyntaxError,
)
from nbpipe.spec.loader import DAGSpec as _SpecLoader
from nbpipe.spec.loader import find_entry_point
from nbpipe.spec.task_specs import TaskSpec

__all__ = [
    "CycleError",
    "DAGSpec",
    "DottedPathError",
    "DuplicateTaskError",
    "GridError",
    "InvalidValueError",
    "MissingKeyError",
    "MissingSourceError",
    "PlaceholderError",
    "ProductError",
    "SpecError",
    "SpecNotFoundError",
    "TaskSpec",
    "UnknownKeyError",
    "UnsupportedKeyError",
    "UpstreamError",
    "YAMLSyntaxError",
    "find_entry_point",
]


#: Source extensions ``from_directory`` and ``from_files`` take as notebooks (Ploomber's).
NOTEBOOK_EXTENSIONS = (".py", ".R", ".r", ".Rmd", ".ipynb")


class DAGSpec(_SpecLoader, Mapping):
    """A pipeline described in YAML (``pipeline.yaml``), or in an equivalent dict or list.

    ``DAGSpec(data, env=None, lazy_import=False, reload=False, parent_path=None)`` as in
    Ploomber: ``env`` is the env (a mapping, ``{'n_rows': 100}``, or a YAML file's path), with
    ``env.yaml``'s values as defaults; ``lazy_import`` is
    accepted (loading a spec never imports anything; ``to_dag()`` always does); ``reload``
    re-imports the modules of the spec's functions and hooks that were imported before, when
    ``to_dag()`` runs, so that edits count; ``parent_path`` (or nbpipe's ``folder``) is where the
    relative paths of a dict spec resolve (default: the working directory).

    It reads as a mapping: ``spec['tasks']`` (the tasks as written, placeholders filled in),
    ``spec['meta']`` (with its defaults), ``spec['executor']``, ... It is read-only:
    ``to_dag()`` builds from what was loaded. ``warnings`` lists what was accepted but ignored.
    """

    def __init__(
        self,
        data: str | os.PathLike | Mapping[str, Any] | list,
        env: Mapping[str, Any] | None = None,
        lazy_import: bool = False,
        reload: bool = False,
        parent_path: str | os.PathLike | None = None,
        folder: str | os.PathLike | None = None,
    ):
        if isinstance(data, (str, os.PathLike)) and parent_path is not None:
            raise ValueError(
                "parent_path must be None when initializing DAGSpec with a path to a YAML spec"
            )
        if env is not None and not isinstance(env, (Mapping, str, os.PathLike)):
            raise TypeError(
                "env must be a mapping of env values, such as {'n_rows': 100}, or the path of "
                f"a YAML file, not {type(env).__name__}; env.yaml (or env.NAME.yaml for "
                "pipeline.NAME.yaml) beside the spec gives the defaults"
            )
        self.lazy_import = lazy_import
        self.reload = reload
        super().__init__(data, env=env, folder=folder or parent_path)

    # -- Ploomber's mapping access --------------------------------------------------------------
    def _as_mapping(self) -> dict[str, Any]:
        data = dict(self.data)
        data["meta"] = {**dict(self.data.get("meta") or {}), **self.meta}
        return data

    def __getitem__(self, key: str) -> Any:
        return self._as_mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_mapping())

    def __len__(self) -> int:
        return len(self._as_mapping())

    __hash__ = object.__hash__  # Mapping's __eq__ would make it unhashable

    # -- building -------------------------------------------------------------------------------
    def to_dag(self):
        """A new DAG with the spec's tasks, hooks and executor. Raises SpecError subclasses."""
        if self.reload:
            self._reload_modules()
        return super().to_dag()

    def _reload_modules(self) -> None:
        """Re-imports the already imported modules that the spec's dotted paths name."""
        modules = {task.source.rpartition(".")[0] for task in self.tasks if task.kind == "function"}
        modules |= {path.rpartition(".")[0] for path in _hook_paths(self.data)}
        for name in sorted(module for module in modules if module in sys.modules):
            importlib.reload(sys.modules[name])

    # -- finding a spec -------------------------------------------------------------------------
    @classmethod
    def find(
        cls,
        env: Mapping[str, Any] | None = None,
        reload: bool = False,
        lazy_import: bool = False,
        starting_dir: str | os.PathLike | None = None,
        name: str | None = None,
    ) -> DAGSpec:
        """The spec at ``$NBPIPE_ENTRY_POINT``, or ``pipeline.yaml`` (``name`` if given) in
        ``starting_dir`` (default: the working directory) or its nearest parent that has one.
        Not found: ``SpecNotFoundError`` (a ``FileNotFoundError`` and Ploomber's
        ``DAGSpecInvalidError``); a broken spec: a ``SpecError`` (Ploomber's
        ``DAGSpecInitializationError``)."""
        found = (
            find_entry_point(starting_dir) if name is None else _find_upwards(name, starting_dir)
        )
        return cls(found, env=env, lazy_import=lazy_import, reload=reload)

    @classmethod
    def from_directory(cls, path_to_dir: str | os.PathLike) -> DAGSpec:
        """A spec with one task per notebook in ``path_to_dir`` (``.py``, ``.R``, ``.Rmd``,
        ``.ipynb``; other files are left out), named after the file; each notebook declares its
        ``upstream`` and its ``product`` in its parameters cell (``meta.extract_upstream`` and
        ``meta.extract_product`` are on). Paths are relative to the working directory."""
        if not Path(path_to_dir).is_dir():
            raise NotADirectoryError(f"{str(path_to_dir)!r} is not a directory")
        pattern = str(Path(path_to_dir, "*"))
        files = [
            path
            for extension in NOTEBOOK_EXTENSIONS
            for path in sorted(glob.glob(pattern + extension))
            if Path(path).is_file()
        ]
        return cls.from_files(files)

    @classmethod
    def from_files(cls, files: str | list[str | os.PathLike]) -> DAGSpec:
        """A spec with one task per notebook in ``files`` (a list, or a glob pattern such as
        ``'notebooks/*.py'``), as ``from_directory`` makes them. A file with another extension
        is a ValueError."""
        if isinstance(files, str):
            files = sorted(path for path in glob.glob(files) if Path(path).is_file())
        invalid = [str(file) for file in files if Path(file).suffix not in NOTEBOOK_EXTENSIONS]
        if invalid:
            raise ValueError(
                f"Cannot instantiate DAGSpec from files with invalid extensions: {invalid}. "
                f"Allowed extensions are: {list(NOTEBOOK_EXTENSIONS)}"
            )
        tasks = [{"source": str(file)} for file in files]
        meta = {"extract_product": True, "extract_upstream": True}
        return cls({"tasks": tasks, "meta": meta}, folder=os.getcwd())


def _find_upwards(name: str, start: str | os.PathLike | None) -> Path:
    folder = Path(start or os.getcwd()).absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / name).is_file():
            return candidate / name
    raise SpecNotFoundError(f"no {name} in {folder} or its parent folders")


def _hook_paths(data: Mapping[str, Any]) -> list[str]:
    """The dotted paths of the spec's hooks (top level and tasks)."""
    found = []
    places = [data, *[task for task in data.get("tasks") or [] if isinstance(task, Mapping)]]
    for place in places:
        for key in ("on_render", "on_finish", "on_failure"):
            value = place.get(key)
            if isinstance(value, Mapping):
                value = value.get("dotted_path")
            if isinstance(value, str) and "." in value:
                found.append(value)
    return found
