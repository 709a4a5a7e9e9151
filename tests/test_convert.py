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
