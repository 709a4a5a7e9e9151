"""The parts on their own (no server): store, discovery, process identity, the OpenAPI file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from server_helpers import EVENT_VALIDATOR

from nbpipe.engine.events import (
    BuildCreated,
    BuildEnded,
    BuildFinished,
    BuildOutcome,
    BuildStarted,
    TaskAborted,
    TaskFailed,
    TaskFailure,
    TaskFinished,
    TaskQueued,
    TaskSkipped,
    TaskStarted,
)
from nbpipe.engine.state import BuildState
from nbpipe.server import procs, views
from nbpipe.server.builds import BuildManager, BuildSettings
from nbpipe.server.discovery import find_pipelines, relative_to_root, resolve_pipeline
from nbpipe.server.errors import BadRequest, Forbidden, NotFound
from nbpipe.server.store import SCHEMA_VERSION, Store, StoreThread, build_row, task_row


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state" / "builds.sqlite", "/root-a")
    yield store
    store.close()


def record_events(store: Store, build_id: str, events: list, owner: str = "me") -> BuildState:
    """What the build manager does with each event: apply it, then record the build's row and
    the tasks it changed (tasks first seen get the next positions)."""
    state, positions = BuildState(), {}
    for seq, event in enumerate(events, 1):
        changed = state.apply(event)
        for name in state.tasks:
            if name not in positions:
                positions[name] = len(positions)
                changed.append(state.tasks[name])
        rows = [task_row(positions[task.name], task) for task in changed]
        if isinstance(event, BuildCreated):
            store.create_build(
                build_id, "p/pipeline.yaml", event.force, event.targets, event.time, owner,
                build_row(state), seq=seq,
            )  # fmt: skip
        else:
            store.record(build_id, seq, build_row(state), rows)
    return state


FAILURE = TaskFailure(
    task="a",
    type="KeyError",
    message="'units'",
    traceback="Traceback ...",
    source="/root-a/p/a.py",
    cell=3,
    line=2,
    code="x = row['units']",
    partial_notebook="/root-a/p/out/a.failed.ipynb",
)


def plan(*tasks: str, at: float = 100.0) -> list:
    return [
        BuildCreated(time=at, targets=["b"]),
        BuildStarted(time=at + 1, dag="p", executor="Serial()", tasks=list(tasks), to_run=["a", "b"]),
    ]  # fmt: skip


def test_the_store_keeps_a_build_state_as_it_is(store):
    """What is read back is the BuildState that was recorded: the store derives nothing."""
    events = [
        *plan("a", "b", "c"),
        TaskQueued(task="a", time=102.0, reasons=["forced"]),
        TaskQueued(task="b", time=102.0, reasons=["upstream 'a' will run"]),
        TaskSkipped(task="c", time=102.0, products=["/root-a/p/c.txt"]),
        TaskStarted(task="a", time=104.0),
        TaskFailed(task="a", time=105.0, elapsed=0.5, failure=FAILURE),
        TaskAborted(task="b", time=105.0, reason="upstream task 'a' failed"),
        BuildFinished(time=106.0, outcome=BuildOutcome.FAILED, failed=["a"]),
        BuildEnded(time=107.0, state="failed", exit_code=1),
    ]
    state = record_events(store, "b1", events)
    build = store.get_build("b1")
    assert build["seq"] == len(events) and build["targets"] == ["b"]
    assert BuildState.from_dict(build).to_dict() == state.to_dict()
    assert build["state"] == "failed" and build["outcome"] == "failed"
    assert [task["name"] for task in build["tasks"]] == ["a", "b", "c"]
    assert build["tasks"][0]["failure"] == FAILURE.to_dict()
    builds, total = store.list_builds()
    assert total == 1 and builds[0]["counts"] == {"failed": 1, "aborted": 1, "skipped": 1}
    assert "tasks" not in builds[0]
    assert store.last_task_results("p/pipeline.yaml")["a"] == {
        "state": "failed", "ended": 105.0, "build_id": "b1"
    }  # fmt: skip


def test_a_build_snapshot_is_the_state_with_paths_relative_to_the_root(store):
    state = record_events(
        store,
        "b1",
        [
            *plan("a", "c"),
            TaskSkipped(task="c", time=102.0, products=["/root-a/p/c.txt", "/elsewhere/c.csv"]),
            TaskStarted(task="a", time=103.0),
            TaskFailed(task="a", time=104.0, elapsed=1.0, failure=FAILURE),
        ],
    )
    snapshot = views.build("/root-a", store.get_build("b1"))
    assert list(snapshot)[:7] == ["id", "pipeline", "force", "targets", "created", "seq", "counts"]
    assert set(snapshot) - {"id", "pipeline", "force", "targets", "created", "seq", "counts"} == (
        set(state.to_dict())
    )
    assert snapshot["counts"] == state.counts() == {"skipped": 1, "failed": 1}
    a, c = snapshot["tasks"]
    assert c["products"] == ["p/c.txt", "/elsewhere/c.csv"]  # relative when in the root
    assert a["failure"]["source"] == "p/a.py"
    assert a["failure"]["partial_notebook"] == "p/out/a.failed.ipynb"
    assert a["detail"] == FAILURE.summary()
    # The same rule for events.
    event = views.event("/root-a", TaskFailed(task="a", elapsed=1.0, failure=FAILURE).to_dict())
    assert event["failure"]["source"] == "p/a.py" and event["failure"]["cell"] == 3


def test_recovery_settles_an_orphan_as_interrupted(tmp_path):
    """A build whose server died (its owner is no live process) gets build_ended(interrupted):
    its unsettled tasks become cancelled by the reducer's rule, once; other builds are left."""
    thread = StoreThread(Store(tmp_path / "builds.sqlite", "/root-a"))
    store = thread.store
    dead, alive = "999999999@1.00", procs.identity(os.getpid())
    record_events(
        store,
        "orphan",
        [
            *plan("a", "b", "c"),
            TaskQueued(task="a", time=102.0, reasons=[]),
            TaskQueued(task="b", time=102.0, reasons=[]),
            TaskQueued(task="c", time=102.0, reasons=[]),
            TaskStarted(task="a", time=103.0),
            TaskFinished(task="a", time=104.0, elapsed=1.0, products=["/root-a/p/a.txt"]),
            TaskStarted(task="b", time=104.0),
        ],
        owner=dead,
    )
    record_events(store, "live", plan("a"), owner=alive)
    record_events(store, "done", [*plan("a"), BuildEnded(state="error")], owner=dead)
    emitted: list[dict] = []
    manager = BuildManager("/root-a", thread, emitted.append, BuildSettings())
    try:
        orphans = manager.recover()
        assert [orphan["id"] for orphan in orphans] == ["orphan"]
        build = store.get_build("orphan")
        assert build["state"] == "interrupted" and build["seq"] == 9
        assert build["message"] == "the server stopped while this build was running"
        tasks = {task["name"]: task for task in build["tasks"]}
        assert tasks["a"]["status"] == "executed"
        assert tasks["b"]["status"] == tasks["c"]["status"] == "cancelled"
        assert tasks["b"]["detail"] == tasks["c"]["detail"] == "the server stopped"
        assert tasks["b"]["ended"] == build["ended"] and tasks["c"]["ended"] is None
        # One event, build_ended, on the bus: no task event is invented.
        [envelope] = emitted
        assert envelope["seq"] == 9 and envelope["state"] == "interrupted"
        assert envelope["event"]["event"] == "build_ended"
        assert list(EVENT_VALIDATOR.iter_errors(envelope["event"])) == []
        assert store.get_build("live")["state"] == "running"
        assert store.get_build("done")["state"] == "error"
        # Settled once: a second start finds nothing to do.
        assert manager.recover() == [] and len(emitted) == 1
    finally:
        thread.close()


