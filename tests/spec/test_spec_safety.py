"""A spec that would destroy its own definition, or that cannot be read as it stands, is refused
with the file and line to fix: products over the spec, env.yaml or imported modules; bytes that
are not UTF-8; YAML alias bombs; booleans given as numbers; env.yaml placeholders in a cycle."""

from __future__ import annotations

import os

import pytest
from spec_helpers import notebook, restored_imports, write

from nbpipe.spec import (
    DAGSpec,
    InvalidValueError,
    PlaceholderError,
    ProductError,
    YAMLSyntaxError,
)


@pytest.fixture(autouse=True)
def _restored_imports(tmp_path):
    with restored_imports(tmp_path):
        yield


def fns(path, name="f"):
    return write(
        path,
        f"from pathlib import Path\n\ndef {name}(product):\n    Path(product).write_text('x')\n",
    )


def refused(spec, step: str = "to_dag") -> ProductError:
    with pytest.raises(ProductError) as raised:
        loaded = DAGSpec(spec)
        if step == "to_dag":
            loaded.to_dag()
    return raised.value


# -- item 2: the files that define the pipeline are never products --------------------------------
@pytest.mark.parametrize(
    ("product", "what"),
    [("pipeline.yaml", "the spec file"), ("env.yaml", "the env file")],
)
def test_a_product_over_the_spec_or_its_env_is_refused_before_any_import(tmp_path, product, what):
    write(tmp_path / "env.yaml", "out: output\n")
    spec = write(
        tmp_path / "pipeline.yaml",
        f"tasks:\n  - source: no_such_module.f\n    product: {product}\n",
    )

    error = refused(spec, step="load")  # DAGSpec(...) alone: nothing imported yet

    assert (error.file, error.line, error.key, error.task) == (str(spec), 3, "product", "f")
    assert f"task 'f' has product {tmp_path / product}, which is {what}" in str(error)
    assert "write products elsewhere (e.g. output/)" in str(error)


@pytest.mark.parametrize(
    ("spec_text", "product", "what"),
    [
        (
            "on_finish: hooks_s1.done\ntasks:\n  - source: fns_s1.f\n    product: {product}\n",
            "hooks_s1.py",
            "the module of the on_finish hook 'hooks_s1.done'",
        ),
        (
            "tasks:\n  - source: fns_s1.f\n    on_render: hooks_s1.done\n    product: {product}\n",
            "hooks_s1.py",
            "the module of the on_render hook 'hooks_s1.done'",
        ),
        (
            "tasks:\n  - source: fns_s1.f\n    on_failure: {{dotted_path: hooks_s1.done}}\n"
            "    product: {product}\n",
            "hooks_s1.py",
            "the module of the on_failure hook 'hooks_s1.done'",
        ),
        (
            "executor: {{dotted_path: exec_s1.Mine}}\ntasks:\n  - source: fns_s1.f\n"
            "    product: {product}\n",
            "exec_s1.py",
            "the module of the executor 'exec_s1.Mine'",
        ),
        (
            "tasks:\n  - source: pkg_s1.sub.f\n    product: {product}\n",
            "pkg_s1/__init__.py",
            "the module that defines a task's function",
        ),
    ],
)
def test_a_product_over_an_imported_module_is_refused(tmp_path, spec_text, product, what):
    fns(tmp_path / "fns_s1.py")
    write(tmp_path / "hooks_s1.py", "def done():\n    pass\n")
    write(
        tmp_path / "exec_s1.py",
        "from nbpipe.executors import Serial\n\nclass Mine(Serial):\n    pass\n",
    )
    write(tmp_path / "pkg_s1" / "__init__.py", "")
    fns(tmp_path / "pkg_s1" / "sub.py")
    text = spec_text.format(product=product)
    spec = write(tmp_path / "pipeline.yaml", text)
    line = text.splitlines().index(f"    product: {product}") + 1

    error = refused(spec)

    assert (error.file, error.line) == (str(spec), line)
    assert f"has product {tmp_path / product}, which is {what}" in str(error)
    assert (tmp_path / "hooks_s1.py").read_text() == "def done():\n    pass\n"


def test_a_symlinked_folder_does_not_get_around_the_check(tmp_path):
    fns(tmp_path / "fns_s2.py")
    os.symlink(tmp_path, tmp_path / "alias")
    spec = write(tmp_path / "pipeline.yaml", "- source: fns_s2.f\n  product: alias/pipeline.yaml\n")

    error = refused(spec, step="load")

    assert error.line == 2 and "which is the spec file" in str(error)
    assert str(tmp_path / "alias" / "pipeline.yaml") in str(error)


