"""Helpers for the server tests: writing small pipelines, calling the API, waiting for builds."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from jsonschema import Draft202012Validator
from tornado.httpclient import HTTPClientError

from nbpipe.engine.events import event_from_dict
from nbpipe.engine.schema import SCHEMA_PATH
from nbpipe.engine.state import BuildState

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_notebooks"
FINAL = {"success", "failed", "stopped_early", "cancelled", "interrupted", "error"}
#: The bus schema of build events (nbpipe/server/events/build.yaml).
SCHEMA_ID = "https://events.nbpipe.org/build/v2"
EVENT_VALIDATOR = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
_OPENAPI = yaml.safe_load((REPO / "nbpipe" / "server" / "openapi.yaml").read_text())


def _openapi_validator(name: str) -> Draft202012Validator:
    """A validator for one of openapi.yaml's schemas (OpenAPI 3.1 schemas are JSON Schema)."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": _OPENAPI["components"]}
    )


SNAPSHOT_VALIDATOR = _openapi_validator("Build")
SUMMARY_VALIDATOR = _openapi_validator("BuildSummary")


def check_snapshot(build: dict[str, Any], validator=SNAPSHOT_VALIDATOR) -> None:
    """``build`` has exactly the shape openapi.yaml gives a build (``Build``, or with
    ``SUMMARY_VALIDATOR`` a list endpoint's ``BuildSummary``)."""
    errors = [error.message for error in validator.iter_errors(build)]
    assert errors == [], errors


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
    """The build's snapshot once its state is one of ``states``. For final states, also once the
    build has ended: a build's state is final from the engine's build_finished on (the reducer's
    rule), and its process ends after that (build_ended, which frees the pipeline)."""
    deadline = time.monotonic() + timeout
    while True:
        code, build = await api(fetch, "builds", build_id)
        assert code == 200, build
        if build["state"] in states:
            if not states <= FINAL:
                break
            if not await _building(fetch, build):
                _, build = await api(fetch, "builds", build_id)  # with build_ended, then
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"build still {build['state']} after {timeout} s: {build}")
        await asyncio.sleep(0.1)
    check_snapshot(build)
    return build


async def _building(fetch, build: dict) -> bool:
    """Whether ``build`` still holds its pipeline (its process has not ended)."""
    code, listing = await api(fetch, "pipelines")
    assert code == 200, listing
    return any(row["building"] == build["id"] for row in listing["pipelines"])


async def wait_for_task(fetch, build_id: str, task: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, build = await api(fetch, "builds", build_id)
        statuses = {row["name"]: row["status"] for row in build.get("tasks", [])}
        if statuses.get(task) == status:
            return build
        if build["state"] in FINAL or time.monotonic() > deadline:
            raise AssertionError(f"task {task} never reached {status}: {build}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kernel_pids(pids: list[int]) -> list[int]:
    """The ipykernel processes among ``pids``."""
    found = []
    for pid in pids:
        try:
            cmdline = " ".join(psutil.Process(pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "ipykernel" in cmdline:
            found.append(pid)
    return found


def staged_leftovers(folder: Path) -> list[str]:
    """Staged (half-written) products the engine writes beside the real ones."""
    if not folder.exists():
        return []
    return [name for name in os.listdir(folder) if name.startswith(".nbpipe-")]


async def events_until_ended(ws, build_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The event-bus messages (envelopes) of one build, read from ``ws`` up to its
    ``build_ended``; closes it."""
    events: list[dict[str, Any]] = []
    while not events or kind(events[-1]) != "build_ended":
        message = await asyncio.wait_for(ws.read_message(), timeout)
        assert message is not None, "the event socket closed"
        data = json.loads(message)
        if data.get("schema_id") == SCHEMA_ID and data.get("build_id") == build_id:
            events.append(data)
    ws.close()
    return events


def kind(envelope: dict[str, Any]) -> str:
    """The kind of the contract event inside a bus envelope."""
    return envelope["event"]["event"]


def task_events(envelopes: list[dict[str, Any]], task: str) -> list[str]:
    """The kinds of ``task``'s events, in order."""
    return [kind(e) for e in envelopes if e["event"]["task"] == task]


def check_events(envelopes: list[dict[str, Any]]) -> None:
    """Every envelope's ``event`` is an event of the contract (events.schema.json); seqs count
    from 1 without a gap."""
    errors = [
        f"seq {envelope['seq']}: {error.message}"
        for envelope in envelopes
        for error in EVENT_VALIDATOR.iter_errors(envelope["event"])
    ]
    assert errors == [], errors
    assert [e["seq"] for e in envelopes] == list(range(1, len(envelopes) + 1))


def replay(envelopes: list[dict[str, Any]]) -> BuildState:
    """The build's state as the browser's reducer derives it from the bus events alone."""
    state = BuildState()
    for envelope in envelopes:
        state.apply(event_from_dict(envelope["event"]))
        assert state.state == envelope["state"], envelope
    return state


def snapshot_state(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The BuildState fields of a REST snapshot."""
    return {key: snapshot[key] for key in BuildState().to_dict()}
