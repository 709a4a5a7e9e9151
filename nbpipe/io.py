"""Serializers and unserializers for function tasks: the ``@serializer``/``@unserializer``
decorators of Ploomber's ``ploomber.io``, so that Ploomber projects run unchanged.

A function task with a serializer *returns* its result instead of writing its product: the
serializer writes it (in the worker, to the staged product, like any task's output). A function
task with an unserializer receives its upstream products' contents instead of their paths. Both
are set per task or for the whole spec (``serializer:``/``unserializer:`` in ``pipeline.yaml``).

The decorators turn a function into one that dispatches on the product's extension:

- ``extension_mapping``: ``{'.json': write_json}``, the function to use for each extension;
- ``defaults``: built-in formats by extension: ``.txt`` (a str), ``.json`` (anything
  ``json`` writes), ``.csv`` and ``.parquet`` (a pandas DataFrame);
- ``fallback``: ``True``/``'pickle'``, ``'joblib'`` or ``'cloudpickle'`` for every other
  extension (the decorated function's body then never runs);
- ``unpack``: a dict result becomes a folder, one file per key (named by the key).

Otherwise the decorated function's own body runs. A task with several products returns a dict
with one value per product key, and each value is serialized to its product; unserializing such
a product gives that dict back. Errors happen where Ploomber raises them: a bad decorator
argument when the module is imported, a wrong result when the task runs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["serializer", "serializer_pickle", "unserializer", "unserializer_pickle"]

#: ``fallback`` values and the module whose ``dump``/``load`` they use.
FALLBACKS: dict[Any, str | None] = {
    False: None,
    True: "pickle",
    "pickle": "pickle",
    "joblib": "joblib",
    "cloudpickle": "cloudpickle",
}


# -- the built-in formats (``defaults``) ---------------------------------------------------------
def _write_txt(obj: Any, product: Any) -> None:
    if not isinstance(obj, str):
        raise TypeError(
            f"Error serializing product {str(product)!r} to .txt with the default serializer: "
            f"data must be str, not {type(obj).__name__}"
        )
    Path(product).write_text(obj, encoding="utf-8")


def _write_json(obj: Any, product: Any) -> None:
    try:
        text = json.dumps(obj)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Error serializing product {str(product)!r} to .json with the default serializer: "
            f"{error}"
        ) from None
    Path(product).write_text(text, encoding="utf-8")


def _write_with(method: str, extension: str) -> Callable[[Any, Any], None]:
    def write(obj: Any, product: Any) -> None:
        if not hasattr(obj, method):
            raise TypeError(
                f"Error serializing product {str(product)!r} to {extension} with the default "
                f"serializer: expected a pandas.DataFrame but got an object of type "
                f"{type(obj).__name__}"
            )
        getattr(obj, method)(product)

    return write


def _read_txt(product: Any) -> str:
    return Path(product).read_text(encoding="utf-8")


def _read_json(product: Any) -> Any:
    return json.loads(Path(product).read_text(encoding="utf-8"))


def _read_with(function: str, extension: str) -> Callable[[Any], Any]:
    def read(product: Any) -> Any:
        try:
            import pandas
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"Error using the {extension} default unserializer: pandas is not installed"
            ) from None
        return getattr(pandas, function)(product)

    return read


SERIALIZER_DEFAULTS: dict[str, Callable[[Any, Any], None]] = {
    ".txt": _write_txt,
    ".json": _write_json,
    ".csv": _write_with("to_csv", ".csv"),
    ".parquet": _write_with("to_parquet", ".parquet"),
}
UNSERIALIZER_DEFAULTS: dict[str, Callable[[Any], Any]] = {
    ".txt": _read_txt,
    ".json": _read_json,
    ".csv": _read_with("read_csv", ".csv"),
    ".parquet": _read_with("read_parquet", ".parquet"),
}


# -- the decorators -------------------------------------------------------------------------------
def serializer(
    extension_mapping: Mapping[str, Callable] | None = None,
    *,
    fallback: bool | str = False,
    defaults: Iterable[str] | None = None,
    unpack: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorates ``fn(obj, product)``, which writes a task's result ``obj`` to ``product``, so
    that it dispatches on the product's extension (see the module docstring)."""

    def decorate(fn: Callable) -> Callable:
        mapping = _final_mapping(extension_mapping, defaults, SERIALIZER_DEFAULTS, fn, "serializer")
        module = _fallback_module(fallback, fn, "serializing")
        _check_arity(fn, 2, "serializer", "2 arguments")

        @functools.wraps(fn)
        def wrapper(obj: Any, product: Any) -> None:
            if isinstance(product, Mapping):  # a task with several products
                _check_result_keys(obj, product)
                for key, value in obj.items():
                    _serialize(value, product[key], mapping, module, fn, unpack)
            else:
                _serialize(obj, product, mapping, module, fn, unpack)

        return wrapper

    return decorate


