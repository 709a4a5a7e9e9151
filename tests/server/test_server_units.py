"""The parts on their own (no server): store, discovery, process identity, the OpenAPI file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from nbpipe.server import procs
from nbpipe.server.discovery import find_pipelines, relative_to_root, resolve_pipeline
from nbpipe.server.errors import BadRequest, Forbidden, NotFound
from nbpipe.server.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state" / "builds.sqlite", "/root-a")
    yield store
    store.close()


def events(*rows):
    for i, (kind, task, details) in enumerate(rows):
        yield {"v": 1, "event": kind, "task": task, "time": 100.0 + i, **details}


def test_events_become_build_and_task_records(store):
    store.create_build("b1", "p/pipeline.yaml", False, [], 99.0, owner="me")
    seqs = [
        store.apply_event("b1", event)
        for event in events(
            ("build_started", None, {"tasks": ["a", "b", "c"], "to_run": ["a", "b"]}),
            ("task_queued", "a", {"reasons": ["forced"]}),
            ("task_queued", "b", {"reasons": ["upstream 'a' will run"]}),
            ("task_skipped", "c", {"products": ["/root-a/p/c.txt"]}),
            ("task_started", "a", {}),
            ("task_failed", "a", {"elapsed": 0.5, "error": "boom", "details": {"ename": "E"}}),
            ("task_aborted", "b", {"reason": "upstream task 'a' failed"}),
            ("build_finished", None, {"outcome": "failed", "stop_reason": None, "failed": ["a"]}),
        )
    ]
    assert seqs == list(range(1, 9))
    store.finish_build("b1", "failed", 110.0, exit_code=1)
    build = store.get_build("b1")
    assert build["state"] == "failed" and build["outcome"] == "failed"
    assert build["started"] == 100.0 and build["elapsed"] == 10.0
    tasks = {task["name"]: task for task in build["tasks"]}
    assert [task["name"] for task in build["tasks"]] == ["a", "b", "c"]
    assert tasks["a"]["state"] == "failed"
    assert tasks["a"]["error"] == {"ename": "E", "message": "boom"}
    assert tasks["a"]["started"] == 104.0 and tasks["a"]["ended"] == 105.0
    assert tasks["b"]["state"] == "aborted" and tasks["b"]["detail"].startswith("upstream")
    assert tasks["c"]["state"] == "skipped" and tasks["c"]["products"] == ["/root-a/p/c.txt"]


def test_finishing_cancels_what_never_finished(store):
    store.create_build("b1", "p/pipeline.yaml", False, [], 1.0, owner="me")
    for event in events(
        ("build_started", None, {"tasks": ["a", "b"]}),
        ("task_queued", "a", {}),
        ("task_queued", "b", {}),
        ("task_started", "a", {}),
    ):
        store.apply_event("b1", event)
    cancelled = store.finish_build(
        "b1", "cancelled", 50.0, unfinished_reason="the build was cancelled"
    )
    assert cancelled == ["a", "b"]
    tasks = store.get_build("b1")["tasks"]
    assert [(t["state"], t["detail"]) for t in tasks] == [
        ("cancelled", "the build was cancelled"),
        ("cancelled", "the build was cancelled"),
    ]
    assert tasks[0]["ended"] == 50.0 and tasks[1]["ended"] is None  # b never started


def test_orphans_of_a_dead_server_are_interrupted(store):
    store.create_build("dead", "p/pipeline.yaml", False, [], 1.0, owner="gone@1")
    store.create_build("live", "q/pipeline.yaml", False, [], 2.0, owner="alive@1")
    store.create_build("old", "r/pipeline.yaml", False, [], 3.0, owner="gone@1")
    store.finish_build("old", "success", 4.0)
    orphans = store.interrupt_orphans(lambda owner: owner == "alive@1", 10.0)
    assert [orphan["id"] for orphan in orphans] == ["dead"]
    assert store.get_build("dead")["state"] == "interrupted"
    assert store.get_build("live")["state"] == "starting"
    assert store.get_build("old")["state"] == "success"


def test_history_is_per_root_newest_first(tmp_path, store):
    for i in range(5):
        store.create_build(f"b{i}", "p/pipeline.yaml", False, [], float(i), owner="me")
    other = Store(tmp_path / "state" / "builds.sqlite", "/root-b")
    other.create_build("elsewhere", "p/pipeline.yaml", False, [], 10.0, owner="me")
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