SCHEMA_1 = """
CREATE TABLE builds (id TEXT PRIMARY KEY, root TEXT NOT NULL, pipeline TEXT NOT NULL,
    state TEXT NOT NULL, force INTEGER NOT NULL, targets TEXT NOT NULL, created REAL NOT NULL,
    started REAL, ended REAL, outcome TEXT, exit_code INTEGER, message TEXT,
    seq INTEGER NOT NULL DEFAULT 0, owner TEXT, pid INTEGER, pid_id TEXT, log TEXT);
CREATE TABLE tasks (build_id TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL, reasons TEXT,
    started REAL, ended REAL, elapsed REAL, products TEXT, detail TEXT, error TEXT,
    PRIMARY KEY (build_id, name));
INSERT INTO builds VALUES ('old', '/root-a', 'p/pipeline.yaml', 'failed', 0, '[]', 1.0, 2.0,
    3.0, 'failed', 1, NULL, 9, 'gone@1', NULL, NULL, 'log');
INSERT INTO tasks VALUES ('old', 'a', 0, 'failed', '["forced"]', 2.0, 3.0, 1.0, '[]', NULL,
    '{"type": "NotebookExecutionError", "ename": "KeyError", "evalue": "''units''",
      "cell_index": 3, "line": 2, "code": "x", "traceback": "tb", "source": "/root-a/p/a.py",
      "partial_path": "/root-a/p/a.failed.ipynb", "message": "full text"}');
PRAGMA user_version=1;
"""


