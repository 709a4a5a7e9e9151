"""The scheduler: one loop that runs a build plan on any executor.

State is plain data, owned by this loop alone (workers only report back through a queue)::

    waiting[name]    upstream tasks of `name` that still have to finish
    ready            tasks whose upstream tasks are all done, in the order they became ready
    running          tasks handed to the pool, with their staged products

When a task finishes, only its dependents are touched: each loses it from ``waiting`` and becomes
ready when nothing is left. A failure walks its descendants once to abort them. So a build costs
O(tasks + edges), whatever the shape of the DAG.

Example: ``a >> b``, ``a >> c``, ``[b, c] >> d`` with two processes. ``a`` starts; when it
finishes, ``b`` and ``c`` become ready and start together; ``d`` waits for both. Had ``b``
failed, ``d`` would be aborted while ``c`` still ran to the end.

When a worker process dies (a segfault, an out-of-memory kill), every task running in the pool
at that moment fails with it; each is retried once, alone, on a fresh pool, so only the culprit
fails.

An early stop (``DAGBuildEarlyStop`` from a task or a task hook) lets running tasks finish, starts
nothing more, and marks what never ran as cancelled. The loop blocks on the queue: no polling.
"""

from __future__ import annotations

import queue
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from nbpipe.engine.events import BuildOutcome, EventKind, EventStream, TaskStatus
from nbpipe.engine.hooks import call_with_available
from nbpipe.engine.products import Product, files_of, new_token, staged_product
from nbpipe.exceptions import DAGBuildEarlyStop
from nbpipe.executors.worker import Outcome, describe_error, run_job

if TYPE_CHECKING:
    from nbpipe.executors.base import Executor, Pool
    from nbpipe.tasks.base import Task


