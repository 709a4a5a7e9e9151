"""The Dask executor against a real cluster: a ``dask scheduler`` and two ``dask worker`` processes
on 127.0.0.1, started and stopped by a fixture. Builds the example pipeline through ``address=``
(tasks run on both workers), survives a worker killed mid-build (a job waiting on it, handed
ahead, too), and a cancelled build leaves no kernel on any worker (a kernel kept warm by a
running notebook's runner included), nor does a build that ends with kernels still warm in its
runners."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_process import start_build
from dask_tasks import KERNELS_BESIDE, hang_once, kernels_beside, nbpipe_task_states, write_pid
from engine_tasks import crash
from notebook_files import processes_with_marker, still_running, write_notebook
from wait_helpers import wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildError
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

distributed = pytest.importorskip("distributed")

from nbpipe.executors.dask import Dask, executed_keys, runner_pids  # noqa: E402

TESTS = Path(__file__).parent
EXAMPLE = TESTS.parent / "example_notebooks"


class Cluster:
    """``with Cluster(folder, ...) as cluster:`` a running scheduler and workers, stopped after."""

    def __init__(
        self,
        folder: Path,
        workers: tuple[str, ...] = ("w1", "w2"),
        *options: str,
        env: dict[str, str] | None = None,
    ):
        """A scheduler and ``workers`` (named), each started with ``options`` (default: one
        thread) and ``env`` on top of this process's environment."""
        self.folder = folder
        self.names = workers
        self.options = options or ("--nthreads", "1")
        self.marker = f"nbpipe-dask-test-{uuid.uuid4().hex}"
        self.env = {**os.environ, "NBPIPE_CLUSTER_MARKER": self.marker, "PYTHONPATH": str(TESTS)}
        self.env.update(env or {})
        self.scheduler_file = folder / "scheduler.json"
        self.processes: list[subprocess.Popen] = []
        self.client = None

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        folder = self.folder
        self._spawn(
            "scheduler", "--host", "127.0.0.1", "--port", "0",
            "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.scheduler_file),
        )  # fmt: skip
        wait_until(self._scheduler_address, "the scheduler to write its address")
        self.address = self._scheduler_address()
        for name in self.names:
            self._spawn(
                "worker", self.address, "--name", name, *self.options,
                "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder),
            )  # fmt: skip
        self.client = distributed.Client(self.address, timeout=60)
        self.wait_for_workers(len(self.names))

    def _scheduler_address(self) -> str | None:
        """The address in the scheduler file, once the scheduler has written it whole."""
        try:
            return json.loads(self.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return None

    def _spawn(self, *arguments: str) -> None:
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "dask", *arguments],
                env=self.env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def workers(self) -> dict:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def wait_for_workers(self, n: int) -> None:
        wait_until(lambda: len(self.workers()) == n, lambda: f"{n} workers ({self.workers()})")

    def kernels(self) -> list[int]:
        """Kernels and kernel templates started on the workers (they carry the cluster's
        environment marker)."""
        found = []
        for pid in processes_with_marker(self.marker):
            try:
                if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return found

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for process in reversed(self.processes):  # workers first, their nannies' groups too
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in processes_with_marker(self.marker):  # anything the groups did not hold
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("dask-cluster")) as cluster:
        yield cluster


def test_the_example_pipeline_builds_on_both_workers(tmp_path, cluster):
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("output", "__pycache__"))
    before = cluster.client.run(executed_keys)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbpipe",
            "build",
            "--executor",
            "dask",
            "--address",
            cluster.address,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://127.0.0.1:" in result.stderr
    assert (project / "output" / "report.html").exists()
    after = cluster.client.run(executed_keys)
    ran = {worker: len(after[worker]) - len(before.get(worker, [])) for worker in after}
    assert sum(ran.values()) == 5 and all(ran.values()), f"tasks per worker: {ran}"


