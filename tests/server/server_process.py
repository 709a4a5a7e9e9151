"""A Jupyter server in a child process, for tests that stop or kill a server mid-build.

Talks to it with urllib (blocking, short timeouts): these helpers run in fixtures, before the
in-process test server of pytest-jupyter starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nbpipe.server import procs

TOKEN = "nbpipe-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    def __init__(self, root: Path, state_dir: Path, workdir: Path, **nbpipe: Any):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "ServerApp": {
                "jpserver_extensions": {"nbpipe.server": True},
                "root_dir": str(root),
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                "ip": "127.0.0.1",
            },
            "IdentityProvider": {"token": TOKEN},
            "NbpipeApp": {"state_dir": str(state_dir), "cancel_grace_period": 2.0, **nbpipe},
        }
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / f"server-{self.port}.json"
        config_file.write_text(json.dumps(config))
        self.log = open(workdir / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--config={config_file}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                self.call("GET", "api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/{path}",
            data=data if method == "POST" else None,
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def build(self, pipeline: str, **fields: Any) -> str:
        code, reply = self.call("POST", "nbpipe/api/builds", {"pipeline": pipeline, **fields})
        assert code == 202, reply
        return reply["id"]

    def wait(self, build_id: str, done=None, timeout=60):
        """The build's snapshot once ``done(snapshot)``; by default once it has ended in success
        (its process exited: the exit code comes with build_ended, after the engine's
        build_finished has made the state final)."""
        if done is None:
            done = lambda build: build["state"] == "success" and build["exit_code"] is not None  # noqa: E731
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, build = self.call("GET", f"nbpipe/api/builds/{build_id}")
            if done(build):
                return build
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for build {build_id}: {build}")

    def signal(self, signum: int, timeout: float = 30) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            self.log.close()

    def close(self, tree: bool = True) -> None:
        """Kills the server if it still runs; with ``tree``, its builds and kernels too (a
        test that failed half-way must not leave them running)."""
        if self.process.poll() is None:
            below = procs.descendants(self.process.pid) if tree else []
            self.signal(signal.SIGKILL)
            for pid in below:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if not self.log.closed:
            self.log.close()


def running(task: str):
    def done(build: dict) -> bool:
        return any(row["name"] == task and row["status"] == "running" for row in build["tasks"])

    return done
