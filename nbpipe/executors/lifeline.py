"""Worker processes die with the process that started them.

A build killed with SIGKILL (or by the out-of-memory killer) cannot stop its workers, and a worker
left behind keeps its kernel and may still write staged files. So each worker asks, as it starts,
to be killed when its parent dies: Linux's ``PR_SET_PDEATHSIG``, or elsewhere a watchdog thread
that checks the parent every second. The signal is SIGKILL, not SIGTERM: a worker waiting for its
next job blocks in a read that a signal handled by another of its threads (a kernel client's) never
interrupts, so a handler might never run. Nothing is lost by not unwinding: the worker's kernels
exit by themselves once it is gone (ipykernel polls the ``JPY_PARENT_PID`` that jupyter_client
gives it), and its staged files are hidden ``.nbpipe-*`` files that the next build sweeps.

The death signal comes when the *thread* that started the worker ends; the scheduler starts its
workers from the building thread, which outlives them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
WATCHDOG_INTERVAL = 1.0  # seconds, where there is no PR_SET_PDEATHSIG


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """Has this process sent ``signum`` when ``parent`` (its parent's pid) dies; if it already
    has, sends it now."""
    if not _set_parent_death_signal(signum):
        threading.Thread(target=_watch, args=(parent, signum), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we asked
        os.kill(os.getpid(), signum)


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, signum: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCHDOG_INTERVAL):
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)
            return
