"""The kernel template: a clean process that forks a fresh IPython kernel per request.

Starting a kernel the usual way costs most of a CPU-second: a new interpreter imports IPython and
ipykernel (and the notebook then imports pandas again). This process pays those imports once: it
imports what a running ipykernel imports, then the pipeline's preload modules, and nothing more.
It starts no thread and no zmq context, so that it can be forked safely; each kernel request forks
one child, which becomes the kernel exactly as ``python -m ipykernel_launcher -f FILE ...`` would:

- a session of its own (``setsid``, so its process group is its pid, as jupyter_client's spawned
  kernels have), stdin from /dev/null, the template's stdout and stderr (those of the process that
  runs notebooks, as a spawned kernel has);
- the working directory and the environment the kernel manager asked for (with
  ``JPY_PARENT_PID`` the template's pid: ipykernel's parent poller ends the kernel when the
  template is gone), the signal handlers a fresh interpreter has;
- the garbage collector on, as in any process, except that it leaves alone what the template
  had loaded before the fork (``gc.freeze``: fewer pages copied, less to scan; the template
  loads with the collector off, which would only scan what it loads);
- random generators reseeded: Python's ``random``, and numpy's global generator when it is
  loaded, so that two notebooks never draw the same numbers without a seed;
- then ipykernel's own application, which reads the connection file; the child never returns
  into this module (``os._exit``).

Run by ``nbpipe.notebooks.forking`` (in a worker, or the building process under Serial)::

    python -m nbpipe.notebooks.template --requests FD --replies FD --parent PID \
        --launcher ipykernel_launcher [MODULE ...]

The protocol is JSON lines over two pipes. The template first answers ``{"ready": ...}`` once it
has imported everything, or ``{"error": ..., "module": ..., "reason": "import" | "threads"}``
and exits: a preload that fails to import, or one that starts threads (forking a process with
threads is unsafe). Then, per request ``{"argv": [...], "env": {...}, "cwd": ...}`` (the
ipykernel arguments after ``-m ipykernel_launcher``), it answers ``{"pid": N}`` once the child is
in its own session, or ``{"refused": why}`` when the request needs an interpreter set up
differently (``PYTHON*`` variables that only act at start-up), and the client then spawns the
kernel instead. When a child ends, the template reaps it and sends ``{"exited": PID, "code":
N}``. It dies with its parent (``die_with_parent``), and when its request pipe closes it kills
the kernels still running (their process groups) and exits.

A build with several worker processes shares one template (its imports paid once)::

    python -m nbpipe.notebooks.template --listen FD --control FD --parent PID ... [MODULE ...]

Then this process imports as above, and accepts connections on the listening Unix socket ``FD``
(bound by its owner, so that workers may connect while it imports): per connection it forks a
child, a template of that worker's own, which speaks the protocol above over the connection
(``ready`` first, or the import problem) and ends, with its kernels, when the connection closes
(its worker exited or died), on SIGTERM, or with this process. This process ends when its control
pipe closes: it stops the templates still running, waits for them, and exits.

A shared template may start ahead of its build, before the build knows its preload modules and
its kernels' working directory (``--later``, no modules): it imports the kernel's modules, then
reads them from the control pipe (one JSON line, ``{"preload": [...], "cwd": ...}``), moves
there as if it had started there, and goes on as above; the pipe closing first ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import signal
import sys
from collections.abc import Iterator, Sequence

from nbpipe.notebooks.kernel_end import finish, run_ipykernel

#: What a started ipykernel has imported (measured: a kernel that ran a cell has no module
#: beyond these and their imports), and what it imports as it exits; importing them here is
#: what makes a forked kernel cheap.
KERNEL_MODULES = (
    "ipykernel_launcher",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "tornado.gen",
    "tornado.locks",
    "tornado.queues",
    "tornado.platform.asyncio",
    "faulthandler",
    "psutil",  # imported as a kernel exits (to end the processes it started): 20-40 ms
)
#: Variables that act only when an interpreter starts: a kernel that needs other values than the
#: template's is spawned. (jupyter_client drops PYTHONEXECUTABLE from a Python kernel's env.)
STARTUP_VARIABLES_IGNORED = ("PYTHONEXECUTABLE",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbpipe.notebooks.template")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--replies", type=int)
    parser.add_argument("--listen", type=int, help="a listening Unix socket: a shared template")
    parser.add_argument("--control", type=int, help="its owner's pipe: the end stops it")
    parser.add_argument("--parent", type=int, required=True)
    # The module the kernels run as (also what shows in `ps` for the template and its kernels).
    parser.add_argument("--launcher", default="ipykernel_launcher")
    parser.add_argument(
        "--later",
        action="store_true",
        help="a shared template started ahead: its preload modules come on the control pipe",
    )
    parser.add_argument("preload", nargs="*")
    args = parser.parse_args(argv)
    shared = args.listen is not None and args.control is not None
    if not shared and (args.requests is None or args.replies is None):
        parser.error("give --requests and --replies, or --listen and --control")

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the build handles Ctrl-C, then closes us
    lifeline = _lifeline()
    if shared:  # a SIGTERM, handled: its forks stop their kernels, its socket folder goes
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if sys.platform.startswith("linux"):  # elsewhere: the request pipe's end (no thread here)
        lifeline.die_with_parent(args.parent, signal.SIGTERM if shared else signal.SIGKILL)
    startup = _startup_variables(os.environ)
    entry = sys.path[0] if sys.path else None  # `-m` put our working directory first
    # What the template loads lives as long as it does: a collection while it imports scans all
    # of it and frees next to nothing (measured: ipykernel's modules and pandas import in 1.03
    # CPU-s with the collector off, 1.22 with it on). As Python advises for a process that forks
    # without exec: the collector off while loading, what was loaded frozen before the forks,
    # then the collector on again (kernels inherit it).
    gc.disable()
    if shared and args.later:
        problem = _load((), first=KERNEL_MODULES)
        if problem is None:
            order = _read_order(args.control)
            if order is None:
                return 0  # its build did not need it
            entry = _move_to(order["cwd"], entry)
            problem = _load(order["preload"], first=())
    else:
        problem = _load(args.preload, first=KERNEL_MODULES)
    if problem is None:
        _warm_caches()
    # Out of the collector's sight, what is loaded now is neither scanned by a kernel's
    # collections nor written to (each write copies a page after fork). Measured: 0.3 of the
    # 4.5 CPU-s of 16 trivial notebooks.
    gc.freeze()
    gc.enable()
    if shared:
        SharedTemplate(args.listen, args.control, problem, lifeline).serve(
            lambda connection: Template(
                connection, Replies(connection), startup, entry, args.launcher
            )
        )
        return 0
    replies = Replies(args.replies)
    if problem is not None:
        replies.send(problem)
        return 1
    replies.send(_ready())
    Template(args.requests, replies, startup, entry, args.launcher).serve()
    return 0


def _ready() -> dict:
    return {"ready": True, "pid": os.getpid(), "modules": len(sys.modules)}


def _lifeline():
    """``nbpipe.executors.lifeline``, loaded from its file: importing it as a module of its
    package would import the executors (and what they import) into every kernel."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "executors", "lifeline.py")
    spec = importlib.util.spec_from_file_location("_nbpipe_lifeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_order(control: int) -> dict | None:
    """What a template started ahead waits for once it has imported the kernel's modules: its
    build's preload modules and kernels' working directory, one JSON line on the control pipe
    (``{"preload": [...], "cwd": ...}``); None when the pipe closes first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(control, 65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def _move_to(cwd: str, entry: str | None) -> str:
    """Into the working directory the template would have started in, its first entry of
    ``sys.path`` too (where ``-m`` put the one it started in): the new entry."""
    os.chdir(cwd)
    cwd = os.getcwd()
    if sys.path and sys.path[0] == entry:
        sys.path[0] = cwd
    return cwd


def _load(preload: Sequence[str], first: Sequence[str]) -> dict | None:
    """Imports ``first`` (the kernel's modules), then the preloads, one by one; the first that
    fails to import or leaves a thread running is the problem."""
    import importlib
    import threading
    import traceback

    # ipykernel's debugger imports debugpy, which warns about frozen modules unless told not to;
    # jupyter_client sets the same variable for the kernels it starts.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for index, module in enumerate((*first, *preload)):
        is_preload = index >= len(first)
        try:
            importlib.import_module(module)
        except BaseException as error:
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            return {"error": detail, "module": module, "reason": "import", "preload": is_preload}
        threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if threads or _zmq_context_exists():
            what = f"threads {', '.join(threads)}" if threads else "a zmq context"
            return {
                "error": f"importing it started {what}",
                "module": module,
                "reason": "threads",
                "preload": is_preload,
            }
    return None


def _warm_caches() -> None:
    """Fills the caches every kernel would otherwise fill on its own: a kernel's first cell is
    tokenized and run through IPython's input transformers, and its script magics (``%%bash``
    ...) build argparse help texts; each compiles regular expressions on first use, cached per
    process. Done once here, they come compiled in every forked kernel (measured: ~10 ms of a
    kernel's ~110 ms of CPU)."""
    import argparse
    import io
    import tokenize

    from IPython.core.inputtransformer2 import TransformerManager

    list(tokenize.generate_tokens(io.StringIO("x = 1\n").readline))
    TransformerManager().transform_cell("x = 1\n")
    argparse.ArgumentParser(prog="warm-up", description="help text").format_help()


def _zmq_context_exists() -> bool:
    zmq = sys.modules.get("zmq")
    return zmq is not None and getattr(zmq.Context, "_instance", None) is not None


def _startup_variables(env) -> dict[str, str]:
    return {
        key: value
        for key, value in env.items()
        if key.startswith("PYTHON") and key not in STARTUP_VARIABLES_IGNORED
    }


class Replies:
    """The reply pipe: one JSON object per line."""

    def __init__(self, fd: int):
        self.fd = fd

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data) :]


