"""NotebookRunner with real kernels, papermill and nbconvert."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from engine_tasks import write_name
from notebook_files import processes_with_marker, write_notebook
from wait_helpers import wait_until

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildError, DAGRenderError
from nbpipe.executors import Parallel
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable


def outputs_text(path: Path) -> str:
    notebook = json.loads(path.read_text())
    return "".join(
        "".join(output.get("text", ""))
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    )


def test_ipynb_with_upstream_params_and_several_products(workdir):
    dag = DAG(executor=Parallel(processes=2, start_method="spawn"))
    raw = PythonCallable(write_name, File("out/raw.txt"), dag, name="raw", params={"name": "hello"})
    write_notebook(
        workdir / "use.ipynb",
        "from pathlib import Path\ntext = Path(upstream['raw']).read_text()\nprint(text * factor)",
        "Path(product['data']).write_text(text.upper())",
        parameters="upstream = ['raw']\nproduct = None\nfactor = 1",
    )
    use = NotebookRunner(
        Path("use.ipynb"),
        {"nb": File("out/use.ipynb"), "html": File("out/use.html"), "data": File("out/use.txt")},
        dag,
        params={"factor": 2},
        nb_product_key=["nb", "html"],
    )
    raw >> use

    report = dag.build()

    assert report["use"].status is TaskStatus.EXECUTED
    assert "hellohello" in outputs_text(workdir / "out/use.ipynb")
    assert Path("out/use.txt").read_text() == "HELLO"
    html = Path("out/use.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "hellohello" in html
    injected = json.loads(Path("out/use.ipynb").read_text())["cells"][1]
    assert "injected-parameters" in injected["metadata"]["tags"]
    assert str(workdir / "out/use.txt") in "".join(injected["source"]), (
        "the real path, not a staged one"
    )
    assert ".nbpipe-" not in "".join(injected["source"])
    assert not list(Path("out").glob(".nbpipe-*"))


#: Writes more than a file buffer holds and never closes the file, writes to a file a module
#: keeps open, and registers an exit handler: what is left in the buffers, and the handler, run
#: only if the kernel ends as a process ends.
UNCLOSED = """
import atexit, os, pathlib
import keeps_a_log
data = open(product["data"], "w")
for _ in range(1000):  # line by line: the last lines wait in the buffer
    data.write("a line of data\\n")
