"""Task types: ``PythonCallable`` (a function) and ``NotebookRunner`` (a notebook)."""

from nbpipe.tasks.base import Task
from nbpipe.tasks.callable import PythonCallable
from nbpipe.tasks.notebook import NotebookRunner

__all__ = ["NotebookRunner", "PythonCallable", "Task"]
