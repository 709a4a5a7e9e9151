"""Importing the notebook stack (nbformat, papermill) without what nbpipe never uses.

- jsonschema's format checkers import ``rfc3987_syntax`` when installed (jupyter_events pulls it
  in), which compiles a grammar at import: seconds on a busy machine, once per process. nbformat
  never validates the "iri" format it serves.
- papermill imports the client library of every remote storage it can read and write notebooks
  from (boto3 for S3, azure, gcsfs, pyarrow for HDFS, PyGithub): most of a second with boto3
  installed. nbpipe hands papermill a notebook and a local path, never a remote one.

So the processes that run notebooks (workers, and the building process under Serial, the magic,
``nbpipe run``) import the notebook stack with those modules hidden (unless already imported):
afterwards they import normally, though this process's jsonschema keeps no "iri" check and its
papermill no remote storage.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterable, Iterator

HIDDEN = ("rfc3987_syntax", "boto3", "azure", "gcsfs", "pyarrow", "github")


@contextlib.contextmanager
def unused_imports_hidden() -> Iterator[None]:
    """Within the block, importing one of ``HIDDEN`` raises ImportError (unless it was imported
    before)."""
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def import_quickly(modules: Iterable[str]) -> None:
    """Imports ``modules`` (papermill, nbformat, ...) with ``HIDDEN`` hidden."""
    with unused_imports_hidden():
        for module in modules:
            importlib.import_module(module)


def prepare_before_fork(modules: Iterable[str]) -> None:
    """In a process about to fork its workers: imports ``modules`` as ``import_quickly`` does,
    and when they include nbconvert, builds the HTML exporter and renders a notebook with it
    once (nbconvert's first HTML export in a process costs about a second: its filters' imports
    and the compiling of its templates), so that every forked worker starts with it done."""
    modules = tuple(modules)
    import_quickly(modules)
    if "nbconvert" in modules:
        import nbformat

        from nbpipe.notebooks.convert import export

        export(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")]), ".html")