class SharedTemplate:
    """The accept loop of a shared template: one forked template per connection."""

    def __init__(self, listener: int, control: int, problem: dict | None, lifeline):
        self.listener = listener
        self.control = control
        self.problem = problem
        self.lifeline = lifeline
        self.children: set[int] = set()
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_w, False)

    def serve(self, template_for) -> None:
        import socket

        listener = socket.socket(fileno=self.listener)
        signal.set_wakeup_fd(self.wakeup_w)
        signal.signal(signal.SIGCHLD, _ignore)
        try:
            while True:
                ready, _, _ = select.select([listener, self.control, self.wakeup_r], [], [])
                if self.wakeup_r in ready:
                    os.read(self.wakeup_r, 4096)
                    self.reap()
                if self.control in ready and not os.read(self.control, 4096):
                    break  # our owner closed the pipe, or died
                if listener in ready:
                    connection, _ = listener.accept()
                    self.handle(connection, listener, template_for)
        finally:
            folder = os.path.dirname(listener.getsockname())
            listener.close()
            self.stop_children()
            if os.path.basename(folder).startswith("nbpipe-template-"):
                import shutil

                shutil.rmtree(folder, ignore_errors=True)

    def handle(self, connection, listener, template_for) -> None:
        fd = connection.detach()
        if self.problem is not None:
            with contextlib.suppress(OSError):
                Replies(fd).send(self.problem)
            os.close(fd)
            return
        try:
            pid = os.fork()
        except OSError as error:
            with contextlib.suppress(OSError):
                Replies(fd).send({"error": f"cannot fork a kernel template: {error}"})
            os.close(fd)
            return
        if pid == 0:  # a template of this connection's own; never returns
            code = 1
            try:
                listener.close()
                signal.set_wakeup_fd(-1)
                for own in (self.control, self.wakeup_r, self.wakeup_w):
                    os.close(own)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, _exit_on_sigterm)  # its kernels go with it
                if sys.platform.startswith("linux"):
                    self.lifeline.die_with_parent(os.getppid())
                template = template_for(fd)
                template.replies.send(_ready())
                template.serve()
                code = 0
            except BaseException:
                pass
            finally:
                os._exit(code)
        os.close(fd)
        self.children.add(pid)

    def reap(self) -> None:
        for _ in exited_children(self.children):
            pass

    def stop_children(self) -> None:
        """The templates still running stop their kernels and exit; they are waited for."""
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


