"""Step 1 for the ``tasks`` list: each entry checked (keys, values), its kind decided (a notebook
path or a function's dotted path), its ``grid`` expanded and its products resolved, giving one
:class:`TaskSpec` per task. Nothing is imported and no notebook is read: that is ``to_dag``'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from nbpipe.spec import grid as grids
from nbpipe.spec.checks import HOOK_KEYS, Origin, check_keys
from nbpipe.spec.dotted import plain
from nbpipe.spec.errors import (
    GridError,
    InvalidValueError,
    MissingKeyError,
    UnsupportedKeyError,
    did_you_mean,
    listing,
)
from nbpipe.spec.extract import MISSING
from nbpipe.spec.yamlfile import YamlMap, line_of, value_line

TASK_KEYS = (
    "source",
    "product",
    "name",
    "params",
    "upstream",
    "grid",
    "nb_product_key",
    "nbconvert_export_kwargs",
    "nbconvert_exporter_name",
    "kernelspec_name",
    "papermill_params",
    "on_render",
    "on_finish",
    "on_failure",
    "class",
    "serializer",
    "unserializer",
)
NOTEBOOK_ONLY_KEYS = (
    "nb_product_key",
    "nbconvert_export_kwargs",
    "nbconvert_exporter_name",
    "kernelspec_name",
    "papermill_params",
)
#: Keys for function tasks only (PythonCallable's arguments).
FUNCTION_ONLY_KEYS = ("serializer", "unserializer")

#: Source extensions read as notebooks (``.ipynb``, or scripts jupytext reads).
NOTEBOOK_SUFFIXES = (".ipynb", ".py", ".r", ".jl", ".md", ".rmd", ".qmd")
#: ``class:`` values (Ploomber's task class names) and the kind of task each makes. Without
#: ``class``, a ``.sh`` source is a ShellScript, a notebook suffix a NotebookRunner, a dotted
#: path a PythonCallable (ScriptRunner is only ever chosen by ``class``, as in Ploomber).
TASK_CLASSES = {
    "NotebookRunner": "notebook",
    "PythonCallable": "function",
    "ScriptRunner": "script",
    "ShellScript": "shell",
}
CLASS_NAMES = {kind: name for name, kind in TASK_CLASSES.items()}
#: Ploomber's other task classes, which nbpipe does not have.
UNSUPPORTED_CLASSES = (
    "SQLScript",
    "SQLDump",
    "SQLTransfer",
    "SQLUpload",
    "PostgresCopyFrom",
    "DownloadFromURL",
    "Link",
    "Input",
    "UploadToS3",
)


@dataclass
class TaskSpec:
    """One task as the spec describes it, grid already expanded; paths are absolute."""

    name: str
    kind: str  # "notebook" | "function" | "script" | "shell" (see TASK_CLASSES)
    source: str  # as written in the spec
    line: int | None
    entry: YamlMap  # the task's mapping, for the lines of its keys
    product: Any  # an absolute path or a dict of them
    params: dict[str, Any] = field(default_factory=dict)
    upstream: list[str] | None = None  # given in the spec (extract_upstream: false)
    options: dict[str, Any] = field(default_factory=dict)  # the task class's keyword arguments
    grid_index: int | None = None
    grid: str | None = None  # the grid entry's name as written (shared by its tasks)
    file: str | None = None  # the file the task is written in (meta.import_tasks_from's)
    #: the folder its relative products resolve against, when not the spec's
    #: (meta.product_relative_to_source)
    product_folder: str | None = None

    @property
    def source_path(self) -> Path | None:
        return None if self.kind == "function" else Path(self.options["source"])


def read_tasks(data: Mapping, meta: dict[str, bool], origin: Origin) -> list[TaskSpec]:
    """The TaskSpecs of the spec's ``tasks`` list, in order, grids expanded."""
    if "tasks" not in data:
        raise origin.error(
            MissingKeyError,
            "the spec has no 'tasks' list",
            line_of(data) or 1,
            key="tasks",
        )
    entries = data["tasks"]
    if not isinstance(entries, list):
        raise origin.error(
            InvalidValueError,
            f"tasks must be a list of task mappings, not {type(entries).__name__}",
            value_line(data, "tasks"),
            key="tasks",
        )
    tasks: list[TaskSpec] = []
    for index, entry in enumerate(entries):
        tasks += _read_task(index, entry, line_of(entries, index), meta, origin)
    return tasks


