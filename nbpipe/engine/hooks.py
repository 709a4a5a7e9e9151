"""Calling user functions (hooks, task functions) with the arguments they ask for by name.

A hook declares what it needs through its parameter names (``task``, ``product``, ``params``,
``dag``, ``report``, ``traceback``, ...). Checking that early, at render time, turns a typo in a
hook's signature into a clear error before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


def missing_arguments(fn: Callable, available: Mapping[str, Any] | set[str]) -> list[str]:
    """The required parameters of ``fn`` that ``available`` cannot supply."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume it fits
        return []
    return [
        name
        for name, param in signature.parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        and param.default is param.empty
        and name not in available
    ]


def call_with_available(fn: Callable, available: Mapping[str, Any]) -> Any:
    """Calls ``fn`` passing, by keyword, only the available values it has parameters for."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn()
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return fn(**available)
    return fn(**{name: value for name, value in available.items() if name in parameters})


def describe(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"
