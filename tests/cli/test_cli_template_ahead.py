"""``nbpipe build`` starts the kernel template before it loads the pipeline: the build whose
notebook kernels are forked in worker processes takes it (its preload modules and working
directory sent once known); a build that would get other results from it, or has no use for it,
does not, and nothing is left running either way."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from cli_helpers import nbpipe, notebook, write

FACTORY = """
import json
import os
from pathlib import Path

import psutil

from nbpipe import DAG
from nbpipe.executors import Parallel, Serial
from nbpipe.tasks import NotebookRunner, PythonCallable


def templates_ahead(process):
    return [p.pid for p in process.children() if "--later" in p.cmdline()]


def record_templates_ahead(product):
    # in a worker (Parallel: the building process is its parent) or in the building process
    building = psutil.Process(os.getppid() if os.environ.get("EXECUTOR") == "parallel" else None)
    Path(str(product)).write_text(json.dumps(templates_ahead(building)))


def make():
    Path("ahead.json").write_text(json.dumps(templates_ahead(psutil.Process())))
    if os.environ.get("SET_VARIABLE"):
        os.environ["NBPIPE_TEST_VARIABLE"] = "set while loading the pipeline"
    executor = Parallel(processes=2) if os.environ["EXECUTOR"] == "parallel" else Serial()
    dag = DAG(executor=executor, preload=["localmodule"])
    if os.environ.get("NOTEBOOKS"):
        for name in ("one", "two"):
            NotebookRunner(
                "nb.py",
                {"nb": f"out/{name}.ipynb", "data": f"out/{name}.json"},
                dag,
                name=name,
            )
    else:
        PythonCallable(record_templates_ahead, "out/seen.json", dag)
    return dag
"""

NOTEBOOK_BODY = """
import json, os
import psutil
import localmodule

shared = psutil.Process(os.getppid()).ppid()  # the kernel's template's template
with open(product["data"], "w") as f:
    json.dump({"shared": shared, "variable": localmodule.VARIABLE}, f)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    write(folder / "factory.py", FACTORY)
    write(
        folder / "localmodule.py", 'import os\nVARIABLE = os.environ.get("NBPIPE_TEST_VARIABLE")\n'
    )
    notebook(folder / "nb.py", NOTEBOOK_BODY)
    return folder


def build(project: Path, **env: str):
    result = nbpipe("build", "-e", "factory.make", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    left = [
        p.pid
        for p in psutil.process_iter(["cwd"])
        if p.info["cwd"] and Path(p.info["cwd"]).is_relative_to(project)
    ]
    assert left == [], "processes left running in the project"
    return json.loads((project / "ahead.json").read_text())


def test_the_build_takes_the_template_started_before_the_pipeline_loaded(project):
    """Its kernels are forked from the template that was running while the pipeline loaded; the
    preload module, a module of the project, imported there once the build said where."""
    ahead = build(project, EXECUTOR="parallel", NOTEBOOKS="1")

    assert len(ahead) == 1
    for name in ("one", "two"):
        seen = json.loads((project / f"out/{name}.json").read_text())
        assert seen == {"shared": ahead[0], "variable": None}


def test_a_pipeline_that_sets_the_environment_gets_a_template_started_after(project):
    """Loading the pipeline set a variable the preload module reads at import: the template
    started ahead would have imported it without, so the build starts its own."""
    ahead = build(project, EXECUTOR="parallel", NOTEBOOKS="1", SET_VARIABLE="1")

    assert len(ahead) == 1
    for name in ("one", "two"):
        seen = json.loads((project / f"out/{name}.json").read_text())
        assert seen["variable"] == "set while loading the pipeline"
        assert seen["shared"] != ahead[0]


@pytest.mark.parametrize("executor", ["parallel", "serial"])
def test_a_build_without_forked_kernels_in_workers_stops_it_before_its_tasks(project, executor):
    """No notebook under Parallel, or Serial: the template started ahead is stopped once the
    pipeline is loaded, before any task runs."""
    ahead = build(project, EXECUTOR=executor)

    assert len(ahead) == 1
    assert json.loads((project / "out/seen.json").read_text()) == []