def unserializer(
    extension_mapping: Mapping[str, Callable] | None = None,
    *,
    fallback: bool | str = False,
    defaults: Iterable[str] | None = None,
    unpack: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorates ``fn(product)``, which reads an upstream product, so that it dispatches on the
    product's extension (see the module docstring)."""

    def decorate(fn: Callable) -> Callable:
        mapping = _final_mapping(
            extension_mapping, defaults, UNSERIALIZER_DEFAULTS, fn, "unserializer"
        )
        module = _fallback_module(fallback, fn, "unserializing")
        _check_arity(fn, 1, "unserializer", "1 argument")

        @functools.wraps(fn)
        def wrapper(product: Any) -> Any:
            if isinstance(product, Mapping):  # a task with several products: a dict by key
                return {
                    key: _unserialize(value, mapping, module, fn, unpack)
                    for key, value in product.items()
                }
            return _unserialize(product, mapping, module, fn, unpack)

        return wrapper

    return decorate


# -- dispatch -------------------------------------------------------------------------------------
def _serialize(
    obj: Any,
    product: Any,
    mapping: Mapping[str, Callable],
    module: str | None,
    fn: Callable,
    unpack: bool,
) -> None:
    if unpack and isinstance(obj, Mapping):
        folder = Path(product)
        if folder.is_dir():  # old files must not mix with the new ones
            shutil.rmtree(folder)
        elif folder.exists():
            folder.unlink()
        folder.mkdir(parents=True)
        for filename, value in obj.items():
            if not isinstance(filename, str):
                raise TypeError(
                    f"Error serializing with unpack=True: keys are file names, so they must be "
                    f"str, not {type(filename).__name__} ({filename!r})"
                )
            path = folder / filename
            _choose(path.suffix, mapping, module, fn, "dump")(value, path)
    else:
        _choose(Path(product).suffix, mapping, module, fn, "dump")(obj, product)


def _unserialize(
    product: Any, mapping: Mapping[str, Callable], module: str | None, fn: Callable, unpack: bool
) -> Any:
    path = Path(product)
    if unpack and path.is_dir():
        return {
            child.name: _choose(child.suffix, mapping, module, fn, "load")(child)
            for child in sorted(path.iterdir())
        }
    return _choose(path.suffix, mapping, module, fn, "load")(product)


def _choose(
    suffix: str, mapping: Mapping[str, Callable], module: str | None, fn: Callable, verb: str
) -> Callable:
    """The extension's function, else the fallback module's, else the decorated function."""
    if suffix in mapping:
        return mapping[suffix]
    if module is not None:
        return functools.partial(_dump if verb == "dump" else _load, module)
    return fn


def _dump(module: str, obj: Any, product: Any) -> None:
    with open(product, "wb") as f:
        importlib.import_module(module).dump(obj, f)


def _load(module: str, product: Any) -> Any:
    with open(product, "rb") as f:
        return importlib.import_module(module).load(f)


# -- checks at decoration time --------------------------------------------------------------------
def _final_mapping(
    mapping: Mapping[str, Callable] | None,
    defaults: Iterable[str] | None,
    available: Mapping[str, Callable],
    fn: Callable,
    decorator: str,
) -> dict[str, Callable]:
    """``extension_mapping`` plus the requested ``defaults``, checked."""
    name = getattr(fn, "__name__", repr(fn))
    if mapping is not None and not isinstance(mapping, Mapping):
        raise TypeError(
            f"Invalid extension_mapping {mapping!r} for decorated function {name!r}: expected "
            f"a dictionary but got a {type(mapping).__name__}"
        )
    mapping = dict(mapping or {})
    if defaults:
        if isinstance(defaults, str) or not isinstance(defaults, Iterable):
            raise TypeError(
                f"Invalid defaults {defaults!r} for decorated function {name!r}: expected a "
                f"list but got a {type(defaults).__name__}"
            )
        wanted = list(defaults)
        overlap = sorted(set(wanted) & set(mapping))
        if overlap:
            raise ValueError(
                f"Error adding the @{decorator} decorator to function {name!r}: keys in "
                f"'extension_mapping' and 'defaults' must not overlap (overlapping keys: "
                f"{overlap})"
            )
        unexpected = sorted(set(wanted) - set(available))
        if unexpected:
            raise ValueError(
                f"Error adding the @{decorator} decorator to function {name!r}: unexpected "
                f"values in 'defaults': {unexpected}; valid values are: {sorted(available)} "
                "(use fallback=True to pickle everything else)"
            )
        mapping = {**{key: available[key] for key in wanted}, **mapping}
    invalid = sorted(key for key in mapping if not str(key).startswith("."))
    if invalid:
        raise ValueError(
            f"Invalid extension_mapping for decorated function {name!r}: keys are extensions "
            f"starting with a dot (e.g. '.csv'); invalid keys: {invalid}"
        )
    return mapping


def _fallback_module(fallback: Any, fn: Callable, doing: str) -> str | None:
    name = getattr(fn, "__name__", repr(fn))
    try:
        module = FALLBACKS[fallback]
    except (KeyError, TypeError):
        raise ValueError(
            f"Invalid fallback argument {fallback!r} in function {name!r}: must be one of "
            "True, False, 'pickle', 'joblib' or 'cloudpickle'"
        ) from None
    if module is not None and importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"Error {doing} with function {name!r}: {module} is not installed"
        )
    return module


