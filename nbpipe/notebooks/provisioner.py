"""A jupyter_client kernel provisioner that forks kernels from this process's kernel template.

``ForkProvisioner`` is registered as the entry point ``nbpipe-fork`` of the group
``jupyter_client.kernel_provisioners`` (pyproject.toml). It is selected in memory only:
``ForkingKernelManager`` hands jupyter_client a copy of the notebook's kernelspec that names it,
so the user's kernelspec files are never touched, and papermill and nbclient run the kernel
unchanged (they get the manager as ``km``).

It is jupyter_client's ``LocalProvisioner`` with one difference: the kernel process comes from
``KernelTemplate.start_kernel`` instead of ``Popen``. Everything else (connection file, ports,
environment, interrupt by SIGINT to the kernel's process group, terminate, kill, polling) is
``LocalProvisioner``'s code acting on ``ForkedProcess``, a ``Popen`` look-alike whose exit comes
from the template (which reaps its children). A launch the template cannot serve (a command that
is not this interpreter's ipykernel, start-up variables the template does not share, an
``independent`` kernel, redirected streams) is spawned as ``LocalProvisioner`` would.

A spawned kernel whose kernelspec is this interpreter's default ipykernel launcher runs as
``python -m nbpipe.notebooks.launcher`` instead: the same kernel, that ends as forked kernels end
(``nbpipe.notebooks.kernel_end``: no wait on ipykernel's exit race, no teardown of its modules).

Every ipykernel kernel that nbpipe's managers start, forked or spawned, talks to its client over
Unix domain sockets (zmq's ``ipc`` transport) in a private folder of its own, instead of TCP
ports on localhost. jupyter_client picks a kernel's free TCP ports by binding and releasing them,
so two processes starting kernels at once (two workers of a build) could pick the same port, and
one kernel then died with ``ZMQError: Address already in use``. A socket file in a folder that
only one kernel uses cannot be picked twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from traitlets import DottedObjectName, List, Type, Unicode, default

from nbpipe.notebooks.forking import _LAUNCHERS, KernelTemplate, runs_this_ipykernel, template_for
from nbpipe.notebooks.kernelspecs import QuickKernelSpecManager

PROVISIONER_NAME = "nbpipe-fork"
#: The module that spawned ipykernel kernels run as (``format_kernel_cmd``)
LAUNCHER = "nbpipe.notebooks.launcher"
_ENTRY_POINT = "nbpipe.notebooks.provisioner:ForkProvisioner"
KILL_WAIT = 0.5  # seconds
QUICK_POLL = 0.005  # seconds: how often a killed kernel is polled in its first KILL_WAIT
#: The longest Unix socket path (``sun_path``) every POSIX system takes, terminator included.
SOCKET_PATH_MAX = 104


class ForkedProcess:
    """The part of ``subprocess.Popen`` that LocalProvisioner and KernelManager use, for a
    kernel forked by ``template`` (its child, not ours: its exit is reported by the template)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, template: KernelTemplate):
        self.pid = pid
        self.template = template
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.template.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.template.wait_for(self.pid, timeout)
            if self.returncode is None:
                import subprocess

                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernels are forked from the kernel template (see the module)."""

    preload = List(Unicode(), help="Modules the kernel template imports before forking").tag(
        config=True
    )

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        pid = None
        template = None
        if _forkable(cmd, kwargs):
            template = template_for(self.preload, kwargs.get("cwd"))
            cwd = str(kwargs.get("cwd") or os.getcwd())
            env = {str(k): str(v) for k, v in (kwargs.get("env") or os.environ).items()}
            pid = template.start_kernel(cmd[3:], env, cwd)
        if pid is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(pid, template)
        self.pid = pid
        self.pgid = pid  # the child called setsid before the template answered
        self.cwd = cwd
        return self.connection_info

    async def kill(self, restart: bool = False) -> None:
        """Kills the kernel's process group, and waits (briefly) for the template to reap it: the
        kernel manager would otherwise poll again only after a tenth of a second."""
        await super().kill(restart)
        if isinstance(self.process, ForkedProcess):
            self.process.template.wait_for(self.process.pid, KILL_WAIT)

    async def get_provisioner_info(self) -> dict:
        info = await super().get_provisioner_info()
        info["forked"] = isinstance(self.process, ForkedProcess)
        return info


def _forkable(cmd: list[str], kwargs: dict[str, Any]) -> bool:
    return (
        len(cmd) >= 3
        and os.path.abspath(cmd[0]) == os.path.abspath(sys.executable)
        and cmd[1] == "-m"
        and cmd[2] in (*_LAUNCHERS, LAUNCHER)
        and not kwargs.get("independent")
        and all(kwargs.get(stream) is None for stream in ("stdin", "stdout", "stderr"))
    )


def _without_test_pause(decorated: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """jupyter_client's ``start_kernel`` and ``shutdown_kernel`` wear a decorator that keeps the
    manager's ``ready`` future and then sleeps 10 ms, "so that tests can capture the state
    before done": every notebook would wait 20 ms doing nothing, on its own critical path (a
    warm kernel starts while the notebook before it runs). This is the method the decorator
    wraps, with ``ready`` kept as the decorator keeps it and no pause; a jupyter_client whose
    method is not decorated keeps its own."""
    method = getattr(decorated, "__wrapped__", None)
    if method is None:
        return decorated

    @functools.wraps(method)
    async def without_pause(self, *args: Any, **kwargs: Any) -> Any:
        if self._attempted_start or not self._ready:
            self._ready = None  # the ``ready`` property makes a fresh future
        ready = self.ready
        try:
            result = await method(self, *args, **kwargs)
        except Exception as error:
            ready.set_exception(error)
            self.log.exception(ready.exception())  # as jupyter_client's (it retrieves it)
            raise
        if self.owns_kernel:
            ready.set_result(None)
        return result

    return without_pause


class OwnKernelManager(AsyncKernelManager):
    """An AsyncKernelManager that remembers the clients it made: papermill does not stop the
    client of a kernel it was given (``km``), so ``close_clients`` does, with the kernel. Its
    clients are ``QuickReadyClient``s; its kernelspecs are read without importing IPython; its
    kernels start and stop without jupyter_client's pause for tests (``_without_test_pause``).

    An ipykernel kernel gets a private folder (``nbpipe-kernel-*`` in the temporary folder) for
    its connection file and its ``ipc`` sockets, removed when the kernel's resources are cleaned
    up (shutdown, or a start that failed); see the module for why. Other kernels (IRkernel,
    IJulia read ``ip`` and ``port`` as TCP) keep jupyter_client's TCP ports."""

    client_class = DottedObjectName("nbpipe.notebooks.provisioner.QuickReadyClient")
    client_factory = Type(klass="nbpipe.notebooks.provisioner.QuickReadyClient")

    start_kernel = _without_test_pause(AsyncKernelManager.start_kernel)
    shutdown_kernel = _without_test_pause(AsyncKernelManager.shutdown_kernel)

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self) -> KernelSpecManager:
        return QuickKernelSpecManager(data_dir=self.data_dir)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel's command; this interpreter's default ipykernel launcher is swapped for
        nbpipe's (``nbpipe.notebooks.launcher``): the same kernel, ending as forked kernels end."""
        command = super().format_kernel_cmd(extra_arguments)
        spec = self.kernel_spec
        if spec is not None and runs_this_ipykernel(spec.argv):
            command[2] = LAUNCHER
        return command

    async def _async_pre_start_kernel(self, **kw: Any):
        if "_nbpipe_folder" not in self.__dict__:  # not on a restart: the kernel keeps its folder
            self.__dict__["_nbpipe_folder"] = self._use_private_sockets()
        return await super()._async_pre_start_kernel(**kw)

    def _use_private_sockets(self) -> str | None:
        """Switches to the ``ipc`` transport in a new private folder (returned), when the kernel
        is ipykernel on a system with Unix sockets and the socket paths fit."""
        spec = self.kernel_spec
        argv = list(spec.argv) if spec is not None else []
        if os.name != "posix" or not any("ipykernel" in arg for arg in argv):
            return None
        folder = tempfile.mkdtemp(prefix="nbpipe-kernel-")
        sockets = os.path.join(folder, "ipc")  # the kernel binds ipc-1 ... ipc-5
        if len(f"{sockets}-99999") >= SOCKET_PATH_MAX:  # a very long TMPDIR
            os.rmdir(folder)
            return None
        self.transport = "ipc"
        self.cache_ports = False  # the port cache is for TCP ports
        self.ip = sockets
        self.connection_file = os.path.join(folder, "kernel.json")
        return folder

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            folder = self.__dict__.pop("_nbpipe_folder", None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        """Waits for the kernel to end, polling it every few milliseconds for the first half
        second: a killed kernel is gone within milliseconds, and jupyter_client polls again
        only after ``pollinterval`` (a tenth of a second, which every spawned kernel's stop
        spent; a forked kernel's kill waits for the template's notice instead)."""
        quick_until = time.monotonic() + KILL_WAIT
        while await self._async_is_alive():
            await asyncio.sleep(QUICK_POLL if time.monotonic() < quick_until else pollinterval)

    async def request_exit(self) -> None:
        """The first half of jupyter_client's ``shutdown_kernel()`` (not ``now``): the kernel is
        sent a shutdown request over its control channel, and ends as a Python process ends,
        its user namespace cleared (open files flushed and closed) and its exit handlers run.
        Unlike ``shutdown_kernel``, no interrupt comes first: a kernel whose notebook has run to
        its end is idle. ``finish_exit`` waits for the end."""
        if not self.owns_kernel or not self.has_kernel:
            return
        self.shutting_down = True
        self.stop_restarter()
        await self.request_shutdown()

    async def finish_exit(self) -> None:
        """The second half: waits for the kernel to end (``shutdown_wait_time``, SIGTERM
        halfway, then SIGKILL, as jupyter_client does), and removes its connection files."""
        if self.has_kernel:
            await self.finish_shutdown()
        await self.cleanup_resources()

    def client(self, **kwargs: Any):
        client = super().client(**kwargs)
        self.__dict__.setdefault("_nbpipe_clients", []).append(client)
        return client

    def close_clients(self) -> None:
        for client in self.__dict__.pop("_nbpipe_clients", []):
            client.stop_channels()


class ForkingKernelManager(OwnKernelManager):
    """An AsyncKernelManager whose kernels come from ``ForkProvisioner``: the kernelspec it
    reads is a copy that names the provisioner (with the template's ``preload``), unless the
    kernelspec names a provisioner of its own."""

    preload = List(Unicode())

    @property
    def kernel_spec(self):
        fresh = self._kernel_spec is None
        spec = AsyncKernelManager.kernel_spec.fget(self)  # read from disk, once per manager
        if fresh and spec is not None and "kernel_provisioner" not in spec.metadata:
            spec.metadata = {
                **spec.metadata,
                "kernel_provisioner": {
                    "provisioner_name": PROVISIONER_NAME,
                    "config": {"preload": list(self.preload)},
                },
            }
        return spec


class QuickReadyClient(AsyncKernelClient):
    """The kernel client nbpipe's managers make: ready as soon as the kernel answered
    ``kernel_info`` on the shell channel and its IOPub messages for that request arrived (the
    proof that IOPub is connected), instead of after a further 0.2 s of IOPub silence, which
    jupyter_client waits for every kernel (papermill would pay it once per notebook)."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        requests: set[str] = set()
        while True:
            requests.add(self.kernel_info())
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if reply["msg_type"] == "kernel_info_reply" and await self._iopub_idle(requests):
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _iopub_idle(self, requests: set[str]) -> bool:
        """Reads IOPub until the kernel's idle status for one of ``requests`` (True), or 0.2 s
        without a message (True if any message came, as jupyter_client's own check)."""
        seen = False
        while True:
            try:
                message = await self.iopub_channel.get_msg(timeout=0.2)
            except Empty:
                return seen
            seen = True
            if (
                message["msg_type"] == "status"
                and message["content"].get("execution_state") == "idle"
                and message["parent_header"].get("msg_id") in requests
            ):
                return True


def _register() -> None:
    """The entry point, in memory too: a working tree used without reinstalling still works."""
    factory = KernelProvisionerFactory.instance()
    if PROVISIONER_NAME not in factory.provisioners:
        from importlib.metadata import EntryPoint

        factory.provisioners[PROVISIONER_NAME] = EntryPoint(
            PROVISIONER_NAME, _ENTRY_POINT, KernelProvisionerFactory.GROUP_NAME
        )


_register()
