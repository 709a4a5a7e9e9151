"""A build never destroys what it did not make: a product path that exists with the other kind
(a folder where the task writes a file, a file where it writes a folder) fails that task and leaves
everything as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_safety_tasks import file_and_folder, make_folder, write_file
from engine_tasks import write_param

from nbpipe import DAG
from nbpipe.exceptions import DAGBuildError, DAGRenderError
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its text: what a failed build must leave unchanged."""
    return {
        str(path.relative_to(folder)): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_file_never_replaces_an_existing_folder(workdir, executor):
    (workdir / "data").mkdir()
    (workdir / "data" / "precious.csv").write_text("precious")
    before = tree(workdir)
    dag = DAG(executor=executor)
    PythonCallable(write_file, File("data"), dag, name="writer")

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    message = str(raised.value)
    assert "product data is an existing folder, but task 'writer' wrote a file" in message
    assert "move or delete the folder yourself, or give the task another product path" in message
    assert tree(workdir) == before
    assert sorted(p.name for p in workdir.iterdir()) == ["data"]


def test_a_folder_never_replaces_an_existing_file(workdir):
    (workdir / "data").write_text("mine")
    dag = DAG()
    PythonCallable(make_folder, File("data"), dag, name="maker")

    with pytest.raises(DAGBuildError, match="product data is an existing file, but task 'maker' "):
        dag.build()

    assert tree(workdir) == {"data": "mine"}
    assert sorted(p.name for p in workdir.iterdir()) == ["data"]


def test_one_mismatched_product_keeps_every_product_of_the_task(workdir):
    (workdir / "ok.txt").write_text("old")
    (workdir / "data").mkdir()
    (workdir / "data" / "precious.csv").write_text("precious")
    before = tree(workdir)
    dag = DAG()
    PythonCallable(file_and_folder, {"ok": "ok.txt", "data": "data"}, dag, name="both")

    with pytest.raises(DAGBuildError, match="product data is an existing folder"):
        dag.build()

    assert tree(workdir) == before


def test_a_folder_product_still_replaces_its_previous_folder(workdir):
    dag = DAG()
    PythonCallable(make_folder, File("data"), dag, name="maker")
    dag.build()
    dag.build(force=True)
    assert sorted(p.name for p in workdir.iterdir()) == [".data.metadata", "data"]
    assert tree(workdir / "data") == {"part.csv": "new"}


def test_a_notebook_product_that_is_an_existing_folder_is_a_render_problem(workdir):
    (workdir / "nb.py").write_text(
        '# %% tags=["parameters"]\nupstream = None\nproduct = None\n\n# %%\nprint(1)\n'
    )
    (workdir / "report.html").mkdir()
    (workdir / "report.html" / "keep.txt").write_text("keep")
    dag = DAG()
    NotebookRunner(
        "nb.py",
        {"nb": "nb.ipynb", "html": "report.html"},
        dag,
        name="nb",
        nb_product_key=["nb", "html"],
    )

    with pytest.raises(DAGRenderError) as raised:
        dag.build()

    assert raised.value.problems == [
        (
            "nb",
            "product report.html is an existing folder, but the task writes a file there; "
            "move or delete the folder yourself, or give the task another product path",
        )
    ]
    assert tree(workdir / "report.html") == {"keep.txt": "keep"}
    assert not (workdir / "nb.ipynb").exists()


def test_an_on_finish_hook_that_rejects_the_output_keeps_the_last_good_product(workdir, executor):
    """The new output replaces the last good one only once the task's on_finish hook (and its
    build record) succeeded; a rejected output leaves product and record as they were."""
    dag = DAG(executor=executor)
    task = PythonCallable(
        write_param, File("out/data.txt"), dag, name="data", params={"value": "v1"}
    )
    dag.build()
    record = File("out/data.txt").read_metadata()

    def reject_bad(product):
        if Path(str(product)).read_text() == "bad":
            raise ValueError("the output looks wrong")

    task.params = {"value": "bad"}
    task.on_finish = reject_bad
    with pytest.raises(DAGBuildError, match="the output looks wrong"):
        dag.build(force=True)

    assert Path("out/data.txt").read_text() == "v1"
    assert File("out/data.txt").read_metadata() == record
    assert sorted(path.name for path in Path("out").iterdir()) == [".data.txt.metadata", "data.txt"]


def test_a_killed_build_leaves_working_files_that_the_next_build_sweeps(workdir):
    """Staged files of a build that died (its pid is gone) are removed; a product it had put
    aside comes back when nothing took its place; files of a live build are left alone."""
    dead = _dead_pid()
    Path("out").mkdir()
    Path(f"out/.nbpipe-{dead:x}_0123abcd-data.txt").write_text("half written")
    Path(f"out/.nbpipe-{dead:x}_0123abcd-old-kept.txt").write_text("last good")
    live = Path(f"out/.nbpipe-{os.getpid():x}_0123abcd-other.txt")
    live.write_text("a live build's")
    dag = DAG()
    PythonCallable(write_param, File("out/data.txt"), dag, name="data", params={"value": "new"})

    dag.build()

    assert sorted(path.name for path in Path("out").iterdir()) == sorted(
        [".data.txt.metadata", "data.txt", "kept.txt", live.name]
    )
    assert Path("out/kept.txt").read_text() == "last good"


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(process.stdout)


def test_two_tasks_writing_one_product_through_a_symlinked_folder_are_refused(workdir):
    Path("data").mkdir()
    Path("alias").symlink_to("data")
    dag = DAG()
    PythonCallable(write_file, File("data/table.csv"), dag, name="one")
    PythonCallable(write_file, File("alias/table.csv"), dag, name="two")

    with pytest.raises(DAGRenderError, match="is also a product of two"):
        dag.build()