def test_a_history_of_schema_1_is_migrated(tmp_path):
    path = tmp_path / "builds.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.close()
    store = Store(path, "/root-a")
    try:
        build = store.get_build("old")
        assert build["state"] == "failed" and build["seq"] == 9 and build["to_run"] == []
        [task] = build["tasks"]
        assert task["status"] == "failed" and task["reasons"] == ["forced"]
        assert task["failure"] == {
            "task": "a",
            "type": "KeyError",
            "message": "'units'",
            "traceback": "tb",
            "source": "/root-a/p/a.py",
            "cell": 3,
            "line": 2,
            "code": "x",
            "partial_notebook": "/root-a/p/a.failed.ipynb",
        }
        assert BuildState.from_dict(build).tasks["a"].failure.summary() == (
            "KeyError: 'units' (cell 4, line 2)"
        )
        assert build["dashboard"] is None
        assert (task["cell"], task["cell_line"], task["output"]) == (None, None, "")
    finally:
        store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_history_is_per_root_newest_first(tmp_path, store):
    for i in range(5):
        record_events(store, f"b{i}", [BuildCreated(time=float(i))])
    other = Store(tmp_path / "state" / "builds.sqlite", "/root-b")
    record_events(other, "elsewhere", [BuildCreated(time=10.0)])
    builds, total = store.list_builds(limit=2, offset=1)
    assert total == 5 and [b["id"] for b in builds] == ["b3", "b2"]
    assert store.get_build("elsewhere") is None
    assert store.latest_builds(["p/pipeline.yaml", "none.yaml"])["p/pipeline.yaml"]["id"] == "b4"
    other.close()


