"""Plain-text and HTML tables, shared by the build report and the status view.

A cell is a string, or a list of product paths: joined by commas in text, and shown as links
(relative to the working directory, which in Jupyter is the notebook's folder) in HTML.
"""

from __future__ import annotations

import html
import os

Cell = str | list[str]


def text_table(header: list[str], rows: list[list[Cell]]) -> str:
    everything = [header, *([_text(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return "\n".join(
        [line(everything[0]), line(["-" * w for w in widths]), *map(line, everything[1:])]
    )


def html_table(header: list[str], rows: list[list[Cell]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_html(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(cell: Cell) -> str:
    return ", ".join(cell) if isinstance(cell, list) else cell


def _html(cell: Cell) -> str:
    if not isinstance(cell, list):
        return html.escape(cell)
    return ", ".join(_link(path) for path in cell)


def _link(path: str) -> str:
    target = os.path.relpath(path) if os.path.isabs(path) else path
    return f'<a href="{html.escape(target)}" target="_blank">{html.escape(target)}</a>'
