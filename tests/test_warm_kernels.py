"""Warm kernels (a worker starts the next notebook's kernel during the current one): each one
started is taken by a notebook, none is started for nothing. Every kernel that starts runs
IPython's startup files, so a startup file that leaves a mark counts them, the unused included.
Real workers, real forked kernels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_files import write_notebook

from nbpipe import DAG
from nbpipe.executors import Parallel
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner


@pytest.fixture
def kernel_marks(tmp_path, monkeypatch) -> Path:
    """A folder where each kernel started from now on leaves a file named after its pid."""
    marks = tmp_path / "kernels"
    marks.mkdir()
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-mark.py").write_text(
        f"import os\nopen(os.path.join({str(marks)!r}, str(os.getpid())), 'w').close()\n"
    )
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return marks


@pytest.mark.parametrize(("notebooks", "workers"), [(2, 2), (3, 1)])
def test_as_many_kernels_start_as_notebooks_run(workdir, kernel_marks, notebooks, workers):
    """Two notebooks on two workers: each worker starts its own, none warms one for the other
    (warming while any notebook was left started a third). Three on one worker: two are warmed
    during their predecessors, none after the last."""
    write_notebook(workdir / "nb.ipynb", "import os\nprint(os.getpid())")
    dag = DAG(executor=Parallel(processes=workers, start_method="fork"))
    for i in range(notebooks):
        NotebookRunner("nb.ipynb", File(f"out/{i}.ipynb"), dag, name=f"n{i}")

    dag.build()

    ran = {printed_by(workdir / f"out/{i}.ipynb") for i in range(notebooks)}
    started = {mark.name for mark in kernel_marks.iterdir()}
    assert len(ran) == notebooks, "each notebook ran in a kernel of its own"
    assert started == ran, "every kernel started ran a notebook"


def printed_by(ipynb: Path) -> str:
    """What the notebook's last cell printed (its kernel's pid)."""
    outputs = json.loads(ipynb.read_text())["cells"][-1]["outputs"]
    return "".join(outputs[0]["text"]).strip()
