"""Ctrl-C and SIGTERM stop a build: no kernel or worker survives, and no product or staged file is
left behind. (How fast it stops: benchmarks/stop_time.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import json_lines, notebook, write
from wait_helpers import touch_code, wait_until


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) for every process, read from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        table[int(entry)] = (int(parent), state, cmdline)
    return table


def _descendants(root: int) -> dict[int, str]:
    table = _processes()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _state, cmdline) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = cmdline
                frontier.append(pid)
    return found


def _alive(pids) -> list[int]:
    table = _processes()
    return [pid for pid in pids if pid in table and table[pid][1] != "Z"]


def _start(project: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nbpipe", "build", *options],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _sleepy_notebook(project: Path) -> Path:
    """sleepy.py, a notebook that creates the marker file it returns, then sleeps in that cell."""
    reached = project.parent / "sleepy.reached"
    notebook(project / "sleepy.py", body=f"{touch_code(reached)}\nimport time\ntime.sleep(120)")
    return reached


def _wait_until_reached(process: subprocess.Popen, reached: Path, what: str) -> dict[int, str]:
    """Waits for the build's code to create the marker file ``reached``; returns the build's
    processes then (kernels and workers included). Fails at once if the build ends first."""

    def is_reached() -> bool:
        if reached.exists():
            return True
        if process.poll() is not None:
            raise AssertionError(f"the build ended before {what}: {process.communicate()}")
        return False

    wait_until(is_reached, what)
    return _descendants(process.pid)


def _all_ended(family: dict[int, str]) -> None:
    """Waits until none of ``family`` runs (a killed process may take a moment to be reaped)."""
    wait_until(
        lambda: not _alive(family),
        lambda: f"the build's processes to end: { ({p: family[p] for p in _alive(family)}) }",
        timeout=15,
    )


@pytest.mark.parametrize(
    ("executor", "how", "code"),
    [
        ("parallel", "SIGTERM", 143),  # as the server stops a build (with --json)
        ("serial", "SIGINT", 130),
        ("parallel", "Ctrl-C", 130),  # SIGINT to the whole process group, kernels included
    ],
)
def test_interrupt_stops_kernels_and_leaves_no_product(project, executor, how, code):
    reached = _sleepy_notebook(project)
    write(
        project / "pipeline.yaml",
        f"""
        executor: {executor}
        tasks:
          - source: sleepy.py
            nb_product_key: [nb, html]
            product: {{nb: out/sleepy.ipynb, html: out/sleepy.html}}
        """,
    )
    process = _start(project, *(["--json"] if how == "SIGTERM" else []))
    family = _wait_until_reached(process, reached, "the notebook to reach its sleeping cell")

    if how == "Ctrl-C":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(getattr(signal, how))
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    if how == "SIGTERM":
        *_, finished, summary = json_lines(stdout)
        assert finished["event"] == "build_finished" and finished["outcome"] == "interrupted"
        assert (summary["outcome"], summary["exit_code"], summary["signal"]) == (
            "interrupted",
            143,
            "SIGTERM",
        )
        assert summary["report"]["tasks"][0]["status"] == "cancelled"
    else:
        assert "cancelled" in stdout  # the report of what happened
    _all_ended(family)
    left = [p for p in project.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".html")]
    left += list(project.rglob(".nbpipe-*")) + list(project.rglob("*.metadata"))
    if how == "Ctrl-C":  # the kernel saw the SIGINT too: its partial notebook may be kept
        left = [p for p in left if not p.name.endswith(".failed.ipynb")]
    assert left == []


def test_a_build_whose_reader_is_gone_still_stops_cleanly(project, tmp_path):
    """The server that read the JSON lines died (its end of the pipe is closed), then the build
    got SIGTERM: events can no longer be written, and still the build stops as it should."""
    reached = _sleepy_notebook(project)
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - source: sleepy.py
            product: out/sleepy.ipynb
        """,
    )
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbpipe", "build", "--json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    family = _wait_until_reached(process, reached, "the notebook to reach its sleeping cell")
    process.stdout.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    log = (tmp_path / "stderr.txt").read_text()
    assert "interrupted (SIGTERM)" in log and "Traceback" not in log, log
    _all_ended(family)
    assert (
        list(project.rglob(".nbpipe-*")) == [] and not (project / "out" / "sleepy.ipynb").exists()
    )


def test_interrupting_a_function_mid_write_leaves_no_staged_file(project):
    reached = project.parent / "half-written"
    write(
        project / "slow.py",
        f"""
        import time

        def write_slowly(product):
            with open(product, "w") as f:
                f.write("half")
                f.flush()
                {touch_code(reached)}
                time.sleep(120)
        """,
    )
    write(project / "pipeline.yaml", "- {source: slow.write_slowly, product: out/data.txt}\n")
    process = _start(project)
    _wait_until_reached(process, reached, "the function to half-write its product")
    assert list((project / "out").glob(".nbpipe-*")), "the product is written to a staged file"

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 143, stderr
    assert list((project / "out").iterdir()) == []
