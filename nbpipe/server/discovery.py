"""Finding pipelines under the server root, and confining client-given paths to it.

Clients name a pipeline by its path relative to the server root (``reports/pipeline.yaml``).
:func:`resolve_pipeline` is the one gate every such path goes through: it refuses absolute paths,
``..`` and hidden components before touching the disk, then resolves symlinks and refuses a file
that lands outside the root. The server never opens a path that did not pass it.

:func:`find_pipelines` walks the root breadth-first with a depth bound and an entry budget, never
follows symlinked folders (they may loop or leave the root) and skips folders that cannot hold a
user's pipeline (hidden ones, virtual environments, ``node_modules``): a home folder as the root
must not cost a full disk scan.
"""

from __future__ import annotations

import fnmatch
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nbpipe.server.errors import BadRequest, Forbidden, NotFound

#: File names that count as pipelines.
PIPELINE_PATTERNS = ("pipeline*.yaml", "pipeline*.yml")

#: Folder names never searched, besides hidden ones and virtual environments.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages"})


def is_pipeline_name(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PIPELINE_PATTERNS)


def _is_environment(path: str) -> bool:
    """A Python virtual environment or a conda environment."""
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.isdir(
        os.path.join(path, "conda-meta")
    )


def is_utf8(path: str) -> bool:
    """Whether ``path`` is text: a name that is not UTF-8 on disk comes in with surrogates
    (Python's surrogateescape), which the history, JSON clients and the browser cannot take."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display(path: str) -> str:
    """``path`` printable: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Found:
    pipelines: list[str]  # paths relative to the root, posix style, sorted
    truncated: bool  # the entry budget ran out before the walk ended
    unusable: list[str] = field(default_factory=list)  # pipelines whose path is not UTF-8


def find_pipelines(
    root: str | os.PathLike,
    max_depth: int = 3,
    skip: frozenset[str] | set[str] = SKIPPED_FOLDERS,
    max_entries: int = 20_000,
) -> Found:
    """Pipelines in ``root`` and up to ``max_depth`` folder levels below it.

    Blocking (it reads folders): call it from a thread, never on the event loop.
    """
    root = os.path.realpath(root)
    found: list[str] = []
    unusable: list[str] = []
    queue: deque[tuple[str, int]] = deque([(root, 0)])
    seen = 0
    while queue:
        folder, depth = queue.popleft()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable or vanished: not an error for a listing
        for entry in sorted(entries, key=lambda e: e.name):
            seen += 1
            if seen > max_entries:
                return Found(sorted(found), truncated=True, unusable=sorted(unusable))
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if (
                        depth < max_depth
                        and entry.name not in skip
                        and not _is_environment(entry.path)
                    ):
                        queue.append((entry.path, depth + 1))
                elif is_pipeline_name(entry.name) and _inside(root, entry.path):
                    relative = PurePosixPath(Path(entry.path).relative_to(root)).as_posix()
                    (found if is_utf8(relative) else unusable).append(relative)
            except OSError:
                continue
    return Found(sorted(found), truncated=False, unusable=sorted(unusable))


def _inside(root: str, path: str) -> bool:
    """Whether ``path`` (symlinks resolved) is a file within ``root`` (already resolved)."""
    real = os.path.realpath(path)
    return os.path.isfile(real) and os.path.commonpath([root, real]) == root


def resolve_pipeline(root: str | os.PathLike, relative: str, allow_hidden: bool = False) -> Path:
    """The absolute path of the pipeline a client named, or a 4xx error saying why not.

    403 for a path that leaves the root (absolute, ``..``, a symlink pointing out), 404 for one
    that does not exist (or is hidden, as Jupyter's file browser treats hidden files), 400 for a
    file that is not a pipeline spec.
    """
    check_relative(relative, allow_hidden)
    root_real = os.path.realpath(root)
    candidate = os.path.join(root_real, *PurePosixPath(relative).parts)
    real = os.path.realpath(candidate)
    if os.path.commonpath([root_real, real]) != root_real:
        raise Forbidden(f"{relative!r} points outside the server root")
    if not os.path.isfile(real):
        raise NotFound(f"no pipeline file {relative!r} under the server root")
    if not is_pipeline_name(PurePosixPath(relative).name):
        raise BadRequest(
            f"{relative!r} is not a pipeline spec: the name must match "
            f"{' or '.join(PIPELINE_PATTERNS)}"
        )
    return Path(candidate)


def canonical(relative: str) -> str:
    """The one spelling of a pipeline path (``./a//pipeline.yaml`` -> ``a/pipeline.yaml``), so
    that a pipeline has one identity in the history and in the one-build-at-a-time check."""
    return PurePosixPath(relative.replace("\\", "/")).as_posix()


def check_relative(relative: str, allow_hidden: bool = False) -> None:
    """Refuses, without touching the disk, a path that is not plainly inside the root."""
    if not isinstance(relative, str) or not relative.strip():
        raise BadRequest("the pipeline path is empty")
    if "\x00" in relative:
        raise BadRequest("the pipeline path contains a NUL character")
    if not is_utf8(relative):
        raise BadRequest(
            f"{display(relative)!r} is not valid UTF-8: the server cannot use this path "
            "(rename the folder or file)"
        )
    normalized = relative.replace("\\", "/")
    if normalized.startswith(("/", "~")) or (len(normalized) > 1 and normalized[1] == ":"):
        raise Forbidden(f"{relative!r} is absolute; give a path relative to the server root")
    parts = PurePosixPath(normalized).parts
    if ".." in parts:
        raise Forbidden(f"{relative!r} leaves the server root ('..' is not allowed)")
    if not allow_hidden and any(part.startswith(".") for part in parts):
        raise NotFound(f"no pipeline file {relative!r} under the server root (hidden path)")


def relative_to_root(root: str | os.PathLike, path: str | os.PathLike) -> str | None:
    """``path`` relative to the root (posix style) when it lies inside it, else None.

    Product paths are reported this way so the browser can open them through the contents API.
    Symlinks are not resolved on purpose: the UI opens the path the pipeline wrote to.
    """
    root_abs = os.path.abspath(root)
    absolute = os.path.abspath(os.path.join(root_abs, path))
    if os.path.commonpath([root_abs, absolute]) != root_abs:
        real_root = os.path.realpath(root_abs)
        absolute = os.path.realpath(absolute)
        if os.path.commonpath([real_root, absolute]) != real_root:
            return None
        root_abs = real_root
    return PurePosixPath(Path(absolute).relative_to(root_abs)).as_posix()
