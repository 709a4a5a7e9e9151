"""What per-cell progress costs: one notebook of 300 trivial cells, built with and without it.

    python benchmarks/cell_progress.py                  # median of 5 per variant
    python benchmarks/cell_progress.py --repeat 7 --json benchmarks/results/cell_progress.json

Each run is ``nbpipe build --force --json`` in the same project (the notebook's 300 cells each
``x_i = i``), measured from outside: wall time, and CPU time (user + system) of the command and
every process it waited for (its kernel and kernel template, workers), from ``os.wait4``; and the
CPU time of the building process alone (``RUSAGE_SELF`` as it exits), where the hooks run and
the events are emitted and written (under Serial; under Parallel the hooks run in the worker).
The variants alternate, one run at a time:

- ``events``: per-cell progress on (the default): 600 cell events and the output tail go through
  the event stream and out as ``--json`` lines;
- ``no-events``: the same build with ``NBPIPE_CELL_PROGRESS=0`` (no hooks, no events);
- ``nbclient``: bare nbclient executing the same notebook in one ``python -c`` (no nbpipe), to
  see what the notebook itself costs here.

under ``--executor serial`` (default) or ``parallel``. The figure is the ratio of the medians,
``events / no-events``, for wall and CPU; the target is at most 1.05. Every run must exit 0 and
write the notebook, or the script fails; it never fails on a time.
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

CELLS = 300

#: ``nbpipe ARGS`` that writes its own CPU seconds (RUSAGE_SELF) to the file named last.
NBPIPE = (
    "import resource, sys\n"
    "from nbpipe.cli import main\n"
    "out = sys.argv.pop()\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    open(out, 'w').write(str(usage.ru_utime + usage.ru_stime))\n"
    "sys.exit(code)\n"
)

NBCLIENT = (
    "import nbformat, nbclient; nb = nbformat.read('cells.ipynb', as_version=4); "
    "nbclient.NotebookClient(nb, kernel_name='python3').execute(); "
    "nbformat.write(nb, 'output/bare.ipynb')"
)


def make_project(folder: Path, executor: str) -> None:
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": "product = None",
        }
    ]
    cells += [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": f"x_{i} = {i}",
        }
        for i in range(CELLS)
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "cells.ipynb").write_text(json.dumps(notebook))
    (folder / "output").mkdir()
    (folder / "pipeline.yaml").write_text(
        f"executor: {executor}\ntasks:\n  - source: cells.ipynb\n    product: output/cells.ipynb\n"
    )


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> dict:
    """Wall and CPU seconds of ``command`` and the processes it waited for; the number of
    JSON lines it wrote; the building process's own CPU seconds, when it says."""
    own = cwd / "own-cpu.txt"
    own.unlink(missing_ok=True)
    if command[2] == NBPIPE:
        command = [*command, str(own)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode() if process.stderr else ""
        if code != 0:
            raise SystemExit(f"exit {code}: {' '.join(command)}\n{stderr}")
        out.seek(0)
        lines = out.read().decode().splitlines()
    result = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "lines": len(lines)}
    if own.exists():
        result["own_cpu"] = float(own.read_text())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (at least 3)")
    parser.add_argument("--executor", choices=["serial", "parallel"], default="serial")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3 (medians)")

    build = [sys.executable, "-c", NBPIPE, "build", "--force", "--json"]
    base = {key: value for key, value in os.environ.items() if key != "NBPIPE_CELL_PROGRESS"}
    variants = {
        "events": (build, base),
        "no-events": (build, {**base, "NBPIPE_CELL_PROGRESS": "0"}),
        "nbclient": ([sys.executable, "-c", NBCLIENT], base),
    }
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        make_project(project, args.executor)
        measure(build, project, base)  # warm-up: imports cached, kernel spec found
        for _ in range(args.repeat):
            for name, (command, env) in variants.items():
                runs[name].append(measure(command, project, env))
                product = project / (
                    "output/bare.ipynb" if name == "nbclient" else "output/cells.ipynb"
                )
                if not product.exists():
                    raise SystemExit(f"{name} wrote no notebook")

    keys = ("wall", "cpu", "own_cpu")
    medians = {
        name: {key: statistics.median(run[key] for run in done) for key in keys if key in done[0]}
        for name, done in runs.items()
    }
    ratio = {key: medians["events"][key] / medians["no-events"][key] for key in keys}
    print(f"{CELLS} trivial cells, executor {args.executor}, median of {args.repeat}")
    print(f"{'variant':<10} {'wall s':>8} {'cpu s':>8} {'own cpu s':>10}  json lines")
    for name, median in medians.items():
        lines = runs[name][-1]["lines"] if name != "nbclient" else "-"
        own = f"{median['own_cpu']:.2f}" if "own_cpu" in median else "-"
        print(f"{name:<10} {median['wall']:>8.2f} {median['cpu']:>8.2f} {own:>10}  {lines}")
    print(
        "events / no-events: "
        + ", ".join(f"{key} {value:.3f}" for key, value in ratio.items())
        + " (target <= 1.05)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cells": CELLS,
                    "executor": args.executor,
                    "repeat": args.repeat,
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "load_before": os.getloadavg(),
                    "runs": runs,
                    "medians": medians,
                    "ratio_events_to_no_events": ratio,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
