"""What the API sends: records and events turned into JSON for the browser.

The one rule here: paths go out relative to the server root (posix style), so the UI can open a
product or a partially executed notebook through Jupyter's contents API. A path outside the root
is sent as it is, with ``in_root: false`` where it is a product.
"""

from __future__ import annotations

from typing import Any

from nbpipe.server.discovery import relative_to_root

#: Engine event fields that are not details (they are top-level fields of a published event).
_EVENT_FIELDS = {"v", "event", "task", "time"}


def product(root: str, path: str) -> dict[str, Any]:
    relative = relative_to_root(root, path)
    return {"path": relative if relative is not None else path, "in_root": relative is not None}


def path_view(root: str, path: str | None) -> str | None:
    """``path`` relative to the root when it lies inside it, else unchanged."""
    if not path:
        return path
    relative = relative_to_root(root, path)
    return relative if relative is not None else path


def error(root: str, error: dict[str, Any] | None) -> dict[str, Any] | None:
    """A task failure: a one-line summary, the failing cell and line, the traceback."""
    if not error:
        return None
    view = dict(error)
    for key in ("partial_path", "source"):
        if key in view:
            view[key] = path_view(root, view[key])
    view["summary"] = summary(error)
    return view


def summary(error: dict[str, Any]) -> str:
    """``ZeroDivisionError: division by zero (cell 3, line 2)`` or the error text's last line."""
    name = error.get("ename") or (error.get("type") if error.get("evalue") else None)
    if name:
        text = f"{name}: {error.get('evalue', '')}".rstrip(": ")
        if error.get("cell_index") is not None:
            where = f"cell {error['cell_index'] + 1}"
            if error.get("line"):
                where += f", line {error['line']}"
            text += f" ({where})"
        return text
    lines = (error.get("message") or "").strip().splitlines()
    return lines[-1] if lines else "failed"


def task(root: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "state": row["state"],
        "reasons": row["reasons"],
        "started": row["started"],
        "ended": row["ended"],
        "elapsed": row["elapsed"],
        "products": [product(root, path) for path in row["products"]],
        "detail": row["detail"],
        "error": error(root, row["error"]),
    }


def build(root: str, record: dict[str, Any]) -> dict[str, Any]:
    view = {key: value for key, value in record.items() if key != "tasks"}
    if "tasks" in record:
        view["tasks"] = [task(root, row) for row in record["tasks"]]
        counts: dict[str, int] = {}
        for row in record["tasks"]:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        view["counts"] = counts
    return view


def event_details(root: str, event: dict[str, Any]) -> dict[str, Any]:
    """An engine event's own fields, with paths made relative to the root."""
    details = {key: value for key, value in event.items() if key not in _EVENT_FIELDS}
    if isinstance(details.get("products"), list):
        details["products"] = [product(root, str(path)) for path in details["products"]]
    if isinstance(details.get("details"), dict):
        details["details"] = error(root, {**details["details"], "message": details.get("error")})
    return details
