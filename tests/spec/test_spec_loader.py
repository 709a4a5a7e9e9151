"""DAGSpec: pipeline.yaml (Ploomber's format) to a DAG, without building notebooks."""

from __future__ import annotations

import getpass
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe.executors import Parallel, Serial
from nbpipe.spec import DAGSpec, PlaceholderError, find_entry_point
from nbpipe.tasks import NotebookRunner, PythonCallable


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


REFERENCE = """
executor: parallel

tasks:
  - source: nb.py
    nb_product_key: [nb_ipynb, nb_html]
    product:
        nb_ipynb: nb.ipynb
        nb_html: report.html
"""


def products(task) -> dict[str, str] | str:
    if isinstance(task.product, dict) or hasattr(task.product, "items"):
        return {key: file.absolute() for key, file in task.product.items()}
    return task.product.absolute()


def test_reference_spec(tmp_path):
    notebook(tmp_path / "nb.py")
    spec = DAGSpec(write(tmp_path / "pipeline.yaml", REFERENCE))

    dag = spec.to_dag()

    assert isinstance(dag.executor, Parallel)
    task = dag["nb"]
    assert isinstance(task, NotebookRunner)
    assert task.nb_product_key == ["nb_ipynb", "nb_html"]
    assert products(task) == {
        "nb_ipynb": str(tmp_path / "nb.ipynb"),
        "nb_html": str(tmp_path / "report.html"),
    }
    assert spec.warnings == []


def test_relative_paths_resolve_against_the_spec_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    notebook(project / "notebooks" / "nb.py")
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - source: notebooks/nb.py
            product: output/nb.ipynb
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    dag = DAGSpec("../project/pipeline.yaml").to_dag()

    assert dag["nb"].source == project / "notebooks" / "nb.py"
    assert products(dag["nb"]) == str(project / "output" / "nb.ipynb")


def test_example_pipeline_matches_build_py():
    example = Path(__file__).resolve().parents[2] / "example_notebooks"
    sys.path.insert(0, str(example))
    loaded = importlib.util.spec_from_file_location("example_build", example / "build.py")
    build = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(build)
    expected = build.make_dag("serial")

    dag = DAGSpec(example / "pipeline.yaml").to_dag()

    assert isinstance(dag.executor, Parallel)
    assert list(dag) == list(expected)
    for name in expected:
        mine, theirs = dag[name], expected[name]
        assert type(mine) is type(theirs)
        assert set(mine.upstream) == set(theirs.upstream), name
        assert products(mine) == products(theirs), name
        if isinstance(theirs, NotebookRunner):
            assert mine.source == theirs.source
            assert mine.nb_product_key == theirs.nb_product_key
        else:
            assert mine.source is theirs.source


def test_upstream_is_read_from_parameters_cells_and_functions(tmp_path):
    notebook(tmp_path / "a.py", upstream="None")
    notebook(tmp_path / "b.py", upstream="['a']")
    notebook(tmp_path / "c.py", upstream="{'a': None, 'b': None}")
    write(
        tmp_path / "fns_upstream.py",
        """
        from pathlib import Path

        def d(product, upstream):
            Path(product).write_text(str(upstream['c']) + str(upstream["b"]))
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        # a bare list of tasks
        - source: a.py
          product: out/a.ipynb
        - source: b.py
          product: out/b.ipynb
        - source: c.py
          product: out/c.ipynb
        - source: fns_upstream.d
          product: out/d.txt
        """,
    )

    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    assert {name: sorted(dag[name].upstream) for name in dag} == {
        "a": [],
        "b": ["a"],
        "c": ["a", "b"],
        "d": ["b", "c"],
    }
    assert isinstance(dag["d"], PythonCallable)
    assert isinstance(dag.executor, Serial)


