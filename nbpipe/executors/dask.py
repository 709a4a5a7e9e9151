"""The Dask executor: tasks on a ``dask.distributed`` cluster, local or remote.

The scheduler loop is the one every executor shares: it hands each job to ``pool.submit`` and
waits on the futures. Here a job becomes one Dask task (``client.submit``) whose result is relayed
to a ``concurrent.futures.Future``, Dask's lost-worker errors (``KilledWorker``, a closed
connection) reported as the executors' neutral :class:`WorkerLost`.

The loop hands this pool one job ahead per worker thread (``queue_ahead``): Dask sends it to a
worker, where it waits behind the running one, so a worker thread goes from one job to the next
at once instead of idling for the round trip (the job's end to the loop, the next
``client.submit`` to the scheduler, then to a worker: 15-20 ms with Dask's batched messages). A
job therefore reports its own start: the first thing it does on the worker is publish a start
message on the build's topic, which the pool relays to the loop (``ProgressLine.started``); the
task starts then. An early stop withdraws the jobs that have not reported a start
(``withdraw``): their Dask tasks are cancelled, and one that began meanwhile is stopped as a
cancel stops it (below); a job that finds itself withdrawn when it begins does not run.

On the worker, each Dask worker thread hands its jobs to a *runner*: a child process of the worker
(one per thread, reused from job to job) that changes to the build's working directory, runs the
job (a function, or a notebook in a fresh kernel: so at most one kernel per worker thread) and
answers with the job's :class:`~nbpipe.executors.worker.Outcome`. The runner is the kill switch:

- a job that kills its process (``os._exit``, a segfault) takes only its runner down: the task
  ends with ``WorkerLost`` and the scheduler retries it once, alone, exactly as under Parallel;
- a cancel (Ctrl-C, the server's cancel) cancels the queued futures (those handed ahead too) and
  asks every worker to stop the runners of this build's running jobs (SIGTERM, which unwinds
  papermill so that it stops its kernel; SIGKILL after a grace period): notebooks and their
  kernels stop within seconds, and the Dask workers themselves stay up;
- a Dask worker that dies (killed, out of memory) takes its runners with it (they die with their
  parent, ``lifeline``); Dask re-runs the task on another worker, and after
  ``distributed.scheduler.allowed-failures`` such deaths reports ``KilledWorker``: that task
  fails alone.

A runner keeps the next notebook's kernel warm, as a ``Parallel`` worker does
(``nbpipe.notebooks.kernels``): a notebook job told that more notebooks follow starts one while
it runs, and the runner's next notebook takes it. Runners outlive the build (the next build on a
running cluster reuses them), so a kernel still warm when the build ends would be left running on
the cluster: the pool's close asks every worker, in one ``client.run``, to have each idle runner
that last ran a job of this build shut its warm kernel down (``shutdown_build_kernels``), and a
runner busy with one of its jobs does it when that job ends. A runner stopped by a cancel takes
its kernels with it (``stop_jobs``); a runner shuts its kernel down when its worker goes away
(the end of its connection), and by itself after ``WARM_KERNEL_IDLE_LIMIT`` seconds with no
message: a build whose process was killed never closes its pool.

Products are written by the runner, staged then renamed by the building process, so workers must
see the project at the same path as the building process (a shared filesystem): a worker that
cannot see the build's working directory fails the task and says so.

With no address, ``Dask`` starts a ``LocalCluster`` (worker processes) for the build and closes it
afterwards; with ``address=`` (or ``$DASK_SCHEDULER_ADDRESS``) or ``client=`` it uses a running
cluster and leaves it running. ``with Dask(...) as executor:`` opens the cluster ahead of the
builds (the CLI does, to print the dashboard link), and then ``repr(executor)``, which the build
records as ``build_started``'s ``executor``, names the scheduler and its dashboard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from nbpipe.executors.base import Executor, WorkerLost
from nbpipe.executors.channel import ProgressLine
from nbpipe.executors.worker import Outcome

logger = logging.getLogger("nbpipe")

#: The Dask resource that caps notebook kernels on workers that declare it.
KERNEL = "KERNEL"
#: Seconds between SIGTERM and SIGKILL when a cancel stops a running job's runner; also how
#: long a runner has to answer when asked to shut its warm kernel down (it is killed if it does
#: not).
STOP_GRACE = 5.0
#: Seconds a pool's close waits for the workers' answers (a worker that is gone or hung is
#: given up on: its runners die with it, or stop their kernels by themselves, below).
CLOSE_TIMEOUT = 2 * STOP_GRACE
#: Seconds a runner keeps a warm kernel with no message from its worker: a build that went away
#: without closing its pool (its process was killed) leaves no kernel running for longer.
WARM_KERNEL_IDLE_LIMIT = 300.0

MISSING = (
    "the Dask executor needs dask.distributed, which is not installed: "
    "pip install 'nbpipe[dask]' (or pip install 'dask[distributed]')"
)


class DaskUnavailable(RuntimeError):
    """The Dask cluster cannot be reached or has no workers: nothing was started."""


def _require_distributed() -> None:
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise ImportError(MISSING)


class Dask(Executor):
    """Runs a DAG on a ``dask.distributed`` cluster.

    ``address``: a scheduler's address (``tcp://host:8786``), or an existing
    ``distributed.Client``; default ``$DASK_SCHEDULER_ADDRESS``, else a ``LocalCluster`` started for
    the build (worker processes) and closed after it. ``client``: an existing ``Client`` (left open).
    ``n_workers``, ``threads_per_worker``, ``resources`` (e.g. ``{"KERNEL": 1}``) and
    ``**cluster_kwargs`` configure the ``LocalCluster``; workers of a running cluster declare
    their resources themselves (``dask worker ADDRESS --resources KERNEL=1``).
    ``connect_timeout``: seconds to reach the scheduler and see a worker.
    """

    def __init__(
        self,
        address: Any = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        resources: dict[str, float] | None = None,
        print_progress: bool = False,
        client: Any = None,
        connect_timeout: float = 10.0,
        **cluster_kwargs: Any,
    ):
        _require_distributed()
        if address is not None and not isinstance(address, str):
            client, address = address, None  # an existing Client given as the address
        for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if resources is not None and not isinstance(resources, dict):
            raise ValueError(
                f"resources must be a mapping such as {{'KERNEL': 1}}, not {resources!r}"
            )
        self.address = address or (
            None if client is not None else os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        )
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.resources = resources
        self.print_progress = print_progress
        self.connect_timeout = connect_timeout
        self.cluster_kwargs = cluster_kwargs
        self._given_client = client
        self._client = client
        self._cluster = None
        self._opened = 0  # nesting of start()/__enter__

    # -- the cluster ----------------------------------------------------------------------------
    @property
    def processes(self) -> int:
        """How many jobs run at once: the cluster's worker threads (known once it is open)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                return max(1, sum(self._client.nthreads().values()))
        workers = self.n_workers or os.cpu_count() or 1
        return workers * self.threads_per_worker

    @property
    def queue_ahead(self) -> int:
        """One job waiting per worker thread: each finds its next job on its worker."""
        return self.processes

    @property
    def client(self):
        return self._client

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, when the cluster is open and serves one (needs bokeh)."""
        if self._client is None:
            return None
        with contextlib.suppress(Exception):
            services = self._client.scheduler_info(n_workers=0).get("services", {})
            if "dashboard" in services:
                return self._client.dashboard_link
        return None

    def start(self) -> Dask:
        """Connects to the cluster (or starts the LocalCluster); fails with
        :class:`DaskUnavailable` when the scheduler cannot be reached or no worker joins."""
        self._opened += 1
        if self._client is not None:
            return self
        from distributed import Client, LocalCluster

        try:
            if self.address is None:
                self._cluster = LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    resources=self.resources,
                    **{"dashboard_address": "127.0.0.1:0", **self.cluster_kwargs},
                )
                self._client = Client(self._cluster, timeout=self.connect_timeout)
            else:
                try:
                    self._client = Client(self.address, timeout=self.connect_timeout)
                except (OSError, TimeoutError) as error:
                    raise DaskUnavailable(
                        f"cannot reach the Dask scheduler at {self.address} "
                        f"(tried for {self.connect_timeout:g} s): {error}. Start one with "
                        "`dask scheduler` and workers with `dask worker ADDRESS`, or fix the address"
                    ) from None
            try:
                self._client.wait_for_workers(1, timeout=self.connect_timeout)
            except (OSError, TimeoutError):
                raise DaskUnavailable(
                    f"no Dask worker joined the scheduler at {self._client.scheduler.address} "
                    f"within {self.connect_timeout:g} s: start some with `dask worker ADDRESS`"
                ) from None
        except BaseException:
            self._opened -= 1
            self._close_owned()
            raise
        return self

    def close(self) -> None:
        """Undoes one ``start()``; the last one closes what this executor started (a client it
        connected, the LocalCluster), never a client it was given."""
        self._opened = max(0, self._opened - 1)
        if self._opened == 0:
            self._close_owned()

    def _close_owned(self) -> None:
        if self._client is not None and self._client is not self._given_client:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Dask:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._client is None:
            where = f"address={self.address!r}" if self.address else "LocalCluster"
            workers = f", n_workers={self.n_workers}" if self.address is None else ""
            return f"Dask({where}{workers})"
        address = getattr(self._client.scheduler, "address", None)
        return f"Dask(address={address!r}, dashboard={self.dashboard_link!r})"

    @contextmanager
    def pool(
        self,
        imports: Sequence[str] = (),
        warm_up: Callable[[], None] | None = None,
        progress: ProgressLine | None = None,
    ) -> Iterator[DaskPool]:
        """A pool on the cluster, opened for this build unless already open. Runners import
        what notebooks need on their first notebook, and start their first kernel then (later
        ones are warmed during the notebook before); the pool's close shuts down the kernels
        its build left warm."""
        self.start()
        try:
            pool = DaskPool(self._client, progress)
            try:
                yield pool
            finally:
                pool.close()
        finally:
            self.close()


class DaskPool:
    """Submits jobs as Dask tasks; ``terminate`` cancels the queued ones and stops the running
    ones on their workers, ``withdraw`` does the same for some. Jobs' starts, progress reports
    and outcomes come back on a topic of this pool's (``Worker.log_event``,
    ``Client.subscribe_topic``), in the order the job sent them: the scheduler pushes them to
    this client as they come, which spares a round trip per task (fetching the Dask task's
    result). The Dask future settles what the topic did not: a lost worker, a cancel, a job
    that ended without publishing."""

    def __init__(self, client, progress: ProgressLine | None = None):
        self.client = client
        self.progress = progress
        self.topic = f"nbpipe-{uuid.uuid4().hex}"
        client.subscribe_topic(self.topic, self._on_topic)
        from nbpipe.executors.dask_plugin import StopAbandonedJobs

        client.register_plugin(StopAbandonedJobs())
        self.project_dir = os.getcwd()
        # the building process's import path: workers append what they lack (the project's
        # modules, found beside pipeline.yaml), after their own packages
        self.sys_path = [os.path.abspath(p) for p in sys.path if p]
        info = client.scheduler_info(n_workers=-1)
        self.kernel_resource = any(
            KERNEL in (worker.get("resources") or {}) for worker in info["workers"].values()
        )
        self._futures: dict[str, Any] = {}
        self._outers: dict[str, Future] = {}  # Dask key -> the future the loop waits on
        self._lock = threading.Lock()
        self._ran_notebooks = False  # then runners may hold kernels warmed for this build

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        job = args[0] if args else None
        task = getattr(job, "task", "job")
        payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        is_notebook = hasattr(job, "kernel_name")
        self._ran_notebooks |= is_notebook
        inner = self.client.submit(
            _run_on_worker,
            task,
            payload,
            self.project_dir,
            self.sys_path,
            self.topic,
            key=f"nbpipe-{task}-{uuid.uuid4().hex}",
            pure=False,
            retries=0,
            resources={KERNEL: 1} if is_notebook and self.kernel_resource else None,
        )
        outer: Future = Future()
        with self._lock:
            self._futures[inner.key] = inner
            self._outers[inner.key] = outer
        inner.add_done_callback(lambda done: self._settle(done, outer))
        return outer

    def _on_topic(self, event: tuple[float, Any]) -> None:
        """A message published by a job (on the client's event loop): its start, its outcome,
        or one of its progress reports."""
        message = event[1]
        if isinstance(message, dict) and "started" in message:
            logger.debug("task %s began on the Dask worker %s", message["task"], message["worker"])
            with self._lock:  # relayed while its future is pending: before its end, if at all
                if message["started"] in self._outers and self.progress is not None:
                    self.progress.started(message["task"])
        elif isinstance(message, dict) and "outcome" in message:
            with self._lock:
                outer = self._outers.pop(message.get("key"), None)
            if outer is not None:
                with contextlib.suppress(Exception):  # unreadable: the Dask future settles it
                    outer.set_result(pickle.loads(message["outcome"]))
        elif self.progress is not None:
            _relay_progress(event, self.progress)

    def _settle(self, done, outer: Future) -> None:
        with self._lock:
            self._futures.pop(done.key, None)
            if self._outers.pop(done.key, None) is None:
                return  # settled by the job's published outcome
        try:
            if done.status == "cancelled":
                outer.set_exception(WorkerLost("the job was cancelled on the Dask cluster"))
            elif done.status == "finished":
                outer.set_result(done.result())
            else:
                outer.set_exception(_as_worker_lost(done.exception()))
        except Exception as error:  # the connection to the scheduler went away meanwhile
            if not outer.done():
                outer.set_exception(_as_worker_lost(error))

    def running_keys(self) -> list[str]:
        with self._lock:
            return list(self._futures)

    def terminate(self) -> None:
        """Cancels queued jobs and stops running ones (and their kernels) on the workers."""
        with self._lock:
            futures = list(self._futures.values())
        self._stop(futures)

    def withdraw(self, futures: Sequence[Future]) -> None:
        """Takes back jobs handed ahead (``QueuingPool``): their Dask tasks are cancelled, and
        a job that began meanwhile is stopped, as ``terminate`` stops it, before this returns.
        Each future still settles (the loop ignores it)."""
        wanted = set(futures)
        with self._lock:
            keys = [key for key, outer in self._outers.items() if outer in wanted]
            inners = [self._futures[key] for key in keys if key in self._futures]
        self._stop(inners)

    def _stop(self, futures: list) -> None:
        """Cancels these Dask tasks; then each worker stops the runner of any that runs, and
        notes the others as withdrawn, so that one whose thread was just starting never runs
        (``stop_jobs``)."""
        if not futures:
            return
        keys = [future.key for future in futures]
        with contextlib.suppress(Exception):
            self.client.cancel(futures)
        with contextlib.suppress(Exception):
            self.client.run(stop_jobs, keys, STOP_GRACE, on_error="ignore")

    def close(self) -> None:
        """Cancels what is left of the build's jobs; then, if it ran notebooks, has the runners
        shut down the kernels they warmed for it (one round trip to all workers at once,
        bounded by ``CLOSE_TIMEOUT``; a worker that is gone is skipped). ``terminate`` comes
        before a close, never instead of it: the runners it stopped took their kernels along."""
        with self._lock:
            futures = list(self._futures.values())
        if futures:
            with contextlib.suppress(Exception):
                self.client.cancel(futures)
        if self._ran_notebooks:
            with contextlib.suppress(Exception):
                self.client.run(
                    shutdown_build_kernels,
                    self.topic,
                    STOP_GRACE,
                    on_error="ignore",
                    callback_timeout=CLOSE_TIMEOUT,
                )
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)


def _relay_progress(event: tuple[float, Any], progress: ProgressLine) -> None:
    """A batch of progress reports published by a worker (``(time, [event dict, ...])``), to
    the loop."""
    from nbpipe.engine.events import TaskProgress, UnknownEvent, event_from_dict

    with contextlib.suppress(UnknownEvent, TypeError, ValueError):
        batch = [event_from_dict(data) for data in event[1]]
        progress.send([report for report in batch if isinstance(report, TaskProgress)])


def _as_worker_lost(error: BaseException | None) -> BaseException:
    """Dask's ways of saying a worker went away, as the executors' ``WorkerLost``."""
    if error is None:
        return WorkerLost("the Dask task ended without a result")
    if isinstance(error, WorkerLost):
        return error
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    if isinstance(error, (KilledWorker, CommClosedError, FutureCancelledError)):
        return WorkerLost(f"{type(error).__name__}: {error}")
    return error


# -- on the worker ------------------------------------------------------------------------------

_runners: dict[int, _Runner] = {}  # worker thread -> its runner
_running: dict[str, _Runner] = {}  # Dask key -> the runner running it
_executed: deque[str] = deque(maxlen=10_000)  # keys of jobs this worker ran, oldest first
_withdrawn: dict[str, None] = {}  # keys stopped before their job began here, oldest first
_closed_builds: dict[str, None] = {}  # topics of builds whose pool closed, oldest first
_WITHDRAWN_KEPT = 10_000  # of each of the two above
_state_lock = threading.Lock()


def _run_on_worker(
    task: str, payload: bytes, project_dir: str, sys_path: list[str], topic: str | None = None
) -> Outcome:
    """The Dask task: hands the job to this thread's runner and returns its outcome. On
    ``topic`` it publishes its start first (the job may have waited on this worker: its task
    starts now), then the job's progress reports, then its outcome (the building process learns
    the outcome from there, a round trip sooner than from the Dask task's result). A job
    withdrawn or cancelled before it got here does not run."""
    from distributed.worker import get_worker, thread_state

    from nbpipe.engine.events import TaskFailure

    key = getattr(thread_state, "key", None) or f"unknown-{uuid.uuid4().hex}"
    worker = get_worker()
    runner = _runner_of_this_thread()
    with _state_lock:  # against stop_jobs: either it finds this job running, or it never runs
        withdrawn = key in _withdrawn
        if withdrawn:
            del _withdrawn[key]
        else:
            _running[key] = runner
    if withdrawn:
        now = time.time()
        failure = TaskFailure(task=task, type="Withdrawn", message="withdrawn before it began")
        return Outcome(task, "failed", now, now, failure=failure)

    def publish(batch) -> None:
        worker.log_event(topic, [event.to_dict() for event in batch])

    try:
        if topic:
            with contextlib.suppress(Exception):  # unpublished: the task starts at its end
                worker.log_event(topic, {"started": key, "task": task, "worker": worker.address})
        if not os.path.isdir(project_dir):
            where = f"{worker.address} on host {socket.gethostname()}"
            now = time.time()
            message = (
                f"the Dask worker {where} cannot see the project directory {project_dir}: "
                "workers must share the building machine's filesystem, at the same path "
                "(products are written by the workers)"
            )
            failure = TaskFailure(task=task, type="ProjectNotVisible", message=message)
            return Outcome(task, "failed", now, now, failure=failure)
        outcome = runner.run(
            task, payload, project_dir, sys_path, topic, publish if topic else None
        )
        with _state_lock:
            closed = topic in _closed_builds
        if closed:  # the build closed while its job ran here: the kernel it warmed goes
            runner.shutdown_warm_kernels(STOP_GRACE)
    finally:
        with _state_lock:
            _running.pop(key, None)
            _executed.append(key)
    if topic:
        with contextlib.suppress(Exception):  # unpublished: the client fetches the result
            worker.log_event(topic, {"key": key, "outcome": pickle.dumps(outcome)})
    return outcome


def executed_keys() -> list[str]:
    """The Dask keys of the jobs this worker ran (``client.run(executed_keys)`` asks each)."""
    with _state_lock:
        return list(_executed)


def runner_pids() -> list[int]:
    """The process ids of this worker's runners."""
    with _state_lock:
        return [runner.process.pid for runner in _runners.values() if runner.alive()]


def _runner_of_this_thread() -> _Runner:
    ident = threading.get_ident()
    with _state_lock:
        runner = _runners.get(ident)
    if runner is None or not runner.alive():
        runner = _Runner()
        with _state_lock:
            _runners[ident] = runner
    return runner


async def shutdown_build_kernels(topic: str, grace: float) -> int:
    """``client.run`` it when a build's pool closes: the runners of this worker that last ran a
    job of the build ``topic`` shut their warm kernels down, all at once, each answering within
    ``grace`` seconds (one that does not is killed, and its kernels with it). A runner busy
    with a job of the build does it when the job ends (the build is noted as closed); one busy
    with another build's job holds that build's kernel, and keeps it. Returns how many kernels
    were shut down."""
    import asyncio  # here, on the worker: every other process importing this module skips it

    with _state_lock:
        _closed_builds[topic] = None
        for old in list(_closed_builds)[: max(0, len(_closed_builds) - _WITHDRAWN_KEPT)]:
            del _closed_builds[old]
        runners = [runner for runner in _runners.values() if runner.build == topic]
    stopped = await asyncio.gather(
        *(
            asyncio.to_thread(runner.shutdown_warm_kernels, grace, topic, blocking=False)
            for runner in runners
        )
    )
    return sum(stopped)


async def stop_jobs(keys: list[str], grace: float) -> int:
    """Stops the runners running any of ``keys`` on this worker: SIGTERM (papermill then stops
    its kernel), SIGKILL after ``grace`` seconds; then SIGKILL to whatever the runners had
    started and is still there (a kernel whose runner was killed before it could stop it, a
    warm kernel, a kernel template). The other keys are noted as withdrawn: a job among them
    whose Dask task starts here after all (its thread was starting) does not run. Returns how
    many runners were stopped."""
    import asyncio

    import psutil

    with _state_lock:
        runners = [_running[key] for key in keys if key in _running]
        for runner in runners:
            _runners.pop(runner.thread, None)  # the thread starts a fresh runner next time
        _withdrawn.update((key, None) for key in keys if key not in _running)
        for old in list(_withdrawn)[: max(0, len(_withdrawn) - _WITHDRAWN_KEPT)]:
            del _withdrawn[old]
    below: list[psutil.Process] = []
    for runner in runners:
        with contextlib.suppress(psutil.Error):
            below += psutil.Process(runner.process.pid).children(recursive=True)
    for runner in runners:
        runner.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(runner.alive() for runner in runners) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for runner in runners:
        if runner.alive():
            runner.signal(signal.SIGKILL)
    for process in below:
        with contextlib.suppress(psutil.Error):
            process.kill()  # psutil checks it is still the same process, not a reused pid
    return len(runners)


#: The message that asks a runner to shut its warm kernels down (a job is a tuple).
_SHUTDOWN_WARM_KERNELS = "shutdown-warm-kernels"


class _Runner:
    """A child process of the worker that runs one job at a time for one worker thread; between
    jobs it may be asked to shut its warm kernels down. ``lock`` is held for either exchange on
    its connection."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        self.thread = threading.get_ident()
        self.lock = threading.Lock()
        self.build: str | None = None  # the topic of the build of its last job
        code = f"from nbpipe.executors.dask import runner_main; runner_main({theirs.fileno()})"
        # A notebook's kernel is forked from a kernel template of the runner's, or started as
        # a new process, as the building process decided (the job's kernel key); a cancel stops
        # the runner and everything below it (stop_jobs).
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the worker's terminal is the worker's
        )
        theirs.close()
        self.connection = Connection(ours.detach())

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def run(
        self,
        task: str,
        payload: bytes,
        project_dir: str,
        sys_path: list[str],
        build: str | None = None,
        publish: Callable[[Any], None] | None = None,
    ) -> Outcome:
        """The outcome of a job of ``build`` (its topic); the batches of progress events the
        runner sends before it go to ``publish``."""
        try:
            with self.lock:
                self.build = build
                self.connection.send_bytes(pickle.dumps((task, payload, project_dir, sys_path)))
                while not isinstance(answer := pickle.loads(self.connection.recv_bytes()), Outcome):
                    if publish is not None:
                        with contextlib.suppress(Exception):  # a lost report, not a lost task
                            publish(answer)
        except (EOFError, OSError):
            self.signal(signal.SIGKILL)
            self.process.wait()
            self.connection.close()
            raise WorkerLost(
                f"the process running task {task!r} on a Dask worker died "
                f"(exit code {self.process.returncode}: killed, or crashed in native code)"
            ) from None
        return answer

    def shutdown_warm_kernels(
        self, grace: float, build: str | None = None, blocking: bool = True
    ) -> int:
        """Has the runner shut its warm kernels down (only if its last job was of ``build``,
        when given); returns how many it stopped. Without ``blocking``, a runner busy with a job
        is left alone (0). A runner that does not answer within ``grace`` seconds is killed
        (its kernels die with it: they are its descendants, which die with their parent)."""
        if not self.lock.acquire(blocking=blocking):
            return 0
        try:
            if (build is not None and self.build != build) or not self.alive():
                return 0
            self.connection.send_bytes(pickle.dumps(_SHUTDOWN_WARM_KERNELS))
            if self.connection.poll(grace):
                return pickle.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            pass
        finally:
            self.lock.release()
        self.signal(signal.SIGKILL)  # no answer: it may not serve another job
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace)
        return 0


def runner_main(fd: int) -> None:
    """The runner's loop: a job in, its outcome out, until the worker closes the connection; or
    a request to shut its warm kernels down, answered with how many it stopped. Its warm
    kernels are shut down as the loop ends, and after ``WARM_KERNEL_IDLE_LIMIT`` seconds with
    no message."""
    from nbpipe.executors.channel import install_sink
    from nbpipe.executors.lifeline import die_with_parent
    from nbpipe.executors.worker import _exit_on_sigterm, describe_error
    from nbpipe.notebooks.kernels import declare_notebook_worker, shutdown_warm_kernels

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    die_with_parent(os.getppid())
    declare_notebook_worker()
    connection = Connection(fd)
    install_sink(
        lambda event: connection.send_bytes(pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL))
    )
    while True:
        try:
            if not connection.poll(WARM_KERNEL_IDLE_LIMIT):
                shutdown_warm_kernels()
                continue
            message = pickle.loads(connection.recv_bytes())
        except EOFError:
            shutdown_warm_kernels()
            return
        if message == _SHUTDOWN_WARM_KERNELS:
            connection.send_bytes(pickle.dumps(shutdown_warm_kernels()))
            continue
        task, payload, project_dir, sys_path = message
        sys.path.extend(p for p in sys_path if p not in sys.path)
        try:
            os.chdir(project_dir)
            fn, args = pickle.loads(payload)
            outcome = fn(*args)
        except Exception as error:  # the job could not be loaded here (a module not found)
            now = time.time()
            outcome = Outcome(task, "failed", now, now, failure=describe_error(task, error))
        connection.send_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
