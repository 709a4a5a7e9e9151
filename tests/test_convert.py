"""Exports to product formats: nbconvert's compiled templates kept across processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_files import write_notebook

from nbpipe.notebooks.soup import plain_selectors

EXPORT = """
import sys
if len(sys.argv) > 2:
    import IPython  # as in a process that uses IPython already
import nbformat
from nbpipe.notebooks.convert import export, template_cache

notebook = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_markdown_cell("# A report"),
    nbformat.v4.new_code_cell("x = 1\\nprint(x)"),
    nbformat.v4.new_code_cell("%time y = 2\\n!echo shell"),
])
for number, cell in enumerate(notebook.cells):
    cell.id = f"cell-{number}"  # fixed: two runs' reports compare equal
notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
with open(sys.argv[1], "w") as f:
    f.write(export(notebook, ".html"))
print("cache" if template_cache() is not None else "no cache")
print("terminal" if "IPython.terminal" in sys.modules else "no terminal")
import IPython
print(IPython.get_ipython(), IPython.version_info >= (8,), "IPython.terminal" in sys.modules)
"""


def export_in_new_process(
    tmp_path: Path, out: str, tmpdir: Path, *, ipython_first: bool = False
) -> list[str]:
    """Exports a notebook to HTML in a fresh interpreter whose temporary directory is
    ``tmpdir`` (after importing IPython if ``ipython_first``); returns what it printed: whether
    it had a template cache, whether IPython's terminal was imported by then, and what IPython
    answered when asked afterwards."""
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            EXPORT,
            str(tmp_path / out),
            *(["ipython"] if ipython_first else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()


def cached_templates(tmpdir: Path) -> dict[str, int]:
    folder = tmpdir / f"_jinja2-cache-{os.getuid()}"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.cache")}


def test_a_second_process_uses_the_templates_the_first_compiled(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    assert export_in_new_process(tmp_path, "first.html", tmpdir)[0] == "cache"
    compiled = cached_templates(tmpdir)
    assert compiled, "the first export keeps its compiled templates"

    assert export_in_new_process(tmp_path, "second.html", tmpdir)[0] == "cache"
    assert cached_templates(tmpdir) == compiled, "the second loads them, compiling none anew"
    first = (tmp_path / "first.html").read_text()
    assert "A report" in first and (tmp_path / "second.html").read_text() == first


def test_an_unusable_cache_folder_only_costs_the_compiling(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmpdir / f"_jinja2-cache-{os.getuid()}").write_text("a file where Jinja wants its folder")
    assert export_in_new_process(tmp_path, "report.html", tmpdir)[0] == "no cache"
    assert "A report" in (tmp_path / "report.html").read_text()


def test_reports_are_highlighted_by_ipythons_lexers_without_importing_ipython(tmp_path):
    """The export imports IPython's lexers, not its terminal; the report is the one a process
    that had imported IPython writes; IPython, asked afterwards, is whole."""
    printed = export_in_new_process(tmp_path, "lexers.html", tmp_path)
    assert printed[1:] == ["no terminal", "None True True"]
    assert export_in_new_process(tmp_path, "ipython.html", tmp_path, ipython_first=True)[1] == (
        "terminal"
    )
    report = (tmp_path / "lexers.html").read_text()
    assert report == (tmp_path / "ipython.html").read_text()
    assert "shell" in report and "time" in report


BUILD_THEN_USE_IPYTHON = """
import json, sys
from nbpipe import DAG
from nbpipe.executors import Serial
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

def use_ipython(product, upstream):
    import IPython
    from IPython.display import HTML

    report = open(upstream["report"]["html"]).read()
    used = {"version": list(IPython.version_info[:2]), "shell": repr(IPython.get_ipython()),
            "html": HTML("<b>x</b>").data, "report": "<pre>42" in report}
    open(str(product), "w").write(json.dumps(used))

dag = DAG(executor=Serial())
report = NotebookRunner("report.ipynb", {"nb": File("out/report.ipynb"),
                        "html": File("out/report.html")}, dag, name="report",
                        nb_product_key=["nb", "html"])
