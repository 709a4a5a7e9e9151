"""A history database that cannot be used never disables the extension (issue 10): a corrupted
one is moved aside (kept, named) and a fresh history starts; a state directory that is a file or
a database of a newer schema leaves the extension answering without a history. Either way the
API says so (``notices`` of GET pipelines)."""

from __future__ import annotations

import os
import sqlite3

import pytest
from server_helpers import api, start_build, wait_for, write_functions, write_text

from nbpipe.server.store import Store

pytestmark = pytest.mark.timeout(60)


def a_history(path) -> None:
    """A real history of some pages (builds with long logs)."""
    store = Store(path, "/elsewhere")
    row = {"state": "success", "dag": None, "executor": None, "to_run": "[]", "outcome": None}
    for number in range(40):
        store.create_build(f"{number:032x}", "p/pipeline.yaml", False, [], 1.0, "x", row)
        store.update_build(f"{number:032x}", log="log line\n" * 200)
    store.close()


def corrupt(path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"this is not a database\n" * 1000)
        return
    a_history(path)
    size = path.stat().st_size
    assert size > 16 * 4096
    if how == "malformed":
        with open(path, "r+b") as file:  # pages 2 to 9 overwritten: b-tree pages are garbage
            file.seek(4096)
            file.write(b"\xa5" * 8 * 4096)
    else:  # truncated
        os.truncate(path, size // 2)


@pytest.fixture(params=["garbage", "malformed", "truncated"])
def corrupted(request, state_dir):
    state_dir.mkdir()
    corrupt(state_dir / "builds.sqlite", request.param)
    return request.param


@pytest.fixture
def jp_server_config(corrupted, state_dir):
    return {
        "ServerApp": {"jpserver_extensions": {"nbpipe.server": True}},
        "NbpipeApp": {"state_dir": str(state_dir)},
    }


async def test_a_corrupted_history_is_moved_aside_and_a_fresh_one_starts(
    jp_fetch, jp_root_dir, state_dir
):
    pipeline = write_functions(jp_root_dir, "p", {"a": write_text("a")})
    code, listing = await api(jp_fetch, "pipelines")
    assert code == 200, listing
    assert [row["path"] for row in listing["pipelines"]] == [pipeline]
    [notice] = listing["notices"]
    kept = [
        name
        for name in os.listdir(state_dir)
        if name.startswith("builds.sqlite.corrupt-") and not name.endswith(("-wal", "-shm"))
    ]
    assert len(kept) == 1, os.listdir(state_dir)
    assert notice["level"] == "warning"
    assert "corrupt" in notice["message"] and kept[0] in notice["message"]
    # The history works again, from scratch.
    code, page = await api(jp_fetch, "builds")
    assert code == 200 and page["total"] == 0
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "success"
    code, page = await api(jp_fetch, "builds")
    assert page["total"] == 1


class TestNoHistory:
    @pytest.fixture(params=["file", "newer"])
    def corrupted(self, request, state_dir):
        if request.param == "file":
            state_dir.write_text("a file where the state folder should be\n")
            return "is not a folder"
        state_dir.mkdir()
        db = sqlite3.connect(state_dir / "builds.sqlite")
        db.execute("PRAGMA user_version=99")
        db.close()
        return "newer nbpipe"

    async def test_the_extension_answers_and_says_why_there_is_no_history(
        self, jp_fetch, jp_root_dir, state_dir, corrupted
    ):
        pipeline = write_functions(jp_root_dir, "p", {"a": write_text("a")})
        code, listing = await api(jp_fetch, "pipelines")
        assert code == 200, listing
        [notice] = listing["notices"]
        assert notice["level"] == "error"
        assert corrupted in notice["message"] and str(state_dir) in notice["message"]
        # Builds still run; they are kept in memory until the server stops.
        build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
        assert build["state"] == "success"
        if corrupted == "newer nbpipe":  # the newer history is left alone
            db = sqlite3.connect(state_dir / "builds.sqlite")
            assert db.execute("PRAGMA user_version").fetchone()[0] == 99
            db.close()
