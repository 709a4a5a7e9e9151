"""Per-cell progress: a running notebook reports its cells and output through the build's events,
under every executor, live, bounded, and never after its task's end."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from wait_helpers import touch_code, wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.engine.events import (
    OUTPUT_TAIL_CHARS,
    OUTPUT_TAIL_LINES,
    TaskCellFinished,
    TaskCellStarted,
    TaskFailed,
    TaskFinished,
    TaskOutput,
    TaskProgress,
    TaskStarted,
)
from nbpipe.engine.progress import ProgressObserver
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Serial
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner

NOTEBOOK = """\
# %% tags=["parameters"]
product = None

# %% [markdown]
# Prose, not run: it still counts in the numbering

# %%
x = 21
print("first", x)

# %%

import sys
print("second", file=sys.stderr)

# %%
y = x * 2
"""


def notebook_dag(source: str, executor=None, name: str = "nb") -> DAG:
    Path(f"{name}.py").write_text(source)
    dag = DAG(executor=executor or Serial())
    NotebookRunner(f"{name}.py", File(f"out/{name}.ipynb"), dag, name=name)
    return dag


def of_task(events, name: str = "nb") -> list:
    """The task's events from its (last) start on."""
    mine = [event for event in events if event.task == name]
    start = max(i for i, event in enumerate(mine) if isinstance(event, TaskStarted))
    return mine[start:]


def cells_of(events) -> list[tuple[str, int, int]]:
    return [
        (event.kind, event.cell, event.cells)
        for event in events
        if isinstance(event, (TaskCellStarted, TaskCellFinished))
    ]


def test_cells_arrive_in_order_with_their_numbers_lines_and_output(workdir, executor):
    events = []
    notebook_dag(NOTEBOOK, executor).build(observers=[events.append])

    task = of_task(events)
    assert isinstance(task[-1], TaskFinished), "nothing of the task after its end"
    assert cells_of(task) == [
        (kind, cell, 5)
        for cell in (1, 3, 4, 5)
        for kind in ("task_cell_started", "task_cell_finished")
    ]
    lines = [event.line for event in task if isinstance(event, TaskCellStarted)]
    assert lines == ["product = None", "x = 21", "import sys", "y = x * 2"]
    assert all(e.elapsed >= 0 for e in task if isinstance(e, TaskCellFinished))
    outputs = [event.text for event in task if isinstance(event, TaskOutput)]
    assert outputs and outputs[-1] == "first 21\nsecond\n"
    # the output came while its cell ran, before that cell's end
    first_output = next(i for i, event in enumerate(task) if isinstance(event, TaskOutput))
    assert cells_of(task[:first_output])[-1] == ("task_cell_started", 3, 5)


def test_the_counter_advances_while_the_notebook_runs(workdir, executor):
    """Observed live: the build waits in cell 3 until the test lets it go on."""
    reached, release = workdir / "cell3.reached", workdir / "cell3.release"
    source = (
        '# %% tags=["parameters"]\nproduct = None\n\n# %%\na = 1\n\n'
        f"# %%\nimport pathlib, time\n{touch_code(reached)}\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\n\n"
        "# %%\nb = 2\n"
    )
    events: list = []
    dag = notebook_dag(source, executor)
    build = threading.Thread(target=dag.build, kwargs={"observers": [events.append]})
    build.start()
    try:
        wait_for_marker(reached, "the notebook to reach cell 3")
        wait_until(
            lambda: any(isinstance(e, TaskCellStarted) and e.cell == 3 for e in events),
            "the task_cell_started event of cell 3",
        )
        assert not any(isinstance(e, TaskCellStarted) and e.cell == 4 for e in events)
        assert not any(isinstance(e, TaskFinished) for e in events)
        release.touch()
        wait_until(
            lambda: any(isinstance(e, TaskCellStarted) and e.cell == 4 for e in events),
            "the task_cell_started event of cell 4",
        )
    finally:
        release.touch()
        build.join(timeout=120)
    assert cells_of(of_task(events))[-2:] == [
        ("task_cell_started", 4, 4),
        ("task_cell_finished", 4, 4),
    ]


def test_a_failing_cell_ends_with_one_task_failed_after_its_cell_events(workdir, executor):
    source = '# %% tags=["parameters"]\nproduct = None\n\n# %%\nok = 1\n\n# %%\nraise ValueError("no")\n\n# %%\nnever = 1\n'
    events = []
    with pytest.raises(DAGBuildError):
        notebook_dag(source, executor).build(observers=[events.append])
    task = of_task(events)
    assert cells_of(task)[-2:] == [("task_cell_started", 3, 4), ("task_cell_finished", 3, 4)]
    assert [type(event) for event in task if not isinstance(event, TaskProgress)] == [
        TaskStarted,
        TaskFailed,
    ]
    assert isinstance(task[-1], TaskFailed) and task[-1].failure.cell == 2


def test_the_output_tail_is_bounded_and_throttled(workdir):
    """A cell printing 400 long lines as fast as it can, each flushed: every tail stays within the
    bounds, the last one ends with the last line, and there are few of them (the throttle)."""
    source = (
        '# %% tags=["parameters"]\nproduct = None\n\n# %%\n'
        'for i in range(400):\n    print(f"line {i} " + "x" * 100, flush=True)\n'
    )
    events = []
    notebook_dag(source).build(observers=[events.append])
    outputs = [event.text for event in of_task(events) if isinstance(event, TaskOutput)]
    assert outputs
    assert all(len(text) <= OUTPUT_TAIL_CHARS for text in outputs)
    assert all(len(text.splitlines()) <= OUTPUT_TAIL_LINES for text in outputs)
    assert outputs[-1].endswith("line 399 " + "x" * 100 + "\n")
    assert len(outputs) < 100, "a tail per interval, not one per line"


def test_the_progress_display_names_the_cell_a_task_is_in(workdir):
    reached, release = workdir / "reached", workdir / "release"
    source = (
        '# %% tags=["parameters"]\nproduct = None\n\n'
        f"# %%\nimport pathlib, time\n{touch_code(reached)}\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\n"
    )
    shown = io.StringIO()
    display = ProgressObserver(bar=True, file=shown)
    dag = notebook_dag(source)
    build = threading.Thread(target=dag.build, kwargs={"observers": [display]})
    build.start()
    try:
        wait_for_marker(reached, "the notebook to reach its waiting cell")
        wait_until(
            lambda: "nb: cell 2/2 · import pathlib, time" in shown.getvalue(),
            lambda: f"the bar to name the cell, it shows {shown.getvalue()[-300:]!r}",
        )
    finally:
        release.touch()
        build.join(timeout=120)
