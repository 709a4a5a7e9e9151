"""``kill -9`` of a build process under the server: the build is settled from the child's exit
(not from the end of its output, which a process that outlived it may hold open), the pipeline is
free again, cancel does not hang in "cancelling", a restart leaves the row as it was, and nothing
of the build keeps running."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil
import pytest
from server_helpers import FINAL, api, start_build, wait_for, write_data, write_pipeline
from server_process import ServerProcess
from wait_helpers import async_wait_for_marker, touch_code, wait_for_marker, wait_until

pytestmark = pytest.mark.timeout(180)


def build_children(pid: int) -> list[psutil.Process]:
    """The ``nbpipe build`` processes below ``pid`` (a server)."""
    found = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            command = child.cmdline()
            if "nbpipe" in command and "build" in command:
                found.append(child)
    return found


def ended(build: dict) -> bool:
    return build["state"] in FINAL and build["exit_code"] is not None


def test_a_killed_parallel_build_is_settled_and_leaves_nothing_running(tmp_path):
    root = tmp_path / "root"
    reached = tmp_path / "reached"
    asleep = tmp_path / "sleep-please"  # the notebook sleeps while this file exists
    asleep.touch()
    body = (
        f"import os, time\n{touch_code(reached)}\n"
        f"if os.path.exists({str(asleep)!r}):\n    time.sleep(120)\n" + write_data("slow")
    )
    pipeline = write_pipeline(root, "p", {"slow": body}, executor="parallel")
    state_dir = tmp_path / "state"
    family: list[psutil.Process] = []
    server = ServerProcess(root, state_dir, tmp_path / "first")
    try:
        build_id = server.build(pipeline)
        wait_for_marker(reached, "the notebook to sleep in its cell")
        [cli] = build_children(server.process.pid)
        family = [cli, *cli.children(recursive=True)]
        assert len(family) > 1, "the build's worker (and kernel) run"
        cli.kill()

        build = server.wait(build_id, done=ended)
        assert build["state"] == "error" and "SIGKILL" in build["message"], build
        assert build["exit_code"] == -signal.SIGKILL
        assert [task["status"] for task in build["tasks"]] == ["cancelled"]
        code, reply = server.call("POST", f"nbpipe/api/builds/{build_id}/cancel")
        assert code == 409, reply
        # Nothing of the build runs on: its worker died with it, its kernel after its worker.
        _, left = psutil.wait_procs(family, timeout=60)
        assert left == [], f"left running: {[p.cmdline() for p in left]}"

        # The pipeline is free: a new build starts and succeeds.
        asleep.unlink()
        again = server.build(pipeline)
        assert server.wait(again)["state"] == "success"
        assert server.signal(signal.SIGTERM) == 0
    finally:
        server.close()
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()

    # A restart leaves the killed build as it was recorded (not "interrupted").
    server = ServerProcess(root, state_dir, tmp_path / "second")
    try:
        code, after = server.call("GET", f"nbpipe/api/builds/{build_id}")
        assert code == 200
        assert (after["state"], after["message"], after["seq"]) == (
            build["state"],
            build["message"],
            build["seq"],
        )
    finally:
        server.close()


class TestOutputHeldOpen:
    """A process that outlived the build process holds its stdout open (no end of output ever
    comes): the build is still settled when the build process exits, and cancel ends too. (A
    stand-in for ``NbpipeApp.python``: a build process started by an nbpipe release, or user
    code, that leaves a process of its own session behind.)"""

    @pytest.fixture
    def nbpipe_config(self, tmp_path):
        fake = tmp_path / "python-leaving-a-process"
        holder = tmp_path / "holder.pid"
        marker = tmp_path / "started"
        fake.write_text(
            "#!/bin/sh\n"
            """echo '{"v": 2, "event": "header"}'\n"""
            f"setsid sleep 300 & echo $! >> {holder}\n"
            f"touch {marker}\n"
            "sleep 300\n"
        )
        fake.chmod(0o755)
        return {"python": str(fake)}

    @pytest.fixture
    def holder(self, tmp_path):
        path = tmp_path / "holder.pid"
        yield path
        for pid in path.read_text().split() if path.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    @pytest.mark.parametrize("cancel", [False, True])
    async def test_the_build_is_settled_from_the_exit_of_its_process(
        self, jp_fetch, jp_root_dir, tmp_path, holder, cancel
    ):
        pipeline = write_pipeline(jp_root_dir, "p", {"a": write_data("a")})
        build_id = await start_build(jp_fetch, pipeline)
        await async_wait_for_marker(tmp_path / "started", "the build process to start")
        wait_until(holder.exists, "the holder's pid")
        [cli] = build_children(os.getpid())
        cli.kill()
        if cancel:  # a cancel that comes after the kill ends too
            code, reply = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
            assert code in (202, 409), reply
        build = await wait_for(jp_fetch, build_id, timeout=30)
        assert build["state"] in (("cancelled", "error") if cancel else ("error",)), build
        assert build["exit_code"] == -signal.SIGKILL
        # The pipeline is free again.
        code, reply = await api(jp_fetch, "builds", method="POST", body={"pipeline": pipeline})
        assert code == 202, reply
