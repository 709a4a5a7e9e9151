"""Products are written atomically: a failure never loses or half-writes what was built."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_tasks import half_write_then_crash, no_output, two_files, write_name

from nbpipe import DAG
from nbpipe.exceptions import DAGBuildError
from nbpipe.products import File, MultiProduct
from nbpipe.tasks import PythonCallable


def test_a_crash_mid_write_keeps_the_previous_product(workdir, executor):
    dag = DAG(executor=executor)
    task = PythonCallable(write_name, File("data.txt"), dag, name="data", params={"name": "good"})
    dag.build()
    metadata_before = File("data.txt").read_metadata()

    task.source = half_write_then_crash
    task.params = {}
    task._digest = None
    with pytest.raises(DAGBuildError, match="crashed mid-write"):
        dag.build()

    assert Path("data.txt").read_text() == "good"
    assert File("data.txt").read_metadata() == metadata_before
    assert sorted(p.name for p in Path().iterdir()) == [".data.txt.metadata", "data.txt"]


def test_a_task_that_writes_nothing_fails_clearly(workdir, executor):
    dag = DAG(executor=executor)
    PythonCallable(no_output, File("never.txt"), dag)
    with pytest.raises(
        DAGBuildError, match=r"finished without writing its product\(s\): never.txt"
    ):
        dag.build()


def test_dict_products_and_folders(workdir, executor):
    dag = DAG(executor=executor)
    PythonCallable(two_files, {"a": File("out/a.txt"), "b": "out/b.txt"}, dag)
    dag.build()
    assert Path("out/a.txt").read_text() == "a" and Path("out/b.txt").read_text() == "b"
    assert File("out/a.txt").read_metadata() == File("out/b.txt").read_metadata()
    assert isinstance(dag["two_files"].product, MultiProduct)
    with pytest.raises(KeyError, match="No product 'c'; this task's products are: a, b"):
        dag["two_files"].product["c"]
