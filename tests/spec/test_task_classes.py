"""Ploomber's task classes in pipeline.yaml: ``class:``, ScriptRunner, ShellScript (a ``.sh``
source is one by default). Real pipelines: bash and fresh Python processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildError, DAGRenderError
from nbpipe.products import File
from nbpipe.spec import DAGSpec, InvalidValueError, UnsupportedKeyError
from nbpipe.tasks import NotebookRunner, PythonCallable, ScriptRunner, ShellScript


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


RAW = """
from pathlib import Path


def make_raw(product):
    Path(product).write_text("raw data\\n")
"""


# -- ShellScript ----------------------------------------------------------------------------------
def test_a_sh_source_is_a_shell_script_rendered_and_run_with_bash(tmp_path, executor):
    write(tmp_path / "raw_tasks.py", RAW)
    write(
        tmp_path / "scripts/copy.sh",
        """
        # copy the raw data, {{ times }} times
        for i in $(seq {{ times }}); do cat {{upstream['make_raw']}} >> {{product}}; done
        echo "ran in $PWD" >&2
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: raw_tasks.make_raw
            product: output/raw.txt
          - source: scripts/copy.sh
            product: output/copy.txt
            params: {times: 2}
        """,
    )
    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()
    dag.executor = executor
    assert isinstance(dag["copy"], ShellScript)
    assert list(dag["copy"].upstream) == ["make_raw"], "read from {{upstream['make_raw']}}"

    report = dag.build()

    assert report["copy"].status is TaskStatus.EXECUTED
    assert (tmp_path / "output/copy.txt").read_text() == "raw data\n" * 2
    assert not list((tmp_path / "output").glob(".nbpipe-*")), "the staged product was moved"
    rebuilt = DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()
    assert rebuilt["copy"].status is TaskStatus.SKIPPED


def test_shell_script_runs_in_the_spec_folder_and_its_edits_count(tmp_path):
    write(tmp_path / "data.txt", "input\n")
    script = write(tmp_path / "scripts/use.sh", "cat data.txt > {{product}}\n")
    write(
        tmp_path / "pipeline.yaml",
        "tasks:\n  - source: scripts/use.sh\n    product: output/use.txt\n",
    )
    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()
    assert (tmp_path / "output/use.txt").read_text() == "input\n"

    script.write_text("cat data.txt data.txt > {{product}}\n")
    report = DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert report["use"].status is TaskStatus.EXECUTED
    assert (tmp_path / "output/use.txt").read_text() == "input\ninput\n"


def test_failing_shell_script_shows_exit_status_and_stderr_tail(tmp_path):
    write(
        tmp_path / "fail.sh",
        """
        echo "starting" > {{product}}
        for i in $(seq 30); do echo "noise $i" >&2; done
        echo "cp: cannot stat 'missing.csv': No such file or directory" >&2
        exit 3
        """,
    )
    write(tmp_path / "pipeline.yaml", "tasks:\n  - source: fail.sh\n    product: out.txt\n")

    with pytest.raises(DAGBuildError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    failure = raised.value.failures["fail"]
    assert failure.type == "ShellScriptError"
    assert failure.message == (
        "bash exited with status 3: cp: cannot stat 'missing.csv': No such file or directory"
    )
    text = failure.text()
    assert f"{tmp_path / 'fail.sh'}: bash exited with status 3" in text
    assert "noise 30" in text and "noise 1\n" not in text, "the end of stderr, not all of it"
    assert "Traceback" not in text, "bash's story, not nbpipe's"
    assert not (tmp_path / "out.txt").exists(), "a failed task's output is not kept"


def test_shell_script_render_problems(tmp_path):
    write(tmp_path / "raw_tasks.py", RAW)
    write(tmp_path / "no_product.sh", "echo hi > out.txt\n")
    write(tmp_path / "unknown.sh", "echo {{ n_rows }} > {{product}}\n")
    write(tmp_path / "broken.sh", "echo {{ product > x\n")
    dag = DAGSpec(
        {
            "tasks": [
                {"source": "no_product.sh", "product": "a.txt"},
                {"source": "unknown.sh", "product": "b.txt"},
            ]
        },
        folder=tmp_path,
    ).to_dag()

    with pytest.raises(DAGRenderError) as raised:
        dag.render()

    problems = dict(raised.value.problems)
    assert "must use {{product}}" in problems["no_product"]
    assert "uses {{n_rows}}, which is neither a param nor product/upstream" in problems["unknown"]
    with pytest.raises(Exception, match=r"broken.sh.*does not parse \(line 1\)"):
        DAGSpec({"tasks": [{"source": "broken.sh", "product": "c.txt"}]}, folder=tmp_path).to_dag()


def test_shell_script_python_api_code_as_string(tmp_path, monkeypatch):
    """Ploomber's ShellScript takes the code itself as a str (and a file as a Path)."""
    from nbpipe import DAG

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "hello.sh", "echo hello > {{product}}\n")
    dag = DAG()
    ShellScript(Path("hello.sh"), File("hello.txt"), dag)
    inline = ShellScript(
        "cat {{upstream['hello']}} {{upstream['hello']}} > {{product}}",
        File("twice.txt"),
        dag,
        name="twice",
    )
    dag["hello"] >> inline

    dag.build()

    assert (tmp_path / "twice.txt").read_text() == "hello\nhello\n"


