"""PythonCallable: a task whose work is a Python function."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbpipe.engine.hooks import missing_arguments
from nbpipe.engine.products import Product
from nbpipe.tasks.base import Task, Upstream

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG


@dataclass
class CallableJob:
    """Runs ``fn(**kwargs)`` in a worker. Pickles the function by reference (module + name)."""

    task: str
    fn: Callable
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self) -> None:
        self.fn(**self.kwargs)


class PythonCallable(Task):
    """Runs ``fn(product, upstream, **params)``.

    ``product`` is this task's product (a File or a mapping of them); ``upstream`` maps each
    upstream task's name to its product and is passed only when the task has upstream tasks.
    Under the Parallel executor the function must be importable (defined at a module's top level).
    """

    def __init__(
        self,
        source: Callable,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ):
        if not callable(source):
            raise TypeError(f"PythonCallable needs a function, got {type(source).__name__}")
        self.source = source
        self._digest: str | None = None
        super().__init__(product, dag, name, params)

    def _default_name(self) -> str:
        return getattr(self.source, "__name__", type(self.source).__name__)

    @property
    def source_path(self) -> str | None:
        try:
            return inspect.getsourcefile(self.source)
        except TypeError:
            return None

    def source_digest(self) -> str:
        if self._digest is None:
            try:
                text = inspect.getsource(self.source)
            except (OSError, TypeError):  # no source on disk (builtins, partials): use the name
                text = f"{getattr(self.source, '__module__', '')}.{self._default_name()}"
            self._digest = hashlib.sha256(text.encode()).hexdigest()
        return self._digest

    def problems(self) -> list[str]:
        available = {"product", *self.params, *(("upstream",) if self.upstream else ())}
        missing = missing_arguments(self.source, available)
        if missing:
            return [
                f"function {self._default_name()}() needs argument(s) {', '.join(missing)} "
                "that are neither params nor 'product'/'upstream'"
            ]
        return []

    def make_job(self, staged: Product, more_to_come: bool = False) -> CallableJob:
        kwargs: dict[str, Any] = {"product": staged, **self.params}
        if self.upstream:
            kwargs["upstream"] = Upstream(self.upstream_products())
        return CallableJob(self.name, self.source, kwargs)
