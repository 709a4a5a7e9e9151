"""Executors: ``Serial`` (in this process) and ``Parallel`` (worker processes)."""

from nbpipe.executors.base import Executor
from nbpipe.executors.parallel import Parallel
from nbpipe.executors.serial import Serial

__all__ = ["Executor", "Parallel", "Serial"]
