"""Converting an executed notebook to a product format, chosen by the product's extension.

Building an nbconvert exporter costs most of a second the first time in a process, so exporters
are cached per process (workers live across tasks) and keyed by their settings.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from typing import Any

#: Product extension -> nbconvert exporter name. ``.ipynb`` is written as is.
EXPORTERS = {
    ".html": "html",
    ".md": "markdown",
    ".py": "python",
    ".rst": "rst",
    ".tex": "latex",
    ".pdf": "pdf",
}
SUPPORTED = (".ipynb", *EXPORTERS)


#: Programs nbconvert calls for some formats (pandoc converts the markdown cells).
TOOLS = {".rst": ("pandoc",), ".tex": ("pandoc",), ".pdf": ("xelatex", "pandoc")}


def format_problem(suffix: str) -> str | None:
    """Why a product with this extension cannot be written here, or None when it can."""
    if suffix not in SUPPORTED:
        return f"cannot convert a notebook to {suffix or 'a file without extension'!r}; use one of {', '.join(SUPPORTED)}"
    missing = [tool for tool in TOOLS.get(suffix, ()) if not shutil.which(tool)]
    if missing:
        return (
            f"a {suffix} product needs {' and '.join(missing)}, not installed here; "
            "install it (e.g. apt-get install pandoc texlive-xetex) or use .html instead"
        )
    return None


def export(nb, suffix: str, export_kwargs: dict[str, Any] | None = None) -> str | bytes:
    """The notebook node ``nb`` rendered in the format of ``suffix``."""
    if suffix == ".ipynb":
        import nbformat

        return nbformat.writes(nb)
    exporter = _exporter(EXPORTERS[suffix], json.dumps(export_kwargs or {}, sort_keys=True))
    body, _resources = exporter.from_notebook_node(nb)
    return body


@lru_cache(maxsize=16)
def _exporter(name: str, kwargs_json: str):
    from nbconvert.exporters import get_exporter

    return get_exporter(name)(**json.loads(kwargs_json))
