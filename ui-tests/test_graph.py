"""The Pipelines panel's graph view end to end: the example pipeline drawn with its edges, its
nodes following a build live (a failed notebook red, its downstream tasks aborted), the context
menu's builds, and a 200-task grid pipeline laid out without overlapping nodes, folded and not.

Every check reads what the page shows (the SVG nodes' classes, states and boxes); nothing waits
a fixed time.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Lab
from playwright.sync_api import Page, expect
from test_panel import BUILD_TIMEOUT, TASKS, accept_kernel_dialog, open_lab, panel

# example_notebooks/pipeline.yaml's DAG (its header draws it; the notebooks' parameters cells
# declare it): make_raw_data -> clean -> {by_region, monthly_trend} -> report.
EXAMPLE_EDGES = {
    ("make_raw_data", "clean"),
    ("clean", "by_region"),
    ("clean", "monthly_trend"),
    ("by_region", "report"),
    ("monthly_trend", "report"),
}
GRID_SIZE = 200

GRID_TASKS = """
from pathlib import Path


def load(product):
    Path(product).write_text("loaded")


def fit(product, upstream, i):
    Path(product).write_text(f"{upstream['load']} {i}")


def summary(product, upstream):
    Path(product).write_text(str(len(upstream["fit-*"])))
"""


def node(page: Page, name: str):
    return panel(page).locator(f'.jp-nbpipe-graph-node[data-task="{name}"]')


def show_graph(page: Page) -> None:
    panel(page).get_by_role("radio", name="Graph").click()
    expect(panel(page).locator('.jp-nbpipe-graph[data-laid-out="true"]')).to_be_visible()


def expect_node_states(page: Page, states: dict[str, str], timeout: float = BUILD_TIMEOUT):
    for name, state in states.items():
        expect(node(page, name)).to_have_attribute("data-state", state, timeout=timeout)


def drawn_edges(page: Page) -> set[tuple[str, str]]:
    edges = panel(page).locator(".jp-nbpipe-graph-edge")
    return {
        (edge.get_attribute("data-source"), edge.get_attribute("data-target"))
        for edge in edges.all()
    }


def overlapping_nodes(page: Page) -> list[list[str]]:
    """Pairs of graph nodes whose boxes on the page overlap (every node against every other)."""
    return page.evaluate(
        """() => {
            const nodes = [...document.querySelectorAll('#nbpipe-panel .jp-nbpipe-graph-node')];
            const boxes = nodes.map(n => [n.dataset.task || n.dataset.group,
                                          n.querySelector('.jp-nbpipe-graph-box')
                                           .getBoundingClientRect()]);
            const pairs = [];
            for (let i = 0; i < boxes.length; i++) {
                for (let j = i + 1; j < boxes.length; j++) {
                    const [a, b] = [boxes[i][1], boxes[j][1]];
                    if (a.left < b.right && b.left < a.right &&
                        a.top < b.bottom && b.top < a.bottom) {
                        pairs.push([boxes[i][0], boxes[j][0]]);
                    }
                }
            }
            return pairs;
        }"""
    )


def build_from_menu(page: Page, task: str, item: str) -> None:
    """Right-clicks a task's node and picks a build in its context menu."""
    node(page, task).click(button="right")
    menu = panel(page).get_by_role("menu")
    expect(menu.get_by_role("menuitem")).to_have_text(
        [
            "Build this task",
            "Build up to here",
            "Force-build this task",
            "Force-build up to here",
            "Open source",
        ]
    )
    menu.get_by_role("menuitem", name=item, exact=True).click()
    expect(menu).to_have_count(0)


def wait_until_server_idle(lab: Lab, pipeline: str = "pipeline.yaml", timeout: float = 60) -> None:
    """Waits for the server to have closed the pipeline's build (its `build_ended`, a moment after
    the panel shows the outcome), so that the next build is not refused as a second one."""
    deadline = time.monotonic() + timeout
    while True:
        listing = lab.api("GET", "nbpipe/api/pipelines")["pipelines"]
        if not any(p["building"] for p in listing if p["path"] == pipeline):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pipeline} still building after {timeout} s")
        time.sleep(0.1)  # the poll's pace


def fill_of(locator) -> str:
    return locator.locator(".jp-nbpipe-graph-box").evaluate("e => getComputedStyle(e).fill")


