"""The %pipeline magic, in IPython's InteractiveShell and end to end in a real kernel."""

from __future__ import annotations

import json
import sys
import textwrap
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from jupyter_client import KernelManager
from nbclient import NotebookClient
from notebook_files import processes_with_marker
from wait_helpers import touch_code, wait_for_marker

from nbpipe.engine.events import TaskStatus

NOTEBOOK = """\
# %% tags=["parameters"]
upstream = ["make_numbers"]
product = None
multiplier = 2

# %%
from pathlib import Path
numbers = [int(n) for n in Path(upstream["make_numbers"]).read_text().split()]
total = sum(numbers) * multiplier
{extra}
print("total:", total)
"""

TASKS = """\
from pathlib import Path

from nbpipe.exceptions import DAGBuildEarlyStop


def make_numbers(product):
    Path(product).write_text("1 2 3")


def stop(product):
    raise DAGBuildEarlyStop("nothing new to process")
"""


def make_pipeline(folder: Path, extra: str = "", executor: str = "serial") -> Path:
    (folder / "magic_tasks.py").write_text(TASKS)
    (folder / "summarise.py").write_text(NOTEBOOK.format(extra=extra))
    (folder / "pipeline.yaml").write_text(
        textwrap.dedent(
            f"""\
            executor: {executor}
            tasks:
              - source: magic_tasks.make_numbers
                product: output/numbers.txt
              - source: summarise.py
                product:
                  nb: output/summarise.ipynb
                  html: output/summarise.html
                nb_product_key: [nb, html]
            """
        )
    )
    return folder / "pipeline.yaml"


@pytest.fixture
def shell(workdir, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec puts its folder on sys.path
    sys.modules.pop("magic_tasks", None)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbpipe")
    yield shell
    shell.run_line_magic("unload_ext", "nbpipe")
    InteractiveShell.clear_instance()
    sys.modules.pop("magic_tasks", None)


def html_outputs(captured) -> str:
    return "\n".join(output.data.get("text/html", "") for output in captured.outputs)


def test_build_from_the_pipeline_found_upwards(shell, workdir, monkeypatch):
    make_pipeline(workdir)
    (workdir / "notebooks").mkdir()
    monkeypatch.chdir(workdir / "notebooks")  # the notebook's folder, below the pipeline

    with capture_output() as captured:
        report = shell.run_line_magic("pipeline", "build")

    assert report.outcome.value == "success"
    assert {row.status for row in report} == {TaskStatus.EXECUTED}
    shown = html_outputs(captured)
    assert "Build success" in shown and "2/2 tasks" in shown
    assert "total: 12" in (workdir / "output/summarise.html").read_text()
    assert '<a href="../output/summarise.html"' in report._repr_html_()

    report = shell.run_line_magic("pipeline", "build")
    assert {row.status for row in report} == {TaskStatus.SKIPPED}
    status = shell.run_line_magic("pipeline", "status")
    assert [row.state for row in status] == ["up to date", "up to date"]
    assert "flowchart" in str(shell.run_line_magic("pipeline", "plot"))


def test_build_a_dag_variable_with_options(shell, workdir):
    shell.run_cell(
        textwrap.dedent(
            """
            from nbpipe import DAG
            from nbpipe.products import File
            from nbpipe.tasks import PythonCallable
            from pathlib import Path

            def write(product):
                Path(product).write_text("hi")

            dag = DAG()
            PythonCallable(write, File("a.txt"), dag)
            PythonCallable(write, File("b.txt"), dag, name="other")
            """
        )
    )
    report = shell.run_line_magic("pipeline", "build dag --partially other")
    assert [row.name for row in report] == ["other"]
    report = shell.run_line_magic("pipeline", "build dag --force")
    assert {row.name for row in report if row.ran} == {"write", "other"}


def test_notebook_functions_are_refused_under_parallel(shell, workdir):
    shell.run_cell(
        textwrap.dedent(
            """
            from nbpipe import DAG
            from nbpipe.products import File
            from nbpipe.tasks import PythonCallable

            def local(product):
                pass

            dag = DAG(executor="parallel")
            PythonCallable(local, File("a.txt"), dag)
            """
        )
    )
    with pytest.raises(UsageError, match="local use functions defined in this notebook"):
        shell.run_line_magic("pipeline", "build dag")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("deploy", "invalid choice: 'deploy'"),
        ("build --processes many", "invalid int value: 'many'"),
        ("build nothing_here", "'nothing_here' is not defined, not an nbpipe DAG"),
    ],
)
def test_usage_errors(shell, workdir, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("pipeline", line)


def test_missing_entry_point(shell, workdir):
    with pytest.raises(UsageError, match=r"no pipeline\.yaml in .* or its parent folders"):
        shell.run_line_magic("pipeline", "build")


def test_spec_error_names_the_file_and_line(shell, workdir):
    (workdir / "pipeline.yaml").write_text("tasks:\n  - source: nb.py\n    prodcut: out.ipynb\n")
    with pytest.raises(UsageError, match=r"pipeline.yaml:3: .*prodcut.*did you mean 'product'"):
        shell.run_line_magic("pipeline", "build")


def test_failing_task_is_shown_compactly(shell, workdir):
    make_pipeline(workdir, extra="total = total / 0")
    with capture_output() as captured:
        report = shell.run_line_magic("pipeline", "build")
    shown = html_outputs(captured)
    assert report.outcome.value == "failed"
    assert "Build failed" in shown and "<b>summarise</b>" in shown
    assert "cell 2, line 4: ZeroDivisionError: division by zero" in shown
    assert "summarise.failed.ipynb" in shown
    assert "Traceback" not in shown


def test_early_stop_is_shown(shell, workdir):
    make_pipeline(workdir)
    spec = (
        (workdir / "pipeline.yaml")
        .read_text()
        .replace("magic_tasks.make_numbers", "magic_tasks.stop")
    )
    (workdir / "pipeline.yaml").write_text(spec.replace('upstream = ["make_numbers"]', ""))
    (workdir / "summarise.py").write_text(
        NOTEBOOK.replace('["make_numbers"]', '["stop"]').format(extra="")
    )
    with capture_output() as captured:
        report = shell.run_line_magic("pipeline", "build")
    assert report.stopped_early
    assert "Stopped early</b>: nothing new to process" in html_outputs(captured)


def test_end_to_end_in_a_real_kernel(workdir):
    make_pipeline(workdir, executor="parallel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext nbpipe"),
        nbformat.v4.new_code_cell("report = %pipeline build\nreport"),
        nbformat.v4.new_code_cell("print(report['summarise'].status.value)"),
    ]
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    nbformat.write(notebook, workdir / "driver.ipynb")

    build_outputs = notebook.cells[1].outputs
    report_html = [
        o["data"]["text/html"] for o in build_outputs if o.get("output_type") == "execute_result"
    ]
    assert report_html and "<table>" in report_html[0] and "executed" in report_html[0]
    assert 'href="output/summarise.html"' in report_html[0]
    assert notebook.cells[2].outputs[0]["text"].strip() == "executed"
    saved = json.loads((workdir / "driver.ipynb").read_text())
    assert "output/summarise.html" in json.dumps(saved["cells"][1]["outputs"])


