"""Shared fixtures. Tests build real pipelines in a temporary folder: real kernels, real papermill."""

from __future__ import annotations

import json
from pathlib import Path

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


def write_notebook(
    path: Path,
    *cells: str,
    parameters: str = "upstream = None\nproduct = None",
    kernel: str | None = None,
) -> Path:
    """Writes an .ipynb whose first code cell is tagged ``parameters``."""

    def code(source, tags=()):
        return {
            "cell_type": "code",
            "metadata": {"tags": list(tags)},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    metadata = {"language_info": {"name": "python"}}
    if kernel:
        metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    notebook = {
        "cells": [code(parameters, ["parameters"]), *(code(cell) for cell in cells)],
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path
