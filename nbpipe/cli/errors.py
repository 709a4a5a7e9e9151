"""Exit codes, and exceptions as messages a user can act on.

``main`` catches every exception of a command and hands it to its output, which asks
``describe_error`` for the message and the exit code (and ``error_dict`` for the JSON form), so
text and code are decided here, once, for every output. ``UsageError`` is for the mistakes
argparse cannot see; ``say`` writes a message to a stderr that may already be gone.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line mistake argparse cannot see (exit code 2)."""


def signal_exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def describe_error(error: BaseException) -> tuple[str, int]:
    """An exception as a message a user can act on, and the exit code."""
    from nbpipe.exceptions import DAGRenderError, NbpipeError

    if isinstance(error, UsageError):
        return str(error), EXIT_USAGE
    if isinstance(error, DAGRenderError):
        lines = "\n".join(f"  {task}: {message}" for task, message in error.problems)
        return (
            f"the pipeline cannot be built, {len(error.problems)} problem(s):\n{lines}",
            EXIT_USAGE,
        )
    if isinstance(error, NbpipeError):
        return str(error), EXIT_USAGE
    import traceback

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"unexpected {type(error).__name__}: {error}\n{text}", EXIT_USAGE


def say(text: str) -> None:
    """A message on stderr, which may be a pipe nobody reads any more (the program that ran
    ``--json`` died): losing the message must not turn into another error."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def error_dict(error: BaseException, message: str) -> dict[str, Any]:
    """The error of a JSON summary: the exception's own ``to_dict()`` (spec errors carry file,
    line and key), else its type and ``message``, with a render error's problems listed."""
    from nbpipe.exceptions import DAGRenderError

    if hasattr(error, "to_dict"):
        return error.to_dict()
    data: dict[str, Any] = {"type": type(error).__name__, "message": message}
    if isinstance(error, DAGRenderError):
        data["problems"] = [{"task": task, "message": text} for task, text in error.problems]
    return data
