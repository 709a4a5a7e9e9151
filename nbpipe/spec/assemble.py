"""Step 2, ``DAGSpec.to_dag()``: the TaskSpecs of step 1 made into a DAG.

Functions and hooks are imported (the spec's folder goes first on ``sys.path``), each notebook's
parameters cell is read for its ``upstream`` (and, with ``meta.extract_product``, its
``product``), the tasks are created and wired, and the graph is checked: unknown upstream names,
cycles, two tasks writing one product, a product that would overwrite (or, as a folder, hold) a
source or a file the pipeline is defined by: the spec, its env file, the module of a task's
function, of a hook or of the executor. Each function module and notebook is read once, however
many grid tasks use it.
"""

from __future__ import annotations

import fnmatch
import graphlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpipe.spec.checks import HOOK_KEYS, Origin, check_products, make_executor
from nbpipe.spec.dotted import ensure_on_path, import_callable
from nbpipe.spec.errors import (
    CycleError,
    MissingKeyError,
    MissingSourceError,
    UpstreamError,
    did_you_mean,
    listing,
)
from nbpipe.spec.extract import MISSING, Declaration, function_upstream, read_notebook_declaration
from nbpipe.spec.task_specs import TaskSpec, product_origin, read_product, task_origin
from nbpipe.spec.yamlfile import YamlMap, line_of

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

#: A task's upstream names as declared, and where (file, line) for the errors about them.
Declared = tuple[list[str], str | None, int | None]


def assemble_dag(
    tasks: list[TaskSpec], meta: dict[str, bool], data: Mapping, origin: Origin
) -> DAG:
    """A new DAG with the tasks, the spec's hooks (``data``'s top level) and a fresh executor."""
    from nbpipe.engine.dag import DAG

    ensure_on_path(str(origin.folder))
    dag = DAG(
        name=origin.folder.name,
        executor=make_executor(data, origin),
        preload=meta.get("preload", ()),
        fork_kernels=meta.get("fork_kernels", True),
    )
    declared: dict[str, Declared] = {}
    functions: dict[str, Callable] = {}
    notebooks: dict[str, Declaration] = {}
    serializers = _default_serializers(dag, data, origin)
    for task in tasks:
        if task.kind == "function":
            fn = functions.get(task.source) or _import_function(task, origin)
            functions[task.source] = fn
            declared[task.name] = _function_upstream(task, fn, meta, origin)
            _add_function(dag, task, fn, serializers, origin)
        elif task.kind == "shell":
            declared[task.name] = _shell_upstream(task, meta, origin)
            _add_shell_script(dag, task)
        else:
            declaration = notebooks.get(task.options["source"]) or _read_notebook(task, origin)
            notebooks[task.options["source"]] = declaration
            declared[task.name] = _notebook_upstream(task, declaration, meta, origin)
            _add_notebook(dag, task, declaration, origin)
        dag[task.name].grid = task.grid
        _set_hooks(dag[task.name], task.entry, origin)
    _set_hooks(dag, data, origin)
    for fn in functions.values():
        origin.protect_object(fn, "the module that defines a task's function")
    check_products(tasks, origin)
    _wire(dag, tasks, declared, origin)
    return dag


# -- functions ------------------------------------------------------------------------------------
def _import_function(task: TaskSpec, origin: Origin) -> Callable:
    origin = task_origin(task, origin)
    if "." not in task.source.strip("."):
        raise origin.error(
            MissingSourceError,
            f"source {task.source!r} of task {task.name!r} is neither a notebook file (no "
            f"such file in {origin.folder}) nor a dotted path to a function such as "
            "'tasks.make_data'",
            line_of(task.entry, "source"),
            key="source",
            task=task.name,
        )
    return import_callable(
        task.source,
        file=origin.file,
        line=line_of(task.entry, "source"),
        key="source",
        what="function",
        folder=str(origin.folder),
    )


def _add_function(
    dag: DAG, task: TaskSpec, fn: Callable, defaults: dict[str, Callable | None], origin: Origin
) -> None:
    from nbpipe.tasks import PythonCallable

    functions = {
        key: _import_serializer(task.entry[key], task.entry, key, origin)
        if key in task.options
        else defaults[key]
        for key in ("serializer", "unserializer")
    }
    PythonCallable(fn, task.product, dag, name=task.name, params=task.params, **functions)


