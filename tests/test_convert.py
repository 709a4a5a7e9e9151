"""Exports to product formats: nbconvert's compiled templates kept across processes."""

import os
import subprocess
import sys
from pathlib import Path

EXPORT = """
import sys
import nbformat
from nbpipe.notebooks.convert import export, template_cache

notebook = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_markdown_cell("# A report"),
    nbformat.v4.new_code_cell("x = 1\\nprint(x)"),
])
for number, cell in enumerate(notebook.cells):
    cell.id = f"cell-{number}"  # fixed: two runs' reports compare equal
notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
with open(sys.argv[1], "w") as f:
    f.write(export(notebook, ".html"))
print("cache" if template_cache() is not None else "no cache")
"""


def export_in_new_process(tmp_path: Path, out: str, tmpdir: Path) -> str:
    """Exports a notebook to HTML in a fresh interpreter whose temporary directory is
    ``tmpdir``; returns whether it had a template cache."""
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    done = subprocess.run(
        [sys.executable, "-c", EXPORT, str(tmp_path / out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def cached_templates(tmpdir: Path) -> dict[str, int]:
    folder = tmpdir / f"_jinja2-cache-{os.getuid()}"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.cache")}


def test_a_second_process_uses_the_templates_the_first_compiled(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    assert export_in_new_process(tmp_path, "first.html", tmpdir) == "cache"
    compiled = cached_templates(tmpdir)
    assert compiled, "the first export keeps its compiled templates"

    assert export_in_new_process(tmp_path, "second.html", tmpdir) == "cache"
    assert cached_templates(tmpdir) == compiled, "the second loads them, compiling none anew"
    first = (tmp_path / "first.html").read_text()
    assert "A report" in first and (tmp_path / "second.html").read_text() == first


def test_an_unusable_cache_folder_only_costs_the_compiling(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmpdir / f"_jinja2-cache-{os.getuid()}").write_text("a file where Jinja wants its folder")
    assert export_in_new_process(tmp_path, "report.html", tmpdir) == "no cache"
    assert "A report" in (tmp_path / "report.html").read_text()
