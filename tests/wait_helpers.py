"""Waiting in tests without sleeping on hope.

Code under test that must reach a point before the test acts (a notebook cell that then sleeps, a
function half-way through writing) creates a marker file there (``touch_code``); the test waits
for it, or for any other condition, with a bounded poll that fails with a clear message on
timeout. A fixed ``sleep`` that hopes something happened meanwhile has no place in a test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT = 60.0  # seconds: generous, a hang detector (two shared cores start kernels slowly)
INTERVAL = 0.05


def touch_code(path: Path) -> str:
    """One line of Python (for a notebook cell or a function body) that creates the marker file
    ``path``: put it just before the point the test waits for."""
    return f"open({str(path)!r}, 'w').close()"


def _message(what: str | Callable[[], str], timeout: float) -> str:
    return f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}"


def wait_until(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """Polls ``condition()`` until it returns something true, and returns that. On timeout,
    fails with "timed out after N s waiting for <what>" (``what`` may be a function, called then,
    to say what is still wrong). An exception from ``condition`` ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_message(what, timeout))
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Any],
    what: str | Callable[[], str],
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> Any:
    """``wait_until`` for coroutines: the event loop (and an in-process server) keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_message(what, timeout))
        await asyncio.sleep(interval)


def wait_for_marker(path: Path, what: str, timeout: float = TIMEOUT) -> None:
    """Waits until the code under test has created the marker file ``path``."""
    wait_until(path.exists, f"{what} (no marker file {path})", timeout)


async def async_wait_for_marker(path: Path, what: str, timeout: float = TIMEOUT) -> None:
    await async_wait_until(path.exists, f"{what} (no marker file {path})", timeout)