#: Ploomber's serializers, which are nbpipe's (``serializer: ploomber.io.serializer_pickle``).
PLOOMBER_IO = "ploomber.io."


def _default_serializers(dag: DAG, data: Mapping, origin: Origin) -> dict[str, Callable | None]:
    """The spec's top-level ``serializer``/``unserializer`` (for every function task that does
    not name its own), imported once; also set on the DAG, as Ploomber does."""
    defaults: dict[str, Callable | None] = {}
    for key in ("serializer", "unserializer"):
        value = data.get(key)
        defaults[key] = None if value is None else _import_serializer(value, data, key, origin)
        setattr(dag, key, defaults[key])
    return defaults


def _import_serializer(value: Any, entry: Mapping, key: str, origin: Origin) -> Callable:
    if isinstance(value, str) and value.startswith(PLOOMBER_IO):
        value = "nbpipe.io." + value[len(PLOOMBER_IO) :]
    elif isinstance(value, Mapping) and str(value.get("dotted_path", "")).startswith(PLOOMBER_IO):
        value = {**value, "dotted_path": "nbpipe.io." + value["dotted_path"][len(PLOOMBER_IO) :]}
    function = import_callable(
        value,
        file=origin.file,
        line=line_of(entry, key),
        key=key,
        what=f"{key} function",
        folder=str(origin.folder),
    )
    origin.protect_object(function, f"the module of the {key}")
    return function


def _function_upstream(
    task: TaskSpec, fn: Callable, meta: dict[str, bool], origin: Origin
) -> Declared:
    """The ``upstream['x']`` names the function uses (or the spec's list when extraction is off)."""
    origin = task_origin(task, origin)
    if not meta["extract_upstream"]:
        return task.upstream or [], origin.file, line_of(task.entry, "upstream") or task.line
    names = function_upstream(fn)
    try:
        file = inspect.getsourcefile(fn)
    except TypeError:
        file = None
    line = next(iter(names.values()), None)
    return list(names), file, line


