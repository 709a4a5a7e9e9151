"""Every spec error names the file, the line and the key to fix, and says what is wrong."""

from __future__ import annotations

import pickle

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe.exceptions import NbpipeError
from nbpipe.spec import (
    CycleError,
    DAGSpec,
    DottedPathError,
    DuplicateTaskError,
    GridError,
    InvalidValueError,
    MissingKeyError,
    MissingSourceError,
    PlaceholderError,
    ProductError,
    SpecError,
    SpecNotFoundError,
    UnknownKeyError,
    UnsupportedKeyError,
    UpstreamError,
    YAMLSyntaxError,
)


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


def load(tmp_path, text: str, **files: str):
    """Writes the spec (and ``files``, by name) and loads it all the way to a DAG."""
    for name, content in files.items():
        write(tmp_path / name.replace("__", "."), content)
    path = write(tmp_path / "pipeline.yaml", text)
    return DAGSpec(path).to_dag()


def raises(tmp_path, error: type[SpecError], text: str, **files: str) -> SpecError:
    with pytest.raises(error) as raised:
        load(tmp_path, text, **files)
    return raised.value


FNS = "from pathlib import Path\n\ndef f(product):\n    Path(product).write_text('f')\n"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    error = raises(
        tmp_path,
        YAMLSyntaxError,
        """
        tasks:
          - source: a.py
            product: [unclosed
          - source: b.py
        """,
    )
    assert error.file == str(tmp_path / "pipeline.yaml")
    assert error.line == 4
    assert str(error).startswith(f"{tmp_path / 'pipeline.yaml'}:4: invalid YAML")


def test_duplicate_yaml_key(tmp_path):
    error = raises(tmp_path, InvalidValueError, "tasks: []\nexecutor: serial\ntasks: []\n")
    assert (error.line, error.key) == (3, "tasks")
    assert "appears twice in this mapping (first on line 1)" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("excutor: parallel\ntasks: []\n", 1, "excutor", "did you mean 'executor'"),
        (
            "tasks:\n  - source: fns__f\n    prodcut: out.txt\n",
            3,
            "prodcut",
            "unknown key 'prodcut' in task tasks[0] (did you mean 'product'?)",
        ),
        (
            "meta:\n  extract_upstreams: false\ntasks: []\n",
            2,
            "meta.extract_upstreams",
            "did you mean 'extract_upstream'",
        ),
    ],
)
def test_unknown_key_suggests_the_right_one(tmp_path, text, line, key, message):
    error = raises(tmp_path, UnknownKeyError, text.replace("fns__f", "fns.f"), fns__py=FNS)
    assert (error.line, error.key) == (line, key)
    assert message in str(error)
    assert f"pipeline.yaml:{line}: " in str(error)


def test_unsupported_ploomber_key(tmp_path):
    error = raises(tmp_path, UnsupportedKeyError, "clients: {}\ntasks: []\n")
    assert error.line == 1 and "clients (a Ploomber feature) is not supported" in str(error)


def test_missing_source_names_the_path(tmp_path):
    notebook(tmp_path / "clean.py")
    error = raises(
        tmp_path,
        MissingSourceError,
        """
        tasks:
          - source: clean.py
            product: out/clean.ipynb
          - source: notebooks/claen.py
            product: out/x.ipynb
        """,
    )
    assert error.line == 4 and error.key == "source"
    assert str(tmp_path / "notebooks" / "claen.py") in str(error)
    assert "does not exist" in str(error)


def test_missing_source_suggests_a_nearby_file(tmp_path):
    notebook(tmp_path / "clean.py")
    error = raises(tmp_path, MissingSourceError, "- {source: claen.py, product: x.ipynb}\n")
    assert "did you mean 'clean.py'" in str(error)


def test_task_without_source_or_product(tmp_path):
    error = raises(tmp_path, MissingKeyError, "tasks:\n  - product: out.txt\n")
    assert (error.line, error.key) == (2, "tasks[0].source")
    error = raises(tmp_path, MissingKeyError, "tasks:\n  - source: fns.f\n", fns__py=FNS)
    assert (error.line, error.key) == (2, "tasks[0].product")


def test_unknown_upstream_lists_the_existing_tasks(tmp_path):
    notebook(tmp_path / "load.py")
    notebook(tmp_path / "clean.py", upstream="['lod']")
    error = raises(
        tmp_path,
        UpstreamError,
        """
        tasks:
          - source: load.py
            product: out/load.ipynb
          - source: clean.py
            product: out/clean.ipynb
        """,
    )
    assert error.file == str(tmp_path / "clean.py")  # where the declaration is
    assert error.line == 2 and error.task == "clean"
    assert "declares upstream 'lod', which is not a task" in str(error)
    assert "did you mean 'load'" in str(error) and "tasks: load, clean" in str(error)


