"""The lab extension as users get it: enabled where nbpipe is installed, and shipped prebuilt in
the wheel, so a fresh virtual environment without Node.js shows the panel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TOKEN, Lab, copy_example
from playwright.sync_api import expect

EXTENSION = "jupyterlab-nbpipe"


def labextension_list(python: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [python, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def assert_enabled(listing: str) -> None:
    line = next((row for row in listing.splitlines() if EXTENSION in row), None)
    assert line is not None, listing
    assert "enabled" in line and "OK" in line, line
    assert "(python, nbpipe)" in line, line  # installed by the nbpipe Python package


def test_enabled_where_nbpipe_is_installed() -> None:
    assert_enabled(labextension_list(sys.executable))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """nbpipe's wheel: $NBPIPE_WHEEL, or built here (this build needs Node.js)."""
    given = os.environ.get("NBPIPE_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
    )
    return next(out.glob("nbpipe-*.whl"))


def test_wheel_in_a_fresh_venv_without_node(wheel: Path, tmp_path: Path, browser) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # Nothing but the venv on PATH: no node, no jlpm, no system Python tools.
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", str(tmp_path)), "LANG": "C.UTF-8"}
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    assert shutil.which("node", path=env["PATH"]) is None
    python = str(bin_dir / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(wheel), "jupyterlab>=4,<5"],
        check=True,
        env=env,
    )
    shared = venv / "share" / "jupyter" / "labextensions" / EXTENSION
    assert (shared / "package.json").is_file()
    assert (shared / "install.json").is_file()
    assert_enabled(labextension_list(python, env))

    # The venv's JupyterLab (no Node.js anywhere on its PATH) shows the panel and its tasks.
    root = copy_example(tmp_path / "root")
    lab = Lab(root, tmp_path / "work", python=python, env=env).start()
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
        page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbpipe-panel"]').click()
        panel = page.locator("#nbpipe-panel")
        expect(panel.get_by_label("Pipeline", exact=True)).to_have_value(
            "pipeline.yaml", timeout=60_000
        )
        expect(panel.locator(".jp-nbpipe-task")).to_have_count(5, timeout=60_000)
        expect(panel.get_by_role("button", name="Build pipeline", exact=True)).to_be_enabled()
    finally:
        context.close()
        lab.stop()
