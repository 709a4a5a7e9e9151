"""``dag.plot()``: the DAG as a Mermaid flowchart, coloured by each task's last status.

Mermaid is text, so it needs no graphics toolchain: JupyterLab renders it natively
(``text/vnd.mermaid``), GitHub renders it in Markdown, and the HTML page loads mermaid.js.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbpipe.tasks.base import Task

_COLOURS = {
    "executed": "#c8e6c9",
    "skipped": "#e0e0e0",
    "failed": "#ffcdd2",
    "aborted": "#ffe0b2",
    "stopped_early": "#fff9c4",
    "cancelled": "#eeeeee",
    "running": "#bbdefb",
}


class Mermaid:
    """Mermaid source with rich display for Jupyter and writers for .md, .html and .mmd files."""

    def __init__(self, source: str):
        self.source = source

    def __str__(self) -> str:
        return self.source

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/vnd.mermaid": self.source, "text/plain": self.source}

    def to_markdown(self) -> str:
        return f"```mermaid\n{self.source}\n```\n"

    def to_html(self, title: str = "Pipeline") -> str:
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>\n"
            f'<pre class="mermaid">\n{html.escape(self.source)}\n</pre>\n'
            '<script type="module">import mermaid from '
            '"https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";'
            "mermaid.initialize({startOnLoad: true});</script>\n</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Writes by extension: ``.md`` (fenced block), ``.html`` (a page), else Mermaid text."""
        path = Path(path)
        suffix = path.suffix.lower()
        text = (
            self.to_markdown()
            if suffix == ".md"
            else self.to_html(path.stem)
            if suffix == ".html"
            else self.source + "\n"
        )
        path.write_text(text, encoding="utf-8")
        return path


def mermaid(tasks: list[Task], direction: str = "LR") -> Mermaid:
    ids = {task.name: f"t{i}" for i, task in enumerate(tasks)}
    lines = [f"flowchart {direction}"]
    for task in tasks:
        lines.append(f'    {ids[task.name]}["{_label(task.name)}"]')
    for task in tasks:
        lines += [f"    {ids[parent]} --> {ids[task.name]}" for parent in task.upstream]
    used = set()
    for task in tasks:
        status = task.exec_status.value
        if status in _COLOURS:
            lines.append(f"    class {ids[task.name]} {status}")
            used.add(status)
    lines += [f"    classDef {status} fill:{_COLOURS[status]}" for status in sorted(used)]
    return Mermaid("\n".join(lines))


def _label(name: str) -> str:
    return re.sub(r'["\\]', "_", name)
