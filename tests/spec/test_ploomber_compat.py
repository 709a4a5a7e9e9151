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


def test_grid_placeholders_may_name_params_and_extracted_products_are_numbered(tmp_path):
    write(
        tmp_path / "nb.py",
        """
        # %% tags=["parameters"]
        upstream = None
        product = 'out/nb-[[kind]].ipynb'
        kind = ''
        alpha = 0

        # %%
        print(kind, alpha)
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          extract_product: true
        tasks:
          - source: nb.py
            name: nb-[[kind]]-[[alpha]]
            params: {kind: a}
            grid: {alpha: [1]}
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")
    spec.to_dag().build()

    assert spec.task_names == ["nb-a-1"]
    assert "a 1" in outputs_of(tmp_path / "out" / "nb-a-0.ipynb")


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


# -- 4. env.yaml, the env argument, meta, location --------------------------------------------
ECHO = """
import json
from pathlib import Path

def echo(product, **params):
    Path(product).parent.mkdir(parents=True, exist_ok=True)
    Path(product).write_text(json.dumps(params, sort_keys=True))
"""


def test_env_yaml_may_override_built_ins_and_the_env_argument_is_the_env(tmp_path):
    from nbpipe.spec import PlaceholderError

    write(tmp_path / "fns_env_compat.py", ECHO)
    write(tmp_path / "env.yaml", "user: someone\nroot: /the/root\nn: 1\npaths: {x: 1, y: 2}\n")
    write(tmp_path / "other.yaml", "n: 7\nextra: from-file\n")
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: fns_env_compat.echo
            product: 'out/{{user}}-{{n}}.json'
            params: {root: '{{root}}', paths: '{{paths}}', extra: '{{extra}}'}
        """,
    )
    spec_path = tmp_path / "pipeline.yaml"

    def built(env) -> dict:
        spec = DAGSpec(spec_path, env=env)
        dag = spec.to_dag()
        dag.build()
        [task] = dag.values()
        return json.loads(Path(str(task.product)).read_text())

    # env.yaml's user and root replace the built-ins, as in Ploomber; a dict is the env: it
    # adds keys (extra) and replaces env.yaml's (n, and paths as a whole)
    params = built({"extra": "from-dict", "n": 2, "paths": {"x": 5}})
    assert params == {"root": "/the/root", "paths": {"x": 5}, "extra": "from-dict"}
    assert (tmp_path / "out" / "someone-2.json").exists()

    # a path names the env file, whose values replace env.yaml's
    params = built(str(tmp_path / "other.yaml"))
    assert params["extra"] == "from-file" and params["paths"] == {"x": 1, "y": 2}
    assert (tmp_path / "out" / "someone-7.json").exists()

    # a key nothing declares or uses that looks like a declared one is a typo
    with pytest.raises(PlaceholderError, match=r"'nn' is not declared.*did you mean 'n'"):
        DAGSpec(spec_path, env={"nn": 3, "extra": "x"})
    spec = DAGSpec(spec_path, env={"unrelated_setting": 3, "extra": "x"})  # Ploomber warns
    assert any("unrelated_setting" in warning for warning in spec.warnings)


def test_import_tasks_from_adds_tasks_with_sources_relative_to_their_file(tmp_path):
    write(tmp_path / "fns_import.py", ECHO)
    notebook(
        tmp_path / "more" / "nb.py",
        upstream="['first']",
        body="print('n is', n, 'upstream', sorted(upstream))",
        extra="n = 0",
    )
    write(tmp_path / "env.yaml", "n: 3\n")
    write(
        tmp_path / "more" / "tasks.yaml",
        """
        - source: nb.py                       # more/nb.py, beside this file
          product: out/nb.ipynb               # relative to pipeline.yaml's folder
          params: {n: '{{n}}'}
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          import_tasks_from: more/tasks.yaml
        tasks:
          - source: fns_import.echo
            name: first
            product: out/first.json
        """,
    )

    spec = DAGSpec(tmp_path / "pipeline.yaml")
    spec.to_dag().build()

    assert spec.task_names == ["first", "nb"]
    assert "n is 3 upstream ['first']" in outputs_of(tmp_path / "out" / "nb.ipynb")


