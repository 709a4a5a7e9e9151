"""Forked kernels, on the side of the process that runs notebooks: its kernel template, and
whether a notebook's kernel may come from one.

A Python notebook whose kernelspec runs this very interpreter's ipykernel (``python -m
ipykernel_launcher -f {connection_file}``, the default) gets its kernel by fork from a template
process (``nbpipe.notebooks.template``) that has imported ipykernel and the pipeline's preload
modules: milliseconds and a fraction of the CPU of a new interpreter. Other kernels (R, Julia, a
conda environment's Python, a kernelspec with arguments or a provisioner of its own), platforms
without ``fork``, and builds with forking switched off (``DAG(fork_kernels=False)``,
``meta.fork_kernels: false``, ``NBPIPE_FORK_KERNELS=0``) start kernels as new processes.

Each process that runs notebooks (a worker; the building process under Serial) has at most one
template, started as the build warms up, so that its imports overlap the process's own; it is
stopped when the pool closes (Serial), when the worker exits (a multiprocessing finaliser), at
interpreter exit, and in any case dies with its process (``die_with_parent``, and the end of its
request pipe). The kernel provisioner (``nbpipe.notebooks.provisioner``) asks it for kernels.

Under ``Parallel`` the workers share one template process (``SharedTemplate``, started by the
building process before its workers): it imports ipykernel and the preloads once for the whole
build, and forks each worker a template of its own when the worker connects (a Unix socket in a
private folder), which then serves that worker exactly as a template it had started would.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import multiprocessing
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

logger = logging.getLogger("nbpipe")

SWITCH = "NBPIPE_FORK_KERNELS"
_OFF = ("0", "false", "no", "off")
_LAUNCHERS = ("ipykernel_launcher", "ipykernel")
STOP_TIMEOUT = 10.0  # seconds a closed template may take to stop its kernels and exit


class KernelTemplateError(RuntimeError):
    """The kernel template could not start: a preload module failed to import or started
    threads (a process with threads cannot be forked safely)."""


# -- which kernels are forked ---------------------------------------------------------------------
def why_not_fork(kernel_name: str, enabled: bool = True) -> str | None:
    """None when ``kernel_name``'s kernels can be forked from a template; else why they are
    started as new processes (for the build's log line)."""
    if not enabled:
        return "fork_kernels is off"
    reason = why_not_fork_here()
    if reason is not None:
        return reason
    from nbpipe.notebooks.source import _kernel_specs

    entry = _kernel_specs().get(kernel_name)
    if entry is None:
        return f"kernel {kernel_name!r} is not installed"
    spec = entry["spec"]
    if str(spec.get("language", "")).lower() != "python":
        return f"kernel {kernel_name!r} is not a Python kernel"
    if (spec.get("metadata") or {}).get("kernel_provisioner"):
        return f"kernel {kernel_name!r} has a kernel provisioner of its own"
    if spec.get("env"):
        return f"kernel {kernel_name!r} sets environment variables of its own"
    argv = list(spec.get("argv") or [])
    if not runs_this_ipykernel(argv):
        return f"kernel {kernel_name!r} runs `{' '.join(argv)}`, not this Python's ipykernel"
    return None


def why_not_fork_here() -> str | None:
    """None when this process may fork kernels at all; else why not (the environment's switch,
    or a platform without fork)."""
    if os.environ.get(SWITCH, "").strip().lower() in _OFF:
        return f"{SWITCH}={os.environ[SWITCH]}"
    if not hasattr(os, "fork") or sys.platform == "win32":
        return "this platform cannot fork"
    return None


def runs_this_ipykernel(argv: Sequence[str]) -> bool:
    """Whether a kernelspec's ``argv`` is the default ipykernel launcher of this interpreter
    (``python`` and ``python3[.N]`` are this interpreter to jupyter_client, too)."""
    if len(argv) != 5 or list(argv[1:]) not in (
        ["-m", launcher, "-f", "{connection_file}"] for launcher in _LAUNCHERS
    ):
        return False
    executable = argv[0]
    names = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info)}
    if executable in names:
        return True
    return os.path.abspath(os.path.expanduser(executable)) == os.path.abspath(sys.executable)


def kernel_launch(kernel_name: str, dag) -> tuple[tuple[str, ...] | None, str | None]:
    """How ``kernel_name``'s kernels start in ``dag``'s builds: (the template's preload modules,
    None) when they are forked, (None, why not) when they start as new processes. The DAG's
    ``fork_kernels`` and ``preload`` decide, with the environment's switch."""
    reason = why_not_fork(kernel_name, getattr(dag, "fork_kernels", True))
    if reason is not None:
        return None, reason
    return tuple(getattr(dag, "preload", ()) or ()), None


