"""Latency of the server's build-status endpoint while a build runs and clients poll it.

    python benchmarks/server_latency.py                 # 20 clients, 4 s per load
    python benchmarks/server_latency.py --clients 50 --seconds 10 --json latency.json

The server runs in its own process (as in real use), builds a pipeline of four notebooks that
sleep (a build that stays running), and each client is a thread with its own keep-alive
connection, so the figures are the server's, not this script's. Two loads: every client polling
twice a second (what the panel does) and every client polling back to back (a stress load).
Prints requests per second and the p50/p95/p99/max latency of each load; it checks that every
request succeeded and that the build ran throughout, and sets no threshold.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (
    TOKEN,
    Server,
    machine,
    quantiles,
    sleeping_notebook,
    wait_until,
    write_pipeline,
)

LOADS = {"every 0.5 s": 0.5, "back to back": 0.0}


def poll(
    port: int, path: str, interval: float, until: float, latencies: list[float], errors: list[str]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"token {TOKEN}"}
    try:
        time.sleep(random.uniform(0, interval))  # pacing: the clients are not in lockstep
        while time.monotonic() < until:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                errors.append(f"HTTP {response.status}")
            if interval:  # pacing, as a polling UI does
                time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    except Exception as error:  # reported, not raised in the thread
        errors.append(repr(error))
    finally:
        connection.close()


def measure(port: int, path: str, clients: int, interval: float, seconds: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=poll, args=(port, path, interval, until, latencies[i], errors))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value * 1000 for client in latencies for value in client]
    if errors or not every:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    figures = {f"{key}_ms": value for key, value in quantiles(every).items()}
    return {"requests": len(every), "per_second": len(every) / seconds, **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20, help="polling clients (threads)")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each load")
    parser.add_argument("--json", type=Path, help="save the figures to this file")
    args = parser.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-server-latency-") as tmp:
        root = Path(tmp) / "root"
        # Long enough for both loads and the server's start, whatever the machine.
        sleep = int(60 + 2 * args.seconds)
        write_pipeline(
            root / "busy",
            {f"t{i}": sleeping_notebook(seconds=sleep) for i in range(4)},
            executor="parallel",
        )
        server = Server(root, Path(tmp) / "server")
        try:
            build_id = server.build("busy/pipeline.yaml")
            wait_until(lambda: server.task_state(build_id, "t0") == "running", "t0 to run")
            path = f"/nbpipe/api/builds/{build_id}"
            for name, interval in LOADS.items():
                results[name] = measure(server.port, path, args.clients, interval, args.seconds)
            if server.get_build(build_id)["state"] != "running":
                raise RuntimeError("the build ended during the measurement: figures not valid")
        finally:
            server.close()

    about = machine()
    print(
        f"{about['platform']}, {about['cpus']} cores, Python {about['python']}, "
        f"load average {about['loadavg']} after the runs"
    )
    header = ["load", "clients", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    rows = [
        [
            name,
            str(args.clients),
            str(r["requests"]),
            f"{r['per_second']:.0f}",
            *(f"{r[key]:.1f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        ]
        for name, r in results.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if args.json:
        args.json.write_text(json.dumps({"machine": about, "loads": results}, indent=2) + "\n")
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