def _read_task(
    index: int, entry: Any, line: int | None, meta: dict[str, bool], origin: Origin
) -> list[TaskSpec]:
    """The task of entry ``tasks[index]``, or its tasks when it has a ``grid``."""
    where = f"tasks[{index}]"
    if not isinstance(entry, dict):
        raise origin.error(
            InvalidValueError,
            f"{where} must be a mapping with at least 'source' and 'product', not "
            f"{type(entry).__name__} {entry!r}",
            line,
            key=where,
        )
    line = line_of(entry) or line
    check_keys(entry, TASK_KEYS, "task", f"task {where}", "", origin)
    if "source" not in entry:
        raise origin.error(MissingKeyError, f"{where} has no 'source'", line, key=f"{where}.source")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise origin.error(
            InvalidValueError,
            f"{where}.source must be a path to a notebook or a dotted path to a function, "
            f"not {source!r}",
            line_of(entry, "source"),
            key=f"{where}.source",
        )
    kind = _task_kind(entry, source, where, origin)
    _check_task_values(entry, where, kind, meta, origin)
    if meta["extract_product"] and kind in ("notebook", "script") and entry.get("product"):
        raise origin.error(
            InvalidValueError,
            f"{where}.product is read from the source's parameters cell when "
            "meta.extract_product is true (as in Ploomber); remove this key, or set "
            "meta.extract_product: false",
            line_of(entry, "product"),
            key=f"{where}.product",
        )
    _check_exporter_names(entry, where, origin)

    options: dict[str, Any] = {}
    if kind != "function":
        options["source"] = str(origin.resolve(source))
    if kind == "shell":  # Ploomber runs shell scripts where `ploomber build` runs: the project
        options["cwd"] = str(origin.folder)
    for keys, owner, owner_name in (
        (NOTEBOOK_ONLY_KEYS, "notebook", "notebook tasks (NotebookRunner)"),
        (FUNCTION_ONLY_KEYS, "function", "function tasks (PythonCallable)"),
    ):
        for key in keys:
            if key not in entry:
                continue
            if kind != owner:
                raise origin.error(
                    InvalidValueError,
                    f"{key} applies to {owner_name} only; {where} (source {source!r}) is a "
                    f"{CLASS_NAMES[kind]}",
                    line_of(entry, key),
                    key=f"{where}.{key}",
                )
            options[key] = plain(entry[key])

    base_name = entry.get("name")
    if base_name is None:
        base_name = PurePath(source).stem if kind != "function" else source.rpartition(".")[2]
    upstream = plain(entry.get("upstream")) if "upstream" in entry else None
    if isinstance(upstream, str):
        upstream = [upstream]
    # The product as written: resolved below, once grid placeholders are filled in.
    template = TaskSpec(
        name=str(base_name),
        kind=kind,
        source=source,
        line=line,
        entry=entry,
        product=entry.get("product", MISSING),
        params=plain(entry.get("params") or {}),
        upstream=upstream,
        options=options,
        file=origin.file,
        product_folder=(
            str(Path(options["source"]).parent)
            if meta.get("product_relative_to_source") and kind != "function"
            else None
        ),
    )
    if "grid" in entry:
        return _expand_grid(template, where, origin)
    if grids.has_placeholder(template.name) or _has_grid_placeholder(template.product):
        raise origin.error(
            GridError,
            f"{where} uses [[placeholders]] but has no 'grid'",
            line,
            key=f"{where}.grid",
        )
    product = read_product(template.product, entry, where, product_origin(template, origin))
    return [dataclasses.replace(template, product=product)]


def _expand_grid(template: TaskSpec, where: str, origin: Origin) -> list[TaskSpec]:
    """One task per combination of the entry's ``grid``, named and numbered as Ploomber does (see
    ``grid.py``): the name's [[placeholders]] filled in (else the index appended), every product
    numbered and its placeholders filled in, the combination's values added to its params."""
    entry, base_name = template.entry, template.name
    group = base_name
    if "name" not in entry:  # Ploomber requires a name; nbpipe numbers the source's: fit-0, ...
        base_name += "-"
    combos = grids.combinations(entry["grid"], origin.file, line_of(entry, "grid"))
    clash = sorted(set(template.params) & {name for combo in combos for name in combo})
    # [[placeholders]] may name params too: Ploomber renders names and products with both
    known = {*template.params, *(name for combo in combos for name in combo)}
    if clash:
        raise origin.error(
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
                base_name,
                {**template.params, **combo},
                known,
                origin.file,
                line_of(entry, "name"),
                f"{where}.name",
            )
        else:
            name = grids.indexed_name(base_name, i)
        if name in names_seen:
            raise origin.error(
                GridError,
                f"{where}: name {base_name!r} gives the same task name {name!r} to grid "
                f"combinations {names_seen[name]} and {i}; put a [[placeholder]] for every "
                "grid parameter in the name",
                line_of(entry, "name") or template.line,
                key=f"{where}.name",
            )
        names_seen[name] = i
        values = {**template.params, **combo}
        product = _grid_product(template.product, values, known, i, entry, where, origin)
        tasks.append(
            dataclasses.replace(
                template,
                name=name,
                product=read_product(product, entry, where, origin),
                params={**template.params, **plain(combo)},
                grid_index=i,
                grid=group,
            )
        )
    return tasks


