"""Build history: build and task records in an embedded SQLite database.

One file (``builds.sqlite`` in the state directory) in WAL mode with ``synchronous=NORMAL``: a
write is an append to the log, no fsync per event, and readers never wait for the writer. Every
build belongs to a server *root* (the folder the Jupyter server serves), so servers with different
roots can share one state directory without seeing each other's pipelines.

The store is synchronous and knows nothing of asyncio; the build manager calls it from one
dedicated thread (``StoreThread``) so that disk stalls never block the server's event loop, and
so that writes stay in the order the events arrived.

The store derives nothing. A build's row holds the server's fields (pipeline, force, targets,
created, seq, the processes) and the fields of its ``nbpipe.engine.state.BuildState``; its task
rows hold ``TaskState``s. The build manager folds each event into the build's ``BuildState``
(``BuildState.apply``, the one reducer) and hands the store the build's fields and exactly the
task states the event changed (:func:`build_row`, :func:`task_row`, called on the manager's
thread so that the store never reads a state that is still changing). Reading a build back gives
the same fields, so ``BuildState.from_dict(store.get_build(id))`` is the build's state again
(what recovery does).

Build states (``BuildState.state``)::

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
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from nbpipe.engine.state import FINAL_BUILD_STATES, BuildState, TaskState

logger = logging.getLogger("nbpipe.server")

SCHEMA_VERSION = 4

#: Build states a build leaves (its process runs, or is about to).
ACTIVE_STATES = ("starting", "running", "cancelling")
FINAL_STATES = tuple(sorted(FINAL_BUILD_STATES))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    id          TEXT PRIMARY KEY,
    root        TEXT NOT NULL,           -- the server root the pipeline path is relative to
    pipeline    TEXT NOT NULL,
    force       INTEGER NOT NULL,
    targets     TEXT NOT NULL,           -- JSON list of target task names
    created     REAL NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,  -- events recorded so far
    owner       TEXT,                    -- identity of the server process that runs it
    pid         INTEGER,                 -- the build process
    pid_id      TEXT,                    -- identity of the build process (pid reuse)
    log         TEXT,                    -- the tail of the build process's stderr
    -- BuildState's fields:
    state       TEXT NOT NULL,
    dag         TEXT,
    executor    TEXT,
    dashboard   TEXT,                    -- the Dask dashboard's link, when built on Dask
    to_run      TEXT,                    -- JSON list
    outcome     TEXT,
    stop_reason TEXT,
    message     TEXT,
    exit_code   INTEGER,
    started     REAL,
    ended       REAL
);
CREATE INDEX IF NOT EXISTS builds_root ON builds (root, created DESC);
CREATE INDEX IF NOT EXISTS builds_pipeline ON builds (root, pipeline, created DESC);
CREATE INDEX IF NOT EXISTS builds_active ON builds (state);
CREATE TABLE IF NOT EXISTS tasks (
    build_id  TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL,          -- upstream before downstream, as the build listed them
    -- TaskState's fields:
    status    TEXT NOT NULL,
    reasons   TEXT,                      -- JSON list
    started   REAL,
    ended     REAL,
    elapsed   REAL,
    products  TEXT,                      -- JSON list of absolute paths
    detail    TEXT,
    failure   TEXT,                      -- JSON object: TaskFailure.to_dict()
    cell      INTEGER,                   -- a running notebook's cell (from 1), of cells
    cells     INTEGER,
    cell_line TEXT,
    cell_started REAL,
    cell_elapsed REAL,
    output    TEXT,                      -- the tail of its output
    PRIMARY KEY (build_id, name)
);
"""

#: The server's own fields of a build, as the API shows them.
SERVER_FIELDS = ("id", "pipeline", "force", "targets", "created", "seq")
#: BuildState's fields but its tasks: the rest of a build row.
STATE_FIELDS = (
    "state",
    "dag",
    "executor",
    "dashboard",
    "to_run",
    "outcome",
    "stop_reason",
    "message",
    "exit_code",
    "started",
    "ended",
)
TASK_FIELDS = (
    "name",
    "status",
    "reasons",
    "started",
    "ended",
    "elapsed",
    "products",
    "detail",
    "failure",
    "cell",
    "cells",
    "cell_line",
    "cell_started",
    "cell_elapsed",
    "output",
)
_JSON_BUILD_FIELDS = ("targets", "to_run")
_JSON_TASK_FIELDS = ("reasons", "products", "failure")
_BUILD_COLUMNS = ", ".join((*SERVER_FIELDS, *STATE_FIELDS))


