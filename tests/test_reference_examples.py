"""The examples from the reference documentation, verbatim but for the imports, under every
executor (Serial, Parallel with fork, Parallel with spawn)."""

from __future__ import annotations

import sys
from pathlib import Path

from notebook_files import write_notebook

from nbpipe.engine.events import TaskStatus


def test_parallel_signature_and_dag_executor_values():
    from nbpipe import DAG
    from nbpipe.executors import Parallel

    dag = DAG(executor="parallel")  # use with default values
    assert isinstance(dag.executor, Parallel) and dag.executor.start_method is None
    dag = DAG(executor=Parallel(processes=2))  # customize
    assert dag.executor.processes == 2 and dag.executor.print_progress is False


def test_dag_exits_gracefully_on_function_tasks(workdir, executor):
    from engine_tasks import early_stop_root

    from nbpipe import DAG
    from nbpipe.products import File
    from nbpipe.tasks import PythonCallable

    dag = DAG(executor="parallel")
    dag.executor = executor
    t = PythonCallable(early_stop_root, File("file.txt"), dag=dag)

    report = dag.build()
    assert report.stopped_early and report.stop_reason == "Ending gracefully"
    assert t.exec_status is TaskStatus.STOPPED_EARLY


def test_dag_exits_gracefully_on_notebook_tasks(workdir, executor):
    from engine_tasks import early_stop

    from nbpipe import DAG
    from nbpipe.products import File
    from nbpipe.tasks import NotebookRunner

    write_notebook(workdir / "nb.ipynb", "print('ran')")
    dag = DAG(executor="parallel")
    dag.executor = executor
    t = NotebookRunner(Path("nb.ipynb"), File("report.html"), dag=dag)
    t.on_finish = early_stop

    report = dag.build()
    assert report.stopped_early and report.stop_reason == "Ending gracefully"
    assert t.exec_status is TaskStatus.STOPPED_EARLY
    assert "ran" in Path("report.html").read_text()
    assert File("report.html").read_metadata() is None, "the hook stopped it: not counted as built"


def test_example_pipeline_builds(tmp_path, monkeypatch):
    folder = Path(__file__).parents[1] / "example_notebooks"
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("build", None)
    from build import make_dag

    report = make_dag(out=tmp_path).build()
    assert {row.status for row in report} == {TaskStatus.EXECUTED}
    assert len(report) == 5
    html = (tmp_path / "report.html").read_text()
    assert "Top region" in html and "Total revenue was" in html
    assert (tmp_path / "clean.csv").read_text().startswith("date,region,product,units,unit_price")


def test_ploomber_build_keywords(workdir, capsys):
    """Ploomber code calls build(force=..., show_progress=...): same meaning here."""
    from engine_tasks import write_name

    from nbpipe import DAG
    from nbpipe.products import File
    from nbpipe.tasks import PythonCallable

    dag = DAG()
    PythonCallable(write_name, File("a.txt"), dag=dag)
    dag.build(force=True, show_progress=False)
    assert "Building" not in capsys.readouterr().out
    dag.build(force=True, show_progress=True)
    assert "1/1" in capsys.readouterr().out
    dag.build_partially("write_name", force=True, show_progress=False)
