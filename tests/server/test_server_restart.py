"""History survives a server restart; builds running when a server died or stopped end
"interrupted", never "running" forever, and nothing of them keeps running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from server_helpers import (
    alive,
    api,
    check_snapshot,
    kernel_pids,
    staged_leftovers,
    write_data,
    write_pipeline,
)
from server_process import ServerProcess
from wait_helpers import async_wait_until, touch_code, wait_for_marker, wait_until

from nbpipe.server import procs

pytestmark = pytest.mark.timeout(180)


def sleepy(reached: Path) -> str:
    """Notebook code that half-writes its product, creates the marker file ``reached``, then
    sleeps in the cell."""
    return (
        "open(product['data'], 'w').write('half')\n"
        f"{touch_code(reached)}\n"
        "import time\n"
        "time.sleep(60)\n"
    )


def wait_for_kernel(pid: int) -> list[int]:
    """The processes below ``pid``, once a kernel is among them."""
    tree = wait_until(
        lambda: (tree := procs.descendants(pid)) and kernel_pids(tree) and tree,
        "the build's kernel to start",
    )
    return tree


def wait_all_ended(pids: list[int]) -> None:
    wait_until(
        lambda: not [pid for pid in pids if alive(pid)],
        lambda: f"the build's processes to end: {[pid for pid in pids if alive(pid)]} still run",
    )


@pytest.fixture
def previous_servers(jp_root_dir, state_dir, tmp_path):
    """Two earlier lives of a server on this root and state directory: the first runs a build
    to success, then dies (SIGKILL) in the middle of a second build; the second is stopped
    gracefully (SIGTERM) in the middle of a third."""
    quick = write_pipeline(jp_root_dir, "quick", {"a": write_data("a")})
    reached = tmp_path / "sleepy.reached"
    slow = write_pipeline(jp_root_dir, "slow", {"sleepy": sleepy(reached)})
    history: dict = {"killed_tree": [], "stopped_tree": []}

    server = ServerProcess(jp_root_dir, state_dir, tmp_path / "first")
    try:
        history["done"] = server.build(quick)
        server.wait(history["done"])
        history["killed"] = server.build(slow)
        wait_for_marker(reached, "the first server's build to sleep in its cell")
        history["killed_tree"] = wait_for_kernel(server.process.pid)
        server.signal(signal.SIGKILL)
    finally:
        server.close()

    server = ServerProcess(jp_root_dir, state_dir, tmp_path / "second")
    try:
        _, build = server.call("GET", f"nbpipe/api/builds/{history['killed']}")
        history["seen_by_second"] = build
        reached.unlink()
        history["stopped"] = server.build(slow)
        wait_for_marker(reached, "the second server's build to sleep in its cell")
        history["stopped_tree"] = wait_for_kernel(server.process.pid)
        history["exit_code"] = server.signal(signal.SIGTERM)
        # A server stopping gracefully stops its builds before it exits (SIGTERM, then SIGKILL
        # after the grace period); what is left are processes still being reaped.
        history["stopped_left"] = [pid for pid in history["stopped_tree"] if alive(pid)]
    finally:
        server.close()
    yield history
    # Should the test fail before its server stopped them: no build outlives the test.
    for pid in history["killed_tree"] + history["stopped_tree"]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def jp_server_config(previous_servers, state_dir):
    # Depending on previous_servers makes them run before this test's own server starts.
    return {
        "ServerApp": {"jpserver_extensions": {"nbpipe.server": True}},
        "NbpipeApp": {"state_dir": str(state_dir), "cancel_grace_period": 2.0},
    }


async def test_history_survives_restarts_and_running_builds_end_interrupted(
    jp_fetch, jp_root_dir, previous_servers
):
    history = previous_servers
    # The second server, at start-up, marked the first one's running build interrupted.
    assert history["seen_by_second"]["state"] == "interrupted"
    # A gracefully stopped server exits cleanly, having stopped its builds.
    assert history["exit_code"] == 0
    await async_wait_until(
        lambda: not [pid for pid in history["stopped_left"] if alive(pid)],
        "the stopped server's build processes to be reaped",
    )

    code, page = await api(jp_fetch, "builds")
    assert code == 200 and page["total"] == 3
    states = {build["id"]: build["state"] for build in page["builds"]}
    assert states == {
        history["done"]: "success",
        history["killed"]: "interrupted",
        history["stopped"]: "interrupted",
    }
    code, build = await api(jp_fetch, "builds", history["killed"])
    assert build["message"] == "the server stopped while this build was running"
    assert build["ended"] is not None
    [task] = build["tasks"]
    # Recovery applied build_ended(interrupted) to the build's state: the reducer's rule
    # cancelled the task the dead server's build left running.
    assert task["status"] == "cancelled" and task["detail"] == "the server stopped"
    assert task["ended"] == build["ended"]
    check_snapshot(build)

    code, build = await api(jp_fetch, "builds", history["done"])
    assert [task["status"] for task in build["tasks"]] == ["executed"]

    # Nothing of the interrupted builds is left running: the build process the dead server
    # left behind was stopped (by the parent-death signal, or at the next start), kernels
    # included.
    leftovers = history["killed_tree"] + history["stopped_tree"]
    await async_wait_until(
        lambda: not [pid for pid in leftovers if alive(pid)],
        lambda: f"the builds' processes to end: {[p for p in leftovers if alive(p)]} still run",
    )
    out = jp_root_dir / "slow" / "out"
    assert not (out / "sleepy.txt").exists()
    assert staged_leftovers(out) == []

    # The pipeline can build again.
    code, detail = await api(jp_fetch, "pipelines", "slow/pipeline.yaml")
    assert code == 200 and detail["building"] is None


@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_builds_stop_when_their_server_is_killed(tmp_path, executor):
    """A server killed with SIGKILL cannot stop its builds: the kernel sends each build process
    SIGTERM as its parent dies (Linux), and the build stops its kernel as on a cancel, without
    waiting for the next server start."""
    if procs.parent_death_signal() is None:
        pytest.skip("needs PR_SET_PDEATHSIG (Linux)")
    root = tmp_path / "root"
    reached = tmp_path / "sleepy.reached"
    slow = write_pipeline(root, "slow", {"sleepy": sleepy(reached)}, executor=executor)
    server = ServerProcess(root, tmp_path / "state", tmp_path / "server")
    tree: list[int] = []
    out = root / "slow" / "out"
    try:
        server.build(slow)
        # The notebook is sleeping, its product half-written (staged).
        wait_for_marker(reached, "the notebook to reach its sleeping cell")
        tree = wait_for_kernel(server.process.pid)
        assert staged_leftovers(out)
        server.signal(signal.SIGKILL)
        # No server is left to stop the build: only the parent-death signal can. (How fast it
        # stops is measured by benchmarks/stop_time.py, not asserted here.)
        wait_all_ended(tree)
    finally:
        server.close()
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The build stopped as on a cancel (a build process killed outright would have left its
    # staged product behind).
    assert not (out / "sleepy.txt").exists()
    assert staged_leftovers(out) == []
