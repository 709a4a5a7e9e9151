"""Concurrent requests for the same answer share one load of it (a pipeline's status, its task
index): a second request while a child process is loading waits for that child instead of
starting another."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class SingleFlight:
    """At most one ``load`` per key in flight; the callers that come meanwhile get its result
    (or its error). Cancelling one caller does not cancel the load the others wait for."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        if key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
            future.set_result(value)
            return value
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when no one shared it
            raise
        finally:
            del self._inflight[key]
