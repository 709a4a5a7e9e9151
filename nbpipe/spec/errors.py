"""Errors in a ``pipeline.yaml`` (or its ``env.yaml``), each with the place to fix it.

Every error carries the file, the line (counted from 1, when known), the key it concerns and the
task it belongs to, so a front end can print ``file:line: message`` or point an editor at it.
``str(error)`` is that one-line form; ``to_dict()`` is the same for programs (the CLI's JSON
summary, the server).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from nbpipe.exceptions import (
    DAGCycle,
    DAGSpecInitializationError,
    DAGSpecInvalidError,
)


class SpecError(DAGSpecInitializationError):
    """Something in the spec is wrong; ``message`` says what and ``file``/``line``/``key`` where.
    (Ploomber's ``DAGSpecInitializationError``, so Ploomber code catching that catches it.)"""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        task: str | None = None,
    ):
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.task = task
        super().__init__(message)

    def __str__(self) -> str:
        where = self.file or ""
        if where and self.line:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self):
        return (type(self), (self.message,), self.__dict__.copy())

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "task": self.task,
        }


class SpecNotFoundError(SpecError, DAGSpecInvalidError, FileNotFoundError):
    """No ``pipeline.yaml`` where one was looked for (a ``FileNotFoundError`` too)."""


class YAMLSyntaxError(SpecError):
    """The file is not valid YAML."""


class UnknownKeyError(SpecError):
    """A key nbpipe does not know (usually a typo)."""


class UnsupportedKeyError(SpecError):
    """A Ploomber key that nbpipe does not implement."""


class InvalidValueError(SpecError):
    """A known key with a value of the wrong type or shape."""


class MissingKeyError(SpecError):
    """A required key is absent (a task without ``source``)."""


class PlaceholderError(SpecError):
    """A ``{{placeholder}}`` with no value, or a bad ``env.yaml`` / command-line override."""


class MissingSourceError(SpecError):
    """A task's source file does not exist."""


class DottedPathError(SpecError):
    """A dotted path (function, hook, executor) whose module or attribute cannot be imported."""


class UpstreamError(SpecError):
    """A task depends on a task that does not exist, or its declaration cannot be read."""


class CycleError(SpecError, DAGCycle):
    """Tasks depend on each other in a circle."""


class DuplicateTaskError(SpecError, ValueError):
    """Two tasks with the same name (a ``ValueError`` too, as in Ploomber)."""


class ProductError(SpecError):
    """Two tasks write the same product, or a product would overwrite a task's source."""


class GridError(SpecError):
    """A ``grid`` that cannot be expanded into tasks."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when an option is close to ``word``, else an empty string."""
    matches = difflib.get_close_matches(str(word), [str(option) for option in options], n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def listing(options: Iterable[str]) -> str:
    names = [str(option) for option in options]
    return ", ".join(names) if names else "none"
