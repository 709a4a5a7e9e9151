"""Reading YAML while remembering where every key and value came from.

Mappings load as :class:`YamlMap` and sequences as :class:`YamlList`: a ``dict`` and a ``list``
that also know their own line and the line of each key, value and item. Error messages cite those
lines. Duplicate keys (which PyYAML silently lets the last one win) are an error; keys merged in
with ``<<: *anchor`` may be overridden. A file that is not UTF-8, or whose aliases (``*name``)
would expand into a huge document (an "alias bomb"), is refused with the line to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nbpipe.spec.errors import InvalidValueError, YAMLSyntaxError


class YamlMap(dict):
    """A mapping from a YAML file: ``line`` is where it starts, ``lines[key]`` where each key is
    and ``value_lines[key]`` where its value starts."""

    def __init__(self, *args, line: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.line = line
        self.lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line)

    def value_line(self, key: Any) -> int | None:
        return self.value_lines.get(key, self.line_of(key))


class YamlList(list):
    """A sequence from a YAML file: ``line`` is where it starts, ``lines[i]`` where item i is."""

    def __init__(self, *args, line: int | None = None):
        super().__init__(*args)
        self.line = line
        self.lines: list[int | None] = []

    def line_of(self, index: int) -> int | None:
        return self.lines[index] if index < len(self.lines) else self.line


def line_of(container: Any, key: Any = None) -> int | None:
    """The line of ``key`` in ``container`` (or of the container itself), when it is known."""
    if isinstance(container, (YamlMap, YamlList)):
        return container.line if key is None else container.line_of(key)
    return None


def value_line(container: Any, key: Any) -> int | None:
    if isinstance(container, YamlMap):
        return container.value_line(key)
    return line_of(container, key)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds YamlMap/YamlList (with line numbers) and refuses duplicate keys."""

    file = "<string>"

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's (``<<: *anchor`` entries put first), remembering how many were merged in.
        Runs once per node, also when the node is itself merged into another mapping."""
        if hasattr(node, "merged"):
            return
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        super().flatten_mapping(node)
        node.merged = len(node.value) - explicit


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    merged = node.merged
    mapping = YamlMap(line=node.start_mark.line + 1)
    merged_keys = set()  # keys that came with `<<`: the mapping's own keys override them
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise InvalidValueError(
                "a mapping key must be a plain value, not a list or a mapping",
                file=loader.file,
                line=line,
            ) from None
        if index < merged:
            merged_keys.add(key)
        elif key in mapping and key not in merged_keys:
            raise InvalidValueError(
                f"key {key!r} appears twice in this mapping (first on line {mapping.lines[key]})",
                file=loader.file,
                line=line,
                key=str(key),
            )
        else:
            merged_keys.discard(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
        mapping.value_lines[key] = value_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> YamlList:
    sequence = YamlList(line=node.start_mark.line + 1)
    for item in node.value:
        sequence.append(loader.construct_object(item, deep=True))
        sequence.lines.append(item.start_mark.line + 1)
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


#: An alias bomb (``a: &a [x, x, ...]``, ``b: &b [*a, *a, ...]``, ...) is a few lines that expand
#: into billions of values. A document may expand into this many values, or ten times the values
#: it writes out, whichever is more.
MAX_EXPANDED_VALUES = 100_000


def load_yaml(text: str, file: str = "<string>") -> Any:
    """Parses ``text``; a syntax error becomes a YAMLSyntaxError citing file and line."""
    loader = None
    try:
        loader = _Loader(text)  # refuses control characters right away
        loader.file = file
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, file)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        context = ""
        if error.context:
            started = error.context_mark
            on_line = (
                f" that starts on line {started.line + 1}"
                if started is not None and mark is not None and started.line != mark.line
                else ""
            )
            context = f" ({error.context}{on_line})"
        raise YAMLSyntaxError(
            f"invalid YAML: {problem}{context}",
            file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise YAMLSyntaxError(
            f"invalid YAML: unacceptable character #x{error.character:04x} ({error.reason}); "
            "remove it or write it as an escape in a double-quoted string",
            file=file,
            line=line,
        ) from None
    except yaml.YAMLError as error:
        raise YAMLSyntaxError(f"invalid YAML: {error}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuses a document whose aliases expand into too many values, before anything expands
    them: each node's expanded size is computed once, in time linear in the document's size."""
    children: dict[int, list[yaml.Node]] = {}
    stack = [root]
    while stack:  # every distinct node (an alias is the node it names, so it is counted once)
        node = stack.pop()
        if id(node) in children:
            continue
        if isinstance(node, yaml.MappingNode):
            kids = [item for pair in node.value for item in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        children[id(node)] = kids
        stack.extend(kids)
    limit = max(MAX_EXPANDED_VALUES, 10 * len(children))
    sizes: dict[int, int] = {}
    started: set[int] = set()
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:  # post-order: a node's expanded size once its children's are known
        node, ready = pending.pop()
        if ready:
            # a recursive alias (a node inside itself) counts as 1; the constructor refuses it
            size = 1 + sum(sizes.get(id(kid), 1) for kid in children[id(node)])
            if size > limit:
                raise YAMLSyntaxError(
                    f"YAML aliases (*name) expand into more than {limit} values here (an alias "
                    "bomb?); nbpipe refuses to expand them: write the values out, or nest "
                    "fewer aliases",
                    file=file,
                    line=node.start_mark.line + 1,
                )
            sizes[id(node)] = size
        elif id(node) not in started:
            started.add(id(node))
            pending.append((node, True))
            pending.extend((kid, False) for kid in children[id(node)])


def load_yaml_file(path: Path) -> Any:
    """Reads and parses ``path`` (UTF-8; a byte that is not is an error naming its line)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise YAMLSyntaxError(f"cannot read the file: {error.strerror}", file=str(path)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line_start = data.rfind(b"\n", 0, start) + 1
        raise YAMLSyntaxError(
            f"byte {data[start]:#04x} (column {start - line_start + 1}) is not UTF-8: the file "
            "was saved in another encoding (Latin-1 or Windows-1252?); save the file as UTF-8 "
            "(most editors offer it under 'Save with encoding')",
            file=str(path),
            line=data.count(b"\n", 0, start) + 1,
        ) from None
    return load_yaml(text, str(path))


def parse_scalar(text: str) -> Any:
    """A command-line value read as YAML (``3`` is an int, ``true`` a bool, ``a b`` a string)."""
    if not text.strip():
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