def test_upstream_key_when_extraction_is_off(tmp_path):
    notebook(tmp_path / "a.py")
    notebook(tmp_path / "b.py", upstream="['ignored']")
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          extract_upstream: false
        tasks:
          - source: a.py
            product: out/a.ipynb
          - source: b.py
            product: out/b.ipynb
            upstream: [a]
        """,
    )

    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    assert list(dag["b"].upstream) == ["a"]


def test_extract_product_reads_the_parameters_cell(tmp_path):
    write(
        tmp_path / "nb.py",
        """
        # %% tags=["parameters"]
        upstream = None
        product = {'nb': 'out/nb.ipynb', 'data': 'out/data.csv'}

        # %%
        print(1)
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          extract_product: true
        tasks:
          - source: nb.py
        """,
    )

    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    assert products(dag["nb"]) == {
        "nb": str(tmp_path / "out" / "nb.ipynb"),
        "data": str(tmp_path / "out" / "data.csv"),
    }


@pytest.mark.parametrize(
    ("executor", "kind", "processes", "start_method"),
    [
        ("serial", Serial, 1, None),
        ("parallel", Parallel, os.cpu_count(), None),
        (
            "{dotted_path: nbpipe.executors.Parallel, processes: 2, start_method: spawn}",
            Parallel,
            2,
            "spawn",
        ),
        ("{dotted_path: ploomber.executors.Parallel, processes: 3}", Parallel, 3, None),
        ("{dotted_path: ploomber.executors.Serial, build_in_subprocess: false}", Serial, 1, None),
    ],
)
def test_executor(tmp_path, executor, kind, processes, start_method):
    write(tmp_path / "fns_exec.py", "def f(product):\n    pass\n")
    write(
        tmp_path / "pipeline.yaml",
        f"""
        executor: {executor}
        tasks:
          - source: fns_exec.f
            product: out/f.txt
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")
    dag = spec.to_dag()

    assert type(dag.executor) is kind
    assert dag.executor.processes == processes
    assert getattr(dag.executor, "start_method", None) == start_method
    if "build_in_subprocess" in executor:
        assert len(spec.warnings) == 1
        assert "pipeline.yaml:1: executor.build_in_subprocess is ignored" in spec.warnings[0]


