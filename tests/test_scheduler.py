"""The scheduler loop on a scripted pool: no processes, jobs end in the order a test decides.

``ScriptedPool`` runs each submitted job when the script reaches its task, in a thread of its
own (the loop blocks on its queue meanwhile), so the order in which tasks end, and which worker
is "lost", is exactly the script's, whatever the machine's timing. A pool that queues jobs
handed ahead (``queue_ahead``) is scripted too: a ``(name, "begin")`` step reports that the
task's job began, as Dask's pool does.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest
from engine_tasks import concat, early_stop_root, write_name

from nbpipe import DAG
from nbpipe.engine.events import Event, TaskStarted
from nbpipe.engine.warm_budget import WarmBudget
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Executor
from nbpipe.executors.base import WorkerLost
from nbpipe.products import File
from nbpipe.tasks import PythonCallable


class ScriptedPool:
    """Ends jobs in ``script`` order: each step is a task name, ``(name, "lost")`` for a job
    whose worker dies, ``(name, "begin")`` to report that its job began (through ``line``, the
    loop's end of the progress channel), or ``(name, "handed")`` only to wait for its job. A
    step waits until its task has been submitted.
    ``withdraw`` settles the jobs it takes back as a cancel would."""

    def __init__(self, script: list[str | tuple[str, str]]):
        self.script = [step if isinstance(step, tuple) else (step, "ok") for step in script]
        self.submitted: dict[str, tuple] = {}
        self.running: set[str] = set()
        self.most_running = 0
        self.withdrawn: list[str] = []
        self.line = None
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
                if how == "begin":
                    self.line.started(name)
                if how in ("begin", "handed"):
                    continue
                fn, job, future = self.submitted.pop(name)
                self.running.discard(name)
            if how == "lost":
                future.set_exception(WorkerLost("killed"))
            else:
                future.set_result(fn(job))

    def terminate(self) -> None:
        pass

    def withdraw(self, futures) -> None:
        with self._changed:
            for name, (_, _, future) in list(self.submitted.items()):
                if future in futures:
                    del self.submitted[name]
                    self.running.discard(name)
                    self.withdrawn.append(name)
                    future.set_exception(WorkerLost("withdrawn"))


class ScriptedExecutor(Executor):
    def __init__(self, processes: int, script: list, queue_ahead: int = 0):
        self._processes = processes
        self._queue_ahead = queue_ahead
        self.scripted = ScriptedPool(script)

    @property
    def processes(self) -> int:
        return self._processes

    @property
    def queue_ahead(self) -> int:
        return self._queue_ahead

    @contextmanager
    def pool(self, imports=(), warm_up=None, progress=None):
        self.scripted.line = progress
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


# -- a pool that queues jobs handed ahead ---------------------------------------------------------


def _three(executor: Executor, first=write_name) -> DAG:
    """Three independent tasks: a, b, c."""
    dag = DAG(executor=executor)
    PythonCallable(first, File("a.txt"), dag, name="a")
    PythonCallable(write_name, File("b.txt"), dag, name="b")
    PythonCallable(write_name, File("c.txt"), dag, name="c")
    return dag


def _timeline(events: list[Event]) -> list[tuple[str, str]]:
    return [(event.kind, event.task) for event in events if event.kind.startswith("task_")]


def test_a_job_handed_ahead_starts_its_task_when_the_pool_says_it_began(workdir):
    script = [("a", "begin"), ("b", "handed"), "a", ("b", "begin"), "b", ("c", "begin"), "c"]
    executor = ScriptedExecutor(1, script, queue_ahead=1)
    events: list[Event] = []

    _three(executor).build(observers=[events.append])

    assert executor.scripted.most_running == 2, "one job runs, one waits in the pool"
    kinds = [kind for kind, _ in _timeline(events) if kind != "task_queued"]
    assert kinds == ["task_started", "task_finished"] * 3
    assert _started(events) == ["a", "b", "c"]


def test_a_job_that_ends_unreported_starts_its_task_right_before_its_end(workdir):
    executor = ScriptedExecutor(1, ["b", ("a", "begin"), "a", "c"], queue_ahead=1)
    events: list[Event] = []

    _three(executor).build(observers=[events.append])

    timeline = [step for step in _timeline(events) if step[0] != "task_queued"]
    assert timeline[:2] == [("task_started", "b"), ("task_finished", "b")]
    assert timeline[2:4] == [("task_started", "a"), ("task_finished", "a")]


def test_a_job_lost_while_it_waited_is_queued_again_and_starts_once(workdir):
    script = [("a", "begin"), ("b", "lost"), "a", ("b", "begin"), "b", ("c", "begin"), "c"]
    executor = ScriptedExecutor(1, script, queue_ahead=1)
    events: list[Event] = []

    report = _three(executor).build(observers=[events.append])

    assert report.outcome.value == "success"
    assert _started(events) == ["a", "b", "c"]
    timeline = _timeline(events)
    assert timeline.index(("task_started", "b")) > timeline.index(("task_finished", "a"))


def test_an_early_stop_withdraws_the_jobs_handed_ahead_that_have_not_begun(workdir):
    executor = ScriptedExecutor(2, [("a", "begin"), ("b", "begin"), "a", "b"], queue_ahead=2)
    dag = _three(executor, first=early_stop_root)
    PythonCallable(write_name, File("d.txt"), dag, name="d")
    events: list[Event] = []

    report = dag.build(observers=[events.append])

    assert report.stopped_early
    assert executor.scripted.withdrawn == ["c", "d"]
    assert report["b"].status.value == "executed", "a running task finishes"
    assert {report[name].status.value for name in ("c", "d")} == {"cancelled"}
    assert _started(events) == ["a", "b"]
    assert not Path("c.txt").exists() and not list(Path().glob(".nbpipe-*"))


def test_warm_kernels_are_promised_only_to_notebooks_that_will_take_them():
    """16 notebooks on 2 workers: the first two jobs land on workers holding no warm kernel,
    each later one takes the kernel warmed on its worker; the last two warm none. So 16 kernels
    start (2 cold, 14 warmed) for 16 notebooks; warming "while any is left" started 17."""
    budget = WarmBudget(["notebook"] * 16 + ["function"] * 3, workers=2)

    warms = [budget.handing_over("notebook") for _ in range(16)]

    assert warms == [True] * 14 + [False] * 2
    # another kind counts apart: of 3 on 2 workers, only the first warms one (for the third)
    assert [budget.handing_over("function") for _ in range(3)] == [True, False, False]


def test_the_last_ready_job_before_a_join_warms_a_kernel_too():
    """1 -> 6 -> 1 on 2 workers: the last notebook waits for the last two middles, and goes to
    whichever worker finishes first; the earlier middle warmed a kernel by count, the later one
    (handed over with nothing else ready) warms one too, so both workers hold one."""
    budget = WarmBudget(["notebook"] * 8, workers=2)
    nothing_else_ready = {0, 6, 7}  # the first, the last middle, the last

    warms = [budget.handing_over("notebook", last_ready=i in nothing_else_ready) for i in range(8)]

    assert warms == [True] * 7 + [False]
    without = WarmBudget(["notebook"] * 8, workers=2)
    assert [without.handing_over("notebook") for _ in range(8)][5:] == [True, False, False]


def test_no_kernel_is_warmed_for_a_notebook_an_idle_worker_takes():
    budget = WarmBudget(["notebook"] * 2, workers=2)
    assert [budget.handing_over("notebook") for _ in range(2)] == [False, False]


def test_a_requeued_task_waits_to_be_handed_over_again():
    budget = WarmBudget(["notebook"], workers=1)
    assert budget.handing_over("notebook") is False  # nothing else waits
    budget.requeued("notebook")  # its worker was lost: it will be handed over again
    budget.requeued("notebook")
    assert budget.handing_over("notebook") is True  # another copy still waits
