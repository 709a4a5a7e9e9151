"""nbconvert's HTML page, byte for byte, for less work: an HTML report is ~45 ms of a worker's
CPU per notebook (measured, three code cells), on the path to the notebook's downstream tasks.

Two of nbconvert's steps do work whose result is known in advance:

- **Its own stylesheets go through BeautifulSoup.** The page is parsed and written out again
  whole (for alternative text on images and focusable cells), ~280 KB of it JupyterLab's CSS,
  which the parser reads as the raw text of ``<style>`` elements and the writer copies out as it
  was: 17 of the 45 ms. ``HeldStylesheets`` has the template write a placeholder in each of those
  ``<style>`` elements instead, and puts the stylesheets back into the finished page.
- **Highlighted code is sanitized.** Every code cell's source, highlighted by Pygments, goes
  through bleach (``clean_html``: an HTML5 parser and serializer in Python, ~10 ms for three
  short cells), which returns it unchanged: Pygments escapes the source and writes only
  ``<div>``, ``<pre>`` and ``<span>`` elements with classes, all of them allowed.
  ``clean_html`` returns such markup as it is, once a strict pattern has recognised it
  (``HIGHLIGHTED``); anything else goes to nbconvert's ``clean_html`` as before.

``lighter_html_exporter`` makes the exporter class that does both; tests/test_convert.py
compares its pages with nbconvert's, and the fast ``clean_html`` with bleach's, on many inputs.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Any

#: What a stylesheet's text must not hold for the parser to read it whole as the raw text of its
#: ``<style>`` element (the end of the element), so that the page writes it out as it was.
_ENDS_STYLE = re.compile(r"</\s*style", re.IGNORECASE)

#: The text of highlighted code: escaped characters, tabs and newlines, and no character that
#: an HTML parser would replace or drop (controls, carriage returns, surrogates, noncharacters;
#: characters beyond the first plane, rare in code, go the slow way).
_TEXT = (
    r"(?:[^<>&\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    r"\U00010000-\U0010ffff]|&(?:amp|lt|gt|quot|#39);)"
)
_CLASS = r' class="[\w -]*"'
#: Pygments' markup for a highlighted cell, as nbconvert's ``highlight_code`` writes it: one
#: ``<div>`` with a class, one ``<pre>`` (opened with an empty ``<span>``, so that no newline
#: follows the tag, which a parser would drop), spans with a class that do not nest.
HIGHLIGHTED = re.compile(
    rf"<div{_CLASS}><pre><span></span>(?:<span{_CLASS}>{_TEXT}*</span>|{_TEXT})*</pre></div>\n?"
)


def clean_html(element: Any) -> str:
    """nbconvert's ``clean_html``, answered at once for Pygments' markup (which it would return
    unchanged)."""
    text = element.decode() if isinstance(element, bytes) else str(element)
    if HIGHLIGHTED.fullmatch(text):
        return text
    from nbconvert.filters.strings import clean_html as bleach_clean_html

    return bleach_clean_html(element)


class HeldStylesheets:
    """The template's stylesheets, out of the page while nbconvert parses and writes it.

    A stylesheet is replaced by a placeholder named after its content (the same in every page
    and every thread), kept here for the process's life (nbconvert's few stylesheets)."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}

    def hold(self, include):
        """``include`` (nbconvert's ``include_css`` or ``include_lab_theme``: a name to a whole
        ``<style>`` element), with the element's text replaced by a placeholder when it can be
        put back exactly."""
        if getattr(include, "holds_stylesheets", False):
            return include

        def held(name):
            element = include(name)
            opening = '<style type="text/css">\n'
            text = str(element)
            if not (text.startswith(opening) and text.endswith("</style>")):
                return element
            css = text[len(opening) : -len("</style>")]
            if _ENDS_STYLE.search(css):
                return element
            placeholder = "nbpipe-stylesheet-" + hashlib.sha1(css.encode()).hexdigest()
            self._held.setdefault(placeholder, css)
            return type(element)(opening + placeholder + "</style>")

        held.holds_stylesheets = True
        return held

    def restore(self, page: str) -> str:
        """The page with its stylesheets back in their ``<style>`` elements."""
        for placeholder, css in list(self._held.items()):  # another thread may hold one more
            element = f'<style type="text/css">\n{placeholder}</style>'
            if element in page:
                page = page.replace(element, f'<style type="text/css">\n{css}</style>')
        return page


@cache
def lighter_html_exporter():
    """nbconvert's ``HTMLExporter``, with its stylesheets held out of the page's parsing and
    highlighted code that needs no sanitizing left as it is."""
    from nbconvert.exporters import HTMLExporter

    stylesheets = HeldStylesheets()

    class LighterHTMLExporter(HTMLExporter):
        """The same pages as ``HTMLExporter``, for less work (``nbpipe.notebooks.html_page``)."""

        def default_filters(self):
            yield from super().default_filters()
            yield ("clean_html", clean_html)  # the last of a name wins

        def _init_resources(self, resources):
            resources = super()._init_resources(resources)
            for key in ("include_css", "include_lab_theme"):
                if key in resources:
                    resources[key] = stylesheets.hold(resources[key])
            return resources

        def from_notebook_node(self, nb, resources=None, **kw):
            page, resources = super().from_notebook_node(nb, resources, **kw)
            return stylesheets.restore(page), resources

    return LighterHTMLExporter
