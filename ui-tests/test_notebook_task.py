"""A task notebook in JupyterLab: its chip, its parameters in the kernel, builds from its toolbar.

One JupyterLab (fixture ``lab``) on a copy of ``example_notebooks/``. The file on disk must be
the same bytes after the notebook is opened, run with the task's parameters and saved: the
parameters go to the kernel, never into the document.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
from conftest import TOKEN, Lab
from playwright.sync_api import Page, expect
from test_panel import accept_kernel_dialog

BUILD_TIMEOUT = 240_000  # ms: notebooks on two shared cores, kernels included
#: The first GET tasks-of loads the pipeline in a child process (papermill imported): slow on a
#: loaded machine.
LOAD_TIMEOUT = 120_000


def build_upstream(spec: Path) -> None:
    """``make_raw_data``'s product, built by the CLI before the browser opens the notebook."""
    subprocess.run(
        [sys.executable, "-m", "nbpipe", "build", "-e", str(spec), "-p", "make_raw_data"],
        check=True,
        cwd=spec.parent,
        capture_output=True,
    )


def open_lab(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
    page.locator("#jp-main-dock-panel").wait_for()
    expect(page.locator("#filebrowser")).to_be_visible()


def file_item(page: Page, name: str):
    text = page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(name)}$"))
    return page.locator("#filebrowser .jp-DirListing-item", has=text)


def open_with(page: Page, name: str, factory: str) -> None:
    """Right-click ``name`` in the file browser, Open With, ``factory``."""
    file_item(page, name).click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Open With$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(factory)}$")).click()
    accept_kernel_dialog(page)


def notebook(page: Page):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def chip(page: Page):
    return notebook(page).locator(".jp-nbpipe-chip")


def run_all_and_save(page: Page) -> None:
    """Run → Run All Cells, wait until every code cell ran without an error, then save."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    prompts = notebook(page).locator(".jp-CodeCell .jp-InputPrompt")
    expect(prompts.last).to_have_text(re.compile(r"\[\d+\]:"), timeout=120_000)
    expect(notebook(page).locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0)
    expect(
        notebook(page).locator('[data-mime-type="application/vnd.jupyter.error"]')
    ).to_have_count(0)
    page.keyboard.press("Control+s")
    dirty = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current.jp-mod-dirty")
    expect(dirty).to_have_count(0)


def test_task_parameters_in_the_kernel_not_in_the_file(page: Page, lab: Lab, shots: Path) -> None:
    root = lab.root
    build_upstream(root / "pipeline.yaml")
    original = (root / "clean.py").read_bytes()
    raw_row = (root / "output" / "raw.csv").read_text().splitlines()[1]

    open_lab(page, lab)
    open_with(page, "clean.py", "Jupytext Notebook")
    # The chip says which task this is; the kernel got its parameters when it started.
    expect(chip(page)).to_have_attribute("data-task", "clean", timeout=LOAD_TIMEOUT)
    expect(chip(page).locator(".jp-nbpipe-chip-pipeline")).to_have_text("pipeline.yaml")
    expect(chip(page)).to_have_attribute("data-loaded", "clean", timeout=60_000)
    expect(chip(page).locator(".jp-nbpipe-chip-state")).to_have_text(
        re.compile("outdated|never built")
    )
    toolbar = notebook(page).locator(".jp-NotebookPanel-toolbar")
    toolbar.screenshot(path=str(shots / "toolbar-chip.png"))

    # A new cell reads the upstream product by the path the kernel was given.
    notebook(page).locator(".jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type("print(open(upstream['make_raw_data']).read().splitlines()[1])")
    page.keyboard.press("Control+Enter")
    output = notebook(page).locator(".jp-Cell").last.locator(".jp-OutputArea-output")
    expect(output).to_have_text(raw_row)
    # That cell goes again; running every cell (the parameters cell too) works as in a build.
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    page.keyboard.press("d")
    expect(notebook(page).locator(".jp-Cell").last.locator(".jp-OutputArea-output")).to_have_count(
        0
    )
    run_all_and_save(page)
    expect(notebook(page)).to_contain_text("wrote ")
    assert (root / "output" / "clean.csv").exists()  # product['data'], as injected
    assert (root / "clean.py").read_bytes() == original

    # A restarted kernel gets them again, before the first cell sent to it.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel…$")).click()
    page.locator(".jp-Dialog").get_by_role("button", name="Confirm Kernel Restart").click()
    notebook(page).locator(".jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    probe = notebook(page).locator(".jp-Cell").last
    set_code(page, probe, "print(sorted(upstream))")
    expect(probe.locator(".jp-OutputArea-output")).to_have_text("['make_raw_data']")

    # "Load task parameters" runs them on demand (here after the kernel lost them).
    set_code(page, probe, "del upstream; print('gone')")
    expect(probe.locator(".jp-OutputArea-output")).to_have_text("gone")
    loads = int(chip(page).get_attribute("data-loads"))
    notebook(page).get_by_role("button", name="Load task parameters").click()
    expect(chip(page)).to_have_attribute("data-loads", str(loads + 1), timeout=LOAD_TIMEOUT)
    expect(chip(page)).to_have_attribute("data-loaded", "clean")
    set_code(page, probe, "print(sorted(upstream))")
    expect(probe.locator(".jp-OutputArea-output")).to_have_text("['make_raw_data']")


def set_code(page: Page, cell, code: str) -> None:
    """Replace ``cell``'s code and run it in place (Ctrl+Enter)."""
    cell.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.type(code)
    page.keyboard.press("Control+Enter")


