"""``GET tasks-of?path=FILE`` (which tasks a file is, with their injected parameters) and
``POST builds`` with ``skip_upstream`` ("Build this task" from a notebook's toolbar)."""

from __future__ import annotations

import os

import pytest
from jsonschema import Draft202012Validator
from jupyter_server.auth import Authorizer
from server_helpers import _OPENAPI, api, copy_example, start_build, wait_for

pytestmark = pytest.mark.timeout(120)


async def tasks_of(fetch, path: str, **kwargs):
    # Loading a pipeline (a child process importing papermill) is slow on a loaded machine.
    return await api(fetch, "tasks-of", params={"path": path}, request_timeout=120, **kwargs)


#: openapi.yaml's description of the answer.
ANSWER = Draft202012Validator(
    {
        **_OPENAPI["paths"]["/tasks-of"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ],
        "components": _OPENAPI["components"],
    }
)


def injected(code: str) -> dict:
    """What the injected code defines, run as the kernel runs it."""
    namespace: dict = {}
    exec(code, namespace)
    return {name: value for name, value in namespace.items() if not name.startswith("__")}


def extension(jp_serverapp):
    """The running NbpipeApp (to look at its task map's cache)."""
    return next(iter(jp_serverapp.extension_manager.extension_apps["nbpipe.server"]))


async def test_a_notebook_maps_to_its_task_with_absolute_upstream_paths(
    jp_fetch, jp_root_dir, jp_serverapp
):
    pipeline = copy_example(jp_root_dir)
    code, reply = await tasks_of(jp_fetch, "example/clean.py")
    assert code == 200, reply
    assert reply["path"] == "example/clean.py" and reply["errors"] == []
    assert [error.message for error in ANSWER.iter_errors(reply)] == []
    [task] = reply["tasks"]
    output = os.path.join(os.path.realpath(jp_root_dir), "example", "output")
    assert task["pipeline"] == pipeline
    assert task["task"] == "clean" and task["role"] == "source" and task["kind"] == "notebook"
    assert task["source"] == "example/clean.py"
    assert task["upstream"] == {"make_raw_data": os.path.join(output, "raw.csv")}
    assert [p["path"] for p in task["products"]] == [
        "example/output/clean.ipynb",
        "example/output/clean.html",
        "example/output/clean.csv",
    ]
    assert task["language"] == "python" and task["injected_error"] is None
    # The code a build injects, with the real (not staged) absolute paths.
    assert injected(task["injected_code"]) == {
        "upstream": {"make_raw_data": os.path.join(output, "raw.csv")},
        "product": {
            "nb": os.path.join(output, "clean.ipynb"),
            "html": os.path.join(output, "clean.html"),
            "data": os.path.join(output, "clean.csv"),
        },
    }
    assert task["injected_code"].startswith("# Parameters\n")

    # A second call reuses the loaded index (no child process): the cached entry is the same.
    task_map = extension(jp_serverapp).task_map
    before = task_map._cache[pipeline][1]
    code, again = await tasks_of(jp_fetch, "example/clean.py")
    assert code == 200 and again == reply
    assert task_map._cache[pipeline][1] is before

    # Saving a notebook unchanged (a new mtime, the same bytes) keeps the loaded index.
    clean = jp_root_dir / "example" / "clean.py"
    clean.write_bytes(clean.read_bytes())
    os.utime(clean, ns=(clean.stat().st_atime_ns, clean.stat().st_mtime_ns + 10**9))
    code, again = await tasks_of(jp_fetch, "example/clean.py")
    assert code == 200 and again == reply
    assert task_map._cache[pipeline][1] is before

    # Editing the notebook's parameters cell changes the answer (the cache watches sources).
    source = jp_root_dir / "example" / "by_region.py"
    source.write_text(
        source.read_text().replace('upstream = ["clean"]', 'upstream = ["clean", "make_raw_data"]')
    )
    code, reply = await tasks_of(jp_fetch, "example/by_region.py")
    assert code == 200, reply
    assert set(reply["tasks"][0]["upstream"]) == {"clean", "make_raw_data"}
    assert task_map._cache[pipeline][1] is not before


