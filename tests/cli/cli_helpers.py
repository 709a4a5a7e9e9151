"""Helpers for the CLI tests: each runs ``python -m nbpipe`` in a child process, on a project it
writes into a temporary folder. (There is no conftest.py here: a second module named ``conftest``
would shadow tests/conftest.py, which other tests import from.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def notebook(path: Path, body: str = "print('hello')", parameters: str = "") -> Path:
    """A percent-format notebook with a parameters cell (``upstream = None``)."""
    return write(
        path,
        f'# %% tags=["parameters"]\nupstream = None\nproduct = None\n{parameters}\n\n# %%\n{body}\n',
    )


def nbpipe(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Runs ``python -m nbpipe ARGS`` in ``cwd``; returns the CompletedProcess (text)."""
    environment = dict(os.environ)
    environment.pop("NBPIPE_ENTRY_POINT", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nbpipe", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def outputs_of(ipynb: Path) -> str:
    """Every text output of an executed notebook, joined."""
    cells = json.loads(ipynb.read_text())["cells"]
    return "".join(
        "".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])
    )
