"""Reading YAML while remembering where every key and value came from.

Mappings load as :class:`YamlMap` and sequences as :class:`YamlList`: a ``dict`` and a ``list``
that also know their own line and the line of each key, value and item. Error messages cite those
lines. Duplicate keys (which PyYAML silently lets the last one win) are an error.
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


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds YamlMap/YamlList (with line numbers) and refuses duplicate keys."""

    file = "<string>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    mapping = YamlMap(line=node.start_mark.line + 1)
    for key_node, value_node in node.value:
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
        if key in mapping:
            raise InvalidValueError(
                f"key {key!r} appears twice in this mapping (first on line {mapping.lines[key]})",
                file=loader.file,
                line=line,
                key=str(key),
            )
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


def load_yaml(text: str, file: str = "<string>") -> Any:
    """Parses ``text``; a syntax error becomes a YAMLSyntaxError citing file and line."""
    loader = _Loader(text)
    loader.file = file
    try:
        return loader.get_single_data()
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
    except yaml.YAMLError as error:
        raise YAMLSyntaxError(f"invalid YAML: {error}", file=file) from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise YAMLSyntaxError(f"cannot read the file: {error.strerror}", file=str(path)) from None
    return load_yaml(text, str(path))


def parse_scalar(text: str) -> Any:
    """A command-line value read as YAML (``3`` is an int, ``true`` a bool, ``a b`` a string)."""
    if not text.strip():
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