def build_row(state: BuildState) -> dict[str, Any]:
    """The build row's BuildState columns, ready to write (JSON encoded where they are lists).

    Call it where ``state`` changes (the event loop): the result no longer does."""
    row = {name: getattr(state, name) for name in STATE_FIELDS}
    row["to_run"] = json.dumps(row["to_run"])
    return row


def task_row(position: int, task: TaskState) -> tuple[Any, ...]:
    """A task row (its position, then TASK_FIELDS), ready to write."""
    data = task.to_dict()
    for name in _JSON_TASK_FIELDS:
        data[name] = json.dumps(data[name]) if data[name] is not None else None
    return (position, *(data[name] for name in TASK_FIELDS))


class NewerSchema(RuntimeError):
    """The history was written by a newer nbpipe: left alone."""


class Store:
    """The database. Not thread-safe by itself: use it from one thread at a time."""

    def __init__(self, path: str | os.PathLike, root: str):
        self.path = os.fspath(path)
        self.root = root
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise NewerSchema(
                f"{self.path} was written by a newer nbpipe (schema {version}); "
                "upgrade nbpipe or point NbpipeApp.state_dir elsewhere"
            )
        with self._db:
            if version == 1:
                _migrate_from_1(self._db)
            if 1 <= version <= 2:
                _migrate_from_2(self._db)
            if 1 <= version <= 3:
                _migrate_from_3(self._db)
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def check(self) -> None:
        """Raises ``sqlite3.DatabaseError`` if the file is damaged (a quick structural check
        and a read of every table)."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems))
        self._db.execute("SELECT COUNT(*), MAX(LENGTH(log)) FROM builds").fetchone()
        self._db.execute("SELECT COUNT(*), MAX(LENGTH(failure)) FROM tasks").fetchone()

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
        row: dict[str, Any],
        seq: int = 1,
    ) -> None:
        """A new build: its server fields and ``row`` (``build_row`` of its state)."""
        columns = ("id", "root", "pipeline", "force", "targets", "created", "owner", "seq", *row)
        values = (build_id, self.root, pipeline, int(force), json.dumps(targets), created, owner)
        marks = ", ".join("?" for _ in columns)
        with self._db:
            self._db.execute(
                f"INSERT INTO builds ({', '.join(columns)}) VALUES ({marks})",
                (*values, seq, *row.values()),
            )

    def record(
        self,
        build_id: str,
        seq: int,
        row: dict[str, Any],
        tasks: Iterable[tuple[Any, ...]] = (),
        **fields: Any,
    ) -> None:
        """One event's effect: the build's ``seq``, its state columns (``row``), the task rows
        the event changed (``task_row``), and any other build ``fields`` (the log...)."""
        values = {"seq": seq, **row, **fields}
        columns = ", ".join(f"{name} = ?" for name in values)
        names = ", ".join(TASK_FIELDS)
        marks = ", ".join("?" for _ in TASK_FIELDS)
        updates = ", ".join(f"{name} = excluded.{name}" for name in TASK_FIELDS[1:])
        with self._db:
            self._db.execute(
                f"UPDATE builds SET {columns} WHERE id = ?", (*values.values(), build_id)
            )
            self._db.executemany(
                f"INSERT INTO tasks (build_id, position, {names}) VALUES (?, ?, {marks}) "
                f"ON CONFLICT (build_id, name) DO UPDATE SET {updates}",
                [(build_id, *task) for task in tasks],
            )

    def update_build(self, build_id: str, **fields: Any) -> None:
        """Server fields that are not state (the build process's pid and identity)."""
        if not fields:
            return
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._db:
            self._db.execute(
                f"UPDATE builds SET {columns} WHERE id = ?", (*fields.values(), build_id)
            )

    def orphans(self, owner_alive: Callable[[str | None], bool]) -> list[dict[str, Any]]:
        """Every active build (of any root) whose server is gone, as ``get_build`` describes it,
        plus its ``root`` and its build process (``pid``, ``pid_id``), so that the caller can
        settle it and stop a build process left behind."""
        marks = ", ".join("?" for _ in ACTIVE_STATES)
        rows = self._db.execute(
            f"SELECT id, root, owner, pid, pid_id FROM builds WHERE state IN ({marks}) "
            "ORDER BY created",
            ACTIVE_STATES,
        ).fetchall()
        found = []
        for row in rows:
            if owner_alive(row["owner"]):
                continue
            build = self._read_build(row["id"], any_root=True)
            if build is not None:
                found.append(
                    {**build, "root": row["root"], "pid": row["pid"], "pid_id": row["pid_id"]}
                )
        return found

    # -- reading --------------------------------------------------------------------------------
    def get_build(self, build_id: str) -> dict[str, Any] | None:
        """A build of this root: SERVER_FIELDS, STATE_FIELDS and ``tasks`` (TaskState dicts,
        paths absolute, in the build's order)."""
        return self._read_build(build_id)

    def _read_build(self, build_id: str, any_root: bool = False) -> dict[str, Any] | None:
        where, args = "id = ?", [build_id]
        if not any_root:
            where += " AND root = ?"
            args.append(self.root)
        row = self._db.execute(f"SELECT {_BUILD_COLUMNS} FROM builds WHERE {where}", args)
        found = row.fetchone()
        if found is None:
            return None
        build = _build_dict(found)
        build["tasks"] = [
            _task_dict(task)
            for task in self._db.execute(
                f"SELECT {', '.join(TASK_FIELDS)} FROM tasks WHERE build_id = ? ORDER BY position",
                (build_id,),
            )
        ]
        return build

    def get_seq(self, build_id: str) -> int | None:
        """How many events the build's row reflects (None: no such build of this root)."""
        row = self._db.execute(
            "SELECT seq FROM builds WHERE id = ? AND root = ?", (build_id, self.root)
        ).fetchone()
        return None if row is None else row[0]

    def get_log(self, build_id: str) -> str | None:
        row = self._db.execute(
            "SELECT COALESCE(log, '') FROM builds WHERE id = ? AND root = ?", (build_id, self.root)
        ).fetchone()
        return None if row is None else row[0]

    def list_builds(
        self, pipeline: str | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Builds newest first (one page, without their tasks), and how many there are in all."""
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
        """The newest build of each pipeline named (those that were ever built), without tasks."""
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
        """For each task, the status it ended in the last build it took part in (and when)."""
        rows = self._db.execute(
            "SELECT t.name, t.status, t.ended, b.id AS build_id FROM tasks t "
            "JOIN builds b ON b.id = t.build_id WHERE b.root = ? AND b.pipeline = ? "
            "ORDER BY b.created ASC, b.rowid ASC",
            (self.root, pipeline),
        ).fetchall()
        return {
            row["name"]: {
                "state": row["status"],
                "ended": row["ended"],
                "build_id": row["build_id"],
            }
            for row in rows
        }

    def _add_counts(self, builds: list[dict[str, Any]]) -> None:
        """Adds ``counts`` (tasks per status, as ``BuildState.counts()``) to builds read without
        their tasks, in one query."""
        if not builds:
            return
        marks = ", ".join("?" for _ in builds)
        counts: dict[str, dict[str, int]] = {build["id"]: {} for build in builds}
        for row in self._db.execute(
            f"SELECT build_id, status, COUNT(*) FROM tasks WHERE build_id IN ({marks}) "
            "GROUP BY build_id, status",
            [build["id"] for build in builds],
        ):
            counts[row[0]][row[1]] = row[2]
        for build in builds:
            build["counts"] = counts[build["id"]]


def open_history(state_dir: str, root: str) -> tuple[Store, list[dict[str, str]]]:
    """The history store of ``state_dir``, and notices for the API about what went wrong.

    A damaged database (garbage, a malformed page, a truncated file) is moved aside, kept
    under a name that says when (``builds.sqlite.corrupt-<time>``, with its ``-wal`` and
    ``-shm`` files), and a fresh history starts: a ``warning``. A history that cannot be used
    at all (``state_dir`` is a file or cannot be written, the database is of a newer schema)
    leaves the server with a history in memory, lost when it stops: an ``error``. Either way
    the extension keeps answering."""
    path = os.path.join(state_dir, "builds.sqlite")
    try:
        return _open_checked(path, root), []
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and not os.path.isfile(path):
            return _in_memory(root, state_dir, error)
        problem = error
    except NewerSchema as error:
        return _in_memory(root, state_dir, error)
    except OSError as error:
        return _in_memory(root, state_dir, error)
    aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        store = _open_checked(path, root)
    except (OSError, sqlite3.DatabaseError) as error:
        return _in_memory(root, state_dir, error)
    message = (
        f"the build history {path} was corrupt ({problem}); it was moved aside to "
        f"{os.path.basename(aside)} and a fresh history was started"
    )
    logger.warning("nbpipe: %s", message)
    return store, [{"level": "warning", "message": message}]


def _open_checked(path: str, root: str) -> Store:
    store = Store(path, root)
    try:
        store.check()
    except BaseException:
        store.close()
        raise
    return store


def _in_memory(root: str, state_dir: str, error: BaseException) -> tuple[Store, list]:
    if isinstance(error, (FileExistsError, NotADirectoryError)) or (
        os.path.exists(state_dir) and not os.path.isdir(state_dir)
    ):
        why = f"{state_dir} is not a folder"
    else:
        why = str(error)
    message = (
        f"the build history cannot be kept in NbpipeApp.state_dir ({why}); builds are "
        "recorded in memory until the server stops"
    )
    logger.error("nbpipe: %s", message)
    return Store(":memory:", root), [{"level": "error", "message": message}]


def _build_dict(row: sqlite3.Row) -> dict[str, Any]:
    build = dict(row)
    build["force"] = bool(build["force"])
    for name in _JSON_BUILD_FIELDS:
        build[name] = json.loads(build[name]) if build[name] else []
    return build


def _task_dict(row: sqlite3.Row) -> dict[str, Any]:
    task = dict(row)
    task["reasons"] = json.loads(task["reasons"]) if task["reasons"] else []
    task["products"] = json.loads(task["products"]) if task["products"] else []
    task["failure"] = json.loads(task["failure"]) if task["failure"] else None
    task["output"] = task["output"] or ""
    return task


def _migrate_from_3(db: sqlite3.Connection) -> None:
    """Schema 3 tasks gain a running notebook's cell and output tail (the per-cell events)."""
    for column in (
        "cell INTEGER",
        "cells INTEGER",
        "cell_line TEXT",
        "cell_started REAL",
        "cell_elapsed REAL",
        "output TEXT",
    ):
        db.execute(f"ALTER TABLE tasks ADD COLUMN {column}")


def _migrate_from_2(db: sqlite3.Connection) -> None:
    """Schema 2 builds gain ``dashboard`` (build_started's Dask dashboard link), unknown there."""
    db.execute("ALTER TABLE builds ADD COLUMN dashboard TEXT")


def _migrate_from_1(db: sqlite3.Connection) -> None:
    """Schema 1 (before the event contract of EVENT_SCHEMA_VERSION 2): builds gain the
    BuildState fields they lacked, a task's ``state`` becomes its ``status`` and its ``error``
    (the old ``details`` of task_failed) a ``TaskFailure``. The history stays readable."""
    for column in ("dag TEXT", "executor TEXT", "to_run TEXT", "stop_reason TEXT"):
        db.execute(f"ALTER TABLE builds ADD COLUMN {column}")
    db.execute("ALTER TABLE tasks RENAME COLUMN state TO status")
    db.execute("ALTER TABLE tasks ADD COLUMN failure TEXT")
    rows = db.execute("SELECT build_id, name, error FROM tasks WHERE error IS NOT NULL").fetchall()
    for build_id, name, error in rows:
        try:
            old = json.loads(error)
        except ValueError:
            old = {"message": str(error)}
        db.execute(
            "UPDATE tasks SET failure = ? WHERE build_id = ? AND name = ?",
            (json.dumps(_failure_from_1(name, old)), build_id, name),
        )
    if sqlite3.sqlite_version_info >= (3, 35):
        db.execute("ALTER TABLE tasks DROP COLUMN error")
    else:  # an old SQLite cannot drop it; the column stays, unread
        db.execute("UPDATE tasks SET error = NULL")


def _failure_from_1(task: str, old: dict[str, Any]) -> dict[str, Any]:
    text = str(old.get("message") or "")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return {
        "task": task,
        "type": old.get("ename") or old.get("type") or "Error",
        "message": str(old.get("evalue") or ("" if old.get("ename") else last)),
        "traceback": old.get("traceback") or text,
        "source": old.get("source"),
        "cell": old.get("cell_index"),
        "line": old.get("line"),
        "code": old.get("code"),
        "partial_notebook": old.get("partial_path"),
    }


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
