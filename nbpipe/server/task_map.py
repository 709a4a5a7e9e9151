"""Which tasks a file of the server root is: ``GET /nbpipe/api/tasks-of?path=...``.

JupyterLab asks this when a notebook opens, to show the task's chip and load the task's injected
parameters into the kernel. One request answers it:

1. the path is checked (bounded, relative, no ``..``, inside the root once symlinks resolve, an
   existing file);
2. the candidate pipelines are those found under the root (``discovery.find_pipelines``) whose
   folder holds the file and whose spec text names the file (its name, or its stem for a spec
   that builds names from placeholders), or that takes its tasks from elsewhere
   (``import_tasks_from``, ``location``). Reading a spec's text runs nothing;
3. each candidate's *task index* (``python -m nbpipe.server.task_index``: every task's source,
   products, upstream products, params and injected code) comes from a cache that holds while
   the spec, its env files, the task sources and function modules keep their content (size and
   mtime, else a digest: saving a notebook unchanged costs nothing);
   a stale or missing entry is loaded in a child process (pipeline code never runs in the
   server), concurrent requests for one pipeline sharing one child.

Security follows ``GET /pipelines/{path}``: loading a pipeline runs its code, so only a user
allowed to execute (``nbpipe:builds`` execute) starts a child; anyone else gets what a user who
may execute loaded earlier, or a 403 saying why there is nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nbpipe.server import procs, views
from nbpipe.server.discovery import canonical, check_relative, find_pipelines
from nbpipe.server.errors import ApiError, BadRequest, Forbidden, NotFound
from nbpipe.server.single_flight import SingleFlight
from nbpipe.server.task_index import INDEX_VERSION

#: The longest path a client may name (characters).
MAX_PATH = 4096
#: How much of a spec is read to see whether it names a file.
SPEC_TEXT_LIMIT = 1024 * 1024
#: Spec keys that take tasks from elsewhere: such a spec is always a candidate.
INDIRECT_KEYS = ("import_tasks_from", "location")


class IndexTimeout(ApiError):
    status = 504


@dataclass
class TaskIndex:
    """A pipeline's tasks as ``task_index`` printed them, or the error that stopped it."""

    tasks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    watch: list[str] = field(default_factory=list)


@dataclass
class TaskMapSettings:
    python: str
    max_depth: int = 3
    timeout: float = 60.0
    allow_hidden: bool = False
    concurrency: int = 4


