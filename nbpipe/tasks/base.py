"""The task base class: graph wiring, incremental-build bookkeeping and the job a worker runs.

A task never runs itself. At build time it hands the scheduler a *job*: a small picklable object
with just what a worker needs (a function and its arguments, or a notebook and its parameters),
never the task or the DAG. Subclasses write three things: ``source_digest`` (what counts as the
task's code), ``problems`` (render-time checks) and ``make_job``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from nbpipe.engine.events import TaskStatus
from nbpipe.engine.products import (
    File,
    Product,
    Replacement,
    as_product,
    discard_staged,
    files_of,
    kind_of,
    kind_problem,
    map_files,
)
from nbpipe.exceptions import DAGSpecError, UpstreamKeyError

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG
    from nbpipe.engine.report import BuildReport
    from nbpipe.tasks.taskgroup import TaskGroup

METADATA_VERSION = 1


class Job(Protocol):
    """What a worker runs. Must pickle cheaply; ``run`` raises on failure."""

    task: str

    def run(self) -> None: ...


class Upstream(dict):
    """The products of a task's upstream tasks, by task name, with a helpful KeyError
    (``UpstreamKeyError``, Ploomber's name, which is a KeyError)."""

    def __missing__(self, key: str):
        names = ", ".join(sorted(self)) or "none"
        raise UpstreamKeyError(
            f"No upstream task named {key!r}; this task's upstream tasks are: {names}"
        )


class Task:
    """A unit of work in a DAG, producing ``product``.

    ``exec_status`` is the task's status in its DAG's current or last build, as the build's
    state (``nbpipe.engine.state.BuildState``) derives it from the events.
    """

    def __init__(
        self,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ):
        self.product: Product = as_product(product)
        self.params: dict[str, Any] = dict(params or {})
        self.name: str = name if name is not None else self._default_name()
        self.dag = dag
        self.upstream: dict[str, Task] = {}
        #: upstream task -> the pattern that matched it (``upstream = ['fit-*']``), under which
        #: its product is passed (Ploomber's ``group_name``)
        self.upstream_groups: dict[str, str] = {}
        #: the spec's grid entry this task is one combination of (its ``name`` as written, or its
        #: source's), so that front ends can show a grid's tasks as one group; None otherwise
        self.grid: str | None = None
        self.on_render = None
        self.on_finish = None
        self.on_failure = None
        dag._add(self)

    @property
    def exec_status(self) -> TaskStatus:
        return self.dag.task_status(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- graph ----------------------------------------------------------------------------------
    def set_upstream(self, other: Task | Iterable[Task]) -> None:
        """This task depends on ``other``: a task, or several (a list, a TaskGroup)."""
        if not isinstance(other, Task):
            for one in other:
                self.set_upstream(one)
            return
        if other.dag is not self.dag:
            raise DAGSpecError(f"{other.name!r} and {self.name!r} belong to different DAGs")
        if other is self:
            raise DAGSpecError(f"Task {self.name!r} cannot depend on itself")
        self.upstream[other.name] = other

    def __rshift__(self, other: Task | TaskGroup) -> Task | TaskGroup:
        """``a >> b``: b depends on a (each task of b, for a TaskGroup); returns b."""
        other.set_upstream(self)
        return other

    def __rrshift__(self, others: list[Task] | tuple[Task, ...]) -> Task:
        """``[a, b] >> c``: c depends on both."""
        self.set_upstream(others)
        return self

    def __add__(self, other: Task | Iterable[Task]) -> TaskGroup:
        """``a + b``: a TaskGroup, for wiring several tasks at once (``(a + b) >> c``)."""
        from nbpipe.tasks.taskgroup import TaskGroup

        return TaskGroup([self]) + other

    def build(self, force: bool = False) -> BuildReport:
        """Builds this task alone (if outdated); its upstream products must exist."""
        return self.dag.build_task(self.name, force)

    # -- what subclasses define -----------------------------------------------------------------
    def _default_name(self) -> str:
        raise NotImplementedError

    def source_digest(self) -> str:
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Render-time checks; each string is a problem the user must fix before building."""
        return []

    def notebook_files(self) -> list[File]:
        """The products that receive an executed notebook: always files (none here)."""
        return []

    def product_problems(self) -> list[str]:
        """Render-time check of the products whose kind is known before the build: a notebook
        rendition whose path is an existing folder. (Any product's kind is checked again when
        the task's output replaces it, see ``commit``.)"""
        return [
            problem
            for file in self.notebook_files()
            if (problem := kind_problem(file.path, "file")) is not None
        ]

    def make_job(self, staged: Product, more_to_come: bool = False) -> Job:
        """The job for one run, writing ``staged``; ``more_to_come`` says that more tasks of this
        type will start after it (a notebook job then warms up the next kernel)."""
        raise NotImplementedError

    #: Modules a worker should import before this task's first job (slow imports, paid once).
    worker_imports: tuple[str, ...] = ()

    def worker_warm_up(self, ahead: bool = False) -> Callable[[], None] | None:
        """Something picklable a worker may run when it starts, to get this task going faster;
        ``ahead``: every worker will get a task of this type, so each may prepare its first."""
        return None

    def refresh(self) -> None:
        """Forget anything read from the source, so edits since the last render count."""

    @property
    def source_path(self) -> str | None:
        """The file the user edits for this task, when there is one."""
        return None

    # -- products and upstream ------------------------------------------------------------------
    @property
    def files(self) -> list[File]:
        return files_of(self.product)

    def upstream_products(self) -> Upstream:
        return Upstream(self.grouped_upstream(lambda product: product))

    def grouped_upstream(self, convert: Callable[[Product], Any]) -> dict[str, Any]:
        """Each upstream task's product (passed through ``convert``) by task name; those that a
        pattern matched (``upstream = ['fit-*']``) nested under the pattern, as Ploomber passes
        them: ``{'fit-*': {'fit-0': ..., 'fit-1': ...}, 'clean': ...}``."""
        grouped: dict[str, Any] = {}
        for name, task in self.upstream.items():
            group = self.upstream_groups.get(name)
            if group is None:
                grouped[name] = convert(task.product)
            else:
                grouped.setdefault(group, Upstream())[name] = convert(task.product)
        return grouped

    def hook_arguments(self) -> dict[str, Any]:
        return {
            "task": self,
            "product": self.product,
            "params": self.params,
            "upstream": self.upstream_products(),
            "dag": self.dag,
            "client": None,  # Ploomber's task client: nbpipe tasks have none
        }

    # -- incremental builds ---------------------------------------------------------------------
    def outdated_reasons(self) -> list[str]:
        """Why this task must run; empty when its products are up to date."""
        stored = []
        for file in self.files:
            if not file.exists():
                return [f"product {file} does not exist"]
            metadata = file.read_metadata()
            if metadata is None:
                return [f"product {file} has no build record"]
            stored.append(metadata)
        record = stored[0]
        if any(other != record for other in stored[1:]):
            return ["its products come from different builds"]
        reasons = []
        if record.get("source_digest") != self.source_digest():
            reasons.append("source changed")
        if record.get("params_digest") != self.params_digest():
            reasons.append("params changed")
        recorded_upstream = record.get("upstream", {})
        current_upstream = self._upstream_fingerprints()
        if set(recorded_upstream) != set(current_upstream):
            reasons.append("upstream tasks changed")
        else:
            reasons += [
                f"upstream {name!r} changed"
                for name, fingerprints in current_upstream.items()
                if recorded_upstream[name] != fingerprints
            ]
        return reasons

    def last_built(self) -> float | None:
        metadata = self.files[0].read_metadata()
        return metadata.get("timestamp") if metadata else None

    def params_digest(self) -> str:
        text = json.dumps(self.params, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()

    def _upstream_fingerprints(self) -> dict[str, Any]:
        return {name: task.product_fingerprints() for name, task in self.upstream.items()}

    def product_fingerprints(self) -> Any:
        """What downstream tasks record of this task's products, to notice when they change."""
        return map_files(self.product, File.fingerprint)

    # -- after a successful run (in the scheduling process) -------------------------------------
    def commit(self, staged: Product, token: str) -> Replacement:
        """Moves the staged products into place, keeping what they replace aside (see
        ``Replacement``: the caller keeps or undoes it once ``on_finish`` and the new records
        have succeeded). Fails, with every product and build record left as it was, if the task
        did not write a product, or wrote a file where a folder is (or a folder where a file
        is): a build never destroys what it did not make."""
        pairs = list(zip(files_of(staged), self.files, strict=True))
        missing = [str(final) for temp, final in pairs if not temp.path.exists()]
        if missing:
            raise DAGSpecError(
                f"Task {self.name!r} finished without writing its product(s): {', '.join(missing)}"
            )
        mismatched = [
            problem
            for temp, final in pairs
            if (problem := kind_problem(final.path, kind_of(temp.path) or "file", self.name))
        ]
        if mismatched:
            raise DAGSpecError("; ".join(mismatched))
        replacement = Replacement(token)
        try:
            for temp, final in pairs:
                replacement.put(temp, final)
        except BaseException:
            replacement.undo()
            raise
        return replacement

    def discard(self, staged: Product) -> None:
        for temp in files_of(staged):
            discard_staged(temp)

    def save_metadata(self) -> None:
        """Records how the products were built; the last step, so a crash before it rebuilds."""
        metadata = {
            "nbpipe": METADATA_VERSION,
            "task": self.name,
            "timestamp": time.time(),
            "source_digest": self.source_digest(),
            "params_digest": self.params_digest(),
            "upstream": self._upstream_fingerprints(),
        }
        for file in self.files:
            file.write_metadata(metadata)

    def prepare_folders(self) -> None:
        for file in self.files:
            file.path.parent.mkdir(parents=True, exist_ok=True)