def test_unknown_upstream_in_a_function(tmp_path):
    fns = "def g(product, upstream):\n    return upstream['nope']\n"
    error = raises(tmp_path, UpstreamError, "- {source: fns.g, product: g.txt}\n", fns__py=fns)
    assert (error.file, error.line) == (str(tmp_path / "fns.py"), 2)
    assert "'nope', which is not a task" in str(error)


def test_unreadable_upstream_declaration(tmp_path):
    notebook(tmp_path / "nb.py", upstream="make_list()")
    error = raises(tmp_path, UpstreamError, "- {source: nb.py, product: x.ipynb}\n")
    assert (error.file, error.line) == (str(tmp_path / "nb.py"), 2)
    assert "must be a literal" in str(error)


def test_upstream_key_needs_extraction_off(tmp_path):
    error = raises(
        tmp_path,
        InvalidValueError,
        "- {source: fns.f, product: f.txt, upstream: [x]}\n",
        fns__py=FNS,
    )
    assert error.key == "tasks[0].upstream"
    assert "meta.extract_upstream: false" in str(error)


def test_cycle_names_the_cycle(tmp_path):
    notebook(tmp_path / "a.py", upstream="['c']")
    notebook(tmp_path / "b.py", upstream="['a']")
    notebook(tmp_path / "c.py", upstream="['b']")
    error = raises(
        tmp_path,
        CycleError,
        """
        tasks:
          - {source: a.py, product: a.ipynb}
          - {source: b.py, product: b.ipynb}
          - {source: c.py, product: c.ipynb}
        """,
    )
    message = str(error)
    assert "cycle" in message
    cycle = message.split("cycle: ")[1].split(" (")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    assert error.file == str(tmp_path / "pipeline.yaml") and error.line in (2, 3, 4)


def test_two_tasks_writing_the_same_product(tmp_path):
    notebook(tmp_path / "a.py")
    notebook(tmp_path / "b.py")
    error = raises(
        tmp_path,
        ProductError,
        """
        tasks:
          - source: a.py
            product: out/same.ipynb
          - source: b.py
            product: {nb: out/same.ipynb}
        """,
    )
    assert error.line == 5 and error.task == "b"
    assert "tasks 'a' (line 2) and 'b' both write" in str(error)
    assert str(tmp_path / "out" / "same.ipynb") in str(error)


