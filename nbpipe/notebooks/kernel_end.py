"""How the kernels nbpipe starts run ipykernel and end: forked from the template
(``nbpipe.notebooks.template``) or spawned through ``nbpipe.notebooks.launcher``.

A kernel asked to shut down (as papermill's are) returns from ipykernel's application with its
user namespace reset; what is left is the interpreter's exit. nbpipe's kernels end it their own
way, for two reasons:

- ipykernel's exit handler (``IPKernelApp.close``: its zmq sockets closed, its threads joined)
  can wait forever, when the control thread's last status message races the closing IOPub
  thread (a known ipykernel race); jupyter_client then terminates the kernel 2.5 s later, before
  Python has flushed the files the notebook left open. It is skipped: the process's end closes
  the sockets and ends the threads anyway.
- the interpreter's teardown of every module (IPython, ipykernel, pandas...) is most of a spawned
  kernel's exit, and a forked kernel must not unwind into the template's code. The process ends
  with ``os._exit`` instead, once it has done what that teardown would have done for the user:
  every file still open for writing flushed, and the exit handlers run.

Measured (``benchmarks/kernel_exit.py --spawned``, medians of eight): a spawned kernel asked to
exit took 359 ms as ipykernel's launcher ends it, 34 ms this way.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import sys

#: What ``open`` makes that holds written data, in the order to flush: text layers, then the
#: buffers under them
FILE_LAYERS = ((io.TextIOWrapper,), (io.BufferedWriter, io.BufferedRandom))


def run_ipykernel() -> int:
    """Runs ipykernel's application on ``sys.argv`` until the kernel is shut down; returns the
    exit code. ipykernel's own exit handler is then left out (see the module)."""
    from ipykernel.kernelapp import IPKernelApp

    class KernelApp(IPKernelApp):
        """ipykernel's application, that freezes (``gc.freeze``) what ipykernel and IPython set
        up once they have, before the user's extensions and startup code run: as a forked
        kernel's template froze what it imported. It lives as long as the kernel; the collector
        then leaves it alone, and the end's scan for open files (``flush_open_files``) goes over
        what the user's code made, not over all of IPython (measured: a spawned kernel's exit
        took 137 ms with that scan, 34 ms with this)."""

        def init_extensions(self) -> None:
            gc.freeze()
            super().init_extensions()

    try:
        KernelApp.launch_instance()
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    finally:
        if IPKernelApp.initialized():
            atexit.unregister(IPKernelApp.instance().close)
    return 0


def finish(code: int) -> None:
    """Ends the process as an interpreter's exit would (threads joined, atexit handlers run, open
    files flushed), without the teardown of its modules."""
    try:
        import threading

        threading._shutdown()  # type: ignore[attr-defined]
    except BaseException:
        pass
    flush_open_files()  # what was written so far is kept, even if an exit handler hangs
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    flush_open_files()
    os._exit(code)


def flush_open_files() -> None:
    """Flushes every file still open for writing, text layers first, as the interpreter's
    teardown would when it clears the modules that hold them (a module-level log file that a
    notebook wrote to and never closed: its last lines would be lost), then the process's own
    standard streams. Files only, as ``open`` makes them, not ipykernel's output streams:
    flushing those sends on zmq sockets that may be closing. Frozen objects (what the template
    imported, what ``run_ipykernel`` froze) are out of the collector's sight
    (``gc.get_objects``): the standard streams are among them, none of them is a user's file."""
    files = [obj for obj in gc.get_objects() if isinstance(obj, sum(FILE_LAYERS, ()))]
    for layer in FILE_LAYERS:
        for file in files:
            if isinstance(file, layer):
                with contextlib.suppress(BaseException):
                    if not file.closed:
                        file.flush()
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()
