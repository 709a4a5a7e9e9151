"""The scheduler loop on a scripted pool: no processes, jobs end in the order a test decides.

``ScriptedPool`` runs each submitted job when the script reaches its task, in a thread of its
own (the loop blocks on its queue meanwhile), so the order in which tasks end, and which worker
is "lost", is exactly the script's, whatever the machine's timing.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from contextlib import contextmanager

import pytest
from engine_tasks import concat, write_name

from nbpipe import DAG
from nbpipe.engine.events import Event, TaskStarted
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Executor
from nbpipe.executors.base import WorkerLost
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


class ScriptedPool:
    """Ends jobs in ``script`` order: each step is a task name, or ``(name, "lost")`` for a job
    whose worker dies. A step waits until its task has been submitted."""

    def __init__(self, script: list[str | tuple[str, str]]):
        self.script = [step if isinstance(step, tuple) else (step, "ok") for step in script]
        self.submitted: dict[str, tuple] = {}
        self.running: set[str] = set()
        self.most_running = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def submit(self, fn, job) -> Future:
        future: Future = Future()
        with self._changed:
            self.submitted[job.task] = (fn, job, future)
            self.running.add(job.task)
            self.most_running = max(self.most_running, len(self.running))
            self._changed.notify_all()
        return future

    def _play(self) -> None:
        for name, how in self.script:
            with self._changed:
                self._changed.wait_for(lambda name=name: name in self.submitted, timeout=30)
                fn, job, future = self.submitted.pop(name)
                self.running.discard(name)
            if how == "lost":
                future.set_exception(WorkerLost("killed"))
            else:
                future.set_result(fn(job))

    def terminate(self) -> None:
        pass


class ScriptedExecutor(Executor):
    def __init__(self, processes: int, script: list):
        self._processes = processes
        self.scripted = ScriptedPool(script)

    @property
    def processes(self) -> int:
        return self._processes

    @contextmanager
    def pool(self, imports=(), warm_up=None, progress=None):
        yield self.scripted


def _diamond(executor: Executor) -> DAG:
    """a >> b, a >> c, [b, c] >> d"""
    dag = DAG(executor=executor)
    a = PythonCallable(write_name, File("a.txt"), dag, name="a")
    b = PythonCallable(concat, File("b.txt"), dag, name="b")
    c = PythonCallable(concat, File("c.txt"), dag, name="c")
    d = PythonCallable(concat, File("d.txt"), dag, name="d")
    a >> b >> d
    a >> c >> d
    return dag


def _started(events: list[Event]) -> list[str]:
    return [event.task for event in events if isinstance(event, TaskStarted)]


def test_dependents_start_together_once_their_upstream_task_ends(workdir):
    executor = ScriptedExecutor(2, ["a", "c", "b", "d"])
    events: list[Event] = []

    _diamond(executor).build(observers=[events.append])

    assert _started(events) == ["a", "b", "c", "d"]
    assert executor.scripted.most_running == 2
    finished = [event.task for event in events if event.kind == "task_finished"]
    assert finished == ["a", "c", "b", "d"]


def test_one_process_runs_one_task_at_a_time(workdir):
    executor = ScriptedExecutor(1, ["a", "b", "c", "d"])

    _diamond(executor).build()

    assert executor.scripted.most_running == 1


def test_a_lost_worker_is_retried_alone_and_a_repeat_culprit_fails(workdir):
    executor = ScriptedExecutor(2, ["a", ("b", "lost"), "c", ("b", "lost")])
    events: list[Event] = []

    with pytest.raises(DAGBuildError) as raised:
        _diamond(executor).build(observers=[events.append])

    assert _started(events) == ["a", "b", "c", "b"]
    assert raised.value.failures["b"].type == "WorkerLost"
    assert [event.task for event in events if event.kind == "task_aborted"] == ["d"]


def test_a_victim_of_a_lost_worker_builds_on_its_retry(workdir):
    executor = ScriptedExecutor(2, ["a", ("c", "lost"), "b", "c", "d"])

    report = _diamond(executor).build()

    assert report.outcome.value == "success"
    assert [row.status.value for row in report] == ["executed"] * 4
