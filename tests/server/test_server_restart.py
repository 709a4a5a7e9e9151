"""History survives a server restart; builds running when a server died or stopped end
"interrupted", never "running" forever, and nothing of them keeps running."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from server_helpers import alive, api, kernel_pids, staged_leftovers, write_data, write_pipeline
from server_process import ServerProcess, running

from nbpipe.server import procs

pytestmark = pytest.mark.timeout(180)

SLEEPY = "open(product['data'], 'w').write('half')\nimport time\ntime.sleep(60)\n"


def wait_for_kernel(pid: int, timeout: float = 30) -> list[int]:
    """The processes below ``pid``, once a kernel is among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = procs.descendants(pid)
        if kernel_pids(tree):
            return tree
        time.sleep(0.1)
    raise AssertionError("the build's kernel never started")


@pytest.fixture
def previous_servers(jp_root_dir, state_dir, tmp_path):
    """Two earlier lives of a server on this root and state directory: the first runs a build
    to success, then dies (SIGKILL) in the middle of a second build; the second is stopped
    gracefully (SIGTERM) in the middle of a third."""
    quick = write_pipeline(jp_root_dir, "quick", {"a": write_data("a")})
    slow = write_pipeline(jp_root_dir, "slow", {"sleepy": SLEEPY})
    history: dict = {"killed_tree": [], "stopped_tree": []}

    server = ServerProcess(jp_root_dir, state_dir, tmp_path / "first")
    try:
        history["done"] = server.build(quick)
        server.wait(history["done"])
        history["killed"] = server.build(slow)
        server.wait(history["killed"], running("sleepy"))
        history["killed_tree"] = wait_for_kernel(server.process.pid)
        server.signal(signal.SIGKILL)
    finally:
        server.close()

    server = ServerProcess(jp_root_dir, state_dir, tmp_path / "second")
    try:
        _, build = server.call("GET", f"nbpipe/api/builds/{history['killed']}")
        history["seen_by_second"] = build
        history["stopped"] = server.build(slow)
        server.wait(history["stopped"], running("sleepy"))
        history["stopped_tree"] = wait_for_kernel(server.process.pid)
        started = time.monotonic()
        history["exit_code"] = server.signal(signal.SIGTERM)
        history["stop_took"] = time.monotonic() - started
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
    # A gracefully stopped server stops its builds within the grace period.
    assert history["exit_code"] == 0 and history["stop_took"] < 10

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
    assert task["state"] == "cancelled" and task["detail"] == "the server stopped"

    code, build = await api(jp_fetch, "builds", history["done"])
    assert [task["state"] for task in build["tasks"]] == ["executed"]

    # Nothing of the interrupted builds is left running: the build process the dead server
    # left behind was stopped at the next start, kernels included.
    deadline = time.monotonic() + 10
    leftovers = history["killed_tree"] + history["stopped_tree"]
    while any(alive(pid) for pid in leftovers) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert [pid for pid in leftovers if alive(pid)] == []
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
    slow = write_pipeline(root, "slow", {"sleepy": SLEEPY}, executor=executor)
    server = ServerProcess(root, tmp_path / "state", tmp_path / "server")
    tree: list[int] = []
    try:
        build_id = server.build(slow)
        server.wait(build_id, running("sleepy"))
        tree = wait_for_kernel(server.process.pid)
        out = root / "slow" / "out"
        deadline = time.monotonic() + 30
        while not staged_leftovers(out):  # the notebook is sleeping, its product half-written
            assert time.monotonic() < deadline, "the notebook never wrote its staged product"
            time.sleep(0.05)
        server.signal(signal.SIGKILL)
        killed = time.monotonic()
        while any(alive(pid) for pid in tree) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        took = time.monotonic() - killed
        assert [pid for pid in tree if alive(pid)] == [], f"still running after {took:.1f} s"
        assert took < 5, f"the build took {took:.1f} s to stop"
    finally:
        server.close()
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The build stopped as on a cancel (a build process killed outright would have left its
    # staged product behind).
    assert not (out / "sleepy.txt").exists()
    assert staged_leftovers(out) == []