keeps_a_log.LOG.write("a line of the log\\n")
atexit.register(pathlib.Path(os.getcwd(), "exit-handler").write_text, "ran")
"""


@pytest.mark.parametrize("fork_kernels", [True, False], ids=["forked", "spawned"])
@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_a_kernel_exits_as_papermills_do_its_files_flushed_and_exit_handlers_run(
    workdir, fork_kernels, executor
):
    """Papermill asks a kernel to shut down, and it ends as a Python process ends; a killed
    kernel loses what its notebook left in a file's buffer (the product is cut short, and the
    build says it succeeded) and skips its exit handlers. nbpipe's kernels, forked or spawned,
    end without the interpreter's teardown of their modules: they flush the files those keep
    open themselves (a spawned ipykernel's teardown usually does, not always: its own exit can
    hang, and the kernel is terminated)."""
    write_notebook(workdir / "unclosed.ipynb", UNCLOSED)
    (workdir / "keeps_a_log.py").write_text("LOG = open('module.log', 'w')\n")
    chosen = Parallel(processes=2, start_method="fork") if executor == "parallel" else None
    dag = DAG(fork_kernels=fork_kernels, **({"executor": chosen} if chosen else {}))
    NotebookRunner(
        "unclosed.ipynb", {"nb": File("out/nb.ipynb"), "data": File("out/data.txt")}, dag
    )

    dag.build()

    assert Path("out/data.txt").read_text() == "a line of data\n" * 1000
    assert Path("exit-handler").read_text() == "ran"
    assert Path("module.log").read_text() == "a line of the log\n"


def test_a_kernel_that_does_not_exit_is_stopped_and_the_build_ends(workdir, monkeypatch):
    """A kernel whose exit never ends (an exit handler that waits forever) is terminated after
    jupyter_client's ``shutdown_wait_time``, as papermill's is; nothing is left running."""
    marker = f"NBPIPE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(marker, "1")
    write_notebook(workdir / "stuck.ipynb", "import atexit, signal\natexit.register(signal.pause)")
    dag = DAG()
    NotebookRunner("stuck.ipynb", File("out/stuck.ipynb"), dag)

    report = dag.build()

    assert report["stuck"].status is TaskStatus.EXECUTED
    assert not processes_with_marker(marker)


def test_percent_script_source_and_conversions(workdir):
    (workdir / "nb.py").write_text(
        '# %% [markdown]\n# A title\n\n# %% tags=["parameters"]\nupstream = None\nproduct = None\n\n'
        "# %%\nprint('from a script', 6 * 7)\n"
    )
    dag = DAG()
    formats = ["ipynb", "html", "md", "rst", "tex", "py"]
    NotebookRunner(
        "nb.py",
        {fmt: File(f"out/nb_out.{fmt}") for fmt in formats},
        dag,
        nb_product_key=formats,
        nbconvert_export_kwargs={"exclude_input": True},
    )
    dag.build()
    assert "from a script 42" in outputs_text(workdir / "out/nb_out.ipynb")
    assert "from a script 42" in Path("out/nb_out.md").read_text()
    assert "from a script 42" in Path("out/nb_out.rst").read_text()
    assert "\\begin{document}" in Path("out/nb_out.tex").read_text()
    assert Path("out/nb_out.py").read_text().startswith("#!/usr/bin/env python")
    assert "print(&#39;from a script&#39;" not in Path("out/nb_out.html").read_text(), (
        "exclude_input"
    )
    assert "from a script 42" in Path("out/nb_out.html").read_text()


def test_failing_notebook_keeps_partial_copy_and_names_cell_and_line(workdir):
    write_notebook(
        workdir / "bad.ipynb",
        "print('first cell ran')",
        "x = 1\ny = x / 0\nprint(y)",
        "print('never')",
    )
    dag = DAG(executor=Parallel(processes=1, start_method="spawn"))
    NotebookRunner(
        "bad.ipynb",
        {"nb": File("out/bad.ipynb"), "html": File("out/bad.html")},
        dag,
        nb_product_key=["nb", "html"],
    )
    Path("out").mkdir()
    Path("out/bad.html").write_text("previous good report")

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    message = str(raised.value.failures["bad"])
    partial = workdir / "out/bad.failed.ipynb"
    assert "bad.ipynb, cell 3, line 2: ZeroDivisionError: division by zero" in message
    assert "y = x / 0" in message
    assert f"Partially executed notebook: {partial}" in message
    assert "first cell ran" in outputs_text(partial)
    assert "never" not in outputs_text(partial)
    assert Path("out/bad.html").read_text() == "previous good report", "nothing built is lost"
    assert not Path("out/bad.ipynb").exists()


def test_missing_kernel_is_an_error_before_anything_runs(workdir):
    write_notebook(workdir / "nb.ipynb", "print(1)", kernel="no-such-kernel")
    dag = DAG()
    PythonCallable(write_name, File("first.txt"), dag)
    task = NotebookRunner("nb.ipynb", File("out.ipynb"), dag)
    with pytest.raises(
        DAGRenderError,
        match=r"Jupyter kernel 'no-such-kernel' is not installed \(installed: .*python3",
    ):
        dag.build()
    assert not Path("first.txt").exists()
    task.kernelspec_name = "python3"  # the argument wins over the notebook's kernelspec
    dag.build()
    assert Path("out.ipynb").exists()


def test_render_checks_for_notebooks(workdir):
    nb = write_notebook(workdir / "nb.ipynb", "print(1)")
    no_params = workdir / "plain.ipynb"
    notebook = json.loads(nb.read_text())
    notebook["cells"][0]["metadata"]["tags"] = []
    no_params.write_text(json.dumps(notebook))
    dag = DAG()
    NotebookRunner("plain.ipynb", File("plain_out.ipynb"), dag)
    NotebookRunner("nb.ipynb", File("nb.ipynb"), dag, name="overwrites")
    NotebookRunner("missing.ipynb", File("m.ipynb"), dag)
    NotebookRunner("nb.ipynb", {"nb": File("x.docx")}, dag, name="badformat")
    NotebookRunner("nb.ipynb", {"data": File("x.csv")}, dag, name="nokey")
    with pytest.raises(DAGRenderError) as raised:
        dag.render()
    problems = dict(raised.value.problems)
    assert "has no cell tagged 'parameters'" in problems["plain"]
    assert "is the task's own source notebook; a build would overwrite it" in problems["overwrites"]
    assert problems["missing"] == "source notebook missing.ipynb does not exist"
    assert "cannot convert a notebook to '.docx'" in problems["badformat"]
    assert "nb_product_key 'nb' not among the products (data)" in problems["nokey"]


@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="a TeX toolchain is installed here")
def test_pdf_without_tex_fails_that_task_at_build_time(workdir):
    """A missing program fails its task alone when it is built (so other tasks, and partial
    builds without it, are not blocked); it is not a render problem."""
    write_notebook(workdir / "nb.ipynb", "print(1)")
    dag = DAG()
    NotebookRunner("nb.ipynb", File("report.pdf"), dag)
    dag.render()
    with pytest.raises(DAGBuildError, match=r"report.pdf: a .pdf product needs xelatex"):
        dag.build()


def test_warm_kernels_run_one_notebook_each_and_none_is_left(workdir, executor, monkeypatch):
    marker = f"NBPIPE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(marker, "1")
    write_notebook(workdir / "nb.ipynb", "import os\nprint('pid', os.getpid())")
    dag = DAG(executor=executor)
    for i in range(4):
        NotebookRunner("nb.ipynb", File(f"out/{i}.ipynb"), dag, name=f"n{i}")

    dag.build()

    pids = {outputs_text(workdir / f"out/{i}.ipynb") for i in range(4)}
    assert len(pids) == 4, "every notebook ran in a kernel of its own"
    wait_until(
        lambda: not processes_with_marker(marker),
        lambda: f"the build's kernels and workers to end (left: {processes_with_marker(marker)})",
    )


HISTORY_FILE = "print(get_ipython().history_manager.hist_file)"


@pytest.mark.parametrize("fork_kernels", [True, False], ids=["forked", "spawned"])
def test_kernels_keep_their_history_in_memory_as_papermills_do(
    workdir, executor, fork_kernels, monkeypatch
):
    """nbclient starts IPython kernels with their history in memory: a notebook's cells are not
    written to the user's IPython history file (which kernels side by side would write at once).
    So do warm kernels, forked or spawned, under every executor."""
    ipython_dir = workdir / "ipython"
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))  # a Dask worker keeps its own
    write_notebook(workdir / "nb.ipynb", HISTORY_FILE)
    dag = DAG(executor=executor, fork_kernels=fork_kernels)
    for i in range(3):
        NotebookRunner("nb.ipynb", File(f"out/{i}.ipynb"), dag, name=f"n{i}")

    dag.build()

    assert {outputs_text(workdir / f"out/{i}.ipynb").strip() for i in range(3)} == {":memory:"}
    assert not list(ipython_dir.rglob("history.sqlite"))


PREPARED_STACK_BUILD = """
import sys
from engine_tasks import prepared_notebook_stack
from nbpipe import DAG
from nbpipe.executors import Parallel
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

