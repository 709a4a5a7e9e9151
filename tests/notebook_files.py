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
    """Live processes (workers, kernels) whose environment carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
