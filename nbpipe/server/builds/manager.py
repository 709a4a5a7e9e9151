"""Running builds: one ``nbpipe build --json`` child process per build, watched from the event loop.

A build never runs in the server process. The manager starts the CLI in a new session (so the
CLI and its worker processes form one process group), reads its JSON event lines as they come,
records each in the store and then publishes it on the Jupyter server's event bus. A build that
crashes, hangs or eats memory takes down its own process only. The reverse holds on Linux: the CLI
is spawned with a parent-death signal (``procs.parent_death_signal``), so a server that dies
without stopping its builds (SIGKILL) still has them get SIGTERM and stop cleanly.

Life of a build::

    start()   reserve the pipeline (409 if it is building) -> record "starting" -> spawn the CLI
              (``--partially=T`` per target task), from the event loop's thread
    _watch()  for each stdout line: record the event, then emit it (so a client that receives an
              event and reloads the REST snapshot sees at least that event)
              process exit -> final state from the engine's outcome, the exit code, or the
              stop that was asked for -> record -> emit task_cancelled for any task the
              process left unsettled (it died) -> emit build_ended
    cancel()  -> "cancelling"; SIGTERM to the process group: the CLI turns it into
              KeyboardInterrupt, stops its workers, shuts kernels down and discards staged
              products; after ``grace_period`` whatever is left of the tree (kernels included,
              found through /proc) gets SIGKILL
    stop_all() the server is stopping: the same stop, and the builds end "interrupted"

Only the event loop touches the manager's state (``active``, ``building``), so checking and
reserving a pipeline is atomic without locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbpipe.engine.events import EVENT_SCHEMA_VERSION, STATUS_AFTER, EventKind
from nbpipe.server import procs
from nbpipe.server.errors import ApiError, Conflict, NotFound, TooManyBuilds
from nbpipe.server.store import StoreThread
from nbpipe.server.views import event_details

logger = logging.getLogger("nbpipe.server")

ENGINE_EVENTS = frozenset(kind.value for kind in EventKind)
#: How long a JSON line may be (a failed task's traceback can be long).
LINE_LIMIT = 32 * 1024 * 1024


@dataclass
class BuildSettings:
    python: str = sys.executable  # the interpreter that runs `-m nbpipe build`
    max_concurrent: int = 4
    processes: int | None = None  # passed as --processes; None keeps the pipeline's executor
    grace_period: float = 3.0  # SIGTERM -> SIGKILL
    log_tail_bytes: int = 64 * 1024
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class RunningBuild:
    id: str
    pipeline: str  # relative to the root
    spec_path: Path
    process: asyncio.subprocess.Process | None = None
    stop_reason: str | None = None  # "cancelled" | "interrupted" | "error": a stop was asked
    incompatible: str | None = None  # why the build's event stream cannot be read
    outcome: str | None = None  # the engine's build_finished outcome
    summary: dict[str, Any] | None = None
    log: bytearray = field(default_factory=bytearray)
    tree: list[str] = field(default_factory=list)  # process identities seen at stop time
    watcher: asyncio.Task | None = None
    stopper: asyncio.Task | None = None
    state: str = "starting"


Emit = Callable[[dict[str, Any]], None]


class BuildManager:
    def __init__(self, root: str, store: StoreThread, emit: Emit, settings: BuildSettings):
        self.root = root
        self.store = store
        self.emit = emit
        self.settings = settings
        self.active: dict[str, RunningBuild] = {}  # build id -> build
        self.building: dict[str, str] = {}  # pipeline -> build id
        self.owner = procs.identity(os.getpid()) or str(os.getpid())
        self._closing = False

    # -- starting ------------------------------------------------------------------------------
    async def start(
        self,
        pipeline: str,
        spec_path: Path,
        force: bool = False,
        targets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Starts a build of ``pipeline`` (relative to the root, already confined to it): every
        outdated task, or only ``targets`` and the tasks they need."""
        if self._closing:
            raise Conflict("the server is shutting down")
        if pipeline in self.building:
            running = self.building[pipeline]
            raise Conflict(f"{pipeline} is already building", build_id=running)
        if len(self.active) >= self.settings.max_concurrent:
            raise TooManyBuilds(
                f"{len(self.active)} builds are running, the most this server allows "
                "(NbpipeApp.max_concurrent_builds); try again when one has finished"
            )
        build = RunningBuild(uuid.uuid4().hex, pipeline, spec_path)
        self.active[build.id] = build  # reserved before the first await: no race
        self.building[pipeline] = build.id
        targets = list(dict.fromkeys(targets))
        try:
            await self.store.call(
                self.store.store.create_build,
                build.id,
                pipeline,
                force,
                targets,
                time.time(),
                self.owner,
            )
        except BaseException:
            self._release(build)
            raise
        try:
            await self._publish(
                build, "build_created", details={"force": force, "targets": targets}
            )
            # Spawned from the event loop's thread, which lives as long as the server: the
            # parent-death signal (SIGTERM when the server dies) is tied to that thread.
            build.process = await asyncio.create_subprocess_exec(
                *self._command(spec_path, force, targets),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(spec_path.parent),
                env=self.environment(),
                start_new_session=True,  # its own process group: cancel stops all of it
                preexec_fn=procs.parent_death_signal(),  # and the build stops if we die
                limit=LINE_LIMIT,
            )
        except Exception as error:
            message = f"could not start the build process: {error}"
            await self._finish(build, "error", message, None)
            raise ApiError(message) from error
        build.watcher = asyncio.create_task(self._watch(build), name=f"nbpipe-build-{build.id}")
        if build.stop_reason is not None:  # cancelled (or the server stopped) while starting
            build.stopper = asyncio.create_task(self._stop(build))
        return {"id": build.id, "pipeline": pipeline, "state": build.state}

    def _command(self, spec_path: Path, force: bool, targets: Sequence[str]) -> list[str]:
        command = [self.settings.python, "-m", "nbpipe", "build", "-e", str(spec_path), "--json"]
        if force:
            command.append("--force")
        # One word each, so that a name starting with '-' is not taken for an option.
        command += [f"--partially={target}" for target in targets]
        if self.settings.processes:
            command += ["--processes", str(self.settings.processes)]
        return command

    def environment(self) -> dict[str, str]:
        """The environment of the processes that build and load pipelines."""
        env = dict(os.environ)
        env.pop("NBPIPE_ENTRY_POINT", None)  # -e names the pipeline
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.settings.env)
        return env

    # -- watching ------------------------------------------------------------------------------
    async def _watch(self, build: RunningBuild) -> None:
        process = build.process
        assert process is not None and process.stdout is not None
        stderr = asyncio.create_task(self._drain_stderr(build))
        try:
            pid = process.pid
            await self.store.call(
                self.store.store.update_build, build.id, pid=pid, pid_id=procs.identity(pid)
            )
            while True:
                try:
                    line = await process.stdout.readline()
                except ValueError:  # longer than LINE_LIMIT: dropped, the build goes on
                    logger.warning("nbpipe build %s: skipped an over-long output line", build.id)
                    continue
                if not line:
                    break
                await self._handle_line(build, line)
            code = await process.wait()
            if build.tree:  # a stop was asked: nothing of the tree may outlive the build
                procs.signal_processes(build.tree, procs.KILL)
            # A process that outlived the build (an orphaned kernel) may hold stderr open.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stderr, timeout=2)
            state, message = self._final_state(build, code)
            await self._finish(build, state, message, code)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("nbpipe build %s: watching the build process failed", build.id)
            self._kill_now(build)
            await self._finish(build, "error", "the server lost track of this build", None)
        finally:
            stderr.cancel()

    async def _drain_stderr(self, build: RunningBuild) -> None:
        assert build.process is not None and build.process.stderr is not None
        limit = self.settings.log_tail_bytes
        while chunk := await build.process.stderr.read(65536):
            build.log += chunk
            if len(build.log) > 2 * limit:
                del build.log[: len(build.log) - limit]
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("build %s: %s", build.id, chunk.decode("utf-8", "replace").rstrip())

    async def _handle_line(self, build: RunningBuild, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            build.log += b"[stdout] " + line
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "header" and event.get("v") != EVENT_SCHEMA_VERSION:
            # Another nbpipe (NbpipeApp.python) whose events this server cannot read.
            build.incompatible = (
                f"the build process writes events of schema version {event.get('v')!r}; this "
                f"server reads version {EVENT_SCHEMA_VERSION} (NbpipeApp.python runs another "
                "nbpipe release)"
            )
            if build.stop_reason is None:
                build.stop_reason = "error"
                build.stopper = asyncio.create_task(self._stop(build))
            return
        if kind == "summary":
            build.summary = event
            return
        if kind not in ENGINE_EVENTS:
            return  # the header, warnings, and kinds a newer CLI may add
        if kind == EventKind.BUILD_STARTED.value:
            build.state = "running" if build.stop_reason is None else build.state
        elif kind == EventKind.BUILD_FINISHED.value:
            build.outcome = event.get("outcome")
        seq = await self.store.call(self.store.store.apply_event, build.id, event)
        task_state = STATUS_AFTER[EventKind(kind)].value if event.get("task") is not None else None
        self._emit(
            build,
            seq,
            kind,
            task=event.get("task"),
            when=event.get("time"),
            task_state=task_state,
            details=event_details(self.root, event),
        )

    def _final_state(self, build: RunningBuild, code: int) -> tuple[str, str | None]:
        summary = build.summary or {}
        if build.incompatible:
            return "error", build.incompatible
        if build.stop_reason == "cancelled":
            return "cancelled", "cancelled on request"
        if build.stop_reason == "interrupted":
            return "interrupted", "the server stopped while this build was running"
        outcome = build.outcome or summary.get("outcome")
        if outcome in ("success", "failed", "stopped_early") and code in (0, 1):
            return outcome, summary.get("stop_reason")
        if summary.get("error"):
            return "error", _error_message(summary["error"])
        if outcome == "interrupted" or code in (-signal.SIGTERM, 128 + signal.SIGTERM):
            return "interrupted", "the build process was stopped by a signal"
        if code < 0:
            return (
                "error",
                f"the build process was killed by {_signal_name(-code)} (out of memory?)",
            )
        return "error", f"the build process exited with code {code}: {self._log_tail(build, 5)}"

    async def _finish(
        self, build: RunningBuild, state: str, message: str | None, code: int | None
    ) -> None:
        build.state = state
        log = bytes(build.log[-self.settings.log_tail_bytes :]).decode("utf-8", "replace")
        reason = {
            "cancelled": "the build was cancelled",
            "interrupted": "the server stopped",
        }.get(state, "the build stopped")
        try:
            unfinished = await self.store.call(
                self.store.store.finish_build,
                build.id,
                state,
                time.time(),
                message=message,
                exit_code=code,
                log=log,
                unfinished_reason=reason,
            )
            for task in unfinished:  # the engine could not say it: the event stream still must
                await self._publish(
                    build,
                    "task_cancelled",
                    task=task,
                    task_state="cancelled",
                    details={"reason": reason},
                )
            await self._publish(
                build, "build_ended", details={"message": message, "exit_code": code}
            )
        finally:
            self._release(build)

    def _release(self, build: RunningBuild) -> None:
        self.active.pop(build.id, None)
        if self.building.get(build.pipeline) == build.id:
            del self.building[build.pipeline]

    # -- stopping ------------------------------------------------------------------------------
    async def cancel(self, build_id: str) -> dict[str, Any]:
        build = self.active.get(build_id)
        if build is None:
            record = await self.store.call(self.store.store.get_build, build_id)
            if record is None:
                raise NotFound(f"no build {build_id!r}")
            raise Conflict(f"build {build_id} has already ended ({record['state']})")
        if build.stop_reason is None:
            build.stop_reason = "cancelled"
            build.state = "cancelling"
            await self._publish(build, "build_cancelling", state="cancelling")
            build.stopper = asyncio.create_task(self._stop(build))
        return {"id": build.id, "pipeline": build.pipeline, "state": build.state}

    async def _stop(self, build: RunningBuild) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of the tree is left after the grace
        period. The tree is recorded before the first signal: kernels live in sessions of their
        own and would be out of reach once their parent is gone."""
        process = build.process
        if process is None or process.returncode is not None:
            return
        build.tree = await asyncio.to_thread(procs.tree_identities, process.pid)
        procs.signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), self.settings.grace_period)
        if process.returncode is None:
            logger.warning(
                "nbpipe build %s did not stop within %.1f s of SIGTERM; killing it",
                build.id,
                self.settings.grace_period,
            )
            build.tree += await asyncio.to_thread(procs.tree_identities, process.pid)
            procs.signal_group(process.pid, procs.KILL)
        procs.signal_processes(build.tree, procs.KILL)

    def _kill_now(self, build: RunningBuild) -> None:
        process = build.process
        if process is not None and process.returncode is None:
            build.tree += procs.tree_identities(process.pid)
            procs.signal_group(process.pid, procs.KILL)
            procs.signal_processes(build.tree, procs.KILL)

    async def stop_all(self, timeout: float | None = None) -> None:
        """The server is stopping: stop every build and wait (bounded) for them to end."""
        self._closing = True
        builds = list(self.active.values())
        for build in builds:
            if build.stop_reason is None:
                build.stop_reason = "interrupted"
                build.stopper = asyncio.create_task(self._stop(build))
        watchers = [build.watcher for build in builds if build.watcher is not None]
        if watchers:
            limit = timeout if timeout is not None else self.settings.grace_period + 5
            _, pending = await asyncio.wait(watchers, timeout=limit)
            for build in builds:
                if build.watcher in pending:
                    self._kill_now(build)

    # -- events --------------------------------------------------------------------------------
    async def _publish(
        self,
        build: RunningBuild,
        kind: str,
        state: str | None = None,
        details: dict[str, Any] | None = None,
        task: str | None = None,
        task_state: str | None = None,
    ) -> None:
        """A server event (not from the engine): counted (its seq) and emitted."""
        fields = {"state": state} if state else {}
        seq = await self.store.call(self.store.store.next_seq, build.id, **fields)
        self._emit(build, seq, kind, task=task, task_state=task_state, details=details or {})

    def _emit(
        self,
        build: RunningBuild,
        seq: int,
        kind: str,
        task: str | None = None,
        when: float | None = None,
        task_state: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        data = {
            "build_id": build.id,
            "pipeline": build.pipeline,
            "seq": seq,
            "event": kind,
            "time": when if isinstance(when, (int, float)) else time.time(),
            "task": task,
            "state": build.state,
            "task_state": task_state,
            "details": details or {},
        }
        try:
            self.emit(data)
        except Exception:  # a broken listener must not break the build's bookkeeping
            logger.exception("nbpipe: emitting %s for build %s failed", kind, build.id)

    @staticmethod
    def _log_tail(build: RunningBuild, lines: int) -> str:
        text = bytes(build.log[-8192:]).decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    # -- start-up ------------------------------------------------------------------------------
    def recover(self) -> list[dict[str, Any]]:
        """At start-up: builds whose server died are marked ``interrupted``, and a build process
        such a server left behind is stopped. Synchronous and quick (one query)."""
        orphans = self.store.store.interrupt_orphans(procs.is_alive, time.time())
        leftovers = [orphan["pid_id"] for orphan in orphans if procs.is_alive(orphan["pid_id"])]
        for recorded in leftovers:
            pid = int(recorded.split("@", 1)[0])
            tree = procs.tree_identities(pid)
            procs.signal_group(pid, signal.SIGTERM)
            timer = threading.Timer(
                self.settings.grace_period, procs.signal_processes, (tree, procs.KILL)
            )
            timer.daemon = True
            timer.start()
        return orphans


def _error_message(error: dict[str, Any]) -> str:
    message = error.get("message") or error.get("type") or "the build could not start"
    where = error.get("file")
    if where and error.get("line"):
        where = f"{where}:{error['line']}"
    return f"{where}: {message}" if where else str(message)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
