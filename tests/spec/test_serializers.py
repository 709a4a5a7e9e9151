"""Serializers: ``serializer``/``unserializer`` in pipeline.yaml and the ``nbpipe.io``
decorators, as Ploomber's serialization guide uses them. Real pipelines; the function returns
its result, the serializer writes it in the worker."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
from spec_helpers import restored_imports, write

from nbpipe import DAG
from nbpipe.engine.events import TaskStatus
from nbpipe.exceptions import DAGBuildError, DAGRenderError
from nbpipe.io import serializer, serializer_pickle, unserializer, unserializer_pickle
from nbpipe.products import File
from nbpipe.spec import DAGSpec, DottedPathError, InvalidValueError
from nbpipe.tasks import PythonCallable

HAS_PANDAS = importlib.util.find_spec("pandas") is not None


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


# The example of Ploomber's serialization guide (guides/serialization), its tasks.py named
# guide_tasks.py: Dask's workers outlive a test and keep the modules they imported.
TASKS = """
def first():
    return dict(a=1, b=2)


def second(upstream):
    first = upstream['first']
    another = dict(a=first['b'] + 1, b=first['a'] + 1)
    final = dict(a=100, b=200)
    return dict(another=another, final=final)
"""

CUSTOM = """
import json
from pathlib import Path

from ploomber.io import serializer, unserializer


def write_json(obj, product):
    Path(product).write_text(json.dumps(obj))


def read_json(product):
    return json.loads(Path(product).read_text())


@serializer({'.json': write_json}, fallback=True)
def my_fallback_serializer(obj, product):
    pass


@unserializer({'.json': read_json}, fallback=True)
def my_fallback_unserializer(product):
    pass


@serializer(fallback=True, defaults=['.json'])
def my_defaults_serializer(obj, product):
    pass


@unserializer(fallback=True, defaults=['.json'])
def my_defaults_unserializer(product):
    pass
"""

GUIDE_TASKS = """
tasks:
  - source: guide_tasks.first
    product: output/one_dict
  - source: guide_tasks.second
    product:
        another: output/another_dict{ext}
        final: output/final_dict{ext}
"""


def project(tmp_path: Path, top: str, ext: str = "") -> Path:
    write(tmp_path / "guide_tasks.py", TASKS)
    # the guide imports from ploomber.io: give this project a `ploomber` that is nbpipe's
    write(tmp_path / "ploomber/__init__.py", "")
    write(tmp_path / "ploomber/io.py", "from nbpipe.io import *  # noqa: F403\n")
    write(tmp_path / "custom.py", CUSTOM)
    return write(tmp_path / "pipeline.yaml", top + GUIDE_TASKS.format(ext=ext))


def test_built_in_pickle_serialization(tmp_path, executor):
    spec = project(
        tmp_path,
        "serializer: ploomber.io.serializer_pickle\nunserializer: ploomber.io.unserializer_pickle\n",
    )
    dag = DAGSpec(spec).to_dag()
    dag.executor = executor

    report = dag.build()

    assert report["second"].status is TaskStatus.EXECUTED
    load = lambda name: pickle.loads((tmp_path / "output" / name).read_bytes())  # noqa: E731
    assert load("one_dict") == {"a": 1, "b": 2}
    assert load("another_dict") == {"a": 3, "b": 2}
    assert load("final_dict") == {"a": 100, "b": 200}
    assert not list((tmp_path / "output").glob(".nbpipe-*"))
    assert DAGSpec(spec).to_dag().build()["second"].status is TaskStatus.SKIPPED


@pytest.mark.parametrize("prefix", ["my_fallback", "my_defaults"])
def test_json_by_extension_and_pickle_fallback(tmp_path, prefix):
    spec = project(
        tmp_path,
        f"serializer: custom.{prefix}_serializer\nunserializer: custom.{prefix}_unserializer\n",
        ext=".json",
    )

    DAGSpec(spec).to_dag().build()

    out = tmp_path / "output"
    assert pickle.loads((out / "one_dict").read_bytes()) == {"a": 1, "b": 2}
    assert json.loads((out / "another_dict.json").read_text()) == {"a": 3, "b": 2}
    assert json.loads((out / "final_dict.json").read_text()) == {"a": 100, "b": 200}


def test_task_serializer_overrides_the_spec_default_which_applies_to_every_function(tmp_path):
    write(
        tmp_path / "tasks.py",
        """
        from pathlib import Path


        def numbers():
            return [1, 2, 3]


        def total(upstream):
            return sum(upstream['numbers'])


        def by_hand(product):
            Path(product).write_text('by hand')
        """,
    )
    write(tmp_path / "io_helpers.py", IO_HELPERS)
    tasks = """
        serializer: io_helpers.text
        unserializer: io_helpers.read
        tasks:
          - source: tasks.numbers
            product: out/numbers.json
          - source: tasks.total
            product: out/total.pkl
            serializer: {dotted_path: ploomber.io.serializer_pickle}
        """
    spec = write(tmp_path / "pipeline.yaml", tasks)
    dag = DAGSpec(spec).to_dag()
    assert dag.serializer is dag["numbers"].serializer, "the spec's default, on the DAG too"

    dag.build()

    assert json.loads((tmp_path / "out/numbers.json").read_text()) == [1, 2, 3]
    assert pickle.loads((tmp_path / "out/total.pkl").read_bytes()) == 6
    spec.write_text(spec.read_text() + "  - source: tasks.by_hand\n    product: out/by_hand.txt\n")
    with pytest.raises(DAGRenderError) as raised:
        DAGSpec(spec).to_dag().build()
    assert dict(raised.value.problems)["by_hand"] == (
        "function by_hand() has a 'product' parameter, but its task has a serializer: the "
        "function must return its result instead (the serializer writes it to the product)"
    )


IO_HELPERS = """
from nbpipe.io import serializer, unserializer


