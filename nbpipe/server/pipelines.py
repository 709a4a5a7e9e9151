"""Pipelines under the server root: the listing, and one pipeline's graph and status.

A pipeline's status comes from ``python -m nbpipe status -e PIPELINE --json`` in a child process
(loading a spec runs user code, which stays out of the server): one JSON object with each task's
kind, source, upstream tasks, products and state, or the spec error (exit code 2). That costs a
Python start-up and the spec load (about a second), so answers are cached: an answer is reused
while the files it depends on (the spec, its ``env.yaml``, task sources, products and the folders
they are written to) keep their size and mtime, which a build, an edit or a deleted product all
change. Concurrent requests for the same pipeline share one child process, and a semaphore bounds
how many run at once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbpipe.engine.events import EVENT_SCHEMA_VERSION
from nbpipe.server import procs, views
from nbpipe.server.builds import BuildManager
from nbpipe.server.discovery import canonical, display, find_pipelines, resolve_pipeline
from nbpipe.server.errors import ApiError, Forbidden, Unprocessable
from nbpipe.server.single_flight import SingleFlight
from nbpipe.server.store import StoreThread
from nbpipe.spec.env import env_files_for


class StatusTimeout(ApiError):
    status = 504


@dataclass
class Loaded:
    """``nbpipe status --json``'s answer, and the files whose changes can change it."""

    status: dict[str, Any]
    watch: list[str]


@dataclass
class PipelineSettings:
    python: str
    max_depth: int = 3
    timeout: float = 60.0
    allow_hidden: bool = False
    concurrency: int = 4


Signature = tuple[tuple[str, int, int], ...]
#: What the server reads of ``nbpipe status --json`` (NbpipeApp.python may run another release).
TASK_FIELDS = ("name", "kind", "source", "upstream", "products", "state", "reasons", "last_built")


