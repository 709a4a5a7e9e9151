"""What both loading steps share: where the spec comes from (:class:`Origin`), the keys the format
knows, and the checks of the spec as a whole: keys (Ploomber's that nbpipe ignores or lacks
included), ``meta``, the executor, and task names and products (unique; never a source, nor a
file the pipeline is defined by).
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbpipe.spec.dotted import (
    check_keywords,
    defining_files,
    ensure_on_path,
    import_dotted,
    plain,
)
from nbpipe.spec.errors import (
    DuplicateTaskError,
    InvalidValueError,
    ProductError,
    SpecError,
    UnknownKeyError,
    UnsupportedKeyError,
    did_you_mean,
    listing,
)
from nbpipe.spec.extract import MISSING
from nbpipe.spec.yamlfile import line_of, value_line

if TYPE_CHECKING:
    from nbpipe.executors.base import Executor
    from nbpipe.spec.task_specs import TaskSpec

logger = logging.getLogger("nbpipe.spec")

TOP_LEVEL_KEYS = (
    "meta",
    "tasks",
    "executor",
    "on_render",
    "on_finish",
    "on_failure",
    "serializer",
    "unserializer",
)
META_KEYS = ("extract_upstream", "extract_product", "fork_kernels", "preload")
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
    "top": ("clients",),
    "meta": ("source_loader",),  # import_tasks_from is read by loader.py
    "task": ("client", "product_client", "debug_mode", "executor"),
}
#: Ploomber's Serial executor options that do not apply to nbpipe's.
IGNORED_EXECUTOR_OPTIONS = ("build_in_subprocess", "catch_exceptions", "catch_warnings")


@dataclass
class Origin:
    """Where a spec comes from: its file (None for a dict spec), which every error and warning
    names, and the folder its relative paths resolve against. Warnings gather in ``warnings``."""

    file: str | None
    folder: Path
    warnings: list[str] = field(default_factory=list)
    #: the files the pipeline is defined by (resolved path -> what it is), which no product
    #: may overwrite: the spec, its env file, the modules of functions, hooks and the executor
    protected: dict[str, str] = field(default_factory=dict)

    def protect(self, path: str | os.PathLike, what: str) -> None:
        self.protected.setdefault(os.path.realpath(path), what)

    def protect_object(self, obj: object, what: str) -> None:
        """Protects the files an imported function or class comes from (see defining_files)."""
        for path in defining_files(obj):
            self.protect(path, what)

    def error(self, cls: type[SpecError], message: str, line: int | None, **kwargs) -> SpecError:
        return cls(message, file=self.file, line=line, **kwargs)

    def warn(self, message: str, line: int | None) -> None:
        text = str(SpecError(message, file=self.file, line=line))
        self.warnings.append(text)
        logger.warning("%s", text)

    def resolve(self, path: str) -> Path:
        return Path(os.path.normpath(self.folder / os.path.expanduser(path)))


def check_keys(
    mapping: Mapping,
    known: tuple[str, ...],
    section: str,
    where: str,
    prefix: str,
    origin: Origin,
) -> None:
    """Every key of ``mapping`` is in ``known``, or an ignored Ploomber key of ``section``
    (a warning); an unsupported Ploomber key or an unknown one is an error."""
    for key in mapping:
        if key in known:
            continue
        line = line_of(mapping, key)
        if key in IGNORED.get(section, {}):
            origin.warn(f"{prefix}{key} is ignored: {IGNORED[section][key]}", line)
            continue
        if key in UNSUPPORTED.get(section, ()):
            raise origin.error(
                UnsupportedKeyError,
                f"{prefix}{key} (a Ploomber feature) is not supported by nbpipe",
                line,
                key=f"{prefix}{key}",
            )
        options = [*known, *IGNORED.get(section, {})]
        raise origin.error(
            UnknownKeyError,
            f"unknown key {key!r} in {where}{did_you_mean(key, options)}; "
            f"valid keys: {listing(known)}",
            line,
            key=f"{prefix}{key}",
        )


def read_meta(data: Mapping, origin: Origin) -> dict:
    """The spec's ``meta`` flags, and ``preload`` (module names for the kernel template, see
    ``nbpipe.notebooks.forking``), defaults filled in."""
    meta = data.get("meta")
    values: dict = {
        "extract_upstream": True,
        "extract_product": False,
        "fork_kernels": True,
        "preload": [],
    }
    if meta is None:
        return values
    if not isinstance(meta, dict):
        raise origin.error(
            InvalidValueError,
            f"meta must be a mapping, not {type(meta).__name__}",
            value_line(data, "meta"),
            key="meta",
        )
    check_keys(meta, META_KEYS, "meta", "meta", "meta.", origin)
    preload = meta.get("preload", [])
    if not isinstance(preload, list) or not all(
        isinstance(name, str) and name.replace(".", "_").isidentifier() for name in preload
    ):
        raise origin.error(
            InvalidValueError,
            f"meta.preload must be a list of module names (e.g. [pandas, numpy]), not {preload!r}",
            line_of(meta, "preload"),
            key="meta.preload",
        )
    values["preload"] = preload
    for key in META_KEYS:
        if key in meta and key != "preload":
            if not isinstance(meta[key], bool):
                raise origin.error(
                    InvalidValueError,
                    f"meta.{key} must be true or false, not {meta[key]!r}",
                    line_of(meta, key),
                    key=f"meta.{key}",
                )
            values[key] = meta[key]
    return values


def make_executor(data: Mapping, origin: Origin, warn: bool = False) -> Executor:
    """A new executor as the spec's ``executor`` describes it: ``serial`` (the default),
    ``parallel``, ``dask``, or a mapping with the ``dotted_path`` of an Executor class and its
    options. ``DAGSpec`` makes one to check the value (``warn``: about ignored Ploomber options), and
    ``to_dag`` a fresh one for each DAG."""
    from nbpipe.executors import EXECUTOR_NAMES, Executor, executor_named

    value = data.get("executor", "serial")
    line = value_line(data, "executor")
    if value is None or (isinstance(value, str) and value in EXECUTOR_NAMES):
        return executor_named(value or "serial")
    if isinstance(value, str):
        raise origin.error(
            InvalidValueError,
            f"executor must be 'serial', 'parallel', 'dask' or a mapping with a dotted_path, not "
            f"{value!r}{did_you_mean(value, ['serial', 'parallel', 'dask'])}",
            line,
            key="executor",
        )
    if not isinstance(value, dict) or "dotted_path" not in value:
        raise origin.error(
            InvalidValueError,
            "executor given as a mapping needs a 'dotted_path' (e.g. "
            "nbpipe.executors.Parallel) and the executor's options",
            line,
            key="executor",
        )
    ensure_on_path(str(origin.folder))
    cls = import_dotted(
        value["dotted_path"],
        file=origin.file,
        line=value_line(value, "dotted_path"),
        key="executor.dotted_path",
        folder=str(origin.folder),
    )
    origin.protect_object(cls, f"the module of the executor {value['dotted_path']!r}")
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise origin.error(
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
                origin.warn(f"executor.{key} is ignored (a Ploomber option)", line_of(value, key))
            continue
        options[key] = plain(option)
    check_keywords(cls, options, file=origin.file, line=line, key="executor")
    _check_no_stray_booleans(cls, options, value, origin)
    try:
        return cls(**options)
    except (TypeError, ValueError) as error:
        raise origin.error(InvalidValueError, f"executor: {error}", line, key="executor") from None


def _check_no_stray_booleans(cls: type, options: dict, value: Mapping, origin: Origin) -> None:
    """A true/false option where the executor wants something else is an error: Python counts
    ``True`` as the number 1, so ``processes: true`` would quietly mean one worker."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key, option in options.items():
        parameter = parameters.get(key)
        if not isinstance(option, bool) or parameter is None:
            continue
        annotation = parameter.annotation
        if annotation is parameter.empty:
            if parameter.default is parameter.empty or parameter.default is None:
                continue  # nothing says what it takes
            expected = type(parameter.default).__name__
            if isinstance(parameter.default, bool):
                continue
        else:
            expected = (
                annotation
                if isinstance(annotation, str)
                else getattr(annotation, "__name__", str(annotation))
            )
            if "bool" in expected or "Any" in expected:
                continue
        raise origin.error(
            InvalidValueError,
            f"executor.{key} must be {_described(key, expected)}, not a boolean "
            f"({str(option).lower()}: YAML reads true/false, yes/no and on/off as booleans)",
            line_of(value, key),
            key=f"executor.{key}",
        )


