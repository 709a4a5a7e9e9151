"""jupyter_client's kernelspec manager, without importing IPython.

jupyter_client's ``KernelSpecManager`` imports IPython (most of a CPU-second) only to find the
old ``~/.ipython/kernels`` folder. The workers' kernel managers use this one; rendering reads
the kernelspec files without jupyter_client at all (``kernelspec_files``).
"""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager
from traitlets import default

from nbpipe.notebooks.kernelspec_files import kernel_dirs


class QuickKernelSpecManager(KernelSpecManager):
    """jupyter_client's KernelSpecManager with the same folders, the IPython one found by
    IPython's own rule (``$IPYTHONDIR``, else ``~/.ipython``) instead of importing IPython."""

    @default("kernel_dirs")
    def _kernel_dirs_default(self) -> list[str]:
        return kernel_dirs()
