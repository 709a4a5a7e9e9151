"""``--json``: the versioned JSON-lines stream the server extension reads (docs/json-events.md)."""

from __future__ import annotations

import json

import jsonschema
from cli_helpers import json_lines, nbpipe, write

from nbpipe.engine.events import EVENT_SCHEMA_VERSION
from nbpipe.engine.schema import SCHEMA_PATH

TASKS = """
from pathlib import Path


def noisy(product):
    print("noise from a task")
    Path(product).write_text("noisy")


def after(product, upstream):
    Path(product).write_text(Path(upstream["noisy"]).read_text())


def broken(product):
    raise ValueError("broken on purpose")


def after_broken(product, upstream):
    upstream["broken"]
"""


def test_json_lines_cover_every_event_and_end_with_a_summary(project):
    write(project / "fns.py", TASKS)
    write(
        project / "pipeline.yaml",
        """
        - {source: fns.noisy, product: out/noisy.txt}
        - {source: fns.after, product: out/after.txt}
        - {source: fns.broken, product: out/broken.txt}
        - {source: fns.after_broken, product: out/after_broken.txt}
        """,
    )

    result = nbpipe("build", "--json", cwd=project)

    assert result.returncode == 1
    lines = json_lines(result.stdout)  # every line of stdout is JSON
    assert all(line["v"] == EVENT_SCHEMA_VERSION for line in lines)
    header, *events, summary = lines
    assert header["event"] == "header"
    assert header["format"] == "nbpipe-build-events" and header["command"] == "build"
    assert header["entry_point"] == str(project / "pipeline.yaml")
    kinds = [(e["event"], e["task"]) for e in events]
    assert kinds[0] == ("build_started", None) and kinds[-1] == ("build_finished", None)
    assert ("task_finished", "after") in kinds
    assert ("task_failed", "broken") in kinds
    assert ("task_aborted", "after_broken") in kinds
    assert sorted(events[0]["tasks"]) == ["after", "after_broken", "broken", "noisy"]
    failed = next(e for e in events if e["event"] == "task_failed")
    assert failed["failure"]["type"] == "ValueError"
    assert failed["failure"]["message"] == "broken on purpose"
    assert all(isinstance(e["time"], float) for e in lines)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    for event in events:  # every engine event is an instance of the committed schema
        validator.validate(event)

    assert summary["event"] == "summary"
    assert (summary["outcome"], summary["exit_code"], summary["error"]) == ("failed", 1, None)
    rows = {row["name"]: row["status"] for row in summary["report"]["tasks"]}
    assert rows == {
        "noisy": "executed",
        "after": "executed",
        "broken": "failed",
        "after_broken": "aborted",
    }
    # what tasks print never reaches the JSON stream
    assert "noise from a task" not in result.stdout
    assert "noise from a task" in result.stderr


def test_json_summary_of_a_spec_error(project):
    write(project / "pipeline.yaml", "tasks:\n  - source: nowhere.py\n    product: x.ipynb\n")

    result = nbpipe("build", "--json", cwd=project)

    assert result.returncode == 2
    header, summary = json_lines(result.stdout)
    assert header["event"] == "header"
    assert (summary["event"], summary["outcome"], summary["exit_code"]) == ("summary", "error", 2)
    error = summary["error"]
    assert error["type"] == "MissingSourceError"
    assert (error["file"], error["line"], error["key"]) == (
        str(project / "pipeline.yaml"),
        2,
        "source",
    )
    assert "nowhere.py does not exist" in error["message"]
    assert summary["report"] is None
    assert "error: " in result.stderr


def test_json_summary_of_an_early_stop(project):
    write(
        project / "hooks.py",
        "from nbpipe.exceptions import DAGBuildEarlyStop\n\n"
        "def make(product):\n    open(product, 'w').close()\n\n"
        "def stop():\n    raise DAGBuildEarlyStop('enough')\n",
    )
    write(
        project / "pipeline.yaml",
        "on_finish: hooks.stop\ntasks:\n  - {source: hooks.make, product: x}\n",
    )

    result = nbpipe("build", "--json", cwd=project)

    assert result.returncode == 0
    summary = json_lines(result.stdout)[-1]
    assert (summary["outcome"], summary["exit_code"], summary["stop_reason"]) == (
        "stopped_early",
        0,
        "enough",
    )
