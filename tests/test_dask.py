"""The Dask executor on the session's LocalCluster: what differs from the shared engine tests (which
run under Dask too, see conftest.py): a worker that cannot see the project, an unreachable
scheduler, a missing install, a dying job, and a cancel that reaches a job running on a worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_tasks import concat, die, slow, write_name
from wait_helpers import wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.engine.state import BuildState
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Parallel
from nbpipe.executors.base import WorkerLost
from nbpipe.executors.worker import run_job
from nbpipe.products import File
from nbpipe.tasks import PythonCallable
from nbpipe.tasks.callable import CallableJob

pytest.importorskip("distributed")

from nbpipe.executors.dask import Dask, DaskUnavailable


def write_pid_and_wait(product, marker):
    """Says which process runs it (the marker holds its pid), then waits until it is stopped."""
    import time

    Path(marker).write_text(str(os.getpid()))
    time.sleep(600)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_that_cannot_see_the_project_fails_the_task_saying_so(workdir, dask_client):
    executor = Dask(client=dask_client)
    with executor.pool() as pool:
        pool.project_dir = str(workdir / "not-shared")  # what a worker on another machine sees
        future = pool.submit(run_job, CallableJob("t", concat, {}))
        outcome = future.result(timeout=60)
    assert outcome.state == "failed"
    assert "cannot see the project directory" in outcome.failure.message
    assert str(workdir / "not-shared") in outcome.failure.message


def test_a_dying_job_fails_its_task_only_and_the_workers_stay(workdir, dask_client):
    workers = set(dask_client.nthreads())
    dag = DAG(executor=Dask(client=dask_client))
    PythonCallable(die, File("dead.txt"), dag)
    root = PythonCallable(slow, File("root.txt"), dag, name="root", params={"seconds": 0.1})
    root >> PythonCallable(concat, File("child.txt"), dag, name="child")
    with pytest.raises(DAGBuildError) as raised:
        dag.build()
    assert "worker process running this task died" in str(raised.value.failures["die"])
    assert dag["child"].exec_status is TaskStatus.EXECUTED
    assert set(dask_client.nthreads()) == workers, "the Dask workers themselves stayed up"


def test_terminate_stops_a_job_running_on_a_worker(workdir, dask_client):
    marker = workdir / "started"
    executor = Dask(client=dask_client)
    with executor.pool() as pool:
        job = CallableJob("t", write_pid_and_wait, {"product": "x", "marker": str(marker)})
        future = pool.submit(run_job, job)
        wait_for_marker(marker, "the job to start on a worker")
        pid = int(marker.read_text())
        pool.terminate()
        with pytest.raises(WorkerLost):
            future.result(timeout=60)
    wait_until(lambda: not alive(pid), f"the process {pid} running the job to stop")


def test_an_unreachable_scheduler_fails_before_any_task_starts(workdir):
    dag = DAG(executor=Dask(address="tcp://127.0.0.1:9", connect_timeout=0.5))
    PythonCallable(slow, File("a.txt"), dag)
    events = []
    with pytest.raises(
        DaskUnavailable, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    ):
        dag.build(observers=[events.append])
    kinds = [event.kind for event in events]
    assert "task_started" not in kinds and kinds[-1] == "build_finished"


def test_address_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    assert Dask().address == "tcp://10.0.0.1:8786"
    assert repr(Dask()) == "Dask(address='tcp://10.0.0.1:8786')"
    assert Dask(address="tcp://h:1").address == "tcp://h:1"
    with pytest.raises(ValueError, match="n_workers"):
        Dask(n_workers=0)


def test_a_missing_install_says_how_to_get_it(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else find_spec(name, *a),
    )
    with pytest.raises(ImportError, match=r"pip install 'nbpipe\[dask\]'"):
        Dask()


def test_a_given_client_stays_open_and_names_the_scheduler(dask_client):
    executor = Dask(client=dask_client)
    with executor:
        assert repr(executor).startswith(f"Dask(address={dask_client.scheduler.address!r}")
    assert executor.client is dask_client and dask_client.status == "running"


def test_executor_dask_in_the_spec(workdir):
    from nbpipe.spec import DAGSpec

    (workdir / "pipeline.yaml").write_text("executor: dask\ntasks: []\n")
    assert isinstance(DAGSpec("pipeline.yaml").to_dag().executor, Dask)


def test_build_started_names_the_dashboard_and_the_state_keeps_it(workdir, dask_client):
    """The link is data: the event carries it and the reducer keeps it (the panel and the build
    history read it from there)."""
    link = dask_client.dashboard_link
    assert link.startswith("http://127.0.0.1:"), "the session's cluster serves a dashboard"
    dag = DAG(executor=Dask(client=dask_client))
    PythonCallable(write_name, File("a.txt"), dag)
    events = []
    report = dag.build(observers=[events.append])
    [started] = [event for event in events if event.kind == "build_started"]
    assert started.dashboard == link
    assert started.to_dict()["dashboard"] == link
    assert report.state.dashboard == link
    assert BuildState.from_dict(report.state.to_dict()).dashboard == link


def test_a_build_on_a_cluster_opened_by_the_build_names_its_dashboard(workdir):
    """With no cluster given, the build opens its LocalCluster before build_started."""
    dag = DAG(executor=Dask(n_workers=1))
    PythonCallable(write_name, File("a.txt"), dag)
    events = []
    dag.build(observers=[events.append])
    [started] = [event for event in events if event.kind == "build_started"]
    assert started.dashboard and started.dashboard.startswith("http://")
    assert started.dashboard in started.executor


def test_executors_on_this_machine_have_no_dashboard(workdir):
    dag = DAG(executor=Parallel(processes=1))
    PythonCallable(write_name, File("a.txt"), dag)
    assert dag.build().state.dashboard is None
