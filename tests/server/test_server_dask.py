"""A build on a Dask cluster through the server: the dashboard link reaches the event bus, the
build's snapshot and the build history (the session's LocalCluster, reached by its address)."""

from __future__ import annotations

import pytest
from server_helpers import (
    SUMMARY_VALIDATOR,
    api,
    check_events,
    events_until_ended,
    kind,
    start_build,
    wait_for,
    write_functions,
    write_text,
)

pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(120)


async def test_the_dashboard_link_is_recorded_in_the_build_history(
    jp_fetch, jp_ws_fetch, jp_root_dir, dask_client
):
    link = dask_client.dashboard_link
    pipeline = write_functions(jp_root_dir, "dasked", {"a": write_text("a"), "b": write_text("b")})
    spec = jp_root_dir / pipeline
    executor = (
        "executor:\n  dotted_path: nbpipe.executors.Dask\n"
        f"  address: {dask_client.scheduler.address}\n"
    )
    spec.write_text(spec.read_text().replace("executor: serial\n", executor))

    ws = await jp_ws_fetch("api", "events", "subscribe")
    build_id = await start_build(jp_fetch, pipeline)
    events = await events_until_ended(ws, build_id)
    check_events(events)
    [started] = [e["event"] for e in events if kind(e) == "build_started"]
    assert started["dashboard"] == link

    build = await wait_for(jp_fetch, build_id)
    assert build["state"] == "success", build
    assert build["dashboard"] == link
    code, history = await api(jp_fetch, "builds")
    assert code == 200
    [summary] = [b for b in history["builds"] if b["id"] == build_id]
    SUMMARY_VALIDATOR.validate(summary)
    assert summary["dashboard"] == link
