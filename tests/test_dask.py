"""The Dask executor on the session's LocalCluster: what differs from the shared engine tests (which
run under Dask too, see conftest.py): a worker that cannot see the project, an unreachable
scheduler, a missing install, a dying job, and a cancel that reaches a job running on a worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_tasks import concat, die, slow
from wait_helpers import wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildError
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
