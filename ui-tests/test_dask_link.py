"""The panel links the Dask dashboard while a build runs on Dask, and keeps it in the history.

The pipeline (``executor: dask``: the build starts its own LocalCluster) has one task that waits
for a marker file, so the build is running for as long as the test needs it to.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from conftest import Lab
from playwright.sync_api import Page, expect
from test_panel import open_lab, panel

WAITING_TASK = '''
import time
from pathlib import Path

RELEASE = Path(__file__).with_name("release")


def wait_for_release(product):
    """Runs until the test writes the release marker (ten minutes at most)."""
    deadline = time.monotonic() + 600
    while not RELEASE.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{RELEASE} never appeared")
        time.sleep(0.05)
    Path(str(product)).write_text("released")
'''

PIPELINE = """\
executor: dask
tasks:
  - source: waiting.wait_for_release
    product: output/released.txt
"""


def test_the_dask_dashboard_is_linked_while_a_dask_build_runs(
    page: Page, lab: Lab, shots: Path
) -> None:
    (lab.root / "waiting.py").write_text(WAITING_TASK)
    (lab.root / "pipeline.yaml").write_text(PIPELINE)
    open_lab(page, lab)
    status = panel(page).locator(".jp-nbpipe-status")
    link = status.get_by_role("link", name="Dask dashboard")
    expect(link).to_have_count(0)

    panel(page).get_by_role("button", name="Build pipeline", exact=True).click()
    expect(status).to_have_attribute("data-build-state", "running", timeout=60_000)
    expect(link).to_be_visible(timeout=60_000)
    href = link.get_attribute("href") or ""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", href), href
    with urllib.request.urlopen(href, timeout=30) as response:  # the build's live dashboard
        assert response.status == 200
    page.screenshot(path=str(shots / "dask-dashboard-link.png"))

    (lab.root / "release").write_text("")
    expect(status).to_have_attribute("data-build-state", "success", timeout=120_000)
    expect(link).to_have_count(0)  # the build's cluster is gone with it
    entry = panel(page).locator(".jp-nbpipe-history-item").first
    expect(entry.get_by_role("link", name="Dask dashboard")).to_have_attribute("href", href)
