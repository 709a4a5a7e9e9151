"""How a build that failed badly is told (issue 10): a huge failure message is cut, not lost; a
build process that crashed names its signal."""

from __future__ import annotations

import pytest
from server_helpers import start_build, wait_for, write_functions

pytestmark = pytest.mark.timeout(120)


async def test_a_failure_with_a_40_mb_message_is_cut_not_lost(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "p", {"huge": "raise ValueError('x' * 40_000_000)"})
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "failed", build["message"]
    [task] = build["tasks"]
    assert task["status"] == "failed"
    failure = task["failure"]
    assert failure["type"] == "ValueError"
    assert "characters cut" in failure["message"] and len(failure["message"]) < 1_000_000
    assert failure["message"].startswith("xxx") and failure["message"].endswith("xxx")
    assert "characters cut" in failure["traceback"] and len(failure["traceback"]) < 1_000_000


async def test_a_build_process_that_crashed_names_its_signal(jp_fetch, jp_root_dir):
    pipeline = write_functions(jp_root_dir, "p", {"crash": "import ctypes\nctypes.string_at(0)"})
    build = await wait_for(jp_fetch, await start_build(jp_fetch, pipeline))
    assert build["state"] == "error"
    assert "crashed (SIGSEGV)" in build["message"], build["message"]
    assert "out of memory" not in build["message"]
