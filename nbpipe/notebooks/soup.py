"""nbconvert's HTML reports without compiling soupsieve's CSS tokenizer.

nbconvert's ``HTMLExporter`` parses every page it renders with BeautifulSoup and adjusts it
through three CSS selectors (``PLAIN_SEARCHES``: alternative text for images, and the cells made
focusable). The first CSS selector a process runs compiles soupsieve's tokenizer, regular
expressions whose character classes match any non-ASCII character case-insensitively, which
Python 3.11 compiles code point by code point: 0.15-0.25 s of a process's first HTML export,
alone on a core (a fifth of a Parallel build's preparation of the notebook stack, on the path to
its first notebook; all of a Serial build's first report).

``plain_selectors`` lends nbconvert's HTML module, for the length of an export, a BeautifulSoup
whose ``select`` answers exactly those selectors with plain searches (the same elements, in
document order) and hands any other selector to soupsieve as usual. The page is nbconvert's, byte
for byte (tests/test_convert.py compares the two).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any


def _images_without_alt(soup) -> list:
    return soup.find_all("img", alt=False)


def _divs_in_a_notebook(css_class: str) -> Callable[[Any], list]:
    def search(soup) -> list:
        return [
            div
            for div in soup.find_all("div", class_=css_class)
            if div.find_parent(class_="jp-Notebook") is not None
        ]

    return search


#: nbconvert's selectors (``HTMLExporter.from_notebook_node``) and searches that find the same
PLAIN_SEARCHES: dict[str, Callable[[Any], list]] = {
    "img:not([alt])": _images_without_alt,
    ".jp-Notebook div.jp-Cell-inputWrapper": _divs_in_a_notebook("jp-Cell-inputWrapper"),
    ".jp-Notebook div.jp-OutputArea-output": _divs_in_a_notebook("jp-OutputArea-output"),
}


@contextlib.contextmanager
def plain_selectors() -> Iterator[None]:
    """Within the block, nbconvert's HTML exporter parses its pages into ``PlainSelectSoup``."""
    module = sys.modules.get("nbconvert.exporters.html")
    if module is None:
        yield
        return
    from bs4 import BeautifulSoup

    if getattr(module, "BeautifulSoup", None) is not BeautifulSoup:  # nested, or not nbconvert 7's
        yield
        return
    module.BeautifulSoup = _plain_select_soup()
    try:
        yield
    finally:
        module.BeautifulSoup = BeautifulSoup


@cache
def _plain_select_soup():
    from bs4 import BeautifulSoup

    class PlainSelectSoup(BeautifulSoup):
        """BeautifulSoup, but nbconvert's own selectors run as plain searches."""

        def select(self, selector, namespaces=None, limit=0, **kwargs):
            search = PLAIN_SEARCHES.get(selector)
            if search is None or namespaces is not None or limit or kwargs:
                return super().select(selector, namespaces, limit, **kwargs)
            return search(self)

    return PlainSelectSoup
