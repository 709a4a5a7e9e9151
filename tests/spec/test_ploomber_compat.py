"""Ploomber projects run unchanged: the spec semantics of Ploomber 0.23.3, each checked by building
a real pipeline (real kernels for the notebooks). The expected names and paths are what Ploomber
itself gives for the same spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe.spec import DAGSpec


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


def outputs_of(ipynb: Path) -> str:
    """Every text output of an executed notebook, joined."""
    cells = json.loads(ipynb.read_text())["cells"]
    return "".join(
        "".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])
    )


# -- 1. grid ----------------------------------------------------------------------------------
def test_grid_groups_with_different_placeholders_build_at_ploombers_paths(tmp_path):
    notebook(
        tmp_path / "fit.py",
        extra="model = 'none'\nalpha = 'default'",
        body="from pathlib import Path\nPath(product['data']).write_text(f'{model}:{alpha}')",
    )
    write(
        tmp_path / "fns_grid_compat.py",
        """
        from pathlib import Path

        def f(product, n):
            Path(product).write_text(str(n))
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: fit.py
            name: fit-[[model]]-[[alpha]]
            product:
              nb: out/fit-[[model]]-[[alpha]].ipynb
              data: out/data.txt
            grid:
              - model: [ridge]
                alpha: [1, 2]
              - model: tree            # a single value; this group has no alpha
          - source: fns_grid_compat.f
            name: plain
            product: out/plain.csv
            grid:
              n: [5, 6]
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")
    spec.to_dag().build()

    # what Ploomber 0.23.3 names these tasks and where it writes their products
    assert spec.task_names == ["fit-ridge-1", "fit-ridge-2", "fit-tree-", "plain0", "plain1"]
    out = tmp_path / "out"
    assert (out / "data-0.txt").read_text() == "ridge:1"
    assert (out / "data-1.txt").read_text() == "ridge:2"
    assert (out / "data-2.txt").read_text() == "tree:default"
    for name in ("fit-ridge-1-0", "fit-ridge-2-1", "fit-tree--2"):
        assert (out / f"{name}.ipynb").exists(), name
    assert (out / "plain-0.csv").read_text() == "5"
    assert (out / "plain-1.csv").read_text() == "6"


# -- 2. wildcard upstream ---------------------------------------------------------------------
def test_wildcard_upstream_is_nested_under_its_pattern_in_notebooks_and_functions(tmp_path):
    write(
        tmp_path / "fns_wild.py",
        """
        from pathlib import Path

        def fit(product, n):
            Path(product).write_text(str(n))

        def load(product):
            Path(product).write_text("loaded")

        def collect(product, upstream):
            fits = upstream['fit-*']
            text = ",".join(f"{name}={Path(fits[name]).read_text()}" for name in sorted(fits))
            Path(product).write_text(text + ";" + Path(upstream["load"]).read_text())
        """,
    )
    notebook(
        tmp_path / "summary.py",
        upstream="['fit-*', 'load']",
        body=(
            "from pathlib import Path\n"
            "print(sorted(upstream), sorted(upstream['fit-*']))\n"
            "print(Path(upstream['fit-*']['fit-1']).read_text(), Path(upstream['load']).read_text())"
        ),
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: fns_wild.fit
            name: fit-
            product: out/fit.txt
            grid:
              n: [10, 20]
          - source: fns_wild.load
            product: out/load.txt
          - source: fns_wild.collect
            product: out/collect.txt
          - source: summary.py
            product: out/summary.ipynb
        """,
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out" / "collect.txt").read_text() == "fit-0=10,fit-1=20;loaded"
    printed = outputs_of(tmp_path / "out" / "summary.ipynb")
    assert "['fit-*', 'load'] ['fit-0', 'fit-1']" in printed
    assert "20 loaded" in printed


# -- 3. hooks ---------------------------------------------------------------------------------
HOOKS = """
import json
from pathlib import Path

from nbpipe.exceptions import DAGBuildEarlyStop


def make(product):
    Path(product).write_text("made")


def fail(product):
    raise ValueError("boom in the task")


def with_client(product, client):
    Path(str(product) + ".client").write_text(repr(client))


def render_with_client(task, client):
    Path(str(task.product)).parent.mkdir(exist_ok=True)
    Path(str(task.product) + ".rendered").write_text(repr(client))


def on_failure(traceback, dag):
    Path(dag["ok"].product).with_name("traceback.json").write_text(json.dumps(traceback))


def on_failure_stop(traceback):
    raise DAGBuildEarlyStop("failure handled")


def needs(product, threshold, missing):
    pass


def not_ready(task):
    raise ValueError(f"{task.name} is not ready")
"""


def test_task_hooks_may_ask_for_client_which_is_none(tmp_path):
    write(tmp_path / "hooks_client.py", HOOKS)
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: hooks_client.make
            product: out/a.txt
            on_render: hooks_client.render_with_client
            on_finish: hooks_client.with_client
        """,
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out" / "a.txt.client").read_text() == "None"
    assert (tmp_path / "out" / "a.txt.rendered").read_text() == "None"


def test_dag_on_failure_gets_ploombers_traceback_dict_and_may_stop_early(tmp_path):
    from nbpipe.exceptions import DAGBuildError

    write(tmp_path / "hooks_fail.py", HOOKS)
    spec = """
        on_failure: hooks_fail.{hook}
        tasks:
          - source: hooks_fail.make
            name: ok
            product: out/ok.txt
          - source: hooks_fail.fail
            product: out/bad.txt
        """
    write(tmp_path / "pipeline.yaml", spec.format(hook="on_failure"))

    with pytest.raises(DAGBuildError):
        DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    traceback = json.loads((tmp_path / "out" / "traceback.json").read_text())
    assert list(traceback) == ["build"]  # Ploomber's on_failure gets only the build's
    assert "fail" in traceback["build"] and "ValueError: boom in the task" in traceback["build"]

    # DAGBuildEarlyStop raised by on_failure: the build ends without an error, as in Ploomber
    write(tmp_path / "pipeline.yaml", spec.format(hook="on_failure_stop"))
    report = DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()
    assert report.stopped_early and report.stop_reason == "failure handled"
    assert report["fail"].status.value == "failed"


def test_a_hook_with_arguments_is_named_by_its_dotted_path(tmp_path):
    from nbpipe.exceptions import DAGRenderError

    write(tmp_path / "hooks_named.py", HOOKS)
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: hooks_named.make
            product: out/a.txt
            on_finish: {dotted_path: hooks_named.needs, threshold: 3}
        """,
    )

    with pytest.raises(DAGRenderError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml").to_dag().render()

    message = str(raised.value)
    assert "on_finish hook hooks_named.needs asks for missing" in message
    assert "functools" not in message and "partial" not in message


def test_an_exception_in_on_render_is_a_render_error_naming_the_task(tmp_path):
    from nbpipe.exceptions import DAGRenderError

    write(tmp_path / "hooks_render.py", HOOKS)
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: hooks_render.make
            name: first
            product: out/a.txt
            on_render: hooks_render.not_ready
        """,
    )
    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    with pytest.raises(DAGRenderError) as raised:
        dag.build()

    [(task, message)] = raised.value.problems
    assert task == "first"
    assert "on_render hook hooks_render.not_ready" in message
    assert "ValueError: first is not ready" in message
    assert f"(at {tmp_path / 'hooks_render.py'}:" in message
    assert not (tmp_path / "out" / "a.txt").exists()
