"""``NbpipeApp``: the Jupyter server extension (``c.NbpipeApp.*`` settings, services, handlers).

It wires four services at server start-up and hands them to the handlers:

* ``store``: build history in ``<state_dir>/builds.sqlite`` (``nbpipe.server.store``);
* ``builds``: the build manager running ``nbpipe build --json`` children (``nbpipe.server.builds``);
* ``pipelines``: the listing and per-pipeline status (``nbpipe.server.pipelines``);
* ``task_map``: which tasks a file is, with their injected parameters (``nbpipe.server.task_map``).

Build events reach browsers through the server's event bus: the schema in ``events/build.yaml``
is registered at start-up and every build event (the contract's event in an envelope) is emitted
with ``event_logger.emit``; JupyterLab receives them over ``/api/events/subscribe``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Integer, Unicode, default, validate

from nbpipe.server.builds import BuildManager, BuildSettings
from nbpipe.server.handlers import handlers
from nbpipe.server.pipelines import PipelineService, PipelineSettings
from nbpipe.server.store import StoreThread, open_history
from nbpipe.server.task_map import TaskMap, TaskMapSettings
from nbpipe.server.views import Snapshots

EVENT_SCHEMA = Path(__file__).parent / "events" / "build.yaml"
EVENT_SCHEMA_ID = "https://events.nbpipe.org/build/v2"


class NbpipeApp(ExtensionApp):
    """Builds pipelines from JupyterLab: REST API, live events, build history."""

    name = "nbpipe"
    description = "Build nbpipe pipelines from Jupyter: REST API, live events, build history."
    load_other_extensions = True

    max_concurrent_builds = Integer(
        4,
        help="How many builds may run at once on this server (across pipelines); one more is "
        "refused with 429. Each pipeline builds at most once at a time (409).",
    ).tag(config=True)

    state_dir = Unicode(
        help="Folder for the build history database (builds.sqlite). Default: "
        "<jupyter data dir>/nbpipe. Servers with different root folders can share it.",
    ).tag(config=True)

    processes = Integer(
        None,
        allow_none=True,
        help="Run builds with the Parallel executor and this many worker processes "
        "(nbpipe build --processes N). None keeps each pipeline's own executor setting.",
    ).tag(config=True)

    cancel_grace_period = Float(
        3.0,
        help="Seconds a cancelled build gets to stop its kernels and workers after SIGTERM "
        "before what is left of its process tree is killed (SIGKILL).",
    ).tag(config=True)

    python = Unicode(
        sys.executable,
        help="The Python interpreter that runs builds (python -m nbpipe build) and loads "
        "pipelines for their status; nbpipe must be installed in it. Default: the server's.",
    ).tag(config=True)

    build_env = Dict(
        value_trait=Unicode(),
        help="Environment variables added to every build process.",
    ).tag(config=True)

    discovery_depth = Integer(
        3,
        help="How many folder levels below the root are searched for pipeline*.yaml files. "
        "Hidden folders, virtual environments and node_modules are never searched.",
    ).tag(config=True)

    status_timeout = Float(
        60.0,
        help="Seconds loading a pipeline for its status may take before the request fails (504).",
    ).tag(config=True)

    allow_hidden = Bool(
        False,
        help="Whether pipelines in hidden folders may be named by clients "
        "(ContentsManager.allow_hidden by default).",
    ).tag(config=True)

    log_tail_bytes = Integer(
        64 * 1024, help="How much of each build's stderr is kept in the history (bytes)."
    ).tag(config=True)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "nbpipe")

    @default("allow_hidden")
    def _default_allow_hidden(self) -> bool:
        contents = getattr(self.serverapp, "contents_manager", None)
        return bool(getattr(contents, "allow_hidden", False))

    @validate("max_concurrent_builds", "discovery_depth")
    def _non_negative(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 0:
            raise ValueError(f"{proposal['trait'].name} cannot be negative")
        return proposal["value"]

    @validate("processes")
    def _positive_processes(self, proposal: dict[str, Any]) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 1:
            raise ValueError("processes must be at least 1 (or None)")
        return proposal["value"]

    # -- start-up ------------------------------------------------------------------------------
    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None
        self.root = os.path.realpath(os.path.expanduser(serverapp.root_dir))
        store, notices = open_history(self.state_dir, self.root)
        self.store = StoreThread(store)
        serverapp.event_logger.register_event_schema(EVENT_SCHEMA)
        self.builds = BuildManager(
            self.root,
            self.store,
            self._emit,
            BuildSettings(
                python=self.python,
                max_concurrent=self.max_concurrent_builds,
                processes=self.processes,
                grace_period=self.cancel_grace_period,
                log_tail_bytes=self.log_tail_bytes,
                env=dict(self.build_env),
            ),
        )
        interrupted = self.builds.recover()
        if interrupted:
            self.log.warning(
                "nbpipe: %d build(s) were running when the server last stopped; marked interrupted",
                len(interrupted),
            )
        self.snapshots = Snapshots(self.root, self.store, self.builds)
        self.pipelines = PipelineService(
            self.root,
            self.store,
            self.builds,
            PipelineSettings(
                python=self.python,
                max_depth=self.discovery_depth,
                timeout=self.status_timeout,
                allow_hidden=self.allow_hidden,
            ),
            notices=notices,
        )
        self.task_map = TaskMap(
            self.root,
            TaskMapSettings(
                python=self.python,
                max_depth=self.discovery_depth,
                timeout=self.status_timeout,
                allow_hidden=self.allow_hidden,
            ),
            self.builds.environment,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    def _emit(self, data: dict[str, Any]) -> None:
        assert self.serverapp is not None
        self.serverapp.event_logger.emit(schema_id=EVENT_SCHEMA_ID, data=data)

    async def stop_extension(self) -> None:
        """The server is stopping: running builds are stopped and recorded as interrupted."""
        builds = getattr(self, "builds", None)
        if builds is not None:
            await builds.stop_all()
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