products = sys.argv[1:]
dag = DAG(executor=Parallel(processes=1, start_method="fork"))
first = PythonCallable(prepared_notebook_stack, File("out/ready.json"), dag, name="first")
report = NotebookRunner(
    "nb.ipynb",
    {key: File("out/nb." + ("ipynb" if key == "nb" else key)) for key in products},
    dag,
    name="report",
    nb_product_key=products,
)
first >> report
dag.build()
"""


@pytest.mark.parametrize("products", [["nb"], ["nb", "html"]])
def test_workers_start_with_the_notebook_stack_prepared(workdir, products):
    """The building process does once, before forking its workers, what each would do on its
    first notebook: a function that runs in a worker before any notebook finds nbformat's
    validator for the current format compiled, and the HTML exporter built when a notebook
    writes HTML. (A fresh building process: this one has compiled and built them already.)"""
    import nbformat

    write_notebook(workdir / "nb.ipynb", "print(1)")
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    subprocess.run(
        [sys.executable, "-c", PREPARED_STACK_BUILD, *products], cwd=workdir, env=env, check=True
    )

    ready = json.loads((workdir / "out/ready.json").read_text())
    assert [4, nbformat.v4.nbformat_minor] in ready["validators"]
    assert ready["exporters"] == (1 if "html" in products else 0)
    # what the worker inherited and imported is out of its collector's sight; it still collects
    assert ready["frozen"] > 10_000
    assert ready["collecting"] is True


PREPARE_WATCHING_THE_COLLECTOR = """
import gc, json, sys

from nbpipe.notebooks.imports import prepare_before_fork

if sys.argv[1] == "off":
    gc.disable()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(phase))
prepare_before_fork(("papermill", "nbformat", "nbconvert"))
young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
print(json.dumps({"collections": len(collections), "collecting": gc.isenabled(), "young": young}))
"""


@pytest.mark.parametrize("collector", ["on", "off"])
def test_the_notebook_stack_is_prepared_with_the_collector_paused(collector):
    """The preparation imports and builds what lives as long as the process: a collection then
    would scan all of it and free next to nothing, and so would the first collection after it,
    unless what it made is moved out of the youngest generation. The collector is as it was
    afterwards."""
    run = subprocess.run(
        [sys.executable, "-c", PREPARE_WATCHING_THE_COLLECTOR, collector],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(run.stdout)
    assert seen["collections"] == 0
    assert seen["collecting"] is (collector == "on")
    assert seen["young"] < 1000  # of the ~200,000 objects the preparation made