after = PythonCallable(use_ipython, File("out/after.json"), dag, name="after")
report >> after
dag.build()
"""


def test_a_task_after_a_report_in_the_same_process_finds_ipython_whole(workdir):
    """Under Serial the building process writes the report (IPython's lexers alone), then runs a
    function that uses IPython: the package initialises when asked, as if imported whole."""
    write_notebook(workdir / "report.ipynb", "print(21 * 2)")
    subprocess.run([sys.executable, "-c", BUILD_THEN_USE_IPYTHON], cwd=workdir, check=True)
    used = json.loads((workdir / "out" / "after.json").read_text())
    assert used == {"version": used["version"], "shell": "None", "html": "<b>x</b>", "report": True}
    assert used["version"][0] >= 8


#: A page with what nbconvert's own selectors look for: images with and without alternative
#: text (markdown, and outputs), code cells with and without outputs, an HTML table.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def rich_notebook():
    import nbformat

    v4 = nbformat.v4
    notebook = v4.new_notebook(
        cells=[
            v4.new_markdown_cell(
                '# Report\n\n![](a.png), <img src="b.png" alt="b"> and <img src="c.png">'
            ),
            v4.new_code_cell("x = 1"),
            v4.new_code_cell(
                "show()",
                outputs=[
                    v4.new_output("stream", name="stdout", text="hello\n"),
                    v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<img>"}),
                    v4.new_output(
                        "execute_result",
                        data={"text/html": "<table><tr><td>1</td></tr></table>"},
                        execution_count=2,
                    ),
                ],
            ),
        ]
    )
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return notebook


@pytest.mark.parametrize("template", ["lab", "classic"])
def test_html_reports_are_nbconverts_byte_for_byte(template):
    """The HTML export answers nbconvert's own CSS selectors with plain searches (no soupsieve
    tokenizer to compile): the page is the one nbconvert's HTMLExporter writes."""
    from nbconvert import HTMLExporter

    from nbpipe.notebooks.convert import export

    notebook = rich_notebook()
    theirs, _ = HTMLExporter(template_name=template).from_notebook_node(notebook)
    ours = export(notebook, ".html", {"template_name": template})

    assert ours == theirs
    assert ours.count('alt="No description has been provided for this image"') >= 2
    if template == "lab":  # the classic page has no jp-Notebook cells to make focusable
        assert ours.count('tabindex="0"') >= 2


def test_html_reports_run_no_css_selector_and_leave_nbconvert_as_it_was(monkeypatch):
    import bs4
    import nbconvert.exporters.html as html
    import soupsieve

    from nbpipe.notebooks.convert import export

    selected: list[str] = []
    select = soupsieve.select

    def recorded(pattern, *args, **kwargs):
        selected.append(pattern)
        return select(pattern, *args, **kwargs)

    monkeypatch.setattr(soupsieve, "select", recorded)

    export(rich_notebook(), ".html")

    assert selected == []
    assert html.BeautifulSoup is bs4.BeautifulSoup
    with pytest.raises(ZeroDivisionError), plain_selectors():
        assert html.BeautifulSoup is not bs4.BeautifulSoup
        raise ZeroDivisionError
    assert html.BeautifulSoup is bs4.BeautifulSoup
    bs4.BeautifulSoup("<img src=x>", "html.parser").select("img:not([alt])")
    assert selected == ["img:not([alt])"], "soupsieve answers selectors outside the block"


TRICKY_CODE = [
    "x = 1",
    "s = 'single' + \"double\" + '''triple'''",
    "if a < b and c > d or e & f: print('<b>bold</b> &amp; &lt;')",
    "html = '<style>body {}</style><script>alert(1)</script>'",
    "tabs\tand  spaces\n\n\nblank lines\n",
    "\nleading newline",
    "unicode = 'naïve café \u2013 \u201cquotes\u201d ±µ ß 日本語'",
    "emoji = '🐍'",  # beyond the first plane: the slow way, same page
    "carriage = 1\r\nreturns = 2\r",
    "%time y = 2\n!echo shell | grep x > out.txt\n%%bash",
    "bad = 'unterminated\n@decorator\ndef f(*args, **kw) -> None: ...",
    "amp = '&#39; &quot; &#x27; &nbsp; &copy'",
    "ctrl = '\x0b\x0c\x7f'",
]


def tricky_notebook():
    import nbformat

    v4 = nbformat.v4
    cells = [v4.new_code_cell(source) for source in TRICKY_CODE]
    cells.append(
        v4.new_code_cell(
            "df",
            outputs=[
                v4.new_output(
                    "execute_result",
                    data={
                        "text/html": "<style scoped>\n.dataframe td { color: red; }\n</style>"
                        "<table class='dataframe'><tr><td>1 &amp; 2</td></tr></table>",
                        "text/plain": "df",
                    },
                    execution_count=1,
                )
            ],
        )
    )
    notebook = v4.new_notebook(cells=[*rich_notebook().cells, *cells])
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return notebook


@pytest.mark.parametrize(
    "settings",
    [{}, {"theme": "dark"}, {"template_name": "classic"}, {"exclude_input": True}],
    ids=["lab", "lab-dark", "classic", "no-input"],
)
def test_lighter_html_pages_are_nbconverts_byte_for_byte(settings):
    """Stylesheets held out of the parsing, highlighted code not sanitized again: the page is
    still the one nbconvert's HTMLExporter writes, whatever the code holds."""
    from nbconvert import HTMLExporter

    from nbpipe.notebooks.convert import export

    notebook = tricky_notebook()
    theirs, _ = HTMLExporter(**settings).from_notebook_node(notebook)
    ours = export(notebook, ".html", settings)

    assert ours == theirs
    assert "nbpipe-stylesheet-" not in ours


