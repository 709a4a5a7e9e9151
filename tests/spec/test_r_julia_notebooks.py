"""Notebook sources in R (``.R``, ``.r``, ``.Rmd``) and Julia (``.jl``): the kernel comes from
the extension when the notebook names none, as in Ploomber and jupytext, and the parameters cell
is read in the notebook's language. No R or Julia here: the tests check the choice of kernel,
the error when it is not installed, and the reading of the parameters cell."""

from __future__ import annotations

import json

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe import DAG
from nbpipe.exceptions import DAGRenderError
from nbpipe.notebooks import source as notebook_source
from nbpipe.products import File
from nbpipe.spec import DAGSpec, UpstreamError
from nbpipe.tasks import NotebookRunner


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """Installs fake kernelspecs (nothing runs them) for the test: ``kernels('julia-1.10')``."""
    folder = tmp_path / "jupyter"

    def install(name: str, language: str) -> None:
        spec = {"argv": [name, "{connection_file}"], "display_name": name, "language": language}
        write(folder / "kernels" / name / "kernel.json", json.dumps(spec))
        notebook_source._kernel_specs.cache_clear()

    monkeypatch.setenv("JUPYTER_PATH", str(folder))
    notebook_source._kernel_specs.cache_clear()
    yield install
    notebook_source._kernel_specs.cache_clear()


R_LIGHT = """
# + tags=["parameters"]
upstream = NULL
product = NULL
# -

x <- 1
"""

R_MARKDOWN = """
---
title: clean
---

```{r tags=c("parameters")}
upstream <- list('load')
product <- NULL
```

```{r}
data <- read.csv(upstream[['load']])
```
"""

JULIA = """
# %% tags=["parameters"]
upstream = ["load"]
product = nothing

# %%
println(1)
"""


@pytest.mark.parametrize("name", ["clean.R", "clean.r"])
def test_r_script_runs_in_ir_which_is_not_installed(tmp_path, kernels, name):
    write(tmp_path / name, R_LIGHT)
    dag = DAG()
    task = NotebookRunner(tmp_path / name, File(tmp_path / "clean.ipynb"), dag)

    assert task.kernel_name == "ir"
    assert task.notebook.language() == "R"
    with pytest.raises(DAGRenderError) as raised:
        dag.render()
    (problem,) = dict(raised.value.problems).values()
    assert problem.startswith("Jupyter kernel 'ir' is not installed (installed: ")
    assert "R notebooks (.R, .r, .Rmd) run in IRkernel's kernel 'ir'" in problem
    assert "IRkernel::installspec()" in problem


def test_r_kernel_when_installed(tmp_path, kernels):
    kernels("ir", "R")
    write(tmp_path / "clean.R", R_LIGHT)
    dag = DAG()
    NotebookRunner(tmp_path / "clean.R", File(tmp_path / "clean.ipynb"), dag)

    dag.render()  # no problem: 'ir' is installed (the notebook is not run here)


def test_julia_script_uses_the_installed_julia_kernel(tmp_path, kernels):
    write(tmp_path / "fit.jl", JULIA)
    dag = DAG()
    task = NotebookRunner(tmp_path / "fit.jl", File(tmp_path / "fit.ipynb"), dag)

    assert task.kernel_name == "julia"
    with pytest.raises(DAGRenderError, match=r"IJulia's kernel \(named julia-<version>\)"):
        dag.render()

    kernels("julia-1.10", "julia")
    task.refresh()
    assert task.kernel_name == "julia-1.10"


def test_the_notebook_or_the_task_names_the_kernel_first(tmp_path, kernels):
    kernels("ir", "R")
    write(
        tmp_path / "named.R",
        "# ---\n# jupyter:\n#   kernelspec:\n#     name: ir-4.3\n#     language: R\n"
        "#     display_name: R 4.3\n# ---\n" + R_LIGHT,
    )
    write(tmp_path / "plain.R", R_LIGHT)
    dag = DAG()
    named = NotebookRunner(tmp_path / "named.R", File(tmp_path / "a.ipynb"), dag)
    chosen = NotebookRunner(
        tmp_path / "plain.R", File(tmp_path / "b.ipynb"), dag, kernelspec_name="python3"
    )
    assert named.kernel_name == "ir-4.3"
    assert chosen.kernel_name == "python3"


def test_spec_reads_upstream_from_r_and_julia_parameters_cells(tmp_path, kernels):
    notebook(tmp_path / "load.py")
    write(tmp_path / "clean.Rmd", R_MARKDOWN)
    write(tmp_path / "fit.jl", JULIA)
    write(tmp_path / "plain.R", R_LIGHT)
    write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: load.py
            product: out/load.ipynb
          - source: clean.Rmd
            product: out/clean.ipynb
          - source: fit.jl
            product: out/fit.ipynb
          - source: plain.R
            product: out/plain.ipynb
        """,
    )

    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    assert {name: list(dag[name].upstream) for name in dag} == {
        "load": [],
        "clean": ["load"],
        "fit": ["load"],
        "plain": [],
    }
    assert dag["clean"].kernel_name == "ir" and dag["fit"].kernel_name == "julia"
    with pytest.raises(DAGRenderError) as raised:
        dag.render()
    assert sorted(dict(raised.value.problems)) == ["clean", "fit", "plain"]


def test_r_parameters_cell_values(tmp_path):
    from nbpipe.spec.extract import read_notebook_declaration

    cell = (
        "upstream <- c(\n  'load',\n  \"clean\"\n)\n"
        "product = list(nb = 'out/x.ipynb', \"data\" = 'out/x.csv')  # a comment\n"
        "library(dplyr); n_rows <- 10L\n"
    )
    nb = {
        "cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": cell}],
        "metadata": {"kernelspec": {"name": "ir", "language": "R"}},
    }

    declaration = read_notebook_declaration(tmp_path / "x.ipynb", nb)

    assert declaration.upstream == ["load", "clean"]
    assert declaration.product == {"nb": "out/x.ipynb", "data": "out/x.csv"}


def test_r_parameters_cell_that_is_not_a_literal_is_an_error_at_its_line(tmp_path):
    write(
        tmp_path / "clean.R",
        '# + tags=["parameters"]\nproduct = NULL\nupstream = paste0("lo", "ad")\n# -\n',
    )
    write(tmp_path / "pipeline.yaml", "tasks:\n  - source: clean.R\n    product: o.ipynb\n")

    with pytest.raises(UpstreamError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml").to_dag()

    assert (raised.value.file, raised.value.line) == (str(tmp_path / "clean.R"), 3)
    assert "must be a literal, e.g. upstream = list('load', 'clean') or upstream = NULL" in str(
        raised.value
    )