def test_example_graph_follows_builds(page: Page, lab: Lab, shots: Path) -> None:
    clean_source = (lab.root / "clean.py").read_text()
    open_lab(page, lab)
    show_graph(page)
    for name in TASKS:
        expect(node(page, name)).to_be_visible()
        expect(node(page, name)).to_have_attribute("data-state", "idle")
    assert drawn_edges(page) == EXAMPLE_EDGES
    assert overlapping_nodes(page) == []
    # Upstream above downstream.
    top = {name: node(page, name).bounding_box()["y"] for name in TASKS}
    assert top["make_raw_data"] < top["clean"] < top["by_region"] < top["report"]
    assert top["by_region"] == top["monthly_trend"]

    panel(page).get_by_role("button", name="Build pipeline", exact=True).click()
    expect(node(page, "make_raw_data")).to_have_attribute("data-state", "done", timeout=60_000)
    expect_node_states(page, dict.fromkeys(TASKS, "done"))
    done_fill = fill_of(node(page, "report"))
    panel(page).locator(".jp-nbpipe-graph").screenshot(path=str(shots / "graph.png"))

    # A click opens the task's source and shows its products below the graph.
    node(page, "by_region").click()
    dock_tabs = page.locator("#jp-main-dock-panel .lm-TabBar-tab")
    expect(dock_tabs.filter(has_text="by_region.py")).to_have_count(1)
    accept_kernel_dialog(page)
    details = panel(page).locator(".jp-nbpipe-graph-details")
    expect(details).to_contain_text("by_region")
    details.locator('[data-product="output/by_region.csv"]').click()
    expect(dock_tabs.filter(has_text="by_region.csv")).to_have_count(1)

    # The context menu: "Force-build this task" rebuilds by_region alone...
    history = panel(page).locator(".jp-nbpipe-history-item")
    menu = panel(page).get_by_role("menu")
    wait_until_server_idle(lab)
    build_from_menu(page, "by_region", "Force-build this task")
    expect(history).to_have_count(2, timeout=60_000)
    expect(history.first).to_have_attribute("data-state", "success", timeout=BUILD_TIMEOUT)
    expect(history.first).to_contain_text("1 executed")
    expect_node_states(page, {"by_region": "done"}, timeout=10_000)
    for name in ("make_raw_data", "clean", "monthly_trend", "report"):
        expect(node(page, name)).to_have_attribute("data-state", "idle")
    # ... "Force-build up to here" rebuilds monthly_trend and what it needs, no more.
    wait_until_server_idle(lab)
    build_from_menu(page, "monthly_trend", "Force-build up to here")
    expect(history).to_have_count(3, timeout=60_000)
    expect(history.first).to_have_attribute("data-state", "success", timeout=BUILD_TIMEOUT)
    expect(history.first).to_contain_text("3 executed")
    expect_node_states(
        page, {"make_raw_data": "done", "clean": "done", "monthly_trend": "done"}, timeout=10_000
    )
    for name in ("by_region", "report"):
        expect(node(page, name)).to_have_attribute("data-state", "idle")
    expect(menu).to_have_count(0)

    # A failing notebook: its node turns red, its downstream tasks grey and struck through.
    wait_until_server_idle(lab)
    (lab.root / "clean.py").write_text(
        clean_source + '\n# %%\nraise ValueError("broken on purpose by the UI test")\n'
    )
    panel(page).get_by_role("button", name="Build pipeline", exact=True).click()
    expect(history).to_have_count(4, timeout=60_000)
    expect_node_states(
        page,
        {
            "clean": "failed",
            "by_region": "aborted",
            "monthly_trend": "aborted",
            "report": "aborted",
            "make_raw_data": "skipped",
        },
    )
    error_red = panel(page).evaluate(
        "p => { const s = document.createElement('span');"
        " s.style.color = 'var(--jp-error-color1)'; p.appendChild(s);"
        " const c = getComputedStyle(s).color; s.remove(); return c; }"
    )
    assert fill_of(node(page, "clean")) == error_red
    for name in ("by_region", "monthly_trend", "report"):
        label = node(page, name).locator(".jp-nbpipe-graph-label")
        assert "line-through" in label.evaluate("e => getComputedStyle(e).textDecorationLine")
        assert fill_of(node(page, name)) not in (error_red, done_fill)
    broken = panel(page).locator(".jp-nbpipe-graph-edge.jp-mod-broken")
    assert {
        (e.get_attribute("data-source"), e.get_attribute("data-target")) for e in broken.all()
    } == {
        ("clean", "by_region"),
        ("clean", "monthly_trend"),
        ("by_region", "report"),
        ("monthly_trend", "report"),
    }
    node(page, "clean").click()
    accept_kernel_dialog(page)
    expect(panel(page).locator(".jp-nbpipe-graph-details")).to_contain_text(
        "ValueError: broken on purpose by the UI test"
    )
    panel(page).locator(".jp-nbpipe-graph").screenshot(path=str(shots / "graph-failed.png"))
    page.screenshot(path=str(shots / "lab-graph-failed.png"))

    # The list stays, as a toggle; the choice comes back with the page.
    panel(page).get_by_role("radio", name="List").click()
    expect(panel(page).locator('.jp-nbpipe-task[data-task="clean"]')).to_have_attribute(
        "data-state", "failed"
    )
    panel(page).get_by_role("radio", name="Graph").click()
    page.reload()
    expect(node(page, "clean")).to_have_attribute("data-state", "failed", timeout=60_000)


