"""``kill -9`` of a build under Parallel: its workers and kernels die with it (they are told to as
they start), so nothing of it keeps running, holds its output pipe, or writes files later."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest
from cli_helpers import notebook, write
from wait_helpers import touch_code, wait_for_marker


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_killed_build_leaves_no_worker_or_kernel(project, start_method):
    reached = project.parent / "reached"
    notebook(project / "sleepy.py", body=f"{touch_code(reached)}\nimport time\ntime.sleep(300)")
    notebook(project / "other.py", body="print('other')")
    write(
        project / "pipeline.yaml",
        f"""
        executor: {{dotted_path: nbpipe.executors.Parallel, processes: 2, start_method: {start_method}}}
        tasks:
          - {{source: sleepy.py, product: out/sleepy.ipynb}}
          - {{source: other.py, product: out/other.ipynb}}
        """,
    )
    build = subprocess.Popen(
        [sys.executable, "-m", "nbpipe", "build", "--json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_marker(reached, "the notebook to reach its sleeping cell")
    family = psutil.Process(build.pid).children(recursive=True)
    assert any("ipykernel" in " ".join(p.cmdline()) for p in family), "a kernel was running"

    build.kill()
    build.stdout.read()  # the output pipe ends: no worker holds it open
    build.wait()

    _, alive = psutil.wait_procs(family, timeout=20)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
