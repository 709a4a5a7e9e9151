"""Small notebooks for tests, and a way to find the processes a test left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path


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


def processes_with_marker(marker: str) -> list[int]:
    """Live processes (workers, kernels) whose environment carries ``marker``; not multiprocessing's
    resource tracker, a helper of the test process for its whole life (started by the first
    spawn-method pool it makes, so with the marker when that pool was a build's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "environ").read_bytes() and not _resource_tracker(
                    entry
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _resource_tracker(process: Path) -> bool:
    command = (process / "cmdline").read_bytes()
    parent = (process / "stat").read_text().rsplit(")", 1)[1].split()[1]
    return b"multiprocessing.resource_tracker" in command and parent == str(os.getpid())


def still_running(pids) -> list[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped is not)."""
    import psutil

    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found
