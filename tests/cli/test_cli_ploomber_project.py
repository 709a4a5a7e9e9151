"""A Ploomber-style project (tests/ploomber_project/: grid groups, wildcard upstream, a hook
asking for ``client``, ``class: ScriptRunner``, a ShellScript, serializers and
``meta.import_tasks_from``) builds with the nbpipe CLI unchanged, and a second build skips it."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_helpers import nbpipe

PROJECT = Path(__file__).resolve().parent.parent / "ploomber_project"


def test_a_ploomber_project_builds_unchanged(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)

    result = nbpipe("build", cwd=project, timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    out = project / "output"
    fits = (out / "report.txt").read_text().splitlines()
    assert sorted(line.split()[0] for line in fits) == [
        "fit-lasso-1",
        "fit-lasso-2",
        "fit-ridge-1",
        "fit-ridge-2",
        "fit-tree-",
    ]
    assert "fit-tree- tree:0:6" in fits, "the group without alpha keeps the notebook's default"
    assert (out / "summary.txt").read_text() == "5 fits"
    assert (out / "archive.txt").read_text().strip() == "5 fits"
    assert (out / "client.txt").read_text() == "None"
    assert len(list(out.glob("score-*.txt"))) == 5, "grid products numbered as Ploomber does"

    again = nbpipe("build", cwd=project, timeout=600)
    assert again.returncode == 0 and "executed" not in again.stdout, again.stdout
