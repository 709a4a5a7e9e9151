"""How many kernels the build's workers should start ahead of their next notebook.

A worker that runs a notebook while more notebooks wait starts the next one's kernel during the
current one (``nbpipe.notebooks.kernels.warm_kernel``): the next task then finds its kernel
ready. Each such *warm* kernel is worth having only if a notebook comes to take it; one that
none takes is started, then shut down when the pool closes: CPU spent for nothing, at the very
end of the build, beside its last notebooks.

So the loop keeps count, per kind of task. The first ``workers`` jobs land on workers holding no
kernel warmed by a job: they start theirs cold, or, in a build with a task of that kind for every
worker (``every_worker_gets``), each worker starts its first kernel as it starts (the same count
of kernels, started earlier). Each later job lands on a worker that has just finished a job, and
takes the kernel promised there. A job is told to warm one (``more_to_come``) only while more
tasks of its kind are still to be handed over than warm kernels already promised plus idle
workers that will take one cold. Examples, on 2 workers: 2 notebooks start 2 kernels (warming
"while any is left" started 3); 16 notebooks: the first 14 jobs warm one each, the last two take
the kernels of the 13th and 14th: 16 kernels (not 17).

Which worker takes which job is the pool's choice, though: the worker that went idle first. A job
that lands on a worker other than the one holding its kernel starts cold, and that kernel goes
unused. That happens where the ready tasks run out while a notebook still waits for running
ones, at a join: in 1 -> 6 -> 1, the last notebook waits for the last two middles, and of their
jobs only the earlier-handed one warmed a kernel; when its worker finished second, the last
notebook started cold (0.2 s, in four builds of six). So the job handed over as the last ready
task (``last_ready``) warms a kernel too: every worker that may take the next notebook holds one,
at the cost of one kernel left unused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable


class WarmBudget:
    """``handing_over(kind)`` at each job handed to the pool says whether that job should warm
    the next kernel; ``requeued(kind)`` gives back a task that will be handed over again (its
    worker was lost)."""

    def __init__(self, kinds: Iterable[Hashable], workers: int):
        self.unstarted = Counter(kinds)  # tasks of each kind not handed over yet
        self.workers = workers
        self.handed: Counter = Counter()
        self.promised: Counter = Counter()  # warm kernels promised and not taken yet

    def every_worker_gets(self, kind: Hashable) -> bool:
        """Before the first job: whether there are at least as many tasks of ``kind`` as
        workers."""
        return self.unstarted[kind] >= self.workers

    def handing_over(self, kind: Hashable, last_ready: bool = False) -> bool:
        """One more task of ``kind`` goes to the pool: True when its job should warm a kernel
        for a later one. ``last_ready``: no other task is ready to follow it now (the next one
        waits for running ones), so the next task of its kind goes to whichever worker is idle
        first, maybe not the one holding the kernel promised for it: this job warms one too,
        if tasks of its kind remain and every worker has had one (a worker that has not holds
        the kernel it started ahead, or is counted among those that start cold)."""
        self.unstarted[kind] -= 1
        if self.handed[kind] >= self.workers and self.promised[kind] > 0:
            self.promised[kind] -= 1  # it lands where the kernel warmed for it waits
        self.handed[kind] += 1
        idle_workers = max(0, self.workers - self.handed[kind])  # they will start cold
        warm = self.unstarted[kind] > self.promised[kind] + idle_workers
        every_worker_had_one = idle_workers == 0  # none waits with a kernel started ahead
        warm = warm or (last_ready and every_worker_had_one and self.unstarted[kind] > 0)
        if warm:
            self.promised[kind] += 1
        return warm

    def requeued(self, kind: Hashable) -> None:
        self.unstarted[kind] += 1
