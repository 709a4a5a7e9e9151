"""Ploomber's command-line options (issue 11): ``--log``/``--log-file``, ``build --partially``
with patterns and ``--skip-upstream``, factory entry points (``with_env`` included),
``nbpipe plot`` writing ``pipeline.html`` that renders offline, ``log_output``, and a task whose
product needs a missing program not blocking the others."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cli_helpers import nbpipe, notebook, write

FUNCTIONS = """
from pathlib import Path
import logging

def root(product):
    logging.getLogger("mine").info("root is running")
    Path(product).write_text("r")

def fit(product, upstream, k):
    Path(product).write_text(Path(upstream["root"]).read_text() + str(k))

def other(product):
    Path(product).write_text("o")
"""

PIPELINE = """
tasks:
  - source: fns.root
    product: out/root.txt
  - source: fns.fit
    name: fit-1
    product: out/fit-1.txt
    params: {k: 1}
  - source: fns.fit
    name: fit-2
    product: out/fit-2.txt
    params: {k: 2}
  - source: fns.other
    product: out/other.txt
"""


def make(project):
    write(project / "fns.py", FUNCTIONS)
    write(project / "pipeline.yaml", PIPELINE)


def test_log_and_log_file(project):
    make(project)
    result = nbpipe("build", "--log", "info", "--log-file", "build.log", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "INFO:mine:root is running" in result.stderr, "the pipeline's own logging"
    log = (project / "build.log").read_text()
    assert "root is running" in log
    bad = nbpipe("build", "--log", "loud", cwd=project)
    assert bad.returncode == 2 and "'loud' is not a log level" in bad.stderr


def test_partially_with_a_pattern_and_skip_upstream(project):
    make(project)
    result = nbpipe("build", "-p", "fit-*", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "out/fit-1.txt").read_text() == "r1"
    assert (project / "out/fit-2.txt").exists() and not (project / "out/other.txt").exists()

    (project / "out/root.txt").write_text("R")
    skipped = nbpipe("build", "-p", "fit-2", "--skip-upstream", "--force", cwd=project)
    assert skipped.returncode == 0, skipped.stderr
    assert (project / "out/fit-2.txt").read_text() == "R2", "root was not rebuilt"
    assert "root" not in skipped.stdout.split("-----", 1)[-1].split("Build")[0].split()

    none = nbpipe("build", "-p", "nothing-*", cwd=project)
    assert none.returncode == 2 and "No task matches 'nothing-*'" in none.stderr


FACTORY = """
from pathlib import Path
from nbpipe import DAG
from nbpipe.constants import TaskStatus
from nbpipe.env import with_env
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


def write(product, text):
    Path(product).write_text(text)


def report_statuses(dag):
    done = [name for name in dag if dag[name].exec_status == TaskStatus.Executed]
    Path("statuses.txt").write_text(",".join(done))


@with_env
def make(env, suffix: str = "!"):
    dag = DAG()
    PythonCallable(write, File(env.paths.out), dag, params={"text": env.greeting + suffix})
    dag.on_finish = report_statuses
    return dag
"""


def test_factory_entry_point_with_env(project):
    write(project / "factory.py", FACTORY)
    write(project / "env.yaml", "greeting: hello\npaths:\n  out: '{{here}}/out.txt'\n")
    result = nbpipe("build", "-e", "factory.make", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "out.txt").read_text() == "hello!"
    assert (project / "statuses.txt").read_text() == "write"

    again = nbpipe(
        "build",
        "-e",
        "factory.make",
        "--force",
        "--env--greeting",
        "bye",
        "--suffix",
        "?",
        cwd=project,
    )
    assert again.returncode == 0, again.stderr
    assert (project / "out.txt").read_text() == "bye?"

    wrong = nbpipe("build", "-e", "factory.make", "--sufix", "?", cwd=project)
    assert wrong.returncode == 2 and "unrecognized arguments: --sufix" in wrong.stderr
    undeclared = nbpipe("build", "-e", "factory.make", "--env", "nope=1", cwd=project)
    assert undeclared.returncode == 2 and "not declared" in undeclared.stderr


def test_plot_writes_pipeline_html_that_renders_offline(project):
    make(project)
    result = nbpipe("plot", cwd=project)
    assert result.returncode == 0, result.stderr
    page = (project / "pipeline.html").read_text()
    assert "Plot saved at: pipeline.html" in result.stderr
    assert "cdn" not in page.lower() and "http" not in page.split("<script>", 1)[0]
    assert "mermaid.initialize" in page and len(page) > 1_000_000, "mermaid.js is inlined"

    named = project / "pipeline.train.yaml"
    named.write_text((project / "pipeline.yaml").read_text())
    assert nbpipe("plot", "-e", "pipeline.train.yaml", "-i", cwd=project).returncode == 0
    assert "out/root.txt" in (project / "pipeline.train.html").read_text()
    png = nbpipe("plot", "--backend", "pygraphviz", cwd=project)
    assert png.returncode == 2 and "not supported" in png.stderr

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium to render the page")
    rendered = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (project / "pipeline.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(project), "PATH": "/usr/bin:/bin"},
    )
    assert "<svg" in rendered.stdout and "fit-1" in rendered.stdout, rendered.stderr[-2000:]


def test_log_output_shows_the_notebook_on_stderr(project):
    notebook(
        project / "talk.py",
        "import logging, sys\nlogging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
        "logging.getLogger('nb').info('logged in the notebook')\nprint('printed in the notebook')",
    )
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - source: talk.py
            product: out/talk.ipynb
            papermill_params: {log_output: true}
        """,
    )
    result = nbpipe("build", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "[talk] printed in the notebook" in result.stderr
    assert "logged in the notebook" in result.stderr


@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="a TeX toolchain is installed")
def test_a_task_needing_a_missing_program_does_not_block_the_others(project):
    notebook(project / "report.py", "print('report')")
    write(project / "fns.py", FUNCTIONS)
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - source: report.py
            product: out/report.pdf
          - source: fns.other
            product: out/other.txt
        """,
    )
    alone = nbpipe("task", "other", cwd=project)
    assert alone.returncode == 0, alone.stderr
    partial = nbpipe("build", "-p", "other", "--force", cwd=project)
    assert partial.returncode == 0, partial.stderr
    everything = nbpipe("build", cwd=project)
    assert everything.returncode == 1
    assert "a .pdf product needs xelatex" in everything.stderr
    assert (project / "out/other.txt").exists()
