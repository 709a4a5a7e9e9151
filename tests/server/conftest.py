"""Fixtures for the server extension's tests: a real Jupyter server (pytest-jupyter), real
``nbpipe build`` child processes, real kernels. Pipelines are written under the server root."""

from __future__ import annotations

import pytest

# pytest-jupyter has no entry point: bring its fixtures (and its async test runner) in here.
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def nbpipe_config():
    """Extra ``NbpipeApp`` settings for one test module (override it in the module)."""
    return {}


@pytest.fixture
def jp_server_config(state_dir, nbpipe_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbpipe.server": True},
            "allow_unauthenticated_access": False,
        },
        "NbpipeApp": {"state_dir": str(state_dir), "cancel_grace_period": 2.0, **nbpipe_config},
    }
