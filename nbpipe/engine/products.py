"""Products: the files a task writes, and the metadata that says how they were built.

Each product file keeps its metadata in a hidden JSON file beside it (``.<name>.metadata``, the
layout Ploomber uses), so a product can be moved together with its metadata.

Atomicity: a task never writes its products in place. It writes *staged* copies (hidden siblings,
same folder, so same file system). Once the task succeeded, a :class:`Replacement` renames them
over the real paths, keeping the previous products and their metadata aside until the task's
``on_finish`` hook and the new metadata succeeded (then they are dropped; on failure they are put
back). Metadata is written through a rename too. A crash at any point leaves either the previous
product or a product without metadata, which never counts as built; the working files a killed
build left behind are swept by the next build (:func:`sweep_dead_builds`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbpipe.exceptions import DAGSpecError


class File(os.PathLike):
    """A product stored at ``path``: a file, or a folder the task fills."""

    def __init__(self, path: str | os.PathLike):
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def name(self) -> str:
        return self._path.name

    @property
    def suffix(self) -> str:
        return self._path.suffix.lower()

    def __fspath__(self) -> str:
        return str(self._path)

    def __str__(self) -> str:
        return str(self._path)

    def __repr__(self) -> str:
        return f"File({str(self._path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, File) and self.absolute() == other.absolute()

    def __hash__(self) -> int:
        return hash(self.absolute())

    def absolute(self) -> str:
        return os.path.abspath(self._path)

    def exists(self) -> bool:
        return self._path.exists()

    def fingerprint(self) -> str | None:
        """Changes whenever the file is rewritten or touched; None when it does not exist."""
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_mtime_ns}:{stat.st_size}"

    # -- metadata -------------------------------------------------------------------------------
    @property
    def metadata_path(self) -> Path:
        return self._path.parent / f".{self._path.name}.metadata"

    def read_metadata(self) -> dict[str, Any] | None:
        """The stored metadata, or None when missing or unreadable (then the task rebuilds)."""
        try:
            with open(self.metadata_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_atomically(self.metadata_path, json.dumps(metadata, indent=1, sort_keys=True))

    def delete_metadata(self) -> None:
        self.metadata_path.unlink(missing_ok=True)

    # -- staging --------------------------------------------------------------------------------
    def staged(self, token: str) -> File:
        """The hidden sibling a running task writes instead of this product (same extension)."""
        return File(self._path.parent / f".nbpipe-{token}-{self._path.name}")


class MultiProduct(Mapping):
    """Several products of one task, named (from a dict: ``product['data']``) or numbered (from
    a list or tuple: ``product[0]``).

    As in Ploomber, iterating a MultiProduct yields its ``File`` objects, not its keys, so that
    ``for f in product: Path(f).touch()`` touches every product; ``keys()``, ``items()`` and
    ``values()`` work as for a dict (``keys()`` of a numbered product are 0, 1, ...).
    ``len``, ``in`` (a key) and ``product[key]`` work as for the dict or list it was made from.
    """

    def __init__(self, products: Mapping[Any, File] | list[File] | tuple[File, ...]):
        self._sequence = isinstance(products, (list, tuple))
        self._products: dict[Any, File] = (
            dict(enumerate(products)) if self._sequence else dict(products)
        )

    @property
    def is_sequence(self) -> bool:
        """True when made from a list or tuple (numbered), False for a dict (named)."""
        return self._sequence

    def __getitem__(self, key: Any) -> File:
        try:
            return self._products[key]
        except (KeyError, TypeError):
            which = (
                f"numbered 0..{len(self) - 1}"
                if self._sequence
                else ", ".join(map(str, self.keys()))
            )
            raise KeyError(f"No product {key!r}; this task's products are: {which}") from None

    def __iter__(self) -> Iterator[File]:  # type: ignore[override]
        return iter(self._products.values())

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._products
        except TypeError:
            return False

    def __len__(self) -> int:
        return len(self._products)

    def keys(self):  # type: ignore[override]
        return self._products.keys()

    def items(self):  # type: ignore[override]
        return self._products.items()

    def values(self):  # type: ignore[override]
        return self._products.values()

    def get(self, key: Any, default: Any = None) -> Any:
        return self._products.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiProduct):
            return self._sequence == other._sequence and self._products == other._products
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        if self._sequence:
            return str([str(file) for file in self.values()])
        return str({key: str(file) for key, file in self.items()})

    def __repr__(self) -> str:
        shown = list(self.values()) if self._sequence else self._products
        return f"MultiProduct({shown!r})"

    def map(self, fn) -> list | dict:
        """``fn`` applied to each File, in the same shape: a list or a dict by key."""
        if self._sequence:
            return [fn(file) for file in self.values()]
        return {key: fn(file) for key, file in self.items()}

    def with_files(self, fn) -> MultiProduct:
        """A MultiProduct of the same shape whose Files are ``fn(file)``."""
        return MultiProduct(self.map(fn))


Product = File | MultiProduct


def as_product(value: Any) -> Product:
    """Accepts a File, a path, a mapping of key -> File/path, or a list or tuple of them."""
    if isinstance(value, (File, MultiProduct)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return File(value)
    if isinstance(value, Mapping):
        if not value:
            raise DAGSpecError("A product mapping needs at least one entry")
        return MultiProduct({str(key): as_product_file(key, item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        if not value:
            raise DAGSpecError("A product list needs at least one entry")
        return MultiProduct([as_product_file(index, item) for index, item in enumerate(value)])
    raise DAGSpecError(
        "A product must be a File, a path, or a mapping, list or tuple of them, "
        f"not {type(value).__name__}"
    )


def as_product_file(key: Any, value: Any) -> File:
    if isinstance(value, File):
        return value
    if isinstance(value, (str, os.PathLike)):
        return File(value)
    raise DAGSpecError(f"Product {key!r} must be a File or a path, not {type(value).__name__}")


def files_of(product: Product) -> list[File]:
    return list(product.values()) if isinstance(product, MultiProduct) else [product]


def map_files(product: Product, fn) -> Any:
    """Applies ``fn`` to each File, keeping the shape (a single value, a dict by key, or a list
    for a product made from a list or tuple)."""
    if isinstance(product, MultiProduct):
        return product.map(fn)
    return fn(product)


def staged_product(product: Product, token: str) -> Product:
    if isinstance(product, MultiProduct):
        return product.with_files(lambda file: file.staged(token))
    return product.staged(token)


#: Hidden working files beside products: ``.nbpipe-<pid>_<random>-<name>`` (staged products,
#: atomic writes) and ``.nbpipe-<pid>_<random>-old-<name>`` (a product kept aside while its
#: replacement is checked). The pid says whose they are, so a later build can sweep the ones a
#: dead build left behind.
_WORKING_FILE = re.compile(r"^\.nbpipe-([0-9a-f]+)_[0-9a-f]{8}-(old-)?(.+)$")


def new_token() -> str:
    """A fresh token for this process's working files (its pid, then random hex)."""
    return f"{os.getpid():x}_{uuid.uuid4().hex[:8]}"


