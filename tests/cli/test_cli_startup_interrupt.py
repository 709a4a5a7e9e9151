"""Ctrl-C while the Parallel executor's workers are still starting (importing papermill, warming
the first kernel): the build stops quietly, with no "Exception in initializer" traceback, and
nothing of it keeps running."""

from __future__ import annotations

import os
import signal

import psutil
from build_process import start_build
from cli_helpers import notebook, write
from wait_helpers import wait_until


def test_ctrl_c_during_worker_start_up_prints_no_traceback(project):
    notebook(project / "first.py", body="print('first')")
    notebook(project / "second.py", body="print('second')")
    write(
        project / "pipeline.yaml",
        """
        executor: {dotted_path: nbpipe.executors.Parallel, processes: 2, start_method: fork}
        tasks:
          - {source: first.py, product: out/first.ipynb}
          - {source: second.py, product: out/second.ipynb}
        """,
    )
    process = start_build(project, own_process_group=True)
    build = psutil.Process(process.pid)
    workers = wait_until(
        lambda: build.children() if process.poll() is None else ["ended"],
        "the build's worker processes to start",
    )
    assert workers != ["ended"], process.communicate()
    family = build.children(recursive=True)

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Exception in initializer" not in stderr and "Traceback" not in stderr, stderr
    _, alive = psutil.wait_procs(family, timeout=15)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
