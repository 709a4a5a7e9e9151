"""Process helpers: recognising a process across a restart, and stopping a build's whole tree.

A build process is started in its own session, so its process group holds the CLI and its worker
processes. Jupyter kernels start their own sessions (jupyter_client does that so it can interrupt
them), so a group signal does not reach them: :func:`descendants` finds them by walking parent
links in ``/proc`` (Linux), so cancel can stop them too. Elsewhere the group signal and the
kernels' own parent polling (ipykernel exits when its parent dies) have to do.

A pid alone is not an identity (pids are reused); :func:`identity` adds the process start time,
so a later server never signals an unrelated process that happens to have an old build's pid.

A server that dies without stopping its builds (SIGKILL, out of memory) cannot stop them either:
on Linux, :func:`parent_death_signal` makes the kernel send each child SIGTERM when the server
dies, which the CLI handles like a cancel (kernels and workers stopped, staged products
discarded). The next server start still cleans up after a dead server (elsewhere the only way).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PROC = "/proc"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def identity(pid: int | None) -> str | None:
    """``pid@start-time`` for a live process (``pid`` alone where /proc is missing), else None."""
    if not pid or pid <= 0:
        return None
    fields = _stat_fields(pid)
    if fields is not None:
        if fields[0] == "Z":  # a zombie has exited already
            return None
        return f"{pid}@{fields[19]}"  # field 22 of stat: start time in clock ticks
    if sys.platform.startswith("linux"):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return str(pid)


def is_alive(recorded: str | None) -> bool:
    """Whether the process recorded as ``identity(pid)`` earlier still runs."""
    if not recorded:
        return False
    pid = int(recorded.split("@", 1)[0])
    return identity(pid) == recorded


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...); Linux only."""
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    children: dict[int, list[int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def signal_processes(identities: list[str], signum: int) -> int:
    """Signals each process still alive under its recorded identity; returns how many."""
    sent = 0
    for recorded in identities:
        if is_alive(recorded):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(recorded.split("@", 1)[0]), signum)
                sent += 1
    return sent


def tree_identities(pid: int) -> list[str]:
    """Identities of ``pid`` and its descendants, taken now (before anything is signalled, so
    processes re-parented later are still known)."""
    pids = [pid, *descendants(pid)]
    return [found for found in map(identity, pids) if found]


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
