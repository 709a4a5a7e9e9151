"""Records the fixtures of the panel's unit tests (labextension/test/fixtures/) from a real server.

    python ui-tests/record_fixtures.py

Starts JupyterLab on a copy of the example pipeline, subscribes to the server's event bus, and
builds twice: once cleanly (``build-success.json``), once with ``clean.py`` broken
(``build-failure.json``). Each file holds the build's envelopes as the browser receives them
(``{build_id, pipeline, seq, state, event}``, ``event`` being a contract event) and the build's
REST snapshot at the end (the server's fields and ``BuildState.to_dict()``); ``pipeline.json`` is the pipeline's status after both. The
temporary root folder is written as ``/root-folder``. Run it again when the event schema or the
REST answers change, then run ``jlpm test``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from conftest import REPO, TOKEN, Lab, copy_example
from tornado.websocket import websocket_connect

SCHEMA = "https://events.nbpipe.org/build/v2"
OUT = REPO / "labextension" / "test" / "fixtures"


def scrub(data, root: Path) -> str:
    return json.dumps(data, indent=1).replace(str(root), "/root-folder") + "\n"


async def record() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nbpipe-fixtures-"))
    root = copy_example(tmp / "root")
    lab = Lab(root, tmp / "work").start()
    try:
        socket = await websocket_connect(
            f"ws://127.0.0.1:{lab.port}/api/events/subscribe?token={TOKEN}"
        )
        for name in ("success", "failure"):
            if name == "failure":
                clean = root / "clean.py"
                clean.write_text(
                    clean.read_text() + '\n# %%\nraise ValueError("broken on purpose")\n'
                )
            build = lab.api("POST", "nbpipe/api/builds", {"pipeline": "pipeline.yaml"})
            events = []
            while True:
                message = json.loads(await socket.read_message())
                if message.get("schema_id") != SCHEMA or message["build_id"] != build["id"]:
                    continue
                events.append(message)
                if message["event"]["event"] == "build_ended":
                    break
            snapshot = lab.api("GET", f"nbpipe/api/builds/{build['id']}")
            text = scrub({"events": events, "snapshot": snapshot}, root)
            (OUT / f"build-{name}.json").write_text(text)
            print(f"build-{name}.json: {len(events)} events, {snapshot['state']}")
        detail = lab.api("GET", "nbpipe/api/pipelines/pipeline.yaml")
        (OUT / "pipeline.json").write_text(scrub(detail, root))
        print("pipeline.json")
    finally:
        lab.stop()


if __name__ == "__main__":
    asyncio.run(record())
