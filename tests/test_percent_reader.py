"""The fast percent-script reader (nbpipe.notebooks.percent) reads what jupytext reads.

Thousands of generated scripts (hypothesis, derandomized: the same scripts on every run) mix cell
markers in every spelling, titles, cell types, metadata in every form (key=value with JSON or
Python values, single-quoted tags, bare keys, attributes, JSON objects, broken metadata), code,
commented and uncommented magics, string literals holding markers, Markdown with fences, blank
and whitespace-only lines, headers, and Python, R and Julia scripts. For each, either the fast
reader hands it to jupytext (NotHandled) or its cells (type, source, metadata) and notebook
metadata equal ``jupytext.reads(text, fmt=EXT)``, which is how the worker converts the script;
where jupytext's format guess is percent, that is also ``jupytext.reads(text, fmt="EXT:percent")``.
Canonical scripts must take the fast path.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import jupytext
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbpipe.notebooks.percent import LAYOUT_KEYS, NotHandled, read_percent_script
from nbpipe.notebooks.source import NotebookSource


def view(notebook: dict[str, Any]) -> tuple[list, dict]:
    """What the two readers must agree on: each cell's type, metadata (without jupytext's layout
    keys) and source, and the notebook metadata except jupytext's own entry."""
    notebook = json.loads(json.dumps(notebook))
    cells = [
        (
            cell["cell_type"],
            {k: v for k, v in cell["metadata"].items() if k not in LAYOUT_KEYS},
            cell["source"],
        )
        for cell in notebook["cells"]
    ]
    metadata = {k: v for k, v in notebook["metadata"].items() if k != "jupytext"}
    return cells, metadata


def jupytext_view(text: str, fmt: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notebook = jupytext.reads(text, fmt=fmt)
    return view(notebook), notebook.metadata.get("jupytext", {}).get("text_representation", {})


def check(text: str, ext: str, also_as_percent: bool = False) -> bool:
    """Asserts agreement; True when the fast reader read the text itself. ``also_as_percent``:
    when jupytext's guess is percent, compare with ``fmt="EXT:percent"`` too (the same reading
    in jupytext's code: the format name is all the guess adds)."""
    try:
        fast = read_percent_script(text, ext)
    except NotHandled:
        return False
    expected, representation = jupytext_view(text, ext)  # raises if jupytext cannot read it
    assert view(fast) == expected
    if also_as_percent and representation.get("format_name") == "percent":
        assert view(fast) == jupytext_view(text, f"{ext}:percent")[0]
    return True


# -- the generator --------------------------------------------------------------------------------
MARKERS = ["# %%", "#%%", "  # %%", "#  %%", "# %%%", "# %% ", "#\t%%"]
BARE_MARKERS = ["# %%", "#%%", "# <codecell>", "# In[2]:", "# In[ ]:", "# %%  "]
TITLES = ["Load", "Load data", "x[1]", "a.b", "%", "Title:", "é"]
TYPES = ["[markdown]", "[md]", "[raw]"]
METADATA = [
    "tags=['parameters']",
    "tags=['parameters']",
    'tags=["parameters"]',
    "tags=['a', 'b']",
    'tags=["a", "b"]',
    "tags=[]",
    'key="value"',
    "key='value'",
    "key='it\\'s'",
    "n=3",
    "x=1.5",
    "flag=true",
    "flag=True",
    "x=None",
    "x=null",
    'slideshow={"slide_type": "slide"}',
    "d={'a': [1, 2]}",
    "hide",
    "hide_input",
    ".cls",
    "tags=[",
    "a=b",
    "a=",
    "--opt=1",
    "k = 1",
    "k=(1, 2)",
    "k={1, 2}",
    "active='ipynb'",
    'language="R"',
    'tags=["a,b"]',
    'tags=["a", "a"]',
    "tags='a'",
    'name="step"',
    'name=""',
    'cell_type="raw"',
    "lines_to_next_cell=2",
    "@k/x-y.z=1",
    "k=[1, {'a': None}]",
]
#: The entries above that make the fast reader hand the script to jupytext (or make jupytext
#: fail): drawn less often, so that most scripts exercise the fast reader.
EXOTIC = [
    "k=(1, 2)",
    "k={1, 2}",
    "active='ipynb'",
    'language="R"',
    'tags=["a,b"]',
    'tags=["a", "a"]',
    "tags='a'",
    'name=""',
    "{1: 2}",
    "{[1]: 2}",
]
COMMON = [item for item in METADATA if item not in EXOTIC]
JSON_METADATA = [
    '{"tags": ["parameters"]}',
    '{"tags": ["x"], "k": 1}',
    "{'tags': ['y']}",
    "{broken",
    "{}",
    '{"a": {"b": [true, null]}}',
    "{1: 2}",
    "{[1]: 2}",
]
COMMON_JSON = [item for item in JSON_METADATA if item not in EXOTIC]
CODE = [
    "x = 1",
    "print('hi')",
    "def f():",
    "    return 1",
    "# a comment",
    "# %timeit f()",
    "#%matplotlib inline",
    "# %%time",
    "%time x",
    "%%bash",
    "!ls",
    "# !pip install x",
    "# ls",
    "# cd dir",
    "# echo hi",
    "# cat = 3",
    "# really?",
    "f?",
    "# f?",
    "x = %time f()",
    "# x = %time f()",
    "# %time \\",
    "#     continued",
    "# %magic # escape",
    "%magic # noescape",
    "# # +",
    "# +",
    "# -",
    '"""',
    's = """',
    "# %% inside a string perhaps",
    'y = 2"""',
    "'''",
    "z = '''",
    "a = 'it\\'s'",
    'b = "# %% not a marker"',
    'c = "unclosed',
    "x <- 'a'",
    "library(dplyr)",
    "",
    "",
    "   ",
    "\t",
    "x = 1   ",
    "# %%foo",
    "    # indented comment",
    "# ```",
]
MARKDOWN = [
    "# # Title",
    "# text",
    "#",
    "#text",
    "# ```",
    "# ```python",
    "# ````",
    "# ~~~",
    "# %% inside a fence perhaps",
    "# - item",
    "# %time",
    "# # %time",
    "#   # %x",
    "  # %y",
    "text without hash",
    '# """',
    '"""',
    "# it's",
    "# cd x",
    "# really?",
    "# # +",
    "",
    "  ",
]
KERNELS = {
    "py": ["python3", "Python 3", "python"],
    "R": ["ir", "R", "R"],
    "r": ["ir", "R", "R"],
    "jl": ["julia-1.10", "Julia 1.10", "julia"],
}


@st.composite
def marker_lines(draw) -> str:
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(BARE_MARKERS))
    parts = []
    if draw(st.booleans()):
        parts += draw(st.lists(st.sampled_from(TITLES), max_size=2))
    kind = draw(st.sampled_from(["", *TYPES]))
    if kind:
        parts.insert(draw(st.integers(0, len(parts))), kind)
    exotic = draw(st.integers(0, 30)) == 0
    if draw(st.integers(0, 4)) == 0:
        parts.append(draw(st.sampled_from(JSON_METADATA if exotic else COMMON_JSON)))
    else:
        parts += draw(st.lists(st.sampled_from(METADATA if exotic else COMMON), max_size=3))
    return draw(st.sampled_from(MARKERS)) + " " + " ".join(parts)


