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

    @classmethod
    async def spawn(
        cls, command: Sequence[str], cwd: str, env: dict[str, str], log_limit: int
    ) -> BuildProcess:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own process group: one signal stops all of it
            preexec_fn=procs.parent_death_signal(),  # and the build stops if the server dies
            limit=LINE_LIMIT,
        )
        return cls(process, log_limit)

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
            await asyncio.wait_for(asyncio.shield(process.wait()), grace_period)
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

    def kill_now(self) -> None:
        """SIGKILL to all of it, at once (the server lost track of the build, or stops now)."""
        if self.process.returncode is None:
            self.tree += procs.tree_identities(self.process.pid)
            procs.signal_group(self.process.pid, procs.KILL)
            procs.signal_processes(self.tree, procs.KILL)


def stop_leftover(recorded: str, grace_period: float) -> None:
    """Stops a build process that a dead server left behind (``recorded`` is its identity):
    SIGTERM to its group now, SIGKILL to its tree after ``grace_period`` (from a timer thread:
    this runs at start-up, before the event loop)."""
    if not procs.is_alive(recorded):
        return
    pid = int(recorded.split("@", 1)[0])
    tree = procs.tree_identities(pid)
    procs.signal_group(pid, signal.SIGTERM)
    timer = threading.Timer(grace_period, procs.signal_processes, (tree, procs.KILL))
    timer.daemon = True
    timer.start()
