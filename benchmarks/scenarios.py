"""One benchmark scenario, run against one package (nbpipe or ploomber).

nbpipe mirrors Ploomber's Python API, so each scenario is written once and
takes the package name as a parameter. The driver (``run.py``) runs this file
as a subprocess, once per tool, in a fresh work directory::

    python benchmarks/scenarios.py --package ploomber --scenario parallel_callables --workdir DIR

It prints one JSON line on stdout: the timings in seconds under "metrics",
and the name of the metric to compare under "headline". On failure it prints
a JSON line with an "error" key and exits non-zero.
"""

import argparse
import importlib
import inspect
import json
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import bench_tasks


def load_api(pkg):
    """Import the names the scenarios use from ``pkg`` (nbpipe or ploomber)."""
    top = importlib.import_module(pkg)
    tasks = importlib.import_module(f"{pkg}.tasks")
    products = importlib.import_module(f"{pkg}.products")
    executors = importlib.import_module(f"{pkg}.executors")
    return SimpleNamespace(
        version=getattr(top, "__version__", "unknown"),
        DAG=top.DAG,
        PythonCallable=tasks.PythonCallable,
        NotebookRunner=getattr(tasks, "NotebookRunner", None),
        File=products.File,
        Serial=executors.Serial,
        Parallel=executors.Parallel,
    )


def serial_executor(api, pkg):
    """The executor and its description. Ploomber's default Serial runs every
    task in a fresh subprocess; without that it is Ploomber's fastest executor.
    nbpipe takes its defaults."""
    if pkg == "ploomber":
        return api.Serial(build_in_subprocess=False), "Serial(build_in_subprocess=False)"
    return api.Serial(), "Serial()"


def build(dag, **kwargs):
    # Ploomber draws a progress bar unless told not to; nbpipe may not take the flag.
    if "show_progress" in inspect.signature(dag.build).parameters:
        kwargs["show_progress"] = False
    return dag.build(**kwargs)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def product_mtimes(workdir):
    """Modification times of the callables' products, to check what a build wrote."""
    return {p.name: p.stat().st_mtime_ns for p in workdir.glob("t*.txt")}


def expect_products(workdir, n):
    found = len(product_mtimes(workdir))
    if found != n:
        raise RuntimeError(f"expected {n} products in {workdir}, found {found}")


def callable_dag(api, workdir, executor, layers):
    """Callables in layers: ``layers[i]`` maps each task of layer i to the indices
    of its upstream tasks in layer i - 1 (layer 0: no upstream)."""
    dag = api.DAG(executor=executor)
    previous, edges = [], 0
    for depth, layer in enumerate(layers):
        current = []
        for i, parents in enumerate(layer):
            name = f"t{depth}_{i}"
            fn = bench_tasks.child if parents else bench_tasks.root
            task = api.PythonCallable(
                fn, api.File(str(workdir / f"{name}.txt")), dag=dag, name=name
            )
            for p in parents:
                previous[p] >> task
            edges += len(parents)
            current.append(task)
        previous = current
    return dag, edges


def parallel_callables(api, pkg, workdir):
    """200 callables under Parallel(processes=2), built from scratch:
    4 roots, each fanning out to 49 leaves."""
    roots, leaves_per_root = 4, 49
    layers = [
        [()] * roots,
        [(r,) for r in range(roots) for _ in range(leaves_per_root)],
    ]
    dag, edges = callable_dag(api, workdir, api.Parallel(processes=2), layers)
    seconds = timed(lambda: build(dag))
    expect_products(workdir, roots * (1 + leaves_per_root))
    return {
        "tasks": roots * (1 + leaves_per_root),
        "edges": edges,
        "executor": "Parallel(processes=2)",
        "metrics": {"build_s": seconds},
        "headline": "build_s",
    }


def noop_rebuild(api, pkg, workdir):
    """1000 callables in 10 layers of 100 (each task after the first layer
    depends on two tasks of the layer before). Build once, then time builds
    that have nothing to do."""
    width, depth = 100, 10
    layers = [[()] * width] + [[(i, (i + 1) % width) for i in range(width)]] * (depth - 1)

    described = serial_executor(api, pkg)[1]

    def make():
        return callable_dag(api, workdir, serial_executor(api, pkg)[0], layers)

    dag, edges = make()
    first = timed(lambda: build(dag))
    expect_products(workdir, width * depth)
    built = product_mtimes(workdir)
    # The same DAG object, built again in the same process.
    again = timed(lambda: build(dag))
    # A new DAG object, as a new process would do: construct, then build.
    start = time.perf_counter()
    fresh, _ = make()
    constructed = time.perf_counter() - start
    fresh_build = timed(lambda: build(fresh))
    rewritten = [name for name, mtime in product_mtimes(workdir).items() if built[name] != mtime]
    if rewritten:
        raise RuntimeError(f"the no-op rebuilds rewrote {len(rewritten)} products")
    return {
        "tasks": width * depth,
        "edges": edges,
        "executor": described,
        "metrics": {
            "first_build_s": first,
            "rebuild_s": again,
            "fresh_dag_construct_s": constructed,
            "fresh_dag_rebuild_s": fresh_build,
        },
        "headline": "rebuild_s",
    }


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": ["upstream = None\n", "product = None"],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["print('hello from', product)"],
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def notebooks(api, pkg, workdir):
    """8 trivial notebooks (a parameters cell and one print) under
    Parallel(processes=2): 1 root -> 6 middle -> 1 sink."""
    source = workdir / "trivial.ipynb"
    source.write_text(json.dumps(NOTEBOOK, indent=1))
    dag = api.DAG(executor=api.Parallel(processes=2))

    def notebook(name):
        product = api.File(str(workdir / f"{name}.ipynb"))
        return api.NotebookRunner(source, product, dag=dag, name=name)

    names = ["first", *(f"middle{i}" for i in range(6)), "last"]
    first, *middles, last = [notebook(name) for name in names]
    for middle in middles:
        first >> middle
        middle >> last
    seconds = timed(lambda: build(dag))
    missing = [name for name in names if not (workdir / f"{name}.ipynb").exists()]
    if missing:
        raise RuntimeError(f"notebooks not written: {missing}")
    return {
        "tasks": 8,
        "edges": 12,
        "executor": "Parallel(processes=2)",
        "metrics": {"build_s": seconds},
        "headline": "build_s",
    }


SCENARIOS = {f.__name__: f for f in (parallel_callables, noop_rebuild, notebooks)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, choices=["nbpipe", "ploomber"])
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args(argv)

    result = {"package": args.package, "scenario": args.scenario}
    try:
        api = load_api(args.package)
    except Exception as e:  # missing package, or an engine that is not there yet
        result["error"] = f"cannot import {args.package}: {type(e).__name__}: {e}"
        print(json.dumps(result), flush=True)
        return 2
    result["version"] = api.version
    result["python"] = sys.version.split()[0]

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result.update(SCENARIOS[args.scenario](api, args.package, workdir))
    except Exception as e:
        traceback.print_exc()
        result["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(result), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
