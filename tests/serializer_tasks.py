"""Functions and serializers for the serializer tests that use the Python API. They live in an
importable module so that the Parallel executor's spawned workers can import them."""

from __future__ import annotations

from pathlib import Path

from nbpipe.io import serializer, unserializer


def to_text(obj, product):
    Path(product).write_text(str(obj))


def from_text(product):
    return int(Path(product).read_text())


def one():
    return 1


def plus_one(upstream):
    return upstream["one"] + 1


@serializer(defaults=[".json", ".txt"], unpack=True)
def unpacked(obj, product):
    raise AssertionError("dispatched by extension")


@unserializer(defaults=[".json", ".txt"], unpack=True)
def read_unpacked(product):
    raise AssertionError("dispatched by extension")


def parts():
    return {"a.json": [1], "b.txt": "two"}


def joined(upstream):
    return upstream["parts"]


@serializer(defaults=[".json"])
def as_json(obj, product):
    raise AssertionError("dispatched by extension")