class Build:
    """One run of a plan: ``to_run`` maps each task to run to why it runs; the rest are skipped.

    ``finish_hook`` runs after the last task and before ``build_finished`` is emitted; it may turn
    the outcome into ``STOPPED_EARLY`` (the DAG's own ``on_finish``/``on_failure`` hooks).
    """

    def __init__(
        self,
        order: list[Task],
        to_run: dict[str, list[str]],
        stream: EventStream,
        dag_name: str,
        finish_hook: Callable[[BuildOutcome, dict[str, str]], tuple[BuildOutcome, str | None]],
    ):
        self.tasks = {task.name: task for task in order}
        self.to_run = to_run
        self.stream = stream
        self.dag_name = dag_name
        self.finish_hook = finish_hook
        self.failures: dict[str, str] = {}
        self.stop_reason: str | None = None
        self.settled: set[str] = set()  # tasks that reached a final state in this build
        self.unstarted = Counter(type(self.tasks[name]) for name in to_run)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, executor: Executor) -> BuildOutcome:
        emit = self.stream.emit
        emit(
            EventKind.BUILD_STARTED,
            dag=self.dag_name,
            executor=repr(executor),
            tasks=list(self.tasks),
            to_run=list(self.to_run),
        )
        for name, task in self.tasks.items():
            if name in self.to_run:
                emit(EventKind.TASK_QUEUED, name, reasons=self.to_run[name])
            else:
                emit(EventKind.TASK_SKIPPED, name, products=_paths(task.product))
                self.settled.add(name)

        waiting = {
            name: {u for u in self.tasks[name].upstream if u in self.to_run} for name in self.to_run
        }
        dependents: dict[str, list[str]] = defaultdict(list)
        for name, upstream in waiting.items():
            for parent in upstream:
                dependents[parent].append(name)
        ready = deque(name for name in self.to_run if not waiting[name])
        running: dict[str, Product] = {}
        done: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        retried: set[str] = set()
        imports = sorted(
            {module for name in self.to_run for module in self.tasks[name].worker_imports}
        )

        warm_up = next(
            (w for name in self.to_run if (w := self.tasks[name].worker_warm_up())), None
        )
        with executor.pool(imports, warm_up) as pool:
            try:
                while ready or running:
                    while ready and self.stop_reason is None and len(running) < executor.processes:
                        alone = ready[0] in retried
                        if (alone and running) or retried.intersection(running):
                            break  # a retried task runs alone, to tell a culprit from a victim
                        name = ready.popleft()
                        running[name] = self._start(self.tasks[name], pool, done)
                    if not running:
                        break
                    name, future = done.get()
                    if _worker_died(future) and name not in retried:
                        retried.add(name)  # maybe a sibling's crash took its worker down
                        self.unstarted[type(self.tasks[name])] += 1
                        self.tasks[name].discard(running.pop(name))
                        ready.appendleft(name)
                        continue
                    status = self._finish(self.tasks[name], future, running.pop(name))
                    if status is TaskStatus.EXECUTED:
                        for child in dependents[name]:
                            waiting[child].discard(name)
                            if not waiting[child]:
                                ready.append(child)
                    elif status is TaskStatus.FAILED:
                        self._abort_downstream(name, dependents)
            except KeyboardInterrupt:
                pool.terminate()
                for name, staged in running.items():
                    self.tasks[name].discard(staged)
                self._cancel_rest("the build was interrupted")
                emit(EventKind.BUILD_FINISHED, outcome=BuildOutcome.INTERRUPTED.value)
                raise

        if self.stop_reason is not None:
            self._cancel_rest(f"the build stopped early: {self.stop_reason}")
        outcome = (
            BuildOutcome.FAILED
            if self.failures
            else BuildOutcome.STOPPED_EARLY
            if self.stop_reason is not None
            else BuildOutcome.SUCCESS
        )
        outcome, reason = self.finish_hook(outcome, self.failures)
        if reason is not None:
            self.stop_reason = reason
        emit(
            EventKind.BUILD_FINISHED,
            outcome=outcome.value,
            stop_reason=self.stop_reason,
            failed=list(self.failures),
        )
        return outcome

    # -- one task -------------------------------------------------------------------------------
    def _start(self, task: Task, pool: Pool, done: queue.SimpleQueue) -> Product:
        task.prepare_folders()
        staged = staged_product(task.product, new_token())
        self.unstarted[type(task)] -= 1
        self.stream.emit(EventKind.TASK_STARTED, task.name)
        try:
            job = task.make_job(staged, more_to_come=self.unstarted[type(task)] > 0)
            future = pool.submit(run_job, job)
        except Exception as error:  # e.g. the job could not be built: fail this task alone
            future = Future()
            future.set_exception(error)
        except BaseException:  # Ctrl-C during an inline (Serial) job: drop its staged output
            task.discard(staged)
            raise
        future.add_done_callback(lambda f, name=task.name: done.put((name, f)))
        return staged

    def _finish(self, task: Task, future: Future, staged: Product) -> TaskStatus:
        outcome = _outcome_of(task.name, future)
        if outcome.state == "ok":
            try:
                task.commit(staged)
                if task.on_finish:
                    call_with_available(task.on_finish, task.hook_arguments())
                task.save_metadata()
            except DAGBuildEarlyStop as stop:
                return self._stopped_early(task, str(stop), outcome)
            except Exception as error:
                message, details = describe_error(error)
                outcome = Outcome(
                    task.name, "failed", outcome.started, outcome.ended, message, details
                )
            else:
                self.settled.add(task.name)
                self.stream.emit(
                    EventKind.TASK_FINISHED,
                    task.name,
                    elapsed=outcome.elapsed,
                    products=_paths(task.product),
                )
                return TaskStatus.EXECUTED
        task.discard(staged)
        if outcome.state == "early_stop":
            return self._stopped_early(task, outcome.message, outcome)
        return self._failed(task, outcome)

    def _failed(self, task: Task, outcome: Outcome) -> TaskStatus:
        self.failures[task.name] = outcome.message
        self.settled.add(task.name)
        self.stream.emit(
            EventKind.TASK_FAILED,
            task.name,
            elapsed=outcome.elapsed,
            error=outcome.message,
            details=outcome.error,
        )
        if task.on_failure:
            try:
                call_with_available(
                    task.on_failure, {**task.hook_arguments(), "traceback": outcome.message}
                )
            except DAGBuildEarlyStop as stop:
                self.stop_reason = str(stop)
            except Exception as error:
                self.failures[task.name] += (
                    f"\n\nIts on_failure hook failed too:\n{describe_error(error)[0]}"
                )
        return TaskStatus.FAILED

    def _stopped_early(self, task: Task, message: str, outcome: Outcome) -> TaskStatus:
        self.stop_reason = message or f"task {task.name!r} asked to stop"
        self.settled.add(task.name)
        self.stream.emit(
            EventKind.TASK_STOPPED_EARLY, task.name, elapsed=outcome.elapsed, message=message
        )
        return TaskStatus.STOPPED_EARLY

    def _abort_downstream(self, failed: str, dependents: dict[str, list[str]]) -> None:
        stack = list(dependents[failed])
        while stack:
            name = stack.pop()
            if name in self.settled:
                continue
            self.settled.add(name)
            self.stream.emit(
                EventKind.TASK_ABORTED, name, reason=f"upstream task {failed!r} failed"
            )
            stack.extend(dependents[name])

    def _cancel_rest(self, reason: str) -> None:
        for name in self.to_run:
            if name not in self.settled:
                self.settled.add(name)
                self.stream.emit(EventKind.TASK_CANCELLED, name, reason=reason)


def _worker_died(future: Future) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


def _outcome_of(name: str, future: Future) -> Outcome:
    """The worker's outcome, or a failure that says why the job never ran to an outcome."""
    try:
        return future.result()
    except BrokenProcessPool:
        message = "the worker process running this task died (killed, or crashed in native code)"
    except Exception as error:
        message = (
            f"could not run this task in a worker: {error}\n"
            "Under the Parallel executor, a task's function and params must be picklable: "
            "define functions at the top level of an importable module."
        )
    return Outcome(name, "failed", 0.0, 0.0, message, {"type": "WorkerError", "evalue": message})


def _paths(product: Product) -> list[str]:
    return [str(file) for file in files_of(product)]
