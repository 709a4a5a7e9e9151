"""Warm kernels (a worker starts the next notebook's kernel during the current one): each one
started is taken by a notebook, none is started for nothing. Every kernel that starts runs
IPython's startup files, so a startup file that leaves a mark counts them, the unused included.
Real workers, real forked kernels."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from notebook_files import still_running, write_notebook
from wait_helpers import TIMEOUT, wait_until

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


def test_with_a_notebook_for_every_worker_each_worker_starts_a_kernel_ahead(workdir, kernel_marks):
    """Two notebooks in a chain on two workers: while the first runs, the idle worker already
    has the second's kernel started (it would otherwise start it when the second arrives). The
    kernel of a worker that gets no notebook is stopped with the build."""
    release = workdir / "release"
    write_notebook(
        workdir / "first.ipynb",
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.02)",
    )
    write_notebook(workdir / "second.ipynb", "print('second')")
    dag = DAG(executor=Parallel(processes=2, start_method="fork"))
    first = NotebookRunner("first.ipynb", File("out/first.ipynb"), dag, name="first")
    second = NotebookRunner("second.ipynb", File("out/second.ipynb"), dag, name="second")
    first >> second

    build = threading.Thread(target=dag.build)
    build.start()
    try:
        wait_until(
            lambda: len(list(kernel_marks.iterdir())) == 2,
            "a kernel per worker while the first notebook runs",
        )
    finally:
        release.touch()
        build.join(timeout=TIMEOUT)
    assert not build.is_alive()
    assert Path("out/second.ipynb").exists()
    started = [int(mark.name) for mark in kernel_marks.iterdir()]
    assert not still_running(started), "no kernel is left after the build"


def test_the_notebook_after_a_join_finds_a_kernel_whichever_worker_finishes_first(
    workdir, kernel_marks
):
    """a and b -> c on two workers. b was handed over with nothing else ready, and finishes
    first (a waits for a marker file), so c goes to b's worker: b's job warmed a kernel there
    too (by count alone only a's did, and c started cold). c runs in a kernel started before
    a ended."""
    release = workdir / "release"
    wait_for_release = (
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.02)"
    )
    write_notebook(workdir / "a.ipynb", wait_for_release)
    write_notebook(workdir / "b.ipynb", "print('b')")
    write_notebook(workdir / "c.ipynb", "import os\nprint(os.getpid())")
    dag = DAG(executor=Parallel(processes=2, start_method="fork"))
    a = NotebookRunner("a.ipynb", File("out/a.ipynb"), dag, name="a")
    b = NotebookRunner("b.ipynb", File("out/b.ipynb"), dag, name="b")
    c = NotebookRunner("c.ipynb", File("out/c.ipynb"), dag, name="c")
    a >> c
    b >> c

    build = threading.Thread(target=dag.build)
    build.start()
    try:
        wait_until(lambda: Path("out/b.ipynb").exists(), "b to finish while a waits")
        # a's kernel and the kernel its job warms, b's and the one its job warms
        wait_until(lambda: len(list(kernel_marks.iterdir())) == 4, "four kernels started")
        before_a_ended = {mark.name for mark in kernel_marks.iterdir()}
    finally:
        release.touch()
        build.join(timeout=TIMEOUT)
    assert not build.is_alive()
    assert printed_by(workdir / "out/c.ipynb") in before_a_ended
    started = [int(mark.name) for mark in kernel_marks.iterdir()]
    assert len(started) == 4, "no kernel started after a ended"
    assert not still_running(started), "no kernel is left after the build, the unused one too"
