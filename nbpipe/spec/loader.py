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

import os
from collections.abc import Mapping
from pathlib import Path
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
from nbpipe.spec.env import Env
from nbpipe.spec.errors import InvalidValueError, SpecNotFoundError
from nbpipe.spec.task_specs import TaskSpec, read_tasks
from nbpipe.spec.yamlfile import YamlMap, line_of, load_yaml_file

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

ENTRY_POINT_VARIABLE = "NBPIPE_ENTRY_POINT"
DEFAULT_NAME = "pipeline.yaml"


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

    ``env`` overrides ``env.yaml`` values (``{'n_rows': 100}`` or ``{'paths.data': 'x'}``).
    A dict spec resolves relative paths against ``folder`` (default: the working directory).
    ``warnings`` lists what was accepted but ignored (Ploomber keys nbpipe has no use for).
    """

    def __init__(
        self,
        spec: str | os.PathLike | Mapping[str, Any] | list,
        env: Mapping[str, Any] | None = None,
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
        self.data = data
        check_keys(data, TOP_LEVEL_KEYS, "top", "the spec's top level", "", self._origin)
        self.meta = read_meta(data, self._origin)
        self.executor_value = data.get("executor", "serial")
        make_executor(data, self._origin, warn=True)  # to check it; to_dag makes a fresh one
        self.tasks: list[TaskSpec] = read_tasks(data, self.meta, self._origin)
        check_unique_names(self.tasks, self._origin)
        check_products(self.tasks, self._origin)

    @classmethod
    def find(cls, start: str | os.PathLike | None = None, env=None) -> DAGSpec:
        """The spec at ``$NBPIPE_ENTRY_POINT``, or ``pipeline.yaml`` in ``start`` (default: the
        working directory) or its nearest parent that has one."""
        return cls(find_entry_point(start), env=env)

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    def to_dag(self) -> DAG:
        """A new DAG with the spec's tasks, hooks and executor. Raises SpecError subclasses."""
        return assemble_dag(self.tasks, self.meta, self.data, self._origin)

    def __repr__(self) -> str:
        where = self.file or str(self.folder)
        return f"DAGSpec({where!r}, {len(self.tasks)} tasks)"