@st.composite
def headers(draw, ext: str) -> list[str]:
    choice = draw(st.integers(0, 7))
    if choice <= 2:
        return []
    name, display, language = KERNELS[ext]
    lines = ["# ---"]
    if choice == 3:
        lines.append("# title: A report")
    lines += [
        "# jupyter:",
        "#   kernelspec:",
        f"#     display_name: {display}",
        f"#     language: {language}",
        f"#     name: {name}",
    ]
    if choice >= 5:
        representation = draw(st.sampled_from(["percent", "percent", "hydrogen", "light"]))
        lines += [
            "#   jupytext:",
            "#     cell_metadata_filter: -all",
            "#     text_representation:",
            f"#       extension: .{ext}",
            f"#       format_name: {representation}",
        ]
    if choice == 6:
        lines.insert(0, "#")
    if choice != 7 or draw(st.booleans()):
        lines.append("# ---")  # (sometimes unterminated)
    lines += draw(st.sampled_from([[], [""], ["#"], ["", ""]]))
    return lines


@st.composite
def scripts(draw) -> tuple[str, str]:
    ext = draw(st.sampled_from(["py", "py", "py", "R", "r", "jl"]))
    lines = draw(headers(ext))
    if draw(st.booleans()):
        lines += draw(st.lists(st.sampled_from(CODE), max_size=3))
    for _ in range(draw(st.integers(0, 6)) or draw(st.integers(0, 6))):
        marker = draw(marker_lines())
        body = MARKDOWN if "[m" in marker or "[raw]" in marker else CODE
        lines.append(marker)
        lines += draw(st.lists(st.sampled_from(body), max_size=6))
        lines += [""] * draw(st.integers(0, 3))
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline])), ext


