"""Task types: ``PythonCallable`` (a function), ``NotebookRunner`` (a notebook), ``ScriptRunner``
(a Python script run as a script) and ``ShellScript`` (a shell script run with bash)."""

from nbpipe.tasks.base import Task
from nbpipe.tasks.callable import PythonCallable
from nbpipe.tasks.notebook import NotebookRunner
from nbpipe.tasks.script import ScriptRunner
from nbpipe.tasks.shell import ShellScript
from nbpipe.tasks.taskgroup import TaskGroup

__all__ = ["NotebookRunner", "PythonCallable", "ScriptRunner", "ShellScript", "Task", "TaskGroup"]
