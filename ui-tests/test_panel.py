"""The Pipelines panel end to end: build the example pipeline, open its products, break a notebook.

One JupyterLab (fixture ``lab``) on a copy of ``example_notebooks/``; every step is what a user
does with the mouse or the keyboard, and every check reads what the panel shows.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import TOKEN, Lab
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

TASKS = ["make_raw_data", "clean", "by_region", "monthly_trend", "report"]
BUILD_TIMEOUT = 240_000  # ms: five notebooks on two cores, kernels included


def open_lab(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
    page.locator("#jp-main-dock-panel").wait_for()
    # JupyterLab opens its launcher once the reset layout is restored, and the launcher takes
    # the keyboard focus: wait for it, or it may close a command palette opened before.
    page.locator(".jp-Launcher").wait_for()
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbpipe-panel"]')
    expect(tab).to_be_visible()
    tab.click()
    panel(page).wait_for()
    widen_sidebar(page, 400)


def widen_sidebar(page: Page, width: int) -> None:
    """Drags the left sidebar's edge so the panel is ``width`` pixels wide."""
    box = panel(page).bounding_box()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    grip = handle.bounding_box()
    if not box or not grip:
        return
    y = grip["y"] + grip["height"] / 2
    page.mouse.move(grip["x"] + grip["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + width, y, steps=5)
    page.mouse.up()


def panel(page: Page):
    return page.locator("#nbpipe-panel")


def task(page: Page, name: str):
    return panel(page).locator(f'.jp-nbpipe-task[data-task="{name}"]')


def accept_kernel_dialog(page: Page) -> None:
    """A percent script without kernel metadata asks for a kernel once its notebook's session is
    ready: accept. Waits for that moment (the dialog, or a Python kernel already chosen), not a fixed
    time; a script opened in the editor (no jupytext) has no session and asks nothing."""
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    editor = page.locator(".jp-FileEditor:not(.lm-mod-hidden)")
    expect(notebook.or_(editor).first).to_be_visible(timeout=30_000)
    if not notebook.count():
        return
    dialog = page.locator(".jp-Dialog")
    chosen = notebook.locator(".jp-Toolbar-kernelName", has_text="Python")
    expect(dialog.or_(chosen).first).to_be_visible(timeout=60_000)
    if dialog.count():
        dialog.get_by_role("button", name="Select").click()
        expect(dialog).to_have_count(0)


def expect_states(page: Page, states: dict[str, str], timeout: float = BUILD_TIMEOUT) -> None:
    for name, state in states.items():
        expect(task(page, name)).to_have_attribute("data-state", state, timeout=timeout)


def test_build_open_products_then_fail(page: Page, lab: Lab, shots: Path) -> None:
    open_lab(page, lab)
    picker = panel(page).get_by_label("Pipeline", exact=True)
    expect(picker).to_have_value("pipeline.yaml")
    for name in TASKS:
        expect(task(page, name)).to_be_visible()
    # The DAG's layers: make_raw_data, clean, {by_region, monthly_trend}, report.
    layers = panel(page).locator(".jp-nbpipe-layer")
    expect(layers).to_have_count(4)
    expect(layers.nth(2).locator(".jp-nbpipe-task")).to_have_count(2)
    expect(task(page, "report")).to_contain_text("by_region, monthly_trend")

    build = panel(page).get_by_role("button", name="Build pipeline", exact=True)
    cancel = panel(page).get_by_role("button", name="Cancel the build")
    expect(build).to_be_enabled()
    expect(cancel).to_be_disabled()
    build.click()

    # Mid-build: Build is disabled, Cancel is enabled, tasks go through running with a clock.
    expect(cancel).to_be_enabled(timeout=30_000)
    expect(build).to_be_disabled()
    expect_states(page, {"make_raw_data": "done"}, timeout=60_000)
    running = panel(page).locator('.jp-nbpipe-task[data-state="running"]')
    expect(running.first).to_be_visible(timeout=60_000)
    expect(running.first.locator(".jp-nbpipe-task-state")).to_contain_text(
        re.compile(r"running · ")
    )
    # For the screenshot, a moment with tasks done, running and waiting (when the clock allows).
    expect(task(page, "by_region")).to_have_attribute(
        "data-state", re.compile("running|done|failed"), timeout=60_000
    )
    # ... once its row has rendered that state, with its clock.
    expect(task(page, "by_region").locator(".jp-nbpipe-task-state")).to_contain_text(" · ")
    panel(page).screenshot(path=str(shots / "panel-mid-build.png"))
    page.screenshot(path=str(shots / "lab-mid-build.png"))

    expect_states(page, dict.fromkeys(TASKS, "done"))
    status = panel(page).locator(".jp-nbpipe-status")
    expect(status).to_contain_text("Last build succeeded")
    expect(build).to_be_enabled()
    expect(cancel).to_be_disabled()
    history = panel(page).locator(".jp-nbpipe-history-item")
    expect(history).to_have_count(1)
    expect(history.first).to_have_attribute("data-state", "success")
    panel(page).screenshot(path=str(shots / "panel-built.png"))

    # A task's name opens its source notebook; its .ipynb product opens in JupyterLab...
    task(page, "clean").locator(".jp-nbpipe-task-name").click()
    dock_tabs = page.locator("#jp-main-dock-panel .lm-TabBar-tab")
    expect(dock_tabs.filter(has_text="clean.py")).to_have_count(1)
    accept_kernel_dialog(page)
    task(page, "report").locator('[data-product="output/report.ipynb"]').click()
    expect(dock_tabs.filter(has_text="report.ipynb")).to_have_count(1)
    current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    expect(current).to_contain_text("report.ipynb")
    expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first).to_be_visible()
    page.screenshot(path=str(shots / "lab-product-opened.png"))
    # ... and its .html report in a new browser tab, through the server's files URL.
    with page.context.expect_page() as opened:
        task(page, "report").locator('[data-product="output/report.html"]').click()
    report = opened.value
    report.wait_for_load_state()
    assert "/files/output/report.html" in report.url
    expect(report.locator("body")).to_contain_text("by_region")
    report.close()

    # Break a notebook: clean fails, its downstream tasks are aborted, make_raw_data is skipped.
    clean = lab.root / "clean.py"
    clean.write_text(
        clean.read_text() + '\n# %%\nraise ValueError("broken on purpose by the UI test")\n'
    )
    expect(build).to_be_enabled()
    build.focus()  # the keyboard works as well as the mouse
    page.keyboard.press("Enter")
    expect_states(
        page,
        {
            "clean": "failed",
            "by_region": "aborted",
            "monthly_trend": "aborted",
            "report": "aborted",
            "make_raw_data": "skipped",
        },
    )
    failure = task(page, "clean").locator(".jp-nbpipe-failure")
    expect(failure).to_contain_text("ValueError: broken on purpose by the UI test")
    expect(failure).to_contain_text(re.compile(r"cell \d+"))
    failure.locator("summary").click()  # the traceback unfolds
    expect(failure.locator("pre")).to_contain_text("ValueError")
    expect(status).to_contain_text("Last build failed")
    expect(history).to_have_count(2)
    expect(history.first).to_have_attribute("data-state", "failed")
    panel(page).screenshot(path=str(shots / "panel-failed.png"))

    # The notebook that belongs to the pipeline has a "Build pipeline" toolbar button.
    toolbar_button = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar .jp-nbpipe-toolbar-build"
    )
    expect(toolbar_button).to_be_visible()

    # The dark theme: the panel follows JupyterLab's CSS variables.
    page.get_by_role("menuitem", name="Settings").click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).hover()
    page.locator(".lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    # The theme's stylesheet is applied, not only the attribute: the panel's background is dark.
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('#nbpipe-panel');
            const [r, g, b] = getComputedStyle(panel).backgroundColor.match(/\\d+/g).map(Number);
            return r + g + b < 3 * 96;
        }"""
    )
    panel(page).screenshot(path=str(shots / "panel-failed-dark.png"))


def run_from_palette(page: Page, label: str) -> None:
    """Runs a command from the command palette (Ctrl+Shift+C, else View → Command Palette)."""
    panel(page).locator(".jp-nbpipe-title").click()  # the page has the keyboard focus
    page.keyboard.press("Control+Shift+C")
    field = page.locator(".lm-CommandPalette input")
    try:
        field.wait_for(state="visible", timeout=5_000)
    except PlaywrightTimeout:
        page.get_by_role("menuitem", name="View").click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Command Palette").first.click()
        field.wait_for(state="visible")
    field.fill(label)
    label_exactly = re.compile(rf"^{re.escape(label)}$")
    item = page.locator(".lm-CommandPalette-item:not(.lm-mod-disabled)").filter(
        has=page.locator(".lm-CommandPalette-itemLabel", has_text=label_exactly)
    )
    item.first.click()


def slow_down(root: Path, task: str = "clean", seconds: int = 120) -> None:
    """Makes a task's notebook run long enough to be cancelled or cut short."""
    source = root / f"{task}.py"
    source.write_text(source.read_text() + f"\n# %%\nimport time\n\ntime.sleep({seconds})\n")