def test_a_worker_killed_mid_build_costs_only_a_rerun_of_its_task(workdir, cluster):
    marker = workdir / "hanging"
    dag = DAG(executor=Dask(address=cluster.address))
    hung = PythonCallable(hang_once, File("hung.txt"), dag, params={"marker": str(marker)})
    for i in range(3):
        hung >> PythonCallable(write_pid, File(f"after{i}.txt"), dag, name=f"after{i}")
    PythonCallable(write_pid, File("other.txt"), dag, name="other")
    reports = []
    builder = threading.Thread(target=lambda: reports.append(dag.build()))
    builder.start()
    try:
        wait_for_marker(marker, "the task to start on a worker")
        os.kill(int(marker.read_text()), signal.SIGKILL)  # the Dask worker running it
    finally:
        builder.join(timeout=600)
    assert reports, "the build finished"
    assert {row.status for row in reports[0]} == {TaskStatus.EXECUTED}
    assert Path("hung.txt").read_text() == "second run"
    cluster.wait_for_workers(2)  # the nanny restarted the killed worker


@contextlib.contextmanager
def interrupted_build(workdir: Path) -> Iterator[subprocess.Popen]:
    """``nbpipe build`` in ``workdir``, interrupted (Ctrl-C) when the block ends; afterwards its
    ``returncode`` and ``stderr_text`` are set. A build that does not stop is killed: none is
    left running, whatever the block raised."""
    build = start_build(workdir)
    try:
        yield build
        build.send_signal(signal.SIGINT)
        _, build.stderr_text = build.communicate(timeout=120)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()


def test_a_cancelled_build_leaves_no_kernel_on_any_worker(workdir, cluster):
    marker = workdir / "sleeping"
    write_notebook(
        workdir / "sleeper.ipynb",
        f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)",
    )
    (workdir / "pipeline.yaml").write_text(
        f"executor: {{dotted_path: nbpipe.executors.Dask, address: '{cluster.address}'}}\n"
        "tasks:\n  - source: sleeper.ipynb\n    product: sleeper.html\n"
    )
    before = set(cluster.kernels())  # runners' kernel templates from earlier builds stay
    with interrupted_build(workdir) as build:
        wait_for_marker(marker, "the notebook to run on a worker", timeout=120)
        kernel = int(marker.read_text())
        assert kernel in cluster.kernels()
    assert build.returncode == 130, build.stderr_text
    wait_until(
        lambda: not set(cluster.kernels()) - before,
        lambda: f"no kernel left ({set(cluster.kernels()) - before})",
    )
    assert not Path("sleeper.html").exists() and not list(workdir.glob(".nbpipe-*"))
    assert len(cluster.workers()) == 2, "the workers stay up"


def test_a_cancelled_build_stops_the_kernel_a_running_notebook_kept_warm(workdir, cluster):
    """Three notebooks on two workers: the first warms a kernel for the third while it runs
    (sleeping). A Ctrl-C stops its runner, and with it that warm kernel."""
    folder = workdir / "kernels"
    folder.mkdir()
    write_notebook(
        workdir / "sleeper.ipynb",
        KERNELS_BESIDE,
        "import time\ntime.sleep(600)",
        parameters="upstream = None\nproduct = None\nname = None\nfolder = None",
    )
    tasks = "".join(
        f"  - {{source: sleeper.ipynb, product: {name}.ipynb, name: {name},"
        f" params: {{name: {name}, folder: '{folder}'}}}}\n"
        for name in ("s1", "s2", "s3")
    )
    (workdir / "pipeline.yaml").write_text(
        f"executor: {{dotted_path: nbpipe.executors.Dask, address: '{cluster.address}'}}\n"
        f"tasks:\n{tasks}"
    )

    def beside_a_warm_kernel() -> dict[str, dict] | None:
        seen = kernels_beside(folder)
        return seen if any(record["beside"] for record in seen.values()) else None

    with interrupted_build(workdir) as build:
        seen = wait_until(
            beside_a_warm_kernel,
            lambda: f"a notebook to run beside a warm kernel ({kernels_beside(folder)})",
            timeout=120,
        )
    assert build.returncode == 130, build.stderr_text
    kernels = {pid for record in seen.values() for pid in (record["pid"], *record["beside"])}
    wait_until(
        lambda: not still_running(kernels),
        lambda: f"no kernel left (left: {still_running(kernels)})",
    )
    assert len(cluster.workers()) == 2, "the workers stay up"


