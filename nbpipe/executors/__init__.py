"""Executors: ``Serial`` (in this process), ``Parallel`` (worker processes) and ``Dask`` (a
``dask.distributed`` cluster)."""

from nbpipe.executors.base import Executor
from nbpipe.executors.dask import Dask
from nbpipe.executors.parallel import Parallel
from nbpipe.executors.serial import Serial

__all__ = ["EXECUTOR_NAMES", "Dask", "Executor", "Parallel", "Serial", "executor_named"]

#: The executors a name picks (``DAG(executor="parallel")``, ``executor: parallel`` in a spec).
EXECUTOR_NAMES = {"serial": Serial, "parallel": Parallel, "dask": Dask}


def executor_named(name: str) -> Executor:
    """A new executor of the kind ``name`` says, with its default settings; KeyError otherwise."""
    return EXECUTOR_NAMES[name]()
