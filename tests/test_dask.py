"""The Dask executor on the session's LocalCluster: what differs from the shared engine tests (which
run under Dask too, see conftest.py): a worker that cannot see the project, an unreachable
scheduler, a missing install, a dying job, a cancel that reaches a job running on a worker, and
jobs handed ahead (on a cluster of one worker thread): a task starts only when its job begins,
and an early stop withdraws the jobs that have not begun; runners keep the next notebook's kernel
warm, and the build leaves none on the cluster."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from dask_tasks import KERNELS_BESIDE, held, held_then_stop, kernels_beside, nbpipe_task_states
from engine_tasks import concat, die, slow, write_name
from notebook_files import still_running, write_notebook
from wait_helpers import wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.engine.state import BuildState
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Parallel
from nbpipe.executors.base import WorkerLost
from nbpipe.executors.worker import run_job
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable
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


def build_notebooks_beside(workdir: Path, executor, n: int) -> dict[str, dict]:
    """Builds ``n`` notebooks that each note their kernel and the kernels beside it."""
    folder = workdir / "kernels"
    folder.mkdir()
    write_notebook(
        workdir / "nb.ipynb",
        KERNELS_BESIDE,
        parameters="upstream = None\nproduct = None\nname = None\nfolder = None",
    )
    dag = DAG(executor=executor)
    for i in range(n):
        params = {"name": f"n{i}", "folder": str(folder)}
        NotebookRunner("nb.ipynb", File(f"out/{i}.ipynb"), dag, name=f"n{i}", params=params)
    report = dag.build()
    assert {row.status for row in report} == {TaskStatus.EXECUTED}
    return kernels_beside(folder)


def test_a_runner_runs_its_next_notebook_in_a_kernel_warmed_beside_the_one_before(
    workdir, dask_client
):
    """A kernel alive beside a notebook's, started by the same runner, was warmed for a later
    notebook: some notebook ran in one (4 notebooks, 2 runners: some runner ran two). The
    build over, no kernel of it is left on the cluster, which stays up: the pool's close had
    the runners shut down the kernels they still kept warm."""
    seen = build_notebooks_beside(workdir, Dask(client=dask_client), 4)
    assert len(seen) == 4
    kernels = {record["pid"] for record in seen.values()}
    assert len(kernels) == 4, "every notebook ran in a kernel of its own"
    beside = {pid for record in seen.values() for pid in record["beside"]}
    assert kernels & beside, f"a notebook ran in a kernel warmed beside an earlier one: {seen}"
    wait_until(
        lambda: not still_running(kernels | beside),
        lambda: f"no kernel of the build left (left: {still_running(kernels | beside)})",
    )
    assert dask_client.status == "running"


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


# -- jobs handed ahead --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_thread():
    """A LocalCluster of one single-threaded worker: the loop hands it a second job while the
    first runs, and that one waits on the worker."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _waiting_on_the_worker(client) -> set[str]:
    """The tasks whose jobs a worker holds, waiting for a thread."""
    return {
        key.split("-")[1]
        for states in client.run(nbpipe_task_states).values()
        for key, state in states.items()
        if state == "ready"
    }


def _tasks_of(events, kind: str) -> list[str]:
    return [event.task for event in events if event.kind == kind]


def _assert_each_start_precedes_its_end(events) -> None:
    ends = ("task_finished", "task_failed", "task_stopped_early")
    for index, event in enumerate(events):
        if event.kind in ends:
            assert "task_started" in [e.kind for e in events[:index] if e.task == event.task], (
                f"{event.task} ended without starting"
            )


def _build_in_thread(dag, events, reports) -> threading.Thread:
    builder = threading.Thread(target=lambda: reports.append(dag.build(observers=[events.append])))
    builder.start()
    return builder


def test_a_job_handed_ahead_starts_its_task_only_when_it_begins_on_the_worker(workdir, one_thread):
    dag = DAG(executor=Dask(client=one_thread))
    for name in ("a", "b"):
        params = {"folder": str(workdir), "name": name}
        PythonCallable(held, File(f"{name}.txt"), dag, name=name, params=params)
    events, reports = [], []

    def began() -> set[str]:
        return {path.name.removeprefix("started-") for path in workdir.glob("started-*")}

    builder = _build_in_thread(dag, events, reports)
    try:
        [first] = wait_until(began, "a job to begin on the worker")
        second = ({"a", "b"} - {first}).pop()
        wait_until(
            lambda: second in _waiting_on_the_worker(one_thread),
            f"{second}'s job to wait on the worker, handed ahead",
        )
        wait_until(lambda: first in _tasks_of(events, "task_started"), f"{first} to start")
        assert _tasks_of(events, "task_started") == [first], "the waiting job has not started"
        assert began() == {first}
        (workdir / f"release-{first}").touch()
        wait_until(lambda: second in began(), f"{second} to begin once {first} ended")
        (workdir / f"release-{second}").touch()
    finally:
        for name in ("a", "b"):
            (workdir / f"release-{name}").touch()
        builder.join(timeout=300)
    assert reports and {row.status for row in reports[0]} == {TaskStatus.EXECUTED}
    assert _tasks_of(events, "task_started") == [first, second]
    assert _tasks_of(events, "task_finished") == [first, second]
    kinds = [(event.kind, event.task) for event in events if event.kind.startswith("task_")]
    assert kinds.index(("task_started", second)) > kinds.index(("task_finished", first))
    _assert_each_start_precedes_its_end(events)


def test_an_early_stop_withdraws_a_job_handed_ahead(workdir, one_thread):
    """The stopper runs on the only thread while the other job waits on the worker; the stop is
    taken before the waiting job's start can be (the worker publishes that after the stopper's
    outcome), so the waiting job is withdrawn, whether it had begun meanwhile or not: its task
    is cancelled, never started, and nothing of it is left."""
    dag = DAG(executor=Dask(client=one_thread))
    folder = {"folder": str(workdir)}
    PythonCallable(held_then_stop, File("a.txt"), dag, name="a", params={**folder, "name": "a"})
    PythonCallable(held, File("b.txt"), dag, name="b", params={**folder, "name": "b"})
    events, reports = [], []
    builder = _build_in_thread(dag, events, reports)
    try:
        wait_for_marker(workdir / "started-a", "the stopper to begin")
        wait_until(lambda: "b" in _waiting_on_the_worker(one_thread), "b to wait on the worker")
        (workdir / "release-a").touch()
    finally:
        (workdir / "release-a").touch()
        builder.join(timeout=300)
    [report] = reports
    assert report.stopped_early and report.stop_reason == "a had enough"
    assert report["b"].status is TaskStatus.CANCELLED
    [cancelled] = [event for event in events if event.kind == "task_cancelled"]
    assert cancelled.task == "b" and "stopped early" in cancelled.reason
    assert _tasks_of(events, "task_started") == ["a"]
    _assert_each_start_precedes_its_end(events)
    assert not Path("b.txt").exists() and not list(workdir.glob(".nbpipe-*"))
    if (workdir / "started-b").exists():  # it had begun: its runner was stopped
        pid = int((workdir / "started-b").read_text())
        wait_until(lambda: not alive(pid), f"the runner {pid} of the withdrawn job to stop")
