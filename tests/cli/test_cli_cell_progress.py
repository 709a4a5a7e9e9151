"""``nbpipe build --json``: a running notebook's cells and output are lines of the stream."""

from __future__ import annotations

import json

import jsonschema
from cli_helpers import json_lines, nbpipe, write

from nbpipe.engine.schema import SCHEMA_PATH


def test_json_lines_carry_the_cells_and_output_of_a_notebook(tmp_path):
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: report.py
            product: output/report.ipynb
        """,
    )
    write(
        tmp_path / "report.py",
        """
        # %% tags=["parameters"]
        product = None

        # %%
        total = 6 * 7

        # %%
        print("total", total)
        """,
    )
    result = nbpipe("build", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    lines = json_lines(result.stdout)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    task = [line for line in lines if line.get("task") == "report"]
    kinds = [line["event"] for line in task]
    assert kinds == [
        "task_queued",
        "task_started",
        *["task_cell_started", "task_cell_finished"] * 2,
        "task_cell_started",
        "task_output",
        "task_cell_finished",
        "task_finished",
    ]
    for line in task:
        validator.validate({key: value for key, value in line.items() if key != "v"})
    started = [line for line in task if line["event"] == "task_cell_started"]
    assert [(line["cell"], line["cells"], line["line"]) for line in started] == [
        (1, 3, "product = None"),
        (2, 3, "total = 6 * 7"),
        (3, 3, 'print("total", total)'),
    ]
    assert next(line for line in task if line["event"] == "task_output")["text"] == "total 42\n"
