"""The DAG as a collection: names, edges, ordering, rendering checks, status, plot, report."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_tasks import concat, crash, link, write_name

from nbpipe import DAG
from nbpipe.exceptions import DAGBuildError, DAGRenderError, DAGSpecError
from nbpipe.executors import Parallel, Serial
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


def diamond(workdir: Path) -> DAG:
    dag = DAG(name="diamond")
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(concat, File("b.txt"), dag, name="b")
    c = PythonCallable(concat, File("c.txt"), dag, name="c")
    d = PythonCallable(concat, File("d.txt"), dag, name="d")
    a >> b
    c.set_upstream(a)
    [b, c] >> d
    return dag


def test_collection_api(workdir):
    dag = diamond(workdir)
    assert len(dag) == 4
    assert dag["b"].name == "b"
    assert "a" in dag and "z" not in dag
    order = list(dag)
    assert order[0] == "a" and order[-1] == "d"
    assert set(dag["d"].upstream) == {"b", "c"}
    with pytest.raises(KeyError, match=r"No task named 'z'.*a, b, c, d"):
        dag["z"]


def test_executor_argument():
    assert isinstance(DAG(executor="serial").executor, Serial)
    assert isinstance(DAG(executor="parallel").executor, Parallel)
    custom = Parallel(processes=2)
    assert DAG(executor=custom).executor is custom
    with pytest.raises(ValueError, match="'serial', 'parallel', 'dask' or an Executor"):
        DAG(executor="threads")


def test_invalid_start_method_lists_valid_ones():
    with pytest.raises(ValueError, match="valid methods are: fork, spawn, forkserver"):
        Parallel(start_method="teleport")
    assert Parallel(start_method="").start_method is None


def test_duplicate_name_is_an_error(workdir):
    dag = DAG()
    PythonCallable(write_name, File("a.txt"), dag)
    with pytest.raises(DAGSpecError, match="already has a task named 'write_name'"):
        PythonCallable(write_name, File("b.txt"), dag)


def test_cycle_is_named(workdir):
    dag = DAG()
    a = PythonCallable(link, File("a.txt"), dag, name="a")
    b = PythonCallable(link, File("b.txt"), dag, name="b")
    c = PythonCallable(link, File("c.txt"), dag, name="c")
    a >> b >> c >> a
    with pytest.raises(
        DAGSpecError, match=r"cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"
    ):
        dag.build()


def test_two_tasks_writing_one_product(workdir):
    dag = DAG()
    PythonCallable(write_name, File("same.txt"), dag, name="one")
    PythonCallable(write_name, File("./same.txt"), dag, name="two")
    with pytest.raises(DAGRenderError, match=r"same.txt is also a product of two"):
        dag.render()


def test_function_arguments_checked_at_render(workdir):
    dag = DAG()
    PythonCallable(concat, File("a.txt"), dag)  # asks for upstream but has none
    with pytest.raises(DAGRenderError, match=r"concat\(\) needs argument\(s\) upstream"):
        dag.build()
    assert not Path("a.txt").exists()


def test_hook_signature_checked_at_render(workdir):
    dag = DAG()
    task = PythonCallable(write_name, File("a.txt"), dag)
    task.on_finish = lambda task, reprot: None
    with pytest.raises(
        DAGRenderError,
        match=r"on_finish hook .* asks for reprot; hooks can take: client, dag, params, product, task, upstream",
    ):
        dag.render()


def test_build_partially_builds_target_and_its_upstream_only(workdir):
    dag = diamond(workdir)
    report = dag.build_partially("b")
    assert [row.name for row in report] == ["a", "b"]
    assert Path("b.txt").read_text() == "x+"
    assert not Path("c.txt").exists() and not Path("d.txt").exists()


def test_build_partially_takes_several_targets(workdir):
    dag = diamond(workdir)
    PythonCallable(write_name, File("e.txt"), dag, name="e")
    events = []
    report = dag.build_partially(iter(["c", "b"]), observers=[events.append])
    # Both targets and what they need, each once, upstream first; not d, not e.
    assert [row.name for row in report] == ["a", "b", "c"]
    assert [e.task for e in events if e.kind == "task_finished"] == ["a", "b", "c"]
    assert Path("b.txt").read_text() == "x+" and Path("c.txt").read_text() == "x+"
    assert not Path("d.txt").exists() and not Path("e.txt").exists()

    again = dag.build_partially(["b", "d"])  # a, b, c are up to date; d needs them
    assert [(row.name, row.ran) for row in again] == [
        ("a", False),
        ("b", False),
        ("c", False),
        ("d", True),
    ]
    forced = dag.build_partially(["a"], force=True)
    assert [row.name for row in forced] == ["a"] and forced["a"].ran

    with pytest.raises(KeyError, match="No task named 'x'"):
        dag.build_partially(["b", "x"])
    with pytest.raises(ValueError, match="at least one task"):
        dag.build_partially([])


def test_report_table_html_and_status(workdir):
    dag = diamond(workdir)
    report = dag.build()
    text = str(report)
    assert text.splitlines()[0].split() == ["name", "ran", "status", "elapsed", "(s)", "products"]
    assert "Build success" in text
    assert report["d"].ran and report["d"].status.value == "executed"
    assert report["d"].products == ["d.txt"]
    assert "<table>" in report._repr_html_()
    assert '<td><a href="d.txt" target="_blank">d.txt</a></td>' in report._repr_html_()
    assert Path("d.txt").read_text() == "x+x++"
    status = dag.status()
    assert {row.state for row in status} == {"up to date"}
    Path("a.txt").unlink()
    status = dag.status()
    assert status["a"].state == "outdated"
    assert status["a"].reasons == ["product a.txt does not exist"]
    assert status["d"].reasons == ["upstream 'b' will run"]


def test_plot_is_mermaid(workdir, tmp_path):
    dag = diamond(workdir)
    PythonCallable(crash, File("e.txt"), dag, name="e")
    with pytest.raises(DAGBuildError):
        dag.build()
    diagram = dag.plot()
    text = str(diagram)
    assert text.startswith("flowchart LR")
    # layer by layer, in the order tasks were added: a, e | b, c | d
    assert text.splitlines()[1:6] == [f'    t{i}["{name}"]' for i, name in enumerate("aebcd")]
    assert "    t0 --> t2" in text and "    t3 --> t4" in text
    assert "    class t1 failed" in text
    assert "classDef failed" in text
    assert diagram._repr_mimebundle_()["text/vnd.mermaid"] == text
    assert "```mermaid" in dag.plot(tmp_path / "dag.md").to_markdown()
    assert (tmp_path / "dag.md").read_text().startswith("```mermaid")
    dag.plot(tmp_path / "dag.html")
    assert '<pre class="mermaid">' in (tmp_path / "dag.html").read_text()


def test_build_one_task_alone(workdir):
    dag = diamond(workdir)
    dag.build()
    Path("b.txt").write_text("changed by hand")
    report = dag["d"].build(force=True)
    assert [row.name for row in report] == ["d"]
    assert Path("d.txt").read_text() == "changed by handx++"
