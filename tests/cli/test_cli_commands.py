"""The commands and options of ``nbpipe`` on pipelines of functions (no kernels: fast)."""

from __future__ import annotations

import subprocess
import sys
import time

from cli_helpers import json_lines, nbpipe, notebook, write

from nbpipe.engine.events import EVENT_SCHEMA_VERSION

TASKS = """
from pathlib import Path


def a(product, n=1):
    Path(product).write_text(str(n))


def b(product, upstream):
    Path(product).write_text(Path(upstream["a"]).read_text() + "b")


def noisy(product):
    print("noise from a task")
    Path(product).write_text("noisy")


def broken(product):
    raise ValueError("broken on purpose")
"""

PIPELINE = """
tasks:
  - source: fns.a
    product: out/a.txt
    params: {n: '{{n}}'}
  - source: fns.b
    product: out/b.txt
"""


def make(project, pipeline=PIPELINE, env="n: 1\n"):
    write(project / "fns.py", TASKS)
    write(project / "env.yaml", env)
    return write(project / "pipeline.yaml", pipeline)


# -- help and version ---------------------------------------------------------------------------
def test_help_is_fast_and_imports_nothing_heavy(tmp_path):
    heavy = ("yaml", "papermill", "nbformat", "nbconvert", "jupyter_client", "jupytext", "tqdm")
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nbpipe", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert traced.returncode == 0
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines()}
    assert not [name for name in imported if name.split(".")[0] in heavy]
    assert not [name for name in imported if name in ("nbpipe.engine.dag", "nbpipe.spec")]

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nbpipe", "--help"], capture_output=True)
        timings.append(time.perf_counter() - started)
        assert result.returncode == 0
    assert min(timings) < 1.0, timings


def test_every_command_has_help(tmp_path):
    main = nbpipe("--help", cwd=tmp_path)
    assert main.returncode == 0
    for command in ("build", "status", "plot", "task"):
        assert command in main.stdout
    options = {
        "build": ["--force", "--partially", "--processes", "--env", "--json", "--entry-point"],
        "status": ["--json", "--entry-point"],
        "plot": ["--output"],
        "task": ["NAME", "--force"],
    }
    for command, expected in options.items():
        result = nbpipe(command, "--help", cwd=tmp_path)
        assert result.returncode == 0
        assert all(option in result.stdout for option in expected), (command, result.stdout)