@serializer(defaults=['.txt', '.json'])
def text(obj, product):
    raise AssertionError('dispatched by extension')


@unserializer(defaults=['.json'])
def read(product):
    raise AssertionError('dispatched by extension')
"""


def test_function_tasks_get_unserialized_upstream_values(tmp_path):
    write(
        tmp_path / "tasks.py",
        """
        from pathlib import Path


        def numbers():
            return [1, 2, 3]


        def total(upstream):
            return str(sum(upstream['numbers']))


        def by_hand(product, upstream):
            Path(product).write_text(Path(upstream['numbers']).read_text() + '!')
        """,
    )
    write(tmp_path / "io_helpers.py", IO_HELPERS)
    spec = write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - source: tasks.numbers
            product: out/numbers.json
            serializer: io_helpers.text
          - source: tasks.total
            product: out/total.txt
            serializer: io_helpers.text
            unserializer: io_helpers.read
          - source: tasks.by_hand
            product: out/by_hand.txt
        """,
    )

    DAGSpec(spec).to_dag().build()

    assert json.loads((tmp_path / "out/numbers.json").read_text()) == [1, 2, 3]
    assert (tmp_path / "out/total.txt").read_text() == "6"
    assert (tmp_path / "out/by_hand.txt").read_text() == "[1, 2, 3]!", "paths without one"


def test_serializer_errors_in_the_spec(tmp_path):
    write(tmp_path / "guide_tasks.py", TASKS)
    write(tmp_path / "nb.py", '# %% tags=["parameters"]\nproduct = None\n')
    with pytest.raises(DottedPathError, match=r"pipeline.yaml:1: serializer 'nope.write'"):
        DAGSpec(
            write(
                tmp_path / "pipeline.yaml", "serializer: nope.write\n" + GUIDE_TASKS.format(ext="")
            )
        ).to_dag()
    with pytest.raises(
        InvalidValueError,
        match=r"pipeline.yaml:4: serializer applies to function tasks \(PythonCallable\) only; "
        r"tasks\[0\] \(source 'nb.py'\) is a NotebookRunner",
    ):
        DAGSpec(
            write(
                tmp_path / "pipeline.yaml",
                "tasks:\n  - source: nb.py\n    product: nb.ipynb\n"
                "    serializer: nbpipe.io.serializer_pickle\n",
            )
        )


def test_function_must_return_a_value_and_every_product_key(tmp_path):
    write(
        tmp_path / "tasks.py",
        """
        def nothing():
            print('forgot to return')


        def half():
            return {'a': 1}
        """,
    )
    spec = write(
        tmp_path / "pipeline.yaml",
        """
        serializer: nbpipe.io.serializer_pickle
        tasks:
          - source: tasks.nothing
            product: out/nothing.pkl
          - source: tasks.half
            product: {a: out/a.pkl, b: out/b.pkl}
        """,
    )

    with pytest.raises(DAGBuildError) as raised:
        DAGSpec(spec).to_dag().build()

    nothing, half = raised.value.failures["nothing"], raised.value.failures["half"]
    assert nothing.type == "ValueError"
    assert "nothing() returned None, but task 'nothing' has a serializer" in nothing.message
    assert half.type == "ValueError"
    assert "missing keys: ['b']" in half.message
    assert not (tmp_path / "out/a.pkl").exists(), "nothing half-written is kept"


