"""The build manager: one ``BuildState`` per running build, every event through it, then stored
and emitted.

The manager coordinates the other parts of this package: ``admission`` (which builds may run),
``supervisor`` (the child process), ``protocol`` (its JSON lines). It owns each running build's
``nbpipe.engine.state.BuildState`` and is the only code that changes it, always the same way::

    changed = build.state.apply(event)       the one reducer (nbpipe.engine.state)
    store.record(seq, build row, changed)    the build's fields and the tasks the event changed
    emit({build_id, pipeline, seq, state, event: event.to_dict()})

for the engine's events (read from the child) and the supervisor's own alike: ``build_created``,
``build_cancelling`` and ``build_ended``. Recording comes before emitting, so a client that gets
an event and then reads the REST snapshot sees at least that event; a per-build lock keeps the
seq order of records and emits the order in which events were applied. Nothing here decides what
becomes of a task: a build process that died leaving tasks queued or running is settled by
applying ``build_ended``, whose rule (in the reducer) makes them cancelled, once, with no event
invented for them.

Recovery at start-up does the same for builds a dead server left "running": each is loaded from
the store into its ``BuildState``, ``build_ended(state="interrupted")`` is applied and what
changed is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbpipe.engine.events import BuildCancelling, BuildCreated, BuildEnded, Event
from nbpipe.engine.state import BuildState, TaskState
from nbpipe.server import procs, views
from nbpipe.server.builds.admission import Admission
from nbpipe.server.builds.protocol import Protocol, read_lines
from nbpipe.server.builds.supervisor import BuildProcess, stop_leftover
from nbpipe.server.errors import ApiError, Conflict, NotFound
from nbpipe.server.store import StoreThread, build_row, task_row

logger = logging.getLogger("nbpipe.server")

#: The environment variable that marks every process of a build (its value: the build's id).
BUILD_MARK = "NBPIPE_SERVER_BUILD"
#: Seconds the output of a build process that exited may take to end (what it wrote is in the
#: pipe already); after that, a process it left behind holds the pipe and it is closed.
OUTPUT_GRACE = 2.0

#: The message of builds that were running when their server stopped or died.
SERVER_STOPPED = "the server stopped while this build was running"


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
    force: bool = False
    targets: list[str] = field(default_factory=list)
    state: BuildState = field(default_factory=BuildState)
    seq: int = 0  # events applied (and recorded) so far
    positions: dict[str, int] = field(default_factory=dict)  # task -> row position, once stored
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    child: BuildProcess | None = None
    protocol: Protocol = field(default_factory=Protocol)
    stop_asked: str | None = None  # "cancelled" | "interrupted" | "error": a stop was asked
    ended: bool = False  # build_ended is applied, or being applied
    watcher: asyncio.Task | None = None
    stopper: asyncio.Task | None = None
    key: str = ""  # the spec's resolved path (admission: one build per pipeline, by any path)

    def __post_init__(self) -> None:
        self.key = self.key or os.path.realpath(self.spec_path)


Emit = Callable[[dict[str, Any]], None]


class BuildManager:
    def __init__(self, root: str, store: StoreThread, emit: Emit, settings: BuildSettings):
        self.root = root
        self.store = store
        self.emit = emit
        self.settings = settings
        self.admission = Admission(settings.max_concurrent)
        self.owner = procs.identity(os.getpid()) or str(os.getpid())

    @property
    def active(self) -> dict[str, Any]:
        """Running builds by id."""
        return self.admission.active

    @property
    def building(self) -> dict[str, str]:
        """The build running now of each pipeline that builds."""
        return self.admission.building

    def live_log(self, build_id: str) -> str | None:
        """The log so far of a running build (None when it does not run here)."""
        build = self.admission.active.get(build_id)
        if not isinstance(build, RunningBuild):
            return None
        return build.child.log_text() if build.child is not None else ""

    # -- starting ------------------------------------------------------------------------------
    async def start(
        self,
        pipeline: str,
        spec_path: Path,
        force: bool = False,
        targets: Sequence[str] = (),
        skip_upstream: bool = False,
    ) -> dict[str, Any]:
        """Starts a build of ``pipeline`` (relative to the root, already confined to it): every
        outdated task, or only ``targets`` and the tasks they need (only ``targets`` with
        ``skip_upstream``: ``nbpipe build --skip-upstream``)."""
        targets = list(dict.fromkeys(targets))
        build = RunningBuild(uuid.uuid4().hex, pipeline, spec_path, force, targets)
        self.admission.admit(build)  # before the first await: no race
        try:
            await self._publish(build, BuildCreated(force=force, targets=targets), create=True)
        except BaseException:
            self.admission.release(build)
            raise
        try:
            # Spawned from the event loop's thread, which lives as long as the server: the
            # parent-death signal (SIGTERM when the server dies) is tied to that thread.
            build.child = await BuildProcess.spawn(
                self._command(spec_path, force, targets, skip_upstream),
                cwd=str(spec_path.parent),
                env=self.environment(),
                log_limit=self.settings.log_tail_bytes,
                mark=(BUILD_MARK, build.id),
            )
        except Exception as error:
            message = f"could not start the build process: {error}"
            await self._end(build, "error", message, None)
            raise ApiError(message) from error
        build.watcher = asyncio.create_task(self._watch(build), name=f"nbpipe-build-{build.id}")
        if build.stop_asked is not None:  # cancelled (or the server stopped) while starting
            build.stopper = asyncio.create_task(self._stop(build))
        return {"id": build.id, "pipeline": pipeline, "state": build.state.state}

    def _command(
        self, spec_path: Path, force: bool, targets: Sequence[str], skip_upstream: bool = False
    ) -> list[str]:
        command = [self.settings.python, "-m", "nbpipe", "build", "-e", str(spec_path), "--json"]
        if force:
            command.append("--force")
        # One word each, so that a name starting with '-' is not taken for an option.
        command += [f"--partially={target}" for target in targets]
        if skip_upstream and targets:
            command.append("--skip-upstream")
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
        """Applies the build process's events as they come; settles the build when the process
        has exited, not when its output ends (a process it left behind may hold that open)."""
        child = build.child
        assert child is not None and child.process.stdout is not None
        stderr = asyncio.create_task(child.drain_stderr(build.id))
        output = asyncio.create_task(self._read_output(build, child))
        try:
            pid = child.pid
            await self.store.call(
                self.store.store.update_build, build.id, pid=pid, pid_id=procs.identity(pid)
            )
            code = await child.wait_exit()
            # Nothing of the build may outlive its process: its group (when it died of a
            # signal, or was stopped) and whatever else carries the build's mark.
            child.exited(code)
            swept = await asyncio.to_thread(child.sweep)
            if swept:
                logger.warning("nbpipe build %s: killed %d process(es) it left", build.id, swept)
            # What the process wrote before it exited is in the pipe: read it to its end, unless
            # a process that outlived it holds the pipe open.
            done, _ = await asyncio.wait({output, stderr}, timeout=OUTPUT_GRACE)
            if output not in done or stderr not in done:
                child.close_output()
            await output
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stderr, timeout=OUTPUT_GRACE)
            state, message = build.protocol.ending(
                code, build.stop_asked, build.state.outcome, child.log_tail(5)
            )
            await self._end(build, state, message, code)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("nbpipe build %s: watching the build process failed", build.id)
            child.kill_now()
            await self._end(build, "error", "the server lost track of this build", None)
        finally:
            stderr.cancel()
            output.cancel()
            child.close_output()

    async def _read_output(self, build: RunningBuild, child: BuildProcess) -> None:
        """Each stdout line: an engine event is applied, recorded and emitted."""
        assert child.process.stdout is not None
        async for line in read_lines(child.process.stdout, build.id):
            item = build.protocol.read(line)
            if isinstance(item, Event):
                await self._publish(build, item)
            elif isinstance(item, bytes):
                child.log += b"[stdout] " + item
            if build.protocol.incompatible and build.stop_asked is None:
                # Another nbpipe (NbpipeApp.python) whose events this server cannot read.
                build.stop_asked = "error"
                build.stopper = asyncio.create_task(self._stop(build))

    async def _end(
        self, build: RunningBuild, state: str, message: str | None, code: int | None
    ) -> None:
        """Applies ``build_ended`` (once) and frees the pipeline."""
        if build.ended:
            return
        build.ended = True
        try:
            log = build.child.log_text() if build.child is not None else ""
            ended = BuildEnded(state=state, message=message, exit_code=code)
            await self._publish(build, ended, log=log, pid=None)
        finally:
            self.admission.release(build)

    # -- stopping ------------------------------------------------------------------------------
    async def cancel(self, build_id: str) -> dict[str, Any]:
        build = self.admission.active.get(build_id)
        if build is None or build.ended:
            record = await self.store.call(self.store.store.get_build, build_id)
            if record is None:
                raise NotFound(f"no build {build_id!r}")
            raise Conflict(f"build {build_id} has already ended ({record['state']})")
        if build.stop_asked is None:
            build.stop_asked = "cancelled"
            await self._publish(build, BuildCancelling())
            build.stopper = asyncio.create_task(self._stop(build))
        return {"id": build.id, "pipeline": build.pipeline, "state": build.state.state}

    async def _stop(self, build: RunningBuild) -> None:
        if build.child is not None:
            await build.child.stop(self.settings.grace_period, build.id)

    async def stop_all(self, timeout: float | None = None) -> None:
        """The server is stopping: stop every build and wait (bounded) for them to end."""
        self.admission.closing = True
        builds: list[RunningBuild] = list(self.admission.active.values())
        for build in builds:
            if build.stop_asked is None:
                build.stop_asked = "interrupted"
                build.stopper = asyncio.create_task(self._stop(build))
        watchers = [build.watcher for build in builds if build.watcher is not None]
        if watchers:
            limit = timeout if timeout is not None else self.settings.grace_period + 5
            _, pending = await asyncio.wait(watchers, timeout=limit)
            for build in builds:
                if build.watcher in pending and build.child is not None:
                    build.child.kill_now()

    # -- events --------------------------------------------------------------------------------
    async def _publish(
        self, build: RunningBuild, event: Event, create: bool = False, **fields: Any
    ) -> None:
        """Applies ``event`` to the build's state, records the result, then emits the event.
        ``fields`` are other columns of the build's row written with it (its log)."""
        async with build.lock:
            changed = build.state.apply(event)
            tasks = self._task_rows(build, changed)
            build.seq += 1
            row = build_row(build.state)
            store = self.store.store
            if create:
                await self.store.call(
                    store.create_build,
                    build.id,
                    build.pipeline,
                    build.force,
                    build.targets,
                    event.time,
                    self.owner,
                    row,
                    seq=build.seq,
                )
            else:
                await self.store.call(store.record, build.id, build.seq, row, tasks, **fields)
            self._emit(build.id, build.pipeline, build.seq, build.state.state, event)

    @staticmethod
    def _task_rows(build: RunningBuild, changed: list[TaskState]) -> list[tuple[Any, ...]]:
        """Rows of the tasks ``apply`` returned, and of tasks the state gained without saying
        so (``build_started`` lists the plan's tasks, pending), so that the stored tasks are
        always the state's, in its order."""
        tasks = build.state.tasks
        if len(tasks) > len(build.positions):
            names = {task.name for task in changed}
            for position, (name, task) in enumerate(tasks.items()):
                if name not in build.positions:
                    build.positions[name] = position
                    if name not in names:
                        changed = [*changed, task]
        return [task_row(build.positions[task.name], task) for task in changed]

    def _emit(self, build_id: str, pipeline: str, seq: int, state: str, event: Event) -> None:
        """The bus event: the contract's event, unchanged but for paths relative to the root,
        in an envelope saying whose it is, its place in the build's sequence and the build's
        state after it."""
        data = {
            "build_id": build_id,
            "pipeline": pipeline,
            "seq": seq,
            "state": state,
            "event": views.event(self.root, event.to_dict()),
        }
        try:
            self.emit(data)
        except Exception:  # a broken listener must not break the build's bookkeeping
            logger.exception("nbpipe: emitting %s for build %s failed", event.kind, build_id)

    # -- start-up ------------------------------------------------------------------------------
    def recover(self) -> list[dict[str, Any]]:
        """At start-up: each build whose server died gets ``build_ended(interrupted)`` applied
        to its state as the store has it (its unsettled tasks become cancelled by the reducer's
        rule), and a build process such a server left behind is stopped. Synchronous and quick
        (a few queries), before the event loop runs."""
        store = self.store.store
        orphans = store.orphans(procs.is_alive)
        for orphan in orphans:
            state = BuildState.from_dict(orphan)
            ended = BuildEnded(state="interrupted", message=SERVER_STOPPED)
            changed = state.apply(ended)
            positions = {name: position for position, name in enumerate(state.tasks)}
            tasks = [task_row(positions[task.name], task) for task in changed]
            seq = orphan["seq"] + 1
            store.record(orphan["id"], seq, build_row(state), tasks, pid=None)
            if orphan["root"] == self.root:
                self._emit(orphan["id"], orphan["pipeline"], seq, state.state, ended)
        for orphan in orphans:
            stop_leftover(orphan["pid_id"], self.settings.grace_period, (BUILD_MARK, orphan["id"]))
        return orphans
