"""Which builds may run: one at a time per pipeline, ``max_concurrent`` at a time in all.

A second build of a pipeline that is building (by any path: a symlinked folder is the same
pipeline, so builds are held by the spec's resolved path) would race the first on its products, so it is
refused (409, naming the build that holds the pipeline); past the limit, a build is refused with
429 rather than queued, so that a client sees at once that it must wait. Only the event loop
touches these tables, and a build is reserved before the manager's first ``await``, so checking
and reserving are one step without locks.
"""

from __future__ import annotations

from typing import Protocol

from nbpipe.server.errors import Conflict, TooManyBuilds


class Admitted(Protocol):
    id: str
    pipeline: str
    key: str  # the spec's resolved path: one pipeline reached through a symlinked alias is one


class Admission:
    def __init__(self, max_concurrent: int):
        self.max_concurrent = max_concurrent
        self.active: dict[str, Admitted] = {}  # build id -> build
        self.building: dict[str, str] = {}  # pipeline -> build id
        self.holders: dict[str, str] = {}  # resolved spec path -> build id
        self.closing = False  # the server is stopping: no new builds

    def admit(self, build: Admitted) -> None:
        """Reserves ``build``'s pipeline and a slot, or raises the 4xx that says why not."""
        if self.closing:
            raise Conflict("the server is shutting down")
        running = self.building.get(build.pipeline) or self.holders.get(build.key)
        if running is not None:
            raise Conflict(f"{build.pipeline} is already building", build_id=running)
        if len(self.active) >= self.max_concurrent:
            raise TooManyBuilds(
                f"{len(self.active)} builds are running, the most this server allows "
                "(NbpipeApp.max_concurrent_builds); try again when one has finished"
            )
        self.active[build.id] = build
        self.building[build.pipeline] = build.id
        self.holders[build.key] = build.id

    def release(self, build: Admitted) -> None:
        self.active.pop(build.id, None)
        if self.building.get(build.pipeline) == build.id:
            del self.building[build.pipeline]
        if self.holders.get(build.key) == build.id:
            del self.holders[build.key]
