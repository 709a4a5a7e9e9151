"""How long stopping a running build takes: Ctrl-C or SIGTERM to ``nbpipe build``, and a cancel
through the server's API.

    python benchmarks/stop_time.py                        # every scenario once
    python benchmarks/stop_time.py --repeat 3 --scenario cli_sigterm --json stop.json

Each scenario builds a pipeline whose task is busy (a notebook sleeping in a cell, or a function
that swallows every signal), waits until the task has reached that point (it creates a marker
file), then stops the build and measures, in seconds:

- ``stopped_s``: from the signal (or the cancel request) until the build has ended (the command
  exited, or the server reports the build ``cancelled``);
- ``gone_s``: until no process of the build (command, workers, kernels) is left.

Each run checks that the build really stopped the way it should (exit code, state) and fails
otherwise; no figure is a pass/fail threshold. Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (
    Server,
    alive,
    child_env,
    descendants,
    machine,
    sleeping_notebook,
    touch_code,
    wait_until,
    write_pipeline,
)

GRACE = 2.0  # the server's cancel_grace_period here: seconds between SIGTERM and SIGKILL

STUBBORN = """import time


def stubborn(product):
    {touch}
    while True:
        try:
            time.sleep(60)
        except BaseException:
            pass
"""

# CLI scenarios: (executor, how the build is stopped, expected exit code)
CLI = {
    "cli_sigterm": ("parallel", "SIGTERM", 143),  # as the server stops a build (with --json)
    "cli_sigint": ("serial", "SIGINT", 130),
    "cli_ctrl_c": ("parallel", "Ctrl-C", 130),  # SIGINT to the process group, kernels included
}
SERVER = {
    "server_cancel_serial": "serial",
    "server_cancel_parallel": "parallel",
    "server_cancel_stubborn": "stubborn",  # ignores SIGTERM: killed after the grace period
}
SCENARIOS = [*CLI, *SERVER]


def gone_after(pids: list[int], start: float) -> float:
    wait_until(lambda: not alive(pids), "the build's processes to end", timeout=60)
    return time.monotonic() - start


def run_cli(scenario: str, workdir: Path) -> dict[str, float]:
    executor, how, code = CLI[scenario]
    reached = workdir / "reached"
    write_pipeline(workdir / "project", {"sleepy": sleeping_notebook(reached)}, executor)
    options = ["--json"] if how == "SIGTERM" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "nbpipe", "build", *options],
        cwd=workdir / "project",
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:

        def is_reached() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the build ended early: {process.communicate()[1]}")
            return reached.exists()

        wait_until(is_reached, "the notebook to reach its sleeping cell")
        family = [process.pid, *descendants(process.pid)]
        start = time.monotonic()
        if how == "Ctrl-C":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(getattr(signal, how))
        _, stderr = process.communicate(timeout=120)
        stopped = time.monotonic() - start
        if process.returncode != code:
            raise RuntimeError(f"exit code {process.returncode}, not {code}:\n{stderr[-2000:]}")
        return {"stopped_s": stopped, "gone_s": gone_after(family, start)}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_server(scenario: str, server: Server, root: Path, number: int) -> dict[str, float]:
    kind = SERVER[scenario]
    folder = root / f"{scenario}-{number}"
    reached = folder.parent / f"{folder.name}.reached"
    if kind == "stubborn":
        folder.mkdir(parents=True)
        (folder / f"stubborn_{number}.py").write_text(STUBBORN.format(touch=touch_code(reached)))
        (folder / "pipeline.yaml").write_text(
            f"executor: serial\ntasks:\n  - source: stubborn_{number}.stubborn\n"
            "    product: out/x.txt\n"
        )
    else:
        write_pipeline(folder, {"sleepy": sleeping_notebook(reached)}, kind)
    build_id = server.build(f"{folder.name}/pipeline.yaml")
    wait_until(reached.exists, f"the task of {scenario} to reach its busy point")
    tree = descendants(server.process.pid)
    start = time.monotonic()
    code, reply = server.call("POST", f"nbpipe/api/builds/{build_id}/cancel")
    if code != 202:
        raise RuntimeError(f"cancel: {code} {reply}")
    build = wait_until(
        lambda: (b := server.get_build(build_id))["state"] not in ("running", "cancelling") and b,
        "the build to end",
    )
    stopped = time.monotonic() - start
    if build["state"] != "cancelled":
        raise RuntimeError(f"the build ended {build['state']}, not cancelled")
    return {"stopped_s": stopped, "gone_s": gone_after(tree, start)}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (median)")
    parser.add_argument("--json", type=Path, help="save the figures to this file")
    args = parser.parse_args(argv)
    scenarios = args.scenario or SCENARIOS

    results: dict[str, dict[str, float]] = {}
    raw: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stop-time-") as tmp:
        base = Path(tmp)
        server = None
        try:
            for scenario in scenarios:
                print(f"{scenario}...", end=" ", flush=True)
                runs: list[dict[str, float]] = []
                for number in range(args.repeat):
                    if scenario in CLI:
                        runs.append(run_cli(scenario, base / f"{scenario}-{number}"))
                        continue
                    if server is None:  # one server for every server scenario
                        server = Server(base / "root", base / "server", cancel_grace_period=GRACE)
                    runs.append(run_server(scenario, server, base / "root", number))
                raw[scenario] = runs
                results[scenario] = median_of(runs)
                print(f"stopped in {results[scenario]['stopped_s']:.2f} s")
        finally:
            if server is not None:
                server.close()

    about = machine()
    print(
        f"\n{about['platform']}, {about['cpus']} cores, Python {about['python']}, "
        f"load average {about['loadavg']} after the runs; server cancel grace period {GRACE:g} s"
    )
    print(f"seconds, median of {args.repeat}:")
    header = ["scenario", "stopped_s", "gone_s"]
    rows = [[name, f"{r['stopped_s']:.2f}", f"{r['gone_s']:.2f}"] for name, r in results.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if args.json:
        report = {"machine": about, "grace_period_s": GRACE, "medians": results, "runs": raw}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
