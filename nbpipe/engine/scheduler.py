"""The scheduler: one loop that runs a build plan on any executor.

State is plain data, owned by this loop alone (workers only report back through a queue)::

    waiting[name]    upstream tasks of `name` that still have to finish
    ready            tasks whose upstream tasks are all done, in the order they became ready
    running          tasks handed to the pool, with their staged products
    active           running tasks whose job has started (their progress is emitted)

The loop keeps ``processes`` jobs running and, for an executor whose pool queues jobs
(``queue_ahead``: Dask, one per worker thread), that many more handed ahead, so that a worker
finds its next job already waiting instead of idling for a round trip through the loop. A task
starts (``task_started``, then ``active``) when its job does: at once for Serial and Parallel,
which run a job as they get it; when the pool reports it (``ProgressLine.started``) for a pool
that queues. A job that ends unreported (it could not be prepared, or its worker was lost or it
was cancelled while it waited) has its ``task_started`` emitted right before its end, unless it
is retried; so every task's ``task_started`` comes before its end.

A job handed over may warm the kernel of a later notebook while it runs; ``WarmBudget`` says which
(no more warm kernels than notebooks left to take them).

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
nothing more, and marks what never ran as cancelled. Jobs handed ahead whose start the loop has
not heard of when it takes the stop are withdrawn (``QueuingPool.withdraw``; one that began
meanwhile is stopped, never taken), and their tasks cancelled at once, staged products discarded.
The loop blocks on the queue: no polling.

Every build emits exactly one ``build_finished``, whatever escapes (Ctrl-C at any moment, an
error in the loop itself): running tasks are stopped, their staged products discarded, and what
did not finish is cancelled before it. A task whose job cannot even be prepared (its product
folder cannot be created) fails alone.

A running task's progress reports (its notebook's cells and output) reach the loop through the
executor's end of ``nbpipe.executors.channel``, on the same queue as finished jobs (or at once,
for a job the loop runs inline); the loop emits them only while their task is active, so none
follows the task's end.
"""

from __future__ import annotations

import contextlib
import queue
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from nbpipe.engine.events import (
    BuildFinished,
    BuildOutcome,
    BuildStarted,
    EventStream,
    TaskAborted,
    TaskCancelled,
    TaskFailed,
    TaskFailure,
    TaskFinished,
    TaskProgress,
    TaskQueued,
    TaskSkipped,
    TaskStarted,
    TaskStatus,
    TaskStoppedEarly,
)
from nbpipe.engine.hooks import call_with_available
from nbpipe.engine.products import (
    Product,
    files_of,
    new_token,
    staged_product,
    sweep_dead_builds,
)
from nbpipe.engine.warm_budget import WarmBudget
from nbpipe.exceptions import DAGBuildEarlyStop
from nbpipe.executors.base import WorkerLost
from nbpipe.executors.channel import ProgressLine
from nbpipe.executors.worker import Outcome, describe_error, run_job

if TYPE_CHECKING:
    from nbpipe.executors.base import Executor, Pool, QueuingPool
    from nbpipe.tasks.base import Task

#: Runs the DAG's own hooks once the tasks are done; may turn the outcome into an early stop.
FinishHook = Callable[[BuildOutcome, dict[str, TaskFailure]], tuple[BuildOutcome, str | None]]


