"""What the API sends: build records and events turned into JSON for the browser.

Builds and events go out in the shapes of the event contract (``nbpipe.engine.events``,
``nbpipe.engine.state``), unchanged but for one rule: paths are made relative to the server root
(posix style) when they lie inside it, so the UI can open a product or a partially executed
notebook through Jupyter's contents API; a path outside the root stays absolute. So a relative
path means "in the root". The paths are the ``products`` of tasks and events and a failure's
``source`` and ``partial_notebook``.

A build snapshot (``GET builds/{id}``) is the server's fields (``id``, ``pipeline``, ``force``,
``targets``, ``created``, ``seq``, ``counts``) plus exactly the fields of
``BuildState.to_dict()``, so that the browser can apply later events to it with the same reducer
rules. Formatting a failure for people is the browser's job (Python code that needs a line uses
``TaskFailure.summary()``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from nbpipe.server.discovery import relative_to_root
from nbpipe.server.errors import NotFound
from nbpipe.server.store import SERVER_FIELDS, STATE_FIELDS, TASK_FIELDS

if TYPE_CHECKING:
    from nbpipe.server.builds import BuildManager
    from nbpipe.server.store import StoreThread

#: A failure's fields that are paths.
FAILURE_PATHS = ("source", "partial_notebook")


def path_view(root: str, path: str | None) -> str | None:
    """``path`` relative to the root (posix) when it lies inside it, else unchanged."""
    if not path:
        return path
    relative = relative_to_root(root, path)
    return relative if relative is not None else path


def product(root: str, path: str) -> dict[str, Any]:
    """A product of ``GET pipelines/{path}``: ``{path, in_root}``."""
    relative = relative_to_root(root, path)
    return {"path": relative if relative is not None else path, "in_root": relative is not None}


def failure(root: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``TaskFailure.to_dict()``, its paths relative to the root."""
    if not data:
        return data
    view = dict(data)
    for key in FAILURE_PATHS:
        if isinstance(view.get(key), str):
            view[key] = path_view(root, view[key])
    return view


def _products(root: str, products: Any) -> Any:
    if not isinstance(products, list):
        return products
    return [path_view(root, path) if isinstance(path, str) else path for path in products]


def task(root: str, data: dict[str, Any]) -> dict[str, Any]:
    """A ``TaskState.to_dict()``, paths relative to the root."""
    view = {name: data.get(name) for name in TASK_FIELDS}
    view["products"] = _products(root, view["products"] or [])
    view["failure"] = failure(root, view["failure"])
    return view


def build(root: str, record: dict[str, Any]) -> dict[str, Any]:
    """A build snapshot: the server's fields, ``counts``, and BuildState's fields (``tasks``
    only when the record has them: list endpoints leave them out)."""
    view = {name: record.get(name) for name in SERVER_FIELDS}
    if "tasks" in record:
        counts: dict[str, int] = {}
        for row in record["tasks"]:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        view["counts"] = counts
    else:
        view["counts"] = record.get("counts") or {}
    view.update((name, record.get(name)) for name in STATE_FIELDS)
    if "tasks" in record:
        view["tasks"] = [task(root, row) for row in record["tasks"]]
    return view


def event(root: str, data: dict[str, Any]) -> dict[str, Any]:
    """An ``Event.to_dict()``, paths relative to the root; nothing else changes."""
    view = dict(data)
    if "products" in view:
        view["products"] = _products(root, view["products"])
    if isinstance(view.get("failure"), dict):
        view["failure"] = failure(root, view["failure"])
    return view


class Snapshots:
    """Build snapshots serialised once per (build, seq): clients polling a build get the same
    bytes until an event changes it, instead of a store read and a serialisation each (on the
    event loop). A running build's seq is the manager's (events are recorded in seq order
    before a later read runs on the store's thread); another build's is read from its row."""

    def __init__(self, root: str, store: StoreThread, builds: BuildManager, size: int = 256):
        self.root = root
        self.store = store
        self.builds = builds
        self.size = size
        self._cache: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    async def get(self, build_id: str) -> bytes:
        running = self.builds.active.get(build_id)
        seq = getattr(running, "seq", None)
        if seq is None:
            seq = await self.store.call(self.store.store.get_seq, build_id)
            if seq is None:
                raise NotFound(f"no build {build_id!r}")
        cached = self._cache.get(build_id)
        if cached is not None and cached[0] == seq:
            self._cache.move_to_end(build_id)
            return cached[1]
        record = await self.store.call(self.store.store.get_build, build_id)
        if record is None:
            raise NotFound(f"no build {build_id!r}")
        data = json.dumps(build(self.root, record)).encode()
        self._cache[build_id] = (record["seq"], data)
        self._cache.move_to_end(build_id)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return data
