"""Ploomber's Python API, as Ploomber 0.23 documents it, run against nbpipe (issue 11): Ploomber
code with ``ploomber`` read as ``nbpipe``. Executors, NotebookRunner's arguments, DAGSpec,
products, exceptions, the build report, TaskStatus, ``source.loc``, build_partially, task
groups and ``with_env``."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from engine_tasks import concat, write_name
from notebook_files import write_notebook

from nbpipe import DAG
from nbpipe.constants import TaskStatus
from nbpipe.engine.events import TaskStatus as Status
from nbpipe.exceptions import (
    DAGBuildError,
    DAGCycle,
    DAGRenderError,
    DAGSpecInitializationError,
    DAGSpecInvalidError,
    RenderError,
    TaskBuildError,
    TaskInitializationError,
    TaskRenderError,
    UpstreamKeyError,
    ValidationError,
)
from nbpipe.executors import Parallel, Serial
from nbpipe.products import File
from nbpipe.spec import DAGSpec
from nbpipe.tasks import NotebookRunner, PythonCallable, TaskGroup


# -- functions the tasks run (module level: the subprocess executors import them) ----------------
def touch_all(product):
    for f in product:
        Path(f).touch()


def write_list(product):
    assert [Path(f).suffix for f in product] == [".a", ".b"]
    Path(product[0]).write_text("first")
    Path(product[1]).write_text("second")


def read_missing_upstream(product, upstream):
    upstream["nope"]


def record_pid(product):
    Path(product).write_text(str(os.getpid()))


def warn_and_write(product):
    warnings.warn("careful with this one", stacklevel=2)
    Path(product).write_text("x")


def fail_with_key_error(product):
    {}["missing"]


# -- 1. executors -----------------------------------------------------------------------------------
def test_serial_accepts_ploomber_switches_and_says_so_in_its_repr():
    assert repr(Serial()) == "Serial()"
    executor = Serial(build_in_subprocess=False, catch_exceptions=True, catch_warnings=False)
    assert repr(executor) == (
        "Serial(build_in_subprocess=False, catch_exceptions=True, catch_warnings=False)"
    )
    assert executor.processes == 1
    with pytest.raises(ValueError, match="catch_warnings must be True, False or None"):
        Serial(catch_warnings="yes")


def test_serial_build_in_subprocess_runs_functions_in_a_child_process(workdir):
    dag = DAG(executor=Serial(build_in_subprocess=True))
    PythonCallable(record_pid, File("child.txt"), dag)
    dag.build()
    assert int(Path("child.txt").read_text()) != os.getpid()

    inline = DAG(executor=Serial(build_in_subprocess=False))
    PythonCallable(record_pid, File("inline.txt"), inline)
    inline.build()
    assert int(Path("inline.txt").read_text()) == os.getpid()


def test_serial_catch_exceptions_false_raises_the_task_exception_itself(workdir):
    dag = DAG(executor=Serial(catch_exceptions=False, build_in_subprocess=False))
    PythonCallable(fail_with_key_error, File("never.txt"), dag)
    hooks = []
    dag.on_failure = lambda: hooks.append("on_failure")
    with pytest.raises(KeyError, match="missing") as raised:
        dag.build()
    frames = [frame.name for frame in __import__("traceback").extract_tb(raised.tb)]
    assert "fail_with_key_error" in frames, "the traceback reaches into the task's code"
    assert hooks == [], "as in Ploomber, on_failure does not run"
    assert not Path("never.txt").exists()

    caught = DAG(executor=Serial(catch_exceptions=True))
    PythonCallable(fail_with_key_error, File("never.txt"), caught)
    with pytest.raises(DAGBuildError):
        caught.build()


def test_serial_catch_warnings_collects_them_for_the_end(workdir):
    dag = DAG(executor=Serial(catch_warnings=True))
    PythonCallable(warn_and_write, File("w.txt"), dag)
    with pytest.warns(UserWarning) as caught:
        dag.build()
    messages = [str(w.message) for w in caught]
    assert any("warn_and_write: careful with this one" in m for m in messages), messages


def test_parallel_takes_ploomber_arguments_and_processes_is_settable():
    executor = Parallel(processes=2, print_progress=False, start_method="spawn")
    assert executor.processes == 2
    executor.processes = 3
    assert executor.processes == 3
    with pytest.raises(ValueError):
        executor.processes = 0
    DAG(executor=Parallel(2))  # positional, as Ploomber's


# -- 1. NotebookRunner ------------------------------------------------------------------------------
def test_notebook_runner_accepts_ploomber_arguments(workdir):
    write_notebook(workdir / "nb.ipynb", "print(1)")
    dag = DAG()
    task = NotebookRunner(
        Path("nb.ipynb"),
        File("out/nb.ipynb"),
        dag,
        name="nb",
        params=None,
        executor="papermill",
        executor_params={"execution_timeout": 60},
        papermill_params={"execution_timeout": 30, "log_output": False},
        kernelspec_name="python3",
        nbconvert_exporter_name=None,
        ext_in=None,
        nb_product_key="nb",
        static_analysis="strict",
        nbconvert_export_kwargs={"exclude_input": True},
        local_execution=True,
        check_if_kernel_installed=True,
        debug_mode=None,
    )
    assert task.papermill_params["execution_timeout"] == 60, "executor_params override"
    assert task.source.loc == Path("nb.ipynb")
    dag.build()
    assert Path("out/nb.ipynb").exists()

    with pytest.raises(ValidationError, match="ploomber-engine"):
        NotebookRunner(Path("nb.ipynb"), File("x.ipynb"), dag, name="x", executor="ploomber-engine")
    with pytest.raises(ValidationError, match="static_analysis"):
        NotebookRunner(Path("nb.ipynb"), File("y.ipynb"), dag, name="y", static_analysis="loud")
    with pytest.raises(ValidationError, match="debug_mode"):
        NotebookRunner(Path("nb.ipynb"), File("z.ipynb"), dag, name="z", debug_mode="now")
    with pytest.raises(KeyError, match="local_execution"):
        NotebookRunner(
            Path("nb.ipynb"),
            File("w.ipynb"),
            dag,
            name="w",
            local_execution=True,
            papermill_params={"cwd": "."},
        )
    with pytest.raises(TaskInitializationError, match="nb_product_key as a list"):
        NotebookRunner(
            Path("nb.ipynb"),
            {"nb": File("v.ipynb"), "html": File("v.html")},
            dag,
            name="v",
            nb_product_key=["nb", "html"],
            nbconvert_exporter_name="html",
        )


def test_notebook_runner_source_as_text_with_ext_in(workdir):
    code = '# %% tags=["parameters"]\nupstream = None\nproduct = None\n\n# %%\nprint(6 * 7)\n'
    dag = DAG()
    task = NotebookRunner(code, File("text.ipynb"), dag, name="text", ext_in="py")
    assert task.source.loc is None, "as Ploomber's: a source loaded from a str has no location"
    dag.build()
    assert "42" in Path("text.ipynb").read_text()

    with pytest.raises(ValidationError, match="needs a name"):
        NotebookRunner(code, File("t2.ipynb"), dag, ext_in="py")
    with pytest.raises(ValidationError, match="ext_in must be None"):
        NotebookRunner(Path("x.py"), File("t3.ipynb"), dag, name="t3", ext_in="py")
    with pytest.raises(ValidationError, match="pass ext_in"):
        NotebookRunner(code, File("t4.ipynb"), dag, name="t4")


def test_local_execution_false_runs_in_the_working_directory(workdir):
    (workdir / "nbs").mkdir()
    write_notebook(
        workdir / "nbs/where.ipynb",
        "import os\nfrom pathlib import Path\nPath(product['data']).write_text(os.getcwd())",
    )
    dag = DAG()
    product = {"nb": File("here.ipynb"), "data": File("here.txt")}
    NotebookRunner(Path("nbs/where.ipynb"), product, dag, name="cwd", local_execution=False)
    product = {"nb": File("there.ipynb"), "data": File("there.txt")}
    NotebookRunner(Path("nbs/where.ipynb"), product, dag, name="local", local_execution=True)
    dag.build()
    assert Path("here.txt").read_text() == str(workdir)
    assert Path("there.txt").read_text() == str(workdir / "nbs")


def test_nbconvert_exporter_name_picks_the_exporter(workdir):
    write_notebook(workdir / "nb.ipynb", "print('exported')")
    dag = DAG()
    NotebookRunner(
        Path("nb.ipynb"),
        {"nb": File("out.ipynb"), "report": File("report.txt")},
        dag,
        nb_product_key=["nb", "report"],
        nbconvert_exporter_name={"report": "markdown"},
    )
    dag.build()
    text = Path("report.txt").read_text()
    assert "```python" in text and "exported" in text

    dag = DAG()
    NotebookRunner(Path("nb.ipynb"), File("x.html"), dag, nbconvert_exporter_name="nonsense")
    with pytest.raises(DAGRenderError, match="'nonsense' is not a valid 'nbconvert_exporter_name'"):
        dag.render()


def test_log_output_shows_the_notebook_output_and_logging_on_stderr(workdir, capfd):
    write_notebook(
        workdir / "talk.ipynb",
        "import logging, sys\nlogging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
        "logging.getLogger('mine').info('logged inside')\nprint('printed inside')",
    )
    dag = DAG()
    NotebookRunner(
        Path("talk.ipynb"), File("talk_out.ipynb"), dag, papermill_params={"log_output": True}
    )
    dag.build()
    err = capfd.readouterr().err
    assert "[talk] printed inside" in err
    assert "logged inside" in err


@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="a TeX toolchain is installed")
def test_a_missing_tool_fails_its_task_alone_at_build_time(workdir):
    write_notebook(workdir / "nb.ipynb", "print(1)")
    dag = DAG()
    NotebookRunner(Path("nb.ipynb"), File("report.pdf"), dag, name="pdf")
    PythonCallable(write_name, File("other.txt"), dag, name="other")
    dag.render()  # not a render problem any more
    with pytest.raises(DAGBuildError, match=r"a \.pdf product needs xelatex") as raised:
        dag.build()
    report = raised.value.report
    assert report["pdf"].status is Status.FAILED
    assert report["other"].status is Status.EXECUTED


# -- 1. DAGSpec -------------------------------------------------------------------------------------
def _spec_project(folder: Path) -> Path:
    (folder / "tasks.py").write_text(
        "from pathlib import Path\n\ndef load(product):\n    Path(product).write_text('data')\n"
    )
    (folder / "pipeline.yaml").write_text(
        "tasks:\n  - source: tasks.load\n    product: out/data.txt\n"
    )
    return folder / "pipeline.yaml"


def test_dagspec_as_ploomber(workdir, monkeypatch):
    monkeypatch.delenv("NBPIPE_ENTRY_POINT", raising=False)
    path = _spec_project(workdir)
    spec = DAGSpec("pipeline.yaml", env=None, lazy_import=True, reload=False)
    assert [task["source"] for task in spec["tasks"]] == ["tasks.load"]
    assert spec["meta"]["extract_upstream"] is True and spec["meta"]["extract_product"] is False
    assert "tasks" in spec and set(spec) >= {"tasks", "meta"}
    dag = spec.to_dag()
    dag.build()
    assert (workdir / "out/data.txt").read_text() == "data"

    (workdir / "sub").mkdir()
    found = DAGSpec.find(starting_dir=workdir / "sub")
    assert found.path == path
    monkeypatch.chdir(workdir / "sub")
    assert DAGSpec.find().path == path
    with pytest.raises(ValueError, match="parent_path must be None"):
        DAGSpec("pipeline.yaml", parent_path=".")


def test_dagspec_reload_picks_up_edited_functions(workdir):
    _spec_project(workdir)
    sys.path.insert(0, str(workdir))
    try:
        DAGSpec("pipeline.yaml").to_dag()
        (workdir / "tasks.py").write_text(
            "from pathlib import Path\n\n"
            "def load(product):\n    Path(product).write_text('edited')\n"
        )
        dag = DAGSpec("pipeline.yaml", reload=True).to_dag()
        dag.build(force=True)
        assert (workdir / "out/data.txt").read_text() == "edited"
    finally:
        sys.path.remove(str(workdir))
        sys.modules.pop("tasks", None)


def test_dagspec_from_directory(workdir):
    (workdir / "nbs").mkdir()
    (workdir / "nbs/load.py").write_text(
        '# %% tags=["parameters"]\nupstream = None\nproduct = "out/load.txt"\n\n'
        "# %%\nfrom pathlib import Path\nPath(product).write_text('loaded')\n"
    )
    (workdir / "nbs/clean.py").write_text(
        '# %% tags=["parameters"]\nupstream = ["load"]\nproduct = "out/clean.ipynb"\n\n'
        "# %%\nprint(open(upstream['load']).read())\n"
    )
    (workdir / "nbs/notes.txt").write_text("not a task")
    spec = DAGSpec.from_directory("nbs")
    dag = spec.to_dag()
    assert sorted(dag) == ["clean", "load"] and list(dag["clean"].upstream) == ["load"]
    with pytest.raises(NotADirectoryError):
        DAGSpec.from_directory("nowhere")
    with pytest.raises(ValueError, match="invalid extensions"):
        DAGSpec.from_files(["nbs/notes.txt"])


# -- 2. products ------------------------------------------------------------------------------------
def test_iterating_a_dict_product_yields_its_files(workdir):
    dag = DAG()
    PythonCallable(touch_all, {"a": File("out/a.txt"), "b": File("out/b.csv")}, dag)
    dag.build()
    assert Path("out/a.txt").exists() and Path("out/b.csv").exists()
    assert not Path("a").exists() and not Path("b").exists(), "not files named after the keys"
    product = dag["touch_all"].product
    assert [f.name for f in product] == ["a.txt", "b.csv"]
    assert list(product.keys()) == ["a", "b"] and "a" in product and len(product) == 2


@pytest.mark.parametrize("container", [list, tuple])
def test_list_and_tuple_products(workdir, container):
    dag = DAG()
    PythonCallable(write_list, container([File("l.a"), File("l.b")]), dag)
    dag.build()
    assert Path("l.a").read_text() == "first" and Path("l.b").read_text() == "second"
    product = dag["write_list"].product
    assert product[1] == File("l.b") and str(product) == str(["l.a", "l.b"])
    assert not dag["write_list"].outdated_reasons(), "recorded like any product"


def test_a_notebook_gets_a_list_product_as_a_list(workdir):
    write_notebook(
        workdir / "nb.ipynb",
        "from pathlib import Path\nassert isinstance(product, list)\n"
        "Path(product[1]).write_text('from the notebook')",
    )
    dag = DAG()
    NotebookRunner(
        Path("nb.ipynb"), [File("nb_out.ipynb"), File("data.txt")], dag, nb_product_key=0
    )
    dag.build()
    assert Path("data.txt").read_text() == "from the notebook"


# -- 3. exceptions ----------------------------------------------------------------------------------
def test_ploomber_exception_names_and_builtin_bases(workdir, monkeypatch):
    monkeypatch.delenv("NBPIPE_ENTRY_POINT", raising=False)
    for name in (
        "DAGSpecInitializationError",
        "TaskInitializationError",
        "TaskBuildError",
        "DAGRenderError",
        "RenderError",
        "TaskRenderError",
        "ValidationError",
        "DAGCycle",
        "DAGBuildError",
        "DAGBuildEarlyStop",
        "SourceInitializationError",
        "MissingParametersCellError",
        "CallbackSignatureError",
        "UpstreamKeyError",
        "DAGSpecInvalidError",
        "DAGWithDuplicatedProducts",
        "SpecValidationError",
        "RemoteFileNotFound",
        "MissingClientError",
        "PlotException",
    ):
        error = getattr(__import__("nbpipe.exceptions", fromlist=[name]), name)
        assert issubclass(error, Exception), name
    assert issubclass(RenderError, Exception) and issubclass(TaskRenderError, Exception)

    with pytest.raises(FileNotFoundError):
        DAGSpec("missing.yaml")
    with pytest.raises(DAGSpecInvalidError):
        DAGSpec.find(starting_dir="/")
    Path("pipeline.yaml").write_text("tasks:\n  - source: tasks.f\n    prodcut: x.txt\n")
    with pytest.raises(DAGSpecInitializationError):
        DAGSpec("pipeline.yaml")

    dag = DAG()
    PythonCallable(write_name, File("a.txt"), dag, name="a")
    with pytest.raises(ValueError, match="already has a task named 'a'"):
        PythonCallable(write_name, File("b.txt"), dag, name="a")

    a, b = dag["a"], PythonCallable(concat, File("b.txt"), dag, name="b")
    a >> b
    b >> a
    with pytest.raises(DAGCycle):
        dag.render()

    with pytest.raises(UpstreamKeyError) as raised:
        read_missing_upstream("x", __import__("nbpipe.tasks.base", fromlist=["U"]).Upstream())
    assert isinstance(raised.value, KeyError) and "No upstream task named 'nope'" in str(
        raised.value
    )
    error = pickle.loads(pickle.dumps(DAGCycle("a -> b -> a")))
    assert str(error) == "a -> b -> a"


def test_a_failing_notebook_is_a_task_build_error(workdir):
    write_notebook(workdir / "bad.ipynb", "raise ValueError('boom')")
    dag = DAG()
    NotebookRunner(Path("bad.ipynb"), File("bad_out.ipynb"), dag)
    with pytest.raises(DAGBuildError) as raised:
        dag.build()
    assert raised.value.failures["bad"].type == "ValueError"
    from nbpipe.exceptions import MissingKernelError, NotebookExecutionError

    assert issubclass(NotebookExecutionError, TaskBuildError)
    assert issubclass(MissingKernelError, TaskRenderError)


# -- 4. reports, statuses, sources, partial builds, groups ------------------------------------------
def test_build_report_answers_ploomber_table_access(workdir):
    dag = DAG()
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(concat, File("b.txt"), dag, name="b")
    a >> b
    dag.build()
    Path("b.txt").unlink()
    report = dag.build()
    assert report["name"] == ["a", "b"]
    assert report["Ran?"] == [False, True]
    assert report["Elapsed (s)"][0] == 0 and report["Elapsed (s)"][1] >= 0
    assert report["Percentage"][0] == 0
    assert report[["name", "Ran?"]] == {"name": ["a", "b"], "Ran?": [False, True]}
    assert report["b"].status is Status.EXECUTED, "a task's row as before"
    try:
        import pandas
    except ImportError:  # not a dependency: then to_pandas says what to install
        with pytest.raises(ImportError, match="pip install pandas"):
            report.to_pandas()
    else:
        frame = report.to_pandas()
        assert isinstance(frame, pandas.DataFrame) and list(frame["name"]) == ["a", "b"]


def test_task_status_has_ploomber_names(workdir):
    dag = DAG()
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(fail_with_key_error, File("b.txt"), dag, name="b")
    c = PythonCallable(concat, File("c.txt"), dag, name="c")
    a >> b >> c
    assert a.exec_status == TaskStatus.WaitingRender
    with pytest.raises(DAGBuildError):
        dag.build()
    assert a.exec_status == TaskStatus.Executed
    assert b.exec_status == TaskStatus.Errored
    assert c.exec_status == TaskStatus.Aborted
    assert a.exec_status in {TaskStatus.Executed, TaskStatus.Skipped}
    assert TaskStatus.WaitingUpstream is TaskStatus.WaitingExecution
    assert TaskStatus.BrokenProcessPool not in set(Status)


def test_task_source_loc(workdir):
    write_notebook(workdir / "nb.ipynb", "print(1)")
    dag = DAG()
    task = NotebookRunner("nb.ipynb", File("o.ipynb"), dag)
    assert task.source.loc == Path("nb.ipynb") and isinstance(task.source, Path)


def _fan(workdir) -> DAG:
    dag = DAG()
    root = PythonCallable(write_name, File("root.txt"), dag, name="root")
    for i in range(3):
        root >> PythonCallable(concat, File(f"fit-{i}.txt"), dag, name=f"fit-{i}")
    PythonCallable(write_name, File("other.txt"), dag, name="other")
    return dag


def test_build_partially_takes_globs_and_skip_upstream(workdir):
    dag = _fan(workdir)
    report = dag.build_partially("fit-*")
    assert sorted(row.name for row in report) == ["fit-0", "fit-1", "fit-2", "root"]
    assert not Path("other.txt").exists()

    Path("fit-1.txt").unlink()
    report = dag.build_partially("fit-1", force=True, skip_upstream=True)
    assert [row.name for row in report] == ["fit-1"]
    with pytest.raises(KeyError, match="No task matches 'nothing-\\*'"):
        dag.build_partially("nothing-*")
    with pytest.raises(ValidationError, match="debug"):
        dag.build_partially("fit-1", debug="now")


def test_a_broken_task_does_not_block_a_partial_build_of_others(workdir):
    dag = DAG()
    PythonCallable(write_name, File("fine.txt"), dag, name="fine")
    NotebookRunner("missing.ipynb", File("m.ipynb"), dag, name="broken")
    dag.build_partially("fine")
    dag.build_task("fine", force=True)
    with pytest.raises(DAGRenderError, match="broken"):
        dag.build()


def test_task_groups_with_plus(workdir):
    dag = DAG()
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(write_name, File("b.txt"), dag, name="b")
    c = PythonCallable(concat, File("c.txt"), dag, name="c")
    d = PythonCallable(concat, File("d.txt"), dag, name="d")
    e = PythonCallable(concat, File("e.txt"), dag, name="e")
    group = a + b
    assert isinstance(group, TaskGroup) and [t.name for t in group] == ["a", "b"]
    assert (a + b) >> c is c
    c >> (d + e)
    dag.build()
    assert Path("c.txt").read_text() == "xx+"
    assert set(d.upstream) == {"c"} and set(e.upstream) == {"c"}
    assert [t.name for t in (a + b + c)] == ["a", "b", "c"]


# -- 5. with_env ------------------------------------------------------------------------------------
def test_with_env_and_load_env(workdir):
    from nbpipe.env import load_env, with_env

    Path("env.yaml").write_text("path:\n  data: '{{here}}/data'\nn: 3\n")

    @load_env
    def inner(env):
        return env.n

    @with_env
    def make(env, scale=1):
        return env.path.data, env["n"] * scale, inner()

    assert make() == (f"{workdir}/data", 3, 3)
    assert make(scale=2, env__path__data="/elsewhere") == ("/elsewhere", 6, 3)
    assert list(__import__("inspect").signature(make).parameters) == ["scale"]
    with pytest.raises(KeyError, match="not declared"):
        make(env__nope=1)

    @with_env({"key": "value"})
    def from_mapping(env):
        return env.key

    assert from_mapping() == "value"
    with pytest.raises(RuntimeError, match="first argument"):
        with_env(lambda x: x)
    with pytest.raises(RuntimeError, match="no @with_env function is running"):
        inner()
