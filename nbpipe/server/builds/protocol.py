"""Reading a build process: its stdout lines (``nbpipe build --json``) and how it ended.

The CLI writes one JSON object per line (docs/json-events.md): a ``header``, ``warning`` lines,
the engine's events (``{"v": 2, **event.to_dict()}``), and a ``summary`` last. :class:`Protocol`
reads them for one build:

* the header's ``v`` must be this server's ``EVENT_SCHEMA_VERSION``: ``NbpipeApp.python`` may
  run another nbpipe release, whose events this server would misread, so such a build is refused
  (stopped, and ended ``error`` saying why) rather than shown wrong;
* an engine event becomes the contract's typed event (``event_from_dict``) for the manager to
  apply; a line that is no event of this schema (the header, warnings, the summary, a kind a
  newer CLI may add, a supervisor's kind a child has no business writing) is not;
* the summary is kept: it has the error of a build that could not start (a spec error);
* a line that is not JSON (nothing should print to the CLI's stdout, but a C extension writing
  to file descriptor 1 could) goes to the build's log.

When the process has exited, :meth:`Protocol.ending` says in which final state, from what was
asked (a cancel, the server stopping), what the engine reported, and the exit code.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nbpipe.engine.events import (
    ENGINE_EVENTS,
    EVENT_SCHEMA_VERSION,
    Event,
    UnknownEvent,
    event_from_dict,
)

logger = logging.getLogger("nbpipe.server")

#: How long a JSON line may be (a failed task's traceback can be long).
LINE_LIMIT = 32 * 1024 * 1024

#: Final states the engine's outcome can give a build (its process exited by itself).
ENGINE_FINAL = ("success", "failed", "stopped_early")


async def read_lines(stream: Any, build_id: str) -> AsyncIterator[bytes]:
    """The lines of ``stream`` (an asyncio StreamReader) until its end. A line longer than
    LINE_LIMIT is dropped (the build goes on; its tail comes as a line of its own, not JSON)."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:
            logger.warning("nbpipe build %s: skipped an over-long output line", build_id)
            continue
        if not line:
            return
        yield line


@dataclass
class Protocol:
    """What one build process said, line by line."""

    incompatible: str | None = None  # why its stream cannot be read (another schema version)
    summary: dict[str, Any] | None = None

    def read(self, line: bytes) -> Event | bytes | None:
        """The engine event ``line`` carries; ``line`` itself when it is not JSON (for the log);
        else None (protocol lines are taken in here)."""
        try:
            data = json.loads(line)
        except ValueError:
            return line
        if not isinstance(data, dict):
            return None
        kind = data.get("event")
        if kind == "header":
            if data.get("v") != EVENT_SCHEMA_VERSION:
                self.incompatible = (
                    f"the build process writes events of schema version {data.get('v')!r}; "
                    f"this server reads version {EVENT_SCHEMA_VERSION} (NbpipeApp.python runs "
                    "another nbpipe release)"
                )
            return None
        if kind == "summary":
            self.summary = data
            return None
        if self.incompatible or data.get("v") != EVENT_SCHEMA_VERSION:
            return None
        try:
            event = event_from_dict(data)
        except UnknownEvent:
            return None  # warnings, and kinds a newer CLI may add
        return event if isinstance(event, ENGINE_EVENTS) else None

    def ending(
        self, code: int, stop_asked: str | None, outcome: str | None, log_tail: str
    ) -> tuple[str, str | None]:
        """The final state and the message of a build whose process exited with ``code``:
        ``stop_asked`` is the stop the server asked for (``cancelled``, ``interrupted``,
        ``error``), ``outcome`` the engine's (its build_finished)."""
        summary = self.summary or {}
        if self.incompatible:
            return "error", self.incompatible
        if stop_asked == "cancelled":
            return "cancelled", "cancelled on request"
        if stop_asked == "interrupted":
            return "interrupted", "the server stopped while this build was running"
        outcome = outcome or summary.get("outcome")
        if outcome in ENGINE_FINAL and code in (0, 1):
            return outcome, summary.get("stop_reason")
        if summary.get("error"):
            return "error", error_message(summary["error"])
        if outcome == "interrupted" or code in (-signal.SIGTERM, 128 + signal.SIGTERM):
            return "interrupted", "the build process was stopped by a signal"
        if code < 0:
            name = signal_name(-code)
            if -code == getattr(signal, "SIGKILL", None):  # what the out-of-memory killer sends
                return "error", f"the build process was killed by {name} (out of memory?)"
            return "error", f"the build process crashed ({name})"
        return "error", f"the build process exited with code {code}: {log_tail}"


def error_message(error: dict[str, Any]) -> str:
    """``file:line: message`` of the summary's error (a spec error says where to fix it)."""
    message = error.get("message") or error.get("type") or "the build could not start"
    where = error.get("file")
    if where and error.get("line"):
        where = f"{where}:{error['line']}"
    return f"{where}: {message}" if where else str(message)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
