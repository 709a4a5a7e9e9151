"""Ctrl-C and SIGTERM stop a build within seconds: no kernel or worker survives, and no product or
staged file is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import json_lines, notebook, write


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


def _wait_for_kernel(process: subprocess.Popen) -> dict[int, str]:
    deadline = time.time() + 60
    while time.time() < deadline:
        family = _descendants(process.pid)
        if any("ipykernel" in cmdline for cmdline in family.values()):
            time.sleep(1.0)  # let the kernel reach the sleeping cell
            return _descendants(process.pid)
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("no kernel started")


@pytest.mark.parametrize(
    ("executor", "how", "code"),
    [
        ("parallel", "SIGTERM", 143),  # as the server stops a build (with --json)
        ("serial", "SIGINT", 130),
        ("parallel", "Ctrl-C", 130),  # SIGINT to the whole process group, kernels included
    ],
)
def test_interrupt_stops_kernels_and_leaves_no_product(project, executor, how, code):
    notebook(project / "sleepy.py", body="import time\ntime.sleep(120)")
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
    family = _wait_for_kernel(process)

    sent = time.time()
    if how == "Ctrl-C":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(getattr(signal, how))
    stdout, stderr = process.communicate(timeout=30)
    took = time.time() - sent

    assert process.returncode == code, stderr
    assert took < 10, f"stopping took {took:.1f} s"
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
    deadline = time.time() + 5  # a killed process may take a moment to be reaped
    while _alive(family) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(family), {pid: family[pid] for pid in _alive(family)}
    left = [p for p in project.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".html")]
    left += list(project.rglob(".nbpipe-*")) + list(project.rglob("*.metadata"))
    if how == "Ctrl-C":  # the kernel saw the SIGINT too: its partial notebook may be kept
        left = [p for p in left if not p.name.endswith(".failed.ipynb")]
    assert left == []


def test_a_build_whose_reader_is_gone_still_stops_cleanly(project, tmp_path):
    """The server that read the JSON lines died (its end of the pipe is closed), then the build
    got SIGTERM: events can no longer be written, and still the build stops as it should."""
    notebook(project / "sleepy.py", body="import time\ntime.sleep(120)")
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
    family = _wait_for_kernel(process)
    process.stdout.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143
    log = (tmp_path / "stderr.txt").read_text()
    assert "interrupted (SIGTERM)" in log and "Traceback" not in log, log
    deadline = time.time() + 5
    while _alive(family) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(family), {pid: family[pid] for pid in _alive(family)}
    assert (
        list(project.rglob(".nbpipe-*")) == [] and not (project / "out" / "sleepy.ipynb").exists()
    )


def test_interrupting_a_function_mid_write_leaves_no_staged_file(project):
    write(
        project / "slow.py",
        """
        import time

        def write_slowly(product):
            with open(product, "w") as f:
                f.write("half")
                f.flush()
                time.sleep(120)
        """,
    )
    write(project / "pipeline.yaml", "- {source: slow.write_slowly, product: out/data.txt}\n")
    process = _start(project)
    deadline = time.time() + 30
    while not list((project / "out").glob(".nbpipe-*")) and time.time() < deadline:
        time.sleep(0.05)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 143, stderr
    assert list((project / "out").iterdir()) == []
