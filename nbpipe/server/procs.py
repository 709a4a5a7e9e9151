"""Process helpers: recognising a process across a restart, and stopping a build's whole tree.

A build process is started in its own session, so its process group holds the CLI and its worker
processes. Jupyter kernels start their own sessions (jupyter_client does that so it can interrupt
them), so a group signal does not reach them: :func:`descendants` finds them by their parent
links, through psutil (Linux, macOS, Windows alike), so cancel can stop them too.

A pid alone is not an identity (pids are reused); :func:`identity` adds the process's creation
time, so a later server never signals an unrelated process that happens to have an old build's
pid.

A server that dies without stopping its builds (SIGKILL, out of memory) cannot stop them either:
on Linux, :func:`parent_death_signal` makes the kernel send each child SIGTERM when the server
dies, which the CLI handles like a cancel (kernels and workers stopped, staged products
discarded). The next server start still cleans up after a dead server (elsewhere the only way).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable

import psutil

#: How far two readings of one process's creation time may differ. psutil derives it from the
#: boot time, which the system may report a second apart over time (clock adjustments); a pid is
#: never reused within a second.
_CREATED_TOLERANCE = 1.5


def _created(pid: int) -> float | None:
    """The creation time of the live process ``pid`` (a zombie has exited: None)."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, ValueError):
        return None
    except psutil.AccessDenied:  # someone else's process: it runs, its start is unknown
        return -1.0


def identity(pid: int | None) -> str | None:
    """``pid@creation-time`` of a live process, else None."""
    if not pid or pid <= 0:
        return None
    created = _created(pid)
    if created is None:
        return None
    return f"{pid}@{created:.2f}"


def _parse(recorded: str) -> tuple[int, float | None]:
    pid, _, created = recorded.partition("@")
    try:
        return int(pid), float(created)
    except ValueError:
        return int(pid), None


def is_alive(recorded: str | None) -> bool:
    """Whether the process recorded as ``identity(pid)`` earlier still runs (the same process,
    not a later one with the same pid)."""
    if not recorded:
        return False
    try:
        pid, created = _parse(recorded)
    except ValueError:
        return False
    now = _created(pid)
    if now is None or created is None:
        return False
    return abs(now - created) <= _CREATED_TOLERANCE


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return []
    return [child.pid for child in children]


def signal_group(pgid: int, signum: int) -> None:
    """Signals the process group ``pgid`` (a build process's session), if it still exists."""
    killpg = getattr(os, "killpg", None)
    if killpg is None:  # no process groups (Windows): the process itself
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.kill(pgid, signum)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        killpg(pgid, signum)


def signal_processes(identities: list[str], signum: int) -> int:
    """Signals each process still alive under its recorded identity; returns how many."""
    sent = 0
    for recorded in identities:
        if is_alive(recorded):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(_parse(recorded)[0], signum)
                sent += 1
    return sent


def tree_identities(pid: int) -> list[str]:
    """Identities of ``pid`` and its descendants, taken now (before anything is signalled, so
    processes re-parented later are still known)."""
    pids = [pid, *descendants(pid)]
    return [found for found in map(identity, pids) if found]


def marked(name: str, value: str) -> list[str]:
    """Identities of the live processes whose environment has ``name=value`` (the server marks
    each build's processes so; they all inherit it). Processes of other users cannot be read
    and are not found."""
    found = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if process.environ().get(name) == value:
                recorded = identity(process.pid)
                if recorded:
                    found.append(recorded)
    return found


KILL = getattr(signal, "SIGKILL", signal.SIGTERM)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL | None:
    """libc with ``prctl`` and ``signal`` typed, on Linux (resolved once, in the parent)."""
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
            libc.prctl.restype = ctypes.c_int
            libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
            libc.signal.restype = ctypes.c_void_p
            _libc = libc
    return _libc


def parent_death_signal(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent ``signum`` when this process dies (Linux's
    PR_SET_PDEATHSIG), or None where there is no such thing.

    The signal comes when the *thread* that forked the child ends, not the process: spawn only
    from a thread that lives as long as the server (the event loop's). The setting survives the
    child's exec (it is cleared for set-user-ID programs only).

    The function runs in the child between fork and exec, so it makes C calls only (resolved
    here, in the parent): nothing that imports or takes a lock another thread may have held at
    fork time. It first gives ``signum`` its default action in the child, so that the signal,
    should it come before exec, ends the child instead of tripping a handler the server's Python
    installed (which would swallow it). The parent may die before ``prctl`` too: the child
    checks its parent afterwards and, if it is gone, ends itself.
    """
    libc = _load_libc()
    if libc is None:
        return None
    parent = os.getpid()
    prctl, set_handler = libc.prctl, libc.signal

    def exit_with_parent() -> None:
        set_handler(signum, None)  # SIG_DFL
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return exit_with_parent


class ChildTimeout(Exception):
    """A child that should have answered did not within its time (it was killed)."""


async def json_from_child(
    command: list[str], cwd: str, env: dict[str, str], timeout: float
) -> tuple[dict | None, str]:
    """Runs ``command``, a child that prints one JSON object on the last line of its stdout
    (``nbpipe status --json``, the task index), and returns that object (None when there is
    none) and the last lines of its stderr, to say why.

    The child runs in a session of its own started from the event loop's thread, so it dies with
    the server (parent-death signal) and its whole group can be signalled: past ``timeout`` it is
    killed and ``ChildTimeout`` raised; a cancelled request sends it SIGTERM.
    """
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=parent_death_signal(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        signal_group(process.pid, KILL)
        await process.wait()
        raise ChildTimeout from None
    except asyncio.CancelledError:
        signal_group(process.pid, signal.SIGTERM)
        raise
    tail = "\n".join(err.decode("utf-8", "replace").strip().splitlines()[-5:])
    try:
        result = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, tail
    return (result if isinstance(result, dict) else None), tail
