"""Build history: build and task records in an embedded SQLite database.

One file (``builds.sqlite`` in the state directory) in WAL mode with ``synchronous=NORMAL``: a
write is an append to the log, no fsync per event, and readers never wait for the writer. Every
build belongs to a server *root* (the folder the Jupyter server serves), so servers with different
roots can share one state directory without seeing each other's pipelines.

The store is synchronous and knows nothing of asyncio; the build manager calls it from one
dedicated thread (``StoreThread``) so that disk stalls never block the server's event loop, and
so that writes stay in the order the events arrived.

Records follow the engine's events (``apply_event``): a task's state after an event comes from
``nbpipe.engine.events.STATUS_AFTER``, the same table the engine uses, so the server never re-derives
task state on its own.

Build states::

    starting     accepted; the CLI process is starting (before its build_started event)
    running      build_started seen
    cancelling   a cancel was asked; the process is being stopped
    success | failed | stopped_early     the engine's outcome
    cancelled    stopped on request
    interrupted  the build stopped because the server stopped (or died while it ran)
    error        the build could not start or its process ended without an outcome
                 (a spec error, a crash); ``message`` says why
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from nbpipe.engine.events import STATUS_AFTER, EventKind, TaskStatus

SCHEMA_VERSION = 1

ACTIVE_STATES = ("starting", "running", "cancelling")
FINAL_STATES = ("success", "failed", "stopped_early", "cancelled", "interrupted", "error")

#: Task states in which a task will not change any more.
FINAL_TASK_STATES = frozenset(
    status.value
    for status in (
        TaskStatus.EXECUTED,
        TaskStatus.SKIPPED,
        TaskStatus.FAILED,
        TaskStatus.ABORTED,
        TaskStatus.STOPPED_EARLY,
        TaskStatus.CANCELLED,
    )
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    id        TEXT PRIMARY KEY,
    root      TEXT NOT NULL,
    pipeline  TEXT NOT NULL,           -- relative to root, posix style
    state     TEXT NOT NULL,
    force     INTEGER NOT NULL,
    targets   TEXT NOT NULL,           -- JSON list: the tasks asked for (empty: all)
    created   REAL NOT NULL,
    started   REAL,
    ended     REAL,
    outcome   TEXT,                    -- the engine's build outcome, when it reported one
    exit_code INTEGER,
    message   TEXT,                    -- why it ended as it did, when not a plain success
    seq       INTEGER NOT NULL DEFAULT 0,  -- events recorded so far
    owner     TEXT,                    -- identity of the server process that runs it
    pid       INTEGER,                 -- the build process
    pid_id    TEXT,                    -- identity of the build process (pid reuse)
    log       TEXT                     -- the tail of the build process's stderr
);
CREATE INDEX IF NOT EXISTS builds_root ON builds (root, created DESC);
CREATE INDEX IF NOT EXISTS builds_pipeline ON builds (root, pipeline, created DESC);
CREATE INDEX IF NOT EXISTS builds_active ON builds (state);
CREATE TABLE IF NOT EXISTS tasks (
    build_id  TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL,
    state     TEXT NOT NULL,
    reasons   TEXT,                    -- JSON list: why it ran
    started   REAL,
    ended     REAL,
    elapsed   REAL,
    products  TEXT,                    -- JSON list of absolute paths
    detail    TEXT,                    -- why it was aborted/cancelled, the early-stop message
    error     TEXT,                    -- JSON object: the failure, with cell and traceback
    PRIMARY KEY (build_id, name)
);
"""

_BUILD_COLUMNS = (
    "id, pipeline, state, force, targets, created, started, ended, outcome, exit_code, message, seq"
)


