"""``nbpipe build`` never destroys what the pipeline did not make, and never its own definition."""

from __future__ import annotations

from cli_helpers import json_lines, nbpipe, write

WRITE_FILE = "from pathlib import Path\n\ndef f(product):\n    Path(product).write_text('new')\n"


def test_a_task_writing_a_file_over_an_existing_folder_fails_and_keeps_it(project):
    write(project / "fns.py", WRITE_FILE)
    write(project / "data" / "precious.csv", "precious")
    write(project / "pipeline.yaml", "tasks:\n  - source: fns.f\n    product: data\n")

    result = nbpipe("build", cwd=project)

    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Build success" not in output
    assert f"product {project / 'data'} is an existing folder, but task 'f' wrote a file" in output
    assert "move or delete the folder yourself" in output
    assert (project / "data" / "precious.csv").read_text() == "precious"
    left = sorted(p.name for p in project.iterdir() if p.name != "__pycache__")
    assert left == ["data", "fns.py", "pipeline.yaml"]  # no staged copy, no build record


def test_a_product_that_is_the_spec_itself_is_refused(project):
    write(project / "fns.py", WRITE_FILE)
    spec = "tasks:\n  - source: fns.f\n    product: pipeline.yaml\n"
    write(project / "pipeline.yaml", spec)

    result = nbpipe("build", cwd=project)

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: {project / 'pipeline.yaml'}:3: " in result.stderr
    assert "the spec file" in result.stderr
    assert (project / "pipeline.yaml").read_text() == spec


def test_a_spec_that_is_not_utf8_is_a_spec_error_with_its_line(project):
    write(project / "fns.py", WRITE_FILE)
    (project / "pipeline.yaml").write_bytes(
        b"tasks:\n  - source: fns.f\n    product: caf\xe9.txt\n"
    )

    result = nbpipe("build", cwd=project)

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: {project / 'pipeline.yaml'}:3: " in result.stderr
    assert "save the file as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_a_product_folder_that_cannot_be_made_fails_that_task_alone(project):
    """An OS error preparing a product's folder (here its parent is a file; a folder without
    write permission behaves alike) fails that task; the rest builds and the stream ends."""
    write(project / "fns.py", WRITE_FILE)
    write(project / "blocked", "a file where a folder should be")
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - {source: fns.f, name: blocked, product: blocked/out.txt}
          - {source: fns.f, name: fine, product: out/fine.txt}
        """,
    )

    result = nbpipe("build", "--json", cwd=project)

    assert result.returncode == 1, result.stderr
    events = json_lines(result.stdout)
    failed = next(event for event in events if event["event"] == "task_failed")
    assert failed["task"] == "blocked"
    assert failed["failure"]["type"] in ("FileExistsError", "NotADirectoryError")
    assert ("task_finished", "fine") in [(event["event"], event.get("task")) for event in events]
    assert [event["outcome"] for event in events if event["event"] == "build_finished"] == [
        "failed"
    ]
    assert events[-1]["event"] == "summary" and "Traceback" not in result.stderr
    assert (project / "blocked").read_text() == "a file where a folder should be"
