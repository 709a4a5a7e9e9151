"""``nbpipe run INPUT OUTPUT``: papermill's command line, through nbpipe's engine.

The executed notebooks are compared with what the ``papermill`` command writes for the same
command (each command runs in a copy of the same folder, so paths match): every cell and the
notebook's metadata, timings and cell ids aside. Real kernels, real papermill.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from cli_helpers import json_lines, nbpipe, write

from nbpipe.cli import main
from nbpipe.cli.parser import build_parser
from nbpipe.cli.run import parameters, resolve_type

PAPERMILL = [sys.executable, "-m", "papermill"]

#: What differs between two runs of the same notebook: when things ran, and random ids.
TIMINGS = ("start_time", "end_time", "duration")


def make_notebook(path: Path, cells: list[tuple[str, str, list[str]]], **metadata) -> Path:
    """An .ipynb of (cell_type, source, tags) cells, for the Python 3 kernel."""
    notebook = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        notebook.cells.append(make(source, metadata={"tags": tags} if tags else {}))
    notebook.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata.update(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def comparable(path: Path) -> dict:
    """The executed notebook without what differs from run to run (timings, cell ids)."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        cell.pop("id", None)
        cell["metadata"].pop("execution", None)
        for key in TIMINGS:
            cell["metadata"].get("papermill", {}).pop(key, None)
    for key in TIMINGS:
        notebook["metadata"]["papermill"].pop(key, None)
    return notebook


def twin_folders(tmp_path: Path, source: Path) -> tuple[Path, Path]:
    """Two copies of ``source``: one for papermill, one for nbpipe."""
    return (
        Path(shutil.copytree(source, tmp_path / "papermill")),
        Path(shutil.copytree(source, tmp_path / "nbpipe")),
    )


def papermill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PAPERMILL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


PARAMETERS_CELL = """\
alpha = 0.5
ratio = 1
flag = False
nothing = "something"
label = "default"
count = 0
items = []
"""
BODY = """\
import os
print(repr(alpha), repr(ratio), repr(flag), repr(nothing), repr(label), repr(count), items)
print(os.path.basename(os.getcwd()))
print(sorted(k for k in globals() if k.startswith("PAPERMILL")))
"""


def test_the_same_notebook_as_papermill(tmp_path):
    source = tmp_path / "source"
    make_notebook(
        source / "in.ipynb",
        [
            ("markdown", "# A report", []),
            ("code", PARAMETERS_CELL, ["parameters"]),
            ("code", BODY, ["body"]),
            ("code", "1 + 1", []),
        ],
    )
    write(source / "params.yaml", "items: [1, two]\ncount: 5\n")
    (source / "data").mkdir()
    command = [
        "in.ipynb",
        "out.ipynb",
        "-p", "alpha", "0.1",
        "-p", "ratio", "3",
        "-p", "ratio", "4",  # repeated: the last one wins
        "-p", "flag", "True",
        "-p", "nothing", "None",
        "-r", "label", "42",  # raw: text
        "-y", "count: 2",
        "-p", "count", "7",  # -p comes after -y, whatever the order here
        "-f", "params.yaml",
        "-b", base64.b64encode(b"extra: 1").decode(),
        "--inject-paths",
        "-k", "python3",
        "--cwd", "data",
        "--report-mode",
        "--execution-timeout", "120",
        "--start-timeout", "120",
        "--no-request-save-on-cell-execute",
        "--no-progress-bar",
    ]  # fmt: skip
    for_papermill, for_nbpipe = twin_folders(tmp_path, source)

    expected = papermill(*command, cwd=for_papermill)
    result = nbpipe("run", *command, cwd=for_nbpipe)

    assert expected.returncode == 0, expected.stderr
    assert result.returncode == 0, result.stderr
    executed = comparable(for_nbpipe / "out.ipynb")
    assert executed == comparable(for_papermill / "out.ipynb")
    injected = executed["cells"][2]
    assert injected["metadata"]["tags"] == ["injected-parameters"]
    assert "ratio = 4\n" in injected["source"] and 'label = "42"\n' in injected["source"]
    assert executed["metadata"]["papermill"]["parameters"]["count"] == 7
    assert "0.1 4 True None '42' 7 [1, 'two']" in "".join(
        executed["cells"][3]["outputs"][0]["text"]
    )
    assert not (for_nbpipe / ".out.ipynb.metadata").exists()  # no build record
    assert "Traceback" not in result.stderr