# -- ScriptRunner ---------------------------------------------------------------------------------
SCRIPT = """
# %% [markdown]
# A script, run as a script.

# %% tags=["parameters"]
upstream = ['make_raw']
product = None
factor = 1

# %%
import json, os, sys
from pathlib import Path

text = Path(upstream['make_raw']).read_text()
Path(product['data']).write_text(text.upper() * factor)
Path(product['info']).write_text(json.dumps({
    "pid": os.getpid(),
    "nbpipe_loaded": "nbpipe" in sys.modules,
    "cwd": os.getcwd(),
    "file": __file__,
    "name": __name__,
    "product": product,
}))
"""


def test_script_runner_gets_upstream_product_and_params_in_a_fresh_python(tmp_path, executor):
    write(tmp_path / "raw_tasks.py", RAW)
    write(tmp_path / "scripts/shout.py", SCRIPT)
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: raw_tasks.make_raw
            product: output/raw.txt
          - source: scripts/shout.py
            class: ScriptRunner
            product: {data: output/shout.txt, info: output/info.json}
            params: {factor: 2}
        """,
    )
    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()
    dag.executor = executor
    assert isinstance(dag["shout"], ScriptRunner)
    assert list(dag["shout"].upstream) == ["make_raw"], "read from the parameters cell"

    dag.build()

    assert (tmp_path / "output/shout.txt").read_text() == "RAW DATA\n" * 2
    info = json.loads((tmp_path / "output/info.json").read_text())
    assert info["pid"] != os.getpid()
    assert info["nbpipe_loaded"] is False, "a fresh interpreter, not a fork of a worker"
    assert info["cwd"] == str(tmp_path / "scripts"), "the script's folder, as in Ploomber"
    assert info["file"] == str(tmp_path / "scripts/shout.py")
    assert info["name"] == "__main__"
    assert ".nbpipe-" in info["product"]["data"], "the script writes the staged product"
    assert not list((tmp_path / "output").glob("*.ipynb")), "no notebook is made"
    assert DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()["shout"].status is (
        TaskStatus.SKIPPED
    )


def test_script_runner_failure_names_the_script_line(tmp_path):
    write(
        tmp_path / "bad.py",
        """
        # %% tags=["parameters"]
        upstream = None
        product = None

        # %%
        def ratio(a, b):
            return a / b

        print("about to fail")
        ratio(1, 0)
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        "tasks:\n  - source: bad.py\n    class: ScriptRunner\n    product: out.txt\n",
    )

    with pytest.raises(DAGBuildError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    failure = raised.value.failures["bad"]
    assert (failure.type, failure.message) == ("ZeroDivisionError", "division by zero")
    assert failure.source == str(tmp_path / "bad.py")
    assert (failure.line, failure.code) == (7, "return a / b"), "the script's own line numbers"
    assert f'File "{tmp_path / "bad.py"}", line 10, in <module>' in failure.traceback
    assert "    ratio(1, 0)" in failure.traceback
    assert "nbpipe" not in failure.traceback.replace(str(tmp_path), "")


def test_script_runner_ipynb_names_cell_and_line(tmp_path):
    from notebook_files import write_notebook

    write_notebook(tmp_path / "nb.ipynb", "x = 1", "y = x\nz = undefined_name")
    dag = DAGSpec(
        {"tasks": [{"source": "nb.ipynb", "class": "ScriptRunner", "product": "o.txt"}]},
        folder=tmp_path,
    ).to_dag()

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    failure = raised.value.failures["nb"]
    assert (failure.type, failure.cell, failure.line) == ("NameError", 2, 2)
    assert failure.code == "z = undefined_name"
    assert "nb.ipynb, cell 3, line 2: NameError: name 'undefined_name' is not defined" in str(
        failure
    )


def test_script_runner_exit_status_and_syntax_errors(tmp_path):
    write(
        tmp_path / "exits.py",
        '# %% tags=["parameters"]\nproduct = None\n# %%\nimport sys\n'
        'print("giving up", file=sys.stderr)\nsys.exit(4)\n',
    )
    write(
        tmp_path / "magic.py",
        '# %% tags=["parameters"]\nproduct = None\n# %%\nx = (\n',
    )
    dag = DAGSpec(
        {
            "tasks": [
                {"source": "exits.py", "class": "ScriptRunner", "product": "a.txt"},
                {"source": "magic.py", "class": "ScriptRunner", "product": "b.txt"},
            ]
        },
        folder=tmp_path,
    ).to_dag()

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    exits, syntax = raised.value.failures["exits"], raised.value.failures["magic"]
    assert (exits.type, exits.message) == ("ScriptError", "python exited with status 4")
    assert "giving up" in exits.text()
    assert syntax.type == "SyntaxError" and syntax.line == 4


def test_script_runner_python_api(tmp_path, monkeypatch):
    from nbpipe import DAG

    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "light.py",
        """
        # + tags=["parameters"]
        product = None
        greeting = 'hi'
        # -

        open(product, 'w').write(greeting + ' from ' + __name__)
        """,
    )
    dag = DAG()
    task = ScriptRunner("light.py", File("out.txt"), dag, params={"greeting": "hello"})

    dag.build()

    assert task.name == "light"
    assert (tmp_path / "out.txt").read_text() == "hello from __main__"


