"""Task functions for the engine tests. They live in an importable module so that the Parallel
executor can send them to spawned workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nbpipe.exceptions import DAGBuildEarlyStop


def write_name(product, name="x"):
    Path(product).write_text(name)


def concat(product, upstream):
    text = "".join(Path(upstream[name]).read_text() for name in sorted(upstream))
    Path(product).write_text(text + "+")


def write_param(product, value):
    Path(product).write_text(str(value))


def crash(product):
    raise ValueError("this task is broken")


def crash_downstream(product, upstream):
    raise ValueError("this task is broken")


def half_write_then_crash(product):
    with open(product, "w") as f:
        f.write("half")
    raise RuntimeError("crashed mid-write")


def early_stop_root(product):
    raise DAGBuildEarlyStop("Ending gracefully")


def early_stop():
    raise DAGBuildEarlyStop("Ending gracefully")


def die(product):
    os._exit(3)


def slow(product, seconds=0.5):
    time.sleep(seconds)
    Path(product).write_text("slow")


def link(product, upstream):
    Path(product).write_text("")


def no_output(product):
    pass


def two_files(product):
    Path(product["a"]).write_text("a")
    Path(product["b"]).write_text("b")


def prepared_notebook_stack(product):
    """Writes what this process has ready for notebooks: nbformat's compiled validators (their
    versions) and nbpipe's built exporters; and how its garbage collector stands (how many
    objects it leaves alone, whether it runs)."""
    import gc
    import json
    import sys

    validator = sys.modules.get("nbformat.validator")
    convert = sys.modules.get("nbpipe.notebooks.convert")
    ready = {
        "validators": sorted([key[1], key[2]] for key in getattr(validator, "validators", {})),
        "exporters": convert._exporter.cache_info().currsize if convert else 0,
        "frozen": gc.get_freeze_count(),
        "collecting": gc.isenabled(),
    }
    Path(str(product)).write_text(json.dumps(ready))