def test_interrupting_the_kernel_stops_the_build_and_its_workers(workdir, monkeypatch):
    marker = f"NBPIPE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(marker, "1")  # the driver kernel, the build's workers and kernels inherit it
    reached = workdir / "sleeping.reached"  # the notebook creates it as it starts sleeping
    make_pipeline(
        workdir, extra=f"{touch_code(reached)}\nimport time\ntime.sleep(120)", executor="parallel"
    )
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(workdir))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive("%load_ext nbpipe", timeout=60)
        outputs = []
        message_id = client.execute("report = %pipeline build")
        wait_for_marker(reached, "the build's notebook to reach its sleeping cell")
        manager.interrupt_kernel()
        while True:
            message = client.get_iopub_msg(timeout=30)
            if message["parent_header"].get("msg_id") != message_id:
                continue
            outputs.append(message)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        shown = json.dumps([m["content"] for m in outputs])
        assert "Build interrupted" in shown

        def left_behind() -> list[bytes]:
            """Workers and kernels of the build; not the driver kernel, nor multiprocessing's
            resource tracker, which serves the driver for as long as it lives."""
            commands = []
            for pid in processes_with_marker(marker):
                try:
                    commands.append(Path(f"/proc/{pid}/cmdline").read_bytes())
                except OSError:  # it just ended
                    continue
                if pid == manager.provisioner.pid or b"resource_tracker" in commands[-1]:
                    commands.pop()
            return commands

        deadline = time.time() + 10
        while left_behind() and time.time() < deadline:
            time.sleep(0.2)
        assert left_behind() == []
        assert not list((workdir / "output").glob(".nbpipe-*")), "no staged product left"
        assert not (workdir / "output/summarise.html").exists()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
