"""``%pipeline build``'s live table shows the cell a running notebook is in."""

from __future__ import annotations

import html
import sys
import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from wait_helpers import touch_code, wait_for_marker, wait_until


@pytest.fixture
def shell(workdir, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec puts its folder on sys.path
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbpipe")
    yield shell
    shell.run_line_magic("unload_ext", "nbpipe")
    InteractiveShell.clear_instance()


def test_the_live_table_names_the_running_cell(shell, workdir):
    reached, release = workdir / "reached", workdir / "release"
    (workdir / "pipeline.yaml").write_text(
        "tasks:\n  - source: waits.py\n    product: output/waits.ipynb\n"
    )
    (workdir / "waits.py").write_text(
        '# %% tags=["parameters"]\nproduct = None\n\n'
        f"# %%\nimport pathlib, time\n{touch_code(reached)}\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\n"
    )
    reports = []

    def shown() -> str:
        return "\n".join(o.data.get("text/html", "") for o in list(captured.outputs))

    with capture_output() as captured:
        build = threading.Thread(
            target=lambda: reports.append(shell.run_line_magic("pipeline", "build"))
        )
        build.start()
        try:
            wait_for_marker(reached, "the notebook to reach its waiting cell")
            expected = html.escape("cell 2/2 · import pathlib, time")
            wait_until(
                lambda: expected in shown(),
                lambda: f"the live table to show {expected!r}; it shows {shown()[-400:]!r}",
            )
        finally:
            release.touch()
            build.join(timeout=120)
    assert reports and reports[0].outcome.value == "success"
    # the build is over: its final table names no running cell
    assert "cell 2/2" not in captured.outputs[-1].data["text/html"]