def test_kernels_warmed_for_notebooks_that_never_run_are_not_left_on_the_workers(workdir, cluster):
    """``late1`` and ``late2`` wait on a task that fails, so ``early1`` and ``early2``, handed
    over while those are still to come, have their runners warm kernels for them (the second
    at least: both workers are busy then); the late ones never run. The runners outlive the
    build (they serve the next one), and the build's close had them shut those kernels down."""
    folder = workdir / "kernels"
    folder.mkdir()
    write_notebook(
        workdir / "nb.ipynb",
        KERNELS_BESIDE,
        parameters="upstream = None\nproduct = None\nname = None\nfolder = None",
    )
    dag = DAG(executor=Dask(address=cluster.address))
    broken = PythonCallable(crash, File("broken.txt"), dag, name="broken")
    for name in ("early1", "early2", "late1", "late2"):
        params = {"name": name, "folder": str(folder)}
        NotebookRunner("nb.ipynb", File(f"{name}.ipynb"), dag, name=name, params=params)
    broken >> dag["late1"]
    broken >> dag["late2"]
    with pytest.raises(DAGBuildError, match="this task is broken"):
        dag.build()
    seen = kernels_beside(folder)
    assert set(seen) == {"early1", "early2"}
    ran = {record["pid"] for record in seen.values()}
    warmed = {pid for record in seen.values() for pid in record["beside"]} - ran
    assert warmed, f"a kernel warmed beside an early notebook, for a late one: {seen}"
    runners = [pid for pids in cluster.client.run(runner_pids).values() for pid in pids]
    wait_until(
        lambda: not still_running(ran | warmed),
        lambda: f"no kernel left (left: {still_running(ran | warmed)})",
    )
    assert still_running(runners) == runners, "the runners stay, for the next build"


@pytest.fixture(scope="module")
def kernel_capped_worker(tmp_path_factory):
    """One worker with two threads that declares a single KERNEL."""
    folder = tmp_path_factory.mktemp("dask-kernel-cap")
    with Cluster(folder, ("capped",), "--nthreads", "2", "--resources", "KERNEL=1") as cluster:
        yield cluster


HELD_NOTEBOOK = """\
import json, time
from pathlib import Path
folder = Path(folder)
(folder / f"started-{name}").write_text(json.dumps(time.time()))
while not (folder / f"release-{name}").exists():  # held until the test releases it
    time.sleep(0.02)
(folder / f"ended-{name}").write_text(json.dumps(time.time()))
"""


def test_a_worker_declaring_one_kernel_runs_one_notebook_at_a_time(workdir, kernel_capped_worker):
    """Two notebooks, both handed to a worker with two free threads: the second waits for the
    worker's one KERNEL ("constrained") until the first ends."""
    cluster = kernel_capped_worker
    write_notebook(
        workdir / "held.ipynb",
        HELD_NOTEBOOK,
        parameters="upstream = None\nproduct = None\nname = None\nfolder = None",
    )
    dag = DAG(executor=Dask(address=cluster.address))
    for name in ("a", "b"):
        NotebookRunner(
            workdir / "held.ipynb",
            File(workdir / f"{name}.ipynb"),
            dag,
            name=name,
            params={"name": name, "folder": str(workdir)},
        )
    reports = []
    builder = threading.Thread(target=lambda: reports.append(dag.build()))
    builder.start()

    def started() -> set[str]:
        return {path.name.removeprefix("started-") for path in workdir.glob("started-*")}

    def waiting_for_a_kernel() -> set[str]:
        [states] = cluster.client.run(nbpipe_task_states).values()
        return {key.split("-")[1] for key, state in states.items() if state == "constrained"}

    try:
        [first] = wait_until(started, "a notebook to start", timeout=120)
        second = ({"a", "b"} - {first}).pop()
        wait_until(
            lambda: second in waiting_for_a_kernel(),
            lambda: f"{second} to wait for the KERNEL ({cluster.client.run(nbpipe_task_states)})",
        )
        assert started() == {first}
        (workdir / f"release-{first}").touch()
        wait_until(lambda: second in started(), f"{second} to start once {first} ended")
        (workdir / f"release-{second}").touch()
    finally:
        for name in ("a", "b"):
            (workdir / f"release-{name}").touch()
        builder.join(timeout=300)
    assert reports and {row.status for row in reports[0]} == {TaskStatus.EXECUTED}

    def moment(kind: str, name: str) -> float:
        return json.loads((workdir / f"{kind}-{name}").read_text())

    assert moment("started", second) >= moment("ended", first)


