"""Browser tests of the JupyterLab panel: a real JupyterLab, a real headless Chromium.

JupyterLab runs as a child process on a free localhost port, with the example pipeline copied to a
temporary root folder (the repository's copy is never touched) and its own config, settings,
workspace and nbpipe state folders. Chromium is Debian's (``/usr/bin/chromium``, or
``$NBPIPE_CHROMIUM``), driven by Playwright through its executable path: no browser download.

Screenshots go to ``$NBPIPE_UI_SCREENSHOTS`` or ``ui-tests/screenshots/`` (see ``shots``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "example_notebooks"
TOKEN = "nbpipe-ui-test-token"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("NBPIPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "Chromium is missing: apt-get install -y chromium (or set NBPIPE_CHROMIUM)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_example(root: Path) -> Path:
    """The example pipeline, without its built products, in ``root``."""
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns("output", "__pycache__", ".ipynb_checkpoints", "*.metadata"),
        dirs_exist_ok=True,
    )
    return root


class Lab:
    """``jupyter lab`` in a child process; ``stop()`` is a clean shutdown, ``kill()`` is not."""

    def __init__(self, root: Path, workdir: Path, python: str = sys.executable, env=None):
        self.root = root
        self.workdir = workdir
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env if env is not None else os.environ)
        for name, folder in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
        ):
            (workdir / folder).mkdir(parents=True, exist_ok=True)
            self.env[name] = str(workdir / folder)
        self.env.pop("NBPIPE_ENTRY_POINT", None)
        # No "get notified about Jupyter news?" toast over the screenshots (and no fetch).
        for plugin, settings in (("apputils-extension/notification", {"fetchNews": "false"}),):
            path = workdir / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "lab.log"

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--NbpipeApp.state_dir={self.workdir / 'state'}",
            "--NbpipeApp.cancel_grace_period=2",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
        ]

    def start(self, timeout: float = 90) -> Lab:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                self.api("GET", "api/status")
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not start in {timeout} s:\n{self.log()}")

    def api(self, method: str, path: str, body=None):
        request = urllib.request.Request(
            f"{self.url}/{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """A clean stop (SIGTERM, like Ctrl-C twice): running builds end ``interrupted``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture(scope="session")
def shots() -> Path:
    """The folder the tests write their screenshots to."""
    folder = Path(os.environ.get("NBPIPE_UI_SCREENSHOTS") or HERE / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    root = copy_example(tmp_path / "root")
    server = Lab(root, tmp_path / "work").start()
    try:
        yield server
    finally:
        server.stop()
        print(f"--- jupyter lab log ({server.log_path}) ---\n{server.log()}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(request, browser, lab: Lab, shots: Path):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.set_default_timeout(30_000)
    from playwright.sync_api import expect

    # Assertions wait for what they expect (a state, a dialog, a theme) up to 15 s rather than
    # Playwright's 5 s: two shared cores are slow while a build runs.
    expect.set_options(timeout=15_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(shots / f"FAILED-{request.node.name}.png"))
    context.close()
    errors = [m for m in messages if "nbpipe" in m.lower() or m.startswith("pageerror")]
    if errors:
        print("--- browser console ---\n" + "\n".join(errors))