class Store:
    """The database. Not thread-safe by itself: use it from one thread at a time."""

    def __init__(self, path: str | os.PathLike, root: str):
        self.path = os.fspath(path)
        self.root = root
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer nbpipe (schema {version}); "
                "upgrade nbpipe or point NbpipeApp.state_dir elsewhere"
            )
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -- writing --------------------------------------------------------------------------------
    def create_build(
        self,
        build_id: str,
        pipeline: str,
        force: bool,
        targets: list[str],
        created: float,
        owner: str,
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO builds (id, root, pipeline, state, force, targets, created, owner) "
                "VALUES (?, ?, ?, 'starting', ?, ?, ?, ?)",
                (build_id, self.root, pipeline, int(force), json.dumps(targets), created, owner),
            )

    def update_build(self, build_id: str, **fields: Any) -> None:
        if not fields:
            return
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._db:
            self._db.execute(
                f"UPDATE builds SET {columns} WHERE id = ?", (*fields.values(), build_id)
            )

    def next_seq(self, build_id: str, **fields: Any) -> int:
        """Counts one more event of the build (a server event); ``fields`` are set with it."""
        sets = "".join(f", {name} = ?" for name in fields)
        with self._db:
            self._db.execute(
                f"UPDATE builds SET seq = seq + 1{sets} WHERE id = ?", (*fields.values(), build_id)
            )
            row = self._db.execute("SELECT seq FROM builds WHERE id = ?", (build_id,)).fetchone()
        return row[0] if row else 0

    def apply_event(self, build_id: str, event: dict[str, Any]) -> int:
        """Records one engine event (``Event.to_dict()`` form); returns the build's new ``seq``."""
        kind = EventKind(event["event"])
        when = event.get("time")
        with self._db:
            if kind is EventKind.BUILD_STARTED:
                self._db.execute(
                    "UPDATE builds SET state = CASE WHEN state = 'starting' THEN 'running' "
                    "ELSE state END, started = ? WHERE id = ?",
                    (when, build_id),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO tasks (build_id, name, position, state) "
                    "VALUES (?, ?, ?, 'pending')",
                    [(build_id, name, i) for i, name in enumerate(event.get("tasks") or [])],
                )
            elif kind is EventKind.BUILD_FINISHED:
                self._db.execute(
                    "UPDATE builds SET outcome = ?, message = COALESCE(?, message) WHERE id = ?",
                    (event.get("outcome"), event.get("stop_reason"), build_id),
                )
            elif event.get("task") is not None:
                self._apply_task_event(build_id, kind, event)
            self._db.execute("UPDATE builds SET seq = seq + 1 WHERE id = ?", (build_id,))
            row = self._db.execute("SELECT seq FROM builds WHERE id = ?", (build_id,)).fetchone()
        return row[0] if row else 0

    def _apply_task_event(self, build_id: str, kind: EventKind, event: dict[str, Any]) -> None:
        values: dict[str, Any] = {"state": STATUS_AFTER[kind].value}
        when = event.get("time")
        if kind is EventKind.TASK_QUEUED:
            values["reasons"] = json.dumps(event.get("reasons") or [])
        elif kind is EventKind.TASK_STARTED:
            values["started"] = when
        elif kind in (EventKind.TASK_FINISHED, EventKind.TASK_FAILED, EventKind.TASK_STOPPED_EARLY):
            values["ended"] = when
        if "elapsed" in event:
            values["elapsed"] = event["elapsed"]
        if "products" in event:
            values["products"] = json.dumps(list(event["products"] or []))
        detail = event.get("reason") or event.get("message")
        if detail:
            values["detail"] = detail
        if kind is EventKind.TASK_FAILED:
            error = dict(event.get("details") or {})
            error["message"] = event.get("error") or ""
            values["error"] = json.dumps(error)
        columns = ", ".join(f"{name} = ?" for name in values)
        updated = self._db.execute(
            f"UPDATE tasks SET {columns} WHERE build_id = ? AND name = ?",
            (*values.values(), build_id, event["task"]),
        ).rowcount
        if not updated:  # an event for a task build_started did not list: keep it anyway
            position = self._db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM tasks WHERE build_id = ?", (build_id,)
            ).fetchone()[0]
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            self._db.execute(
                f"INSERT INTO tasks (build_id, name, position, {names}) VALUES (?, ?, ?, {marks})",
                (build_id, event["task"], position, *values.values()),
            )

    def finish_build(
        self,
        build_id: str,
        state: str,
        ended: float,
        *,
        message: str | None = None,
        exit_code: int | None = None,
        log: str | None = None,
        unfinished_reason: str = "the build stopped",
    ) -> list[str]:
        """Gives the build its final state. Tasks still queued or running (the build process
        died before it could say what became of them) become cancelled; returns their names."""
        with self._db:
            self._db.execute(
                "UPDATE builds SET state = ?, ended = ?, message = COALESCE(?, message), "
                "exit_code = ?, log = COALESCE(?, log), pid = NULL WHERE id = ?",
                (state, ended, message, exit_code, log, build_id),
            )
            return self._cancel_unfinished(build_id, ended, unfinished_reason)

    def _cancel_unfinished(self, build_id: str, ended: float, reason: str) -> list[str]:
        marks = ", ".join("?" for _ in FINAL_TASK_STATES)
        unfinished = [
            row[0]
            for row in self._db.execute(
                f"SELECT name FROM tasks WHERE build_id = ? AND state NOT IN ({marks}) "
                "ORDER BY position",
                (build_id, *FINAL_TASK_STATES),
            )
        ]
        self._db.execute(
            f"UPDATE tasks SET state = 'cancelled', detail = COALESCE(detail, ?), "
            f"ended = CASE WHEN started IS NOT NULL THEN ? ELSE ended END "
            f"WHERE build_id = ? AND state NOT IN ({marks})",
            (reason, ended, build_id, *FINAL_TASK_STATES),
        )
        return unfinished

    def interrupt_orphans(
        self, owner_alive: Callable[[str | None], bool], ended: float
    ) -> list[dict[str, Any]]:
        """Marks ``interrupted`` every active build whose server is gone; returns them (with
        their process id and identity, so the caller can stop a build process left behind).
        """
        marks = ", ".join("?" for _ in ACTIVE_STATES)
        rows = self._db.execute(
            f"SELECT id, owner, pid, pid_id FROM builds WHERE state IN ({marks})", ACTIVE_STATES
        ).fetchall()
        orphans = [dict(row) for row in rows if not owner_alive(row["owner"])]
        for orphan in orphans:
            self.finish_build(
                orphan["id"],
                "interrupted",
                ended,
                message="the server stopped while this build was running",
                unfinished_reason="the server stopped",
            )
        return orphans

    # -- reading --------------------------------------------------------------------------------
    def get_build(self, build_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            f"SELECT {_BUILD_COLUMNS} FROM builds WHERE id = ? AND root = ?", (build_id, self.root)
        ).fetchone()
        if row is None:
            return None
        build = _build_dict(row)
        build["tasks"] = [
            _task_dict(task)
            for task in self._db.execute(
                "SELECT * FROM tasks WHERE build_id = ? ORDER BY position", (build_id,)
            )
        ]
        return build

    def get_log(self, build_id: str) -> str | None:
        row = self._db.execute(
            "SELECT COALESCE(log, '') FROM builds WHERE id = ? AND root = ?", (build_id, self.root)
        ).fetchone()
        return None if row is None else row[0]

    def list_builds(
        self, pipeline: str | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Builds newest first (one page), and how many there are in all."""
        where, args = "root = ?", [self.root]
        if pipeline is not None:
            where += " AND pipeline = ?"
            args.append(pipeline)
        total = self._db.execute(f"SELECT COUNT(*) FROM builds WHERE {where}", args).fetchone()[0]
        rows = self._db.execute(
            f"SELECT {_BUILD_COLUMNS} FROM builds WHERE {where} "
            "ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        builds = [_build_dict(row) for row in rows]
        self._add_counts(builds)
        return builds, total

    def latest_builds(self, pipelines: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The newest build of each pipeline named (those that were ever built)."""
        latest = {}
        for pipeline in pipelines:
            row = self._db.execute(
                f"SELECT {_BUILD_COLUMNS} FROM builds WHERE root = ? AND pipeline = ? "
                "ORDER BY created DESC, rowid DESC LIMIT 1",
                (self.root, pipeline),
            ).fetchone()
            if row is not None:
                latest[pipeline] = _build_dict(row)
        self._add_counts(list(latest.values()))
        return latest

    def last_task_results(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """For each task, the state it ended in the last build it took part in (and when)."""
        rows = self._db.execute(
            "SELECT t.name, t.state, t.ended, b.id AS build_id FROM tasks t "
            "JOIN builds b ON b.id = t.build_id WHERE b.root = ? AND b.pipeline = ? "
            "ORDER BY b.created ASC, b.rowid ASC",
            (self.root, pipeline),
        ).fetchall()
        return {
            row["name"]: {"state": row["state"], "ended": row["ended"], "build_id": row["build_id"]}
            for row in rows
        }

    def _add_counts(self, builds: list[dict[str, Any]]) -> None:
        """Adds ``counts`` (tasks per state) to build summaries, in one query."""
        if not builds:
            return
        marks = ", ".join("?" for _ in builds)
        counts: dict[str, dict[str, int]] = {build["id"]: {} for build in builds}
        for row in self._db.execute(
            f"SELECT build_id, state, COUNT(*) FROM tasks WHERE build_id IN ({marks}) "
            "GROUP BY build_id, state",
            [build["id"] for build in builds],
        ):
            counts[row[0]][row[1]] = row[2]
        for build in builds:
            build["counts"] = counts[build["id"]]


def _build_dict(row: sqlite3.Row) -> dict[str, Any]:
    build = dict(row)
    build["force"] = bool(build["force"])
    build["targets"] = json.loads(build["targets"])
    ended = build["ended"]
    build["elapsed"] = (
        None if ended is None or build["started"] is None else ended - build["started"]
    )
    return build


def _task_dict(row: sqlite3.Row) -> dict[str, Any]:
    task = dict(row)
    del task["build_id"]
    task["reasons"] = json.loads(task["reasons"]) if task["reasons"] else []
    task["products"] = json.loads(task["products"]) if task["products"] else []
    task["error"] = json.loads(task["error"]) if task["error"] else None
    return task


T = TypeVar("T")


class StoreThread:
    """Runs store calls on one background thread, in the order they were made.

    One thread, not a pool: SQLite allows one writer, and event records must land in order.
    """

    def __init__(self, store: Store):
        self.store = store
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nbpipe-store")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()
