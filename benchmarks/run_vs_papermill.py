"""``nbpipe run`` against ``papermill`` on the same command: one notebook, then a small batch.

    python benchmarks/run_vs_papermill.py                 # median of 5
    python benchmarks/run_vs_papermill.py --repeat 9 --json benchmarks/results/run.json

Each command runs in a fresh copy of the same folder, one after the other (never two at once),
the tools alternating, and is measured from outside: wall time, and CPU time (user + system) of
the command and every process it waited for (workers, kernels), from ``os.wait4``. Every run
must write its notebook(s) and exit 0, or the script fails; it never fails on a time.

Scenarios:

- ``single``: one trivial notebook (a parameters cell, two prints), ``-p alpha 0.1 -p n 3``:
  ``papermill in.ipynb out.ipynb ...`` against ``nbpipe run in.ipynb out.ipynb ...`` (inline, in
  the command's process), and ``nbpipe run`` through a worker process (a one-value ``--grid``
  with ``--processes 1``: the batch path) to compare the two.
- ``batch9``: nine runs of that notebook (a 3x3 grid): a shell loop of nine ``papermill``
  commands against ``nbpipe run --grid a 1 2 3 --grid b x y z`` (as many workers as cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "parameters",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": "alpha = 0.5\nn = 1\na = 0\nb = 'none'",
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "body",
            "metadata": {},
            "outputs": [],
            "source": "print(alpha * n)\nprint(a, b)",
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}

PAPERMILL = [sys.executable, "-m", "papermill"]
NBPIPE = [sys.executable, "-m", "nbpipe", "run"]
PARAMS = ["-p", "alpha", "0.1", "-p", "n", "3"]
GRID = [(a, b) for a in (1, 2, 3) for b in "xyz"]
GRID_OPTIONS = ["--grid", "a", "1", "2", "3", "--grid", "b", "x", "y", "z"]
ONE_WORKER = ["--grid", "a", "1", "--processes", "1"]  # one run, through the batch path


def commands(scenario: str) -> dict[str, tuple[list[str], list[str]]]:
    """Per variant: the command, and the files it must write."""
    if scenario == "single":
        return {
            "papermill": ([*PAPERMILL, "in.ipynb", "out.ipynb", *PARAMS], ["out.ipynb"]),
            "nbpipe run": ([*NBPIPE, "in.ipynb", "out.ipynb", *PARAMS], ["out.ipynb"]),
            "nbpipe run (worker)": (
                [*NBPIPE, "in.ipynb", "out-{a}.ipynb", *PARAMS, *ONE_WORKER],
                ["out-1.ipynb"],
            ),
        }
    outputs = [f"out/run-{a}-{b}.ipynb" for a, b in GRID]
    loop = " && ".join(
        f"{' '.join(PAPERMILL)} in.ipynb out/run-{a}-{b}.ipynb -p a {a} -p b {b}" for a, b in GRID
    )
    return {
        "papermill x9 (shell loop)": (["sh", "-c", f"mkdir -p out && {loop}"], outputs),
        "nbpipe run --grid": (
            [*NBPIPE, "in.ipynb", "out/run-{a}-{b}.ipynb", *GRID_OPTIONS],
            outputs,
        ),
    }


def measure(command: list[str], cwd: Path, timeout: float) -> dict:
    """Wall and CPU seconds of ``command`` and the processes it waited for."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            raise SystemExit(f"timeout: {' '.join(command)}")
        time.sleep(0.01)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = code
    if code != 0:
        raise SystemExit(f"exit {code}: {' '.join(command)}\n{stderr}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", action="append", choices=["single", "batch9"])
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    scenarios = args.scenario or ["single", "batch9"]
    runs: dict[str, dict[str, list[dict]]] = {}
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        (source / "in.ipynb").write_text(json.dumps(NOTEBOOK))
        for scenario in scenarios:
            variants = commands(scenario)
            runs[scenario] = {name: [] for name in variants}
            for repeat in range(args.repeat):
                for name, (command, outputs) in variants.items():
                    folder = Path(tmp) / f"{scenario}-{repeat}-{len(runs[scenario][name])}"
                    folder = Path(shutil.copytree(source, folder / "project"))
                    result = measure(command, folder, args.timeout)
                    missing = [o for o in outputs if not (folder / o).is_file()]
                    if missing:
                        raise SystemExit(f"{name} did not write {', '.join(missing)}")
                    runs[scenario][name].append(result)
                    shutil.rmtree(folder.parent)
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    table = []
    print(f"\nmedian of {args.repeat} (seconds)\n")
    print(f"{'scenario':<8}  {'command':<28}  {'wall_s':>7}  {'cpu_s':>7}")
    for scenario, variants in runs.items():
        for name, results in variants.items():
            wall = statistics.median(r["wall_s"] for r in results)
            cpu = statistics.median(r["cpu_s"] for r in results)
            table.append({"scenario": scenario, "command": name, "wall_s": wall, "cpu_s": cpu})
            print(f"{scenario:<8}  {name:<28}  {wall:>7.2f}  {cpu:>7.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                    "table": table,
                    "runs": runs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
