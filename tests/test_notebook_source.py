"""The light percent-script reader agrees with jupytext on what render needs."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import pytest

from nbpipe.notebooks.source import NotebookSource, history_in_memory, read_percent_script

FOLDER = Path(__file__).parents[1] / "example_notebooks"
EXAMPLES = [FOLDER / f"{name}.py" for name in ("clean", "by_region", "monthly_trend", "report")]

SCRIPT = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Title

# %% tags=["parameters"]
upstream = ["load"]
product = None

# %% Totals tags=["a", "b"]
total = 1  # %% in a comment is not a marker

# %% [raw]
# raw text
"""


def cells(notebook):
    return [
        (c["cell_type"], c["metadata"].get("tags", []), c["source"])
        for c in notebook["cells"]
        if c["cell_type"] == "code"
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_code_cells_match_jupytext_on_the_examples(path):
    assert cells(read_percent_script(path.read_text())) == cells(
        json.loads(json.dumps(jupytext.read(path)))
    )


def test_header_cell_types_and_tags(tmp_path):
    path = tmp_path / "nb.py"
    path.write_text(SCRIPT)
    source = NotebookSource.read(path)
    assert source.format == "py" and source.text == SCRIPT
    assert source.kernel_name() == "python3"
    assert source.has_parameters_cell()
    assert [cell["cell_type"] for cell in source.notebook["cells"]] == [
        "markdown",
        "code",
        "code",
        "raw",
    ]
    assert source.notebook["cells"][2]["metadata"]["tags"] == ["a", "b"]
    assert cells(source.notebook) == cells(json.loads(json.dumps(jupytext.reads(SCRIPT, fmt="py"))))


def test_ipython_kernels_keep_history_in_memory_unless_the_arguments_name_a_file():
    quiet = ["--IPKernelApp.log_level=CRITICAL"]
    assert history_in_memory("python3", quiet) == [*quiet, "--HistoryManager.hist_file=:memory:"]
    own = ["--HistoryManager.hist_file=/tmp/history.sqlite"]
    assert history_in_memory("python3", own) == own
    assert history_in_memory("ir", []) == [], "nbclient adds it for IPython kernels only"
