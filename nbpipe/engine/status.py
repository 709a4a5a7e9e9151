"""``dag.status()``: for each task, whether it is up to date and why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nbpipe.engine.table import Cell, html_table, text_table

HEADER = ["name", "state", "why", "last built", "products"]


@dataclass(frozen=True)
class StatusRow:
    """One task of ``dag.status()``."""

    name: str
    state: str  # "up to date" | "outdated" | "never built"
    reasons: list[str]
    last_built: float | None
    products: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "reasons": self.reasons,
            "last_built": self.last_built,
            "products": self.products,
        }


class StatusReport:
    def __init__(self, rows: list[StatusRow]):
        self.rows = rows

    def __getitem__(self, name: str) -> StatusRow:
        return next(row for row in self.rows if row.name == name)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _cells(self) -> list[list[Cell]]:
        return [
            [
                row.name,
                row.state,
                "; ".join(row.reasons),
                datetime.fromtimestamp(row.last_built).strftime("%Y-%m-%d %H:%M:%S")
                if row.last_built
                else "",
                row.products,
            ]
            for row in self.rows
        ]

    def __str__(self) -> str:
        return text_table(HEADER, self._cells())

    def _repr_html_(self) -> str:
        return html_table(HEADER, self._cells())

    def to_dict(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]