# -- the decorators (Python API) ------------------------------------------------------------------
def test_python_api_serializer_and_dag_default(tmp_path, monkeypatch):
    import serializer_tasks

    monkeypatch.chdir(tmp_path)
    dag = DAG()
    dag.serializer = serializer_tasks.to_text
    dag.unserializer = serializer_tasks.from_text
    one = PythonCallable(serializer_tasks.one, File("one.txt"), dag)
    two = PythonCallable(serializer_tasks.plus_one, File("two.txt"), dag, name="two")
    one >> two

    dag.build()

    assert (tmp_path / "two.txt").read_text() == "2"
    assert two.serializer is serializer_tasks.to_text


def test_unpack_writes_a_folder_and_reads_it_back(tmp_path, executor, monkeypatch):
    import serializer_tasks

    monkeypatch.chdir(tmp_path)
    dag = DAG(executor=executor)
    parts = PythonCallable(
        serializer_tasks.parts,
        File("parts"),
        dag,
        serializer=serializer_tasks.unpacked,
    )
    joined = PythonCallable(
        serializer_tasks.joined,
        File("joined.json"),
        dag,
        serializer=serializer_tasks.as_json,
        unserializer=serializer_tasks.read_unpacked,
    )
    parts >> joined

    dag.build()

    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["a.json", "b.txt"]
    assert json.loads((tmp_path / "joined.json").read_text()) == {"a.json": [1], "b.txt": "two"}


def test_decorator_arguments_are_checked_as_ploomber_does():
    def two(obj, product):
        pass

    def one(product):
        pass

    with pytest.raises(ValueError, match=r"unexpected values in 'defaults': \['.pkl'\]"):
        serializer(defaults=[".pkl"])(two)
    with pytest.raises(ValueError, match="must not overlap"):
        serializer({".json": two}, defaults=[".json"])(two)
    with pytest.raises(ValueError, match="Invalid fallback argument 'yes'"):
        unserializer(fallback="yes")(one)
    with pytest.raises(ValueError, match=r"keys are extensions starting with a dot"):
        serializer({"json": two})(two)
    with pytest.raises(TypeError, match="to take 2 arguments, but it takes 1"):
        serializer()(one)
    with pytest.raises(TypeError, match="to take 1 argument, but it takes 2"):
        unserializer()(two)
    with pytest.raises(TypeError, match="expected a list"):
        serializer(defaults=".json")(two)


def test_pickle_and_default_formats_round_trip(tmp_path):
    for name, value in [("x.pkl", {"a": {1, 2}}), ("x.pickle", [1]), ("noext", (1, 2))]:
        serializer_pickle(value, File(tmp_path / name))
        assert unserializer_pickle(File(tmp_path / name)) == value

    @serializer(defaults=[".txt", ".json"])
    def write_any(obj, product):
        raise AssertionError

    with pytest.raises(TypeError, match=r"to .txt with the default serializer: data must be str"):
        write_any(3, tmp_path / "three.txt")
    with pytest.raises(TypeError, match=r"to .json with the default serializer"):
        write_any({1, 2}, tmp_path / "set.json")
    multi = {"t": File(tmp_path / "t.txt"), "j": File(tmp_path / "j.json")}
    write_any({"t": "text", "j": {"k": [1]}}, multi)
    read = unserializer(defaults=[".txt", ".json"])(lambda product: None)
    assert read(multi) == {"t": "text", "j": {"k": [1]}}


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed")
def test_csv_and_parquet_defaults_with_pandas(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2, 3]})

    @serializer(defaults=[".csv"])
    def write(obj, product):
        raise AssertionError

    @unserializer(defaults=[".csv"])
    def read(product):
        raise AssertionError

    write(frame, tmp_path / "f.csv")
    assert read(tmp_path / "f.csv")["x"].tolist() == [1, 2, 3]
    with pytest.raises(
        TypeError, match=r"expected a pandas\.DataFrame but got an object of type list"
    ):
        write([1], tmp_path / "g.csv")
    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        write_p = serializer(defaults=[".parquet"])(lambda obj, product: None)
        read_p = unserializer(defaults=[".parquet"])(lambda product: None)
        write_p(frame, tmp_path / "f.parquet")
        assert read_p(tmp_path / "f.parquet")["x"].tolist() == [1, 2, 3]


@pytest.mark.skipif(HAS_PANDAS, reason="pandas is installed")
def test_csv_default_unserializer_without_pandas_says_so(tmp_path):
    (tmp_path / "f.csv").write_text("x\n1\n")
    read = unserializer(defaults=[".csv"])(lambda product: None)
    with pytest.raises(ModuleNotFoundError, match=r"the .csv default unserializer: pandas is not"):
        read(tmp_path / "f.csv")
