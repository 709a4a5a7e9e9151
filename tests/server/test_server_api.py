"""The REST API and the event bus, against a real server building real pipelines."""

from __future__ import annotations

import asyncio
import os

import pytest
from server_helpers import (
    SUMMARY_VALIDATOR,
    api,
    check_events,
    check_snapshot,
    copy_example,
    events_until_ended,
    kind,
    replay,
    snapshot_state,
    start_build,
    task_events,
    wait_for,
    write_data,
    write_functions,
    write_pipeline,
    write_text,
)

from nbpipe.engine.events import TaskFailure

pytestmark = pytest.mark.timeout(120)


async def test_example_pipeline_builds_with_live_events(jp_fetch, jp_ws_fetch, jp_root_dir):
    pipeline = copy_example(jp_root_dir)
    code, listing = await api(jp_fetch, "pipelines")
    assert code == 200
    assert [row["path"] for row in listing["pipelines"]] == [pipeline]
    assert listing["pipelines"][0]["last_build"] is None

    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    events = await events_until_ended(ws, build_id)

    check_events(events)  # each one an event of the contract, seq 1, 2, 3...
    kinds = [kind(event) for event in events]
    assert kinds[:2] == ["build_created", "build_started"]
    assert kinds[-2:] == ["build_finished", "build_ended"]
    tasks = ["make_raw_data", "clean", "by_region", "monthly_trend", "report"]
    progress = {"task_cell_started", "task_cell_finished", "task_output"}
    for task in tasks:
        mine = task_events(events, task)
        assert mine[:2] == ["task_queued", "task_started"] and mine[-1] == "task_finished"
        # between start and end, only what a running notebook reports: its cells (functions none)
        assert set(mine[2:-1]) <= progress, (task, mine)
        assert ("task_cell_started" in mine) == (task != "make_raw_data"), (task, mine)
    position = {(kind(e), e["event"]["task"]): i for i, e in enumerate(events)}
    for up, down in [
        ("make_raw_data", "clean"),
        ("clean", "by_region"),
        ("clean", "monthly_trend"),
        ("by_region", "report"),
        ("monthly_trend", "report"),
    ]:
        assert position[("task_finished", up)] < position[("task_started", down)]
    finished = events[position[("task_finished", "report")]]
    # The contract's event, unchanged but for its paths: relative to the server root, in an
    # envelope (the event socket adds the schema_id).
    assert set(finished) == {"schema_id", "build_id", "pipeline", "seq", "state", "event"}
    assert finished["pipeline"] == pipeline and finished["state"] == "running"
    assert "example/output/report.html" in finished["event"]["products"]
    assert events[-1]["state"] == "success"

    code, build = await api(jp_fetch, "builds", build_id)
    assert code == 200
    check_snapshot(build)
    assert build["state"] == "success" and build["exit_code"] == 0
    assert build["seq"] == events[-1]["seq"]
    assert build["counts"] == {"executed": 5}
    assert [task["name"] for task in build["tasks"]] == tasks
    for task in build["tasks"]:
        assert task["status"] == "executed"
        assert task["started"] <= task["ended"]
        for product in task["products"]:
            assert not os.path.isabs(product)
            assert (jp_root_dir / product).is_file(), product
    # The snapshot is what the reducer derives from the bus events: the browser, applying
    # later events to a snapshot with the same rules, shows the same build.
    assert replay(events).to_dict() == snapshot_state(build)

    # The pipeline is now up to date, and remembers each task's last result.
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200
    assert {task["state"] for task in detail["tasks"]} == {"up to date"}
    assert all(task["last_result"]["state"] == "executed" for task in detail["tasks"])
    assert detail["last_build"]["id"] == build_id


async def test_pipeline_detail_graph_and_status(jp_fetch, jp_root_dir):
    pipeline = write_pipeline(
        jp_root_dir,
        "proj",
        {"first": write_data("first"), "second": write_data("second")},
        upstream={"second": ["first"]},
    )
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200, detail
    assert [task["name"] for task in detail["tasks"]] == ["first", "second"]
    assert detail["edges"] == [["first", "second"]]
    first = detail["tasks"][0]
    assert first["state"] == "never built"
    assert first["source"] == "proj/first.py"
    assert first["products"] == [
        {"path": "proj/out/first.ipynb", "in_root": True},
        {"path": "proj/out/first.txt", "in_root": True},
    ]
    assert first["last_result"] is None and detail["building"] is None

    # A partial build: the target and what it needs. The cache notices the new products.
    build_id = await start_build(jp_fetch, pipeline, tasks=["first"])
    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "success", build
    assert build["targets"] == ["first"]
    assert [task["name"] for task in build["tasks"]] == ["first"]
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    states = {task["name"]: task["state"] for task in detail["tasks"]}
    assert states == {"first": "up to date", "second": "never built"}

    # An edit makes a task outdated.
    source = jp_root_dir / "proj" / "first.py"
    source.write_text(source.read_text() + "\nx = 1\n")
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert detail["tasks"][0]["state"] == "outdated"


