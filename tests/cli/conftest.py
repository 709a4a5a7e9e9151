"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def project(tmp_path):
    """The project folder; tests write pipeline.yaml and its sources into it."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder
