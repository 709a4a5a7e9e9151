"""Run the benchmarks for nbpipe and Ploomber side by side and print the ratios.

    python benchmarks/run.py                  # every scenario, both tools
    python benchmarks/run.py --only nbpipe    # skip Ploomber
    python benchmarks/run.py --scenario noop_rebuild --json results.json

nbpipe runs in this interpreter (from this working tree). Ploomber runs in its
own virtualenv, benchmarks/.venv-ploomber, created here on first use from
requirements-ploomber.txt. Each scenario runs in a subprocess (scenarios.py)
in a fresh temporary directory, one tool at a time.
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCENARIOS = ["parallel_callables", "noop_rebuild", "notebooks"]
TOOLS = ["nbpipe", "ploomber"]
PLOOMBER_VENV = HERE / ".venv-ploomber"
PLOOMBER_REQUIREMENTS = HERE / "requirements-ploomber.txt"


def venv_python(path):
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def subprocess_env(tool):
    env = dict(os.environ)
    paths = [str(HERE)]
    if tool == "nbpipe":
        paths.append(str(REPO))  # benchmark this working tree
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Keep Ploomber from calling home (telemetry, version check) while timed.
    env["PLOOMBER_STATS_ENABLED"] = "false"
    env["PLOOMBER_VERSION_CHECK_DISABLED"] = "true"
    return env


def probe(python, tool):
    """(version, None) if the scenarios can import ``tool`` with ``python``,
    else (None, the error)."""
    code = f"import scenarios; print(scenarios.load_api({tool!r}).version)"
    proc = subprocess.run(
        [str(python), "-c", code], env=subprocess_env(tool), capture_output=True, text=True
    )
    if proc.returncode == 0:
        return proc.stdout.strip(), None
    lines = proc.stderr.strip().splitlines()
    return None, lines[-1] if lines else f"exit code {proc.returncode}"


def ensure_ploomber():
    """The Ploomber virtualenv's python, creating the virtualenv if needed."""
    python = venv_python(PLOOMBER_VENV)
    if python.exists() and probe(python, "ploomber")[1] is None:
        return python
    print(f"Creating {PLOOMBER_VENV.relative_to(REPO)} (pip install ploomber)...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(PLOOMBER_VENV)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(PLOOMBER_REQUIREMENTS)]
    proc = subprocess.run(pip, capture_output=True, text=True)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"pip install -r {PLOOMBER_REQUIREMENTS.name} failed:\n{tail}")
    error = probe(python, "ploomber")[1]
    if error:
        raise RuntimeError(f"ploomber does not import in {PLOOMBER_VENV}: {error}")
    return python


def run_scenario(python, tool, scenario, timeout):
    """Run one scenario in a fresh directory; return its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-{scenario}-") as workdir:
        cmd = [str(python), str(HERE / "scenarios.py")]
        cmd += ["--package", tool, "--scenario", scenario, "--workdir", workdir]
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=subprocess_env(tool),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout can end its workers and kernels too
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"package": tool, "scenario": scenario, "timeout": timeout}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        return {"package": tool, "scenario": scenario, "error": f"no result:\n{tail}"}
    result = json.loads(lines[-1])
    if "error" in result:
        result["stderr_tail"] = "\n".join(stderr.strip().splitlines()[-15:])
    return result


def summarize(runs):
    """Median of each metric over the successful runs; or the failure."""
    ok = [r for r in runs if "metrics" in r]
    if not ok:
        return runs[-1]
    summary = dict(ok[0])
    summary["metrics"] = {
        key: statistics.median(r["metrics"][key] for r in ok) for key in ok[0]["metrics"]
    }
    summary["repeats"] = len(ok)
    return summary


def cell(result, metric):
    if result is None:
        return "-"
    if "timeout" in result:
        return f"timeout>{result['timeout']:g}s"
    if "error" in result:
        return "error"
    return f"{result['metrics'][metric]:.3f}"


def table(results, tools):
    """Rows of scenario, metric, seconds per tool and the Ploomber/nbpipe ratio."""
    rows = []
    for scenario in SCENARIOS:
        by_tool = {tool: results.get((tool, scenario)) for tool in tools}
        if not any(by_tool.values()):
            continue
        done = [r for r in by_tool.values() if r and "metrics" in r]
        metrics = list(done[0]["metrics"]) if done else ["build_s"]
        headline = done[0]["headline"] if done else None
        for metric in metrics:
            row = {"scenario": scenario, "metric": metric, "headline": metric == headline}
            for tool in TOOLS:
                row[tool] = cell(by_tool.get(tool), metric)
            try:
                row["ratio"] = f"{float(row['ploomber']) / float(row['nbpipe']):.1f}x"
            except (ValueError, ZeroDivisionError):
                row["ratio"] = "-"
            rows.append(row)
    return rows


def print_table(rows):
    header = ["scenario", "metric", "nbpipe s", "ploomber s", "ploomber/nbpipe"]
    body = []
    for r in rows:
        metric = r["metric"] + (" *" if r["headline"] else "")
        body.append([r["scenario"], metric, r["nbpipe"], r["ploomber"], r["ratio"]])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    for line in [header, *body]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    print("(* the scenario's headline metric)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=TOOLS, help="run one tool only")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (median)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--json", type=Path, help="save the results to this file")
    args = parser.parse_args(argv)

    tools = [args.only] if args.only else TOOLS
    scenarios = args.scenario or SCENARIOS
    pythons, versions, failed = {}, {}, False
    for tool in tools:
        python = Path(sys.executable)
        if tool == "ploomber":
            try:
                python = ensure_ploomber()
            except RuntimeError as e:
                print(f"Ploomber unavailable: {e}\n(run with --only nbpipe to skip it)")
                failed = True
                continue
        versions[tool], error = probe(python, tool)
        if error:
            hint = {
                "nbpipe": "install it with `pip install -e .` from the repo root, "
                "or run with --only ploomber",
                "ploomber": f"delete {PLOOMBER_VENV} to rebuild it, or run with --only nbpipe",
            }[tool]
            print(f"{tool} is not importable from {python}: {error}\n({hint})")
            failed = True
        else:
            pythons[tool] = python

    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"note: load average {load_before:.2f} before the runs; timings may be noisy")
    results, raw = {}, []
    for scenario in scenarios:
        for tool, python in pythons.items():
            print(f"{scenario} / {tool}...", end=" ", flush=True)
            runs = [run_scenario(python, tool, scenario, args.timeout) for _ in range(args.repeat)]
            raw += runs
            results[tool, scenario] = summary = summarize(runs)
            if "metrics" in summary:
                headline = summary["headline"]
                print(f"{summary['metrics'][headline]:.3f}s ({headline}, {summary['executor']})")
            elif "timeout" in summary:
                print(f"timeout after {args.timeout:g}s")
            else:
                print(f"ERROR\n{summary['error']}\n{summary.get('stderr_tail', '')}")
                failed = True

    rows = table(results, tools)
    print()
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }
    print(
        f"{machine['platform']}, {machine['cpus']} cores, Python {machine['python']}, "
        f"load average {machine['loadavg_before']} before, {machine['loadavg_after']} after"
    )
    for tool, python in pythons.items():
        print(f"{tool} {versions[tool]} ({python})")
    print_table(rows)
    if args.json:
        report = {"machine": machine, "versions": versions, "rows": rows, "runs": raw}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
