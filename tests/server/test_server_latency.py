"""The build-status endpoint serves 20 clients polling at once while a build runs.

The server runs in its own process (as in real use) and each client is a thread with its own
keep-alive connection. Two loads: each client polling twice a second (what a UI does) and every
client polling back to back (a stress load). This test checks only that every request is
answered, and correctly; how fast is measured, not asserted, by benchmarks/server_latency.py.
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
from server_helpers import write_data, write_pipeline
from server_process import TOKEN, ServerProcess, running

pytestmark = pytest.mark.timeout(180)

CLIENTS = 20
SLOW = "import time\ntime.sleep({})\n" + write_data("x")


def poll(port: int, path: str, interval: float, requests: int, answers: list) -> None:
    """``requests`` GETs of ``path`` on one keep-alive connection, ``interval`` seconds apart
    (pacing, as a polling UI does); appends (status, body) of each to ``answers``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"token {TOKEN}"}
    try:
        for _ in range(requests):
            started = time.monotonic()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            answers.append((response.status, response.read()))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except Exception as error:  # the test reports it; a thread would only print it
        answers.append((None, repr(error)))
    finally:
        connection.close()


def load(port: int, path: str, interval: float, requests: int) -> list[tuple]:
    """Every answer of CLIENTS clients polling at once, ``requests`` each."""
    answers: list[list[tuple]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=poll, args=(port, path, interval, requests, answers[i]))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [answer for client in answers for answer in client]


def test_build_status_serves_20_polling_clients_during_a_build(tmp_path):
    root = tmp_path / "root"
    pipeline = write_pipeline(
        root,
        "busy",
        {f"t{i}": SLOW.format(120) for i in range(4)},
        executor="parallel",
    )
    server = ServerProcess(root, tmp_path / "state", tmp_path / "server")
    try:
        build_id = server.build(pipeline)
        server.wait(build_id, running("t0"))
        path = f"/nbpipe/api/builds/{build_id}"
        answers = {
            "every 0.5 s": load(server.port, path, interval=0.5, requests=4),
            "back to back": load(server.port, path, interval=0.0, requests=25),
        }
        _, build = server.call("GET", path.lstrip("/"))
        assert build["state"] == "running", "the build should still run during the polling"
        server.call("POST", f"{path.lstrip('/')}/cancel")
        server.wait(build_id, lambda build: build["state"] == "cancelled")
    finally:
        server.close()
    for name, replies in answers.items():
        failed = [(status, body) for status, body in replies if status != 200]
        assert failed == [], f"{name}: {len(failed)} failed requests, e.g. {failed[:3]}"
        assert len(replies) == CLIENTS * (4 if name == "every 0.5 s" else 25)
        for _, body in replies:
            reply = json.loads(body)
            assert (reply["id"], reply["state"]) == (build_id, "running")