TARGETS_CODE = """
from pathlib import Path


def a(product):
    Path(product).write_text("a")


def b(product, upstream):
    Path(product).write_text(Path(upstream["a"]).read_text() + "b")


def c(product):
    Path(product).write_text("c")


def d(product, upstream):  # c is named "-c" in the spec: a name that looks like an option
    Path(product).write_text(Path(upstream["-c"]).read_text() + "d")


def e(product):
    Path(product).write_text("e")
"""

TARGETS_SPEC = """
tasks:
  - {source: targets_fns.a, product: out/a.txt}
  - {source: targets_fns.b, product: out/b.txt}
  - {source: targets_fns.c, product: out/c.txt, name: -c}
  - {source: targets_fns.d, product: out/d.txt}
  - {source: targets_fns.e, product: out/e.txt}
"""


async def test_a_build_of_several_target_tasks(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "targets"
    folder.mkdir()
    (folder / "targets_fns.py").write_text(TARGETS_CODE)
    (folder / "pipeline.yaml").write_text(TARGETS_SPEC)
    pipeline = "targets/pipeline.yaml"

    code, detail = await api(jp_fetch, "pipelines", pipeline)
    assert code == 200, detail
    assert sorted(detail["edges"]) == [["-c", "d"], ["a", "b"]]
    kinds = {task["name"]: (task["kind"], task["source"]) for task in detail["tasks"]}
    assert kinds["b"] == ("function", "targets/targets_fns.py")

    # b and d, and what they need (a, and "-c": a name that looks like an option), not e.
    # A name given twice is built once.
    build_id = await start_build(jp_fetch, pipeline, tasks=["b", "d", "b"])
    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "success", build
    assert build["targets"] == ["b", "d"]
    assert {task["name"]: task["status"] for task in build["tasks"]} == {
        "a": "executed",
        "b": "executed",
        "-c": "executed",
        "d": "executed",
    }
    assert (folder / "out" / "d.txt").read_text() == "cd"
    assert not (folder / "out" / "e.txt").exists()
    code, detail = await api(jp_fetch, "pipelines", pipeline)
    states = {task["name"]: task["state"] for task in detail["tasks"]}
    assert states == {
        "a": "up to date",
        "b": "up to date",
        "-c": "up to date",
        "d": "up to date",
        "e": "never built",
    }

    # An unknown target: the build is recorded, and ends in error naming it.
    build_id = await start_build(jp_fetch, pipeline, tasks=["e", "nope"])
    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "error" and "no task named 'nope'" in build["message"]
    assert not (folder / "out" / "e.txt").exists()


async def test_spec_error_is_a_4xx_with_the_message(jp_fetch, jp_root_dir):
    (jp_root_dir / "broken").mkdir()
    (jp_root_dir / "broken" / "pipeline.yaml").write_text("tasks:\n  - source: missing.py\n")
    code, reply = await api(jp_fetch, "pipelines", "broken/pipeline.yaml")
    assert code == 422
    assert "missing.py" in reply["message"] or "product" in reply["message"]
    assert reply["error"]["file"].endswith("pipeline.yaml")
    assert reply["error"]["line"] == 2

    (jp_root_dir / "broken" / "pipeline-syntax.yaml").write_text("tasks: [\n")
    code, reply = await api(jp_fetch, "pipelines", "broken/pipeline-syntax.yaml")
    assert code == 422 and reply["message"]

    # A build of a broken pipeline is accepted, then ends in error with the spec's message.
    build_id = await start_build(jp_fetch, "broken/pipeline.yaml")
    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "error"
    assert "pipeline.yaml:2" in build["message"]
    code, log = await api(jp_fetch, "builds", build_id, "log")
    assert code == 200 and "error" in log["log"]


async def test_failed_task_reports_cell_and_traceback(jp_fetch, jp_root_dir):
    pipeline = write_pipeline(
        jp_root_dir,
        "failing",
        {"ok": write_data("ok"), "bad": "x = 1\ny = x / 0", "after": write_data("after")},
        upstream={"bad": ["ok"], "after": ["bad"]},
    )
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "failed" and build["exit_code"] == 1
    tasks = {task["name"]: task for task in build["tasks"]}
    assert tasks["ok"]["status"] == "executed"
    assert tasks["after"]["status"] == "aborted"
    failure = tasks["bad"]["failure"]
    assert tasks["bad"]["status"] == "failed"
    assert failure["task"] == "bad"
    assert failure["type"] == "ZeroDivisionError"
    assert failure["cell"] == 1 and failure["line"] == 2
    assert failure["code"] == "y = x / 0"
    summary = "ZeroDivisionError: division by zero (cell 2, line 2)"
    assert TaskFailure.from_dict(failure).summary() == summary
    assert tasks["bad"]["detail"] == summary
    assert "ZeroDivisionError" in failure["traceback"]
    assert failure["source"] == "failing/bad.py"
    assert failure["partial_notebook"] == "failing/out/bad.failed.ipynb"
    assert (jp_root_dir / failure["partial_notebook"]).is_file()
    assert not (jp_root_dir / "failing" / "out" / "bad.txt").exists()


async def test_one_build_per_pipeline_but_pipelines_build_at_once(jp_fetch, jp_root_dir):
    slow = "time.sleep(1.5)\n" + write_text("done")
    one = write_functions(jp_root_dir, "one", {"a": slow})
    two = write_functions(jp_root_dir, "two", {"b": slow})
    first = await start_build(jp_fetch, one)
    code, reply = await api(jp_fetch, "builds", method="POST", body={"pipeline": one})
    assert code == 409 and reply["build_id"] == first
    # The same pipeline spelled differently is the same pipeline.
    code, reply = await api(
        jp_fetch, "builds", method="POST", body={"pipeline": "./one//pipeline.yaml"}
    )
    assert code == 409

    second = await start_build(jp_fetch, two)
    code, listing = await api(jp_fetch, "pipelines")
    building = {row["path"]: row["building"] for row in listing["pipelines"]}
    assert building == {one: first, two: second}

    one_done, two_done = await asyncio.gather(wait_for(jp_fetch, first), wait_for(jp_fetch, second))
    assert one_done["state"] == two_done["state"] == "success"
    # They overlapped: each started before the other ended.
    assert one_done["started"] < two_done["ended"] and two_done["started"] < one_done["ended"]
    # Done: the pipeline can build again.
    third = await start_build(jp_fetch, one, force=True)
    assert (await wait_for(jp_fetch, third))["state"] == "success"


async def test_history_is_newest_first_and_paged(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "", {"only": write_text("only")})
    ids = []
    for _ in range(3):
        ids.append(await start_build(jp_fetch, pipeline, force=True))
        await wait_for(jp_fetch, ids[-1])
    code, page = await api(jp_fetch, "builds", params={"limit": 2})
    assert code == 200
    assert page["total"] == 3
    assert [build["id"] for build in page["builds"]] == ids[::-1][:2]
    assert page["builds"][0]["counts"] == {"executed": 1}
    for build in page["builds"]:  # the list leaves the tasks out
        check_snapshot(build, SUMMARY_VALIDATOR)
    code, page = await api(jp_fetch, "builds", params={"limit": 2, "offset": 2})
    assert [build["id"] for build in page["builds"]] == ids[:1]
    code, page = await api(jp_fetch, "builds", params={"pipeline": pipeline})
    assert page["total"] == 3
    code, page = await api(jp_fetch, "builds", params={"pipeline": "elsewhere/pipeline.yaml"})
    assert page["total"] == 0 and page["builds"] == []


async def test_listing_skips_hidden_environments_and_deep_folders(jp_fetch, jp_root_dir):
    for folder in [
        "a",
        "a/b",
        ".hidden",
        "node_modules/pkg",
        "venv",
        "a/b/c/d/too-deep",
    ]:
        (jp_root_dir / folder).mkdir(parents=True, exist_ok=True)
        (jp_root_dir / folder / "pipeline.yaml").write_text("tasks: []\n")
    (jp_root_dir / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (jp_root_dir / "a" / "pipeline.train.yaml").write_text("tasks: []\n")
    (jp_root_dir / "a" / "notes.yaml").write_text("x: 1\n")
    code, listing = await api(jp_fetch, "pipelines")
    assert code == 200
    assert [row["path"] for row in listing["pipelines"]] == [
        "a/b/pipeline.yaml",
        "a/pipeline.train.yaml",
        "a/pipeline.yaml",
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"pipeline": "one/pipeline.yaml", "bogus": 1}, "unknown field"),
        ({}, "pipeline"),
        ({"pipeline": 3}, "pipeline"),
        ({"pipeline": "one/pipeline.yaml", "force": "yes"}, "force"),
        ({"pipeline": "one/pipeline.yaml", "tasks": "a"}, "tasks"),
        ({"pipeline": "one/pipeline.yaml", "tasks": ["a", ""]}, "tasks"),
        ({"pipeline": "one/pipeline.yaml", "tasks": ["a\u0000"]}, "tasks"),
        ({"pipeline": "one/pipeline.yaml", "tasks": ["a"] * 1001}, "at most 1000"),
        # Not a list: never a full build (issue 10).
        ({"pipeline": "one/pipeline.yaml", "tasks": 0}, "tasks"),
        ({"pipeline": "one/pipeline.yaml", "tasks": False}, "tasks"),
        ({"pipeline": "one/pipeline.yaml", "tasks": {}}, "tasks"),
        # Names too long for a command line: 400, not a 500 after a history row (issue 10).
        ({"pipeline": "one/pipeline.yaml", "tasks": ["x" * 128 * 1024]}, "long"),
        (
            {"pipeline": "one/pipeline.yaml", "tasks": [f"{i}" + "x" * 4000 for i in range(200)]},
            "long",
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "nested", id="nested-100k"),
        ({"pipeline": "bad\udcff/pipeline.yaml"}, "UTF-8"),
        ({"pipeline": "one/nothing.yaml"}, "no pipeline"),
        ({"pipeline": "one/a.py"}, "not a pipeline"),
    ],
)
async def test_bad_build_requests_are_4xx_json(jp_fetch, jp_root_dir, body, fragment):
    write_pipeline(jp_root_dir, "one", {"a": write_data("a")})
    code, reply = await api(jp_fetch, "builds", method="POST", body=body)
    assert 400 <= code < 500, reply
    assert fragment in reply["message"]
    code, history = await api(jp_fetch, "builds")
    assert history["total"] == 0


