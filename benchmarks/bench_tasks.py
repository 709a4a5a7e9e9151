"""Task functions used by the benchmark DAGs.

They live in their own importable module so that parallel executors can
pickle them by reference (``bench_tasks.root``) and worker processes,
forked or spawned, can import them again.
"""

from pathlib import Path


def root(product):
    """A task without upstream dependencies: write a tiny text file."""
    Path(str(product)).write_text("root\n")


def child(product, upstream):
    """A task with upstream dependencies: record which tasks it depends on."""
    names = sorted(upstream)
    Path(str(product)).write_text(" ".join(names) + "\n")
