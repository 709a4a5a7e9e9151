"""Cancelling a build whose notebook sleeps in a cell: it ends within seconds, its kernel and
workers are gone, and no half-written product is left."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from server_helpers import (
    alive,
    api,
    events_until_ended,
    kernel_pids,
    staged_leftovers,
    start_build,
    wait_for,
    wait_for_task,
    write_data,
    write_pipeline,
)

from nbpipe.server import procs

pytestmark = pytest.mark.timeout(120)

SLEEPY = """open(product['data'], 'w').write('half of it')
print('sleeping', flush=True)
import time
time.sleep(120)
"""


async def running_kernels(timeout: float = 30) -> list[int]:
    """Kernel processes below this (the server's) process, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = kernel_pids(procs.descendants(os.getpid()))
        if kernels:
            return kernels
        await asyncio.sleep(0.1)
    raise AssertionError("no kernel started")


@pytest.mark.parametrize("executor", ["serial", "parallel"])
async def test_cancel_stops_kernel_and_leaves_no_product(jp_fetch, jp_root_dir, executor):
    pipeline = write_pipeline(
        jp_root_dir,
        "slow",
        {"first": write_data("first"), "sleepy": SLEEPY, "after": write_data("after")},
        upstream={"sleepy": ["first"], "after": ["sleepy"]},
        executor=executor,
    )
    build_id = await start_build(jp_fetch, pipeline)
    await wait_for_task(jp_fetch, build_id, "sleepy", "running")
    kernels = await running_kernels()
    tree = procs.descendants(os.getpid())
    await asyncio.sleep(1.0)  # well inside the sleeping cell

    asked = time.monotonic()
    code, reply = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    assert code == 202 and reply["state"] == "cancelling"
    build = await wait_for(jp_fetch, build_id, timeout=10)
    took = time.monotonic() - asked
    assert build["state"] == "cancelled", build
    print(f"cancel ({executor}) took {took:.2f} s")
    assert took < 5, f"cancel took {took:.1f} s"

    tasks = {task["name"]: task for task in build["tasks"]}
    assert tasks["first"]["state"] == "executed"
    assert tasks["sleepy"]["state"] == "cancelled"
    assert tasks["after"]["state"] == "cancelled"
    assert tasks["after"]["detail"]

    # No process of the build is left: kernel, workers, the CLI itself.
    await asyncio.sleep(0.2)
    assert [pid for pid in kernels if alive(pid)] == []
    assert [pid for pid in tree if alive(pid)] == []

    out = jp_root_dir / "slow" / "out"
    assert (out / "first.txt").exists()
    assert not (out / "sleepy.txt").exists()
    assert not (out / "sleepy.ipynb").exists()
    assert staged_leftovers(out) == []

    # A cancelled build frees the pipeline, and a second cancel is a conflict.
    code, _ = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    assert code == 409
    code, listing = await api(jp_fetch, "pipelines")
    assert listing["pipelines"][0]["building"] is None


async def test_cancel_event_sequence(jp_fetch, jp_ws_fetch, jp_root_dir):
    """The event bus tells the whole story: cancelling, then the tasks cancelled, then ended."""

    pipeline = write_pipeline(jp_root_dir, "slow", {"sleepy": SLEEPY})
    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    await wait_for_task(jp_fetch, build_id, "sleepy", "running")
    await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    events = await events_until_ended(ws, build_id)
    kinds = [event["event"] for event in events]
    assert kinds.index("build_cancelling") < kinds.index("build_ended")
    assert events[-1]["state"] == "cancelled"
    cancelled = [e for e in events if e["event"] == "task_cancelled"]
    assert [e["task"] for e in cancelled] == ["sleepy"]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))


async def test_a_build_that_ignores_sigterm_is_killed(jp_fetch, jp_root_dir):
    """A task that swallows the stop (a function catching KeyboardInterrupt) cannot keep the
    build alive: after the grace period the whole tree is killed."""
    folder = jp_root_dir / "stubborn"
    folder.mkdir()
    (folder / "tasks.py").write_text(
        "import time\n\n"
        "def stubborn(product):\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(60)\n"
        "        except BaseException:\n"
        "            pass\n"
    )
    (folder / "pipeline.yaml").write_text(
        "executor: serial\ntasks:\n  - source: tasks.stubborn\n    product: out/x.txt\n"
    )
    build_id = await start_build(jp_fetch, "stubborn/pipeline.yaml")
    await wait_for_task(jp_fetch, build_id, "stubborn", "running")
    tree = procs.descendants(os.getpid())
    asked = time.monotonic()
    await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    build = await wait_for(jp_fetch, build_id, timeout=15)
    assert build["state"] == "cancelled"
    assert time.monotonic() - asked < 5  # grace period (2 s in these tests) + the kill
    assert build["tasks"][0]["state"] == "cancelled"
    await asyncio.sleep(0.2)
    assert [pid for pid in tree if alive(pid)] == []
    assert not (folder / "out" / "x.txt").exists()
