"""A disk that fills up mid-build: writes fail with an OS error. Simulated with a file size limit
on the build's processes (RLIMIT_FSIZE): a write past it fails with EFBIG ("File too large") as a
full disk fails one with ENOSPC, through the same code paths, without needing a small filesystem."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest
from cli_helpers import json_lines, write

LIMIT = 1024 * 1024  # bytes a process of the build may write to one file

TASKS = """\
from pathlib import Path


def big(product, size):
    Path(product).write_bytes(b"x" * size)


def small(product):
    Path(product).write_text("small")
"""


def pipeline(executor: str, size: int) -> str:
    return f"""\
executor: {executor}
tasks:
  - source: fns.big
    product: out/big.bin
    params: {{size: {size}}}
  - source: fns.small
    product: out/small.txt
"""


def build_with_file_size_limit(project):
    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    environment = {k: v for k, v in os.environ.items() if k != "NBPIPE_ENTRY_POINT"}
    return subprocess.run(
        [sys.executable, "-m", "nbpipe", "build", "--json"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )


@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_a_write_that_fails_for_space_fails_its_task_and_keeps_the_last_good_product(
    project, executor
):
    write(project / "fns.py", TASKS)
    write(project / "pipeline.yaml", pipeline(executor, size=1000))
    first = build_with_file_size_limit(project)
    assert first.returncode == 0, first.stdout + first.stderr
    good = (project / "out/big.bin").read_bytes()

    write(project / "pipeline.yaml", pipeline(executor, size=2 * LIMIT))
    (project / "out/small.txt").unlink()
    result = build_with_file_size_limit(project)

    assert result.returncode == 1, result.stdout + result.stderr
    events = json_lines(result.stdout)
    failed = [e for e in events if e["event"] == "task_failed"]
    assert [e["task"] for e in failed] == ["big"]
    assert "File too large" in failed[0]["failure"]["message"]
    assert [e["task"] for e in events if e["event"] == "task_finished"] == ["small"]
    assert [e["outcome"] for e in events if e["event"] == "build_finished"] == ["failed"]
    assert "Traceback" not in result.stderr
    assert (project / "out/big.bin").read_bytes() == good, "the last good product is kept"
    assert (project / "out/small.txt").read_text() == "small"
    assert not [p.name for p in (project / "out").iterdir() if p.name.startswith(".nbpipe-")]

    status = subprocess.run(
        [sys.executable, "-m", "nbpipe", "status", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    states = {task["name"]: task["state"] for task in json.loads(status.stdout)["tasks"]}
    assert states == {"big": "outdated", "small": "up to date"}, "big still needs building"
