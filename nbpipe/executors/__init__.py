"""Executors: ``Serial`` (in this process), ``Parallel`` (worker processes) and ``Dask`` (a
``dask.distributed`` cluster)."""

from nbpipe.executors.base import Executor
from nbpipe.executors.dask import Dask
from nbpipe.executors.parallel import Parallel
from nbpipe.executors.serial import Serial

__all__ = ["Dask", "Executor", "Parallel", "Serial"]