def test_product_relative_to_source(tmp_path):
    write(tmp_path / "fns_relative.py", ECHO)
    notebook(tmp_path / "sub" / "nb.py", extra="k = 0")
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          product_relative_to_source: true
        tasks:
          - source: sub/nb.py
            product: out/nb.ipynb
          - source: sub/nb.py
            name: g-
            product: out/g.ipynb
            grid: {k: [1]}
          - source: fns_relative.echo
            product: out/f.json
        """,
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "sub" / "out" / "nb.ipynb").exists()  # beside its source
    assert (tmp_path / "out" / "g-0.ipynb").exists()  # Ploomber ignores it for grids
    assert (tmp_path / "out" / "f.json").exists()  # a function has no source folder


def test_extraction_off_takes_the_spec_upstream_with_wildcards(tmp_path):
    write(
        tmp_path / "fns_noextract.py",
        """
        from pathlib import Path

        def fit(product, n):
            Path(product).write_text(str(n))

        def collect(product, upstream):
            fits = upstream['fit-*']
            Path(product).write_text(",".join(Path(fits[name]).read_text() for name in sorted(fits)))
        """,
    )
    write(
        tmp_path / "pipeline.yaml",
        """
        meta:
          extract_upstream: false
        tasks:
          - source: fns_noextract.fit
            name: fit-
            product: out/fit.txt
            upstream: []
            grid: {n: [1, 2]}
          - source: fns_noextract.collect
            product: out/collect.txt
            upstream: [fit-*]
        """,
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out" / "collect.txt").read_text() == "1,2"


def test_an_empty_upstream_key_is_accepted_with_extraction_on(tmp_path):
    write(tmp_path / "fns_empty.py", ECHO)
    write(
        tmp_path / "pipeline.yaml",
        "tasks:\n  - {source: fns_empty.echo, product: out/a.json, upstream: []}\n",
    )

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out" / "a.json").exists()


def test_location_names_a_function_returning_the_dag(tmp_path):
    from nbpipe.spec import InvalidValueError

    write(
        tmp_path / "factory_compat.py",
        """
        from pathlib import Path

        from nbpipe import DAG
        from nbpipe.products import File
        from nbpipe.tasks import PythonCallable

        def write(product):
            Path(product).write_text("from the factory")

        def make():
            dag = DAG()
            PythonCallable(write, File(Path(__file__).parent / "out.txt"), dag)
            return dag

        def not_a_dag():
            return 42
        """,
    )
    write(tmp_path / "pipeline.yaml", "location: factory_compat.make\n")

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    assert (tmp_path / "out.txt").read_text() == "from the factory"
    write(tmp_path / "pipeline.yaml", "location: factory_compat.make\ntasks: []\n")
    with pytest.raises(InvalidValueError, match="no other keys"):
        DAGSpec(tmp_path / "pipeline.yaml")
    write(tmp_path / "pipeline.yaml", "location: factory_compat.not_a_dag\n")
    with pytest.raises(InvalidValueError, match="returned int 42, not a DAG") as raised:
        DAGSpec(tmp_path / "pipeline.yaml").to_dag()
    assert raised.value.line == 1


def test_exporter_problem_names_what_an_exporter_lacks_here(tmp_path, monkeypatch):
    from nbpipe.notebooks.convert import exporter_problem

    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-browsers"))
    assert exporter_problem("slides", ".html") is None
    assert exporter_problem("html", ".html") is None
    assert "'sildes' is not an nbconvert exporter installed here" in exporter_problem("sildes")
    assert "give the product a .pdf extension" in exporter_problem("webpdf", ".html")
    webpdf = exporter_problem("webpdf", ".pdf")
    assert "needs Playwright's own Chromium" in webpdf and str(tmp_path / "no-browsers") in webpdf


def test_nbconvert_exporter_name_picks_any_installed_exporter(tmp_path, monkeypatch):
    from nbpipe.spec import InvalidValueError

    notebook(tmp_path / "nb.py", body="print('shown in the slides')")
    spec = """
        tasks:
          - source: nb.py
            nb_product_key: [nb, slides]
            product: {nb: out/nb.ipynb, slides: out/nb.slides.html}
            nbconvert_exporter_name: {slides: slides}
        """
    write(tmp_path / "pipeline.yaml", spec)

    DAGSpec(tmp_path / "pipeline.yaml").to_dag().build()

    slides = (tmp_path / "out" / "nb.slides.html").read_text()
    assert "reveal" in slides and "shown in the slides" in slides

    # an exporter that cannot run here fails before anything runs, naming what is missing
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-browsers"))
    write(tmp_path / "pipeline.yaml", spec.replace("slides: slides", "slides: webpdf"))
    with pytest.raises(InvalidValueError, match="webpdf exporter writes a PDF"):
        DAGSpec(tmp_path / "pipeline.yaml")
    write(
        tmp_path / "pipeline.yaml",
        spec.replace("slides: slides", "slides: webpdf").replace("nb.slides.html", "nb.pdf"),
    )
    with pytest.raises(InvalidValueError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml")
    assert raised.value.line == 5
    assert "needs Playwright's own Chromium" in str(raised.value)
    write(tmp_path / "pipeline.yaml", spec.replace("slides: slides", "slides: sildes"))
    with pytest.raises(InvalidValueError, match="'sildes' is not an nbconvert exporter"):
        DAGSpec(tmp_path / "pipeline.yaml")
