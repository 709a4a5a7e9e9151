"""Shared fixtures. Tests build real pipelines in a temporary folder: real kernels, real papermill."""

from __future__ import annotations

import pytest

from nbpipe.executors import Parallel, Serial

EXECUTORS = {
    "serial": lambda: Serial(),
    "fork": lambda: Parallel(processes=2, start_method="fork"),
    "spawn": lambda: Parallel(processes=2, start_method="spawn"),
    "dask": None,  # Dask on the session's LocalCluster (2 workers): see the executor fixture
}


@pytest.fixture(params=list(EXECUTORS))
def executor(request):
    """Every test that takes it runs under Serial, under Parallel with fork and spawn, and under
    Dask on one LocalCluster shared by the whole session."""
    if request.param == "dask":
        from nbpipe.executors import Dask

        return Dask(client=request.getfixturevalue("dask_client"))
    return EXECUTORS[request.param]()


@pytest.fixture(scope="session")
def dask_client():
    """One LocalCluster (2 single-threaded worker processes) for every Dask test of the session:
    starting one per test would cost seconds each. Closed, with its workers, at the end. Its
    dashboard (bokeh, from the dask extra) listens on a free port of 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