def write_grid_pipeline(folder: Path, size: int = GRID_SIZE) -> None:
    """load -> fit-0 ... fit-(size-1) (one grid) -> summary, all trivial functions."""
    folder.mkdir()
    (folder / "grid_tasks.py").write_text(GRID_TASKS)
    (folder / "pipeline.yaml").write_text(
        "tasks:\n"
        "  - source: grid_tasks.load\n    product: out/load.txt\n"
        f"  - source: grid_tasks.fit\n    product: out/fit.txt\n    grid: {{i: {list(range(size))}}}\n"
        "  - source: grid_tasks.summary\n    product: out/summary.txt\n"
    )


def test_grid_of_200_tasks_folds_zooms_and_never_overlaps(
    page: Page, lab: Lab, shots: Path
) -> None:
    write_grid_pipeline(lab.root / "grid")
    open_lab(page, lab)
    picker = panel(page).get_by_label("Pipeline", exact=True)
    picker.select_option("grid/pipeline.yaml")
    show_graph(page)

    # Folded: the grid is one node, with an edge in and an edge out.
    group = panel(page).locator('.jp-nbpipe-graph-node[data-group="fit"]')
    expect(group).to_be_visible()
    expect(group).to_contain_text(f"fit \N{MULTIPLICATION SIGN}{GRID_SIZE}")
    nodes = panel(page).locator(".jp-nbpipe-graph-node")
    expect(nodes).to_have_count(3)
    assert drawn_edges(page) == {("load", "grid:fit"), ("grid:fit", "summary")}
    assert overlapping_nodes(page) == []

    # Unfolded: every task, every edge, still no two boxes overlapping.
    panel(page).get_by_label("Group grids").uncheck()
    expect(nodes).to_have_count(GRID_SIZE + 2)
    expect(panel(page).locator(".jp-nbpipe-graph-edge")).to_have_count(2 * GRID_SIZE)
    expect(panel(page).locator('.jp-nbpipe-graph[data-laid-out="true"]')).to_be_visible()
    assert overlapping_nodes(page) == []

    # Zoom (the wheel, about the pointer), pan (a drag), fit (the button).
    viewport = panel(page).locator(".jp-nbpipe-graph-viewport")
    first = node(page, "fit-0")
    fitted = first.bounding_box()
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function(
        "w => document.querySelector('.jp-nbpipe-graph-node[data-task=\"fit-0\"]')"
        ".getBoundingClientRect().width > 2 * w",
        arg=fitted["width"],
    )
    zoomed = first.bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 90, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "x => Math.abs(document.querySelector('.jp-nbpipe-graph-node[data-task=\"fit-0\"]')"
        ".getBoundingClientRect().x - x - 100) < 1",
        arg=zoomed["x"],
    )
    expect(
        page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="grid_tasks.py")
    ).to_have_count(0)
    panel(page).get_by_role("button", name="Fit", exact=True).click()
    page.wait_for_function(
        "w => Math.abs(document.querySelector('.jp-nbpipe-graph-node[data-task=\"fit-0\"]')"
        ".getBoundingClientRect().width - w) < 0.5",
        arg=fitted["width"],
    )

    # Group again from a task of the grid; a group's details unfold it.
    panel(page).get_by_label("Group grids").check()
    expect(nodes).to_have_count(3)
    group.click()
    panel(page).locator(".jp-nbpipe-graph-details").get_by_role(
        "button", name=f"Show its {GRID_SIZE} tasks"
    ).click()
    expect(nodes).to_have_count(GRID_SIZE + 2)
    node(page, "fit-7").click()
    panel(page).locator(".jp-nbpipe-graph-details").get_by_role(
        "button", name="Group the grid fit"
    ).click()
    expect(nodes).to_have_count(3)
    panel(page).screenshot(path=str(shots / "panel-graph-grid.png"))
