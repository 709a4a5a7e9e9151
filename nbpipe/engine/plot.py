"""``dag.plot()``: the DAG as a Mermaid flowchart, coloured by each task's last status.

Mermaid is text, so it needs no graphics toolchain: JupyterLab renders it natively
(``text/vnd.mermaid``), GitHub renders it in Markdown, and the HTML page carries mermaid.js
itself (vendored in ``nbpipe/engine/vendor/``, MIT), so it renders offline.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbpipe.tasks.base import Task

MERMAID_VERSION = "11.17.2"
_MERMAID_JS = Path(__file__).parent / "vendor" / "mermaid.min.js"


@cache
def mermaid_script() -> str:
    """The vendored mermaid.js (it holds no ``</script``, so it is inlined as it is)."""
    return _MERMAID_JS.read_text(encoding="utf-8")


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
        """A page that draws the diagram with no network: mermaid.js is inlined."""
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>\n"
            f'<pre class="mermaid">\n{html.escape(self.source)}\n</pre>\n'
            f"<script>/* mermaid {MERMAID_VERSION}, MIT licence */\n{mermaid_script()}\n</script>\n"
            "<script>mermaid.initialize({startOnLoad: true});</script>\n</body></html>\n"
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


def mermaid(tasks: list[Task], direction: str = "LR", include_products: bool = False) -> Mermaid:
    """The tasks as a flowchart; ``include_products`` adds each task's products to its box."""
    ids = {task.name: f"t{i}" for i, task in enumerate(tasks)}
    lines = [f"flowchart {direction}"]
    for task in tasks:
        label = _label(task.name)
        if include_products:
            label += "".join(f"<br/><small>{_label(str(file))}</small>" for file in task.files)
        lines.append(f'    {ids[task.name]}["{label}"]')
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
