"""Helpers for the spec tests: write a project (spec, notebooks, modules) into a temporary folder.

Loading a spec puts its folder first on ``sys.path`` and imports its modules;
``restored_imports`` undoes both (each test module uses it in an autouse fixture). There is no
conftest.py here: a second module named ``conftest`` would shadow tests/conftest.py, which other
tests import from.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from pathlib import Path


@contextlib.contextmanager
def restored_imports(folder: Path):
    """Undoes what loading specs from ``folder`` did to ``sys.path`` and ``sys.modules``."""
    path, modules = list(sys.path), dict(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = path
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if modules.get(name) is not module and origin.startswith(str(folder)):
                if name in modules:  # the spec replaced a module of the same name
                    sys.modules[name] = modules[name]
                else:
                    del sys.modules[name]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def notebook(
    path: Path, upstream: str = "None", body: str = "print('hi')", extra: str = ""
) -> Path:
    """A percent-format notebook whose parameters cell declares ``upstream``."""
    return write(
        path,
        f'# %% tags=["parameters"]\nupstream = {upstream}\nproduct = None\n{extra}\n# %%\n{body}\n',
    )