def test_hooks_by_dotted_path_with_keyword_arguments(tmp_path):
    write(
        tmp_path / "hooks_kw.py",
        """
        from pathlib import Path

        def make(product):
            Path(product).write_text("made")

        def check(product, threshold):
            Path(str(product) + ".checked").write_text(str(threshold))

        def done(report, path, label="none"):
            Path(path).write_text(f"{label}:{report['make'].status.value}")
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        on_finish:
          dotted_path: hooks_kw.done
          path: '{{here}}/done.txt'
          label: all
        tasks:
          - source: hooks_kw.make
            product: out/a.txt
            on_finish: {dotted_path: hooks_kw.check, threshold: 3}
        """,
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out" / "a.txt").read_text() == "made"
    assert (tmp_path / "out" / "a.txt.checked").read_text() == "3"
    assert (tmp_path / "done.txt").read_text() == "all:executed"


def test_grid_expands_names_products_and_params(tmp_path):
    notebook(tmp_path / "fit.py")
    notebook(tmp_path / "summary.py", upstream="['fit-*']")
    write(tmp_path / "fns_grid.py", "def f(product, n):\n    pass\n")
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: fit.py
            name: fit-[[a]]-[[b]]
            product:
              nb: out/[[a]]/fit-[[b]].ipynb
              data: out/fit.csv
            params: {c: 1}
            grid:
              a: [1, 2]
              b: [x, y]
          - source: fns_grid.f
            product: out/f.txt
            grid:
              - n: [1, 2]
              - n: [3]
          - source: summary.py
            product: out/summary.ipynb
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")
    dag = spec.to_dag()

    fits = ["fit-1-x", "fit-1-y", "fit-2-x", "fit-2-y"]
    assert spec.task_names == [*fits, "f-0", "f-1", "f-2", "summary"]
    assert dag["fit-2-x"].params == {"c": 1, "a": 2, "b": "x"}
    assert products(dag["fit-2-x"]) == {  # every grid product numbered, as in Ploomber
        "nb": str(tmp_path / "out" / "2" / "fit-x-2.ipynb"),
        "data": str(tmp_path / "out" / "fit-2.csv"),
    }
    assert [dag[f"f-{i}"].params for i in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert products(dag["f-1"]) == str(tmp_path / "out" / "f-1.txt")
    assert sorted(dag["summary"].upstream) == fits  # the wildcard matches every fit


def test_env_placeholders_and_built_ins(tmp_path):
    git = shutil.which("git")
    project = tmp_path / "project"
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    write(project / "fns_env.py", "def f(product, **params):\n    pass\n")
    write(
        project / "env.yaml",
        """
        n_rows: 10
        paths:
          out: output
        label: '{{here}}/data'
        """,
    )
    write(
        project / "pipeline.yaml",
        """
        tasks:
          - source: fns_env.f
            name: f-{{n_rows}}
            product: '{{paths.out}}/f.txt'
            params:
              n: '{{n_rows}}'
              text: 'n={{ n_rows }}'
              here: '{{here}}'
              cwd: '{{cwd}}'
              root: '{{root}}'
              user: '{{user}}'
              label: '{{label}}'
              now: '{{now}}'
        """,
    )
    if git:
        run = {"cwd": project, "check": True, "capture_output": True}
        subprocess.run([git, "init", "-q", "-b", "trunk"], **run)
        subprocess.run(
            [
                git,
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "x",
            ],
            **run,
        )
        write(project / "git.yaml", "- source: fns_env.f\n  product: '{{git}}.txt'\n")

    dag = DAGSpec(project / "pipeline.yaml").to_dag()

    params = dag["f-10"].params
    assert params["n"] == 10 and params["text"] == "n=10"
    assert params["here"] == str(project)
    assert params["cwd"] == os.getcwd()
    assert params["root"] == str(tmp_path)
    assert params["user"] == getpass.getuser()
    assert params["label"] == f"{project}/data"
    assert params["now"][:2] == "20" and "T" in params["now"]
    assert products(dag["f-10"]) == str(project / "output" / "f.txt")

    overridden = DAGSpec(project / "pipeline.yaml", env={"n_rows": "20", "paths.out": "o2"})
    task = overridden.to_dag()["f-20"]
    assert task.params["n"] == 20
    assert products(task) == str(project / "o2" / "f.txt")
    with pytest.raises(
        PlaceholderError, match=r"--env n_row: 'n_row' is not declared.*did you mean 'n_rows'"
    ):
        DAGSpec(project / "pipeline.yaml", env={"n_row": "1"})

    if git:
        assert products(DAGSpec(project / "git.yaml").to_dag()["f"]) == str(project / "trunk.txt")


def test_named_spec_uses_its_named_env(tmp_path):
    write(tmp_path / "fns_named.py", "def f(product):\n    pass\n")
    write(tmp_path / "env.yaml", "out: default\n")
    write(tmp_path / "env.train.yaml", "out: train\n")
    write(tmp_path / "pipeline.train.yaml", "- {source: fns_named.f, product: '{{out}}/f.txt'}\n")

    dag = DAGSpec(tmp_path / "pipeline.train.yaml").to_dag()

    assert products(dag["f"]) == str(tmp_path / "train" / "f.txt")


def test_notebook_options_and_params_reach_the_task(tmp_path):
    notebook(tmp_path / "nb.py")
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: nb.py
            name: custom
            product: {nb: out/nb.ipynb, html: out/nb.html}
            nb_product_key: [nb, html]
            params: {alpha: 0.5, names: [a, b]}
            kernelspec_name: python3
            papermill_params: {execution_timeout: 30}
            nbconvert_export_kwargs: {exclude_input: true}
        """,
    )

    task = DAGSpec(tmp_path / "pipeline.yaml").to_dag()["custom"]

    assert task.params == {"alpha": 0.5, "names": ["a", "b"]}
    assert type(task.params["names"]) is list  # plain containers, not the loader's
    assert task.kernelspec_name == "python3"
    assert task.papermill_params == {"execution_timeout": 30}
    assert task.nbconvert_export_kwargs == {"exclude_input": True}


def test_ploomber_keys_without_effect_are_ignored_with_a_warning(tmp_path):
    notebook(tmp_path / "nb.py")
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          jupyter_hot_reload: true
        tasks:
          - source: nb.py
            product: out/nb.ipynb
            static_analysis: regular
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")

    assert len(spec.warnings) == 2
    assert "pipeline.yaml:2: meta.jupyter_hot_reload is ignored" in spec.warnings[0]
    assert "pipeline.yaml:6: static_analysis is ignored" in spec.warnings[1]


def test_find_entry_point(tmp_path, monkeypatch):
    write(tmp_path / "pipeline.yaml", "[]\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.delenv("NBPIPE_ENTRY_POINT", raising=False)

    assert find_entry_point(tmp_path / "a" / "b") == tmp_path / "pipeline.yaml"
    other = write(tmp_path / "other" / "pipeline.yaml", "[]\n")
    monkeypatch.setenv("NBPIPE_ENTRY_POINT", str(other.parent))
    assert find_entry_point(tmp_path / "a") == other


def test_same_module_name_in_two_projects(tmp_path):
    for name in ("one", "two"):
        write(tmp_path / name / "tasks.py", f"def f(product):\n    return {name!r}\n")
        write(tmp_path / name / "pipeline.yaml", "- {source: tasks.f, product: f.txt}\n")

    first = DAGSpec(tmp_path / "one" / "pipeline.yaml").to_dag()["f"].source
    second = DAGSpec(tmp_path / "two" / "pipeline.yaml").to_dag()["f"].source

    assert (first(None), second(None)) == ("one", "two")


def test_a_dict_spec_resolves_against_its_folder(tmp_path):
    notebook(tmp_path / "nb.py")

    spec = DAGSpec({"tasks": [{"source": "nb.py", "product": "nb.ipynb"}]}, folder=tmp_path)

    assert products(spec.to_dag()["nb"]) == str(tmp_path / "nb.ipynb")
