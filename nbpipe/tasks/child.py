"""Running a task's program (a ScriptRunner's Python, a ShellScript's bash) in a child process.

The child dies with the process that runs the job (a worker, or the building process under the
Serial executor), as workers die with the build (``nbpipe.executors.lifeline``): it asks the
kernel for ``PR_SET_PDEATHSIG`` before it runs anything, so a build killed outright leaves no
script running and writing. Its stdout is the job's (the terminal; under ``--json`` the CLI has
already pointed it at stderr); its stderr is passed on as it comes and its last lines are kept
for the failure report. A failure is a :class:`ProgramFailed`, which carries its
``TaskFailure`` as the program reported it, not a traceback of nbpipe's code.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from typing import IO

from nbpipe.engine.events import TaskFailure
from nbpipe.exceptions import NbpipeError

#: How many lines of a failed program's stderr its failure shows.
STDERR_TAIL_LINES = 20

#: Runs ``argv[2:]`` once this process is sure to die with ``argv[1]`` (the pid that starts it).
LIFELINE = """\
import os, signal, sys
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
os.execvp(sys.argv[2], sys.argv[2:])
"""


class ProgramFailed(NbpipeError):
    """A task's program failed; ``task_failure`` is what its report shows (the worker passes it
    on as is, see ``nbpipe.executors.worker.describe_error``)."""

    def __init__(self, failure: TaskFailure):
        self.task_failure = failure
        super().__init__(failure.summary())

    def __reduce__(self):
        return (type(self), (self.task_failure,))


def run_program(
    argv: list[str], cwd: str, env: dict[str, str] | None = None, lifeline: bool = True
) -> tuple[int, str]:
    """Runs ``argv`` in ``cwd`` and waits; returns its exit status (negative: killed by that
    signal) and the last lines of its stderr. ``lifeline=False`` when the program asks for its
    death signal itself (it gets this process's pid as its last argument)."""
    command = [sys.executable, "-c", LIFELINE, str(os.getpid()), *argv] if lifeline else argv
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    relay = threading.Thread(target=_relay, args=(process.stderr, tail), daemon=True)
    relay.start()
    try:
        status = process.wait()
    except BaseException:  # the job is being stopped (SIGTERM, Ctrl-C): so is its program
        process.kill()
        process.wait()
        raise
    finally:
        relay.join()
    return status, "".join(tail)


def _relay(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Passes the program's stderr on, line by line, keeping the last lines."""
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            tail.append(line)
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):  # stderr closed: the tail is still kept
                pass


def exit_description(program: str, status: int) -> str:
    """``bash exited with status 2`` or ``bash was killed by SIGKILL``."""
    if status < 0:
        import signal

        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"{program} was killed by {name}"
    return f"{program} exited with status {status}"
