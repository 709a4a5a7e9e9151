"""``DAGSpec``: a ``pipeline.yaml`` (Ploomber's format) turned into a :class:`nbpipe.DAG`.

Loading happens in two steps, each reporting problems with the file and line to fix:

1. ``DAGSpec(path)`` reads the YAML (keeping line numbers), fills in ``{{placeholders}}`` from
   ``env.yaml``, checks every key and value, and expands ``grid`` tasks. Nothing is imported.
   The top level is checked in ``checks.py``, the ``tasks`` list read in ``tasks.py``.
2. ``spec.to_dag()`` imports functions and hooks (the spec's folder goes first on ``sys.path``),
   reads each notebook's parameters cell for its ``upstream``, wires the tasks and checks the
   graph: unknown upstream names, cycles, two tasks writing one product, a product that would
   overwrite a source or a file the pipeline is defined by (the spec, env.yaml, a module it
   imports). That is ``assemble.py``.

Relative paths (sources, products) resolve against the spec's folder, never the caller's working
directory. See ``docs/spec.md`` for the format.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from nbpipe.spec.assemble import assemble_dag
from nbpipe.spec.checks import (
    TOP_LEVEL_KEYS,
    Origin,
    check_keys,
    check_products,
    check_unique_names,
    make_executor,
    read_meta,
)
from nbpipe.spec.dotted import ensure_on_path, import_callable
from nbpipe.spec.env import Env
from nbpipe.spec.errors import InvalidValueError, SpecNotFoundError
from nbpipe.spec.task_specs import NOTEBOOK_SUFFIXES, TaskSpec, read_tasks
from nbpipe.spec.yamlfile import YamlMap, line_of, load_yaml_file

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

ENTRY_POINT_VARIABLE = "NBPIPE_ENTRY_POINT"
DEFAULT_NAME = "pipeline.yaml"
#: Ploomber's ``meta`` keys that this module reads (the rest are ``checks.read_meta``'s).
PATH_META_KEYS = ("import_tasks_from", "product_relative_to_source")
#: Sources in an ``import_tasks_from`` file that resolve against that file's folder (files
#: Ploomber reads as tasks); other sources (dotted paths) are left as they are.
IMPORTED_SOURCE_SUFFIXES = (*NOTEBOOK_SUFFIXES, ".sh", ".sql")


def find_entry_point(start: str | os.PathLike | None = None) -> Path:
    """``$NBPIPE_ENTRY_POINT`` if set, else ``pipeline.yaml`` in ``start`` (default: the working
    directory) or the nearest parent folder that has one."""
    override = os.environ.get(ENTRY_POINT_VARIABLE)
    if override:
        path = Path(override)
        if path.is_dir():
            path = path / DEFAULT_NAME
        if not path.exists():
            raise SpecNotFoundError(
                f"{ENTRY_POINT_VARIABLE} points to {path}, which does not exist"
            )
        return path
    folder = Path(start or os.getcwd()).absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / DEFAULT_NAME).is_file():
            return candidate / DEFAULT_NAME
    raise SpecNotFoundError(
        f"no {DEFAULT_NAME} in {folder} or its parent folders; pass one with -e/--entry-point "
        f"or set {ENTRY_POINT_VARIABLE}"
    )


class DAGSpec:
    """A pipeline described in YAML (``pipeline.yaml``), or in an equivalent dict.

    ``env`` is the env, with ``env.yaml``'s values as defaults, as in Ploomber: a mapping
    (``{'n_rows': 100}``, ``{'paths.data': 'x'}``), or the path of a YAML file.
    A dict spec resolves relative paths against ``folder`` (default: the working directory).
    ``warnings`` lists what was accepted but ignored (Ploomber keys nbpipe has no use for).
    A spec that is only ``location: module.make_dag`` names a function returning the DAG.
    """

    def __init__(
        self,
        spec: str | os.PathLike | Mapping[str, Any] | list,
        env: Mapping[str, Any] | str | os.PathLike | None = None,
        folder: str | os.PathLike | None = None,
    ):
        if isinstance(spec, (str, os.PathLike)):
            self.path: Path | None = Path(spec).absolute()
            self.folder = self.path.parent
            self.file: str | None = str(self.path)
            if not self.path.is_file():
                raise SpecNotFoundError(f"spec {self.path} does not exist")
            raw = load_yaml_file(self.path)
        else:
            self.path = None
            self.folder = Path(folder or os.getcwd()).absolute()
            self.file = None
            raw = spec
        self.warnings: list[str] = []
        self._origin = Origin(self.file, self.folder, self.warnings)
        self.env = Env.for_spec(self.path, self.folder, env)
        if self.path is not None:
            self._origin.protect(self.path, "the spec file")
        if self.env.file is not None:
            self._origin.protect(self.env.file, "the env file")
        data = self.env.render(raw, self.file, line_of(raw), "")
        if data is None:
            raise InvalidValueError("the spec is empty; it needs a 'tasks' list", file=self.file)
        if isinstance(data, list):  # a bare list of tasks
            tasks_only = YamlMap(line=getattr(data, "line", None))
            tasks_only["tasks"] = data
            data = tasks_only
        if not isinstance(data, dict):
            raise InvalidValueError(
                f"the spec must be a mapping with a 'tasks' list (or a list of tasks), not "
                f"{type(data).__name__}",
                file=self.file,
                line=line_of(data) or 1,
            )
        self.location: str | None = None
        if "location" in data:
            self._read_location(data)
            return
        data, path_meta = self._take_path_meta(data)
        self.data = data
        check_keys(data, TOP_LEVEL_KEYS, "top", "the spec's top level", "", self._origin)
        self.meta = read_meta(data, self._origin)
        self.meta["product_relative_to_source"] = path_meta["product_relative_to_source"]
        imported = path_meta.get("import_tasks_from")
        self.meta["import_tasks_from"] = imported[0] if imported else None
        self.executor_value = data.get("executor", "serial")
        make_executor(data, self._origin, warn=True)  # to check it; to_dag makes a fresh one
        self.tasks: list[TaskSpec] = read_tasks(data, self.meta, self._origin)
        if self.meta["import_tasks_from"] is not None:
            self.tasks += self._imported_tasks(path_meta["import_tasks_from"])
        check_unique_names(self.tasks, self._origin)
        check_products(self.tasks, self._origin)
        self.env.check_unused(lambda message: self._origin.warn(message, None))

    # -- Ploomber's meta keys about files -------------------------------------------------------
    def _take_path_meta(self, data: YamlMap) -> tuple[YamlMap, dict[str, Any]]:
        """``data`` without ``meta.import_tasks_from`` and ``meta.product_relative_to_source``
        (read here: a path, and a flag), and their checked values."""
        meta = data.get("meta")
        values: dict[str, Any] = {"product_relative_to_source": False}
        if not isinstance(meta, dict) or not any(key in meta for key in PATH_META_KEYS):
            return data, values
        flag = meta.get("product_relative_to_source", False)
        if not isinstance(flag, bool):
            raise self._origin.error(
                InvalidValueError,
                f"meta.product_relative_to_source must be true or false, not {flag!r}",
                line_of(meta, "product_relative_to_source"),
                key="meta.product_relative_to_source",
            )
        values["product_relative_to_source"] = flag
        imported = meta.get("import_tasks_from")
        if imported is not None:
            if not isinstance(imported, str) or not imported.strip():
                raise self._origin.error(
                    InvalidValueError,
                    "meta.import_tasks_from must be the path of a YAML file listing tasks, not "
                    f"{imported!r}",
                    line_of(meta, "import_tasks_from"),
                    key="meta.import_tasks_from",
                )
            values["import_tasks_from"] = (imported, line_of(meta, "import_tasks_from"))
        rest = _without(meta, PATH_META_KEYS)
        copy = _without(data, ())
        copy["meta"] = rest
        return copy, values

    def _imported_tasks(self, where: tuple[str, int | None]) -> list[TaskSpec]:
        """The tasks of ``meta.import_tasks_from``: a YAML list of tasks (placeholders filled in
        from the same env), whose relative notebook and script sources resolve against its own
        folder and whose products, as the spec's, against the spec's folder (Ploomber's rules)."""
        value, line = where
        path = Path(os.path.normpath(self.folder / os.path.expanduser(value)))
        if not path.is_file():
            raise self._origin.error(
                InvalidValueError,
                f"meta.import_tasks_from: {path} does not exist",
                line,
                key="meta.import_tasks_from",
            )
        file = str(path)
        self._origin.protect(path, "a file of the spec's tasks (meta.import_tasks_from)")
        raw = load_yaml_file(path)
        entries = self.env.render(raw, file, line_of(raw), "")
        if not isinstance(entries, list) or not entries:
            raise InvalidValueError(
                f"{path.name} (meta.import_tasks_from) must be a non-empty list of tasks, not "
                f"{type(entries).__name__ if entries is not None else 'an empty file'}",
                file=file,
                line=line_of(entries) or 1,
                key="meta.import_tasks_from",
            )
        for entry in entries:
            source = entry.get("source") if isinstance(entry, dict) else None
            if (
                isinstance(source, str)
                and not os.path.isabs(source)
                and PurePath(source).suffix.lower() in IMPORTED_SOURCE_SUFFIXES
            ):
                entry["source"] = str(path.parent / source)
        origin = dataclasses.replace(self._origin, file=file)  # same warnings, same protection
        return read_tasks(YamlMap({"tasks": entries}, line=1), self.meta, origin)

    # -- location: a function that returns the DAG ----------------------------------------------
    def _read_location(self, data: YamlMap) -> None:
        """``location: module.make_dag``: the spec is only that (Ploomber's rule)."""
        others = [key for key in data if key != "location"]
        if others:
            raise self._origin.error(
                InvalidValueError,
                "a spec with 'location' (a function that returns the DAG) has no other keys; "
                f"found {', '.join(map(str, others))}",
                line_of(data, others[0]),
                key=str(others[0]),
            )
        value = data["location"]
        if not isinstance(value, str) or not value.strip():
            raise self._origin.error(
                InvalidValueError,
                f"location must be the dotted path of a function that returns a DAG (e.g. "
                f"pipeline.make_dag), not {value!r}",
                line_of(data, "location"),
                key="location",
            )
        self.data = data
        self.location = value
        self.meta = read_meta(YamlMap(), self._origin)
        self.executor_value = None
        self.tasks = []
        self.env.check_unused(lambda message: self._origin.warn(message, None))

    def _dag_from_location(self) -> DAG:
        from nbpipe.engine.dag import DAG
        from nbpipe.engine.hooks import describe_exception

        line = line_of(self.data, "location")
        ensure_on_path(str(self.folder))
        factory = import_callable(
            self.location,
            file=self.file,
            line=line,
            key="location",
            what="function",
            folder=str(self.folder),
        )
        self._origin.protect_object(factory, f"the module of location {self.location!r}")
        try:
            dag = factory()
        except Exception as error:
            raise self._origin.error(
                InvalidValueError,
                f"location {self.location!r} raised {describe_exception(error)}",
                line,
                key="location",
            ) from None
        if not isinstance(dag, DAG):
            raise self._origin.error(
                InvalidValueError,
                f"location {self.location!r} returned {type(dag).__name__} {dag!r}, not a DAG",
                line,
                key="location",
            )
        return dag

    @classmethod
    def find(cls, start: str | os.PathLike | None = None, env=None) -> DAGSpec:
        """The spec at ``$NBPIPE_ENTRY_POINT``, or ``pipeline.yaml`` in ``start`` (default: the
        working directory) or its nearest parent that has one."""
        return cls(find_entry_point(start), env=env)

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    def to_dag(self) -> DAG:
        """A new DAG with the spec's tasks, hooks and executor (or, for a ``location`` spec, the
        DAG its function returns). Raises SpecError subclasses."""
        if self.location is not None:
            return self._dag_from_location()
        return assemble_dag(self.tasks, self.meta, self.data, self._origin)

    def __repr__(self) -> str:
        where = self.file or str(self.folder)
        return f"DAGSpec({where!r}, {len(self.tasks)} tasks)"


def _without(mapping: YamlMap, keys: tuple[str, ...]) -> YamlMap:
    """A copy of ``mapping`` (with its lines) without ``keys``."""
    copy = YamlMap({k: v for k, v in mapping.items() if k not in keys}, line=line_of(mapping))
    copy.lines = {k: v for k, v in getattr(mapping, "lines", {}).items() if k not in keys}
    copy.value_lines = {
        k: v for k, v in getattr(mapping, "value_lines", {}).items() if k not in keys
    }
    return copy
