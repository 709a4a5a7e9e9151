"""nbpipe: build pipelines of Jupyter notebooks and Python functions.

Public names are imported lazily so that ``import nbpipe`` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbpipe._version import __version__

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG

__all__ = ["DAG", "__version__", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str):
    if name == "DAG":
        from nbpipe.engine.dag import DAG

        return DAG
    if name in ("load_ipython_extension", "unload_ipython_extension"):  # %load_ext nbpipe
        from nbpipe import magic

        return getattr(magic, name)
    raise AttributeError(f"module 'nbpipe' has no attribute {name!r}")
