"""How long the Pipelines panel's graph takes to render once a pipeline's status has arrived.

    python benchmarks/graph_render.py                    # 7 renders of each case
    python benchmarks/graph_render.py --repeat 15 --json graph.json

A real JupyterLab (with the built lab extension) serves a copy of the example pipeline and a
generated pipeline of a 200-task grid (`load -> fit-0..fit-199 -> summary`); Debian's Chromium,
driven by Playwright through its executable path, shows the panel's graph view. Three cases:

- `example`: the 5-task example, from the end of the `GET pipelines/...` answer (the page's
  resource timing) to the graph laid out and drawn with its 5 nodes;
- `grid-200 folded`: the same for the grid pipeline, the grid shown as one node (the default);
- `grid-200 unfolded`: from the click that unfolds the grid to its 202 nodes laid out and drawn.

Times are the page's own clock (`performance.now()`, taken in a MutationObserver as the last
node appears), so Playwright's round trips do not count. The browser's CPU time per render
(Chromium's processes, from /proc, from the action to the graph drawn, the request included) is
printed beside the wall time. It prints medians and the
spread, checks that every render drew the expected nodes, and sets no threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "ui-tests"))
from bench_server import descendants, machine  # noqa: E402
from conftest import CHROMIUM_ARGS, TOKEN, Lab, chromium_path, copy_example  # noqa: E402
from test_graph import write_grid_pipeline  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Resolves with performance.now() when `selector` matches `count` nodes in a laid-out graph.
WATCH = """([selector, count]) => {
    window.__graphDrawn = null;
    const done = () => {
        const graph = document.querySelector('#nbpipe-panel .jp-nbpipe-graph[data-laid-out="true"]');
        return graph && graph.querySelectorAll(selector).length === count
            && graph.querySelectorAll('.jp-nbpipe-graph-node').length === count;
    };
    const observer = new MutationObserver(() => {
        if (window.__graphDrawn === null && done()) {
            window.__graphDrawn = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(document.querySelector('#nbpipe-panel'),
                     {subtree: true, childList: true, attributes: true});
}"""

STATUS_ARRIVED = """(path) => {
    const entries = performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/nbpipe/api/pipelines/' + path));
    return entries.length ? entries[entries.length - 1].responseEnd : null;
}"""


def chromium_cpu() -> float:
    """CPU seconds (user + system) used so far by this script's Chromium processes."""
    total = 0
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if "chrom" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def open_graph(page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbpipe-panel"]').click()
    panel = page.locator("#nbpipe-panel")
    panel.get_by_role("radio", name="Graph").click()
    panel.locator('.jp-nbpipe-graph[data-laid-out="true"]').wait_for()


def render_after_status(
    page, pipeline: str, selector: str, count: int, other: str
) -> tuple[float, float]:
    """Shows `other`, then `pipeline`: ms from its status's arrival to its graph drawn, and the
    browser's CPU ms from the pick to the graph drawn."""
    picker = page.locator("#nbpipe-panel").get_by_label("Pipeline", exact=True)
    picker.select_option(other)
    page.locator("#nbpipe-panel .jp-nbpipe-graph-node").first.wait_for()
    page.evaluate("performance.clearResourceTimings()")
    page.evaluate(WATCH, [selector, count])
    cpu = chromium_cpu()
    picker.select_option(pipeline)
    page.wait_for_function("window.__graphDrawn !== null")
    cpu = chromium_cpu() - cpu
    arrived = page.evaluate(STATUS_ARRIVED, pipeline)
    if arrived is None:
        raise RuntimeError(f"no GET pipelines/{pipeline} seen by the page")
    return page.evaluate("window.__graphDrawn") - arrived, cpu * 1000


def render_unfolded(page, count: int) -> tuple[float, float]:
    """ms from the click on "Group grids" (unfolding) to every task drawn, and the browser's
    CPU ms meanwhile."""
    panel = page.locator("#nbpipe-panel")
    grouped = panel.get_by_label("Group grids")
    if not grouped.is_checked():
        grouped.check()
        panel.locator('.jp-nbpipe-graph-node[data-group="fit"]').wait_for()
    page.evaluate(
        "() => { window.__clicked = null; document.querySelector('#nbpipe-panel')"
        ".addEventListener('click', () => { window.__clicked = performance.now(); },"
        " {capture: true, once: true}); }"
    )
    page.evaluate(WATCH, [".jp-nbpipe-graph-node[data-task]", count])
    cpu = chromium_cpu()
    grouped.uncheck()
    page.wait_for_function("window.__graphDrawn !== null")
    cpu = chromium_cpu() - cpu
    return page.evaluate("window.__graphDrawn - window.__clicked"), cpu * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="renders of each case")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    cases = {
        "example": lambda page: render_after_status(
            page, "pipeline.yaml", ".jp-nbpipe-graph-node[data-task]", 5, "grid/pipeline.yaml"
        ),
        "grid-200 folded": lambda page: render_after_status(
            page, "grid/pipeline.yaml", ".jp-nbpipe-graph-node", 3, "pipeline.yaml"
        ),
        "grid-200 unfolded": lambda page: render_unfolded(page, 202),
    }
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="nbpipe-graph-bench-") as tmp:
        root = copy_example(Path(tmp) / "root")
        write_grid_pipeline(root / "grid")
        lab = Lab(root, Path(tmp) / "work").start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(60_000)
                open_graph(page, lab)
                for name, run in cases.items():
                    run(page)  # warm-up: ELK's code loaded and compiled, the status cached
                    wall: list[float] = []
                    cpu: list[float] = []
                    for _ in range(args.repeat):
                        ms, cpu_ms = run(page)
                        wall.append(ms)
                        cpu.append(cpu_ms)
                    results[name] = {"wall_ms": summary(wall), "browser_cpu_ms": summary(cpu)}
                    print(
                        f"{name:>18}: median {results[name]['wall_ms']['median']:7.1f} ms wall "
                        f"(min {min(wall):.1f}, max {max(wall):.1f}); browser CPU "
                        f"{results[name]['browser_cpu_ms']['median']:.0f} ms"
                    )
                browser.close()
        finally:
            lab.stop()
    report = {"machine": machine(), "repeat": args.repeat, "results": results}
    print(json.dumps(report["machine"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
