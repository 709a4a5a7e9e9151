"""Dask executor overhead against Parallel, in one run: 200 trivial callables and 16 trivial
notebooks, each built with ``Parallel(processes=2)`` and with ``Dask`` on a LocalCluster of 2
single-threaded workers (started before the timing, as a running cluster would be; its start-up is
reported apart). Prints wall and CPU time (this process and its descendants) per build, the
per-task dispatch overhead of Dask over Parallel, and the machine's load (``uptime``): the
figures mean little on a busy machine.

    python benchmarks/dask_overhead.py [--callables 200] [--notebooks 16] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    """CPU seconds of this process, its reaped children and its living descendants."""
    own = time.process_time()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own + reaped.ru_utime + reaped.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def measure(make, executor, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        dag = make(Path(folder), n, executor)
        cpu, wall = _cpu(), time.perf_counter()
        dag.build(force=True)
        return time.perf_counter() - wall, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callables", type=int, default=200)
    parser.add_argument("--notebooks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"
    )
    print(f"cpus: {os.cpu_count()}")
    started = time.perf_counter()
    dask = Dask(n_workers=2, threads_per_worker=1, dashboard_address=None)
    with dask:
        print(f"LocalCluster(2 workers) start: {time.perf_counter() - started:.2f} s")
        # one task per worker thread first: each worker starts its runner process
        measure(callables_dag, dask, 4)
        results = {}
        for kind, make, n in (
            ("callables", callables_dag, args.callables),
            ("notebooks", notebooks_dag, args.notebooks),
        ):
            for name, executor in (("Parallel(2)", Parallel(processes=2)), ("Dask(2)", dask)):
                runs = [measure(make, executor, n) for _ in range(args.repeat)]
                wall = min(r[0] for r in runs)
                cpu = min(r[1] for r in runs)
                results[kind, name] = (wall, cpu)
                print(
                    f"{n:4d} {kind:9s} {name:12s} wall {wall:7.2f} s ({wall / n * 1000:7.1f} ms/task)"
                    f"  cpu {cpu:7.2f} s"
                )
            (p_wall, _), (d_wall, _) = results[kind, "Parallel(2)"], results[kind, "Dask(2)"]
            print(
                f"     {kind}: Dask - Parallel = {(d_wall - p_wall) / n * 1000:+.1f} ms per task "
                f"(wall ratio {d_wall / p_wall:.2f}x)"
            )
    print(
        f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"
    )


if __name__ == "__main__":
    main()
