"""Helpers for the server tests: writing small pipelines, calling the API, waiting for builds."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPClientError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_notebooks"
FINAL = {"success", "failed", "stopped_early", "cancelled", "interrupted", "error"}

NOTEBOOK = """# %% tags=["parameters"]
upstream = {upstream!r}
product = None

# %%
{body}
"""


def write_pipeline(
    root: Path,
    folder: str,
    tasks: dict[str, str],
    upstream: dict[str, list[str]] | None = None,
    executor: str = "serial",
    name: str = "pipeline.yaml",
) -> str:
    """A pipeline of notebooks (jupytext scripts): ``tasks`` maps a task name to its code, which
    can write ``product['data']``. Returns the spec's path relative to ``root``."""
    upstream = upstream or {}
    base = root / folder
    base.mkdir(parents=True, exist_ok=True)
    lines = [f"executor: {executor}", "tasks:"]
    for task, body in tasks.items():
        (base / f"{task}.py").write_text(
            NOTEBOOK.format(upstream=upstream.get(task) or None, body=body)
        )
        lines += [
            f"  - source: {task}.py",
            "    product:",
            f"      nb: out/{task}.ipynb",
            f"      data: out/{task}.txt",
        ]
    (base / name).write_text("\n".join(lines) + "\n")
    return f"{folder}/{name}" if folder else name


def write_functions(root: Path, folder: str, tasks: dict[str, str]) -> str:
    """A pipeline of Python functions (no kernels: quick builds). ``tasks`` maps a task name to
    the body of ``def name(product):``. Returns the spec's path relative to ``root``."""
    base = root / folder
    base.mkdir(parents=True, exist_ok=True)
    code = ["import time", ""]
    lines = ["executor: serial", "tasks:"]
    for task, body in tasks.items():
        code += [f"def {task}(product):", *(f"    {line}" for line in body.splitlines()), ""]
        lines += [f"  - source: {folder.replace('/', '_') or 'root'}_tasks.{task}"]
        lines += [f"    product: out/{task}.txt"]
    (base / f"{folder.replace('/', '_') or 'root'}_tasks.py").write_text("\n".join(code) + "\n")
    (base / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return f"{folder}/pipeline.yaml" if folder else "pipeline.yaml"


def write_text(text: str) -> str:
    """Function body writing its product."""
    return f"open(str(product), 'w').write({text!r})"


def write_data(task: str) -> str:
    """Notebook code writing a small data product."""
    return f"open(product['data'], 'w').write({task!r})"


def copy_example(root: Path, folder: str = "example") -> str:
    shutil.copytree(EXAMPLE, root / folder, ignore=shutil.ignore_patterns("output", "__pycache__"))
    return f"{folder}/pipeline.yaml"


async def api(fetch, *parts: str, method: str = "GET", body: Any = None, **kwargs):
    """(status, JSON reply) of an API call; errors are replies too, not exceptions."""
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    if method == "POST" and body is None:
        body = ""
    try:
        response = await fetch("nbpipe", "api", *parts, method=method, body=body, **kwargs)
    except HTTPClientError as error:
        response = error.response
        assert response is not None, error
    text = response.body.decode() if response.body else ""
    return response.code, (json.loads(text) if text else None)


async def start_build(fetch, pipeline: str, **fields: Any) -> str:
    code, reply = await api(fetch, "builds", method="POST", body={"pipeline": pipeline, **fields})
    assert code == 202, reply
    return reply["id"]


async def wait_for(fetch, build_id: str, states=FINAL, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, build = await api(fetch, "builds", build_id)
        assert code == 200, build
        if build["state"] in states:
            return build
        if time.monotonic() > deadline:
            raise AssertionError(f"build still {build['state']} after {timeout} s: {build}")
        await asyncio.sleep(0.1)


async def wait_for_task(fetch, build_id: str, task: str, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, build = await api(fetch, "builds", build_id)
        states = {row["name"]: row["state"] for row in build.get("tasks", [])}
        if states.get(task) == state:
            return build
        if build["state"] in FINAL or time.monotonic() > deadline:
            raise AssertionError(f"task {task} never reached {state}: {build}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kernel_pids(pids: list[int]) -> list[int]:
    """The ipykernel processes among ``pids``."""
    found = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "ipykernel" in cmdline:
            found.append(pid)
    return found


def staged_leftovers(folder: Path) -> list[str]:
    """Staged (half-written) products the engine writes beside the real ones."""
    if not folder.exists():
        return []
    return [name for name in os.listdir(folder) if name.startswith(".nbpipe-")]


async def events_until_ended(ws, build_id: str) -> list[dict[str, Any]]:
    """The event-bus messages of one build, read from ``ws`` up to its ``build_ended``; closes it."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["event"] != "build_ended":
        data = json.loads(await asyncio.wait_for(ws.read_message(), 15))
        if data.get("build_id") == build_id:
            events.append(data)
    ws.close()
    return events