def test_a_percent_script_without_parameters_cell_and_an_html_report(tmp_path):
    """A percent script runs as papermill runs the notebook jupytext makes of it; without a
    parameters cell the parameters go at the top, as papermill puts them."""
    import jupytext

    source = tmp_path / "source"
    write(source / "in.py", "# %% [markdown]\n# Text\n\n# %%\nprint(x * 2)\n")
    jupytext.write(jupytext.read(source / "in.py"), source / "in.ipynb")
    for_papermill, for_nbpipe = twin_folders(tmp_path, source)

    options = ["-p", "x", "21", "-k", "python3", "-l", "python"]  # the script names neither

    expected = papermill("in.ipynb", "out.ipynb", *options, cwd=for_papermill)
    result = nbpipe("run", "in.py", "out.ipynb", "out.html", *options, cwd=for_nbpipe)

    assert expected.returncode == 0, expected.stderr
    assert result.returncode == 0, result.stderr
    executed = comparable(for_nbpipe / "out.ipynb")
    assert executed["metadata"]["papermill"].pop("input_path") == "in.py"
    reference = comparable(for_papermill / "out.ipynb")
    assert reference["metadata"]["papermill"].pop("input_path") == "in.ipynb"
    assert executed["cells"] == reference["cells"]
    assert executed["metadata"]["papermill"] == reference["metadata"]["papermill"]
    assert executed["cells"][0]["metadata"]["tags"] == ["injected-parameters"]
    assert "42" in (for_nbpipe / "out.html").read_text()


def test_a_failing_notebook_as_papermill_leaves_it(tmp_path):
    """papermill writes the failed notebook (with its error banner) to OUTPUT; nbpipe keeps
    OUTPUT as it was and writes the same notebook beside it as out.failed.ipynb."""
    source = tmp_path / "source"
    make_notebook(
        source / "in.ipynb",
        [("code", "n = 1", ["parameters"]), ("code", "1 / n", []), ("code", "print('after')", [])],
    )
    for_papermill, for_nbpipe = twin_folders(tmp_path, source)

    expected = papermill("in.ipynb", "out.ipynb", "-p", "n", "0", cwd=for_papermill)
    result = nbpipe("run", "in.ipynb", "out.ipynb", "-p", "n", "0", cwd=for_nbpipe)

    assert expected.returncode == 1
    assert result.returncode == 1
    assert (
        "ZeroDivisionError" in result.stderr
        and "Traceback" not in result.stderr.split("--- task")[0]
    )
    assert not (for_nbpipe / "out.ipynb").exists()
    failed = comparable(for_nbpipe / "out.failed.ipynb")
    assert failed == comparable(for_papermill / "out.ipynb")