def test_a_killed_build_process_leaves_no_job_running_on_the_workers(workdir, cluster):
    """SIGKILL: no cancel is sent, but the scheduler drops the dead client's tasks, and the
    workers stop the runners (and kernels) of those that were running."""
    marker = workdir / "sleeping"
    write_notebook(
        workdir / "sleeper.ipynb",
        f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getppid()))\ntime.sleep(600)",
    )
    (workdir / "pipeline.yaml").write_text(
        f"executor: {{dotted_path: nbpipe.executors.Dask, address: '{cluster.address}'}}\n"
        "tasks:\n  - source: sleeper.ipynb\n    product: sleeper.html\n"
    )
    before = set(cluster.kernels())
    build = subprocess.Popen(
        [sys.executable, "-m", "nbpipe", "build"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_marker(marker, "the notebook to run on a worker", timeout=120)
        assert set(cluster.kernels()) - before, "a kernel runs the notebook"
    finally:
        build.kill()
        build.wait()
    wait_until(
        lambda: not set(cluster.kernels()) - before,
        lambda: f"the kernel to stop ({set(cluster.kernels()) - before})",
    )
    assert not Path("sleeper.html").exists()
    assert len(cluster.workers()) == 2, "the workers stay up"


@pytest.fixture(scope="module")
def fragile_worker(tmp_path_factory):
    """One single-threaded worker, on a scheduler that gives up on a task at the first death of
    its worker (``allowed-failures`` 0): the jobs it holds end with ``KilledWorker`` at once."""
    folder = tmp_path_factory.mktemp("dask-fragile")
    fragile = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with Cluster(folder, ("fragile",), env=fragile) as cluster:
        yield cluster


def test_a_job_lost_while_it_waited_on_a_worker_is_queued_again_unstarted(workdir, fragile_worker):
    """The worker dies while one job runs and the other, handed ahead, waits on it: both come
    back as lost workers. The running one's task is retried (started again); the waiting one's
    task was never started, and simply runs later, starting once."""
    cluster = fragile_worker
    marker = workdir / "hanging"
    dag = DAG(executor=Dask(address=cluster.address))
    PythonCallable(hang_once, File("hung.txt"), dag, name="hung", params={"marker": str(marker)})
    PythonCallable(write_pid, File("waiting.txt"), dag, name="waiting")
    events, reports = [], []
    builder = threading.Thread(target=lambda: reports.append(dag.build(observers=[events.append])))
    builder.start()

    def waiting_on_the_worker() -> set[str]:
        [states] = cluster.client.run(nbpipe_task_states).values()
        return {key.split("-")[1] for key, state in states.items() if state == "ready"}

    try:
        wait_for_marker(marker, "the hanging task to start on the worker")
        wait_until(lambda: "waiting" in waiting_on_the_worker(), "the other job to wait there")
        os.kill(int(marker.read_text()), signal.SIGKILL)  # the Dask worker
    finally:
        builder.join(timeout=600)
    assert reports, "the build finished"
    assert {row.status for row in reports[0]} == {TaskStatus.EXECUTED}
    assert Path("hung.txt").read_text() == "second run" and Path("waiting.txt").exists()
    started = [event.task for event in events if event.kind == "task_started"]
    assert sorted(started) == ["hung", "hung", "waiting"]
    kinds = [(event.kind, event.task) for event in events]
    for name in ("hung", "waiting"):
        assert kinds.index(("task_started", name)) < kinds.index(("task_finished", name))
    cluster.wait_for_workers(1)  # the nanny restarted the killed worker