def test_the_database_is_in_wal_mode_and_versioned(tmp_path, store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer nbpipe"):
        Store(store.path, "/root-a")


def test_process_identity_tells_reused_pids_apart():
    me = procs.identity(os.getpid())
    assert procs.is_alive(me)
    pid = int(me.split("@")[0])
    assert not procs.is_alive(f"{pid}@0")
    assert not procs.is_alive(None)
    assert not procs.is_alive("999999999@1.00")  # no such process


def test_process_trees_and_identities():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in procs.descendants(os.getpid())
        tree = procs.tree_identities(os.getpid())
        recorded = procs.identity(child.pid)
        assert recorded in tree and procs.is_alive(recorded)
        assert procs.signal_processes([recorded], signal.SIGTERM) == 1
        child.wait(timeout=30)
        assert not procs.is_alive(recorded) and procs.identity(child.pid) is None
        assert procs.signal_processes([recorded], signal.SIGTERM) == 0
    finally:
        child.kill()
        child.wait()


PARENT_DIES = """
import os, subprocess, sys, time
from nbpipe.server import procs

exit_with_parent = procs.parent_death_signal()
if sys.argv[1] == "gone":  # the child's parent is not the process that made the function
    if os.fork():
        os._exit(0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             preexec_fn=exit_with_parent)
    print(child.wait(), flush=True)
    sys.exit()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                         preexec_fn=exit_with_parent)
print(child.pid, flush=True)
time.sleep(30)
"""


@pytest.mark.skipif(procs.parent_death_signal() is None, reason="Linux only")
def test_children_get_sigterm_when_their_parent_dies():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_DIES, "dies"], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    assert procs.identity(child) is not None
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while procs.identity(child) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert procs.identity(child) is None

    # A parent that died before the child could ask for the signal (here: the child's parent
    # is another process than the one that made the function): the child ends itself.
    # (The run ends when the forked process, which holds stdout too, has printed.)
    gone = subprocess.run(
        [sys.executable, "-c", PARENT_DIES, "gone"], capture_output=True, text=True, timeout=20
    )
    assert int(gone.stdout) == -signal.SIGTERM, gone


def test_find_pipelines_bounds_and_skips(tmp_path):
    for folder in ["", "a", "a/b", "a/b/c", ".git", "node_modules", "env"]:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "pipeline.yaml").write_text("tasks: []\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("")
    (tmp_path / "a" / "pipeline-x.yml").write_text("")
    (tmp_path / "loop").symlink_to(tmp_path)
    found = find_pipelines(tmp_path, max_depth=2)
    assert found.pipelines == [
        "a/b/pipeline.yaml",
        "a/pipeline-x.yml",
        "a/pipeline.yaml",
        "pipeline.yaml",
    ]
    assert not found.truncated
    assert find_pipelines(tmp_path, max_entries=3).truncated


def test_resolve_pipeline_confines_paths(tmp_path):
    root = tmp_path / "root"
    (root / "p").mkdir(parents=True)
    (root / "p" / "pipeline.yaml").write_text("")
    (root / "p" / "notes.txt").write_text("")
    (tmp_path / "outside.yaml").write_text("")
    (root / "pipeline-out.yaml").symlink_to(tmp_path / "outside.yaml")
    assert resolve_pipeline(root, "p/pipeline.yaml") == root.resolve() / "p" / "pipeline.yaml"
    for path, error in [
        ("../outside.yaml", Forbidden),
        ("/etc/passwd", Forbidden),
        ("~/pipeline.yaml", Forbidden),
        ("C:/pipeline.yaml", Forbidden),
        ("p\\..\\..\\outside.yaml", Forbidden),
        ("pipeline-out.yaml", Forbidden),
        ("p/missing.yaml", NotFound),
        (".p/pipeline.yaml", NotFound),
        ("p/notes.txt", BadRequest),
        ("", BadRequest),
    ]:
        with pytest.raises(error):
            resolve_pipeline(root, path)


def test_paths_relative_to_the_root(tmp_path):
    assert relative_to_root(tmp_path, tmp_path / "a" / "b.html") == "a/b.html"
    assert relative_to_root(tmp_path, "/elsewhere/b.html") is None


def test_the_openapi_file_describes_every_route():
    import re
    from pathlib import Path

    import yaml

    from nbpipe.server.handlers import handlers

    spec = yaml.safe_load((Path(__file__).parents[2] / "nbpipe/server/openapi.yaml").read_text())
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = set()
    for pattern, handler in handlers():
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "{" + m.group(1) + "}", pattern)
        path = path.replace("/nbpipe/api", "").replace("/?", "").replace("build_id", "id")
        for method in ("get", "post"):
            if method in vars(handler):
                served.add((path, method.upper()))
    assert documented == served
