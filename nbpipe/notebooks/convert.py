"""Converting an executed notebook to a product format, chosen by the product's extension.

Building an nbconvert exporter costs most of a second the first time in a process, so exporters
are cached per process (workers live across tasks) and keyed by their settings. A third of that
is Jinja compiling nbconvert's templates, the same every time: the compiled templates are kept
on disk across processes (``TemplateCache``). The HTML exporter's first page also compiled
soupsieve's CSS tokenizer, for three selectors that plain searches answer
(``nbpipe.notebooks.soup``); and each page parsed nbconvert's stylesheets and sanitized
highlighted code, for the same text in the end (``nbpipe.notebooks.html_page``).
"""

from __future__ import annotations

import contextlib
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


#: nbconvert exporters (by name) and the programs they call.
EXPORTER_TOOLS = {
    "pdf": ("xelatex", "pandoc"),
    "latex": ("pandoc",),
    "rst": ("pandoc",),
    "asciidoc": ("pandoc",),
}
#: nbconvert exporters (by name) and the Python modules they need, with the pip extra that
#: installs them.
EXPORTER_MODULES = {
    "webpdf": ("playwright", "nbconvert[webpdf]"),
    "qtpdf": ("PyQt5.QtWebEngineWidgets", "nbconvert[qtpdf]"),
    "qtpng": ("PyQt5.QtWebEngineWidgets", "nbconvert[qtpng]"),
}


def export_names() -> list[str]:
    """The nbconvert exporters installed here, from their entry points (nbconvert is not
    imported)."""
    from importlib.metadata import entry_points

    return sorted({entry.name for entry in entry_points(group="nbconvert.exporters")})


def exporter_problem(name: str, suffix: str | None = None) -> str | None:
    """Why the nbconvert exporter ``name`` cannot write a product (of extension ``suffix``)
    here, or None when it can: an exporter that is not installed, a program or a module it needs
    that is missing, or (``webpdf``) a browser it would have to download."""
    names = export_names()
    if names and name not in names and name not in ("ipynb", "notebook"):
        return f"{name!r} is not an nbconvert exporter installed here; installed: " + ", ".join(
            names
        )
    missing = [tool for tool in EXPORTER_TOOLS.get(name, ()) if not shutil.which(tool)]
    if missing:
        return (
            f"the {name} exporter needs {' and '.join(missing)}, not installed here (e.g. "
            "apt-get install pandoc texlive-xetex)"
        )
    if name in EXPORTER_MODULES:
        module, extra = EXPORTER_MODULES[name]
        if not _importable(module):
            return f"the {name} exporter needs the Python module {module}: pip install {extra!r}"
    if name == "webpdf":
        if suffix is not None and suffix != ".pdf":
            return f"the webpdf exporter writes a PDF: give the product a .pdf extension, not {suffix!r}"
        if not _playwright_chromium():
            return (
                "the webpdf exporter needs Playwright's own Chromium, which is not installed "
                f"(looked in {_playwright_browsers()}); nbconvert does not use a system "
                "Chromium and would have to download one (python -m playwright install "
                "chromium); use the pdf exporter (LaTeX) or an .html product instead"
            )
    return None


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # the parent package is missing
        return False


def _playwright_browsers() -> str:
    """Where Playwright keeps its browsers (``PLAYWRIGHT_BROWSERS_PATH``, else its cache)."""
    import os

    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured and configured != "0":
        return configured
    if configured == "0":  # inside the playwright package
        import importlib.util

        spec = importlib.util.find_spec("playwright")
        origin = spec.origin if spec and spec.origin else ""
        return os.path.join(os.path.dirname(origin), "driver", "package", ".local-browsers")
    return os.path.join(os.path.expanduser("~"), ".cache", "ms-playwright")


def _playwright_chromium() -> bool:
    import glob
    import os

    folder = _playwright_browsers()
    return any(
        glob.glob(os.path.join(folder, pattern))
        for pattern in ("chromium-*", "chromium_headless_shell-*")
    )


def export(nb, suffix: str, export_kwargs: dict[str, Any] | None = None) -> str | bytes:
    """The notebook node ``nb`` rendered in the format of ``suffix``: a product's extension
    (``.html``), or the name of an nbconvert exporter (``webpdf``, a task's
    ``nbconvert_exporter_name``)."""
    if suffix in (".ipynb", "ipynb", "notebook"):
        import nbformat

        return nbformat.writes(nb)
    from nbpipe.notebooks.soup import plain_selectors

    name = EXPORTERS.get(suffix, suffix)
    exporter = _exporter(name, json.dumps(export_kwargs or {}, sort_keys=True))
    with plain_selectors():  # nbconvert's HTML, without compiling soupsieve's CSS tokenizer
        body, _resources = exporter.from_notebook_node(nb)
    return body


@lru_cache(maxsize=16)
def _exporter(name: str, kwargs_json: str):
    from nbpipe.notebooks.imports import import_ipython_lexers, unused_imports_hidden

    with unused_imports_hidden():  # a no-op where the workers imported nbconvert already
        from nbconvert.exporters import HTMLExporter, get_exporter

    from nbpipe.notebooks.html_page import lighter_html_exporter

    import_ipython_lexers()  # nbconvert highlights code with them; IPython itself is not needed
    exporter_class = get_exporter(name)
    if exporter_class is HTMLExporter:  # not its subclasses (webpdf prints the page it makes)
        exporter_class = lighter_html_exporter()
    exporter = exporter_class(**json.loads(kwargs_json))
    environment = getattr(exporter, "environment", None)  # template-based exporters have one
    if environment is not None and environment.bytecode_cache is None:
        environment.bytecode_cache = template_cache()
    return exporter


@lru_cache(maxsize=1)
def template_cache():
    """Jinja's cache of compiled templates in its per-user folder of the temporary directory,
    shared by every process (a template whose source changed is compiled anew), or None where
    that folder cannot be made: templates are then compiled in each process, as nbconvert does.
    """
    from jinja2 import FileSystemBytecodeCache

    class TemplateCache(FileSystemBytecodeCache):
        """A cache that never fails an export: a template it cannot write (a full or read-only
        disk) is compiled again by the next process."""

        def dump_bytecode(self, bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        return TemplateCache()
    except (OSError, RuntimeError):  # RuntimeError: Jinja found the folder unsafe or unmakeable
        return None
