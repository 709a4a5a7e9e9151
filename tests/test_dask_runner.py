"""A Dask runner on its own (``nbpipe.executors.dask.runner_main``, started as a Dask worker
starts one, without the cluster): after a notebook that warmed the next kernel, the runner drops
that kernel when its connection ends (its worker went away) and, still connected, after its idle
limit (a build whose process was killed never closes its pool). Real runner, template and
kernels; conditions waited on, never slept for."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

import psutil
import pytest
from notebook_files import still_running, write_notebook
from wait_helpers import wait_until

from nbpipe import DAG
from nbpipe.engine.products import new_token, staged_product
from nbpipe.executors.worker import Outcome, run_job
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner


def start_runner(idle_limit: float) -> tuple[subprocess.Popen, Connection]:
    """A runner process with the given idle limit, and the worker's end of its connection."""
    ours, theirs = socket.socketpair()
    code = (
        "import nbpipe.executors.dask as dask\n"
        f"dask.WARM_KERNEL_IDLE_LIMIT = {idle_limit}\n"
        f"dask.runner_main({theirs.fileno()})\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    theirs.close()
    return process, Connection(ours.detach())


def run_notebook_warming_the_next(connection: Connection, workdir) -> Outcome:
    """Has the runner run one notebook whose job warms the next notebook's kernel."""
    write_notebook(workdir / "nb.ipynb", "print('ran')")
    dag = DAG()
    task = NotebookRunner("nb.ipynb", File("out/nb.ipynb"), dag, name="nb")
    dag.render()
    task.prepare_folders()
    job = task.make_job(staged_product(task.product, new_token()), more_to_come=True)
    payload = pickle.dumps((run_job, (job,)))
    connection.send_bytes(pickle.dumps(("nb", payload, str(workdir), sys.path)))
    while not isinstance(answer := pickle.loads(connection.recv_bytes()), Outcome):
        pass  # progress reports
    return answer


def kernels_under(runner: subprocess.Popen) -> list[int]:
    """The kernels of the runner: its template's children (the job is over: only a warm
    kernel can be left)."""
    try:
        below = psutil.Process(runner.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return still_running(p.pid for p in below if p.ppid() != runner.pid)


@pytest.fixture
def runner(request):
    process, connection = start_runner(request.param)
    yield process, connection
    connection.close()
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("runner", [600.0], indirect=True)
def test_a_runner_drops_its_warm_kernel_when_its_connection_ends(workdir, runner):
    process, connection = runner
    assert run_notebook_warming_the_next(connection, workdir).state == "ok"
    warm = kernels_under(process)
    assert len(warm) == 1, "the next notebook's kernel is kept warm"

    connection.close()  # its Dask worker went away

    assert process.wait(timeout=60) == 0
    wait_until(lambda: not still_running(warm), lambda: f"the warm kernel {warm} to stop")


@pytest.mark.parametrize("runner", [2.0], indirect=True)
def test_an_idle_runner_drops_its_warm_kernel_and_stays(workdir, runner):
    process, connection = runner
    assert run_notebook_warming_the_next(connection, workdir).state == "ok"
    warm = kernels_under(process)
    assert len(warm) == 1, "the next notebook's kernel is kept warm"

    wait_until(lambda: not still_running(warm), lambda: f"the idle limit to stop {warm}")

    assert process.poll() is None, "the runner stays, for the next job"
    assert run_notebook_warming_the_next(connection, workdir).state == "ok"