def test_context_menu_build_then_cancel(page: Page, lab: Lab, shots: Path) -> None:
    slow_down(lab.root)
    open_lab(page, lab)
    expect(task(page, "clean")).to_be_visible()
    # "Build pipeline" from the file browser's context menu on pipeline.yaml
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
    item = page.locator('.jp-DirListing-item[title^="Name: pipeline.yaml"]')
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Build Pipeline").click()
    expect(panel(page)).to_be_visible()  # the panel comes forward
    expect_states(page, {"clean": "running"}, timeout=60_000)
    expect_states(page, {"make_raw_data": "done", "report": "waiting"}, timeout=5_000)

    cancel = panel(page).get_by_role("button", name="Cancel the build")
    build = panel(page).get_by_role("button", name="Build pipeline", exact=True)
    expect(build).to_be_disabled()
    cancel.focus()
    page.keyboard.press("Enter")
    status = panel(page).locator(".jp-nbpipe-status")
    expect(status).to_contain_text("Last build cancelled", timeout=60_000)
    expect_states(
        page,
        {
            "make_raw_data": "done",
            "clean": "cancelled",
            "by_region": "cancelled",
            "monthly_trend": "cancelled",
            "report": "cancelled",
        },
        timeout=10_000,
    )
    expect(build).to_be_enabled()
    expect(cancel).to_be_disabled()
    history = panel(page).locator(".jp-nbpipe-history-item")
    expect(history.first).to_have_attribute("data-state", "cancelled")
    panel(page).screenshot(path=str(shots / "panel-cancelled.png"))


