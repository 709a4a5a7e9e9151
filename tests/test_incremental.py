"""Incremental builds: what is up to date is skipped, what changed rebuilds, exactly."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from engine_tasks import concat, write_name, write_param
from notebook_files import write_notebook

from nbpipe import DAG
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable


def ran(report) -> set[str]:
    return {row.name for row in report if row.ran}


def callables_dag(value=1, executor="serial") -> DAG:
    """a -> b -> c, and x independent."""
    dag = DAG(executor=executor)
    a = PythonCallable(write_param, File("a.txt"), dag, name="a", params={"value": value})
    b = PythonCallable(concat, File("b.txt"), dag, name="b")
    c = PythonCallable(concat, File("c.txt"), dag, name="c")
    PythonCallable(write_name, File("x.txt"), dag, name="x")
    a >> b >> c
    return dag


def test_second_build_skips_everything(workdir, executor):
    dag = callables_dag(executor=executor)
    assert ran(dag.build()) == {"a", "b", "c", "x"}
    report = dag.build()
    assert ran(report) == set()
    assert {row.status.value for row in report} == {"skipped"}
    assert ran(dag.build(force=True)) == {"a", "b", "c", "x"}


def test_param_change_rebuilds_the_task_and_its_downstream(workdir):
    callables_dag(value=1).build()
    assert ran(callables_dag(value=2).build()) == {"a", "b", "c"}
    assert Path("c.txt").read_text() == "2++"


def test_touched_upstream_product_rebuilds_downstream_only(workdir):
    callables_dag().build()
    stat = os.stat("b.txt")
    os.utime("b.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ran(callables_dag().build()) == {"c"}


def test_deleted_metadata_or_product_rebuilds(workdir):
    callables_dag().build()
    File("x.txt").metadata_path.unlink()
    Path("b.txt").unlink()
    assert ran(callables_dag().build()) == {"x", "b", "c"}


def test_products_move_with_their_metadata(workdir):
    dag = DAG()
    PythonCallable(write_name, File("here/a.txt"), dag, name="a")
    dag.build()
    metadata = json.loads(File("here/a.txt").metadata_path.read_text())
    assert metadata["task"] == "a" and metadata["source_digest"]
    shutil.move("here", "there")
    moved = DAG()
    PythonCallable(write_name, File("there/a.txt"), moved, name="a")
    assert ran(moved.build()) == set()


def write_notebooks(folder: Path) -> None:
    """The sources of ``notebook_dag``."""
    write_notebook(
        folder / "first.ipynb",
        "from pathlib import Path\nPath(product['data']).write_text(Path(upstream['raw']).read_text())",
        parameters="upstream = ['raw']\nproduct = None",
    )
    write_notebook(
        folder / "second.ipynb",
        "print(upstream)",
        parameters="upstream = ['first']\nproduct = None",
    )
    write_notebook(folder / "other.ipynb", "print('other')")


def notebook_dag() -> DAG:
    """raw (callable) -> first (notebook) -> second (notebook); other (notebook) alone."""
    dag = DAG(executor="parallel")
    raw = PythonCallable(write_name, File("raw.txt"), dag, name="raw")
    first = NotebookRunner(
        "first.ipynb", {"nb": File("first_out.ipynb"), "data": File("first.txt")}, dag
    )
    second = NotebookRunner("second.ipynb", File("second_out.ipynb"), dag)
    NotebookRunner("other.ipynb", File("other_out.ipynb"), dag)
    raw >> first >> second
    return dag


def test_notebook_code_edits_rebuild_exactly_the_affected_tasks(workdir):
    write_notebooks(workdir)
    assert ran(notebook_dag().build()) == {"raw", "first", "second", "other"}
    assert ran(notebook_dag().build()) == set()

    notebook = json.loads((workdir / "first.ipynb").read_text())
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "A note"})
    (workdir / "first.ipynb").write_text(json.dumps(notebook))
    assert ran(notebook_dag().build()) == set(), "markdown is not code"

    notebook["cells"][1]["source"] += "\nprint('edited')"
    (workdir / "first.ipynb").write_text(json.dumps(notebook))
    dag = notebook_dag()
    assert dag.status()["first"].reasons == ["source changed"]
    assert ran(dag.build()) == {"first", "second"}


def test_opening_an_executed_notebook_does_not_outdate_downstream(workdir):
    """JupyterLab may save an executed notebook that a user opens; its data products still count."""
    write_notebooks(workdir)
    notebook_dag().build()

    later = time.time() + 5
    os.utime("first_out.ipynb", (later, later))  # as if saved by JupyterLab
    assert ran(notebook_dag().build()) == set()

    os.utime("first.txt", (later, later))  # a data product changed
    assert ran(notebook_dag().build()) == {"second"}
