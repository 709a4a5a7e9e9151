"""Dask executor overhead against Parallel, in one run: 200 trivial callables and 16 trivial
notebooks, each built with ``Parallel(processes=2)`` and with ``Dask`` on a LocalCluster of 2
single-threaded workers (started before the timing, as a running cluster would be; its start-up is
reported apart). The two executors take turns, ``--repeat`` times each; the medians are reported:
wall and CPU time (this process and all its descendants, those that ended during the build
included), the per-task dispatch overhead of Dask over Parallel, and the machine's load
(``uptime``) before and after: the figures mean little on a busy machine.

    python benchmarks/dask_overhead.py [--callables 200] [--notebooks 16] [--repeat 3]
        [--json benchmarks/results/dask-overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from nbpipe import DAG
from nbpipe.executors import Dask, Parallel
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # so that workers import this module's task function


def touch(product):
    Path(product).write_text("")


def _notebook(path: Path) -> None:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "cells": [
            {**cell, "metadata": {"tags": ["parameters"]}, "source": "product = None"},
            {**cell, "source": "x = 1 + 1"},
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


def callables_dag(folder: Path, n: int, executor) -> DAG:
    from dask_overhead import touch  # by its module's name: workers cannot import __main__

    dag = DAG(executor=executor)
    for i in range(n):
        PythonCallable(touch, File(folder / f"c{i}.txt"), dag, name=f"c{i}")
    return dag


def notebooks_dag(folder: Path, n: int, executor) -> DAG:
    source = folder / "nb.ipynb"
    _notebook(source)
    dag = DAG(executor=executor)
    for i in range(n):
        NotebookRunner(source, File(folder / f"nb{i}.ipynb"), dag, name=f"nb{i}")
    return dag


def _cpu() -> float:
    """CPU seconds of this process and its living descendants, each with the children it reaped
    (so a kernel or runner that ended during the build still counts, through its parent)."""
    total = 0.0
    me = psutil.Process()
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def measure(make, executor, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        dag = make(Path(folder), n, executor)
        cpu, wall = _cpu(), time.perf_counter()
        dag.build(force=True)
        return time.perf_counter() - wall, _cpu() - cpu


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callables", type=int, default=200)
    parser.add_argument("--notebooks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    report: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "uptime_before": _uptime(),
            "loadavg_before": os.getloadavg(),
        },
        "results": {},
    }
    print(f"load before: {report['machine']['uptime_before']}")
    print(f"cpus: {os.cpu_count()}")
    started = time.perf_counter()
    dask = Dask(n_workers=2, threads_per_worker=1, dashboard_address=None)
    with dask:
        report["cluster_start_s"] = time.perf_counter() - started
        print(f"LocalCluster(2 workers) start: {report['cluster_start_s']:.2f} s")
        # one task per worker thread first: each worker starts its runner process
        measure(callables_dag, dask, 4)
        executors = (("Parallel(2)", Parallel(processes=2)), ("Dask(2)", dask))
        for kind, make, n in (
            ("callables", callables_dag, args.callables),
            ("notebooks", notebooks_dag, args.notebooks),
        ):
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in executors}
            for _ in range(args.repeat):  # the executors take turns: load changes alike
                for name, executor in executors:
                    runs[name].append(measure(make, executor, n))
            for name, _ in executors:
                wall = statistics.median(r[0] for r in runs[name])
                cpu = statistics.median(r[1] for r in runs[name])
                report["results"][f"{kind}/{name}"] = {
                    "tasks": n,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "walls_s": [r[0] for r in runs[name]],
                    "cpus_s": [r[1] for r in runs[name]],
                }
                print(
                    f"{n:4d} {kind:9s} {name:12s} wall {wall:7.2f} s ({wall / n * 1000:7.1f} ms/task)"
                    f"  cpu {cpu:7.2f} s   (runs: {', '.join(f'{r[0]:.2f}' for r in runs[name])})"
                )
            p_wall = report["results"][f"{kind}/Parallel(2)"]["wall_s"]
            d_wall = report["results"][f"{kind}/Dask(2)"]["wall_s"]
            overhead = (d_wall - p_wall) / n * 1000
            report["results"][f"{kind}/overhead"] = {
                "dask_minus_parallel_ms_per_task": overhead,
                "wall_ratio": d_wall / p_wall,
            }
            print(
                f"     {kind}: Dask - Parallel = {overhead:+.1f} ms per task "
                f"(wall ratio {d_wall / p_wall:.2f}x)"
            )
    report["machine"]["uptime_after"] = _uptime()
    report["machine"]["loadavg_after"] = os.getloadavg()
    print(f"load after: {report['machine']['uptime_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
