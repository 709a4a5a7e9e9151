"""``python -m nbpipe.notebooks.launcher -f CONNECTION_FILE [ARGS]``: a spawned IPython kernel
that ends as nbpipe's forked kernels end (``nbpipe.notebooks.kernel_end``).

nbpipe's kernel managers start a kernel whose kernelspec is this interpreter's default
``python -m ipykernel_launcher -f {connection_file}`` through this module when they spawn it
(forking switched off, or a kernel the template cannot fork): the kernel runs exactly as
ipykernel's launcher runs it, and only its end differs. Measured (``benchmarks/kernel_exit.py
--spawned``): asked to exit, a spawned kernel took 359 ms (median of eight), most of it the
interpreter's teardown of IPython, ipykernel and what the notebook imported, and one exit in five
took 2.5 s (ipykernel's exit race, after which the kernel was terminated with its files
unflushed).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # As ipykernel's launcher: the working folder leaves the path while ipykernel loads, and
    # IPython puts it back for the notebook's code.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from nbpipe.notebooks.kernel_end import finish, run_ipykernel

    code = 1
    try:
        code = run_ipykernel()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        finish(code)
