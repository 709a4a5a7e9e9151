"""A notebook kernel's end: killed, as nbpipe did, against asked to exit, as papermill does and
nbpipe does now (``nbpipe.notebooks.kernels.exiting``).

    python benchmarks/kernel_exit.py                 # forked kernels, 10 of each
    python benchmarks/kernel_exit.py --spawned --repeat 5

Each round starts a kernel the way a worker does (forked from a kernel template, or spawned with
``--spawned``), runs one cell that writes a few bytes to a file it never closes, then ends the
kernel either way, alternating. Reported: the median time of each way, and how many bytes of the
file survived (a killed kernel loses what was left in the file's buffer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def start(folder: str, forked: bool):
    from jupyter_core.utils import run_sync

    from nbpipe.notebooks.provisioner import ForkingKernelManager, OwnKernelManager
    from nbpipe.notebooks.source import history_in_memory, quiet_kernel_arguments

    manager = (
        ForkingKernelManager(kernel_name="python3", preload=[])
        if forked
        else OwnKernelManager(kernel_name="python3")
    )
    arguments = history_in_memory("python3", quiet_kernel_arguments("python3"))  # as a build's
    run_sync(manager.start_kernel)(cwd=folder, extra_arguments=arguments)
    client = manager.client()
    client.start_channels()
    run_sync(client.wait_for_ready)(timeout=60)
    return manager, client


def print_nothing(message: dict) -> None:
    """The cell's result (the count ``write`` returns) is not for the terminal."""


def end(manager, killed: bool) -> float:
    from nbpipe.notebooks.kernels import exiting, stop_kernel

    began = time.perf_counter()
    if killed:
        stop_kernel(manager)
    else:
        with exiting(manager):
            pass
    return time.perf_counter() - began


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="kernels ended each way")
    parser.add_argument("--spawned", action="store_true", help="spawned kernels, not forked")
    args = parser.parse_args(argv)

    from jupyter_core.utils import run_sync

    from nbpipe.notebooks.forking import stop_template, template_for
    from nbpipe.notebooks.imports import import_quickly

    import_quickly(["papermill"])
    folder = tempfile.mkdtemp(prefix="nbpipe-kernel-exit-")
    if not args.spawned:
        template_for((), folder).ready()
    times: dict[str, list[float]] = {"killed": [], "asked to exit": []}
    kept: dict[str, set[int]] = {"killed": set(), "asked to exit": set()}
    try:
        for index in range(args.repeat):
            for way in times:
                manager, client = start(folder, forked=not args.spawned)
                path = os.path.join(folder, f"{index}-{way}.txt")
                code = f"f = open({path!r}, 'w'); f.write('kept')"
                run_sync(client._async_execute_interactive)(
                    code, timeout=60, output_hook=print_nothing
                )
                client.stop_channels()
                times[way].append(end(manager, killed=way == "killed"))
                kept[way].add(os.path.getsize(path))
    finally:
        if not args.spawned:
            stop_template()
    kind = "spawned" if args.spawned else "forked"
    for way, spent in times.items():
        print(
            f"{kind} kernel {way}: median {statistics.median(spent) * 1000:.1f} ms "
            f"({min(spent) * 1000:.0f}-{max(spent) * 1000:.0f}), bytes kept {sorted(kept[way])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
