"""Records the golden event streams that both reducers are tested on.

Each ``<name>.json`` holds ``events`` (contract event dicts, as ``Event.to_dict()`` writes them)
and ``state`` (``BuildState.to_dict()`` after applying them). ``tests/test_state.py`` checks that
the Python reducer still derives ``state``; ``labextension/test/golden.test.ts`` that the
TypeScript reducer derives the very same. The engine events come from real builds (Serial, in a
temporary folder); the supervisor events around them are the ones the server adds.

Run ``python tests/golden/record.py`` to record them again after a deliberate change of the
contract or of the reducer rules (then review the diff).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from nbpipe import DAG
from nbpipe.engine.events import (
    BuildCancelling,
    BuildCreated,
    BuildEnded,
    Event,
    TaskCellStarted,
    TaskStarted,
    event_from_dict,
)
from nbpipe.engine.state import BuildState
from nbpipe.exceptions import DAGBuildEarlyStop, DAGBuildError
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

HERE = Path(__file__).parent


def write(product):
    Path(str(product)).write_text("data")


def copy(product, upstream):
    Path(str(product)).write_text("".join(Path(str(p)).read_text() for p in upstream.values()))


def broken(product, upstream):
    raise ValueError("broken on purpose")


def stop(product):
    raise DAGBuildEarlyStop("enough for today")


def interrupted(product):
    raise KeyboardInterrupt


def _dag(shape: dict[str, tuple[Callable, list[str]]]) -> DAG:
    dag = DAG("golden")
    tasks = {
        name: PythonCallable(fn, File(f"out/{name}.txt"), dag, name=name)
        for name, (fn, _) in shape.items()
    }
    for name, (_, upstream) in shape.items():
        for parent in upstream:
            tasks[parent] >> tasks[name]
    return dag


def _events(dag: DAG, **build) -> list[Event]:
    events: list[Event] = []
    with contextlib.suppress(DAGBuildError, KeyboardInterrupt):  # the events tell it all
        dag.build(observers=[events.append], **build)
    return events


def success() -> list[Event]:
    dag = _dag({"load": (write, []), "clean": (copy, ["load"]), "plot": (copy, ["clean"])})
    _events(dag)
    Path("out/clean.txt").unlink()  # clean and plot run again; load is up to date
    return _events(dag)


def failure_aborted_downstream() -> list[Event]:
    shape = {
        "load": (write, []),
        "broken": (broken, ["load"]),
        "after_broken": (copy, ["broken"]),
        "independent": (copy, ["load"]),
    }
    return _events(_dag(shape))


def notebook_failure() -> list[Event]:
    """A notebook failing in its second cell: the failure names the cell, line and partial copy."""
    Path("bad.py").write_text(
        '# %% tags=["parameters"]\nproduct = None\n\n# %%\nx = 1\ny = x / 0\n'
    )
    dag = DAG("golden")
    NotebookRunner("bad.py", File("out/bad.ipynb"), dag, name="bad")
    return _events(dag)


def _cells_dag() -> DAG:
    Path("cells.py").write_text(
        '# %% tags=["parameters"]\nproduct = None\n\n# %% [markdown]\n# Some prose\n\n'
        '# %%\nfor i in range(30):\n    print("line", i)\n\n'
        '# %%\nimport sys\nprint("done", file=sys.stderr)\n'
    )
    dag = DAG("golden")
    NotebookRunner("cells.py", File("out/cells.ipynb"), dag, name="cells")
    return dag


def notebook_cells() -> list[Event]:
    """A notebook reporting its code cells (numbered over all its cells) and output tail."""
    return _events(_cells_dag())


def notebook_cells_interrupted() -> list[Event]:
    """The server died while the notebook ran its last cell: the task keeps the cell it was in
    and its output, with no cell running."""
    engine = _events(_cells_dag())
    last_cell = max(i for i, event in enumerate(engine) if isinstance(event, TaskCellStarted))
    return [
        BuildCreated(time=engine[0].time, force=False, targets=[]),
        *engine[: last_cell + 1],
        BuildEnded(
            time=engine[last_cell].time + 1,
            state="interrupted",
            message="the server stopped while this build was running",
        ),
    ]


def early_stop() -> list[Event]:
    shape = {"first": (stop, []), "second": (copy, ["first"]), "other": (write, [])}
    return _events(_dag(shape))


def cancelled() -> list[Event]:
    """A cancel from the server: the build process is told to stop while ``slow`` runs."""
    engine = _events(_dag({"slow": (interrupted, []), "after": (copy, ["slow"])}))
    started = next(i for i, event in enumerate(engine) if isinstance(event, TaskStarted))
    return [
        BuildCreated(time=engine[0].time, force=False, targets=[]),
        *engine[: started + 1],
        BuildCancelling(time=engine[started].time),
        *engine[started + 1 :],
        BuildEnded(
            time=engine[-1].time, state="cancelled", message="cancelled on request", exit_code=143
        ),
    ]


def server_restart() -> list[Event]:
    """The server died while a build ran: its process never said how the build ended."""
    engine = _events(_dag({"load": (write, []), "clean": (copy, ["load"])}))
    started = next(i for i, event in enumerate(engine) if isinstance(event, TaskStarted))
    return [
        BuildCreated(time=engine[0].time, force=True, targets=[]),
        *engine[: started + 1],
        BuildEnded(
            time=engine[started].time + 60,
            state="interrupted",
            message="the server stopped while this build was running",
        ),
    ]


STREAMS = [
    success,
    failure_aborted_downstream,
    notebook_failure,
    notebook_cells,
    notebook_cells_interrupted,
    early_stop,
    cancelled,
    server_restart,
]


def reduce(events: list[dict]) -> dict:
    state = BuildState()
    for event in events:
        state.apply(event_from_dict(event))
    return state.to_dict()


def main() -> int:
    start = os.getcwd()
    for stream in STREAMS:
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            try:
                events = [event.to_dict() for event in stream()]
            finally:
                os.chdir(start)
        path = HERE / f"{stream.__name__}.json"
        path.write_text(json.dumps({"events": events, "state": reduce(events)}, indent=1) + "\n")
        print(f"wrote {path} ({len(events)} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