def say_how_kernels_start(kernel_name: str, dag) -> None:
    """The build's one log line about how its notebook kernels start."""
    preload, reason = kernel_launch(kernel_name, dag)
    if reason is not None:
        logger.info("notebook kernels start as new processes (%s)", reason)
    else:
        loaded = f" (preloaded: {', '.join(preload)})" if preload else ""
        logger.info("notebook kernels are forked from a template process%s", loaded)


# -- the template of this process -----------------------------------------------------------------
class KernelTemplate:
    """A running ``nbpipe.notebooks.template`` process and its two pipes (see there for the
    protocol). Safe to use from several threads; requests are answered one at a time."""

    def __init__(self, preload: Sequence[str], cwd: str | None = None, shared: str | None = None):
        """Starts a template process, or with ``shared`` (a ``SharedTemplate``'s address)
        connects to that one, which forks this process a template of its own."""
        self.preload = tuple(preload)
        self.process: subprocess.Popen | None = None
        self._connection: socket.socket | None = None
        if shared is not None:
            self._connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._connection.connect(shared)
            except BaseException:
                self._connection.close()
                raise
            requests_w = replies_r = self._connection.fileno()
        else:
            requests_r, requests_w = os.pipe()
            replies_r, replies_w = os.pipe()
            command = _template_command(self.preload)
            command[3:3] = ["--requests", str(requests_r), "--replies", str(replies_w)]
            try:
                self.process = subprocess.Popen(
                    command,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(requests_r, replies_w),
                    start_new_session=True,  # a terminal's Ctrl-C is the build's to handle
                )
            except BaseException:
                for fd in (requests_r, requests_w, replies_r, replies_w):
                    os.close(fd)
                raise
            os.close(requests_r)
            os.close(replies_w)
        self._requests: int | None = requests_w
        self._replies: int | None = replies_r
        self._buffer = b""
        self._lock = threading.Lock()
        self._state: dict | None = None  # the first message: ready, or why not
        self._exited: dict[int, int] = {}  # kernel pid -> exit code
        self._gone = False  # the reply pipe ended: the template is gone
        self._forked = False  # a kernel was asked for

    def ready(self) -> None:
        """Waits until the template has imported everything; raises KernelTemplateError if it
        could not."""
        with self._lock:
            self._wait_ready()

    def _wait_ready(self) -> None:
        if self._state is None:
            try:
                self._state = self._next_reply()
            except EOFError:
                self._state = {"error": "the kernel template exited", "module": None}
        if "error" in self._state:
            raise KernelTemplateError(_problem(self._state, self.preload))

    def start_kernel(self, argv: list[str], env: dict[str, str], cwd: str) -> int | None:
        """Forks a kernel running ipykernel with ``argv``; its pid, or None when the template
        refuses (the kernel needs an interpreter started otherwise: spawn it)."""
        with self._lock:
            self._wait_ready()
            if self._requests is None:
                raise KernelTemplateError("the kernel template was stopped")
            data = (json.dumps({"argv": argv, "env": env, "cwd": cwd}) + "\n").encode()
            self._forked = True
            try:
                while data:
                    data = data[os.write(self._requests, data) :]
                reply = self._next_reply()
            except (BrokenPipeError, EOFError):
                raise KernelTemplateError("the kernel template exited") from None
        if "refused" in reply:
            logger.debug("kernel started as a new process: %s", reply["refused"])
            return None
        if "error" in reply:
            raise KernelTemplateError(reply["error"])
        return int(reply["pid"])

    def exit_code(self, pid: int) -> int | None:
        """None while kernel ``pid`` runs, else its exit code (negative: killed by a signal)."""
        with self._lock:
            self._drain()
            if pid in self._exited:
                return self._exited[pid]
            if not self._gone:
                return None
        # The template is gone: its kernels were reparented, and are reaped by their new parent.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return self._exited.setdefault(pid, -9)
        except PermissionError:
            return None
        return None

    def wait_for(self, pid: int, timeout: float | None = None) -> int | None:
        """Waits for kernel ``pid`` to end (at most ``timeout`` seconds); its exit code or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.exit_code(pid)
            if code is not None:
                return code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            replies = self._replies
            if replies is None or self._gone:
                time.sleep(0.05 if left is None else min(0.05, left))
            else:
                select.select([replies], [], [], 0.5 if left is None else min(0.5, left))

    def _next_reply(self) -> dict:
        """The next message that is not an exit notice (blocking); EOFError when the pipe ends."""
        while True:
            message = self._message(block=True)
            if message is None:
                raise EOFError
            if "exited" in message:
                self._exited[int(message["exited"])] = int(message["code"])
            else:
                return message

    def _drain(self) -> None:
        """Records the exit notices already in the pipe (never blocks)."""
        while (message := self._message(block=False)) is not None:
            if "exited" in message:
                self._exited[int(message["exited"])] = int(message["code"])
            elif self._state is None:
                self._state = message

    def _message(self, block: bool) -> dict | None:
        while b"\n" not in self._buffer:
            if self._replies is None or self._gone:
                return None
            readable, _, _ = select.select([self._replies], [], [], None if block else 0)
            if not readable:
                return None
            data = os.read(self._replies, 65536)
            if not data:
                self._gone = True
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        if self._requests is None:
            return False
        if self.process is None:
            return not self._gone
        return self.process.poll() is None

    def close(self) -> None:
        """Stops the template: it kills the kernels still running, then exits; it is waited
        for (so that its CPU time counts in this process's children). A template that never
        forked a kernel is killed at once (it may still be importing). A shared template's
        fork for this process is told by the end of the connection, and waited for until it
        closes its end."""
        if self._connection is not None:
            with self._lock:
                if self._requests is not None:
                    self._requests = None
                    with contextlib.suppress(OSError):
                        self._connection.shutdown(socket.SHUT_WR)
                    self._connection.settimeout(STOP_TIMEOUT)
                    with contextlib.suppress(OSError):
                        while self._connection.recv(65536):
                            pass
                    self._replies = None
                    self._connection.close()
            return
        with self._lock:
            requests, self._requests = self._requests, None
            if requests is not None:
                os.close(requests)
            forked = self._forked
        if not forked:
            with contextlib.suppress(OSError):
                self.process.kill()
        wait_or_kill(self.process, STOP_TIMEOUT)
        with self._lock:
            replies, self._replies = self._replies, None
            if replies is not None:
                os.close(replies)


def wait_or_kill(process: subprocess.Popen, timeout: float) -> None:
    """Waits for ``process`` to end, and kills it if it has not after ``timeout`` seconds.

    Where the system has process file descriptors (Linux), the wait wakes when the process
    ends; ``Popen.wait(timeout)`` polls instead, sleeping up to 50 ms between looks, and every
    build's end waits for its template."""
    deadline = time.monotonic() + timeout
    if hasattr(os, "pidfd_open") and process.returncode is None:
        with contextlib.suppress(OSError):  # gone already, or no pidfd on this kernel
            ended = os.pidfd_open(process.pid)
            try:
                select.select([ended], [], [], timeout)
            finally:
                os.close(ended)
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _template_command(preload: Sequence[str]) -> list[str]:
    command = [sys.executable, "-m", "nbpipe.notebooks.template"]
    command += ["--parent", str(os.getpid()), "--launcher", "ipykernel_launcher"]
    return [*command, "--", *preload]


class SharedTemplate:
    """A template process shared by a build's workers (see the module), owned by the building
    process: ``address`` is where workers connect; ``close`` stops it, with what it forked.

    Started with ``preload`` None, it is started ahead of its build: it imports the kernel's
    modules meanwhile, and ``order`` gives it the build's preload modules and working
    directory (``start_template_ahead``)."""

    def __init__(self, preload: Sequence[str] | None, cwd: str | None = None):
        self.preload = None if preload is None else tuple(preload)
        self._environment = dict(os.environ)
        self._folder = tempfile.mkdtemp(prefix="nbpipe-template-")
        self.address = os.path.join(self._folder, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control_r, control_w = os.pipe()
        try:
            listener.bind(self.address)
            listener.listen(64)
            command = _template_command(self.preload or ())
            command[3:3] = ["--listen", str(listener.fileno()), "--control", str(control_r)]
            if self.preload is None:
                command[3:3] = ["--later"]
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                pass_fds=(listener.fileno(), control_r),
                start_new_session=True,  # a terminal's Ctrl-C is the build's to handle
            )
        except BaseException:
            os.close(control_w)
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        finally:
            listener.close()
            os.close(control_r)
        self._control: int | None = control_w

    def order(self, preload: Sequence[str], cwd: str | None) -> bool:
        """Gives a template started ahead its build's preload modules and working directory.
        False, and nothing sent, when it cannot serve as a template started now would: it was
        ordered already or has ended, or this process's environment changed since it started
        (a pipeline's code may set variables its preload modules read)."""
        if self.preload is not None or self._control is None or self.process.poll() is not None:
            return False
        if dict(os.environ) != self._environment:
            return False
        order = {"preload": list(preload), "cwd": os.path.abspath(cwd or os.getcwd())}
        try:
            os.write(self._control, (json.dumps(order) + "\n").encode())
        except OSError:
            return False
        self.preload = tuple(preload)
        return True

    def close(self) -> None:
        """Stops the shared template: the templates it forked stop their kernels, and all are
        waited for (their CPU time counts in this process's children). One started ahead and
        never ordered has forked nothing: it is killed, not waited for to finish its imports."""
        control, self._control = self._control, None
        if control is None:
            return
        if self.preload is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        os.close(control)
        wait_or_kill(self.process, STOP_TIMEOUT)
        shutil.rmtree(self._folder, ignore_errors=True)


_ahead: SharedTemplate | None = None  # started ahead of the build, not yet ordered


def start_template_ahead() -> None:
    """Starts a shared template ahead of a build, before the pipeline is even loaded, so that
    the kernel's imports (most of a CPU-second) overlap the loading (``nbpipe build``). The
    build's ``shared_template`` takes it; ``drop_template_ahead`` stops it when the build will
    not (no notebook kernels forked in worker processes). Nothing where kernels cannot fork."""
    global _ahead
    if _ahead is not None or why_not_fork_here() is not None:
        return
    try:
        _ahead = SharedTemplate(None)
    except OSError:  # the build starts its own, and says why if that fails too
        logger.debug("no kernel template started ahead", exc_info=True)


def shared_template(preload: Sequence[str], cwd: str | None = None) -> SharedTemplate:
    """The build's shared template: the one started ahead when it can serve this build, else a
    new one."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None:
        if ahead.order(preload, cwd):
            return ahead
        ahead.close()
    return SharedTemplate(preload, cwd)


def drop_template_ahead() -> None:
    """Stops the template started ahead, if no build took it."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None:
        ahead.close()


def _problem(state: dict, preload: Sequence[str]) -> str:
    module = state.get("module")
    if module is None:
        return str(state.get("error"))
    if not state.get("preload"):
        return (
            f"the kernel template could not import {module} ({state['error']}); "
            f"set {SWITCH}=0 to start kernels as new processes"
        )
    if state.get("reason") == "threads":
        return (
            f"preload module {module!r} cannot be preloaded in the kernel template: "
            f"{state['error']}, and a process with threads cannot be forked safely. Remove it "
            "from the pipeline's preload list (meta.preload; notebooks can still import it)"
        )
    return f"preload module {module!r} failed to import in the kernel template: {state['error']}"


_template: KernelTemplate | None = None
_template_lock = threading.Lock()
_exit_hook_set = False


_shared: tuple[str, tuple[str, ...]] | None = None  # a shared template: address, preload


def use_shared_template(address: str, preload: Sequence[str]) -> None:
    """This process's templates with ``preload`` come from the shared template at ``address``
    (a worker of a build whose building process started one)."""
    global _shared
    _shared = (address, tuple(preload))


def template_for(preload: Sequence[str], cwd: str | None = None) -> KernelTemplate:
    """This process's template with ``preload``, started now if there is none (another one,
    with other preloads, is stopped first): forked by the build's shared template when there is
    one with these preloads. Returns at once: the template imports meanwhile."""
    global _template
    preload = tuple(preload)
    with _template_lock:
        if _template is not None and _template.preload == preload and _template.alive():
            return _template
        stale, _template = _template, None
    if stale is not None:
        stale.close()
    shared = _shared[0] if _shared is not None and _shared[1] == preload else None
    template = KernelTemplate(preload, cwd, shared)
    with _template_lock:
        _template = template
    _stop_at_exit()
    return template


def current_template() -> KernelTemplate | None:
    return _template


def stop_template() -> None:
    """Stops this process's template, if any (its kernels with it)."""
    global _template
    with _template_lock:
        template, _template = _template, None
    if template is not None:
        template.close()


def _stop_at_exit() -> None:
    global _exit_hook_set
    if _exit_hook_set:
        return
    _exit_hook_set = True
    if multiprocessing.parent_process() is not None:
        from multiprocessing.util import Finalize

        # worker processes skip atexit; after the warm kernels' finaliser (priority 100)
        Finalize(None, stop_template, exitpriority=50)
    else:
        atexit.register(stop_template)


def _forget_template_in_child() -> None:
    """A forked child (a worker started with ``fork``) does not own its parent's template: it
    drops its copies of the pipes and will start its own."""
    global _template, _exit_hook_set, _template_lock, _shared, _ahead
    template, _template = _template, None
    _ahead = None  # the parent's to order or stop
    _template_lock = threading.Lock()
    _exit_hook_set = False
    _shared = None
    if template is not None and template._connection is not None:
        template._connection.close()  # this process's copy; the parent's stays connected
    elif template is not None:
        for fd in (template._requests, template._replies):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_template_in_child)
