"""The ``papermill`` metadata of the notebooks a build writes names the task's source and its
notebook product, never the notebook object papermill ran from or a staged file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_files import write_notebook

from nbpipe import DAG
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Serial
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner


def papermill_metadata(path: Path) -> dict:
    return json.loads(path.read_text())["metadata"]["papermill"]


def test_built_notebook_names_its_source_and_product(workdir):
    write_notebook(workdir / "ok.ipynb", "print('ran')")
    dag = DAG(executor=Serial())
    NotebookRunner("ok.ipynb", File("out/ok.ipynb"), dag)

    dag.build()

    metadata = papermill_metadata(workdir / "out/ok.ipynb")
    assert metadata["input_path"].endswith("ok.ipynb")
    assert isinstance(metadata["input_path"], str), "not the whole notebook embedded"
    assert metadata["output_path"] == str(File("out/ok.ipynb").absolute())
    assert metadata["parameters"]["product"] == str(File("out/ok.ipynb").absolute())


def test_failed_notebook_names_its_source_and_product(workdir):
    write_notebook(workdir / "bad.ipynb", "raise ValueError('no')")
    dag = DAG(executor=Serial())
    NotebookRunner("bad.ipynb", File("out/bad.ipynb"), dag)

    with pytest.raises(DAGBuildError):
        dag.build()

    partial = workdir / "out/bad.failed.ipynb"
    metadata = papermill_metadata(partial)
    assert isinstance(metadata["input_path"], str)
    assert metadata["input_path"].endswith("bad.ipynb")
    assert metadata["output_path"] == str(File("out/bad.ipynb").absolute())
    assert ".nbpipe-" not in partial.read_text(), "no staged path shows in the kept notebook"
