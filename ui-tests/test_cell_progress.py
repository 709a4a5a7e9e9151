"""The panel follows a running notebook cell by cell: its task row shows the cell it is in (and
its first line), the counter advances as the cells run, and its recent output unfolds below it.

The notebook's cells wait on marker files that the test creates: the counter is read from the DOM
while a cell is known to be waiting, never after a sleep.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import Lab
from playwright.sync_api import Page, expect
from test_panel import open_lab, panel, task


def waiting_pipeline(root: Path) -> dict[str, Path]:
    """``cells/pipeline.yaml``: one notebook whose cells 2 and 3 each wait for a marker file."""
    folder = root / "cells"
    folder.mkdir()
    markers = {name: folder / f"{name}.marker" for name in ("release2", "release3")}
    (folder / "pipeline.yaml").write_text(
        "executor: serial\ntasks:\n  - source: waits.py\n    product: output/waits.ipynb\n"
    )
    wait = "while not pathlib.Path({!r}).exists():\n    time.sleep(0.05)"
    (folder / "waits.py").write_text(
        textwrap.dedent(
            """\
            # %% tags=["parameters"]
            product = None

            # %%
            import pathlib, time
            print("waiting for the test", flush=True)
            {wait2}

            # %%
            print("cell three", flush=True)
            {wait3}

            # %%
            done = True
            """
        ).format(
            wait2=wait.format(str(markers["release2"])),
            wait3=wait.format(str(markers["release3"])),
        )
    )
    return markers


def test_the_cell_counter_advances_in_the_panel(page: Page, lab: Lab, shots: Path) -> None:
    markers = waiting_pipeline(lab.root)
    open_lab(page, lab)
    picker = panel(page).get_by_label("Pipeline", exact=True)
    expect(picker.locator('option[value="cells/pipeline.yaml"]')).to_have_count(1, timeout=30_000)
    picker.select_option("cells/pipeline.yaml")
    row = task(page, "waits")
    expect(row).to_be_visible()
    panel(page).get_by_role("button", name="Build pipeline", exact=True).click()

    cell = row.locator(".jp-nbpipe-task-cell")
    try:
        expect(cell).to_contain_text("cell 2/4 · import pathlib, time", timeout=120_000)
        output = row.locator(".jp-nbpipe-task-output")
        output.locator("summary").click()
        expect(output.locator("pre")).to_contain_text("waiting for the test")
        page.screenshot(path=str(shots / "cell-progress.png"))

        markers["release2"].touch()
        expect(cell).to_contain_text('cell 3/4 · print("cell three", flush=True)')
        expect(output.locator("pre")).to_contain_text("cell three")
    finally:
        for marker in markers.values():
            marker.touch()
    expect(row).to_have_attribute("data-state", "done", timeout=120_000)
    expect(cell).to_have_count(0)  # a finished task shows no running cell
