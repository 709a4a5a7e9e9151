"""Task functions for tests/test_data_safety.py (in a module, so spawned workers can import them)."""

from __future__ import annotations

from pathlib import Path


def write_file(product):
    Path(product).write_text("new")


def make_folder(product):
    Path(product).mkdir()
    (Path(product) / "part.csv").write_text("new")


def file_and_folder(product):
    Path(product["ok"]).write_text("new")
    Path(product["data"]).write_text("new")
