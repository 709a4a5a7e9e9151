"""Importing the notebook stack (nbformat, papermill) without what nbpipe never uses.

- jsonschema's format checkers import ``rfc3987_syntax`` when installed (jupyter_events pulls it
  in), which compiles a grammar at import: seconds on a busy machine, once per process. nbformat
  never validates the "iri" format it serves.
- papermill imports the client library of every remote storage it can read and write notebooks
  from (boto3 for S3, azure, gcsfs, pyarrow for HDFS, PyGithub): most of a second with boto3
  installed. nbpipe hands papermill a notebook and a local path, never a remote one.

- BeautifulSoup imports soupsieve, its CSS selector engine, which compiles its patterns at
  import: 50-85 ms. nbconvert's HTML exporter asks it three selectors, which nbpipe answers
  without it (``nbpipe.notebooks.soup``). It is imported as a module that loads on first use
  (``importlib.util.LazyLoader``, ``DEFERRED``): anyone who selects with CSS gets it whole.

- nbconvert highlights code cells with IPython's pygments lexers, and importing those runs
  IPython's package ``__init__``, which imports IPython's terminal (prompt_toolkit, jedi): half a
  second for a few classes of regular expressions (``import_ipython_lexers``).

So the processes that run notebooks (workers, and the building process under Serial, the magic,
``nbpipe run``) import the notebook stack with those modules hidden or deferred (unless already
imported): afterwards they import normally, though this process's jsonschema keeps no "iri"
check and its papermill no remote storage.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable, Iterator

HIDDEN = ("rfc3987_syntax", "boto3", "azure", "gcsfs", "pyarrow", "github")
DEFERRED = ("soupsieve",)


@contextlib.contextmanager
def unused_imports_hidden() -> Iterator[None]:
    """Within the block, importing one of ``HIDDEN`` raises ImportError, and one of ``DEFERRED``
    gives a module that loads on first use (neither if it was imported before)."""
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    sys.meta_path.insert(0, DeferringFinder)
    try:
        yield
    finally:
        sys.meta_path.remove(DeferringFinder)
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


class DeferringFinder:
    """Finds a ``DEFERRED`` module as Python would, with a loader that runs it on first use."""

    @staticmethod
    def find_spec(name: str, path=None, target=None):
        if name not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def import_quickly(modules: Iterable[str]) -> None:
    """Imports ``modules`` (papermill, nbformat, ...) with ``HIDDEN`` hidden and ``DEFERRED``
    deferred."""
    with unused_imports_hidden():
        for module in modules:
            importlib.import_module(module)


def prepare_before_fork(modules: Iterable[str]) -> None:
    """In a process about to fork its workers: imports ``modules`` as ``import_quickly`` does,
    and does once what each worker would otherwise do on its first notebook, so that every
    forked worker starts with it done: nbformat compiles its validator for the current notebook
    format (generated code: 0.08 s), and, when the modules include nbconvert, the HTML exporter
    is built and renders a notebook (nbconvert's first HTML export in a process costs most of a
    second: its filters' imports and the compiling of its templates)."""
    modules = tuple(modules)
    with collector_paused():
        _prepare(modules)


def _prepare(modules: tuple[str, ...]) -> None:
    import_quickly(modules)
    if "nbformat" in modules:
        import nbformat

        nbformat.validate(nbformat.v4.new_notebook())
    if "nbconvert" in modules:
        import nbformat

        from nbpipe.notebooks.convert import export

        export(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")]), ".html")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector off within the block, for what it creates to last as long as the
    process: a collection meanwhile would scan all of it and free next to nothing. Afterwards
    the collector is as it was, and the objects go to its oldest generation unscanned
    (``gc.freeze`` then ``gc.unfreeze``), as if they had survived its collections: turned on
    again with them all in its youngest, it would scan them all at once."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def import_ipython_lexers() -> None:
    """Imports ``IPython.lib.lexers`` without running IPython's package ``__init__`` yet (unless
    IPython was imported already, as in a kernel).

    ``IPython`` is then the package module, complete but for what its ``__init__`` defines: its
    submodules import as usual (``import IPython.display`` imports that module alone), and the
    first time anything asks the package for a name it lacks (``IPython.get_ipython``,
    ``from IPython import embed``), the ``__init__`` runs, in that same module, and the name is
    found as if it had run at first. A process that only writes reports never pays it."""
    if "IPython" in sys.modules:
        return
    spec = importlib.util.find_spec("IPython")
    if spec is None or spec.loader is None:
        return  # no IPython: nbconvert highlights as plain Python
    package = importlib.util.module_from_spec(spec)
    initialising = threading.Lock()

    def __getattr__(name: str):
        with initialising:
            if package.__dict__.get("__getattr__") is __getattr__:
                del package.__getattr__
                try:
                    spec.loader.exec_module(package)
                except BaseException:
                    sys.modules.pop("IPython", None)
                    raise
        return getattr(package, name)  # defined by the __init__, or AttributeError as usual

    package.__getattr__ = __getattr__
    sys.modules["IPython"] = package
    importlib.import_module("IPython.lib.lexers")