def test_python_api_signatures_are_ploomber_s(tmp_path):
    """Ploomber's argument order: ShellScript(source, product, dag, name, client, params),
    ScriptRunner(source, product, dag, name, params, ext_in, static_analysis, local_execution)."""
    from nbpipe import DAG

    notebook(tmp_path / "ok.py")
    dag = DAG()
    shell = ShellScript(
        "echo {{n}} > {{product}}", File(tmp_path / "s.txt"), dag, "s", None, {"n": 1}
    )
    script = ScriptRunner(
        tmp_path / "ok.py", File(tmp_path / "o.txt"), dag, "o", {}, None, "strict", True
    )
    assert shell.params == {"n": 1} and script.static_analysis == "strict"
    with pytest.raises(ValueError, match="ShellScript's client is not supported"):
        ShellScript("x {{product}}", File(tmp_path / "c.txt"), dag, "c", client=object())
    with pytest.raises(ValueError, match=r"ScriptRunner\(ext_in=...\) .* is not supported"):
        ScriptRunner("print(1)", File(tmp_path / "t.txt"), dag, "t", ext_in="py")


def test_script_runner_render_problems(tmp_path):
    from nbpipe import DAG

    write(tmp_path / "noparams.py", "# %%\nprint(1)\n")
    notebook(tmp_path / "ok.py")
    dag = DAG()
    ScriptRunner(tmp_path / "noparams.py", File(tmp_path / "a.txt"), dag)
    ScriptRunner(tmp_path / "missing.py", File(tmp_path / "b.txt"), dag)
    ScriptRunner(tmp_path / "ok.py", File(tmp_path / "c.txt"), dag, params={"f": object()})

    with pytest.raises(DAGRenderError) as raised:
        dag.render()

    problems = dict(raised.value.problems)
    assert "has no cell tagged 'parameters'" in problems["noparams"]
    assert "does not exist" in problems["missing"]
    assert "params['f'] cannot be injected into a script" in problems["ok"]


