"""Pipelines described in ``pipeline.yaml`` (Ploomber's format).

    from nbpipe.spec import DAGSpec

    dag = DAGSpec("pipeline.yaml").to_dag()
    dag.build()

``DAGSpec.find()`` looks for ``pipeline.yaml`` in the working directory and its parents
(``$NBPIPE_ENTRY_POINT`` overrides). Errors are :class:`SpecError` subclasses that carry the file,
line and key to fix. The format is described in ``docs/spec.md``.
"""

from nbpipe.spec.errors import (
    CycleError,
    DottedPathError,
    DuplicateTaskError,
    GridError,
    InvalidValueError,
    MissingKeyError,
    MissingSourceError,
    PlaceholderError,
    ProductError,
    SpecError,
    SpecNotFoundError,
    UnknownKeyError,
    UnsupportedKeyError,
    UpstreamError,
    YAMLSyntaxError,
)
from nbpipe.spec.loader import DAGSpec, find_entry_point
from nbpipe.spec.task_specs import TaskSpec

__all__ = [
    "CycleError",
    "DAGSpec",
    "DottedPathError",
    "DuplicateTaskError",
    "GridError",
    "InvalidValueError",
    "MissingKeyError",
    "MissingSourceError",
    "PlaceholderError",
    "ProductError",
    "SpecError",
    "SpecNotFoundError",
    "TaskSpec",
    "UnknownKeyError",
    "UnsupportedKeyError",
    "UpstreamError",
    "YAMLSyntaxError",
    "find_entry_point",
]