def test_version(tmp_path):
    from nbpipe import __version__

    result = nbpipe("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"nbpipe {__version__}")


def test_bad_usage_exits_2(tmp_path):
    assert nbpipe(cwd=tmp_path).returncode == 2
    wrong = nbpipe("build", "--frce", cwd=tmp_path)
    assert wrong.returncode == 2 and "unrecognized arguments: --frce" in wrong.stderr
    assert nbpipe("build", "--processes", "0", cwd=tmp_path).returncode == 2


# -- entry point --------------------------------------------------------------------------------
def test_entry_point_is_found_in_a_parent_folder(project):
    make(project)
    sub = project / "deep" / "er"
    sub.mkdir(parents=True)

    result = nbpipe("build", cwd=sub)

    assert result.returncode == 0, result.stderr
    assert (project / "out" / "b.txt").read_text() == "1b"


def test_entry_point_option_and_variable(project, tmp_path):
    make(project)
    result = nbpipe("status", "-e", str(project / "pipeline.yaml"), cwd=tmp_path)
    assert result.returncode == 0 and "never built" in result.stdout
    result = nbpipe("status", cwd=tmp_path, env={"NBPIPE_ENTRY_POINT": str(project)})
    assert result.returncode == 0 and "never built" in result.stdout


def test_no_pipeline_found(tmp_path):
    result = nbpipe("build", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: no pipeline.yaml in" in result.stderr and "Traceback" not in result.stderr


def test_dotted_path_entry_point(project):
    write(project / "fns.py", TASKS)
    write(
        project / "factory.py",
        """
        from fns import a
        from nbpipe import DAG
        from nbpipe.tasks import PythonCallable

        def make_dag():
            dag = DAG()
            PythonCallable(a, "made.txt", dag)
            return dag
        """,
    )
    result = nbpipe("build", "-e", "factory.make_dag", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "made.txt").read_text() == "1"


def test_spawned_workers_import_the_spec_folder_modules(project, tmp_path):
    make(
        project,
        pipeline=PIPELINE.replace(
            "tasks:",
            "executor: {dotted_path: nbpipe.executors.Parallel, start_method: spawn}\ntasks:",
        ),
    )

    result = nbpipe("build", "-e", str(project), cwd=tmp_path)  # not the spec's folder

    assert result.returncode == 0, result.stderr
    assert (project / "out" / "b.txt").read_text() == "1b"


# -- build options ------------------------------------------------------------------------------
def test_env_overrides_in_both_spellings(project):
    make(project)

    assert nbpipe("build", "--env", "n=5", cwd=project).returncode == 0
    assert (project / "out" / "b.txt").read_text() == "5b"
    assert nbpipe("build", "--env--n", "7", cwd=project).returncode == 0
    assert (project / "out" / "b.txt").read_text() == "7b"

    unknown = nbpipe("build", "--env", "nn=1", cwd=project)
    assert unknown.returncode == 2 and "did you mean 'n'" in unknown.stderr
    malformed = nbpipe("build", "--env", "n", cwd=project)
    assert malformed.returncode == 2 and "--env expects KEY=VALUE" in malformed.stderr


def test_force_partially_and_processes(project):
    make(project)

    partial = nbpipe("build", "--partially", "a", cwd=project)
    assert partial.returncode == 0
    assert (project / "out" / "a.txt").exists() and not (project / "out" / "b.txt").exists()

    full = nbpipe("build", "--json", "--processes", "2", cwd=project)
    events = json_lines(full.stdout)
    assert "Parallel(processes=2" in events[1]["executor"]
    assert [e["task"] for e in events if e["event"] == "task_skipped"] == ["a"]

    forced = nbpipe("build", "--force", "--json", cwd=project)
    assert [e["task"] for e in json_lines(forced.stdout) if e["event"] == "task_finished"] == [
        "a",
        "b",
    ]

    unknown = nbpipe("build", "--partially", "bb", cwd=project)
    assert unknown.returncode == 2 and "no task named 'bb' (did you mean 'b'?)" in unknown.stderr


def test_partially_is_repeatable(project):
    make(project, pipeline=PIPELINE + "  - source: fns.noisy\n    product: out/noisy.txt\n")

    both = nbpipe("build", "--partially", "noisy", "-p", "a", "--json", cwd=project)
    assert both.returncode == 0, both.stderr
    finished = [e["task"] for e in json_lines(both.stdout) if e["event"] == "task_finished"]
    assert finished == ["a", "noisy"]  # each once, in the pipeline's order; not b
    assert not (project / "out" / "b.txt").exists()

    again = nbpipe("build", "-p", "b", "-p", "a", "-p", "b", "--json", cwd=project)
    events = json_lines(again.stdout)
    assert events[1]["tasks"] == ["a", "b"] and events[1]["to_run"] == ["b"]

    unknown = nbpipe("build", "-p", "a", "-p", "x", "-p", "nosy", cwd=project)
    assert unknown.returncode == 2
    assert "no task named 'x'; no task named 'nosy' (did you mean 'noisy'?)" in unknown.stderr


def test_task_command_builds_one_task(project):
    make(project)

    early = nbpipe("task", "b", cwd=project)
    assert early.returncode == 2
    assert "needs upstream products that do not exist yet: a" in early.stderr
    assert "nbpipe build --partially b" in early.stderr

    assert nbpipe("task", "a", cwd=project).returncode == 0
    built = nbpipe("task", "b", cwd=project)
    assert built.returncode == 0 and "b     yes  executed" in built.stdout
    assert "a " not in built.stdout.split("\n", 2)[2]  # only b is in the report
    again = nbpipe("task", "b", cwd=project)
    assert "skipped" in again.stdout
    forced = nbpipe("task", "b", "--force", cwd=project)
    assert "executed" in forced.stdout


# -- status and plot ----------------------------------------------------------------------------
def test_status(project):
    make(project)
    before = nbpipe("status", cwd=project)
    assert before.returncode == 0
    assert "never built" in before.stdout and "out/a.txt" in before.stdout

    nbpipe("build", cwd=project)
    (project / "fns.py").write_text(TASKS.replace('+ "b"', '+ "B"'))
    after = nbpipe("status", "--json", cwd=project)
    rows = {row["name"]: row for row in json_lines(after.stdout)[0]["tasks"]}
    assert rows["a"]["state"] == "up to date"
    assert rows["b"]["state"] == "outdated" and rows["b"]["reasons"] == ["source changed"]


def test_status_json_describes_the_pipeline(project, tmp_path):
    make(project)
    notebook(project / "nb.py", body="print('hi')", parameters="upstream = ['b']")
    write(project / "pipeline.yaml", PIPELINE + "  - source: nb.py\n    product: out/nb.ipynb\n")
    # Whatever the user's code prints while the pipeline loads stays out of stdout.
    (project / "fns.py").write_text("print('{not json')\n" + TASKS)

    result = nbpipe("status", "-e", str(project), "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    [status] = json_lines(result.stdout)
    assert status["v"] == EVENT_SCHEMA_VERSION and status["format"] == "nbpipe-status"
    assert status["entry_point"] == str(project / "pipeline.yaml")
    assert status["dag"] == "project" and status["executor"].startswith("Serial")
    assert status["warnings"] == []
    assert status["edges"] == [["a", "b"], ["b", "nb"]]
    a, b, nb = status["tasks"]
    assert a == {
        "name": "a",
        "kind": "function",
        "source": str(project / "fns.py"),
        "function": "fns.a",
        "upstream": [],
        "grid": None,
        "products": [str(project / "out" / "a.txt")],
        "state": "never built",
        "reasons": [f"product {project / 'out' / 'a.txt'} does not exist"],
        "last_built": None,
    }
    assert (b["kind"], b["upstream"]) == ("function", ["a"])
    assert (nb["kind"], nb["source"], nb["function"]) == ("notebook", str(project / "nb.py"), None)
    assert nb["upstream"] == ["b"] and nb["products"] == [str(project / "out" / "nb.ipynb")]
    assert "{not json" in result.stderr

    built = nbpipe("build", "-p", "a", cwd=project)
    assert built.returncode == 0
    after = json_lines(nbpipe("status", "--json", cwd=project).stdout)[0]
    a = after["tasks"][0]
    assert a["state"] == "up to date" and a["last_built"] > 0 and a["reasons"] == []


def test_status_json_names_each_tasks_grid(project):
    """A grid's tasks share the entry's name as written (or the source's), so that front ends can
    show them as one group; other tasks have none."""
    make(
        project,
        PIPELINE
        + "  - source: fns.a\n    name: fit-[[n]]\n    product: out/fit.txt\n"
        + "    grid: {n: [1, 2]}\n"
        + "  - source: fns.a\n    product: out/a2.txt\n    grid: {n: [3]}\n",
    )
    result = nbpipe("status", "--json", cwd=project)

    assert result.returncode == 0, result.stderr
    [status] = json_lines(result.stdout)
    grids = {task["name"]: task["grid"] for task in status["tasks"]}
    assert grids == {"a": None, "b": None, "fit-1": "fit-[[n]]", "fit-2": "fit-[[n]]", "a-0": "a"}


def test_status_json_errors_are_json_on_stdout(project):
    write(project / "pipeline.yaml", "tasks:\n  - source: missing.py\n")

    result = nbpipe("status", "--json", cwd=project)

    assert result.returncode == 2
    [status] = json_lines(result.stdout)
    assert "tasks" not in status
    assert status["error"]["file"] == str(project / "pipeline.yaml")
    assert status["error"]["line"] == 2 and status["error"]["type"]
    assert "error: " in result.stderr  # for people, as without --json

    none = nbpipe("status", "--json", cwd=project / "..")
    [status] = json_lines(none.stdout)
    assert none.returncode == 2 and "no pipeline.yaml" in status["error"]["message"]


def test_plot(project):
    make(project)
    printed = nbpipe("plot", "-o", "-", cwd=project)
    assert printed.returncode == 0 and printed.stdout.startswith("flowchart")
    assert '["a"]' in printed.stdout and "-->" in printed.stdout

    for name in ("dag.md", "dag.html"):
        written = nbpipe("plot", "-o", name, cwd=project)
        assert written.returncode == 0
        assert "flowchart" in (project / name).read_text()
    assert (project / "dag.md").read_text().startswith("```mermaid")

    wrong = nbpipe("plot", "-o", "dag.png", cwd=project)
    assert wrong.returncode == 2 and "must end in .html, .md or .mmd" in wrong.stderr


# -- errors -------------------------------------------------------------------------------------
def test_spec_errors_print_file_line_and_exit_2(project):
    make(project, pipeline="tasks:\n  - source: fns.a\n    prodcut: out/a.txt\n")

    result = nbpipe("build", cwd=project)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {project / 'pipeline.yaml'}:3: unknown key 'prodcut' in task tasks[0] "
        "(did you mean 'product'?); valid keys: source, product, name, params, upstream, grid, "
        "nb_product_key, nbconvert_export_kwargs, nbconvert_exporter_name, kernelspec_name, "
        "papermill_params, on_render, "
        "on_finish, on_failure, class, serializer, unserializer"
    )
    assert result.stdout == ""


def test_render_problems_exit_2(project):
    write(project / "nb.py", "print('no parameters cell')\n")
    write(project / "pipeline.yaml", "- {source: nb.py, product: out/nb.ipynb}\n")

    result = nbpipe("build", cwd=project)

    assert result.returncode == 2
    assert "error: the pipeline cannot be built, 1 problem(s):" in result.stderr
    assert "nb: " in result.stderr and "no cell tagged 'parameters'" in result.stderr


def test_failing_function_exits_1_and_names_it(project):
    make(project, pipeline="- {source: fns.broken, product: out/x.txt}\n")

    result = nbpipe("build", cwd=project)

    assert result.returncode == 1
    assert "error: task 'broken' failed: ValueError: broken on purpose" in result.stderr
    assert "fns.py" in result.stderr  # the traceback points at the user's code


def test_ignored_ploomber_keys_warn_on_stderr(project):
    notebook(project / "nb.py")
    write(project / "pipeline.yaml", "meta: {jupyter_hot_reload: true}\ntasks: []\n")

    result = nbpipe("status", cwd=project)

    assert result.returncode == 0
    assert f"warning: {project / 'pipeline.yaml'}:1: meta.jupyter_hot_reload is ignored" in (
        result.stderr
    )
