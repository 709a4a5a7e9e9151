"""Shared by server_latency.py and stop_time.py: small pipelines, a Jupyter server with nbpipe in
a child process, the processes of a build, and bounded waits.

Everything runs against this working tree: the repo root goes first on ``sys.path`` here and on
the children's ``PYTHONPATH`` (as run.py does for its scenarios).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN = "nbpipe-benchmark-token"

NOTEBOOK = """# %% tags=["parameters"]
upstream = None
product = None

# %%
{body}
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("NBPIPE_ENTRY_POINT", None)
    return env


def touch_code(path: Path) -> str:
    """Python code that creates the marker file ``path``."""
    return f"open({str(path)!r}, 'w').close()"


def sleeping_notebook(reached: Path | None = None, seconds: int = 120) -> str:
    """Notebook code that writes half its ``data`` product, creates the marker file ``reached``
    (if given), then sleeps in the cell."""
    lines = ["open(product['data'], 'w').write('half of it')"]
    if reached is not None:
        lines.append(touch_code(reached))
    lines += ["import time", f"time.sleep({seconds})"]
    return "\n".join(lines)


def write_pipeline(folder: Path, tasks: dict[str, str], executor: str = "serial") -> Path:
    """A pipeline of independent notebooks (percent scripts): ``tasks`` maps a task name to its
    code, which may write ``product['data']``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"executor: {executor}", "tasks:"]
    for name, body in tasks.items():
        (folder / f"{name}.py").write_text(NOTEBOOK.format(body=body))
        lines += [
            f"  - source: {name}.py",
            "    product:",
            f"      nb: out/{name}.ipynb",
            f"      data: out/{name}.txt",
        ]
    spec = folder / "pipeline.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = 120, interval: float = 0.01
) -> Any:
    """Polls ``condition`` until it returns something true; RuntimeError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    state, parent = f.read().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            table[int(entry)] = (int(parent), state)
    return table


def descendants(root: int) -> list[int]:
    table = _processes()
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def alive(pids: list[int]) -> list[int]:
    table = _processes()
    return [pid for pid in pids if pid in table and table[pid][1] != "Z"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m jupyter_server`` with the nbpipe extension, on a free port, in a child
    process; its log goes to ``workdir``."""

    def __init__(self, root: Path, workdir: Path, **nbpipe: Any):
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
            "NbpipeApp": {"state_dir": str(workdir / "state"), **nbpipe},
        }
        root.mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "server.json"
        config_file.write_text(json.dumps(config))
        self.log_path = workdir / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server", f"--config={config_file}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=child_env(),
                start_new_session=True,
            )
        try:
            wait_until(self._ready, "the Jupyter server to start", timeout=60, interval=0.2)
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server exited with {self.process.returncode}:\n{log}")
        try:
            self.call("GET", "api/status")
            return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self.url}/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def build(self, pipeline: str) -> str:
        code, reply = self.call("POST", "nbpipe/api/builds", {"pipeline": pipeline})
        if code != 202:
            raise RuntimeError(f"could not start a build of {pipeline}: {code} {reply}")
        return reply["id"]

    def get_build(self, build_id: str) -> dict:
        code, build = self.call("GET", f"nbpipe/api/builds/{build_id}")
        if code != 200:
            raise RuntimeError(f"GET build {build_id}: {code} {build}")
        return build

    def task_state(self, build_id: str, task: str) -> str | None:
        build = self.get_build(build_id)
        return {row["name"]: row["status"] for row in build["tasks"]}.get(task)

    def close(self) -> None:
        """Kills the server and whatever it still runs (builds, kernels)."""
        if self.process.poll() is None:
            below = descendants(self.process.pid)
            self.process.kill()
            self.process.wait()
            for pid in below:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def quantiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``values``."""
    ordered = sorted(values)
    if len(ordered) < 2:
        ordered = ordered * 2
    cuts = statistics.quantiles(ordered, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1]}


def machine() -> dict[str, Any]:
    import platform

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg": round(os.getloadavg()[0], 2),
    }