async def test_unknown_builds_and_bad_queries_are_4xx_json(jp_fetch):
    for parts in [("builds", "0" * 32), ("builds", "nope"), ("builds", "0" * 32, "log")]:
        code, reply = await api(jp_fetch, *parts)
        assert code == 404 and "no build" in reply["message"]
    code, reply = await api(jp_fetch, "builds", "0" * 32, "cancel", method="POST")
    assert code == 404
    for params in [{"limit": "x"}, {"limit": 0}, {"limit": 10_000}, {"offset": -1}]:
        code, reply = await api(jp_fetch, "builds", params=params)
        assert code == 400 and reply["message"]
    code, reply = await api(jp_fetch, "pipelines", "x/pipeline.yaml", params={"refresh": "maybe"})
    assert code == 400


async def test_cancel_of_a_finished_build_is_a_conflict(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "p", {"a": write_text("a")})
    build_id = await start_build(jp_fetch, pipeline)
    await wait_for(jp_fetch, build_id)
    code, reply = await api(jp_fetch, "builds", build_id, "cancel", method="POST")
    assert code == 409 and "already ended" in reply["message"]


async def test_a_folder_with_a_non_utf8_name_is_reported_not_a_500(jp_fetch, jp_root_dir):
    """Shared drives hold names that are not UTF-8: the other pipelines are listed, that one is
    reported as unusable (issue 10)."""
    good = write_pipeline(jp_root_dir, "good", {"a": write_data("a")})
    bad = os.path.join(os.fsencode(jp_root_dir), b"bad\xff")
    try:
        os.mkdir(bad)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    with open(os.path.join(bad, b"pipeline.yaml"), "w") as spec:
        spec.write("tasks: []\n")
    code, listing = await api(jp_fetch, "pipelines")
    assert code == 200, listing
    assert [row["path"] for row in listing["pipelines"]] == [good]
    [unusable] = listing["unusable"]
    assert unusable["path"] == "bad\\xff/pipeline.yaml"
    assert "UTF-8" in unusable["message"]
    code, reply = await api(
        jp_fetch, "builds", method="POST", body={"pipeline": "bad\udcff/pipeline.yaml"}
    )
    assert code == 400 and "UTF-8" in reply["message"]
    code, history = await api(jp_fetch, "builds")
    assert code == 200 and history["total"] == 0