def _check_arity(fn: Callable, count: int, decorator: str, described: str) -> None:
    parameters = len(inspect.signature(fn).parameters)
    if parameters != count:
        raise TypeError(
            f"Expected {decorator} {getattr(fn, '__name__', fn)!r} to take {described}, but it "
            f"takes {parameters}"
        )


def _check_result_keys(obj: Any, product: Mapping) -> None:
    """A task with several products returns a dict with exactly its product keys."""
    keys = list(product.keys())  # (iterating a MultiProduct gives its Files, as in Ploomber)
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"Error serializing task: it has several products ({', '.join(keys)}), so its "
            f"function must return a dict with the same keys, not {type(obj).__name__} {obj!r}"
        )
    missing = [key for key in keys if key not in obj]
    unexpected = [key for key in obj if key not in keys]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys: {missing}")
        if unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        raise ValueError(
            f"Error serializing task: it has products {keys}, but its function returned a dict "
            f"with other keys ({'; '.join(problems)})"
        )


# -- ready-made: pickle everything -------------------------------------------------------------
@serializer(fallback=True)
def serializer_pickle(obj: Any, product: Any) -> None:
    """Pickles every result (``serializer: nbpipe.io.serializer_pickle``)."""
    raise RuntimeError("serializer_pickle's body never runs: fallback pickles everything")


@unserializer(fallback=True)
def unserializer_pickle(product: Any) -> Any:
    """Unpickles every product (``unserializer: nbpipe.io.unserializer_pickle``)."""
    raise RuntimeError("unserializer_pickle's body never runs: fallback unpickles everything")
