"""``nbpipe build`` on real notebooks: the reference spec, a grid batch, early stop, failures."""

from __future__ import annotations

import json

import pytest
from cli_helpers import json_lines, nbpipe, notebook, outputs_of, write

REFERENCE = """
executor: parallel

tasks:
  - source: {source}
    nb_product_key: [nb_ipynb, nb_html]
    product:
        nb_ipynb: {folder}nb.ipynb
        nb_html: {folder}report.html
"""


def ipynb_source(path):
    cell = {"cell_type": "code", "execution_count": None, "outputs": []}
    notebook = {
        "cells": [
            {
                **cell,
                "metadata": {"tags": ["parameters"]},
                "source": "upstream = None\nproduct = None",
            },
            {**cell, "metadata": {}, "source": "print('hello from ipynb')"},
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


@pytest.mark.parametrize("source", ["nb.py", "nb.ipynb"])
def test_reference_spec_builds_then_skips(project, source):
    folder = "" if source == "nb.py" else "output/"
    if source == "nb.py":
        notebook(project / "nb.py", body="print('hello from py')")
    else:
        ipynb_source(project / "nb.ipynb")
    write(project / "pipeline.yaml", REFERENCE.format(source=source, folder=folder))

    first = nbpipe("build", cwd=project)

    assert first.returncode == 0, first.stderr
    executed = project / f"{folder}nb.ipynb"
    assert "hello from" in outputs_of(executed)
    assert "hello from" in (project / f"{folder}report.html").read_text()
    assert "executed" in first.stdout and "Build success" in first.stdout
    assert f"{folder}nb.ipynb, {folder}report.html" in first.stdout  # paths shown relative

    second = nbpipe("build", cwd=project)

    assert second.returncode == 0, second.stderr
    assert "skipped" in second.stdout and "executed" not in second.stdout


def test_grid_builds_nine_notebooks_in_parallel(project):
    notebook(
        project / "nb.py",
        body="print(f'a={a} b={b}')",
        parameters="a = 0\nb = ''",
    )
    write(
        project / "pipeline.yaml",
        """
        executor:
          dotted_path: nbpipe.executors.Parallel
          processes: 2
        tasks:
          - source: nb.py
            name: nb-[[a]]-[[b]]
            nb_product_key: [nb, html]
            product:
              nb: output/nb-[[a]]-[[b]].ipynb
              html: output/nb-[[a]]-[[b]].html
            grid:
              a: [1, 2, 3]
              b: [x, y, z]
        """,
    )

    result = nbpipe("build", "--json", cwd=project)

    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert "Parallel(processes=2" in events[1]["executor"]
    finished = [e["task"] for e in events if e["event"] == "task_finished"]
    assert len(finished) == 9
    for a in (1, 2, 3):
        for b in "xyz":
            # every grid product gets the combination's index, as in Ploomber
            index = (a - 1) * 3 + "xyz".index(b)
            assert f"a={a} b={b}" in outputs_of(project / "output" / f"nb-{a}-{b}-{index}.ipynb")
            assert (project / "output" / f"nb-{a}-{b}-{index}.html").exists()


HOOKS = """
from pathlib import Path

from nbpipe.exceptions import DAGBuildEarlyStop


def make(product):
    Path(product).write_text("x")


def stop(report):
    raise DAGBuildEarlyStop("enough for today")


def stop_after(product, threshold):
    raise DAGBuildEarlyStop(f"threshold {threshold} reached")
"""


def test_dag_on_finish_early_stop_exits_0_with_a_message(project):
    write(project / "hooks.py", HOOKS)
    write(
        project / "pipeline.yaml",
        """
        on_finish: hooks.stop
        tasks:
          - source: hooks.make
            product: out/a.txt
        """,
    )

    result = nbpipe("build", cwd=project)

    assert result.returncode == 0, result.stderr
    assert "Build stopped early" in result.stdout and "enough for today" in result.stdout


def test_task_on_finish_early_stop_cancels_the_rest(project):
    write(project / "hooks.py", HOOKS)
    write(
        project / "pipeline.yaml",
        """
        meta:
          extract_upstream: false
        tasks:
          - source: hooks.make
            name: first
            product: out/a.txt
            on_finish: {dotted_path: hooks.stop_after, threshold: 3}
          - source: hooks.make
            name: second
            product: out/b.txt
            upstream: [first]
        """,
    )

    result = nbpipe("build", cwd=project)

    assert result.returncode == 0, result.stderr
    assert "threshold 3 reached" in result.stdout
    assert "cancelled" in result.stdout
    assert not (project / "out" / "b.txt").exists()


def test_failing_notebook_exits_1_naming_task_cell_and_partial_notebook(project):
    notebook(project / "bad.py", body="x = 1\ny = x / 0")
    write(project / "pipeline.yaml", "tasks:\n  - {source: bad.py, product: output/bad.ipynb}\n")

    result = nbpipe("build", cwd=project)

    assert result.returncode == 1
    assert "error: task 'bad' failed in bad.py, cell 2, line 2: ZeroDivisionError" in result.stderr
    assert "    y = x / 0" in result.stderr
    assert "partially executed notebook: output/bad.failed.ipynb" in result.stderr
    assert (project / "output" / "bad.failed.ipynb").exists()
    assert not (project / "output" / "bad.ipynb").exists()
    assert "bad   yes  failed" in result.stdout  # the report table

    again = nbpipe("build", "--json", cwd=project)

    assert again.returncode == 1
    events = json_lines(again.stdout)
    failed = next(e for e in events if e["event"] == "task_failed")
    assert failed["task"] == "bad"
    failure = failed["failure"]
    assert (failure["cell"], failure["line"], failure["type"]) == (1, 2, "ZeroDivisionError")
    assert failure["code"] == "y = x / 0" and failure["task"] == "bad"
    assert failure["partial_notebook"] == str(project / "output" / "bad.failed.ipynb")
    assert events[-1]["outcome"] == "failed" and events[-1]["exit_code"] == 1