def _check_task_values(
    entry: Mapping, where: str, kind: str, meta: dict[str, bool], origin: Origin
) -> None:
    """The types of a task's values, and the keys that only go together with others."""

    def must(key: str, ok: bool, expected: str) -> None:
        if key in entry and not ok:
            raise origin.error(
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
        raise origin.error(
            InvalidValueError,
            f"{where}.params cannot be named {' or '.join(reserved)}: nbpipe passes those",
            line_of(entry["params"], reserved[0]),
            key=f"{where}.params.{reserved[0]}",
        )
    if entry.get("upstream") and meta["extract_upstream"]:  # an empty list is fine
        raise origin.error(
            InvalidValueError,
            f"{where}.upstream is only read when meta.extract_upstream is false; with "
            "extraction on (the default), upstream tasks come from the source's "
            "`upstream` declaration. Remove this key, or set meta.extract_upstream: false",
            line_of(entry, "upstream"),
            key=f"{where}.upstream",
        )
    if "product" not in entry and not (meta["extract_product"] and kind in ("notebook", "script")):
        raise origin.error(
            MissingKeyError,
            f"{where} has no 'product'"
            + (
                " (meta.extract_product reads it from notebooks only)"
                if meta["extract_product"]
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
            raise origin.error(
                InvalidValueError,
                f"{where}.nb_product_key {listing(unknown)} is not a key of its product"
                f"{did_you_mean(unknown[0], entry['product'])}; product keys: "
                f"{listing(entry['product'])}",
                line_of(entry, "nb_product_key"),
                key=f"{where}.nb_product_key",
            )
    for key in (*HOOK_KEYS, *FUNCTION_ONLY_KEYS):
        if key in entry and not isinstance(entry[key], (str, dict)):
            raise origin.error(
                InvalidValueError,
                f"{where}.{key} must be a dotted path or a mapping with dotted_path",
                line_of(entry, key),
                key=f"{where}.{key}",
            )


def _grid_product(
    product: Any,
    combo: dict,
    known: set[str],
    index: int,
    entry: Mapping,
    where: str,
    origin: Origin,
) -> Any:
    """The product of one grid task, as written: numbered (``-<index>`` before the extensions,
    as Ploomber numbers every grid product), then its placeholders filled in."""
    if product is MISSING:
        return product
    line = value_line(entry, "product")

    def one(path: Any, key: str) -> Any:
        if not isinstance(path, str):
            return path  # read_product reports the type error
        return grids.substitute(
            grids.indexed_path(path, index), combo, known, origin.file, line, key
        )

    if isinstance(product, dict):
        return {key: one(path, f"{where}.product.{key}") for key, path in product.items()}
    return one(product, f"{where}.product")


def _check_exporter_names(entry: Mapping, where: str, origin: Origin) -> None:
    """``nbconvert_exporter_name`` as Ploomber takes it (one exporter name for one notebook
    product; with ``nb_product_key`` a list, a mapping of some of those keys to names), each an
    exporter that can run here: installed, with the programs, modules or browser it needs."""
    from nbpipe.notebooks.convert import exporter_problem

    if entry.get("nbconvert_exporter_name") is None:
        return
    names = entry["nbconvert_exporter_name"]
    keys = entry.get("nb_product_key", "nb")
    line, key = line_of(entry, "nbconvert_exporter_name"), f"{where}.nbconvert_exporter_name"

    def fail(message: str) -> None:
        raise origin.error(InvalidValueError, f"{key}: {message}", line, key=key)

    if isinstance(keys, list):
        if not isinstance(names, dict):
            fail(
                f"with nb_product_key a list, it maps some of those keys to exporter names "
                f"(e.g. {{{keys[0]}: webpdf}}), as in Ploomber; not {names!r}"
            )
        unknown = [name for name in names if name not in keys]
        if unknown:
            fail(f"{unknown[0]!r} is not in nb_product_key ({listing(keys)})")
        pairs = list(names.items())
    else:
        if not isinstance(names, str):
            fail(f"with one notebook product, it is one exporter name (e.g. webpdf), not {names!r}")
        pairs = [(keys, names)]
    product = entry.get("product")
    for product_key, name in pairs:
        if not isinstance(name, str):
            fail(f"exporter names are text, not {name!r}")
        path = product.get(product_key) if isinstance(product, dict) else product
        suffix = PurePath(path).suffix if isinstance(path, str) else None
        problem = exporter_problem(name, suffix)
        if problem:
            fail(problem)


def task_origin(task: TaskSpec, origin: Origin) -> Origin:
    """``origin`` for errors about ``task``: naming the file it is written in (a task from
    ``meta.import_tasks_from``'s file is not in the spec's)."""
    if task.file is None or task.file == origin.file:
        return origin
    return dataclasses.replace(origin, file=task.file)


def product_origin(task: TaskSpec, origin: Origin) -> Origin:
    """``task_origin``, resolving relative products against the task's source folder with
    ``meta.product_relative_to_source`` (not for grids, whose products Ploomber resolves
    against the spec's folder all the same, nor functions, which have no source folder)."""
    origin = task_origin(task, origin)
    if task.product_folder is None or task.grid_index is not None:
        return origin
    return dataclasses.replace(origin, folder=Path(task.product_folder))


def read_product(product: Any, entry: Mapping, where: str, origin: Origin) -> Any:
    """A product as the spec (or a notebook) gives it, as an absolute path or a dict of them;
    ``MISSING`` when it is to be read from the notebook (``meta.extract_product``)."""
    line = value_line(entry, "product")
    if product is MISSING:
        return MISSING  # taken from the notebook (meta.extract_product) in to_dag
    if isinstance(product, str) and product.strip():
        return str(origin.resolve(product))
    if isinstance(product, dict) and product:
        resolved = {}
        for key, path in product.items():
            if not isinstance(path, str) or not path.strip():
                raise origin.error(
                    InvalidValueError,
                    f"{where}.product.{key} must be a path, not {path!r}",
                    line_of(entry.get("product"), key) or line,
                    key=f"{where}.product.{key}",
                )
            resolved[str(key)] = str(origin.resolve(path))
        return resolved
    raise origin.error(
        InvalidValueError,
        f"{where}.product must be a path or a mapping of names to paths, not {product!r}",
        line,
        key=f"{where}.product",
    )


def _task_kind(entry: Mapping, source: str, where: str, origin: Origin) -> str:
    """What a task is: its ``class`` (Ploomber's task class name), else what its source looks
    like (``.sh``: a shell script; a notebook path; else a function's dotted path)."""
    if "class" not in entry:
        if PurePath(source).suffix == ".sh":
            return "shell"
        return "notebook" if _is_path(source, origin) else "function"
    name = entry["class"]
    line = line_of(entry, "class")
    if isinstance(name, str) and name in TASK_CLASSES:
        return TASK_CLASSES[name]
    if isinstance(name, str) and name in UNSUPPORTED_CLASSES:
        raise origin.error(
            UnsupportedKeyError,
            f"{where}.class {name} (a Ploomber task class) is not supported by nbpipe; "
            f"supported: {listing(TASK_CLASSES)}",
            line,
            key=f"{where}.class",
        )
    if isinstance(name, str) and name.rpartition(".")[2] in (*TASK_CLASSES, *UNSUPPORTED_CLASSES):
        short = name.rpartition(".")[2]
        raise origin.error(
            InvalidValueError,
            f"{where}.class must be a task class name, as in Ploomber: write class: {short} "
            f"(not {name!r})",
            line,
            key=f"{where}.class",
        )
    raise origin.error(
        InvalidValueError,
        f"{where}.class must be one of {listing(TASK_CLASSES)}, not {name!r}"
        f"{did_you_mean(str(name), TASK_CLASSES)}",
        line,
        key=f"{where}.class",
    )


def _is_path(source: str, origin: Origin) -> bool:
    """Whether ``source`` names a notebook file rather than a function's dotted path."""
    return (
        PurePath(source).suffix.lower() in NOTEBOOK_SUFFIXES
        or "/" in source
        or "\\" in source
        or (origin.folder / source).exists()
    )


def _has_grid_placeholder(product: Any) -> bool:
    if isinstance(product, dict):
        return any(grids.has_placeholder(path) for path in product.values())
    return grids.has_placeholder(product)