def test_a_three_by_three_grid_builds_nine_notebooks(tmp_path):
    make_notebook(
        tmp_path / "in.ipynb",
        [("code", "a = 0\nb = 'none'", ["parameters"]), ("code", "print(a * 10, b)", [])],
    )

    result = nbpipe(
        "run", "in.ipynb", "out/run-{a}-{b}.ipynb",
        "--grid", "a", "1", "2", "3", "--grid", "b", "x", "y", "z",
        "-p", "unused", "1",
        "--processes", "2", "--json",
        cwd=tmp_path,
        timeout=600,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    header, *events, summary = json_lines(result.stdout)
    assert header["command"] == "run"
    assert header["entry_point"] == str(tmp_path / "in.ipynb")
    started = events[0]
    assert started["event"] == "build_started"
    names = [f"in[a={a},b={b}]" for a in (1, 2, 3) for b in "xyz"]
    assert started["tasks"] == names and started["to_run"] == names
    finished = [e["task"] for e in events if e["event"] == "task_finished"]
    assert sorted(finished) == sorted(names)
    assert events[-1]["event"] == "build_finished" and events[-1]["outcome"] == "success"
    assert summary["event"] == "summary" and summary["exit_code"] == 0
    for a in (1, 2, 3):
        for b in "xyz":
            notebook = json.loads((tmp_path / f"out/run-{a}-{b}.ipynb").read_text())
            assert notebook["metadata"]["papermill"]["parameters"] == {"unused": 1, "a": a, "b": b}
            assert notebook["metadata"]["papermill"]["output_path"] == f"out/run-{a}-{b}.ipynb"
            assert "".join(notebook["cells"][-1]["outputs"][0]["text"]) == f"{a * 10} {b}\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"run-{a}-{b}.ipynb" for a in (1, 2, 3) for b in "xyz"
    )  # nothing else: no build records, no working files


def test_grid_file(tmp_path, monkeypatch):
    """--grid-file is a pipeline's grid: (a mapping of lists, or a list of them); --grid
    multiplies it. Checked on the plan, without running kernels."""
    from nbpipe.cli.run import grid_combinations, plan_runs

    write(tmp_path / "grid.yaml", "- {a: [1, 2]}\n- {a: [3], b: [x]}\n")
    monkeypatch.chdir(tmp_path)
    args = parse("in.ipynb", "o-{a}-{c}.ipynb", "--grid-file", "grid.yaml", "--grid", "c", "k")
    runs = plan_runs(args, parameters(args), grid_combinations(args))
    assert [run.parameters for run in runs] == [
        {"a": 1, "c": "k"},
        {"a": 2, "c": "k"},
        {"a": 3, "b": "x", "c": "k"},
    ]
    assert [run.outputs for run in runs] == [["o-1-k.ipynb"], ["o-2-k.ipynb"], ["o-3-k.ipynb"]]


# -- papermill's parameters, without kernels ------------------------------------------------------
def parse(*argv: str):
    return build_parser().parse_args(["run", *argv])


def test_options_may_come_between_input_and_output():
    """As on papermill's command line (click parses options anywhere)."""
    args = parse("in.ipynb", "-p", "a", "1", "out.ipynb", "-y", "b: 2", "out.html")
    assert args.input == "in.ipynb" and args.outputs == ["out.ipynb", "out.html"]
    assert parameters(args) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "value",
    ["True", "False", "None", "3", "-3", "1_000", " 7 ", "0.5", "1e3", "nan", "inf", "0x10",
     "text", "", "true", "3.0.1", "[1, 2]"],
)  # fmt: skip
def test_values_are_typed_as_papermill_types_them(value):
    from papermill.cli import _resolve_type

    expected, typed = _resolve_type(value), resolve_type(value)
    assert type(typed) is type(expected)
    assert typed == expected or (typed != typed and expected != expected)  # nan


