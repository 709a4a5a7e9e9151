"""Settings and failure modes: the concurrency limit, the executor setting, a build process that
dies, a cancel that comes before the build got going."""

from __future__ import annotations

import contextlib
import signal

import psutil
import pytest
from server_helpers import (
    api,
    check_events,
    events_until_ended,
    kind,
    replay,
    snapshot_state,
    start_build,
    task_events,
    wait_for,
    write_functions,
    write_text,
)
from wait_helpers import async_wait_for_marker, touch_code

pytestmark = pytest.mark.timeout(60)

SLOW = "time.sleep(1.5)\n" + write_text("done")


class TestSettings:
    @pytest.fixture
    def nbpipe_config(self):
        return {"max_concurrent_builds": 1, "processes": 2}

    async def test_concurrency_limit_and_processes(self, jp_fetch, jp_root_dir):
        one = write_functions(jp_root_dir, "one", {"a": SLOW, "b": SLOW})
        two = write_functions(jp_root_dir, "two", {"c": write_text("c")})
        first = await start_build(jp_fetch, one)
        code, reply = await api(jp_fetch, "builds", method="POST", body={"pipeline": two})
        assert code == 429 and "max_concurrent_builds" in reply["message"]
        build = await wait_for(jp_fetch, first)
        assert build["state"] == "success"
        # --processes 2: the two independent tasks ran at the same time.
        a, b = build["tasks"]
        assert a["started"] < b["ended"] and b["started"] < a["ended"]
        assert (await wait_for(jp_fetch, await start_build(jp_fetch, two)))["state"] == "success"


async def test_a_crashing_build_cannot_take_the_server_down(jp_fetch, jp_root_dir):
    pipeline = write_functions(
        jp_root_dir,
        "crash",
        {"crash": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"},
    )
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "error"
    assert "SIGKILL" in build["message"]
    assert build["tasks"][0]["status"] == "cancelled"
    code, _ = await api(jp_fetch, "pipelines")
    assert code == 200
    # The pipeline is free again.
    code, reply = await api(jp_fetch, "builds", method="POST", body={"pipeline": pipeline})
    assert code == 202, reply


async def test_a_task_printing_to_stdout_does_not_corrupt_the_event_stream(jp_fetch, jp_root_dir):
    pipeline = write_functions(
        jp_root_dir, "noisy", {"noisy": "print('{not json')\nprint('[1]')\n" + write_text("x")}
    )
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "success"
    _, log = await api(jp_fetch, "builds", build["id"], "log")
    assert "{not json" in log["log"]


async def test_cancel_right_after_start(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "p", {"a": SLOW})
    build_id = await start_build(jp_fetch, pipeline)
    code, reply = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    assert code == 202 and reply["state"] == "cancelling"
    build = await wait_for(jp_fetch, build_id, timeout=10)
    assert build["state"] == "cancelled"
    assert all(task["status"] == "cancelled" for task in build["tasks"])
    assert not (jp_root_dir / "p" / "out" / "a.txt").exists()


class TestAnotherRelease:
    """NbpipeApp.python may run another nbpipe release: events of an unknown schema version are
    refused, not misread. (A stand-in interpreter: the one test that does not run the real CLI.)"""

    @pytest.fixture
    def nbpipe_config(self, tmp_path):
        fake = tmp_path / "python-from-the-future"
        fake.write_text('#!/bin/sh\necho \'{"v": 99, "event": "header"}\'\nexec sleep 30\n')
        fake.chmod(0o755)
        return {"python": str(fake)}

    async def test_unknown_event_schema_versions_are_refused(self, jp_fetch, jp_root_dir):
        pipeline = write_functions(jp_root_dir, "p", {"a": write_text("a")})
        build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline), timeout=10)
        assert build["state"] == "error"
        assert "schema version 99" in build["message"]


async def test_events_of_a_crashed_build_still_settle_every_task(
    jp_fetch, jp_ws_fetch, jp_root_dir
):
    """A build process that dies says nothing of its unsettled tasks, and the server invents
    nothing: build_ended settles them (cancelled, by the reducer's rule), in the stream and in
    the snapshot alike."""
    pipeline = write_functions(
        jp_root_dir,
        "crash",
        {"crash": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "never": SLOW},
    )
    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    events = await events_until_ended(ws, build_id)
    check_events(events)
    assert "task_cancelled" not in [kind(event) for event in events]
    assert kind(events[-1]) == "build_ended" and events[-1]["state"] == "error"
    state = replay(events)
    assert {name: task.status.value for name, task in state.tasks.items()} == {
        "crash": "cancelled",
        "never": "cancelled",
    }
    build = await wait_for(jp_fetch, build_id)
    assert state.to_dict() == snapshot_state(build)


KILLED_CODE = """
import time
from pathlib import Path


def first(product):
    Path(product).write_text("first")


def sleepy(product, upstream):
    Path(upstream["first"]).read_text()
    {touch}
    time.sleep(120)
    Path(product).write_text("never")


def after(product, upstream):
    Path(product).write_text(Path(upstream["sleepy"]).read_text())
"""

KILLED_SPEC = """
executor: serial
tasks:
  - {source: killed_fns.first, product: out/first.txt}
  - {source: killed_fns.sleepy, product: out/sleepy.txt}
  - {source: killed_fns.after, product: out/after.txt}
"""


def build_processes() -> list[psutil.Process]:
    """The ``nbpipe build`` processes the (in-process) server started."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            command = child.cmdline()
            if "nbpipe" in command and "build" in command:
                found.append(child)
    return found


async def test_a_build_process_killed_mid_build_is_settled_by_build_ended(
    jp_fetch, jp_ws_fetch, jp_root_dir, tmp_path
):
    """SIGKILL to the CLI while a task runs: the build ends ``error``; the running task and the
    queued one become cancelled by build_ended's rule; the bus carries build_ended only after
    the kill, no task_cancelled."""
    reached = tmp_path / "sleepy.reached"
    folder = jp_root_dir / "killed"
    folder.mkdir()
    (folder / "killed_fns.py").write_text(KILLED_CODE.format(touch=touch_code(reached)))
    (folder / "pipeline.yaml").write_text(KILLED_SPEC)
    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, "killed/pipeline.yaml")
    await async_wait_for_marker(reached, "the sleepy task to run")
    [cli] = build_processes()
    cli.kill()
    events = await events_until_ended(ws, build_id)

    check_events(events)
    kinds = [kind(event) for event in events]
    assert "task_cancelled" not in kinds
    started = [i for i, e in enumerate(events) if task_events([e], "sleepy") == ["task_started"]]
    assert kinds[started[-1] + 1 :] == ["build_ended"]
    ended = events[-1]
    assert ended["state"] == "error" and "SIGKILL" in ended["event"]["message"]
    assert ended["event"]["exit_code"] == -signal.SIGKILL

    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "error" and build["seq"] == ended["seq"]
    tasks = {task["name"]: task for task in build["tasks"]}
    assert tasks["first"]["status"] == "executed"
    assert tasks["sleepy"]["status"] == tasks["after"]["status"] == "cancelled"
    assert tasks["sleepy"]["detail"] == tasks["after"]["detail"] == "the build stopped"
    assert tasks["sleepy"]["ended"] == ended["event"]["time"]
    assert tasks["after"]["ended"] is None  # it never started
    assert build["counts"] == {"executed": 1, "cancelled": 2}
    # What the browser derives from the events is the snapshot.
    assert replay(events).to_dict() == snapshot_state(build)
    assert not (folder / "out" / "sleepy.txt").exists()
