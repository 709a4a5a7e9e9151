"""The Jupyter server extension: build pipelines from JupyterLab.

REST API under ``{base_url}/nbpipe/api/`` (``openapi.yaml`` in this folder), live build events on
the server's event bus (schema ``events/build.yaml``), build history in SQLite. Builds run in
child processes (``nbpipe build --json``), never in the server. See ``docs/server.md``.

Enabled on install by ``jupyter-config/jupyter_server_config.d/nbpipe.json``; by hand:
``jupyter server extension enable nbpipe.server``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from nbpipe.server.app import NbpipeApp

    return [{"module": "nbpipe.server", "app": NbpipeApp}]