# -- class: ---------------------------------------------------------------------------------------
def test_class_key_picks_the_task_class(tmp_path):
    write(tmp_path / "raw_tasks.py", RAW)
    notebook(tmp_path / "nb.py")
    write(tmp_path / "run.sh", "echo > {{product}}\n")
    spec = DAGSpec(
        {
            "tasks": [
                {"source": "raw_tasks.make_raw", "class": "PythonCallable", "product": "raw.txt"},
                {"source": "nb.py", "class": "NotebookRunner", "product": "nb.ipynb"},
                {"source": "nb.py", "class": "ScriptRunner", "product": "s.txt", "name": "s"},
                {"source": "run.sh", "class": "ShellScript", "product": "sh.txt"},
            ]
        },
        folder=tmp_path,
    )
    dag = spec.to_dag()
    kinds = {name: type(dag[name]) for name in dag}
    assert kinds == {
        "make_raw": PythonCallable,
        "nb": NotebookRunner,
        "s": ScriptRunner,
        "run": ShellScript,
    }
    assert spec.warnings == []


@pytest.mark.parametrize(
    ("task", "error", "message"),
    [
        (
            {"class": "ploomber.tasks.ShellScript"},
            InvalidValueError,
            r"tasks\[0\].class must be a task class name, as in Ploomber: write class: "
            r"ShellScript \(not 'ploomber.tasks.ShellScript'\)",
        ),
        (
            {"class": "SQLScript"},
            UnsupportedKeyError,
            r"tasks\[0\].class SQLScript \(a Ploomber task class\) is not supported by nbpipe",
        ),
        (
            {"class": "ShellScrpt"},
            InvalidValueError,
            r"class must be one of .* not 'ShellScrpt' \(did you mean 'ShellScript'\?\)",
        ),
        (
            {"class": "ShellScript", "kernelspec_name": "python3"},
            InvalidValueError,
            r"kernelspec_name applies to notebook tasks \(NotebookRunner\) only; tasks\[0\] "
            r"\(source 'run.sh'\) is a ShellScript",
        ),
    ],
)
def test_class_key_errors(tmp_path, task, error, message):
    write(tmp_path / "run.sh", "echo > {{product}}\n")
    spec = write(
        tmp_path / "pipeline.yaml",
        "tasks:\n  - source: run.sh\n    product: out.txt\n"
        + "".join(f"    {key}: {value}\n" for key, value in task.items()),
    )
    with pytest.raises(error, match=message) as raised:
        DAGSpec(spec)
    assert raised.value.line == 4 + list(task).index(list(task)[-1])


def test_python_is_the_interpreter_of_the_build(tmp_path):
    """ScriptRunner runs the build's interpreter (its packages), as Ploomber's does."""
    write(
        tmp_path / "which.py",
        '# %% tags=["parameters"]\nproduct = None\n# %%\nimport sys\n'
        "open(product, 'w').write(sys.executable)\n",
    )
    DAGSpec(
        {"tasks": [{"source": "which.py", "class": "ScriptRunner", "product": "o.txt"}]},
        folder=tmp_path,
    ).to_dag().build()
    assert (tmp_path / "o.txt").read_text() == sys.executable
