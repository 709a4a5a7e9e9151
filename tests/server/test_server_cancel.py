"""Cancelling a build whose notebook sleeps in a cell: it ends, its kernel and workers are gone,
and no half-written product is left. (How fast: benchmarks/stop_time.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from server_helpers import (
    alive,
    api,
    check_events,
    events_until_ended,
    kernel_pids,
    kind,
    replay,
    snapshot_state,
    staged_leftovers,
    start_build,
    wait_for,
    wait_for_task,
    write_data,
    write_pipeline,
)
from wait_helpers import async_wait_for_marker, async_wait_until, touch_code

from nbpipe.server import procs

pytestmark = pytest.mark.timeout(120)


def sleepy(reached: Path) -> str:
    """Notebook code that half-writes its product, creates the marker file ``reached``, then
    sleeps in the cell (long enough to be cancelled)."""
    return (
        "open(product['data'], 'w').write('half of it')\n"
        "print('sleeping', flush=True)\n"
        f"{touch_code(reached)}\n"
        "import time\n"
        "time.sleep(120)\n"
    )


async def running_kernels() -> list[int]:
    """Kernel processes below this (the server's) process, once there is one."""
    return await async_wait_until(
        lambda: kernel_pids(procs.descendants(os.getpid())), "a kernel below the server"
    )


async def all_ended(pids: list[int]) -> None:
    """Waits until none of ``pids`` runs (a process just killed may take a moment to be
    reaped); fails naming the survivors."""
    await async_wait_until(
        lambda: not [pid for pid in pids if alive(pid)],
        lambda: f"the build's processes to end: {[pid for pid in pids if alive(pid)]} still run",
        timeout=15,
    )


@pytest.mark.parametrize("executor", ["serial", "parallel"])
async def test_cancel_stops_kernel_and_leaves_no_product(jp_fetch, jp_root_dir, tmp_path, executor):
    reached = tmp_path / "sleepy.reached"
    pipeline = write_pipeline(
        jp_root_dir,
        "slow",
        {"first": write_data("first"), "sleepy": sleepy(reached), "after": write_data("after")},
        upstream={"sleepy": ["first"], "after": ["sleepy"]},
        executor=executor,
    )
    build_id = await start_build(jp_fetch, pipeline)
    await wait_for_task(jp_fetch, build_id, "sleepy", "running")
    await async_wait_for_marker(reached, "the notebook to reach its sleeping cell")
    kernels = await running_kernels()
    tree = procs.descendants(os.getpid())

    # (How long a cancel takes is measured by benchmarks/stop_time.py, not asserted here.)
    code, reply = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    assert code == 202 and reply["state"] == "cancelling"
    build = await wait_for(jp_fetch, build_id, timeout=60)
    assert build["state"] == "cancelled", build

    tasks = {task["name"]: task for task in build["tasks"]}
    assert tasks["first"]["status"] == "executed"
    assert tasks["sleepy"]["status"] == "cancelled"
    assert tasks["after"]["status"] == "cancelled"
    assert tasks["after"]["detail"]

    # No process of the build is left: kernel, workers, the CLI itself.
    await all_ended(kernels + tree)

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


async def test_cancel_event_sequence(jp_fetch, jp_ws_fetch, jp_root_dir, tmp_path):
    """The event bus tells the whole story: cancelling, then the tasks cancelled, then ended."""

    pipeline = write_pipeline(jp_root_dir, "slow", {"sleepy": sleepy(tmp_path / "reached")})
    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    await wait_for_task(jp_fetch, build_id, "sleepy", "running")
    await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    events = await events_until_ended(ws, build_id)
    check_events(events)
    kinds = [kind(event) for event in events]
    assert kinds.index("build_cancelling") < kinds.index("build_ended")
    assert events[kinds.index("build_cancelling")]["state"] == "cancelling"
    assert events[-1]["state"] == "cancelled"
    # The build process reported its task cancelled (SIGTERM is its interrupt).
    cancelled = [e for e in events if kind(e) == "task_cancelled"]
    assert [e["event"]["task"] for e in cancelled] == ["sleepy"]
    build = await wait_for(jp_fetch, build_id)
    assert replay(events).to_dict() == snapshot_state(build)


async def test_a_build_that_ignores_sigterm_is_killed(jp_fetch, jp_root_dir, tmp_path):
    """A task that swallows the stop (a function catching KeyboardInterrupt) cannot keep the
    build alive: after the grace period the whole tree is killed."""
    folder = jp_root_dir / "stubborn"
    folder.mkdir()
    reached = tmp_path / "stubborn.reached"
    (folder / "tasks.py").write_text(
        "import time\n\n"
        "def stubborn(product):\n"
        f"    {touch_code(reached)}\n"
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
    await async_wait_for_marker(reached, "the task to start ignoring signals")
    tree = procs.descendants(os.getpid())
    await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    # The task never ends by itself: only the kill after the grace period (2 s in these tests)
    # can end the build.
    build = await wait_for(jp_fetch, build_id, timeout=60)
    assert build["state"] == "cancelled"
    assert build["tasks"][0]["status"] == "cancelled"
    await all_ended(tree)
    assert not (folder / "out" / "x.txt").exists()
