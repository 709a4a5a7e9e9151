"""``injected_code()``: the injected-parameters cell a build adds, for an interactive kernel.

JupyterLab runs it in a task notebook's kernel ("Load task parameters"), so it must be exactly
what a build injects, with the real product paths (a build writes to staged files, then renames
them; the executed notebook shows the real paths)."""

from __future__ import annotations

import json

from nbpipe.spec import DAGSpec

NOTEBOOK = """# %% tags=["parameters"]
upstream = ["first"]
product = None
rows = None

# %%
open(product["data"], "w").write(open(upstream["first"]).read() * rows)
"""


def test_a_notebooks_injected_code_is_the_cell_its_build_injects(tmp_path):
    (tmp_path / "tasks.py").write_text(
        "def first(product):\n    open(str(product), 'w').write('x')\n"
    )
    (tmp_path / "second.py").write_text(NOTEBOOK)
    (tmp_path / "pipeline.yaml").write_text(
        "executor: serial\n"
        "tasks:\n"
        "  - source: tasks.first\n"
        "    product: out/first.txt\n"
        "  - source: second.py\n"
        "    params: {rows: 3}\n"
        "    product: {nb: out/second.ipynb, data: out/second.txt}\n"
    )
    dag = DAGSpec(tmp_path / "pipeline.yaml").to_dag()
    code = dag["second"].injected_code()
    dag.build()
    executed = json.loads((tmp_path / "out" / "second.ipynb").read_text())
    [cell] = [
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert "".join(cell["source"]) == code
    assert f'"first": "{tmp_path / "out" / "first.txt"}"' in code
    assert (tmp_path / "out" / "second.txt").read_text() == "xxx"


def test_a_scripts_injected_code_names_its_real_products(tmp_path):
    (tmp_path / "tasks.py").write_text(
        "def first(product):\n    open(str(product), 'w').write('x')\n"
    )
    (tmp_path / "second.py").write_text(NOTEBOOK)
    (tmp_path / "pipeline.yaml").write_text(
        "tasks:\n"
        "  - source: tasks.first\n"
        "    product: out/first.txt\n"
        "  - source: second.py\n"
        "    class: ScriptRunner\n"
        "    params: {rows: 3}\n"
        "    product: {data: out/second.txt}\n"
    )
    namespace: dict = {}
    exec(DAGSpec(tmp_path / "pipeline.yaml").to_dag()["second"].injected_code(), namespace)
    assert namespace["product"] == {"data": str(tmp_path / "out" / "second.txt")}
    assert namespace["upstream"] == {"first": str(tmp_path / "out" / "first.txt")}
    assert namespace["rows"] == 3