@pytest.mark.parametrize(
    ("product", "what"),
    [
        (".", "the spec file"),
        ("lib", "the module that defines a task's function"),
        ("notebooks", "the source of task 'nb'"),
    ],
)
def test_a_folder_product_holding_what_defines_the_pipeline_is_refused(tmp_path, product, what):
    fns(tmp_path / "lib" / "fns_s3.py")
    notebook(tmp_path / "notebooks" / "nb.py")
    spec = write(
        tmp_path / "pipeline.yaml",
        "tasks:\n"
        "  - source: notebooks/nb.py\n"
        "    product: output/nb.ipynb\n"
        "  - source: lib.fns_s3.f\n"
        f"    product: {product}\n",
    )

    error = refused(spec)

    assert error.line == 5 and error.task == "f"
    assert f"has product {os.path.normpath(tmp_path / product)}, a folder that holds {what}" in str(
        error
    )


# -- item 6: bytes that are not UTF-8 -------------------------------------------------------------
@pytest.mark.parametrize("name", ["pipeline.yaml", "env.yaml"])
def test_a_byte_that_is_not_utf8_names_its_file_and_line(tmp_path, name):
    fns(tmp_path / "fns_s4.py")
    write(tmp_path / "pipeline.yaml", "tasks:\n  - source: fns_s4.f\n    product: '{{out}}'\n")
    write(tmp_path / "env.yaml", "out: out.txt\n")
    bad = tmp_path / name
    bad.write_bytes(bad.read_bytes() + b"# caf\xe9\n")
    line = bad.read_bytes().count(b"\n")

    with pytest.raises(YAMLSyntaxError) as raised:
        DAGSpec(tmp_path / "pipeline.yaml")

    error = raised.value
    assert (error.file, error.line) == (str(bad), line)
    assert "byte 0xe9 (column 6) is not UTF-8" in error.message
    assert "save the file as UTF-8" in error.message


def test_a_control_character_names_its_line(tmp_path):
    spec = write(tmp_path / "pipeline.yaml", "tasks:\n  - source: a.f\n    product: a\x07.txt\n")
    with pytest.raises(YAMLSyntaxError) as raised:
        DAGSpec(spec)
    assert raised.value.line == 3 and "#x0007" in raised.value.message


# -- YAML alias bombs ------------------------------------------------------------------------------
def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\ntasks: []\n"


@pytest.mark.timeout(60)  # a guard only: before the fix, this took minutes of CPU
def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    spec = write(tmp_path / "pipeline.yaml", billion_laughs())
    with pytest.raises(YAMLSyntaxError) as raised:
        DAGSpec(spec)
    error = raised.value
    assert error.file == str(spec) and error.line == 6  # a5 is the first past the limit
    assert "YAML aliases (*name) expand into more than 100000 values" in error.message


def test_ordinary_aliases_and_merge_keys_still_work(tmp_path):
    fns(tmp_path / "fns_s5.py")
    spec = write(
        tmp_path / "pipeline.yaml",
        """
        tasks:
          - &first
            source: fns_s5.f
            params: {n: 1, tags: [a, b]}
            product: out/1.txt
          - <<: *first
            name: g
            product: out/2.txt
        """,
    )
    dag = DAGSpec(spec).to_dag()
    assert dag["g"].params == dag["f"].params == {"n": 1, "tags": ["a", "b"]}


# -- booleans are not numbers ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "line"),
    [("processes: true", 3), ("processes: yes", 3), ("start_method: false", 3)],
)
def test_a_boolean_executor_option_that_takes_no_boolean_is_refused(tmp_path, option, line):
    spec = write(
        tmp_path / "pipeline.yaml",
        f"executor:\n  dotted_path: nbpipe.executors.Parallel\n  {option}\ntasks: []\n",
    )
    with pytest.raises(InvalidValueError) as raised:
        DAGSpec(spec)
    error = raised.value
    key = option.split(":")[0]
    assert (error.file, error.line, error.key) == (str(spec), line, f"executor.{key}")
    assert f"executor.{key} must be" in error.message and "not a boolean" in error.message


# -- env.yaml placeholders that refer to each other -----------------------------------------------
def test_env_values_may_use_other_env_values(tmp_path):
    fns(tmp_path / "fns_s6.py")
    write(tmp_path / "env.yaml", "data: '{{base}}/data'\nbase: '{{here}}/files'\n")
    spec = write(tmp_path / "pipeline.yaml", "- {source: fns_s6.f, product: '{{data}}/f.txt'}\n")
    dag = DAGSpec(spec).to_dag()
    assert str(dag["f"].product) == str(tmp_path / "files" / "data" / "f.txt")


def test_an_env_placeholder_cycle_is_named_with_its_lines(tmp_path):
    env = write(tmp_path / "env.yaml", "a: '{{b}}'\nc: 1\nb: 'x-{{a}}'\n")
    spec = write(tmp_path / "pipeline.yaml", "- {source: fns.f, product: '{{a}}.txt'}\n")
    with pytest.raises(PlaceholderError) as raised:
        DAGSpec(spec)
    error = raised.value
    assert (error.file, error.line, error.key) == (str(env), 1, "a")
    assert (
        "placeholders in env.yaml refer to each other in a cycle: a (line 1) -> b (line 3) -> a"
        in (error.message)
    )