def test_an_ipynb_task_saves_without_injected_cell(page: Page, lab: Lab) -> None:
    root = lab.root
    variant = root / "variant"
    variant.mkdir()
    shutil.copyfile(root / "tasks.py", variant / "tasks.py")
    jupytext.write(jupytext.read(root / "clean.py"), variant / "clean.ipynb")
    spec = (root / "pipeline.yaml").read_text().split("  - source: by_region.py")[0]
    (variant / "pipeline.yaml").write_text(
        spec.replace("source: clean.py", "source: clean.ipynb").replace("parallel", "serial")
    )
    build_upstream(variant / "pipeline.yaml")
    original = json.loads((variant / "clean.ipynb").read_text())

    open_lab(page, lab)
    file_item(page, "variant").dblclick()
    file_item(page, "clean.ipynb").dblclick()
    accept_kernel_dialog(page)
    expect(chip(page)).to_have_attribute("data-task", "clean", timeout=LOAD_TIMEOUT)
    expect(chip(page).locator(".jp-nbpipe-chip-pipeline")).to_have_text("variant/pipeline.yaml")
    expect(chip(page)).to_have_attribute("data-loaded", "clean", timeout=60_000)
    run_all_and_save(page)

    saved_text = (variant / "clean.ipynb").read_text()
    saved = json.loads(saved_text)
    tags = [cell["metadata"].get("tags", []) for cell in saved["cells"]]
    assert not any("injected-parameters" in cell_tags for cell_tags in tags)
    assert "papermill" not in saved["metadata"]
    assert [c["source"] for c in saved["cells"]] == [c["source"] for c in original["cells"]]
    assert str(root) not in saved_text  # no absolute path went into the file
    assert (variant / "output" / "clean.csv").exists()


def test_build_up_to_here_from_the_toolbar(page: Page, lab: Lab) -> None:
    open_lab(page, lab)
    open_with(page, "by_region.py", "Jupytext Notebook")
    expect(chip(page)).to_have_attribute("data-task", "by_region", timeout=LOAD_TIMEOUT)
    notebook(page).get_by_role("button", name="Build task").click()
    page.locator(
        ".jp-nbpipe-build-menu .lm-Menu-itemLabel", has_text=re.compile(r"^Build Up to Here$")
    ).click()
    # The chip follows the build through the panel's state, like the panel does.
    expect(chip(page)).to_have_attribute("data-state", "done", timeout=BUILD_TIMEOUT)
    expect(chip(page)).to_have_attribute("data-build", "success")
    builds = lab.api("GET", "nbpipe/api/builds?pipeline=pipeline.yaml")["builds"]
    assert len(builds) == 1
    record = lab.api("GET", f"nbpipe/api/builds/{builds[0]['id']}")
    assert record["targets"] == ["by_region"]
    assert {t["name"]: t["status"] for t in record["tasks"]} == {
        "make_raw_data": "executed",
        "clean": "executed",
        "by_region": "executed",
    }

    # "Build This Task", forced: only by_region runs; its upstream products are read as they are.
    notebook(page).get_by_role("button", name="Build task").click()
    page.locator(
        ".jp-nbpipe-build-menu .lm-Menu-itemLabel", has_text=re.compile(r"^Force-Build This Task$")
    ).click()
    # (Asked right after the first build's outcome, maybe before its process ended: it starts
    # once the pipeline is free, rather than being refused.)
    expect(chip(page)).not_to_have_attribute("data-build", "success")  # a new build
    expect(chip(page)).to_have_attribute("data-build", "success", timeout=BUILD_TIMEOUT)
    expect(chip(page)).to_have_attribute("data-state", "done")
    builds = lab.api("GET", "nbpipe/api/builds?pipeline=pipeline.yaml")["builds"]
    assert len(builds) == 2
    record = lab.api("GET", f"nbpipe/api/builds/{builds[0]['id']}")
    assert record["force"] is True
    assert {t["name"]: t["status"] for t in record["tasks"]} == {"by_region": "executed"}


GRID_NOTEBOOK = """# %% tags=["parameters"]
upstream = None
product = None
model = None

# %%
print(model)
"""


def test_a_grid_notebook_picks_the_task_whose_parameters_load(page: Page, lab: Lab) -> None:
    folder = lab.root / "grid"
    folder.mkdir()
    (folder / "fit.py").write_text(GRID_NOTEBOOK)
    (folder / "pipeline.yaml").write_text(
        "tasks:\n"
        "  - source: fit.py\n"
        "    name: fit-[[model]]\n"
        "    product: out/fit.ipynb\n"
        "    grid: {model: [ridge, lasso]}\n"
    )
    open_lab(page, lab)
    file_item(page, "grid").dblclick()
    open_with(page, "fit.py", "Jupytext Notebook")
    picker = chip(page).get_by_label("Task whose parameters the kernel gets")
    expect(picker).to_have_value("fit-ridge", timeout=LOAD_TIMEOUT)
    expect(picker.locator("option")).to_have_text(["fit-ridge", "fit-lasso"])
    expect(chip(page)).to_have_attribute("data-loaded", "fit-ridge", timeout=60_000)
    cell = notebook(page).locator(".jp-CodeCell").last
    set_code(page, cell, "print(model)")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("ridge")

    picker.select_option("fit-lasso")
    expect(chip(page)).to_have_attribute("data-loaded", "fit-lasso")
    set_code(page, cell, "print(model)")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("lasso")
