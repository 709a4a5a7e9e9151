"""``GET pipelines/{path}``: the server loads a pipeline by running ``nbpipe status --json`` in a
child process, caches the answer until a file it depends on changes, and shares one child process
between concurrent requests."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from server_helpers import api, start_build, wait_for

pytestmark = pytest.mark.timeout(120)

# Each import of the module (each load of the pipeline) leaves a line in loads.txt, and prints
# to stdout, which must not get into the JSON the server reads.
CODE = """
from pathlib import Path

with open(Path(__file__).with_name("loads.txt"), "a") as f:
    f.write("load\\n")
print("{{not json: the module prints while it is imported")
{extra}

def make(product):
    Path(product).write_text("made")


def use(product, upstream):
    Path(product).write_text(Path(upstream["make"]).read_text() + " and used")
"""

SPEC = """
meta:
  jupyter_hot_reload: true
tasks:
  - {source: status_fns.make, product: out/made.txt}
  - {source: status_fns.use, product: out/used.txt}
"""


def write(root, folder: str = "status", extra: str = "") -> str:
    base = root / folder
    base.mkdir()
    (base / "status_fns.py").write_text(CODE.format(extra=extra))
    (base / "pipeline.yaml").write_text(SPEC)
    return f"{folder}/pipeline.yaml"


def loads(root, folder: str = "status") -> int:
    path = root / folder / "loads.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_detail_comes_from_nbpipe_status_and_is_cached(jp_fetch, jp_root_dir):
    assert importlib.util.find_spec("nbpipe.server.describe") is None  # no private loader
    pipeline = write(jp_root_dir)

    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200, detail
    assert detail["name"] == "status" and detail["executor"].startswith("Serial")
    assert detail["edges"] == [["make", "use"]]
    assert [warning for warning in detail["warnings"] if "jupyter_hot_reload" in warning]
    use = detail["tasks"][1]
    assert use["kind"] == "function" and use["source"] == "status/status_fns.py"
    assert use["upstream"] == ["make"] and use["state"] == "never built"
    assert use["products"] == [{"path": "status/out/used.txt", "in_root": True}]
    assert loads(jp_root_dir) == 1

    # Nothing changed: the cached answer.
    code, again = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200 and again["tasks"] == detail["tasks"] and loads(jp_root_dir) == 1
    # Asked for: a new load.
    code, _ = await api(jp_fetch, "pipelines", pipeline, params={"refresh": "true"})
    assert code == 200 and loads(jp_root_dir) == 2

    # A build changes products: the next answer is new. Concurrent requests share one load.
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "success", build
    before = loads(jp_root_dir)  # the build loaded the pipeline too
    replies = await asyncio.gather(*(api(jp_fetch, "pipelines", pipeline) for _ in range(4)))
    assert loads(jp_root_dir) == before + 1
    for code, reply in replies:
        assert code == 200
        assert {task["state"] for task in reply["tasks"]} == {"up to date"}

    # A new env.yaml beside the spec can change the pipeline: it counts as a change.
    (jp_root_dir / "status" / "env.yaml").write_text("unused: 1\n")
    code, _ = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200 and loads(jp_root_dir) == before + 2
    # So does a deleted product.
    (jp_root_dir / "status" / "out" / "made.txt").unlink()
    code, reply = await api(jp_fetch, "pipelines", pipeline)
    assert loads(jp_root_dir) == before + 3
    states = {task["name"]: task["state"] for task in reply["tasks"]}
    assert states == {"make": "outdated", "use": "outdated"}


async def test_detail_names_each_tasks_grid(jp_fetch, jp_root_dir):
    """The panel's graph folds a grid's tasks into one node: the detail says which grid."""
    pipeline = write(jp_root_dir, "grid")
    spec = jp_root_dir / "grid" / "pipeline.yaml"
    spec.write_text(
        SPEC + "  - {source: status_fns.make, name: 'm-[[k]]', product: out/m.txt, "
        "grid: {k: [1, 2]}}\n"
    )
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200, detail
    grids = {task["name"]: task["grid"] for task in detail["tasks"]}
    assert grids == {"make": None, "use": None, "m-1": "m-[[k]]", "m-2": "m-[[k]]"}


async def test_an_error_while_loading_is_a_422_with_the_error(jp_fetch, jp_root_dir):
    pipeline = write(jp_root_dir, extra="raise RuntimeError('the module is broken')")
    code, reply = await api(jp_fetch, "pipelines", pipeline)
    assert code == 422, reply
    assert "the module is broken" in reply["message"]
    assert reply["error"]["type"]


class TestTimeout:
    @pytest.fixture
    def nbpipe_config(self):
        return {"status_timeout": 1.0}

    async def test_a_pipeline_that_loads_too_slowly_is_a_504(self, jp_fetch, jp_root_dir):
        pipeline = write(jp_root_dir, extra="import time\ntime.sleep(30)")
        code, reply = await api(jp_fetch, "pipelines", pipeline)
        assert code == 504 and "status_timeout" in reply["message"]