async def test_a_pipeline_builds_once_through_a_symlinked_folder_alias(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "real", {"a": "time.sleep(60)"})
    (jp_root_dir / "alias").symlink_to(jp_root_dir / "real", target_is_directory=True)
    first = await start_build(jp_fetch, pipeline)
    code, reply = await api(
        jp_fetch, "builds", method="POST", body={"pipeline": "alias/pipeline.yaml"}
    )
    assert code == 409 and reply["build_id"] == first, reply
    await api(jp_fetch, "builds", first, "cancel", method="POST")
    assert (await wait_for(jp_fetch, first))["state"] == "cancelled"


async def test_a_snapshot_is_serialised_once_per_event(jp_fetch, jp_root_dir, monkeypatch):
    """Polling clients get the snapshot serialised once per (build, seq), not per request
    (issue 10: 20 clients polling slowed a large build down)."""
    from nbpipe.server import views

    pipeline = write_functions(jp_root_dir, "p", {"a": write_text("a")})
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    serialised = []
    real = views.build
    monkeypatch.setattr(views, "build", lambda root, rec: serialised.append(rec) or real(root, rec))
    for _ in range(5):
        code, again = await api(jp_fetch, "builds", build["id"])
        assert code == 200 and again == build
    assert len(serialised) <= 1