@pytest.mark.parametrize("own", [True, False])
def test_product_overwriting_a_source_is_refused(tmp_path, own):
    write(
        tmp_path / "nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    notebook(tmp_path / "other.py")
    text = (
        "- {source: nb.ipynb, product: nb.ipynb}\n"
        if own
        else "- {source: nb.ipynb, product: output/nb.ipynb}\n- {source: other.py, product: nb.ipynb}\n"
    )
    error = raises(tmp_path, ProductError, text)
    assert "a build never overwrites a notebook" in str(error)
    assert ("its own source" if own else "the source of task 'nb'") in str(error)
    assert error.line == (1 if own else 2)


def test_product_overwriting_a_function_module_is_refused(tmp_path):
    error = raises(tmp_path, ProductError, "- {source: fns.f, product: fns.py}\n", fns__py=FNS)
    assert "the module that defines a task's function" in str(error)


def test_duplicate_task_names(tmp_path):
    notebook(tmp_path / "a.py")
    notebook(tmp_path / "sub" / "a.py")
    error = raises(
        tmp_path,
        DuplicateTaskError,
        "- {source: a.py, product: 1.ipynb}\n- {source: sub/a.py, product: 2.ipynb}\n",
    )
    assert error.line == 2 and "two tasks are named 'a' (the other is on line 1)" in str(error)


@pytest.mark.parametrize(
    ("grid", "line", "message"),
    [
        (
            "grid: {a: 'grids::values'}",
            4,
            "grid parameter 'a' takes its values from a function (Ploomber's",
        ),
        ("grid: {a: {dotted_path: grids.values}}", 4, "takes its values from a function"),
        ("grid: []", 4, "grid must be a mapping"),
        ("grid: {a: []}", 4, "non-empty list"),
        ("grid: [{a: [1]}, 3]", 4, "each grid entry must be a non-empty mapping"),
        ("grid: {a: [1], 2: [3]}", 4, "grid parameter 2 is not a valid parameter name"),
        (
            "grid: {a: [1, 2], b: [3]}\n    name: t-[[a]]-[[c]]",
            5,
            "placeholder [[c]] in tasks[0].name is not a grid parameter",
        ),
        (
            "grid: {a: [1, 2], b: [3, 4]}\n    name: t-[[a]]",
            5,
            "gives the same task name 't-1' to grid combinations 0 and 1",
        ),
        ("grid: {p: [1]}", 4, "'p' is both in params and in the grid"),
        ("name: t-[[a]]", 2, "uses [[placeholders]] but has no 'grid'"),
    ],
)
def test_bad_grid(tmp_path, grid, line, message):
    fns = "def f(product, **params):\n    pass\n"
    text = f"tasks:\n  - source: fns.f\n    product: out/f-[[a]].txt\n    {grid}\n    params: {{p: 0}}\n"
    if "[[a]]" not in grid and "{a:" not in grid and "[{a:" not in grid:
        text = text.replace("f-[[a]]", "f")
    error = raises(tmp_path, GridError, text, fns__py=fns)
    assert message in str(error)
    assert f"pipeline.yaml:{line}:" in str(error) or error.line == line


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nothere.f", "no module named 'nothere'"),
        ("fns.fn", "module 'fns' ({fns}) has no attribute 'fn' (did you mean 'f'?)"),
        (
            "broken.f",
            "importing module 'broken' failed with ZeroDivisionError: division by zero (at {broken}:1)",
        ),
        ("needs.f", "importing module 'needs' failed: No module named 'not_installed_anywhere'"),
    ],
)
def test_dotted_path_that_does_not_import(tmp_path, source, message):
    error = raises(
        tmp_path,
        DottedPathError,
        f"- source: {source}\n  product: out.txt\n",
        fns__py=FNS,
        broken__py="x = 1 / 0\n",
        needs__py="import not_installed_anywhere\n",
    )
    assert message.format(fns=tmp_path / "fns.py", broken=tmp_path / "broken.py") in str(error)
    assert (error.line, error.key) == (1, "source")


def test_hook_dotted_path_errors(tmp_path):
    error = raises(
        tmp_path,
        DottedPathError,
        "on_finish: hooks.chek\ntasks:\n  - {source: fns.f, product: f.txt}\n",
        fns__py=FNS,
        hooks__py="def check(dag):\n    pass\n",
    )
    assert error.line == 1 and "no attribute 'chek' (did you mean 'check'?)" in str(error)
    error = raises(
        tmp_path,
        InvalidValueError,
        "tasks:\n  - source: fns.f\n    product: f.txt\n    on_finish: {dotted_path: hooks.check, treshold: 3}\n",
        fns__py=FNS,
        hooks__py="def check(product, threshold):\n    pass\n",
    )
    assert error.line == 4 and "has no parameter 'treshold' (did you mean 'threshold'?)" in str(
        error
    )


def test_unknown_placeholder(tmp_path):
    write(tmp_path / "env.yaml", "n_rows: 3\n")
    error = raises(
        tmp_path,
        PlaceholderError,
        "tasks:\n  - source: fns.f\n    product: out.txt\n    params: {n: '{{n_row}}'}\n",
        fns__py=FNS,
    )
    assert (error.line, error.key) == (4, "tasks[0].params.n")
    assert "unknown placeholder {{n_row}} in tasks[0].params.n (did you mean 'n_rows'?)" in str(
        error
    )


def test_bad_executor(tmp_path):
    error = raises(tmp_path, InvalidValueError, "executor: paralel\ntasks: []\n")
    assert error.line == 1 and "did you mean 'parallel'" in str(error)
    error = raises(
        tmp_path,
        InvalidValueError,
        "executor:\n  dotted_path: nbpipe.executors.Parallel\n  proceses: 2\ntasks: []\n",
    )
    assert "has no parameter 'proceses' (did you mean 'processes'?)" in str(error)


def test_spec_not_found(tmp_path):
    with pytest.raises(SpecNotFoundError, match="does not exist"):
        DAGSpec(tmp_path / "missing.yaml")


def test_errors_are_nbpipe_errors_and_pickle(tmp_path):
    error = raises(tmp_path, UnknownKeyError, "excutor: serial\ntasks: []\n")
    assert isinstance(error, NbpipeError)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.to_dict() == error.to_dict()
    assert error.to_dict()["type"] == "UnknownKeyError"
