"""A program for tests/test_concurrent_kernels.py: prepares kernel managers the way a worker does
(``nbpipe.notebooks.kernels.new_kernel_manager``: FORKED kernels from this process's template,
SPAWNED ones as new processes), says it is ready (creates READY), waits for GO, then starts all
its kernels at once, asks each for its pid, shuts them down and prints one JSON list: per kernel
the pid its manager started, the pid the kernel reported, and its connection file; or the error.

    python tests/kernel_starter.py FORKED SPAWNED READY GO
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from wait_helpers import wait_for_marker

from nbpipe.notebooks.kernels import new_kernel_manager

ARGUMENTS = ("--IPKernelApp.log_level=CRITICAL",)


async def run_one(manager) -> dict:
    try:
        await manager.start_kernel(extra_arguments=list(ARGUMENTS))
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=120)
        request = client.execute("import os; print(os.getpid(), end='')")
        said = ""
        while True:
            message = await client.get_iopub_msg(timeout=120)
            if message["parent_header"].get("msg_id") != request:
                continue
            if message["msg_type"] == "stream":
                said += message["content"]["text"]
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        return {
            "pid": manager.provisioner.pid,
            "said": int(said),
            "connection_file": manager.connection_file,
        }
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        if hasattr(manager, "close_clients"):
            manager.close_clients()
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)


async def run_all(managers) -> list[dict]:
    return await asyncio.gather(*(run_one(manager) for manager in managers))


def main() -> None:
    forked, spawned, ready, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cwd = os.getcwd()
    managers = [new_kernel_manager(("python3", cwd, ARGUMENTS, ())) for _ in range(forked)]
    managers += [new_kernel_manager(("python3", cwd, ARGUMENTS, None)) for _ in range(spawned)]
    Path(ready).touch()
    wait_for_marker(Path(go), "the test's signal to start the kernels", timeout=120)
    print(json.dumps(asyncio.run(run_all(managers))))


if __name__ == "__main__":
    main()