# -- notebooks ------------------------------------------------------------------------------------
def _read_notebook(task: TaskSpec, origin: Origin) -> Declaration:
    """What the notebook's parameters cell declares (``upstream``, ``product``)."""
    origin = task_origin(task, origin)
    from nbpipe.notebooks.source import NotebookSource

    path = Path(task.options["source"])
    line = line_of(task.entry, "source")
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.suffix in (".py", ".ipynb"))
        raise origin.error(
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
        raise origin.error(
            MissingSourceError,
            f"task {task.name!r}: cannot read notebook {path}: {error}",
            line,
            key="source",
            task=task.name,
        ) from None
    return read_notebook_declaration(path, notebook.notebook)


def _add_notebook(dag: DAG, task: TaskSpec, declaration: Declaration, origin: Origin) -> None:
    """A NotebookRunner, or a ScriptRunner (``class: ScriptRunner``: read the same way)."""
    from nbpipe.tasks import NotebookRunner, ScriptRunner

    if task.product is MISSING:
        task.product = _extracted_product(task, declaration, origin)
    options = dict(task.options)
    source = options.pop("source")
    cls = ScriptRunner if task.kind == "script" else NotebookRunner
    cls(source, task.product, dag, name=task.name, params=task.params, **options)


# -- shell scripts --------------------------------------------------------------------------------
def _add_shell_script(dag: DAG, task: TaskSpec) -> None:
    from nbpipe.tasks import ShellScript

    options = dict(task.options)
    source = Path(options.pop("source"))
    ShellScript(source, task.product, dag, name=task.name, params=task.params, **options)


def _shell_upstream(task: TaskSpec, meta: dict[str, bool], origin: Origin) -> Declared:
    """The ``{{upstream['x']}}`` names in the script (or the spec's list without extraction)."""
    from nbpipe.tasks.shell import TemplateError, template_upstream

    if not meta["extract_upstream"]:
        return task.upstream or [], origin.file, line_of(task.entry, "upstream") or task.line
    path = Path(task.options["source"])
    try:
        names = template_upstream(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise origin.error(
            MissingSourceError,
            f"task {task.name!r}: source {path} does not exist",
            line_of(task.entry, "source"),
            key="source",
            task=task.name,
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise origin.error(
            MissingSourceError,
            f"task {task.name!r}: cannot read shell script {path}: {error}",
            line_of(task.entry, "source"),
            key="source",
            task=task.name,
        ) from None
    except TemplateError as error:
        raise UpstreamError(
            f"task {task.name!r}: {error}", file=str(path), line=error.line, task=task.name
        ) from None
    return list(names), str(path), next(iter(names.values()), None)


def _extracted_product(task: TaskSpec, declaration: Declaration, origin: Origin) -> Any:
    """The product the notebook declares (``meta.extract_product``), resolved like the spec's."""
    origin = product_origin(task, origin)
    product = declaration.product
    if product is MISSING or product is None:
        raise origin.error(
            MissingKeyError,
            f"task {task.name!r} has no 'product', and meta.extract_product found no "
            f"`product = ...` in the parameters cell of {task.options['source']}",
            task.line,
            key="product",
            task=task.name,
        )
    entry = YamlMap({"product": product}, line=task.line)
    where = f"task {task.name!r} (from its notebook)"
    if task.grid_index is not None:  # numbered and filled in as a grid product written in the spec
        product = _numbered(product, task, origin, where)
    return read_product(product, entry, where, origin)


def _numbered(product: Any, task: TaskSpec, origin: Origin, where: str) -> Any:
    from nbpipe.spec import grid

    def one(path: Any) -> Any:
        if not isinstance(path, str):
            return path
        numbered = grid.indexed_path(path, task.grid_index)
        return grid.substitute(numbered, task.params, task.params, origin.file, task.line, where)

    if isinstance(product, dict):
        return {key: one(path) for key, path in product.items()}
    return one(product)


def _notebook_upstream(
    task: TaskSpec, declaration: Declaration, meta: dict[str, bool], origin: Origin
) -> Declared:
    """The notebook's ``upstream`` declaration (or the spec's list when extraction is off)."""
    origin = task_origin(task, origin)
    if not meta["extract_upstream"]:
        return task.upstream or [], origin.file, line_of(task.entry, "upstream") or task.line
    return declaration.upstream or [], task.options["source"], declaration.line


# -- wiring and hooks -----------------------------------------------------------------------------
def _wire(dag: DAG, tasks: list[TaskSpec], declared: dict[str, Declared], origin: Origin) -> None:
    """Each task's declared upstream names (``*?[`` patterns match several) as graph edges,
    after checking that they name other tasks and make no cycle. The tasks a pattern matched are
    passed nested under it (``upstream['fit-*']['fit-0']``), as Ploomber passes them."""
    names = [task.name for task in tasks]
    graph: dict[str, list[str]] = {}
    groups: dict[str, dict[str, str | None]] = {}  # task -> upstream task -> matching pattern
    for task in tasks:
        wanted, file, line = declared[task.name]
        parents: list[str] = []
        grouped = groups[task.name] = {}
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
                grouped.update(dict.fromkeys(matches, name))
            elif name not in names or name == task.name:
                problem = (
                    "itself"
                    if name == task.name
                    else f"{name!r}, which is not a task in {origin.file or 'the spec'}"
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
                grouped[name] = None  # named after a pattern matched it: passed by itself
        graph[task.name] = list(dict.fromkeys(parents))
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        cycle = list(reversed(error.args[1]))
        first = next(t for t in tasks if t.name == cycle[0])
        raise origin.error(
            CycleError,
            f"tasks depend on each other in a cycle: {' -> '.join(cycle)} (each one's "
            "upstream declaration names the next's upstream); remove one of these links",
            first.line,
            task=first.name,
        ) from None
    for name, parents in graph.items():
        for parent in parents:
            dag[name].set_upstream(dag[parent])
            if groups[name].get(parent) is not None:
                dag[name].upstream_groups[parent] = groups[name][parent]


def _set_hooks(target: Any, entry: Mapping, origin: Origin) -> None:
    """The hooks ``entry`` names (a task's, or the spec's top level for the DAG's), imported."""
    for key in HOOK_KEYS:
        if key in entry and entry[key] is not None:
            hook = import_callable(
                entry[key],
                file=origin.file,
                line=line_of(entry, key),
                key=key,
                what="hook function",
                folder=str(origin.folder),
            )
            dotted = entry[key]["dotted_path"] if isinstance(entry[key], Mapping) else entry[key]
            origin.protect_object(hook, f"the module of the {key} hook {dotted!r}")
            setattr(target, key, hook)
