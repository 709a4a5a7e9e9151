"""Kernels started at the same moment by several processes (the workers of a build, or of
``nbpipe run --grid``) never take each other's sockets: each gets its own, talks to its own
client, and leaves nothing behind. jupyter_client's free TCP ports (bound, released, then bound
again by the kernel) could be picked by two processes at once, and one kernel then died with
``ZMQError: Address already in use``. Real kernels, forked and spawned; marker files, no sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
from wait_helpers import wait_until

STARTER = Path(__file__).with_name("kernel_starter.py")
PROCESSES = 4
FORKED = 10  # per process
SPAWNED = 1  # per process: a new interpreter each, so few on two cores


def test_kernels_started_at_once_by_several_processes_never_collide(tmp_path):
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(PROCESSES)]
    starters = [
        subprocess.Popen(
            [sys.executable, str(STARTER), str(FORKED), str(SPAWNED), str(marker), str(go)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        for marker in ready
    ]
    try:
        wait_until(
            lambda: (
                all(marker.exists() for marker in ready)
                or any(starter.poll() is not None for starter in starters)
            ),
            "every starter to have its kernel managers ready",
            timeout=120,
        )
        go.touch()
        outputs = [starter.communicate(timeout=240)[0] for starter in starters]
    finally:
        for starter in starters:
            if starter.poll() is None:
                starter.kill()
                starter.wait()
    assert [starter.returncode for starter in starters] == [0] * PROCESSES
    kernels = [kernel for output in outputs for kernel in json.loads(output)]

    assert len(kernels) == PROCESSES * (FORKED + SPAWNED)
    assert [k for k in kernels if "error" in k] == [], "every kernel started and answered"
    assert all(k["said"] == k["pid"] for k in kernels), "each client talked to its own kernel"
    assert len({k["pid"] for k in kernels}) == len(kernels)
    assert len({k["connection_file"] for k in kernels}) == len(kernels)
    left = [k["pid"] for k in kernels if psutil.pid_exists(k["pid"])]
    wait_until(lambda: not [pid for pid in left if _running(pid)], "the kernels to end", timeout=30)
    folders = {os.path.dirname(k["connection_file"]) for k in kernels}
    assert [f for f in folders if os.path.exists(f) and "nbpipe-kernel-" in f] == [], (
        "each kernel's private socket folder is removed with it"
    )
    assert not [k for k in kernels if os.path.exists(k["connection_file"])]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