class Template:
    """The request loop: forks kernels, reaps them, reports their end."""

    def __init__(
        self, requests: int, replies: Replies, startup: dict[str, str], entry, launcher: str
    ):
        self.launcher = launcher
        self.requests = requests
        self.replies = replies
        self.startup = startup
        self.entry = entry
        self.children: set[int] = set()
        self.folders: dict[int, str] = {}  # kernel pid -> its private socket folder
        self.buffer = b""
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_w, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wakeup_w)
        signal.signal(signal.SIGCHLD, _ignore)  # a Python handler, so that the wakeup fd is written
        try:
            while True:
                ready, _, _ = select.select([self.requests, self.wakeup_r], [], [])
                if self.wakeup_r in ready:
                    os.read(self.wakeup_r, 4096)
                    self.reap()
                if self.requests in ready:
                    data = os.read(self.requests, 65536)
                    if not data:
                        break  # our owner closed the pipe, or died
                    self.buffer += data
                    while b"\n" in self.buffer:
                        line, self.buffer = self.buffer.split(b"\n", 1)
                        self.replies.send(self.handle(json.loads(line)))
        except BrokenPipeError:
            pass  # our owner is gone
        finally:
            self.stop_children()

    def handle(self, request: dict) -> dict:
        env = request["env"]
        different = sorted(
            key
            for key in {*self.startup, *_startup_variables(env)}
            if self.startup.get(key) != env.get(key)
        )
        if different:
            return {"refused": f"the kernel's environment sets {', '.join(different)} otherwise"}
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(ready_r)
            os.close(ready_w)
            return {"error": f"cannot fork a kernel: {error}"}
        if pid == 0:  # the kernel; never returns
            os.close(ready_r)
            inherited = {self.requests, self.replies.fd, self.wakeup_r, self.wakeup_w}
            become_kernel(request, ready_w, self.entry, self.launcher, sorted(inherited))
        os.close(ready_w)
        os.read(ready_r, 1)  # the child closes its end once it has its own session
        os.close(ready_r)
        self.children.add(pid)
        folder = _private_folder(request["argv"])
        if folder is not None:
            self.folders[pid] = folder
        return {"pid": pid}

    def reap(self) -> None:
        for pid, status in exited_children(self.children):
            self.folders.pop(pid, None)  # its manager removes it
            self.replies.send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    def stop_children(self) -> None:
        """Kernels nobody can stop any more go with their process groups (what they started)."""
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()
        # Their managers are gone too (a worker that died): their socket folders go here.
        import shutil

        for folder in self.folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self.folders.clear()


