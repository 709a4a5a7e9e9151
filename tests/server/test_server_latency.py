"""Latency of the build-status endpoint while a build runs and 20 clients poll it.

The server runs in its own process (as in real use) and each client is a thread with its own
keep-alive connection, so the numbers are the server's, not the test harness's. Two loads:
each client polling twice a second (what a UI does) and every client polling back to back (a
stress load). The figures are printed (run with -s) and bounded loosely, to catch regressions
such as a blocking call on the event loop, not to benchmark the machine.
"""

from __future__ import annotations

import http.client
import random
import statistics
import threading
import time

import pytest
from server_helpers import write_data, write_pipeline
from server_process import TOKEN, ServerProcess, running

pytestmark = pytest.mark.timeout(180)

CLIENTS = 20
SLOW = "import time\ntime.sleep({})\n" + write_data("x")


def poll(port: int, path: str, interval: float, until: float, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"token {TOKEN}"}
    try:
        time.sleep(random.uniform(0, interval))  # clients are not in lockstep
        while time.monotonic() < until:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            assert response.status == 200
            if interval:
                time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    finally:
        connection.close()


def measure(port: int, path: str, interval: float, seconds: float) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=poll, args=(port, path, interval, until, latencies[i]))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(value * 1000 for client in latencies for value in client)
    assert every, "no request completed"
    quantiles = statistics.quantiles(every, n=100)
    return {
        "requests": len(every),
        "per_second": len(every) / seconds,
        "p50_ms": quantiles[49],
        "p95_ms": quantiles[94],
        "p99_ms": quantiles[98],
        "max_ms": every[-1],
    }


def test_build_status_latency_with_20_polling_clients(tmp_path):
    root = tmp_path / "root"
    pipeline = write_pipeline(
        root,
        "busy",
        {f"t{i}": SLOW.format(30) for i in range(4)},
        executor="parallel",
    )
    server = ServerProcess(root, tmp_path / "state", tmp_path / "server")
    try:
        build_id = server.build(pipeline)
        server.wait(build_id, running("t0"))
        path = f"/nbpipe/api/builds/{build_id}"
        ui = measure(server.port, path, interval=0.5, seconds=4)
        stress = measure(server.port, path, interval=0.0, seconds=4)
        _, build = server.call("GET", path.lstrip("/"))
        assert build["state"] == "running", "the build should still run during the measurement"
        server.call("POST", f"{path.lstrip('/')}/cancel")
        server.wait(build_id, lambda build: build["state"] == "cancelled")
    finally:
        server.close()
    for name, figures in (("every 0.5 s", ui), ("back to back", stress)):
        print(
            f"\n{CLIENTS} clients polling {name}: {figures['requests']} requests "
            f"({figures['per_second']:.0f}/s), p50 {figures['p50_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"max {figures['max_ms']:.1f} ms"
        )
    assert ui["p95_ms"] < 250
    assert stress["p50_ms"] < 500
