"""Finding installed kernelspecs without importing IPython.

jupyter_client's ``KernelSpecManager`` imports IPython (most of a CPU-second) only to find the
old ``~/.ipython/kernels`` folder; the building process looks kernels up at render time, and
runs no kernel of its own under ``Parallel``, so that import would be pure cost there.
"""

from __future__ import annotations

import os

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import jupyter_path
from traitlets import default


class QuickKernelSpecManager(KernelSpecManager):
    """jupyter_client's KernelSpecManager with the same folders, found by IPython's own rule
    for its directory (``$IPYTHONDIR``, else ``~/.ipython``) instead of importing IPython."""

    @default("kernel_dirs")
    def _kernel_dirs_default(self) -> list[str]:
        ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(
            os.path.expanduser("~"), ".ipython"
        )
        return [*jupyter_path("kernels"), os.path.join(ipython_dir, "kernels")]