class PipelineService:
    def __init__(
        self,
        root: str,
        store: StoreThread,
        builds: BuildManager,
        settings: PipelineSettings,
        notices: list[dict[str, str]] | None = None,
    ):
        self.root = root
        #: What the server wants users to know (the history was reset or cannot be kept).
        self.notices = list(notices or [])
        self.store = store
        self.builds = builds
        self.settings = settings
        self._cache: dict[str, tuple[Signature, Loaded]] = {}
        self._loading = SingleFlight()
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def resolve(self, relative: str):
        """The pipeline's absolute path; 4xx for a path not confined to the root."""
        return await asyncio.to_thread(
            resolve_pipeline, self.root, relative, self.settings.allow_hidden
        )

    async def listing(self) -> dict[str, Any]:
        found = await asyncio.to_thread(find_pipelines, self.root, self.settings.max_depth)
        latest = await self._latest(found.pipelines)
        return {
            "pipelines": [
                {
                    "path": path,
                    "building": self.builds.building.get(path),
                    "last_build": latest.get(path),
                }
                for path in found.pipelines
            ],
            "truncated": found.truncated,
            "notices": self.notices,
            "unusable": [
                {
                    "path": display(path),
                    "message": "the path is not valid UTF-8: the server cannot use it "
                    "(rename the folder or file)",
                }
                for path in found.unusable
            ],
        }

    async def detail(
        self, relative: str, refresh: bool = False, run_code: bool = True
    ) -> dict[str, Any]:
        """One pipeline's tasks and status. Loading it runs its code (task modules are
        imported): without ``run_code`` (a user who may not execute), the status last loaded
        for someone who may is served as it is, or a 403 says why there is none."""
        spec_path = await self.resolve(relative)
        relative = canonical(relative)
        if run_code:
            status = (await self._loaded(relative, str(spec_path), refresh)).status
        elif relative in self._cache:
            status = self._cache[relative][1].status
        else:
            raise Forbidden(
                f"loading {relative} runs its code, which needs the permission to execute "
                "(nbpipe:builds execute), and no status was loaded earlier by a user who has it"
            )
        last = await self.store.call(self.store.store.last_task_results, relative)
        latest = await self._latest([relative])
        tasks = []
        for task in status["tasks"]:
            tasks.append(
                {
                    "name": task["name"],
                    "kind": task["kind"],
                    "source": views.path_view(self.root, task["source"]),
                    "upstream": task["upstream"],
                    "grid": task.get("grid"),
                    "products": [views.product(self.root, path) for path in task["products"]],
                    "state": task["state"],
                    "reasons": task["reasons"],
                    "last_built": task["last_built"],
                    "last_result": last.get(task["name"]),
                }
            )
        return {
            "path": relative,
            "name": status.get("dag"),
            "executor": status.get("executor"),
            "tasks": tasks,
            "edges": [[up, task["name"]] for task in status["tasks"] for up in task["upstream"]],
            "warnings": status.get("warnings") or [],
            "building": self.builds.building.get(relative),
            "last_build": latest.get(relative),
        }

    async def _latest(self, pipelines: list[str]) -> dict[str, dict[str, Any]]:
        """The last build of each pipeline (that was ever built), as the list endpoints show it."""
        latest = await self.store.call(self.store.store.latest_builds, pipelines)
        return {path: views.build(self.root, record) for path, record in latest.items()}

    # -- the child process, cached -------------------------------------------------------------
    async def _loaded(self, relative: str, spec_path: str, refresh: bool) -> Loaded:
        cached = self._cache.get(relative)
        if cached and not refresh:
            signature, loaded = cached
            if await asyncio.to_thread(_signature, loaded.watch) == signature:
                return loaded

        async def load() -> Loaded:
            status = await self._run_status(spec_path)
            loaded = Loaded(status, _watched(spec_path, status["tasks"]))
            self._cache[relative] = (await asyncio.to_thread(_signature, loaded.watch), loaded)
            return loaded

        return await self._loading.run(relative, load)  # someone asked already: share it

    async def _run_status(self, spec_path: str) -> dict[str, Any]:
        """``nbpipe status -e SPEC --json`` in a child process: the status, or a 422 with the
        spec error (the CLI exits 2 with ``{"error": {file, line, key, ...}}`` on stdout)."""
        async with self._slots:
            try:
                result, stderr_tail = await procs.json_from_child(
                    [self.settings.python, "-m", "nbpipe", "status", "-e", spec_path, "--json"],
                    cwd=os.path.dirname(spec_path),
                    env=self.builds.environment(),
                    timeout=self.settings.timeout,
                )
            except procs.ChildTimeout:
                raise StatusTimeout(
                    f"loading the pipeline took longer than {self.settings.timeout:.0f} s "
                    "(NbpipeApp.status_timeout)"
                ) from None
        if result is None:
            raise Unprocessable(
                "the pipeline could not be loaded: " + (stderr_tail or "no output"), error=None
            )
        if result.get("v") != EVENT_SCHEMA_VERSION:
            raise ApiError(
                f"nbpipe status wrote format version {result.get('v')!r}; this server reads "
                f"version {EVENT_SCHEMA_VERSION} (NbpipeApp.python runs another nbpipe release)"
            )
        if "error" in result:
            error = result["error"] if isinstance(result["error"], dict) else {}
            raise Unprocessable(_spec_message(error), error=error)
        tasks = result.get("tasks")
        if not isinstance(tasks, list) or not all(
            isinstance(task, dict) and all(key in task for key in TASK_FIELDS) for task in tasks
        ):
            raise ApiError(
                "nbpipe status --json did not describe the tasks (their kind, source and "
                "upstream tasks): NbpipeApp.python runs an older nbpipe release"
            )
        return result

    def forget(self, relative: str) -> None:
        self._cache.pop(relative, None)


def _spec_message(error: dict[str, Any]) -> str:
    where = error.get("file") or ""
    if where and error.get("line"):
        where += f":{error['line']}"
    message = error.get("message") or "the pipeline could not be loaded"
    return f"{where}: {message}" if where else message


def _signature(paths: list[str]) -> Signature:
    signature = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            signature.append((path, -1, -1))
        else:
            signature.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def _watched(spec_path: str, tasks: list[dict[str, Any]]) -> list[str]:
    """The files whose size or mtime changes when the status may have: the spec, its env file
    (``env.yaml``, or ``env.NAME.yaml`` beside ``pipeline.NAME.yaml``; watched even when missing,
    so that creating one counts), each task's source, products and the folders they go to."""
    spec = os.path.abspath(spec_path)
    watch = {spec, *(str(path) for path in env_files_for(Path(spec)))}
    for task in tasks:
        if task.get("source"):
            watch.add(os.path.abspath(task["source"]))
        products = [os.path.abspath(path) for path in task["products"]]
        watch.update(products)
        watch.update(os.path.dirname(path) for path in products)
    return sorted(watch)
