"""Calling user functions (hooks, task functions) with the arguments they ask for by name.

A hook declares what it needs through its parameter names (``task``, ``product``, ``params``,
``dag``, ``report``, ``traceback``, ...). Checking that early, at render time, turns a typo in a
hook's signature into a clear error before anything runs.
"""

from __future__ import annotations

import functools
import inspect
import os
import sysconfig
import traceback
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
    """How messages name a hook: its dotted path (``hooks.check``), also when the spec bound
    keyword arguments to it (``{dotted_path: hooks.check, threshold: 3}``)."""
    dotted = getattr(fn, "dotted_path", None)
    if isinstance(dotted, str):
        return dotted
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


def describe_exception(error: BaseException) -> str:
    """``ValueError: message (at file:line)``: the exception and the line of the user's code
    that raised it (the deepest frame outside Python's library and nbpipe)."""
    frames = traceback.extract_tb(error.__traceback__)
    library = tuple(
        {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        | {os.path.dirname(os.path.dirname(__file__))}
    )
    user = [frame for frame in frames if not frame.filename.startswith(library)] or frames
    where = f" (at {user[-1].filename}:{user[-1].lineno})" if user else ""
    return f"{type(error).__name__}: {error}{where}"