def sweep_dead_builds(folder: Path) -> list[Path]:
    """Removes the working files in ``folder`` that a build which is no longer running left
    behind (it was killed): staged products are deleted; a product kept aside is put back if
    nothing took its place. Returns what was removed or restored."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    swept = []
    for name in names:
        match = _WORKING_FILE.match(name)
        if match is None or _process_alive(int(match.group(1), 16)):
            continue
        path = folder / name
        original = folder / match.group(3)
        if match.group(2) and not original.exists() and not original.is_symlink():
            os.replace(path, original)
        else:
            _remove(path)
        swept.append(path)
    return swept


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def write_atomically(path: Path, text: str | bytes) -> None:
    """Writes ``path`` through a temporary sibling and a rename: readers see old or new, never half."""
    tmp = path.parent / f".nbpipe-{new_token()}-{path.name}"
    mode = "wb" if isinstance(text, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(text, bytes) else {"encoding": "utf-8"})) as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def kind_of(path: Path) -> str | None:
    """``"folder"``, ``"file"`` (a symlink counts as what it points to; a dangling one as a
    file), or None when nothing is at ``path``."""
    if path.is_dir():
        return "folder"
    if path.exists() or path.is_symlink():
        return "file"
    return None


def kind_problem(path: Path, writes: str, task: str | None = None) -> str | None:
    """Why ``writes`` (``"file"`` or ``"folder"``) must not replace what is at ``path``: a folder
    is never replaced by a file, nor a file by a folder (the task would destroy something it did
    not make). None when the kinds agree or nothing is there."""
    existing = kind_of(path)
    if existing is None or existing == writes:
        return None
    who = f"task {task!r} wrote" if task else "the task writes"
    return (
        f"product {path} is an existing {existing}, but {who} a {writes}"
        f"{'' if task else ' there'}; move or delete the {existing} yourself, or give the task "
        "another product path"
    )


class Replacement:
    """Staged products moved into place, with what they replaced kept aside (products and build
    records) until the task's ``on_finish`` hook and its new records have succeeded: then
    ``keep`` drops what was kept aside; on any failure ``undo`` puts it all back, so a rejected
    output never costs the last good product."""

    def __init__(self, token: str):
        self._token = token
        self._moves: list[tuple[Path, Path]] = []  # (from, to), in the order they happened

    def _move(self, source: Path, target: Path) -> None:
        os.replace(source, target)
        self._moves.append((source, target))

    def _aside(self, path: Path) -> Path:
        return path.parent / f".nbpipe-{self._token}-old-{path.name}"

    def put(self, staged: File, final: File) -> None:
        """Moves ``staged`` over ``final``, keeping ``final`` and its record aside first."""
        for path in (final.metadata_path, final.path):
            if path.exists() or path.is_symlink():
                self._move(path, self._aside(path))
        self._move(staged.path, final.path)

    def keep(self) -> None:
        for _source, target in self._moves:
            if target.name.startswith(f".nbpipe-{self._token}-old-"):
                _remove(target)
        self._moves.clear()

    def undo(self) -> None:
        for source, target in reversed(self._moves):
            if target.exists() or target.is_symlink():
                if source.exists() or source.is_symlink():
                    _remove(source)
                os.replace(target, source)
        self._moves.clear()


def discard_staged(staged: File) -> None:
    _remove(staged.path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
