"""Every build emits exactly one ``build_finished``, whatever escapes, and leaves no staged file.

Each fault runs under Serial and Parallel (fork and spawn): an OS error preparing a product's
folder, an observer that raises, DAG hooks that raise or stop early, Ctrl-C at several moments,
and an executor whose pool cannot start.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from engine_tasks import concat, write_name

from nbpipe import DAG
from nbpipe.engine.events import BuildFinished, Event
from nbpipe.exceptions import DAGBuildEarlyStop, DAGBuildError
from nbpipe.executors import Executor
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


class Recorder:
    """Keeps every event; ``interrupt_at`` raises KeyboardInterrupt on the first event of that
    kind (as a Ctrl-C arriving at that moment would)."""

    def __init__(self, interrupt_at: str | None = None):
        self.events: list[Event] = []
        self.interrupt_at = interrupt_at

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.kind == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt

    def finished(self) -> list[BuildFinished]:
        return [event for event in self.events if isinstance(event, BuildFinished)]

    def status(self, task: str) -> str:
        return [event.kind for event in self.events if event.task == task][-1]


def _staged(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.startswith(".nbpipe-")]


def _pipeline(executor: Executor) -> DAG:
    dag = DAG(executor=executor)
    first = PythonCallable(write_name, File("out/first.txt"), dag, name="first")
    second = PythonCallable(concat, File("out/second.txt"), dag, name="second")
    PythonCallable(write_name, File("out/other.txt"), dag, name="other")
    first >> second
    return dag


def test_a_product_folder_that_cannot_be_made_fails_its_task_alone(workdir, executor):
    Path("blocked").write_text("a file where a folder should be")
    dag = _pipeline(executor)
    PythonCallable(write_name, File("blocked/product.txt"), dag, name="blocked")
    recorder = Recorder()

    with pytest.raises(DAGBuildError) as raised:
        dag.build(observers=[recorder])

    assert list(raised.value.failures) == ["blocked"]
    assert raised.value.failures["blocked"].type in ("NotADirectoryError", "FileExistsError")
    assert [event.outcome.value for event in recorder.finished()] == ["failed"]
    assert Path("out/second.txt").read_text() == "x+" and Path("out/other.txt").exists()
    assert recorder.status("blocked") == "task_failed"
    blocked = [event.kind for event in recorder.events if event.task == "blocked"]
    assert blocked == ["task_queued", "task_started", "task_failed"], "started, even unreported"
    assert Path("blocked").read_text() == "a file where a folder should be"
    assert _staged(workdir) == []


def test_an_observer_that_raises_does_not_stop_the_build_or_its_last_event(workdir, executor):
    def broken_observer(event):
        raise RuntimeError("a broken progress bar")

    recorder = Recorder()
    report = _pipeline(executor).build(observers=[broken_observer, recorder])

    assert report.outcome.value == "success"
    assert [event.outcome.value for event in recorder.finished()] == ["success"]


@pytest.mark.parametrize("moment", ["build_started", "task_queued", "task_started"])
def test_ctrl_c_at_any_moment_ends_with_one_build_finished(workdir, executor, moment):
    recorder = Recorder(interrupt_at=moment)

    with pytest.raises(KeyboardInterrupt):
        _pipeline(executor).build(observers=[recorder])

    assert [event.outcome.value for event in recorder.finished()] == ["interrupted"]
    assert recorder.events[-1] is recorder.finished()[0]
    assert {recorder.status(name) for name in ("first", "second", "other")} == {"task_cancelled"}
    assert _staged(workdir) == []


def test_a_dag_hook_that_raises_fails_the_build_once(workdir, executor):
    def on_finish():
        raise RuntimeError("the report looks wrong")

    dag = _pipeline(executor)
    dag.on_finish = on_finish
    recorder = Recorder()

    with pytest.raises(DAGBuildError) as raised:
        dag.build(observers=[recorder])

    assert "the report looks wrong" in str(raised.value.failures["(dag on_finish)"])
    assert [event.outcome.value for event in recorder.finished()] == ["failed"]


def test_an_early_stop_while_rendering_still_starts_and_finishes_the_build(workdir, executor):
    def on_render():
        raise DAGBuildEarlyStop("nothing to do today")

    dag = _pipeline(executor)
    dag.on_render = on_render
    recorder = Recorder()

    report = dag.build(observers=[recorder])

    assert [event.kind for event in recorder.events] == ["build_started", "build_finished"]
    assert report.stopped_early and report.stop_reason == "nothing to do today"
    assert not Path("out").exists()


class UnstartableExecutor(Executor):
    """An executor whose workers cannot start (e.g. no memory left for a process)."""

    processes = 1

    @contextmanager
    def pool(self, imports=(), warm_up=None, progress=None):
        raise OSError("cannot start a worker process")
        yield


def test_an_executor_that_cannot_start_ends_the_build_with_its_error(workdir):
    recorder = Recorder()

    with pytest.raises(OSError, match="cannot start a worker process"):
        _pipeline(UnstartableExecutor()).build(observers=[recorder])

    (finished,) = recorder.finished()
    assert finished.outcome.value == "failed" and "cannot start" in finished.stop_reason
    assert recorder.status("first") == "task_cancelled"
