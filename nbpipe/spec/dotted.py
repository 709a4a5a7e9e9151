"""Importing the objects a spec names by dotted path (functions, hooks, executors)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from nbpipe.spec.errors import DottedPathError, InvalidValueError, did_you_mean, listing

#: Ploomber's dotted paths that have an nbpipe equivalent.
ALIASES = {
    "ploomber.executors.Serial": "nbpipe.executors.Serial",
    "ploomber.executors.Parallel": "nbpipe.executors.Parallel",
    "ploomber.executors.serial.Serial": "nbpipe.executors.Serial",
    "ploomber.executors.parallel.Parallel": "nbpipe.executors.Parallel",
}


def import_dotted(
    dotted: Any,
    *,
    file: str | None,
    line: int | None,
    key: str,
    what: str = "object",
    folder: str | None = None,
) -> Any:
    """The object at ``module.attribute`` (``package.module.Class.attribute`` works too).

    Errors name the module that failed to import, or the attribute that is missing from it.
    With ``folder`` (the spec's folder), a module of the same name imported earlier from
    somewhere else (another project's ``tasks.py``) is dropped so that this folder's is used.
    """
    if not isinstance(dotted, str) or "." not in dotted.strip(".") or " " in dotted:
        raise DottedPathError(
            f"{key} must be a dotted path such as 'module.function', not {dotted!r}",
            file=file,
            line=line,
            key=key,
        )
    dotted = ALIASES.get(dotted, dotted)
    parts = dotted.split(".")
    if folder is not None:
        _forget_stale_module(parts[0], folder)
    module = None
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and (name == error.name or name.startswith(error.name + ".")):
                continue  # this prefix is not a module: try a shorter one
            raise DottedPathError(
                f"{key} {dotted!r}: importing module {name!r} failed: {error}",
                file=file,
                line=line,
                key=key,
            ) from None
        except Exception as error:
            raise DottedPathError(
                f"{key} {dotted!r}: importing module {name!r} failed with "
                f"{type(error).__name__}: {error}{_where_raised(error)}",
                file=file,
                line=line,
                key=key,
            ) from None
        _remember(module)
        break
    if module is None:
        raise DottedPathError(
            f"{key} {dotted!r}: no module named {parts[0]!r} (looked in the spec's folder and "
            "on sys.path)",
            file=file,
            line=line,
            key=key,
        )
    value: Any = module
    owner = module.__name__
    for attribute in parts[cut:]:
        if not hasattr(value, attribute):
            available = [n for n in dir(value) if not n.startswith("_")]
            raise DottedPathError(
                f"{key} {dotted!r}: module {owner!r}{_module_file(value)} has no attribute "
                f"{attribute!r}{did_you_mean(attribute, available)}",
                file=file,
                line=line,
                key=key,
            )
        value = getattr(value, attribute)
        owner = f"{owner}.{attribute}"
    return value


def import_callable(
    value: Any,
    *,
    file: str | None,
    line: int | None,
    key: str,
    what: str = "function",
    folder: str | None = None,
) -> Callable:
    """A dotted path, or ``{dotted_path: ..., **kwargs}`` which binds the extra keyword arguments
    (``{dotted_path: hooks.check, threshold: 3}`` gives ``partial(hooks.check, threshold=3)``)."""
    kwargs: dict[str, Any] = {}
    if isinstance(value, Mapping):
        if "dotted_path" not in value:
            raise InvalidValueError(
                f"{key} given as a mapping needs a 'dotted_path' key (and optional keyword "
                f"arguments), got keys: {listing(value)}",
                file=file,
                line=line,
                key=key,
            )
        kwargs = {k: plain(v) for k, v in value.items() if k != "dotted_path"}
        value = value["dotted_path"]
    fn = import_dotted(value, file=file, line=line, key=key, what=what, folder=folder)
    if not callable(fn):
        raise DottedPathError(
            f"{key} {value!r} is a {type(fn).__name__}, not a {what}",
            file=file,
            line=line,
            key=key,
        )
    if kwargs:
        check_keywords(fn, kwargs, file=file, line=line, key=key)
        fn = BoundCallable(fn, value, **kwargs)
    return fn


class BoundCallable(functools.partial):
    """A function with keyword arguments from the spec (``{dotted_path: hooks.check,
    threshold: 3}``), which messages name by its dotted path: ``hooks.check(threshold=3)``."""

    def __new__(cls, fn: Callable, dotted_path: str, /, **kwargs: Any) -> BoundCallable:
        bound = super().__new__(cls, fn, **kwargs)
        bound.dotted_path = dotted_path
        return bound

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.keywords.items())
        return f"{self.dotted_path}({arguments})"


def check_keywords(
    fn: Callable, kwargs: Mapping[str, Any], *, file: str | None, line: int | None, key: str
) -> None:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        name
        for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for name in kwargs:
        if name not in accepted:
            raise InvalidValueError(
                f"{key}: {_name_of(fn)}() has no parameter {name!r}{did_you_mean(name, accepted)}"
                f"; its parameters: {listing(accepted)}",
                file=file,
                line=line,
                key=f"{key}.{name}",
            )


def defining_files(obj: Any) -> list[str]:
    """The files an imported object comes from: its source file and the file of its module and
    of each package above it (``pkg/sub.py``, ``pkg/__init__.py``). A partial counts as its
    function."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    files = []
    with contextlib.suppress(TypeError, OSError):
        source = inspect.getsourcefile(obj)
        if source:
            files.append(source)
    name = getattr(obj, "__module__", None)
    while isinstance(name, str) and name:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            files.append(path)
        name = name.rpartition(".")[0]
    return files


def plain(value: Any) -> Any:
    """YAML containers (which carry line numbers) as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _name_of(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))


def _module_file(module: Any) -> str:
    path = getattr(module, "__file__", None)
    return f" ({path})" if path and inspect.ismodule(module) else ""


def _where_raised(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    user = [frame for frame in frames if "importlib" not in frame.filename]
    if not user:
        return ""
    frame = user[-1]
    return f" (at {frame.filename}:{frame.lineno})"


def ensure_on_path(folder: str) -> None:
    """Puts ``folder`` first on ``sys.path`` so that the spec's modules import (and, since
    multiprocessing hands ``sys.path`` to spawned workers, import there too)."""
    if sys.path[:1] != [folder]:
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()


#: module file -> its modification time when a spec imported it
_IMPORTED: dict[str, int] = {}


def _remember(module: Any) -> None:
    origin = getattr(module, "__file__", None)
    if origin and origin not in _IMPORTED:
        with contextlib.suppress(OSError):
            _IMPORTED[origin] = os.stat(origin).st_mtime_ns


def _forget_stale_module(name: str, folder: str) -> None:
    """Drops module ``name`` (and its submodules) so that it is imported afresh when it was
    imported from another folder (another project's ``tasks.py``), or when its file changed
    since a spec imported it (a long-lived process, such as a Jupyter server, reloading)."""
    module = sys.modules.get(name)
    if module is None:
        return
    local = os.path.join(folder, name)
    if not (os.path.exists(local + ".py") or os.path.isdir(local)):
        return
    origin = getattr(module, "__file__", None) or ""
    if os.path.dirname(os.path.abspath(origin)) in (folder, local):
        try:
            mtime = os.stat(origin).st_mtime_ns
        except OSError:
            mtime = None
        if _IMPORTED.setdefault(origin, mtime) == mtime:  # unchanged, or imported by others
            return
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        _IMPORTED.pop(getattr(sys.modules[loaded], "__file__", None) or "", None)
        del sys.modules[loaded]