def test_server_restart_mid_build_is_shown(page: Page, lab: Lab, shots: Path) -> None:
    slow_down(lab.root)
    open_lab(page, lab)
    expect(task(page, "clean")).to_be_visible()
    run_from_palette(page, "Build Pipeline")
    expect_states(page, {"clean": "running"}, timeout=60_000)

    lab.kill()  # the server dies: no event will say what became of the build
    status = panel(page).locator(".jp-nbpipe-status")
    expect(status).to_have_attribute("data-connected", "false", timeout=30_000)
    expect(status).to_contain_text("Connection to the server lost")
    panel(page).screenshot(path=str(shots / "panel-server-gone.png"))

    lab.start()  # same port, same history database
    expect(status).to_have_attribute("data-build-state", "interrupted", timeout=60_000)
    expect(status).to_contain_text("Last build interrupted")
    expect(status).to_contain_text("the server stopped")
    expect_states(page, {"make_raw_data": "done", "clean": "cancelled"}, timeout=10_000)
    expect(task(page, "clean")).to_contain_text("the server stopped")
    # The status is read again after that end: clean never got built, make_raw_data did.
    expect(task(page, "clean")).to_contain_text("now: never built", timeout=30_000)
    expect(task(page, "make_raw_data")).not_to_contain_text("now:")
    expect(panel(page).get_by_role("button", name="Build pipeline", exact=True)).to_be_enabled()
    panel(page).screenshot(path=str(shots / "panel-server-restarted.png"))