def _described(key: str, expected: str) -> str:
    if key == "processes":
        return "a whole number of worker processes (e.g. 2), or null for one per CPU"
    return f"a value of type {expected}"


def check_unique_names(tasks: list[TaskSpec], origin: Origin) -> None:
    """No two tasks share a name (grid expansion included)."""
    names: dict[str, TaskSpec] = {}
    for task in tasks:
        if task.name in names:
            first = names[task.name]
            raise origin.error(
                DuplicateTaskError,
                f"two tasks are named {task.name!r} (the other is on line {first.line}); "
                "give one of them a different 'name'",
                task.line,
                key="name",
                task=task.name,
            )
        names[task.name] = task


def check_products(tasks: list[TaskSpec], origin: Origin) -> None:
    """Each product belongs to one task, and neither is nor holds (as a folder product) a task's
    source notebook or a file the pipeline is defined by (``origin.protected``). Paths compare
    resolved, so a symlinked alias of a folder does not get around the check. Run again by
    ``to_dag`` once modules are imported and products read from notebooks are known."""
    owners: dict[str, TaskSpec] = {}
    sources = {
        os.path.realpath(task.source_path): task for task in tasks if task.source_path is not None
    }
    # every folder above a protected file or a source: a product there would replace it all
    holders: dict[str, tuple[str, str]] = {}
    for path, what in origin.protected.items():
        for folder in Path(path).parents:
            holders.setdefault(str(folder), (what, path))
    for path, owner in sources.items():
        for folder in Path(path).parents:
            holders.setdefault(str(folder), (f"the source of task {owner.name!r}", path))
    for task in tasks:
        if task.product is MISSING:
            continue
        items = task.product.items() if isinstance(task.product, dict) else [(None, task.product)]
        for key, path in items:
            real = os.path.realpath(path)
            problem = None
            if real in origin.protected:
                problem = (
                    f"task {task.name!r} has product {path}, which is {origin.protected[real]}; "
                    "a build never overwrites the files that define the pipeline: write "
                    "products elsewhere (e.g. output/)"
                )
            elif real in sources:
                owner = sources[real]
                problem = (
                    f"task {task.name!r} has product {path}, which is "
                    + ("its own source" if owner is task else f"the source of task {owner.name!r}")
                    + "; a build never overwrites a notebook: write products elsewhere "
                    "(e.g. output/)"
                )
            elif real in holders:
                what, held = holders[real]
                problem = (
                    f"task {task.name!r} has product {path}, a folder that holds {what} "
                    f"({held}); a folder product replaces the whole folder: write products "
                    "elsewhere (e.g. output/)"
                )
            elif path in owners and owners[path] is not task:
                other = owners[path]
                problem = (
                    f"tasks {other.name!r} (line {other.line}) and {task.name!r} both write "
                    f"{path}; each product must belong to one task"
                )
            if problem:
                raise origin.error(
                    ProductError, problem, _product_line(task, key), key="product", task=task.name
                )
            owners[path] = task


def _product_line(task: TaskSpec, key: str | None) -> int | None:
    """The line of the task's product (of its entry ``key`` when the product is a mapping)."""
    product = task.entry.get("product")
    if key is not None and isinstance(product, dict) and key in product:
        return line_of(product, key)
    return value_line(task.entry, "product") or task.line