def _private_folder(argv: list[str]) -> str | None:
    """The private socket folder (``nbpipe-kernel-*``, made by nbpipe's kernel manager) of the
    connection file in a kernel's arguments, if it is in one."""
    if "-f" not in argv or argv.index("-f") + 1 >= len(argv):
        return None
    folder = os.path.dirname(argv[argv.index("-f") + 1])
    return folder if os.path.basename(folder).startswith("nbpipe-kernel-") else None


def _ignore(signum, frame) -> None:
    pass


def become_kernel(request: dict, ready: int, entry, launcher: str, inherited: list[int]) -> None:
    """In the forked child: set up as a freshly spawned kernel would be, then run ipykernel."""
    code = 1
    try:
        os.setsid()
        os.close(ready)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in inherited:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        env = dict(request["env"])
        env["JPY_PARENT_PID"] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        if sys.path and sys.path[0] in ("", entry):
            del sys.path[0]  # as ipykernel_launcher does; IPython puts the working folder back
        _reseed()
        import importlib

        # ipykernel read JPY_PARENT_PID when the template imported it (a trait's default):
        # its parent poller must be told the template's pid in so many words
        parent = f"--IPKernelApp.parent_handle={os.getppid()}"
        sys.argv = [importlib.import_module(launcher).__file__, *request["argv"], parent]
        code = run_ipykernel()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        finish(code)


def _reseed() -> None:
    """Fresh random state: every forked child would otherwise draw what its siblings draw."""
    import random

    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def exited_children(children: set[int]) -> Iterator[tuple[int, int]]:
    """Reaps, without waiting, the children of this process that have exited: yields each one's
    pid and wait status and removes it from ``children`` (emptied when none is left at all)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        yield pid, status


if __name__ == "__main__":
    # no teardown of the modules it imported (pandas...): nothing of them needs it, and the
    # build waits for this process to end
    finish(main())
