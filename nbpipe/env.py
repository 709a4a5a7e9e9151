"""Ploomber's ``with_env`` and ``load_env`` decorators, for factories that return a DAG.

::

    from nbpipe.env import with_env

    @with_env              # env.yaml, looked for in the working directory and its parents
    def make(env, n=10):   # or @with_env('env.prod.yaml'), or @with_env({'key': 'value'})
        dag = DAG()
        ... env.path.data ... env['n_rows'] ...
        return dag

    make()                            # env as env.yaml says
    make(env__path__data='/tmp/x')    # one value replaced (``__`` separates nested keys)

The function's first argument must be ``env``; it is given the environment (an :class:`Env`:
values by attribute or key, nested mappings too) and is left out of the signature callers see,
so that ``nbpipe build -e module.make`` knows the remaining arguments. The env file is found when
the function is decorated (at import), its ``{{placeholders}}`` filled in when it is called, with
the same built-ins as ``pipeline.yaml`` (``{{here}}``: the env file's folder, ``{{cwd}}``,
``{{root}}``, ``{{user}}``, ``{{now}}``, ``{{git}}``, ``{{git_hash}}``). A replaced value must
be declared in the file (a typo is an error). ``nbpipe build -e module.make --env--path--data
/tmp/x`` (or ``--env path.data=/tmp/x``) replaces values from the command line.

``load_env`` gives a function the environment of the ``with_env`` function running now.
"""

from __future__ import annotations

import functools
import inspect
import os
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nbpipe.exceptions import NbpipeError

__all__ = ["Env", "load_env", "with_env"]

_running: list[Env] = []


class UndeclaredEnvKeyError(NbpipeError, KeyError):
    """``fn(env__key=...)`` (or ``--env key=...``) for a key the env does not declare (a
    KeyError, as Ploomber raises)."""

    def __str__(self) -> str:
        return (
            str(self.args[0]) if self.args else ""
        )  # the environments of the with_env functions running, innermost last


class Env(Mapping):
    """An environment's values: ``env.key``, ``env['key']``, ``env.paths.data`` (a nested
    mapping is an Env too). Read-only."""

    def __init__(self, values: Mapping[str, Any], file: Path | None = None):
        self._values = dict(values)
        self._file = file  # the env file, when read from one (not an attribute: keys are)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"the env has no key {name!r}; keys: {', '.join(self._values) or 'none'}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return Env(value, self._file) if isinstance(value, Mapping) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self._values)

    def __repr__(self) -> str:
        return f"Env({self.to_dict()!r})"


def with_env(source: str | os.PathLike | Mapping[str, Any] | Callable | None = None):
    """Decorates a function whose first argument is ``env`` (see the module docstring).
    ``source``: an env file's name or path (default ``env.yaml``), looked for in the working
    directory and its parents; or a mapping of values. Used bare (``@with_env``) too."""
    if isinstance(source, types.FunctionType):
        return _decorate(source, None)
    return lambda fn: _decorate(fn, source)


def load_env(fn: Callable) -> Callable:
    """Decorates a function whose first argument is ``env``: it is given the environment of
    the ``with_env`` function running now (a RuntimeError if none is)."""
    signature = _without_env(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _running:
            raise RuntimeError(
                f"{_name(fn)} is decorated with @load_env, but no @with_env function is "
                "running: call it from one"
            )
        return fn(_running[-1], *args, **kwargs)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper


# -- the decorator --------------------------------------------------------------------------------
class _EnvSource:
    """Where a decorated function's environment comes from: an env file, found at decoration,
    or a mapping. ``load(overrides)`` reads it and fills in its placeholders."""

    def __init__(self, source: str | os.PathLike | Mapping[str, Any] | None, fn: Callable):
        self.path: Path | None = None
        self.mapping: dict[str, Any] | None = None
        if isinstance(source, Mapping):
            self.mapping = dict(source)
            return
        name = os.fspath(source) if source is not None else "env.yaml"
        path = Path(name)
        if path.is_absolute() or path.exists():
            found = path if path.is_file() else None
        else:
            found = _find_upwards(name)
        if found is None:
            raise RuntimeError(
                f"Failed to resolve environment using @with_env decorator in function "
                f"{_name(fn)}: no {name} in {os.getcwd()} or its parent folders"
            )
        self.path = found.absolute()

    def keys(self) -> list[str]:
        """Every value's key, nested keys joined by ``__`` (for ``--env--a--b`` options)."""
        return list(_flatten(self._read()))

    def _read(self) -> Mapping[str, Any]:
        if self.mapping is not None:
            return self.mapping
        from nbpipe.spec.yamlfile import load_yaml_file

        loaded = load_yaml_file(self.path)
        if loaded is None:
            return {}
        if not isinstance(loaded, Mapping):
            raise RuntimeError(f"{self.path} must be a mapping of names to values")
        return loaded

    def load(self, overrides: Mapping[str, Any]) -> Env:
        from nbpipe.spec.env import Env as Placeholders

        declared = _flatten(self._read())
        for key in overrides:
            if key.replace(".", "__") not in declared:
                where = self.path or "the mapping given to @with_env"
                raise UndeclaredEnvKeyError(
                    f"Trying to replace key {key!r} in env, but it is not declared in {where}; "
                    f"keys: {', '.join(k.replace('__', '.') for k in declared) or 'none'}"
                )
        folder = self.path.parent if self.path is not None else Path(os.getcwd())
        file = str(self.path) if self.path is not None else None
        values = Placeholders(folder, self._read(), overrides, file)
        rendered = values.render(values.values, file, None, "")
        return Env(_plain(rendered), self.path)


def _decorate(fn: Callable, source) -> Callable:
    signature = _without_env(fn)
    env_source = _EnvSource(source, fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        overrides = {
            key[len("env__") :].replace("__", "."): kwargs.pop(key)
            for key in [key for key in kwargs if key.startswith("env__")]
        }
        env = env_source.load(overrides)
        _running.append(env)
        try:
            return fn(env, *args, **kwargs)
        finally:
            _running.pop()

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper._env_source = env_source  # type: ignore[attr-defined]  # read by the CLI
    return wrapper


def _without_env(fn: Callable) -> inspect.Signature:
    """``fn``'s signature without its first argument, which must be ``env``."""
    signature = inspect.signature(fn)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "env":
        raise RuntimeError(
            f'Function "{_name(fn)}" does not have "env" as its first argument, which is '
            "required to use the @with_env and @load_env decorators"
        )
    return signature.replace(parameters=parameters[1:])


def _find_upwards(name: str) -> Path | None:
    folder = Path(os.getcwd())
    for candidate in (folder, *folder.parents):
        if (candidate / name).is_file():
            return candidate / name
    return None


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}__"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _plain(value: Any) -> Any:
    """YAML containers (which keep line numbers) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