@pytest.mark.parametrize(
    "argv",
    [
        ["-p", "a", "1", "-p", "a", "2"],
        ["-p", "a", "1", "-r", "a", "2"],
        ["-r", "a", "2", "-p", "a", "1"],
        ["-p", "a", "1", "-y", "a: 3", "-y", "b: [1, 2]"],
        ["-y", "d: 2020-01-02", "-y", "e: ~"],
        ["-f", "params.yaml", "-y", "a: 5", "-b", base64.b64encode(b"a: 6\nz: 1").decode()],
        ["--inject-paths", "-p", "PAPERMILL_INPUT_PATH", "x"],
        ["--inject-input-path"],
        ["--inject-output-path", "-y", ""],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_parameters_merge_as_papermills_command_line_merges_them(argv, tmp_path, monkeypatch):
    """papermill's own command line (click), with execute_notebook replaced by a recorder."""
    import papermill.cli
    from click.testing import CliRunner

    write(tmp_path / "params.yaml", "a: 4\nf: file\n")
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(papermill.cli, "execute_notebook", lambda **kw: calls.append(kw))
    outcome = CliRunner().invoke(papermill.cli.papermill, ["in.ipynb", "out-{a}.ipynb", *argv])
    assert outcome.exit_code == 0, outcome.output

    assert parameters(parse("in.ipynb", "out-{a}.ipynb", *argv)) == calls[0]["parameters"]


# -- bad input: a clear error, exit code 2, no traceback ------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.ipynb", "out.ipynb"], "input notebook missing.ipynb does not exist"),
        (["in.ipynb"], "needs INPUT and OUTPUT"),
        (["in.ipynb", "out.ipynb", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["in.ipynb", "out.ipynb", "-p", "a"], "expected 2 arguments"),
        (["in.ipynb", "out.ipynb", "-y", "a: [1"], "-y 'a: [1': not valid YAML"),
        (["in.ipynb", "out.ipynb", "-y", "[1, 2]"], "must be a YAML mapping"),
        (["in.ipynb", "out.ipynb", "-f", "nope.yaml"], "-f nope.yaml: No such file"),
        (["in.ipynb", "out.ipynb", "-b", "a"], "-b 'a': not base64"),
        (["in.ipynb", "out.ipynb", "-p", "not a name", "1"], "'not a name' is not a Python name"),
        (
            ["in.ipynb", "out-{b}.ipynb", "-p", "a", "1"],
            "placeholder {b}, which is not a parameter",
        ),
        (["in.ipynb", "out.ipynb", "--grid", "a", "1", "2"], "two of them would write out.ipynb"),
        (["in.ipynb", "o-{a}.ipynb", "--grid-file", "g.yaml"], "--grid-file g.yaml: No such file"),
        (["in.ipynb", "o-{a}.ipynb", "--grid", "a"], "--grid a: give at least one value"),
        (["in.ipynb", "out.ipynb", "--processes", "0"], "must be at least 1"),
        (["in.ipynb", "out.ipynb", "-k", "no-such-kernel"], "'no-such-kernel' is not installed"),
        (["in.ipynb", "in.ipynb"], "the task's own source notebook"),
        (["in.ipynb", "-"], "local files only"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_input_is_a_clear_error(argv, message, tmp_path, monkeypatch, capsys):
    make_notebook(tmp_path / "in.ipynb", [("code", "a = 0", ["parameters"])])
    monkeypatch.chdir(tmp_path)

    code = main(["run", *argv])

    err = capsys.readouterr().err
    assert code == 2
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err


def test_bad_input_with_json_ends_with_an_error_summary(tmp_path):
    result = nbpipe("run", "missing.ipynb", "out.ipynb", "--json", cwd=tmp_path)
    assert result.returncode == 2
    *_, summary = json_lines(result.stdout)
    assert summary["event"] == "summary" and summary["exit_code"] == 2
    assert "does not exist" in summary["error"]["message"]
    assert "Traceback" not in result.stderr


def test_help_notebook_lists_the_parameters_as_papermill_does(tmp_path):
    make_notebook(
        tmp_path / "in.ipynb",
        [("code", "alpha: float = 0.5  # the rate\nn = 3", ["parameters"])],
    )
    result = nbpipe("run", "in.ipynb", "--help-notebook", cwd=tmp_path)
    expected = papermill("in.ipynb", "--help-notebook", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alpha: float (default 0.5)" in result.stdout and "the rate" in result.stdout
    assert result.stdout.splitlines() == expected.stdout.splitlines()[2:]  # (after its usage)
