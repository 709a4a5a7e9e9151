"""``DAGSpec``: a ``pipeline.yaml`` (Ploomber's format) turned into a :class:`nbpipe.DAG`.

Loading happens in two steps, each reporting problems with the file and line to fix:

1. ``DAGSpec(path)`` reads the YAML (keeping line numbers), fills in ``{{placeholders}}`` from
   ``env.yaml``, checks every key and value, and expands ``grid`` tasks. Nothing is imported.
2. ``spec.to_dag()`` imports functions and hooks (the spec's folder goes first on ``sys.path``),
   reads each notebook's parameters cell for its ``upstream``, wires the tasks and checks the
   graph: unknown upstream names, cycles, two tasks writing one product, a product that would
   overwrite a source.

Relative paths (sources, products) resolve against the spec's folder, never the caller's working
directory. See ``docs/spec.md`` for the format.
"""

from __future__ import annotations

import fnmatch
import graphlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from nbpipe.spec import grid as grids
from nbpipe.spec.dotted import (
    check_keywords,
    ensure_on_path,
    import_callable,
    import_dotted,
    plain,
)
from nbpipe.spec.env import Env
from nbpipe.spec.errors import (
    CycleError,
    DuplicateTaskError,
    GridError,
    InvalidValueError,
    MissingKeyError,
    MissingSourceError,
    ProductError,
    SpecError,
    SpecNotFoundError,
    UnknownKeyError,
    UnsupportedKeyError,
    UpstreamError,
    did_you_mean,
    listing,
)
from nbpipe.spec.extract import MISSING, function_upstream, read_notebook_declaration
from nbpipe.spec.yamlfile import YamlMap, line_of, load_yaml_file, value_line

if TYPE_CHECKING:
    from nbpipe.dag import DAG
    from nbpipe.executors.base import Executor

logger = logging.getLogger("nbpipe.spec")

ENTRY_POINT_VARIABLE = "NBPIPE_ENTRY_POINT"
DEFAULT_NAME = "pipeline.yaml"

TOP_LEVEL_KEYS = ("meta", "tasks", "executor", "on_render", "on_finish", "on_failure")
META_KEYS = ("extract_upstream", "extract_product")
TASK_KEYS = (
    "source",
    "product",
    "name",
    "params",
    "upstream",
    "grid",
    "nb_product_key",
    "nbconvert_export_kwargs",
    "kernelspec_name",
    "papermill_params",
    "on_render",
    "on_finish",
    "on_failure",
)
NOTEBOOK_ONLY_KEYS = (
    "nb_product_key",
    "nbconvert_export_kwargs",
    "kernelspec_name",
    "papermill_params",
)
HOOK_KEYS = ("on_render", "on_finish", "on_failure")

#: Ploomber keys that change nothing in nbpipe: accepted with a warning.
IGNORED = {
    "meta": {
        "jupyter_hot_reload": "nbpipe has no Jupyter contents-manager integration to reload",
        "jupyter_functions_as_notebooks": "function tasks are not opened as notebooks",
        "product_default_class": "every product is a file",
    },
    "task": {
        "static_analysis": "parameters are not checked statically",
        "local_execution": "notebooks always run with their folder as working directory",
        "check_if_kernel_installed": "kernels are always checked before a build",
    },
}
#: Ploomber keys whose feature nbpipe does not have: an error that says so.
UNSUPPORTED = {
    "top": ("clients", "serializer", "unserializer"),
    "meta": ("source_loader", "import_tasks_from"),
    "task": ("client", "product_client", "serializer", "unserializer", "debug_mode", "executor"),
}
#: Ploomber's Serial executor options that do not apply to nbpipe's.
IGNORED_EXECUTOR_OPTIONS = ("build_in_subprocess", "catch_exceptions", "catch_warnings")

#: Source extensions read as notebooks (``.ipynb``, or scripts jupytext reads).
NOTEBOOK_SUFFIXES = (".ipynb", ".py", ".r", ".jl", ".md", ".rmd", ".qmd")


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


