"""Build semantics shared by every executor: failures, early stop, scale, worker crashes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from engine_tasks import (
    concat,
    crash,
    crash_downstream,
    die,
    early_stop_root,
    link,
    slow,
    write_name,
)

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildEarlyStop, DAGBuildError
from nbpipe.executors import Parallel
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


def test_crash_aborts_downstream_and_the_rest_builds(workdir, executor):
    dag = DAG(executor=executor)
    root = PythonCallable(write_name, File("root.txt"), dag, name="root")
    bad = PythonCallable(crash_downstream, File("bad.txt"), dag, name="bad")
    after_bad = PythonCallable(concat, File("after_bad.txt"), dag, name="after_bad")
    after_after = PythonCallable(concat, File("after_after.txt"), dag, name="after_after")
    good = PythonCallable(concat, File("good.txt"), dag, name="good")
    after_good = PythonCallable(concat, File("after_good.txt"), dag, name="after_good")
    root >> bad >> after_bad >> after_after
    root >> good >> after_good

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    error = raised.value
    assert list(error.failures) == ["bad"]
    assert "ValueError: this task is broken" in str(error.failures["bad"])
    assert "engine_tasks.py" in str(
        error.failures["bad"]
    )  # the traceback points at the user's code
    statuses = {name: dag[name].exec_status for name in dag}
    assert statuses == {
        "root": TaskStatus.EXECUTED,
        "bad": TaskStatus.FAILED,
        "good": TaskStatus.EXECUTED,
        "after_bad": TaskStatus.ABORTED,
        "after_good": TaskStatus.EXECUTED,
        "after_after": TaskStatus.ABORTED,
    }
    assert error.report["after_bad"].detail == "upstream task 'bad' failed"
    assert Path("after_good.txt").read_text() == "x++"
    assert not Path("bad.txt").exists() and not Path("after_bad.txt").exists()
    assert not list(Path().glob(".nbpipe-*")), "no staged leftovers"


def test_early_stop_from_a_callable(workdir, executor):
    dag = DAG(executor=executor)
    stopper = PythonCallable(early_stop_root, File("file.txt"), dag)
    later = PythonCallable(concat, File("later.txt"), dag, name="later")
    stopper >> later

    report = dag.build()

    assert report.stopped_early
    assert report.stop_reason == "Ending gracefully"
    assert "Build stopped early" in str(report) and "Ending gracefully" in str(report)
    assert dag["early_stop_root"].exec_status is TaskStatus.STOPPED_EARLY
    assert dag["later"].exec_status is TaskStatus.CANCELLED
    assert not Path("later.txt").exists() and not Path("file.txt").exists()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_early_stop_lets_running_tasks_finish_and_starts_nothing_new(workdir, start_method):
    dag = DAG(executor=Parallel(processes=2, start_method=start_method))
    PythonCallable(early_stop_root, File("file.txt"), dag)
    running = PythonCallable(slow, File("slow.txt"), dag, params={"seconds": 1.0})
    running >> PythonCallable(concat, File("child.txt"), dag, name="child")

    report = dag.build()

    assert report.stopped_early
    assert report["slow"].status is TaskStatus.EXECUTED
    assert Path("slow.txt").read_text() == "slow"
    assert report["child"].status is TaskStatus.CANCELLED
    assert not Path("child.txt").exists()


def test_early_stop_from_a_dag_hook(workdir, executor):
    dag = DAG(executor=executor)
    PythonCallable(write_name, File("a.txt"), dag)

    def stop_on_render(dag):
        raise DAGBuildEarlyStop("not today")

    dag.on_render = stop_on_render
    report = dag.build()
    assert report.stopped_early and report.stop_reason == "not today"
    assert not Path("a.txt").exists()

    dag.on_render = None
    finished = []

    def stop_on_finish(dag, report):
        finished.append(report["write_name"].status)
        assert report.outcome.value == "success"
        raise DAGBuildEarlyStop("enough")

    dag.on_finish = stop_on_finish
    report = dag.build()
    assert finished == [TaskStatus.EXECUTED]
    assert report.stopped_early and report.stop_reason == "enough"
    assert Path("a.txt").read_text() == "x"


def test_task_hook_errors_are_reported_against_the_task(workdir, executor):
    dag = DAG(executor=executor)
    task = PythonCallable(write_name, File("a.txt"), dag, name="checked")
    seen = {}

    def check(product, params, task):
        seen["args"] = (str(product), params, task.name)
        raise AssertionError("product looks wrong")

    task.on_finish = check
    task.params = {"name": "y"}
    failures = []
    task.on_failure = lambda task, traceback: failures.append((task.name, traceback))
    with pytest.raises(DAGBuildError, match="checked") as raised:
        dag.build()
    assert seen["args"] == ("a.txt", {"name": "y"}, "checked")
    assert "AssertionError: product looks wrong" in str(raised.value.failures["checked"])
    assert failures and failures[0][0] == "checked"
    assert not Path("a.txt").exists() and not File("a.txt").read_metadata(), "a rejected output"


def test_dag_on_failure_hook_gets_the_traceback(workdir):
    dag = DAG()
    PythonCallable(crash, File("a.txt"), dag)
    received = []
    dag.on_failure = lambda dag, traceback: received.append(traceback)
    with pytest.raises(DAGBuildError):
        dag.build()
    assert "this task is broken" in received[0]["build"]  # Ploomber's dict


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_chain_of_300_and_fan_out_of_300(workdir, start_method):
    dag = DAG(executor=Parallel(processes=2, start_method=start_method))
    previous = PythonCallable(write_name, File("chain/0.txt"), dag, name="c0")
    for i in range(1, 300):
        current = PythonCallable(link, File(f"chain/{i}.txt"), dag, name=f"c{i}")
        previous >> current
        previous = current
    root = PythonCallable(write_name, File("fan/root.txt"), dag, name="root")
    for i in range(300):
        root >> PythonCallable(link, File(f"fan/{i}.txt"), dag, name=f"f{i}")

    report = dag.build()

    assert len(report) == 601
    assert all(row.status is TaskStatus.EXECUTED for row in report)
    assert len(list(Path("chain").glob("*.txt"))) == 300
    assert len(list(Path("fan").glob("*.txt"))) == 301


def test_a_dying_worker_fails_its_task_only(workdir):
    dag = DAG(executor=Parallel(processes=2))
    PythonCallable(die, File("dead.txt"), dag)
    root = PythonCallable(slow, File("root.txt"), dag, name="root", params={"seconds": 0.5})
    root >> PythonCallable(concat, File("child.txt"), dag, name="child")
    with pytest.raises(DAGBuildError) as raised:
        dag.build()
    assert "worker process running this task died" in str(raised.value.failures["die"])
    assert dag["child"].exec_status is TaskStatus.EXECUTED
    assert Path("child.txt").read_text() == "slow+"


def test_events_arrive_in_order(workdir, executor):
    dag = DAG(executor=executor)
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(concat, File("b.txt"), dag, name="b")
    a >> b
    events = []
    dag.build(observers=[events.append])
    kinds = [(event.kind, event.task) for event in events]
    assert kinds == [
        ("build_started", None),
        ("task_queued", "a"),
        ("task_queued", "b"),
        ("task_started", "a"),
        ("task_finished", "a"),
        ("task_started", "b"),
        ("task_finished", "b"),
        ("build_finished", None),
    ]
    assert events[-1].outcome == "success"
    assert events[1].reasons == ["product a.txt does not exist"]
    assert events[4].products == ["a.txt"] and events[4].elapsed >= 0
    events.clear()
    dag.build(observers=[events.append])
    assert [event.kind for event in events][1:3] == ["task_skipped"] * 2


def test_functions_defined_in_main_fail_clearly_under_spawn(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            from nbpipe import DAG
            from nbpipe.executors import Parallel
            from nbpipe.products import File
            from nbpipe.tasks import PythonCallable
            from nbpipe.exceptions import DAGBuildError

            dag = DAG(executor=Parallel(processes=1, start_method="spawn"))
            PythonCallable(lambda product: None, File("x.txt"), dag, name="anonymous")
            try:
                dag.build()
            except DAGBuildError as error:
                print(str(error.failures["anonymous"]))
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "define functions at the top level of an importable module" in result.stdout, (
        result.stderr
    )


def test_print_progress_shows_a_bar_on_stdout(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            from nbpipe import DAG
            from nbpipe.executors import Parallel
            from nbpipe.products import File
            from nbpipe.tasks import PythonCallable
            from engine_tasks import write_name

            if __name__ == "__main__":
                dag = DAG(executor=Parallel(processes=2, print_progress=True))
                for i in range(3):
                    PythonCallable(write_name, File(f"{i}.txt"), dag, name=f"t{i}")
                dag.build()
            """
        )
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent)}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Building" in result.stdout and "3/3" in result.stdout


def test_a_failing_dag_on_finish_hook_fails_the_build(workdir):
    dag = DAG()
    PythonCallable(write_name, File("a.txt"), dag)

    def broken(report):
        raise RuntimeError("cannot publish")

    dag.on_finish = broken
    with pytest.raises(DAGBuildError, match="cannot publish") as raised:
        dag.build()
    assert list(raised.value.failures) == ["(dag on_finish)"]
    assert raised.value.report.outcome.value == "failed"


def test_importing_the_executors_leaves_dask_unimported():
    """Serial and Parallel builds, and every worker, import nbpipe.executors: dask.distributed
    (half a second of imports) is imported only when a Dask build opens its cluster."""
    code = "import sys, nbpipe.executors; print(sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