async def test_a_function_module_and_a_product_map_to_their_tasks(jp_fetch, jp_root_dir):
    copy_example(jp_root_dir)
    (jp_root_dir / "example" / "output").mkdir()
    (jp_root_dir / "example" / "output" / "clean.ipynb").write_text("{}")
    code, reply = await tasks_of(jp_fetch, "example/output/clean.ipynb")
    assert code == 200, reply
    assert [(t["task"], t["role"]) for t in reply["tasks"]] == [("clean", "product")]
    code, reply = await tasks_of(jp_fetch, "example/README.md")
    assert code == 200 and reply["tasks"] == []


async def test_grid_tasks_are_all_listed_with_their_values(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "grid"
    folder.mkdir()
    (folder / "fit.py").write_text(
        '# %% tags=["parameters"]\nupstream = None\nproduct = None\nmodel = None\n'
        "alpha = None\n\n# %%\nprint(model, alpha)\n"
    )
    (folder / "pipeline.yaml").write_text(
        "tasks:\n"
        "  - source: fit.py\n"
        "    name: fit-[[model]]-[[alpha]]\n"
        "    product: out/fit.ipynb\n"
        "    params: {rows: 10}\n"
        "    grid:\n"
        "      model: [ridge, lasso]\n"
        "      alpha: [0.5, 2]\n"
    )
    code, reply = await tasks_of(jp_fetch, "grid/fit.py")
    assert code == 200, reply
    tasks = {t["task"]: t for t in reply["tasks"]}
    assert sorted(tasks) == ["fit-lasso-0.5", "fit-lasso-2", "fit-ridge-0.5", "fit-ridge-2"]
    values = injected(tasks["fit-lasso-2"]["injected_code"])
    assert values["model"] == "lasso" and values["alpha"] == 2 and values["rows"] == 10
    assert values["product"].endswith(os.path.join("grid", "out", "fit-3.ipynb"))
    assert tasks["fit-lasso-2"]["params"] == {"rows": 10, "model": "lasso", "alpha": 2}


async def test_a_broken_spec_is_reported_with_its_line(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "broken"
    folder.mkdir()
    (folder / "a.py").write_text('# %% tags=["parameters"]\nproduct = None\n')
    (folder / "pipeline.yaml").write_text("tasks:\n  - source: a.py\n    product: 3\n")
    code, reply = await tasks_of(jp_fetch, "broken/a.py")
    assert code == 200, reply
    assert reply["tasks"] == []
    [error] = reply["errors"]
    assert error["pipeline"] == "broken/pipeline.yaml"
    assert "pipeline.yaml:3" in error["message"] and "product" in error["message"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("../etc/passwd", 403, "'..' is not allowed"),
        ("/etc/passwd", 403, "is absolute"),
        ("example/../../x.py", 403, "'..' is not allowed"),
        ("example/missing.py", 404, "no file"),
        ("example/.hidden.py", 404, "hidden"),
        ("a" * 5000, 400, "too long"),
        ("", 400, "required"),
    ],
)
async def test_paths_outside_the_root_or_unusable_are_refused(
    jp_fetch, jp_root_dir, path, status, words
):
    copy_example(jp_root_dir)
    code, reply = await tasks_of(jp_fetch, path)
    assert code == status, reply
    assert words in reply["message"]


async def test_a_symlink_out_of_the_root_is_refused(jp_fetch, jp_root_dir, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    copy_example(jp_root_dir)
    os.symlink(outside, jp_root_dir / "example" / "link.py")
    code, reply = await tasks_of(jp_fetch, "example/link.py")
    assert code == 403 and "outside the server root" in reply["message"]


async def test_no_path_and_no_token_are_refused(jp_fetch, jp_root_dir):
    code, reply = await api(jp_fetch, "tasks-of")
    assert code == 400 and "path" in reply["message"]
    copy_example(jp_root_dir)
    code, reply = await tasks_of(jp_fetch, "example/clean.py", headers={"Authorization": ""})
    assert code == 403


class ReadOnly(Authorizer):
    """Reads nbpipe resources, may not execute; remembers what it was asked."""

    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler, user, action, resource):
        if resource.startswith("nbpipe"):
            ReadOnly.asked.append((action, resource))
            return action == "read"
        return True


class NoNbpipe(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return not resource.startswith("nbpipe")


class TestPermissions:
    @pytest.fixture
    def authorizer(self):
        return ReadOnly

    @pytest.fixture
    def jp_server_config(self, state_dir, authorizer):
        return {
            "ServerApp": {
                "jpserver_extensions": {"nbpipe.server": True},
                "authorizer_class": authorizer,
            },
            "NbpipeApp": {"state_dir": str(state_dir)},
        }

    async def test_a_read_only_user_loads_no_pipeline_code(self, jp_fetch, jp_root_dir):
        ReadOnly.asked.clear()
        copy_example(jp_root_dir)
        code, reply = await tasks_of(jp_fetch, "example/clean.py")
        assert code == 403
        assert "nbpipe:builds execute" in reply["message"]
        assert ReadOnly.asked == [("read", "nbpipe:pipelines"), ("execute", "nbpipe:builds")]

    @pytest.mark.parametrize("authorizer", [NoNbpipe])
    async def test_a_user_without_nbpipe_access_is_forbidden(self, jp_fetch, jp_root_dir):
        copy_example(jp_root_dir)
        code, reply = await tasks_of(jp_fetch, "example/clean.py")
        assert code == 403 and "not authorized" in reply["message"]


# -- "Build this task": skip_upstream -----------------------------------------------------------

TASKS = """\
def first(product):
    open(str(product), "w").write("first")


def second(product, upstream):
    open(str(product), "w").write(open(str(upstream["first"])).read() + " second")
"""

SPEC = """\
executor: serial
tasks:
  - source: tasks.first
    product: out/first.txt
  - source: tasks.second
    product: out/second.txt
"""


async def test_skip_upstream_builds_only_the_task_named(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "two"
    folder.mkdir()
    (folder / "tasks.py").write_text(TASKS)
    (folder / "pipeline.yaml").write_text(SPEC)
    build = await wait_for(jp_fetch, await start_build(jp_fetch, "two/pipeline.yaml"))
    assert build["state"] == "success"
    first_record = (folder / "out" / ".first.txt.metadata").stat().st_mtime_ns

    # Forced, "up to here": the task and what it needs.
    build = await wait_for(
        jp_fetch, await start_build(jp_fetch, "two/pipeline.yaml", tasks=["second"], force=True)
    )
    assert sorted(t["name"] for t in build["tasks"] if t["status"] == "executed") == [
        "first",
        "second",
    ]
    first_record = (folder / "out" / ".first.txt.metadata").stat().st_mtime_ns

    # Forced, "this task": only the task; its upstream product is read as it is.
    build = await wait_for(
        jp_fetch,
        await start_build(
            jp_fetch, "two/pipeline.yaml", tasks=["second"], force=True, skip_upstream=True
        ),
    )
    assert build["state"] == "success"
    assert [t["name"] for t in build["tasks"]] == ["second"]
    assert (folder / "out" / ".first.txt.metadata").stat().st_mtime_ns == first_record
    assert (folder / "out" / "second.txt").read_text() == "first second"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"skip_upstream": True}, "skip_upstream needs tasks"),
        ({"skip_upstream": "yes", "tasks": ["second"]}, "skip_upstream must be true or false"),
    ],
)
async def test_skip_upstream_input_is_checked(jp_fetch, jp_root_dir, fields, words):
    folder = jp_root_dir / "two"
    folder.mkdir()
    (folder / "tasks.py").write_text(TASKS)
    (folder / "pipeline.yaml").write_text(SPEC)
    code, reply = await api(
        jp_fetch, "builds", method="POST", body={"pipeline": "two/pipeline.yaml", **fields}
    )
    assert code == 400 and words in reply["message"]
    code, history = await api(jp_fetch, "builds")
    assert history["total"] == 0
