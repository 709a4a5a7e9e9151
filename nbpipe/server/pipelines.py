"""Pipelines under the server root: the listing, and one pipeline's graph and status.

A pipeline's status comes from ``python -m nbpipe.server.describe`` in a child process (loading a
spec runs user code, which stays out of the server). That costs a Python start-up and the spec
load (about a second), so answers are cached: an answer is reused while the files it depends on
(the spec, ``env.yaml``, task sources, the folders products are written to) keep their size and
mtime, which a build, an edit or a deleted product all change. Concurrent requests for the same
pipeline share one child process, and a semaphore bounds how many run at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from typing import Any

from nbpipe.server import procs, views
from nbpipe.server.builds import BuildManager
from nbpipe.server.discovery import canonical, find_pipelines, resolve_pipeline
from nbpipe.server.errors import ApiError, Unprocessable
from nbpipe.server.store import StoreThread


class DescribeTimeout(ApiError):
    status = 504


@dataclass
class PipelineSettings:
    python: str
    max_depth: int = 3
    timeout: float = 60.0
    allow_hidden: bool = False
    concurrency: int = 4


Signature = tuple[tuple[str, int, int], ...]


class PipelineService:
    def __init__(
        self, root: str, store: StoreThread, builds: BuildManager, settings: PipelineSettings
    ):
        self.root = root
        self.store = store
        self.builds = builds
        self.settings = settings
        self._cache: dict[str, tuple[Signature, dict[str, Any]]] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def resolve(self, relative: str):
        """The pipeline's absolute path; 4xx for a path not confined to the root."""
        return await asyncio.to_thread(
            resolve_pipeline, self.root, relative, self.settings.allow_hidden
        )

    async def listing(self) -> dict[str, Any]:
        found = await asyncio.to_thread(find_pipelines, self.root, self.settings.max_depth)
        latest = await self.store.call(self.store.store.latest_builds, found.pipelines)
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
        }

    async def detail(self, relative: str, refresh: bool = False) -> dict[str, Any]:
        spec_path = await self.resolve(relative)
        relative = canonical(relative)
        described = await self._described(relative, str(spec_path), refresh)
        last = await self.store.call(self.store.store.last_task_results, relative)
        latest = await self.store.call(self.store.store.latest_builds, [relative])
        tasks = []
        for task in described["tasks"]:
            tasks.append(
                {
                    "name": task["name"],
                    "kind": task["kind"],
                    "source": views.path_view(self.root, task["source"]),
                    "upstream": task["upstream"],
                    "products": [views.product(self.root, path) for path in task["products"]],
                    "state": task["state"],
                    "reasons": task["reasons"],
                    "last_built": task["last_built"],
                    "last_result": last.get(task["name"]),
                }
            )
        return {
            "path": relative,
            "name": described["name"],
            "executor": described["executor"],
            "tasks": tasks,
            "edges": [[up, task["name"]] for task in described["tasks"] for up in task["upstream"]],
            "warnings": described["warnings"],
            "building": self.builds.building.get(relative),
            "last_build": latest.get(relative),
        }

    # -- the child process, cached -------------------------------------------------------------
    async def _described(self, relative: str, spec_path: str, refresh: bool) -> dict[str, Any]:
        cached = self._cache.get(relative)
        if cached and not refresh:
            signature, result = cached
            if await asyncio.to_thread(_signature, result["watch"]) == signature:
                return result
        if relative in self._inflight:  # someone asked already: share the answer
            return await asyncio.shield(self._inflight[relative])
        future = asyncio.get_running_loop().create_future()
        self._inflight[relative] = future
        try:
            result = await self._run_describe(spec_path)
            self._cache[relative] = (await asyncio.to_thread(_signature, result["watch"]), result)
            future.set_result(result)
            return result
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when no one shared it
            raise
        finally:
            del self._inflight[relative]

    async def _run_describe(self, spec_path: str) -> dict[str, Any]:
        async with self._slots:
            process = await asyncio.create_subprocess_exec(
                self.settings.python,
                "-m",
                "nbpipe.server.describe",
                spec_path,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=os.path.dirname(spec_path),
                start_new_session=True,
            )
            try:
                out, err = await asyncio.wait_for(process.communicate(), self.settings.timeout)
            except asyncio.TimeoutError:
                procs.signal_group(process.pid, procs.KILL)
                await process.wait()
                raise DescribeTimeout(
                    f"loading the pipeline took longer than {self.settings.timeout:.0f} s "
                    "(NbpipeApp.status_timeout)"
                ) from None
            except asyncio.CancelledError:
                procs.signal_group(process.pid, signal.SIGTERM)
                raise
        try:
            result = json.loads(out.decode("utf-8").strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise Unprocessable(
                "the pipeline could not be loaded: " + ("\n".join(tail) or "no output"),
                error=None,
            ) from None
        if "error" in result:
            error = result["error"]
            raise Unprocessable(_spec_message(error), error=error)
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
