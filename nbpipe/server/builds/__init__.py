"""Running builds: one ``nbpipe build --json`` child process per build, watched from the event loop.

A build never runs in the server process: a build that crashes, hangs or eats memory takes down
its own process only. The parts, by job:

* ``admission``: which builds may run (one per pipeline, ``max_concurrent`` in all);
* ``supervisor``: the child process (its own session, the parent-death signal, its log, SIGTERM
  then SIGKILL of the whole tree);
* ``protocol``: the child's JSON lines (the header's schema version, the engine's events, the
  summary) and the final state once it exited;
* ``manager``: the coordinator. It keeps one ``BuildState`` per build and passes every event,
  the engine's and its own, through ``BuildState.apply``, records the result in the store, then
  emits the event on the server's event bus; and it recovers after a dead server.

Life of a build::

    start()    admit (409 if the pipeline builds, 429 at the limit) -> build_created: recorded
               "starting", emitted -> spawn the CLI (--partially=T per target task), from the
               event loop's thread
    _watch()   each stdout line that is an engine event: apply, record, emit (recorded first, so
               a client that gets an event and reloads the REST snapshot sees at least that event)
               process exit -> the final state (from the stop that was asked, the engine's
               outcome, the summary, the exit code) -> build_ended applied, recorded, emitted:
               tasks the process left unsettled (it died) become cancelled by the reducer's rule
    cancel()   build_cancelling; SIGTERM to the process group: the CLI turns it into
               KeyboardInterrupt, stops its workers, shuts kernels down, discards staged products
               and reports its tasks cancelled; after ``grace_period`` whatever is left of the
               tree (kernels included) gets SIGKILL
    stop_all() the server is stopping: the same stop, and the builds end "interrupted"
    recover()  at start-up: builds of a dead server get build_ended(interrupted), and a build
               process it left behind is stopped
"""

from nbpipe.server.builds.manager import BuildManager, BuildSettings

__all__ = ["BuildManager", "BuildSettings"]