@dataclass(frozen=True)
class _JobBegan:
    """On the loop's queue: the pool reports that ``task``'s job began on a worker."""

    task: str


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
        finish_hook: FinishHook,
    ):
        self.tasks = {task.name: task for task in order}
        self.to_run = to_run
        self.stream = stream
        self.dag_name = dag_name
        self.finish_hook = finish_hook
        self.failures: dict[str, TaskFailure] = {}
        self.stop_reason: str | None = None
        self.settled: set[str] = set()  # tasks that reached a final state in this build
        self.running: dict[str, Product] = {}  # task -> its staged products
        self.active: set[str] = set()  # tasks started whose end the loop has not taken yet
        self.futures: dict[str, Future] = {}  # running task -> its job's future
        self.tokens: dict[str, str] = {}  # task -> the token naming its staged products

    # -- the build ------------------------------------------------------------------------------
    def run(self, executor: Executor) -> BuildOutcome:
        """Runs the plan; emits ``build_finished`` exactly once, even when something escapes
        (which is then raised again after it)."""
        emit = self.stream.emit
        try:
            # the executor opens first (a Dask cluster: so that build_started names its
            # dashboard); build_started is emitted even when it cannot open
            opened = contextlib.ExitStack()
            try:
                opened.enter_context(executor)
            finally:
                emit(
                    BuildStarted(
                        dag=self.dag_name,
                        executor=repr(executor),
                        dashboard=executor.dashboard_link,
                        tasks=list(self.tasks),
                        to_run=list(self.to_run),
                    )
                )
            with opened:
                for name, task in self.tasks.items():
                    if name in self.to_run:
                        emit(TaskQueued(task=name, reasons=self.to_run[name]))
                    else:
                        emit(TaskSkipped(task=name, products=_paths(task.product)))
                        self.settled.add(name)
                self._sweep_dead_builds()
                self._run_pool(executor)
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
        except BaseException as error:
            interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
            reason = "the build was interrupted" if interrupted else f"the build stopped: {error!r}"
            self._cancel_rest(reason)
            emit(
                BuildFinished(
                    outcome=BuildOutcome.INTERRUPTED if interrupted else BuildOutcome.FAILED,
                    stop_reason=None if interrupted else reason,
                    failed=list(self.failures),
                )
            )
            raise
        emit(
            BuildFinished(outcome=outcome, stop_reason=self.stop_reason, failed=list(self.failures))
        )
        return outcome

    def _sweep_dead_builds(self) -> None:
        """Working files that killed builds left beside this build's products go first."""
        folders = {file.path.parent for name in self.to_run for file in self.tasks[name].files}
        for folder in folders:
            sweep_dead_builds(folder)

    def _run_pool(self, executor: Executor) -> None:
        imports = sorted(
            {module for name in self.to_run for module in self.tasks[name].worker_imports}
        )
        warm = WarmBudget((type(self.tasks[name]) for name in self.to_run), executor.processes)
        warm_up = self._worker_warm_up(warm)
        done: queue.SimpleQueue = queue.SimpleQueue()  # finished jobs, starts, progress reports
        line = ProgressLine(
            handle=self._progress,
            send=done.put,
            started=lambda task: done.put(_JobBegan(task)),
        )
        with executor.pool(imports, warm_up, line) as pool:
            try:
                self._loop(pool, executor.processes, executor.queue_ahead, warm, done)
            except BaseException:
                self.active.clear()
                pool.terminate()
                for name, staged in self.running.items():
                    self.tasks[name].discard(staged)
                self.running.clear()
                raise

    def _worker_warm_up(self, warm: WarmBudget) -> Callable[[], object] | None:
        """The first warm-up a task to run offers its workers (a notebook's: the kernel
        template, and each worker's first kernel when every worker will get a notebook)."""
        for name in self.to_run:
            task = self.tasks[name]
            warm_up = task.worker_warm_up(ahead=warm.every_worker_gets(type(task)))
            if warm_up is not None:
                return warm_up
        return None

    def _loop(
        self,
        pool: Pool,
        processes: int,
        queue_ahead: int,
        warm: WarmBudget,
        done: queue.SimpleQueue,
    ) -> None:
        waiting = {
            name: {u for u in self.tasks[name].upstream if u in self.to_run} for name in self.to_run
        }
        dependents: dict[str, list[str]] = defaultdict(list)
        for name, upstream in waiting.items():
            for parent in upstream:
                dependents[parent].append(name)
        ready = deque(name for name in self.to_run if not waiting[name])
        running = self.running
        retried: set[str] = set()
        reported_starts = queue_ahead > 0  # the pool queues jobs, and says when each begins
        while ready or running:
            while ready and self.stop_reason is None and len(running) < processes + queue_ahead:
                alone = ready[0] in retried
                if (alone and running) or retried.intersection(running):
                    break  # a retried task runs alone, to tell a culprit from a victim
                name = ready.popleft()
                task = self.tasks[name]
                more_to_come = warm.handing_over(type(task), last_ready=not ready)
                running[name] = self._start(task, pool, done, not reported_starts, more_to_come)
            if not running:
                break
            item = done.get()
            if isinstance(item, list):  # a batch of progress reports
                self._progress(item)
                continue
            if isinstance(item, _JobBegan):
                self._began(item.task)
                continue
            name, future = item
            if self.futures.get(name) is not future:
                continue  # the end of a withdrawn job: its task is cancelled already
            del self.futures[name]
            started = name in self.active
            self.active.discard(name)
            if isinstance(future.exception(), WorkerLost) and name not in retried:
                retried.add(name)  # maybe a sibling's crash took its worker down
                warm.requeued(type(self.tasks[name]))
                self.tasks[name].discard(running.pop(name))
                ready.appendleft(name)
                continue
            if not started:  # it ended before its start was reported
                self.stream.emit(TaskStarted(task=name))
            status = self._finish(self.tasks[name], future, running.pop(name))
            if status is TaskStatus.EXECUTED:
                for child in dependents[name]:
                    waiting[child].discard(name)
                    if not waiting[child]:
                        ready.append(child)
            elif status is TaskStatus.FAILED:
                self._abort_downstream(name, dependents)
            if self.stop_reason is not None:
                self._withdraw(cast("QueuingPool", pool))

    def _withdraw(self, pool: QueuingPool) -> None:
        """An early stop: the jobs handed ahead that have not started (as far as the loop has
        heard) are taken back and their tasks cancelled; a start reported later is ignored."""
        waiting = [name for name in self.running if name not in self.active]
        if not waiting:
            return  # always so for a pool that does not queue: its jobs start when handed over
        pool.withdraw([self.futures.pop(name) for name in waiting])
        reason = f"the build stopped early: {self.stop_reason}"
        for name in waiting:
            self.tasks[name].discard(self.running.pop(name))
            self.settled.add(name)
            self.stream.emit(TaskCancelled(task=name, reason=reason))

    # -- one task -------------------------------------------------------------------------------
    def _start(
        self,
        task: Task,
        pool: Pool,
        done: queue.SimpleQueue,
        starts_now: bool,
        more_to_come: bool,
    ) -> Product | None:
        """Hands the task's job to the pool; ``starts_now``: the pool runs it at once (else the
        task starts when the pool reports it, ``_began``); ``more_to_come``: the job warms the
        next kernel (``WarmBudget``). A job that cannot be prepared (its product folder cannot be
        created, its job not built) fails this task alone, through the same queue."""
        if starts_now:
            self._started(task.name)
        staged = None
        try:
            task.prepare_folders()
            self.tokens[task.name] = token = new_token()
            staged = staged_product(task.product, token)
            job = task.make_job(staged, more_to_come=more_to_come)
            future = pool.submit(run_job, job)
        except Exception as error:
            future = Future()
            future.set_result(
                Outcome(task.name, "failed", 0.0, 0.0, failure=describe_error(task.name, error))
            )
        except BaseException:  # Ctrl-C during an inline (Serial) job: drop its staged output
            if staged is not None:
                task.discard(staged)
            raise
        self.futures[task.name] = future
        future.add_done_callback(lambda f, name=task.name: done.put((name, f)))
        return staged

    def _began(self, name: str) -> None:
        """The pool reports that the task's job began: the task starts (a late report, of a job
        withdrawn meanwhile, is ignored)."""
        if name in self.running and name not in self.active:
            self._started(name)

    def _started(self, name: str) -> None:
        self.active.add(name)
        self.stream.emit(TaskStarted(task=name))

    def _progress(self, batch: list[TaskProgress]) -> None:
        """A running task's reports (``nbpipe.executors.channel``); one that comes after its
        task ended (or before it was retried) is dropped."""
        for event in batch:
            if event.task in self.active:
                self.stream.emit(event)

    def _finish(self, task: Task, future: Future, staged: Product | None) -> TaskStatus:
        outcome = _outcome_of(task.name, future)
        if outcome.state == "ok":
            try:
                self._put_in_place(task, staged)
            except DAGBuildEarlyStop as stop:
                task.discard(staged)
                return self._stopped_early(task, str(stop), outcome)
            except Exception as error:
                outcome = Outcome(
                    task.name,
                    "failed",
                    outcome.started,
                    outcome.ended,
                    failure=describe_error(task.name, error),
                )
            else:
                self.settled.add(task.name)
                self.stream.emit(
                    TaskFinished(
                        task=task.name, elapsed=outcome.elapsed, products=_paths(task.product)
                    )
                )
                return TaskStatus.EXECUTED
        if staged is not None:
            task.discard(staged)
        if outcome.state == "early_stop":
            return self._stopped_early(task, outcome.message, outcome)
        return self._failed(task, outcome)

    def _put_in_place(self, task: Task, staged: Product) -> None:
        """The task's products replace the previous ones for good only once its ``on_finish``
        hook and its build records succeeded; otherwise the previous ones are put back. An
        early stop from the hook keeps the new products, unrecorded (as Ploomber leaves them)."""
        replacement = task.commit(staged, self.tokens[task.name])
        try:
            if task.on_finish:
                call_with_available(task.on_finish, task.hook_arguments())
            task.save_metadata()
        except DAGBuildEarlyStop:
            replacement.keep()  # the output stands, unrecorded: the build just stops here
            raise
        except BaseException:
            replacement.undo()
            raise
        replacement.keep()

    def _failed(self, task: Task, outcome: Outcome) -> TaskStatus:
        failure = outcome.failure or TaskFailure(task=task.name, type="Error", message="failed")
        if task.on_failure:
            try:
                call_with_available(
                    task.on_failure, {**task.hook_arguments(), "traceback": failure.text()}
                )
            except DAGBuildEarlyStop as stop:
                self.stop_reason = str(stop)
            except Exception as error:
                hook_failure = describe_error(task.name, error)
                failure = failure.with_note(
                    f"Its on_failure hook failed too:\n{hook_failure.text()}"
                )
        self.failures[task.name] = failure
        self.settled.add(task.name)
        self.stream.emit(TaskFailed(task=task.name, elapsed=outcome.elapsed, failure=failure))
        return TaskStatus.FAILED

    def _stopped_early(self, task: Task, message: str, outcome: Outcome) -> TaskStatus:
        self.stop_reason = message or f"task {task.name!r} asked to stop"
        self.settled.add(task.name)
        self.stream.emit(TaskStoppedEarly(task=task.name, elapsed=outcome.elapsed, message=message))
        return TaskStatus.STOPPED_EARLY

    def _abort_downstream(self, failed: str, dependents: dict[str, list[str]]) -> None:
        stack = list(dependents[failed])
        while stack:
            name = stack.pop()
            if name in self.settled:
                continue
            self.settled.add(name)
            self.stream.emit(TaskAborted(task=name, reason=f"upstream task {failed!r} failed"))
            stack.extend(dependents[name])

    def _cancel_rest(self, reason: str) -> None:
        for name in self.to_run:
            if name not in self.settled:
                self.settled.add(name)
                self.stream.emit(TaskCancelled(task=name, reason=reason))


def _outcome_of(name: str, future: Future) -> Outcome:
    """The worker's outcome, or a failure that says why the job never ran to an outcome."""
    try:
        return future.result()
    except WorkerLost:
        message = "the worker process running this task died (killed, or crashed in native code)"
        kind = "WorkerLost"
    except Exception as error:
        message = (
            f"could not run this task in a worker: {error}\n"
            "Under the Parallel executor, a task's function and params must be picklable: "
            "define functions at the top level of an importable module."
        )
        kind = "WorkerError"
    return Outcome(
        name, "failed", 0.0, 0.0, failure=TaskFailure(task=name, type=kind, message=message)
    )


def _paths(product: Product) -> list[str]:
    return [str(file) for file in files_of(product)]
