"""PythonCallable: a task whose work is a Python function.

With a ``serializer`` the function returns its result instead of writing its product, and the
serializer writes it; with an ``unserializer`` the function receives its upstream products'
contents instead of their paths (see ``nbpipe.io``). Both run in the worker, with the function.
"""

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
    """Runs ``fn(**kwargs)`` in a worker. Pickles the function by reference (module + name).

    With an ``unserializer``, ``kwargs['upstream']`` holds products that it reads first; with a
    ``serializer``, the function's result is written to ``product`` by it."""

    task: str
    fn: Callable
    kwargs: dict[str, Any] = field(default_factory=dict)
    product: Product | None = None  # where the serializer writes the result
    serializer: Callable | None = None
    unserializer: Callable | None = None

    def run(self) -> None:
        kwargs = self.kwargs
        if self.unserializer is not None and "upstream" in kwargs:
            kwargs = {**kwargs, "upstream": _read_upstream(kwargs["upstream"], self.unserializer)}
        result = self.fn(**kwargs)
        if self.serializer is not None:
            if result is None:
                raise ValueError(
                    f"{_name(self.fn)}() returned None, but task {self.task!r} has a serializer: "
                    "the function must return its result, which the serializer writes to the "
                    "product"
                )
            self.serializer(result, self.product)


class PythonCallable(Task):
    """Runs ``fn(product, upstream, **params)``.

    ``product`` is this task's product (a File or a mapping of them); ``upstream`` maps each
    upstream task's name to its product and is passed only when the task has upstream tasks.
    Under the Parallel executor the function must be importable (defined at a module's top level).

    ``serializer(result, product)``: the function takes no ``product`` and returns its result,
    which this writes (``nbpipe.io.serializer`` makes one). ``unserializer(product)``: each
    upstream product is read by it, so ``upstream['x']`` is the content, not the path. Each
    defaults to the DAG's ``serializer``/``unserializer`` attribute, as in Ploomber.
    """

    def __init__(
        self,
        source: Callable,
        product: Any,
        dag: DAG,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        unserializer: Callable | None = None,
        serializer: Callable | None = None,
    ):
        if not callable(source):
            raise TypeError(f"PythonCallable needs a function, got {type(source).__name__}")
        self.source = source
        self.serializer = serializer or getattr(dag, "serializer", None)
        self.unserializer = unserializer or getattr(dag, "unserializer", None)
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
        problems = []
        available = {"product", *self.params, *(("upstream",) if self.upstream else ())}
        if self.serializer is not None and "product" in _parameters(self.source):
            problems.append(
                f"function {self._default_name()}() has a 'product' parameter, but its task has "
                "a serializer: the function must return its result instead (the serializer "
                "writes it to the product)"
            )
        missing = missing_arguments(self.source, available)
        if missing:
            problems.append(
                f"function {self._default_name()}() needs argument(s) {', '.join(missing)} "
                "that are neither params nor 'product'/'upstream'"
            )
        for role, function, arguments in (
            ("serializer", self.serializer, 2),
            ("unserializer", self.unserializer, 1),
        ):
            if function is not None and not _takes(function, arguments):
                what = "(result, product)" if arguments == 2 else "(product)"
                problems.append(f"{role} {_name(function)} must take the arguments {what}")
        return problems

    def make_job(self, staged: Product, more_to_come: bool = False) -> CallableJob:
        kwargs: dict[str, Any] = {} if self.serializer else {"product": staged}
        kwargs.update(self.params)
        if self.upstream:
            kwargs["upstream"] = Upstream(self.upstream_products())
        return CallableJob(
            self.name,
            self.source,
            kwargs,
            product=staged if self.serializer else None,
            serializer=self.serializer,
            unserializer=self.unserializer if self.upstream else None,
        )


def _read_upstream(upstream: Upstream, unserializer: Callable) -> Upstream:
    """Each upstream product read by ``unserializer`` (a task with several products is passed
    whole); the tasks a pattern matched (``upstream['fit-*']``) each on its own, as Ploomber
    reads a task group's."""
    return Upstream(
        {
            name: _read_upstream(value, unserializer)
            if isinstance(value, Upstream)
            else unserializer(value)
            for name, value in upstream.items()
        }
    )


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _parameters(fn: Callable) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature (some builtins): nothing to check
        return {}


def _takes(fn: Callable, count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature (some builtins): assume it fits
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True