@dataclass
class TaskSpec:
    """One task as the spec describes it, grid already expanded; paths are absolute."""

    name: str
    kind: str  # "notebook" | "function"
    source: str  # as written in the spec
    line: int | None
    entry: YamlMap  # the task's mapping, for the lines of its keys
    product: Any  # an absolute path or a dict of them
    params: dict[str, Any] = field(default_factory=dict)
    upstream: list[str] | None = None  # given in the spec (extract_upstream: false)
    options: dict[str, Any] = field(default_factory=dict)  # NotebookRunner keyword arguments
    grid_index: int | None = None

    @property
    def source_path(self) -> Path | None:
        return None if self.kind == "function" else Path(self.options["source"])


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
        self.env = Env.for_spec(self.path, self.folder, env)
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
        self._check_keys(data, TOP_LEVEL_KEYS, "top", "the spec's top level", "")
        self.meta = self._meta(data.get("meta"))
        self.executor_value = data.get("executor", "serial")
        self._executor(warn=True)  # validate now; built again (fresh) in to_dag
        self.tasks: list[TaskSpec] = self._tasks(data)
        self._check_names_and_products()

    @classmethod
    def find(cls, start: str | os.PathLike | None = None, env=None) -> DAGSpec:
        """The spec at ``$NBPIPE_ENTRY_POINT``, or ``pipeline.yaml`` in ``start`` (default: the
        working directory) or its nearest parent that has one."""
        return cls(find_entry_point(start), env=env)

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    # -- helpers for errors -----------------------------------------------------------------
    def _error(self, cls: type[SpecError], message: str, line: int | None, **kwargs) -> SpecError:
        return cls(message, file=self.file, line=line, **kwargs)

    def _warn(self, message: str, line: int | None) -> None:
        text = str(SpecError(message, file=self.file, line=line))
        self.warnings.append(text)
        logger.warning("%s", text)

    def _check_keys(
        self, mapping: Mapping, known: tuple[str, ...], section: str, where: str, prefix: str
    ) -> None:
        for key in mapping:
            if key in known:
                continue
            line = line_of(mapping, key)
            if key in IGNORED.get(section, {}):
                self._warn(f"{prefix}{key} is ignored: {IGNORED[section][key]}", line)
                continue
            if key in UNSUPPORTED.get(section, ()):
                raise self._error(
                    UnsupportedKeyError,
                    f"{prefix}{key} (a Ploomber feature) is not supported by nbpipe",
                    line,
                    key=f"{prefix}{key}",
                )
            options = [*known, *IGNORED.get(section, {})]
            raise self._error(
                UnknownKeyError,
                f"unknown key {key!r} in {where}{did_you_mean(key, options)}; "
                f"valid keys: {listing(known)}",
                line,
                key=f"{prefix}{key}",
            )

    # -- meta and executor ------------------------------------------------------------------
    def _meta(self, meta: Any) -> dict[str, bool]:
        values = {"extract_upstream": True, "extract_product": False}
        if meta is None:
            return values
        if not isinstance(meta, dict):
            raise self._error(
                InvalidValueError,
                f"meta must be a mapping, not {type(meta).__name__}",
                value_line(self.data, "meta"),
                key="meta",
            )
        self._check_keys(meta, META_KEYS, "meta", "meta", "meta.")
        for key in META_KEYS:
            if key in meta:
                if not isinstance(meta[key], bool):
                    raise self._error(
                        InvalidValueError,
                        f"meta.{key} must be true or false, not {meta[key]!r}",
                        line_of(meta, key),
                        key=f"meta.{key}",
                    )
                values[key] = meta[key]
        return values

    def _executor(self, warn: bool = False) -> Executor:
        from nbpipe.executors import Executor, Parallel, Serial

        value = self.executor_value
        line = value_line(self.data, "executor")
        if value in ("serial", None):
            return Serial()
        if value == "parallel":
            return Parallel()
        if isinstance(value, str):
            raise self._error(
                InvalidValueError,
                f"executor must be 'serial', 'parallel' or a mapping with a dotted_path, not "
                f"{value!r}{did_you_mean(value, ['serial', 'parallel'])}",
                line,
                key="executor",
            )
        if not isinstance(value, dict) or "dotted_path" not in value:
            raise self._error(
                InvalidValueError,
                "executor given as a mapping needs a 'dotted_path' (e.g. "
                "nbpipe.executors.Parallel) and the executor's options",
                line,
                key="executor",
            )
        ensure_on_path(str(self.folder))
        cls = import_dotted(
            value["dotted_path"],
            file=self.file,
            line=value_line(value, "dotted_path"),
            key="executor.dotted_path",
            folder=str(self.folder),
        )
        if not (isinstance(cls, type) and issubclass(cls, Executor)):
            raise self._error(
                InvalidValueError,
                f"executor.dotted_path {value['dotted_path']!r} is not an nbpipe executor class "
                "(nbpipe.executors.Serial, nbpipe.executors.Parallel or a subclass of "
                "nbpipe.executors.Executor)",
                value_line(value, "dotted_path"),
                key="executor.dotted_path",
            )
        options = {}
        for key, option in value.items():
            if key == "dotted_path":
                continue
            if key in IGNORED_EXECUTOR_OPTIONS:
                if warn:
                    self._warn(
                        f"executor.{key} is ignored (a Ploomber option)", line_of(value, key)
                    )
                continue
            options[key] = plain(option)
        check_keywords(cls, options, file=self.file, line=line, key="executor")
        try:
            return cls(**options)
        except (TypeError, ValueError) as error:
            raise self._error(
                InvalidValueError, f"executor: {error}", line, key="executor"
            ) from None

    # -- tasks ------------------------------------------------------------------------------
    def _tasks(self, data: Mapping) -> list[TaskSpec]:
        if "tasks" not in data:
            raise self._error(
                MissingKeyError,
                "the spec has no 'tasks' list",
                line_of(data) or 1,
                key="tasks",
            )
        entries = data["tasks"]
        if not isinstance(entries, list):
            raise self._error(
                InvalidValueError,
                f"tasks must be a list of task mappings, not {type(entries).__name__}",
                value_line(data, "tasks"),
                key="tasks",
            )
        tasks: list[TaskSpec] = []
        for index, entry in enumerate(entries):
            tasks += self._task(index, entry, line_of(entries, index))
        return tasks

    def _task(self, index: int, entry: Any, line: int | None) -> list[TaskSpec]:
        where = f"tasks[{index}]"
        if not isinstance(entry, dict):
            raise self._error(
                InvalidValueError,
                f"{where} must be a mapping with at least 'source' and 'product', not "
                f"{type(entry).__name__} {entry!r}",
                line,
                key=where,
            )
        line = line_of(entry) or line
        self._check_keys(entry, TASK_KEYS, "task", f"task {where}", "")
        if "source" not in entry:
            raise self._error(
                MissingKeyError, f"{where} has no 'source'", line, key=f"{where}.source"
            )
        source = entry["source"]
        if not isinstance(source, str) or not source.strip():
            raise self._error(
                InvalidValueError,
                f"{where}.source must be a path to a notebook or a dotted path to a function, "
                f"not {source!r}",
                line_of(entry, "source"),
                key=f"{where}.source",
            )
        kind = "notebook" if self._is_path(source) else "function"
        self._check_task_values(entry, where, kind)

        options: dict[str, Any] = {}
        if kind == "notebook":
            path = self._resolve(source)
            options["source"] = str(path)
            for key in NOTEBOOK_ONLY_KEYS:
                if key in entry:
                    options[key] = plain(entry[key])
        else:
            for key in NOTEBOOK_ONLY_KEYS:
                if key in entry:
                    raise self._error(
                        InvalidValueError,
                        f"{key} applies to notebook tasks only; {where}'s source {source!r} is a "
                        "function",
                        line_of(entry, key),
                        key=f"{where}.{key}",
                    )

        base_name = entry.get("name")
        if base_name is None:
            base_name = PurePath(source).stem if kind == "notebook" else source.rpartition(".")[2]
        base_name = str(base_name)
        product = entry.get("product", MISSING)
        params = plain(entry.get("params") or {})
        upstream = plain(entry.get("upstream")) if "upstream" in entry else None
        if isinstance(upstream, str):
            upstream = [upstream]

        if "grid" not in entry:
            if grids.has_placeholder(base_name) or _has_grid_placeholder(product):
                raise self._error(
                    GridError,
                    f"{where} uses [[placeholders]] but has no 'grid'",
                    line,
                    key=f"{where}.grid",
                )
            return [
                TaskSpec(
                    base_name,
                    kind,
                    source,
                    line,
                    entry,
                    self._product(product, entry, where),
                    params,
                    upstream,
                    options,
                )
            ]

        combos = grids.combinations(entry["grid"], self.file, line_of(entry, "grid"))
        clash = sorted(set(params) & {name for combo in combos for name in combo})
        if clash:
            raise self._error(
                GridError,
                f"{where}: {', '.join(map(repr, clash))} is both in params and in the grid; keep "
                "it in one",
                line_of(entry, "grid"),
                key=f"{where}.grid",
            )
        tasks = []
        names_seen: dict[str, int] = {}
        for i, combo in enumerate(combos):
            if grids.has_placeholder(base_name):
                name = grids.substitute(
                    base_name, combo, self.file, line_of(entry, "name"), f"{where}.name"
                )
            else:
                name = grids.indexed_name(base_name, i)
            if name in names_seen:
                raise self._error(
                    GridError,
                    f"{where}: name {base_name!r} gives the same task name {name!r} to grid "
                    f"combinations {names_seen[name]} and {i}; put a [[placeholder]] for every "
                    "grid parameter in the name",
                    line_of(entry, "name") or line,
                    key=f"{where}.name",
                )
            names_seen[name] = i
            grid_product = self._grid_product(product, combo, i, entry, where)
            tasks.append(
                TaskSpec(
                    name,
                    kind,
                    source,
                    line,
                    entry,
                    self._product(grid_product, entry, where),
                    {**params, **plain(combo)},
                    upstream,
                    options,
                    grid_index=i,
                )
            )
        return tasks

    def _check_task_values(self, entry: Mapping, where: str, kind: str) -> None:
        def must(key: str, ok: bool, expected: str) -> None:
            if key in entry and not ok:
                raise self._error(
                    InvalidValueError,
                    f"{where}.{key} must be {expected}, not {entry[key]!r}",
                    line_of(entry, key),
                    key=f"{where}.{key}",
                )

        value = entry.get
        must("name", isinstance(value("name"), (str, int)), "a string")
        must("params", isinstance(value("params"), dict) or value("params") is None, "a mapping")
        must(
            "upstream",
            value("upstream") is None
            or isinstance(value("upstream"), str)
            or (
                isinstance(value("upstream"), list)
                and all(isinstance(n, str) for n in value("upstream"))
            ),
            "a list of task names",
        )
        must(
            "nb_product_key",
            isinstance(value("nb_product_key"), str)
            or (
                isinstance(value("nb_product_key"), list)
                and value("nb_product_key")
                and all(isinstance(k, str) for k in value("nb_product_key"))
            ),
            "a product key or a list of them",
        )
        must("kernelspec_name", isinstance(value("kernelspec_name"), str), "a kernel name")
        for key in ("papermill_params", "nbconvert_export_kwargs"):
            must(key, isinstance(value(key), dict) or value(key) is None, "a mapping")
        reserved = [key for key in (value("params") or {}) if key in ("product", "upstream")]
        if reserved:
            raise self._error(
                InvalidValueError,
                f"{where}.params cannot be named {' or '.join(reserved)}: nbpipe passes those",
                line_of(entry["params"], reserved[0]),
                key=f"{where}.params.{reserved[0]}",
            )
        if "upstream" in entry and self.meta["extract_upstream"]:
            raise self._error(
                InvalidValueError,
                f"{where}.upstream is only read when meta.extract_upstream is false; with "
                "extraction on (the default), upstream tasks come from the source's "
                "`upstream` declaration. Remove this key, or set meta.extract_upstream: false",
                line_of(entry, "upstream"),
                key=f"{where}.upstream",
            )
        if "product" not in entry and not (self.meta["extract_product"] and kind == "notebook"):
            raise self._error(
                MissingKeyError,
                f"{where} has no 'product'"
                + (
                    " (meta.extract_product reads it from notebooks only)"
                    if self.meta["extract_product"]
                    else ""
                ),
                line_of(entry),
                key=f"{where}.product",
            )
        if "nb_product_key" in entry and isinstance(entry.get("product"), dict):
            keys = entry["nb_product_key"]
            keys = [keys] if isinstance(keys, str) else keys
            unknown = [key for key in keys if key not in entry["product"]]
            if unknown:
                raise self._error(
                    InvalidValueError,
                    f"{where}.nb_product_key {listing(unknown)} is not a key of its product"
                    f"{did_you_mean(unknown[0], entry['product'])}; product keys: "
                    f"{listing(entry['product'])}",
                    line_of(entry, "nb_product_key"),
                    key=f"{where}.nb_product_key",
                )
        for key in HOOK_KEYS:
            if key in entry and not isinstance(entry[key], (str, dict)):
                raise self._error(
                    InvalidValueError,
                    f"{where}.{key} must be a dotted path or a mapping with dotted_path",
                    line_of(entry, key),
                    key=f"{where}.{key}",
                )

    def _grid_product(self, product: Any, combo: dict, index: int, entry: Mapping, where: str):
        if product is MISSING:
            return product
        line = value_line(entry, "product")

        def one(path: Any, key: str) -> Any:
            if not isinstance(path, str):
                return path  # _product reports the type error
            if grids.has_placeholder(path):
                return grids.substitute(path, combo, self.file, line, key)
            return grids.indexed_path(path, index)

        if isinstance(product, dict):
            return {key: one(path, f"{where}.product.{key}") for key, path in product.items()}
        return one(product, f"{where}.product")

    def _product(self, product: Any, entry: Mapping, where: str) -> Any:
        line = value_line(entry, "product")
        if product is MISSING:
            return MISSING  # taken from the notebook (meta.extract_product) in to_dag
        if isinstance(product, str) and product.strip():
            return str(self._resolve(product))
        if isinstance(product, dict) and product:
            resolved = {}
            for key, path in product.items():
                if not isinstance(path, str) or not path.strip():
                    raise self._error(
                        InvalidValueError,
                        f"{where}.product.{key} must be a path, not {path!r}",
                        line_of(entry.get("product"), key) or line,
                        key=f"{where}.product.{key}",
                    )
                resolved[str(key)] = str(self._resolve(path))
            return resolved
        raise self._error(
            InvalidValueError,
            f"{where}.product must be a path or a mapping of names to paths, not {product!r}",
            line,
            key=f"{where}.product",
        )

    def _is_path(self, source: str) -> bool:
        return (
            PurePath(source).suffix.lower() in NOTEBOOK_SUFFIXES
            or "/" in source
            or "\\" in source
            or (self.folder / source).exists()
        )

    def _resolve(self, path: str) -> Path:
        return Path(os.path.normpath(self.folder / os.path.expanduser(path)))

    def _check_names_and_products(self) -> None:
        names: dict[str, TaskSpec] = {}
        for task in self.tasks:
            if task.name in names:
                first = names[task.name]
                raise self._error(
                    DuplicateTaskError,
                    f"two tasks are named {task.name!r} (the other is on line {first.line}); "
                    "give one of them a different 'name'",
                    task.line,
                    key="name",
                    task=task.name,
                )
            names[task.name] = task
        self._check_products(self.tasks)

    def _check_products(self, tasks: list[TaskSpec]) -> None:
        owners: dict[str, TaskSpec] = {}
        sources = {str(task.source_path): task for task in tasks if task.source_path is not None}
        for task in tasks:
            if task.product is MISSING:
                continue
            paths = task.product.values() if isinstance(task.product, dict) else [task.product]
            line = value_line(task.entry, "product") or task.line
            for path in paths:
                if path in sources:
                    owner = sources[path]
                    raise self._error(
                        ProductError,
                        f"task {task.name!r} has product {path}, which is "
                        + (
                            "its own source"
                            if owner is task
                            else f"the source of task {owner.name!r}"
                        )
                        + "; a build never overwrites a notebook: write products elsewhere "
                        "(e.g. output/)",
                        line,
                        key="product",
                        task=task.name,
                    )
                if path in owners and owners[path] is not task:
                    other = owners[path]
                    raise self._error(
                        ProductError,
                        f"tasks {other.name!r} (line {other.line}) and {task.name!r} both write "
                        f"{path}; each product must belong to one task",
                        line,
                        key="product",
                        task=task.name,
                    )
                owners[path] = task

    # -- building the DAG -------------------------------------------------------------------
    def to_dag(self) -> DAG:
        """A new DAG with the spec's tasks, hooks and executor. Raises SpecError subclasses."""
        from nbpipe.dag import DAG

        ensure_on_path(str(self.folder))
        dag = DAG(name=self.folder.name, executor=self._executor())
        declared: dict[str, tuple[list[str], str | None, int | None]] = {}
        functions: dict[str, Callable] = {}
        notebooks: dict[str, Any] = {}
        for task in self.tasks:
            if task.kind == "function":
                fn = functions.get(task.source) or self._import_function(task)
                functions[task.source] = fn
                declared[task.name] = self._function_upstream(task, fn)
                self._add_function(dag, task, fn)
            else:
                declaration = notebooks.get(task.options["source"]) or self._read_notebook(task)
                notebooks[task.options["source"]] = declaration
                declared[task.name] = self._notebook_upstream(task, declaration)
                self._add_notebook(dag, task, declaration)
            self._set_hooks(dag[task.name], task.entry)
        self._check_products(self.tasks)
        self._check_function_sources(functions)
        self._wire(dag, declared)
        for key in HOOK_KEYS:
            if key in self.data and self.data[key] is not None:
                setattr(dag, key, self._hook(self.data, key))
        return dag

    def _import_function(self, task: TaskSpec) -> Callable:
        if "." not in task.source.strip("."):
            raise self._error(
                MissingSourceError,
                f"source {task.source!r} of task {task.name!r} is neither a notebook file (no "
                f"such file in {self.folder}) nor a dotted path to a function such as "
                "'tasks.make_data'",
                line_of(task.entry, "source"),
                key="source",
                task=task.name,
            )
        return import_callable(
            task.source,
            file=self.file,
            line=line_of(task.entry, "source"),
            key="source",
            what="function",
            folder=str(self.folder),
        )

    def _add_function(self, dag: DAG, task: TaskSpec, fn: Callable) -> None:
        from nbpipe.tasks import PythonCallable

        PythonCallable(fn, task.product, dag, name=task.name, params=task.params)

    def _read_notebook(self, task: TaskSpec):
        from nbpipe.notebooks.source import NotebookSource

        path = Path(task.options["source"])
        line = line_of(task.entry, "source")
        if not path.exists():
            nearby = sorted(p.name for p in path.parent.glob("*") if p.suffix in (".py", ".ipynb"))
            raise self._error(
                MissingSourceError,
                f"task {task.name!r}: source {path} does not exist"
                + (
                    f"{did_you_mean(path.name, nearby)}"
                    if path.parent.is_dir()
                    else f" (no folder {path.parent})"
                ),
                line,
                key="source",
                task=task.name,
            )
        try:
            notebook = NotebookSource.read(path)
        except Exception as error:
            raise self._error(
                MissingSourceError,
                f"task {task.name!r}: cannot read notebook {path}: {error}",
                line,
                key="source",
                task=task.name,
            ) from None
        return read_notebook_declaration(path, notebook.notebook)

    def _add_notebook(self, dag: DAG, task: TaskSpec, declaration) -> None:
        from nbpipe.tasks import NotebookRunner

        if task.product is MISSING:
            task.product = self._extracted_product(task, declaration)
        options = dict(task.options)
        source = options.pop("source")
        NotebookRunner(source, task.product, dag, name=task.name, params=task.params, **options)

    def _extracted_product(self, task: TaskSpec, declaration) -> Any:
        product = declaration.product
        if product is MISSING or product is None:
            raise self._error(
                MissingKeyError,
                f"task {task.name!r} has no 'product', and meta.extract_product found no "
                f"`product = ...` in the parameters cell of {task.options['source']}",
                task.line,
                key="product",
                task=task.name,
            )
        entry = YamlMap({"product": product}, line=task.line)
        return self._product(product, entry, f"task {task.name!r} (from its notebook)")

    def _check_function_sources(self, functions: dict[str, Callable]) -> None:
        sources = {}
        for fn in functions.values():
            try:
                path = inspect.getsourcefile(fn)
            except TypeError:
                continue
            if path:
                sources[os.path.normpath(os.path.abspath(path))] = fn
        for task in self.tasks:
            paths = task.product.values() if isinstance(task.product, dict) else [task.product]
            for path in paths:
                if path in sources:
                    raise self._error(
                        ProductError,
                        f"task {task.name!r} has product {path}, which is the module that "
                        "defines a task's function; a build would overwrite your code",
                        value_line(task.entry, "product") or task.line,
                        key="product",
                        task=task.name,
                    )

    # -- upstream ---------------------------------------------------------------------------
    def _function_upstream(self, task: TaskSpec, fn: Callable):
        if not self.meta["extract_upstream"]:
            return task.upstream or [], self.file, line_of(task.entry, "upstream") or task.line
        names = function_upstream(fn)
        try:
            file = inspect.getsourcefile(fn)
        except TypeError:
            file = None
        line = next(iter(names.values()), None)
        return list(names), file, line

    def _notebook_upstream(self, task: TaskSpec, declaration):
        if not self.meta["extract_upstream"]:
            return task.upstream or [], self.file, line_of(task.entry, "upstream") or task.line
        return declaration.upstream or [], task.options["source"], declaration.line

    def _wire(self, dag: DAG, declared: dict[str, tuple[list[str], str | None, int | None]]):
        names = [task.name for task in self.tasks]
        graph: dict[str, list[str]] = {}
        for task in self.tasks:
            wanted, file, line = declared[task.name]
            parents: list[str] = []
            for name in wanted:
                if any(char in name for char in "*?["):
                    matches = [n for n in names if fnmatch.fnmatchcase(n, name) and n != task.name]
                    if not matches:
                        raise UpstreamError(
                            f"task {task.name!r} declares upstream {name!r}, which matches no "
                            f"task; tasks: {listing(names)}",
                            file=file,
                            line=line,
                            key="upstream",
                            task=task.name,
                        )
                    parents += matches
                elif name not in names or name == task.name:
                    problem = (
                        "itself"
                        if name == task.name
                        else f"{name!r}, which is not a task in {self.file or 'the spec'}"
                    )
                    raise UpstreamError(
                        f"task {task.name!r} declares upstream {problem}"
                        f"{did_you_mean(name, [n for n in names if n != task.name])}; "
                        f"tasks: {listing(names)}",
                        file=file,
                        line=line,
                        key="upstream",
                        task=task.name,
                    )
                else:
                    parents.append(name)
            graph[task.name] = list(dict.fromkeys(parents))
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as error:
            cycle = list(reversed(error.args[1]))
            first = next(t for t in self.tasks if t.name == cycle[0])
            raise self._error(
                CycleError,
                f"tasks depend on each other in a cycle: {' -> '.join(cycle)} (each one's "
                "upstream declaration names the next's upstream); remove one of these links",
                first.line,
                task=first.name,
            ) from None
        for name, parents in graph.items():
            for parent in parents:
                dag[name].set_upstream(dag[parent])

    # -- hooks ------------------------------------------------------------------------------
    def _set_hooks(self, target: Any, entry: Mapping) -> None:
        for key in HOOK_KEYS:
            if key in entry and entry[key] is not None:
                setattr(target, key, self._hook(entry, key))

    def _hook(self, entry: Mapping, key: str) -> Callable:
        return import_callable(
            entry[key],
            file=self.file,
            line=line_of(entry, key),
            key=key,
            what="hook function",
            folder=str(self.folder),
        )

    def __repr__(self) -> str:
        where = self.file or str(self.folder)
        return f"DAGSpec({where!r}, {len(self.tasks)} tasks)"


def _has_grid_placeholder(product: Any) -> bool:
    if isinstance(product, dict):
        return any(grids.has_placeholder(path) for path in product.values())
    return grids.has_placeholder(product)
