"""``nbpipe build`` run as a user runs it, in a process of its own, for tests that interrupt it
or watch its processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_build(project: Path, *, own_process_group: bool = False) -> subprocess.Popen:
    """Starts ``python -m nbpipe build`` in ``project``, its output captured as text.
    ``own_process_group``: as a terminal's foreground job, so that a test's Ctrl-C
    (``os.killpg(pid, SIGINT)``) reaches it and what it started, and nothing else."""
    return subprocess.Popen(
        [sys.executable, "-m", "nbpipe", "build"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_process_group,
    )
