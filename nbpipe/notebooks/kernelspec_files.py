"""The installed kernelspecs, read from their ``kernel.json`` files without importing
jupyter_client.

Rendering a notebook task looks its kernel up (its language; whether its kernel can be forked).
jupyter_client's ``KernelSpecManager`` would answer the same, but importing jupyter_client costs
about a quarter of a CPU-second (zmq, tornado, its clients and channels), paid before anything
else: by every ``nbpipe status`` and no-op build of a notebook pipeline, and, in a build,
before the kernel template can start (measured: the template started 0.15-0.25 s later).

The files are found by jupyter_client's own rules: the ``kernels`` folders of
``jupyter_path()`` and ``<IPython dir>/kernels``, earlier folders first; a kernel's name is its
folder's name, lowercased; ``python3`` falls back to ipykernel's built-in spec when no folder
has it. Specs this reading does not settle, one naming a kernel provisioner (whether that is
installed is jupyter_client's to say) or the built-in ``python3``, are left to jupyter_client
(``installed_kernelspecs`` then asks it for all).
"""

from __future__ import annotations

import json
import os
from typing import Any

from jupyter_core.paths import jupyter_path

NATIVE_KERNEL = "python3"


def kernel_dirs() -> list[str]:
    """Where kernelspecs are installed, earlier folders first (an IPython dir found by IPython's
    own rule, ``$IPYTHONDIR`` else ``~/.ipython``, without importing IPython)."""
    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    return [*jupyter_path("kernels"), os.path.join(ipython_dir, "kernels")]


def installed_kernelspecs() -> dict[str, dict[str, Any]]:
    """Name -> ``{"resource_dir": ..., "spec": {...}}``, as ``KernelSpecManager.get_all_specs``
    returns them."""
    specs: dict[str, dict[str, Any]] = {}
    for name, resource_dir in _kernel_folders().items():
        spec = _read_spec(resource_dir)
        if spec is None:
            continue  # unreadable or invalid: jupyter_client skips it too
        if spec["metadata"].get("kernel_provisioner"):
            return _from_jupyter_client()
        specs[name] = {"resource_dir": resource_dir, "spec": spec}
    if NATIVE_KERNEL not in specs:
        return _from_jupyter_client()
    return specs


def _kernel_folders() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in kernel_dirs():
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            if os.path.isfile(os.path.join(path, "kernel.json")):
                found.setdefault(entry.lower(), path)
    return found


def _read_spec(resource_dir: str) -> dict[str, Any] | None:
    """The spec with jupyter_client's defaults filled in (its ``KernelSpec.to_dict()``)."""
    try:
        with open(os.path.join(resource_dir, "kernel.json"), encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("argv", []), list):
        return None
    interrupt_mode = str(data.get("interrupt_mode", "signal")).lower()
    if interrupt_mode not in ("signal", "message"):
        return None
    return {
        "argv": data.get("argv", []),
        "env": data.get("env") or {},
        "display_name": data.get("display_name", ""),
        "language": data.get("language", ""),
        "interrupt_mode": interrupt_mode,
        "metadata": data.get("metadata") or {},
        "kernel_protocol_version": data.get("kernel_protocol_version", ""),
    }


def _from_jupyter_client() -> dict[str, dict[str, Any]]:
    from nbpipe.notebooks.kernelspecs import QuickKernelSpecManager

    return QuickKernelSpecManager().get_all_specs()
