"""The event contract and the Python reducer: schema, round trips, rules, golden streams."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from nbpipe.engine import schema
from nbpipe.engine.events import (
    EVENT_TYPES,
    BuildEnded,
    BuildFinished,
    BuildOutcome,
    BuildStarted,
    TaskFailed,
    TaskFailure,
    TaskQueued,
    TaskStarted,
    UnknownEvent,
    event_from_dict,
)
from nbpipe.engine.state import BuildState, TaskStatus

REPO = Path(__file__).resolve().parent.parent
GOLDEN = sorted((REPO / "tests" / "golden").glob("*.json"))

FAILURE = TaskFailure(
    task="clean",
    type="KeyError",
    message="'units'",
    traceback="Traceback ...",
    source="clean.py",
    cell=3,
    line=2,
    code="row['units']",
    partial_notebook="out/clean.failed.ipynb",
)


def test_the_committed_schema_is_the_generated_one():
    assert schema.main(["--check"]) == 0, "run python -m nbpipe.engine.schema and commit"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda path: path.stem)
def test_golden_streams_reduce_to_their_recorded_state(path):
    recorded = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(json.loads(schema.SCHEMA_PATH.read_text()))
    state = BuildState()
    for event in recorded["events"]:
        validator.validate(event)
        state.apply(event_from_dict(event))
    assert state.to_dict() == recorded["state"]
    assert all(
        task["status"] in {s.value for s in TaskStatus} for task in recorded["state"]["tasks"]
    )


def test_the_golden_streams_cover_every_event_kind():
    kinds = {event["event"] for path in GOLDEN for event in json.loads(path.read_text())["events"]}
    assert kinds == set(EVENT_TYPES)


def test_events_round_trip_through_their_dict_form():
    events = [
        BuildStarted(dag="d", executor="Serial()", tasks=["a"], to_run=["a"]),
        TaskFailed(task="a", elapsed=1.5, failure=FAILURE),
        BuildFinished(outcome=BuildOutcome.FAILED, failed=["a"]),
    ]
    for event in events:
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert event_from_dict({**events[0].to_dict(), "added_later": 1}) == events[0]


def test_unknown_or_malformed_events_are_refused():
    with pytest.raises(UnknownEvent, match="not an nbpipe event"):
        event_from_dict({"event": "header"})
    with pytest.raises(UnknownEvent, match="malformed task_queued"):
        event_from_dict({"event": "task_queued", "time": 1.0})


def test_a_failure_summarises_and_tells_its_whole_story():
    assert FAILURE.summary() == "KeyError: 'units' (cell 4, line 2)"
    text = FAILURE.text()
    assert text.startswith("clean.py, cell 4, line 2: KeyError: 'units'\n    row['units']")
    assert "Partially executed notebook: out/clean.failed.ipynb" in text
    assert text.endswith("Traceback ...")
    assert "Traceback" not in FAILURE.text(with_traceback=False)


def test_build_ended_settles_what_the_dead_process_left_unsettled():
    state = BuildState()
    state.apply(
        BuildStarted(dag="d", executor="Serial()", tasks=["a", "b", "c"], to_run=["b", "c"])
    )
    state.apply(TaskQueued(task="b", reasons=["forced"]))
    state.apply(TaskStarted(task="b", time=10.0))
    changed = state.apply(BuildEnded(state="error", message="killed", exit_code=-9, time=12.0))
    assert [task.name for task in changed] == ["a", "b", "c"]
    assert state.state == "error" and state.message == "killed" and state.exit_code == -9
    assert state.tasks["b"].status is TaskStatus.CANCELLED and state.tasks["b"].ended == 12.0
    assert state.tasks["c"].detail == "the build stopped" and state.tasks["c"].ended is None


def test_state_survives_its_dict_form():
    state = BuildState()
    state.apply(BuildStarted(dag="d", executor="Serial()", tasks=["a"], to_run=["a"]))
    state.apply(TaskFailed(task="a", elapsed=1.0, failure=FAILURE))
    assert BuildState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_the_transition_table_exists_once_in_python():
    """Nothing but the reducer maps events to task statuses (docs/architecture.md)."""
    sources = [path for path in (REPO / "nbpipe").rglob("*.py")]
    tables = [
        path.relative_to(REPO).as_posix()
        for path in sources
        if re.search(r"^(STATUS_AFTER|FINAL_STATUSES|FINAL_TASK_STATES)\b", path.read_text(), re.M)
    ]
    assert tables == ["nbpipe/engine/state.py"]
