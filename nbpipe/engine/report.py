"""The build report: a view of the build's state (``BuildState``) for people and programs."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from nbpipe.engine.events import BuildOutcome
from nbpipe.engine.state import BuildState, TaskState
from nbpipe.engine.table import Cell, html_table, text_table

HEADER = ["name", "ran", "status", "elapsed (s)", "products"]

#: Ploomber's build report columns, which ``report[column]`` also answers.
PLOOMBER_COLUMNS = ("name", "Ran?", "Elapsed (s)", "Percentage")


class BuildReport:
    """What a build did: one row per task (a ``TaskState``), and how the build ended.

    Prints as a table; shows as HTML in Jupyter; ``report['task']`` gives one row
    (``report.tasks['task']`` too). It reads the build's ``BuildState``, which the build's events
    keep up to date, so a report taken during a build (or after an interrupt) shows what happened
    so far.

    It also answers Ploomber's table access: ``report['name']``, ``report['Ran?']``,
    ``report['Elapsed (s)']`` and ``report['Percentage']`` are columns (lists, one value per
    task; a column name wins over a task of that name), ``report[['name', 'Ran?']]`` a dict of
    columns, ``report.values`` all of them, ``report.to_pandas()`` a DataFrame (pandas must be
    installed). Unlike Ploomber's, iterating yields the rows and ``to_dict()`` is nbpipe's
    report (the ``--json`` summary's), not the columns.
    """

    def __init__(self, state: BuildState | None = None, pending: BuildOutcome | None = None):
        """``pending``: the outcome to show until the build has finished (the DAG's
        ``on_finish`` and ``on_failure`` hooks run before ``build_finished``, and see the
        outcome they are deciding about)."""
        self.state = state if state is not None else BuildState()
        self._pending = pending

    @property
    def tasks(self) -> dict[str, TaskState]:
        return self.state.tasks

    @property
    def outcome(self) -> BuildOutcome | None:
        return BuildOutcome(self.state.outcome) if self.state.outcome else self._pending

    @property
    def stop_reason(self) -> str | None:
        return self.state.stop_reason

    @property
    def stopped_early(self) -> bool:
        return self.outcome is BuildOutcome.STOPPED_EARLY

    @property
    def elapsed(self) -> float | None:
        return self.state.elapsed

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (list, tuple)):
            columns = self.values
            unknown = [name for name in key if name not in columns]
            if unknown:
                raise KeyError(f"No column {unknown[0]!r}; columns: {', '.join(columns)}")
            return {name: columns[name] for name in key}
        if key in PLOOMBER_COLUMNS:
            return self.values[key]
        try:
            return self.tasks[key]
        except KeyError:
            raise KeyError(
                f"No task or column {key!r}; tasks: {', '.join(self.tasks) or 'none'}; "
                f"columns: {', '.join(PLOOMBER_COLUMNS)}"
            ) from None

    @property
    def values(self) -> dict[str, list[Any]]:
        """Ploomber's columns: ``name``, ``Ran?``, ``Elapsed (s)`` (0 for a task that did not
        run) and ``Percentage`` (of the elapsed times' sum), one value per task."""
        rows = list(self)
        elapsed = [row.elapsed or 0 for row in rows]
        total = sum(elapsed)
        return {
            "name": [row.name for row in rows],
            "Ran?": [row.ran for row in rows],
            "Elapsed (s)": elapsed,
            "Percentage": [100 * value / total if value else 0 for value in elapsed],
        }

    def to_pandas(self):
        """Ploomber's columns (``values``) as a pandas DataFrame."""
        try:
            import pandas
        except ImportError:
            raise ImportError("BuildReport.to_pandas() needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.values)

    def __iter__(self) -> Iterator[TaskState]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value if self.outcome else None,
            "stop_reason": self.stop_reason,
            "elapsed": self.elapsed,
            "tasks": [
                {
                    "name": row.name,
                    "ran": row.ran,
                    "status": row.status.value,
                    "elapsed": row.elapsed,
                    "products": row.products,
                    "detail": row.detail or "",
                }
                for row in self
            ],
        }

    # -- rendering ------------------------------------------------------------------------------
    def _rows(self, path: Any = str) -> list[list[Cell]]:
        return [
            [
                row.name,
                "yes" if row.ran else "no",
                row.status.value,
                "" if row.elapsed is None else f"{row.elapsed:.2f}",
                [path(product) for product in row.products],
            ]
            for row in self
        ]

    def summary(self) -> str:
        elapsed = f" in {self.elapsed:.2f} s" if self.elapsed is not None else ""
        if self.stopped_early:
            return f"Build stopped early{elapsed}: {self.stop_reason}"
        outcome = self.outcome.value if self.outcome else "not finished"
        return f"Build {outcome}{elapsed}"

    def table(self, path: Any = str) -> str:
        """The report as text, each product path shown through ``path`` (e.g. made relative)."""
        return f"{text_table(HEADER, self._rows(path))}\n\n{self.summary()}"

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return f"{html_table(HEADER, self._rows())}<p>{html.escape(self.summary())}</p>"
