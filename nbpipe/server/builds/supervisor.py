"""A build's child process: starting it, collecting its log, stopping all of it.

``nbpipe build --json`` runs in a session of its own, so the CLI and its worker processes form
one process group that one signal reaches. On Linux it is also spawned with the parent-death
signal (``procs.parent_death_signal``): a server that dies without stopping its builds (SIGKILL,
out of memory) still has them get SIGTERM and stop cleanly.

Stopping (:meth:`BuildProcess.stop`): SIGTERM to the group, which the CLI turns into a
KeyboardInterrupt (workers stopped, kernels shut down, staged products discarded); after the
grace period, SIGKILL to whatever of the tree is left. The tree is recorded before the first
signal: Jupyter kernels live in sessions of their own, out of reach of the group signal, and
once their parent is gone they could no longer be found by their parent links.

Spawn from the event loop's thread only: the parent-death signal is tied to the thread that
forked the child, and that one lives as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbpipe.server import procs
from nbpipe.server.builds.protocol import LINE_LIMIT

logger = logging.getLogger("nbpipe.server")


@dataclass
class BuildProcess:
    """One running ``nbpipe build --json`` and what it wrote to stderr (its log's tail)."""

    process: asyncio.subprocess.Process
    log_limit: int = 64 * 1024
    log: bytearray = field(default_factory=bytearray)
    tree: list[str] = field(default_factory=list)  # process identities seen when stopping
    transport: asyncio.SubprocessTransport | None = None
    exit: asyncio.Future | None = None  # done when the process has exited
    mark: tuple[str, str] | None = None  # the environment variable its processes inherit

    @classmethod
    async def spawn(
        cls,
        command: Sequence[str],
        cwd: str,
        env: dict[str, str],
        log_limit: int,
        mark: tuple[str, str] | None = None,
    ) -> BuildProcess:
        """Starts the build process. ``mark`` (a variable and its value) is added to its
        environment: every process of the build inherits it, so that what outlived the build
        process can still be found (:meth:`sweep`)."""
        loop = asyncio.get_running_loop()
        if mark is not None:
            env = {**env, mark[0]: mark[1]}
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitProtocol(LINE_LIMIT, loop),
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own process group: one signal stops all of it
            preexec_fn=procs.parent_death_signal(),  # and the build stops if the server dies
        )
        process = asyncio.subprocess.Process(transport, protocol, loop)
        return cls(process, log_limit, transport=transport, exit=protocol.exit, mark=mark)

    async def wait_exit(self) -> int:
        """The exit code, as soon as the process has exited. (``Process.wait()`` also waits for
        its pipes to close, which a process that outlived it may hold open forever.)"""
        await asyncio.shield(self.exit)
        code = self.process.returncode
        assert code is not None
        return code

    def close_output(self) -> None:
        """Stops reading the process's pipes (it has exited; a process it left behind holds
        them): their readers get what was buffered, then the end."""
        if self.transport is not None:
            self.transport.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def drain_stderr(self, build_id: str) -> None:
        """Keeps the last ``log_limit`` bytes of stderr (log lines, what tasks printed)."""
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.log += chunk
            if len(self.log) > 2 * self.log_limit:
                del self.log[: len(self.log) - self.log_limit]
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("build %s: %s", build_id, chunk.decode("utf-8", "replace").rstrip())

    def log_text(self) -> str:
        return bytes(self.log[-self.log_limit :]).decode("utf-8", "replace")

    def log_tail(self, lines: int) -> str:
        text = bytes(self.log[-8192:]).decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    async def stop(self, grace_period: float, build_id: str) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of the tree is left after
        ``grace_period`` seconds."""
        process = self.process
        if process.returncode is not None:
            return
        self.tree = await asyncio.to_thread(procs.tree_identities, process.pid)
        procs.signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wait_exit(), grace_period)
        if process.returncode is None:
            logger.warning(
                "nbpipe build %s did not stop within %.1f s of SIGTERM; killing it",
                build_id,
                grace_period,
            )
            self.tree += await asyncio.to_thread(procs.tree_identities, process.pid)
            procs.signal_group(process.pid, procs.KILL)
        procs.signal_processes(self.tree, procs.KILL)

    def exited(self, code: int) -> None:
        """The process has exited: nothing of its tree may outlive it where a stop was asked
        (the tree was recorded) or where it died of a signal (its workers, in its group, would
        otherwise run on, orphaned)."""
        if self.tree:
            procs.signal_processes(self.tree, procs.KILL)
        if code < 0:
            procs.signal_group(self.process.pid, procs.KILL)

    def sweep(self) -> int:
        """SIGKILL to every process still marked as this build's (kernels in sessions of their
        own, anything the build started that outlived it); how many. Blocking (it reads every
        process's environment): call it from a thread."""
        if self.mark is None:
            return 0
        return procs.signal_processes(procs.marked(*self.mark), procs.KILL)

    def kill_now(self) -> None:
        """SIGKILL to all of it, at once (the server lost track of the build, or stops now)."""
        if self.process.returncode is None:
            self.tree += procs.tree_identities(self.process.pid)
            procs.signal_group(self.process.pid, procs.KILL)
            procs.signal_processes(self.tree, procs.KILL)


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's protocol for a child with stream pipes, which also says when the process
    exited (not when its pipes closed)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=limit, loop=loop)
        self.exit: asyncio.Future = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exit.done():
            self.exit.set_result(None)


def stop_leftover(recorded: str | None, grace_period: float, mark: tuple[str, str]) -> None:
    """Stops what a dead server left of a build: its build process (``recorded`` is its
    identity, if known) and every process marked as the build's. SIGTERM to the build process's
    group now, SIGKILL to all of it after ``grace_period`` (from a timer thread: this runs at
    start-up, before the event loop)."""
    tree = procs.marked(*mark)
    if recorded and procs.is_alive(recorded):
        pid = int(recorded.split("@", 1)[0])
        tree += procs.tree_identities(pid)
        procs.signal_group(pid, signal.SIGTERM)
    if not tree:
        return
    timer = threading.Timer(grace_period, procs.signal_processes, (tree, procs.KILL))
    timer.daemon = True
    timer.start()