def test_nbconverts_stylesheets_are_not_parsed_and_plain_code_is_not_sanitized(monkeypatch):
    """The page BeautifulSoup parses holds placeholders, not JupyterLab's stylesheets; ordinary
    highlighted code does not go through bleach (the page is nbconvert's: the test above)."""
    import bleach
    import bs4

    from nbpipe.notebooks.convert import export

    parsed: list[int] = []
    cleaned: list[str] = []
    soup_init, clean = bs4.BeautifulSoup.__init__, bleach.clean

    def recorded_init(self, markup="", *args, **kwargs):
        parsed.append(len(markup))
        soup_init(self, markup, *args, **kwargs)

    def recorded_clean(text, *args, **kwargs):
        cleaned.append(text)
        return clean(text, *args, **kwargs)

    monkeypatch.setattr(bs4.BeautifulSoup, "__init__", recorded_init)
    monkeypatch.setattr(bleach, "clean", recorded_clean)

    page = export(rich_notebook(), ".html")

    assert len(page) > 200_000  # JupyterLab's stylesheets
    assert parsed and max(parsed) < 50_000
    assert cleaned == []


def test_highlighted_code_is_returned_as_bleach_would_return_it():
    """``html_page.clean_html`` answers at once only for markup that bleach returns unchanged:
    Pygments' highlighting of any code, tricky characters included, and a few hand-made
    lookalikes that bleach does change."""
    import random

    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.strings import clean_html as bleach_clean_html

    from nbpipe.notebooks.html_page import HIGHLIGHTED, clean_html

    generator = random.Random(12)
    plain = "abc xyz_019<>&'\"\t\n\\#%!@:;.,()[]{}=+-*/~`|^?éß日"
    odd = "\r\x0b\x00🐍"  # characters a parser replaces or drops, and one beyond the first plane
    sources = [*TRICKY_CODE]
    for alphabet in (plain, plain + odd):
        sources += [
            "".join(generator.choices(alphabet, k=generator.randint(1, 60))) for _ in range(150)
        ]
    highlighted = [
        Highlight2HTML(pygments_lexer=lexer)(source)
        for lexer in ("ipython3", "python", "bash")
        for source in sources
    ]
    ordinary = [
        markup
        for markup, source in zip(highlighted, sources * 3, strict=True)
        if not set(odd) & set(source)
    ]
    lookalikes = [
        '<div class="highlight"><pre><span></span><span class="n">x</span></span></pre></div>',
        '<div class="highlight"><pre>\nx</pre></div>',
        '<div class="highlight"><pre><span></span><b>x</b></pre></div>',
        '<div class="highlight"><pre><span></span><span class="n" onclick="x">x</span></pre></div>',
        '<div class="highlight"><pre><span></span>&copy; &#x27;</pre></div>',
    ]

    for markup in highlighted + lookalikes:
        assert clean_html(markup) == bleach_clean_html(markup), markup
    assert all(HIGHLIGHTED.fullmatch(markup) for markup in ordinary)  # answered at once
    assert not any(HIGHLIGHTED.fullmatch(markup) for markup in lookalikes)


def test_a_stylesheet_that_would_end_its_element_early_stays_in_the_page():
    from markupsafe import Markup

    from nbpipe.notebooks.html_page import HeldStylesheets

    stylesheets = HeldStylesheets()
    include = stylesheets.hold(lambda name: Markup(f'<style type="text/css">\n{name}</style>'))

    held = include("p { color: red; }\n")
    kept = include("p::after { content: '</style>'; }\n")

    assert "color" not in held and "nbpipe-stylesheet-" in held
    assert kept == "<style type=\"text/css\">\np::after { content: '</style>'; }\n</style>"
    assert stylesheets.restore(f"<head>{held}</head>") == (
        '<head><style type="text/css">\np { color: red; }\n</style></head>'
    )


DEFERRED_SOUPSIEVE = """
import json, sys

from nbpipe.notebooks.imports import prepare_before_fork

prepare_before_fork(("papermill", "nbformat", "nbconvert"))  # an HTML export included
loaded_after_export = "soupsieve.css_parser" in sys.modules
import bs4

found = bs4.BeautifulSoup('<p class="a">x</p>', "html.parser").select("p.a")
print(json.dumps([loaded_after_export, "soupsieve.css_parser" in sys.modules, len(found)]))
"""


def test_soupsieve_loads_only_for_a_css_selector_of_someone_elses():
    """The notebook stack imports soupsieve as a module that loads on first use: an HTML report
    does not load it (its selectors are answered without it), a CSS select afterwards gets it
    whole."""
    run = subprocess.run(
        [sys.executable, "-c", DEFERRED_SOUPSIEVE], capture_output=True, text=True, check=True
    )
    assert json.loads(run.stdout) == [False, True, 1]
