"""``TaskGroup``: several tasks wired as one, as Ploomber's ``a + b`` makes them.

``(a + b) >> c`` makes ``c`` depend on ``a`` and ``b``; ``a >> (b + c)`` makes ``b`` and ``c``
depend on ``a``; ``(a + b) >> (c + d)`` makes each of ``c`` and ``d`` depend on both. A group
never enters the DAG itself: only its tasks do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbpipe.tasks.base import Task


class TaskGroup:
    """An ordered collection of tasks (``a + b``) for wiring with ``>>``."""

    def __init__(self, tasks: Iterable[Task]):
        self.tasks: list[Task] = list(tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> Task:
        return self.tasks[index]

    def __repr__(self) -> str:
        return f"TaskGroup({[task.name for task in self.tasks]!r})"

    def __add__(self, other: Task | Iterable[Task]) -> TaskGroup:
        return TaskGroup([*self.tasks, *_as_tasks(other)])

    def __radd__(self, other: Task | Iterable[Task]) -> TaskGroup:
        return TaskGroup([*_as_tasks(other), *self.tasks])

    def set_upstream(self, other: Task | Iterable[Task]) -> None:
        """Every task of the group depends on ``other`` (a task or several)."""
        for task in self.tasks:
            task.set_upstream(other)

    def __rshift__(self, other):
        """``group >> task``: the task (or each task of a group) depends on every task here."""
        other.set_upstream(self)
        return other

    def __rrshift__(self, others):
        """``[a, b] >> group``: every task of the group depends on ``a`` and ``b``."""
        self.set_upstream(others)
        return self


def _as_tasks(value) -> list[Task]:
    from nbpipe.tasks.base import Task

    if isinstance(value, Task):
        return [value]
    return list(value)