class TaskMap:
    def __init__(self, root: str, settings: TaskMapSettings, environment):
        self.root = os.path.realpath(root)
        self.settings = settings
        self.environment = environment  # () -> the env of child processes (the build manager's)
        self._cache: dict[str, tuple[Watched, TaskIndex]] = {}
        self._loading = SingleFlight()
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def tasks_of(self, relative: str, run_code: bool) -> dict[str, Any]:
        """The tasks whose source (``role: source``) or product (``role: product``) is the file
        at ``relative``, with what a build injects; pipelines that could not be loaded are in
        ``errors``."""
        absolute = await asyncio.to_thread(self._resolve_file, relative)
        relative = canonical(relative)
        found = await asyncio.to_thread(find_pipelines, self.root, self.settings.max_depth)
        candidates = await asyncio.to_thread(self._candidates, found.pipelines, relative)
        indexes = await asyncio.gather(
            *(self._index(pipeline, run_code) for pipeline in candidates), return_exceptions=True
        )
        tasks: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        refused = 0
        for pipeline, index in zip(candidates, indexes, strict=True):
            if isinstance(index, Forbidden):
                refused += 1
                continue
            if isinstance(index, ApiError):
                errors.append({"pipeline": pipeline, "message": index.message})
                continue
            if isinstance(index, BaseException):
                raise index
            if index.error:
                errors.append({"pipeline": pipeline, "message": index.error})
            tasks.extend(self._matching(pipeline, index, absolute))
        if refused and not tasks:
            raise Forbidden(
                f"finding the tasks of {relative} loads pipelines, which runs their code: that "
                "needs the permission to execute (nbpipe:builds execute), and no user who has it "
                "loaded them earlier"
            )
        return {"path": relative, "tasks": tasks, "errors": errors}

    # -- the path --------------------------------------------------------------------------------
    def _resolve_file(self, relative: str) -> str:
        if not isinstance(relative, str) or not relative:
            raise BadRequest("path (a file's path relative to the server root) is required")
        if len(relative) > MAX_PATH:
            raise BadRequest(f"path is too long ({len(relative)} characters; at most {MAX_PATH})")
        check_relative(relative, self.settings.allow_hidden)
        candidate = os.path.join(self.root, *PurePosixPath(relative.replace("\\", "/")).parts)
        real = os.path.realpath(candidate)
        if os.path.commonpath([self.root, real]) != self.root:
            raise Forbidden(f"{relative!r} points outside the server root")
        if not os.path.isfile(real):
            raise NotFound(f"no file {relative!r} under the server root")
        return os.path.abspath(candidate)

    def _candidates(self, pipelines: list[str], relative: str) -> list[str]:
        """The pipelines that may have the file as a task's source or product (see the module
        docstring): nearest folder first."""
        name = PurePosixPath(relative).name
        stem = PurePosixPath(relative).stem
        chosen = []
        for pipeline in pipelines:
            folder = str(PurePosixPath(pipeline).parent)
            if folder not in (".", "") and not relative.startswith(folder + "/"):
                continue
            try:
                with open(
                    os.path.join(self.root, pipeline), encoding="utf-8", errors="replace"
                ) as f:
                    text = f.read(SPEC_TEXT_LIMIT)
            except OSError:
                continue
            if name in text or stem in text or any(key in text for key in INDIRECT_KEYS):
                chosen.append(pipeline)
        return sorted(chosen, key=lambda p: -len(PurePosixPath(p).parts))

    def _matching(self, pipeline: str, index: TaskIndex, absolute: str) -> list[dict[str, Any]]:
        matched = []
        for task in index.tasks:
            if task.get("source") == absolute:
                role = "source"
            elif absolute in task.get("products", []):
                role = "product"
            else:
                continue
            matched.append(
                {
                    "pipeline": pipeline,
                    "task": task["name"],
                    "role": role,
                    "kind": task["kind"],
                    "grid": task.get("grid"),
                    "source": views.path_view(self.root, task.get("source")),
                    "products": [views.product(self.root, path) for path in task["products"]],
                    "upstream": task["upstream"],
                    "params": task["params"],
                    "language": task.get("language"),
                    "injected_code": task.get("injected_code"),
                    "injected_error": task.get("injected_error"),
                }
            )
        return matched

    # -- the index, cached -----------------------------------------------------------------------
    async def _index(self, pipeline: str, run_code: bool) -> TaskIndex:
        cached = self._cache.get(pipeline)
        if cached is not None:
            watched, index = cached
            if not run_code or await asyncio.to_thread(watched.unchanged):
                return index
        if not run_code:
            raise Forbidden(f"{pipeline} was not loaded yet")

        async def load() -> TaskIndex:
            spec_path = os.path.join(self.root, *PurePosixPath(pipeline).parts)
            index = await self._load(spec_path)
            self._cache[pipeline] = (await asyncio.to_thread(Watched.of, index.watch), index)
            return index

        return await self._loading.run(pipeline, load)

    async def _load(self, spec_path: str) -> TaskIndex:
        """``python -m nbpipe.server.task_index SPEC`` in a child process."""
        async with self._slots:
            try:
                result, stderr_tail = await procs.json_from_child(
                    [self.settings.python, "-m", "nbpipe.server.task_index", spec_path],
                    cwd=os.path.dirname(spec_path),
                    env=self.environment(),
                    timeout=self.settings.timeout,
                )
            except procs.ChildTimeout:
                raise IndexTimeout(
                    f"loading {Path(spec_path).name} took longer than "
                    f"{self.settings.timeout:.0f} s (NbpipeApp.status_timeout)"
                ) from None
        spec_watch = [os.path.abspath(spec_path)]
        if result is None:
            return TaskIndex(
                error="the pipeline could not be loaded: " + (stderr_tail or "no output"),
                watch=spec_watch,
            )
        if result.get("v") != INDEX_VERSION:
            raise ApiError(
                f"nbpipe.server.task_index wrote version {result.get('v')!r}; this server reads "
                f"version {INDEX_VERSION} (NbpipeApp.python runs another nbpipe release)"
            )
        if "error" in result:
            error = result["error"] if isinstance(result["error"], dict) else {}
            where = error.get("file") or ""
            if where and error.get("line"):
                where += f":{error['line']}"
            message = error.get("message") or "the pipeline could not be loaded"
            # The file the error names (a notebook's parameters cell) is watched too.
            named = [os.path.abspath(error["file"])] if isinstance(error.get("file"), str) else []
            return TaskIndex(
                error=f"{where}: {message}" if where else message, watch=[*spec_watch, *named]
            )
        return TaskIndex(tasks=result["tasks"], watch=result["watch"])


@dataclass
class Watched:
    """The files an index depends on, by content: saving a notebook unchanged (JupyterLab's
    save, an autosave) changes its mtime but must not cost a child process. A file whose size
    and mtime are unchanged is taken as unchanged; another is read and compared by digest."""

    stats: dict[str, tuple[int, int]]
    digests: dict[str, str | None]

    @classmethod
    def of(cls, paths: list[str]) -> Watched:
        return cls({path: _stat(path) for path in paths}, {path: _digest(path) for path in paths})

    def unchanged(self) -> bool:
        for path, stat in self.stats.items():
            now = _stat(path)
            if now == stat:
                continue
            if _digest(path) != self.digests[path]:
                return False
            self.stats[path] = now  # same bytes: the next check is a stat again
        return True


def _stat(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None
