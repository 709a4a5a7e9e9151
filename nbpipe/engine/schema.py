"""The JSON Schema of the event contract, generated from the event dataclasses.

The schema is committed (``nbpipe/engine/events.schema.json``) so that programs in other
languages can read it; the panel's TypeScript types are generated from it
(``labextension/src/events.generated.ts``). ``python -m nbpipe.engine.schema`` rewrites it, and
``--check`` exits 1 when the committed file is stale (a test runs the check).

Events are objects with ``event`` (the kind, a constant), ``time`` and ``task``, plus the fields
of their class; every field is always written. Readers must ignore fields they do not know (``additionalProperties`` is left
open), so adding a field does not change ``EVENT_SCHEMA_VERSION``; removing or changing one does.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from nbpipe.engine.events import (
    ENGINE_EVENTS,
    EVENT_SCHEMA_VERSION,
    SUPERVISOR_EVENTS,
    Event,
    TaskEvent,
    TaskFailure,
)

SCHEMA_PATH = Path(__file__).with_name("events.schema.json")


def _type_schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(arg) for arg in typing.get_args(hint)]
        return {"anyOf": options}
    if origin is list:
        (item,) = typing.get_args(hint)
        return {"type": "array", "items": _type_schema(item)}
    if hint is type(None):
        return {"type": "null"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"type": "string", "enum": [member.value for member in hint]}
    if hint is TaskFailure:
        return {"$ref": "#/$defs/TaskFailure"}
    simple = {str: "string", float: "number", int: "integer", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _object_schema(cls: type, title: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = dict(extra or {})
    for item in dataclasses.fields(cls):
        properties.setdefault(item.name, _type_schema(hints[item.name]))
    schema: dict[str, Any] = {"title": title, "type": "object"}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = " ".join(cls.__doc__.split())
    schema["properties"] = properties
    schema["required"] = list(properties)  # to_dict writes every field, defaults included
    return schema


def _event_schema(cls: type[Event]) -> dict[str, Any]:
    """Every event has ``event``, ``time`` and ``task`` (null for build-level events)."""
    extra: dict[str, Any] = {"event": {"const": cls.kind}}
    if not issubclass(cls, TaskEvent):
        extra["task"] = {"type": "null"}
    return _object_schema(cls, cls.__name__, extra)


def generate() -> dict[str, Any]:
    events = [*ENGINE_EVENTS, *SUPERVISOR_EVENTS]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"nbpipe-build-events/v{EVENT_SCHEMA_VERSION}",
        "title": "NbpipeEvent",
        "description": (
            f"One event of an nbpipe build (schema version {EVENT_SCHEMA_VERSION}); "
            "see nbpipe/engine/events.py."
        ),
        "oneOf": [{"$ref": f"#/$defs/{cls.__name__}"} for cls in events],
        "$defs": {
            "TaskFailure": _object_schema(TaskFailure, "TaskFailure"),
            **{cls.__name__: _event_schema(cls) for cls in events},
        },
    }


def render() -> str:
    return json.dumps(generate(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run python -m nbpipe.engine.schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
