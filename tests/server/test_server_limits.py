"""Settings and failure modes: the concurrency limit, the executor setting, a build process that
dies, a cancel that comes before the build got going."""

from __future__ import annotations

import pytest
from server_helpers import (
    api,
    events_until_ended,
    start_build,
    wait_for,
    write_functions,
    write_text,
)

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
    assert build["tasks"][0]["state"] == "cancelled"
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
    assert all(task["state"] == "cancelled" for task in build["tasks"])
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

    pipeline = write_functions(
        jp_root_dir,
        "crash",
        {"crash": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "never": SLOW},
    )
    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    events = await events_until_ended(ws, build_id)
    last = {}
    for event in events:
        if event["task"]:
            last[event["task"]] = event["task_state"]
    assert last == {"crash": "cancelled", "never": "cancelled"}
    assert events[-1]["state"] == "error"
