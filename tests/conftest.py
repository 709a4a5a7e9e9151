"""Shared fixtures. Tests build real pipelines in a temporary folder: real kernels, real papermill."""

from __future__ import annotations

import pytest

from nbpipe.executors import Parallel, Serial

EXECUTORS = {
    "serial": lambda: Serial(),
    "fork": lambda: Parallel(processes=2, start_method="fork"),
    "spawn": lambda: Parallel(processes=2, start_method="spawn"),
}


@pytest.fixture(params=list(EXECUTORS))
def executor(request):
    """Every test that takes it runs under Serial and under Parallel with fork and spawn."""
    return EXECUTORS[request.param]()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