@pytest.fixture(scope="module", autouse=True)
def memoized_cell_validation():
    """nbformat validates every cell jupytext makes with jsonschema (milliseconds each); the
    generated scripts share most of their cells, so validation results are remembered (by the
    cell's JSON): the same checks, in a fraction of the time."""
    from nbformat.v4 import nbbase

    validate = nbbase.validate
    results: dict[str, Exception | None] = {}

    def remembered(node, ref=None):
        key = f"{ref}:{json.dumps(node, sort_keys=True, default=repr)}"
        if key not in results:
            try:
                validate(node, ref)
                results[key] = None
            except Exception as error:
                results[key] = error
        if results[key] is not None:
            raise results[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nbbase, "validate", remembered)
        yield


@settings(
    max_examples=1000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scripts())
def test_the_fast_reader_reads_what_jupytext_reads(script):
    text, ext = script
    check(text, ext)


# -- canonical scripts take the fast path ---------------------------------------------------------
HEADER = """\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.16.1
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

"""
CANONICAL = {
    "single-quoted tags": "# %% tags=['parameters']\nupstream = None\nproduct = None\n",
    "double-quoted tags": '# %% tags=["parameters"]\nupstream = None\n',
    "title and tags": "# %% Load the data tags=['a', 'b']\nx = 1\n",
    "JSON metadata": '# %% {"tags": ["parameters"], "k": 1}\nx = 1\n',
    "key=value pairs": '# %% key="v" n=3 flag=true slideshow={"slide_type": "slide"}\nx = 1\n',
    "markdown": "# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n# %%\nx = 1\n",
    "md": "# %% [md] tags=['intro']\n# Text\n",
    "raw": "# %% [raw]\n# raw text\n",
    "magics": "# %%\n# %matplotlib inline\n# %timeit f()\n# !ls\nx = 1\n",
    "cell magic": "# %%\n# %%time\nx = 1\n",
    "uncommented magic (hydrogen)": "# %%\n%time x = 1\n",
    "blank lines": "# %%\n\nx = 1\n\n\n\n# %%\n   \ny = 2   \n\n",
    "marker in a string": '# %%\ns = """\n# %% not a cell\n"""\n',
    "fence in markdown": "# %% [markdown]\n# ```\n# %%\n# ```\n\n# %%\nx = 1\n",
    "sub-cells": "# %% Part\nx = 1\n\n# %%% Detail\ny = 2\n",
    "header": HEADER + "# %% tags=['parameters']\nx = 1\n",
    "header with a root-level entry": "# ---\n# title: T\n# jupyter:\n#   kernelspec:\n"
    "#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"
    "# %%\nx = 1\n",
    "code before the first marker": "import os\n\n# %%\nx = 1\n",
}
CANONICAL_OTHER_LANGUAGES = {
    "R": "# %% tags=['parameters']\nx <- 'a'\n# %time\n\n# %% [markdown]\n# Text\n",
    "jl": '# %% tags=["parameters"]\nx = 1\ns = """\n# %%\n"""\n',
}


@pytest.mark.parametrize("text", CANONICAL.values(), ids=CANONICAL.keys())
def test_canonical_scripts_take_the_fast_path(text):
    assert check(text, "py", also_as_percent=True)


@pytest.mark.parametrize("ext", CANONICAL_OTHER_LANGUAGES)
def test_r_and_julia_scripts_take_the_fast_path(ext):
    assert check(CANONICAL_OTHER_LANGUAGES[ext], ext, also_as_percent=True)


def test_single_quoted_parameters_tag(tmp_path):
    """Issue 11: ``tags=['parameters']`` used to fail with 'Expecting value'."""
    path = tmp_path / "nb.py"
    path.write_text("# %% tags=['parameters']\nupstream = None\n\n# %%\nx = 1\n")
    source = NotebookSource.read(path)
    assert source.has_parameters_cell()
    assert [cell["source"] for cell in source.code_cells] == ["upstream = None", "x = 1"]


@pytest.mark.parametrize(
    "text",
    [
        "import os\n\nx = 1\n",  # no markers: a light script
        "# +\nx = 1\n# -\n",  # light cell markers
        "#!/usr/bin/env python\n# %%\nx = 1\n",  # a shebang
        "# %% active='ipynb'\n# x = 1\n",  # active cells
        '# %% [markdown]\n"""\nText\n"""\n',  # Markdown as a string
        HEADER.replace("percent", "light") + "# %%\nx = 1\n",  # the header says light
    ],
    ids=["light", "light markers", "shebang", "active", "markdown string", "header says light"],
)
def test_what_jupytext_reads_instead(tmp_path, text):
    """These are jupytext's to read; NotebookSource then gets jupytext's notebook."""
    with pytest.raises(NotHandled):
        read_percent_script(text, "py")
    path = tmp_path / "nb.py"
    path.write_text(text)
    assert view(NotebookSource.read(path).notebook) == jupytext_view(text, "py")[0]
