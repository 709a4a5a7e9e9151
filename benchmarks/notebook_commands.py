"""Notebook pipelines as whole commands: ``nbpipe build --force`` against ``ploomber build
--force`` on the same pipeline.yaml, and single notebooks against bare papermill and nbclient.

    python benchmarks/notebook_commands.py                 # every scenario, median of 3
    python benchmarks/notebook_commands.py --repeat 5 --json benchmarks/results/notebooks.json
    python benchmarks/notebook_commands.py --scenario trivial16 --only nbpipe

Each command runs in a fresh copy of its project, one after the other (never two at once; the
tools of a scenario take turns, run by run), and is measured from outside: wall time, and CPU
time (user + system) of the command and every process it waited for (workers, kernels, kernel
templates), from ``os.wait4``. Ploomber runs from its own virtualenv
(``benchmarks/.venv-ploomber``, made by ``run.py``); the notebooks that import pandas need
``pip install pandas`` in both environments. nbpipe's pipelines differ from Ploomber's by one
line: ``meta.preload`` where a notebook imports pandas (a key Ploomber does not know).

Scenarios (``executor: parallel`` has as many workers as cores for both tools):

- ``trivial16``: 16 independent trivial notebooks (a parameters cell and one print) -> .ipynb,
  ``executor: parallel``.
- ``pandas8``: 8 notebooks importing pandas, 1 -> 6 -> 1, each writing a csv read downstream,
  products ``[ipynb, html]`` + csv, ``executor: parallel``.
- ``cells300``: one notebook of 300 trivial cells (Serial); also bare nbclient (read, execute,
  write: ``nbclient_script``).
- ``serial1``: one trivial notebook under Serial; also papermill's own command line.

Targets (issue 12): trivial16 and pandas8 at most 0.15 of Ploomber's wall time; CPU per trivial
notebook at most 0.3 CPU-s; cells300 within 1.2x of bare nbclient; serial1 within 1.3x of
papermill's command line.
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
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import run as driver  # noqa: E402  (the Ploomber virtualenv and the environments)

SCENARIOS = ["trivial16", "pandas8", "cells300", "serial1"]
NOTEBOOKS = {"trivial16": 16, "pandas8": 8, "cells300": 1, "serial1": 1}

PARAMETERS = '# %% tags=["parameters"]\nupstream = None\nproduct = None\n'


def _notebook(path: Path, *cells: str, parameters: str = PARAMETERS) -> None:
    """A notebook as .ipynb (both tools and bare nbclient read it the same way)."""

    def code(source: str, tags=()) -> dict:
        return {
            "cell_type": "code",
            "metadata": {"tags": list(tags)},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    params = parameters.split("\n", 1)[1]
    notebook = {
        "cells": [code(params, ["parameters"]), *(code(cell) for cell in cells)],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


def make_project(scenario: str, folder: Path, tool: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = ""
    if scenario == "trivial16":
        _notebook(folder / "trivial.ipynb", "print('hello from', product)")
        tasks = "".join(
            f"  - {{source: trivial.ipynb, name: t{i}, product: out/t{i}.ipynb}}\n"
            for i in range(16)
        )
        spec = f"executor: parallel\ntasks:\n{tasks}"
    elif scenario == "pandas8":
        _notebook(
            folder / "first.ipynb",
            "import pandas as pd\n"
            "df = pd.DataFrame({'x': range(100), 'y': range(100)})\n"
            "df.to_csv(product['data'], index=False)\ndf.describe()",
        )
        for i in range(6):
            _notebook(
                folder / f"middle{i}.ipynb",
                "import pandas as pd\n"
                "df = pd.read_csv(upstream['first']['data'])\n"
                f"df['z'] = df['x'] * {i}\n"
                "df.to_csv(product['data'], index=False)\ndf.head()",
                parameters=PARAMETERS.replace("upstream = None", "upstream = ['first']"),
            )
        middles = [f"middle{i}" for i in range(6)]
        _notebook(
            folder / "last.ipynb",
            "import pandas as pd\n"
            "frames = [pd.read_csv(upstream[name]['data']) for name in upstream]\n"
            "total = pd.concat(frames)\n"
            "total.to_csv(product['data'], index=False)\ntotal.shape",
            parameters=PARAMETERS.replace("upstream = None", f"upstream = {middles!r}"),
        )

        def task(name: str) -> str:
            return (
                f"  - source: {name}.ipynb\n"
                "    nb_product_key: [nb, html]\n"
                f"    product: {{nb: out/{name}.ipynb, html: out/{name}.html, "
                f"data: out/{name}.csv}}\n"
            )

        spec = "executor: parallel\ntasks:\n" + "".join(
            task(name) for name in ["first", *middles, "last"]
        )
        meta = "meta:\n  preload: [pandas]\n"
    elif scenario == "cells300":
        _notebook(folder / "cells.ipynb", *(f"x{i} = {i}" for i in range(300)))
        spec = "tasks:\n  - {source: cells.ipynb, product: out/cells.ipynb}\n"
    elif scenario == "serial1":
        _notebook(folder / "trivial.ipynb", "print('hello from', product)")
        spec = "tasks:\n  - {source: trivial.ipynb, product: out/trivial.ipynb}\n"
    else:
        raise ValueError(scenario)
    (folder / "pipeline.yaml").write_text((meta if tool == "nbpipe" else "") + spec)


NBCLIENT_SCRIPT = textwrap.dedent(
    """
    import sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    nbformat.write(nb, sys.argv[2])
    """
)


def commands(scenario: str, tool: str, python: Path) -> list[str]:
    if tool == "nbpipe":
        return [str(python), "-m", "nbpipe", "build", "--force"]
    if tool == "ploomber":
        return [str(python.parent / "ploomber"), "build", "--force"]
    source = {"cells300": "cells.ipynb", "serial1": "trivial.ipynb"}[scenario]
    if tool == "papermill":
        return [str(python), "-m", "papermill", "-k", "python3", source, "executed.ipynb"]
    if tool == "nbclient":
        return [str(python), "-c", NBCLIENT_SCRIPT, source, "executed.ipynb"]
    raise ValueError(tool)


def measure(cmd: list[str], cwd: Path, env: dict, timeout: float) -> dict:
    """Wall and CPU seconds of ``cmd`` (CPU of everything it waited for included)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False
    )
    deadline = time.monotonic() + timeout
    stderr = b""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            return {"error": f"timeout after {timeout:g} s"}
        time.sleep(0.005)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read() if process.stderr else b""
    if process.returncode:
        tail = "\n".join(stderr.decode(errors="replace").strip().splitlines()[-15:])
        return {"error": f"exit code {process.returncode}:\n{tail}"}
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def run_once(scenario: str, tool: str, python: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"nbbench-{scenario}-{tool}-") as workdir:
        folder = Path(workdir) / "project"
        make_project(scenario, folder, "nbpipe" if tool == "nbpipe" else "ploomber")
        env = driver.subprocess_env("nbpipe" if tool == "nbpipe" else "ploomber")
        env.pop("NBPIPE_ENTRY_POINT", None)
        result = measure(commands(scenario, tool, python), folder, env, timeout)
        if "error" not in result and tool in ("nbpipe", "ploomber"):
            built = len(list((folder / "out").glob("*.ipynb")))
            if built != NOTEBOOKS[scenario]:
                result = {"error": f"{built} notebooks built, not {NOTEBOOKS[scenario]}"}
        return result


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    return {
        "wall_s": statistics.median(r["wall_s"] for r in ok),
        "cpu_s": statistics.median(r["cpu_s"] for r in ok),
        "repeats": len(ok),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    parser.add_argument("--only", choices=["nbpipe", "ploomber"], help="skip the other tool")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--json", type=Path, help="save the results to this file")
    args = parser.parse_args(argv)

    scenarios = args.scenario or SCENARIOS
    pythons = {"nbpipe": Path(sys.executable)}
    pythons["papermill"] = pythons["nbclient"] = pythons["nbpipe"]
    if args.only != "nbpipe":
        pythons["ploomber"] = driver.ensure_ploomber()
    tools_of = {
        "trivial16": ["nbpipe", "ploomber"],
        "pandas8": ["nbpipe", "ploomber"],
        "cells300": ["nbpipe", "nbclient", "ploomber"],
        "serial1": ["nbpipe", "papermill", "ploomber"],
    }
    load_before = os.getloadavg()
    results: dict = {}
    raw = []
    failed = False
    for scenario in scenarios:
        tools = [
            tool
            for tool in tools_of[scenario]
            if tool in pythons
            and not (args.only and tool in ("nbpipe", "ploomber") and tool != args.only)
        ]
        # the tools take turns: a slow minute on a shared machine weighs on each of them
        runs: dict[str, list[dict]] = {tool: [] for tool in tools}
        for _ in range(args.repeat):
            for tool in tools:
                runs[tool].append(run_once(scenario, tool, pythons[tool], args.timeout))
        for tool in tools:
            print(f"{scenario} / {tool}...", end=" ", flush=True)
            raw.append({"scenario": scenario, "tool": tool, "runs": runs[tool]})
            results[scenario, tool] = summary = summarize(runs[tool])
            if "error" in summary:
                failed = True
                print(f"ERROR\n{summary['error']}")
            else:
                print(f"{summary['wall_s']:.2f} s wall, {summary['cpu_s']:.2f} CPU-s")
    load_after = os.getloadavg()

    print()
    print(
        f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(1/5/15 min after: {', '.join(f'{x:.2f}' for x in load_after)})"
    )
    header = ["scenario", "tool", "wall s", "CPU s", "CPU s/notebook", "wall vs nbpipe"]
    rows = []
    for scenario in scenarios:
        base = results.get((scenario, "nbpipe"))
        for tool in tools_of[scenario]:
            result = results.get((scenario, tool))
            if result is None:
                continue
            if "error" in result:
                rows.append([scenario, tool, "error", "", "", ""])
                continue
            ratio = ""
            if base and "error" not in base and tool != "nbpipe":
                ratio = f"nbpipe = {base['wall_s'] / result['wall_s']:.2f}x"
            rows.append(
                [
                    scenario,
                    tool,
                    f"{result['wall_s']:.2f}",
                    f"{result['cpu_s']:.2f}",
                    f"{result['cpu_s'] / NOTEBOOKS[scenario]:.2f}",
                    ratio,
                ]
            )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for line in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            "results": {f"{s}/{t}": r for (s, t), r in results.items()},
            "runs": raw,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
