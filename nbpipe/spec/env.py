"""``{{placeholders}}`` in a spec: values from ``env.yaml``, built-ins and command-line overrides.

``env.yaml`` sits beside ``pipeline.yaml`` (``env.train.yaml`` beside ``pipeline.train.yaml``) and
maps names to values; nested mappings are reached with dots (``{{paths.data}}``). A string that
is a single placeholder takes the value with its type (``n: '{{n_rows}}'`` gives an int); inside
a longer string the value is written as text. ``env.yaml`` values may use the built-ins and each
other (``data: '{{base}}/data'``); values that lead back to themselves are an error naming the
cycle. Built-ins, computed only when used:

``{{here}}``  the spec's folder            ``{{cwd}}``   the working directory
``{{root}}``  the project's root: the nearest folder, from the spec's upwards, holding
              ``pyproject.toml`` or ``setup.py`` (else the spec's folder)
``{{now}}``   the time of loading, ISO 8601  ``{{user}}``  the user name
``{{git}}``   the current git branch (the short commit hash when detached)
``{{git_hash}}`` the short commit hash

``env.yaml`` may set a built-in's name, and its value then wins (``user: ci``), as in Ploomber.

Overrides (``DAGSpec(path, env={...})``, ``--env n_rows=100``) are the env, with ``env.yaml``'s
values as defaults, as in Ploomber: they replace its values (``paths.data`` reaches into a
mapping) and may add keys it lacks; text is read as YAML, so ``100`` is an int. ``env`` may also
name a YAML file (``env='env.ci.yaml'``), whose values replace ``env.yaml``'s. An added key that
nothing uses and that looks like a declared one (``n_row`` for ``n_rows``) is a typo, an error;
one unlike any is a warning (``unused_overrides``), as Ploomber warns about unused values.
"""

from __future__ import annotations

import datetime
import getpass
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nbpipe.spec.errors import PlaceholderError, did_you_mean, listing
from nbpipe.spec.yamlfile import YamlList, YamlMap, load_yaml_file, parse_scalar

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"\s*([A-Za-z_][\w-]*(?:\.[A-Za-z_0-9][\w-]*)*)\s*")

BUILT_INS = ("here", "cwd", "root", "now", "user", "git", "git_hash")


def env_files_for(spec_path: Path) -> list[Path]:
    """The env files a spec may read, preferred first: ``env.NAME.yaml`` beside
    ``pipeline.NAME.yaml``, then ``env.yaml`` (whether they exist or not)."""
    parts = spec_path.name.split(".")
    named = []
    if len(parts) == 3 and parts[0] == "pipeline":
        named.append(spec_path.with_name(f"env.{parts[1]}.{parts[2]}"))
    return [*named, spec_path.with_name("env.yaml")]


def env_file_for(spec_path: Path) -> Path:
    """``env.yaml`` beside ``pipeline.yaml``; ``env.NAME.yaml`` beside ``pipeline.NAME.yaml``."""
    *named, default = env_files_for(spec_path)
    return next((path for path in named if path.exists()), default)


class Env:
    """The values placeholders take. ``folder`` is the spec's folder (``{{here}}``)."""

    def __init__(
        self,
        folder: Path,
        values: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        file: str | None = None,
    ):
        self.folder = folder
        self.file = file
        self.values: dict[str, Any] = dict(values or {})
        self._read = values  # as read from env.yaml: a YamlMap, which knows its lines
        self._built_in_cache: dict[str, Any] = {}
        self._resolving: list[str] = []  # env.yaml names being filled in, to catch a cycle
        self._resolving_lines: dict[str, int | None] = {}
        self._rendered: dict[str, Any] = {}  # env.yaml values with their placeholders filled in
        self.used: set[str] = set()  # the top-level names a placeholder looked up
        self.added: list[str] = []  # override keys that env.yaml does not declare
        for key, value in (overrides or {}).items():
            self._override(key, value)

    @classmethod
    def for_spec(
        cls,
        spec_path: Path | None,
        folder: Path,
        overrides: Mapping[str, Any] | str | os.PathLike | None = None,
    ) -> Env:
        """The env of a spec: its ``env.yaml`` (if any) plus ``overrides``: a mapping, or the
        path of a YAML file (relative to the working directory) whose values replace
        ``env.yaml``'s."""
        values: Mapping[str, Any] = {}
        file = None
        if spec_path is not None:
            env_path = env_file_for(spec_path)
            if env_path.exists():
                file = str(env_path)
                values = _read_env_file(env_path)
        if isinstance(overrides, (str, os.PathLike)):
            path = Path(overrides).absolute()
            if not path.is_file():
                raise PlaceholderError(f"env file {path} does not exist", key="env")
            given = _read_env_file(path)
            merged = YamlMap(given, line=given.line)
            merged.update({key: value for key, value in values.items() if key not in given})
            merged.lines = {**getattr(values, "lines", {}), **given.lines}
            merged.value_lines = {**getattr(values, "value_lines", {}), **given.value_lines}
            return cls(folder, merged, None, str(path))
        return cls(folder, values, overrides, file)

    def unused_overrides(self) -> list[str]:
        """The keys the overrides added that no placeholder used (call after rendering)."""
        return [key for key in self.added if key not in self.used]

    def check_unused(self, warn: Callable[[str], None]) -> None:
        """An added override key that nothing used is a typo when it looks like a declared key
        (a ``PlaceholderError``), else a warning."""
        declared = [key for key in self.values if key not in self.added]
        for key in self.unused_overrides():
            hint = did_you_mean(key, declared)
            where = f"env.yaml ({self.file})" if self.file else "env.yaml (there is none)"
            if hint:
                raise PlaceholderError(
                    f"--env {key}: {key!r} is not declared in {where} and the spec does not "
                    f"use it{hint}; keys: {listing(declared)}",
                    key=key,
                )
            warn(f"env value {key!r} is not used by the spec")

    # -- values ---------------------------------------------------------------------------------
    def _override(self, key: str, value: Any) -> None:
        parts = key.split(".")
        if len(parts) == 1 and key not in self.values:  # the env may add keys, as in Ploomber
            self.values[key] = _parsed(value)
            self.added.append(key)
            return
        target = self.values
        for depth, part in enumerate(parts):
            if not isinstance(target, Mapping) or part not in target:
                known = list(target) if isinstance(target, Mapping) else []
                where = f"env.yaml ({self.file})" if self.file else "env.yaml (there is none)"
                raise PlaceholderError(
                    f"--env {key}: {'.'.join(parts[: depth + 1])!r} is not declared in {where}"
                    f"{did_you_mean(part, known)}; declare a default value there first"
                    + (f"; keys: {listing(known)}" if known else ""),
                    key=key,
                )
            if depth == len(parts) - 1:
                target[part] = _parsed(value)
            else:
                target = target[part]

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self.values, *BUILT_INS]))

    def lookup(self, name: str, file: str | None, line: int | None, where: str) -> Any:
        parts = name.split(".")
        self.used.add(parts[0])
        if name in BUILT_INS and name not in self.values:  # env.yaml's own value wins
            return self._built_in(name, file, line)
        value: Any = self.values
        for depth, part in enumerate(parts):
            if not isinstance(value, Mapping) or part not in value:
                known = list(value) if isinstance(value, Mapping) else []
                if depth == 0:
                    known = self.names()
                source = f"env.yaml ({self.file})" if self.file else "no env.yaml beside the spec"
                raise PlaceholderError(
                    f"unknown placeholder {{{{{name}}}}} in {where}{did_you_mean(part, known)}; "
                    f"known: {listing(known)} ({source})",
                    file=file,
                    line=line,
                    key=where,
                )
            value = value[part]
        if isinstance(value, str) and "{{" in value:
            # env.yaml values may use the built-ins and each other: data: '{{here}}/data'
            if name in self._rendered:
                return self._rendered[name]
            own_line = self._line_of(parts)
            if name in self._resolving:
                self._cycle(name)
            self._resolving.append(name)
            self._resolving_lines[name] = own_line
            try:
                value = self._rendered[name] = self.render(value, self.file, own_line, name)
            finally:
                self._resolving.pop()
        return value

    def _line_of(self, parts: list[str]) -> int | None:
        """The line of env.yaml's key ``a.b.c`` (``parts``), when known."""
        container, line = self._read, None
        for part in parts:
            if not isinstance(container, Mapping) or part not in container:
                break
            line = _line(container, part)
            container = container[part]
        return line

    def _cycle(self, name: str) -> None:
        """Raises the error for env.yaml values whose placeholders lead back to ``name``."""
        cycle = self._resolving[self._resolving.index(name) :]

        def at(item: str) -> str:
            line = self._resolving_lines.get(item)
            return f"{item} (line {line})" if line else item

        raise PlaceholderError(
            "placeholders in env.yaml refer to each other in a cycle: "
            f"{' -> '.join(map(at, cycle))} -> {name}; give one of them a value that does not "
            "use the others",
            file=self.file,
            line=self._resolving_lines.get(cycle[0]),
            key=name,
        )

    def _built_in(self, name: str, file: str | None, line: int | None) -> Any:
        if name not in self._built_in_cache:
            self._built_in_cache[name] = _BUILT_IN_MAKERS[name](self.folder, file, line)
        return self._built_in_cache[name]

    # -- rendering ------------------------------------------------------------------------------
    def render(self, value: Any, file: str | None, line: int | None, where: str) -> Any:
        """``value`` with every placeholder replaced; containers keep their line numbers."""
        if isinstance(value, str):
            return self._render_text(value, file, line, where)
        if isinstance(value, dict):
            rendered = YamlMap(line=getattr(value, "line", line))
            rendered.lines = dict(getattr(value, "lines", {}))
            rendered.value_lines = dict(getattr(value, "value_lines", {}))
            for key, item in value.items():
                item_line = rendered.value_line(key) if rendered.line else line
                rendered[key] = self.render(item, file, item_line, _join(where, key))
            return rendered
        if isinstance(value, list):
            rendered_list = YamlList(line=getattr(value, "line", line))
            rendered_list.lines = list(getattr(value, "lines", []))
            for index, item in enumerate(value):
                item_line = rendered_list.line_of(index) if rendered_list.line else line
                rendered_list.append(self.render(item, file, item_line, f"{where}[{index}]"))
            return rendered_list
        return value

    def _render_text(self, text: str, file: str | None, line: int | None, where: str) -> Any:
        if "{{" not in text:
            return text
        whole = _PLACEHOLDER.fullmatch(text.strip())
        if whole and _NAME.fullmatch(whole.group(1)):
            return self.lookup(whole.group(1).strip(), file, line, where)

        def substitute(match: re.Match) -> str:
            name = _NAME.fullmatch(match.group(1))
            if not name:
                raise PlaceholderError(
                    f"{match.group(0)!r} in {where} is not a placeholder nbpipe understands: "
                    "use a plain name such as {{n_rows}} or {{paths.data}}",
                    file=file,
                    line=line,
                    key=where,
                )
            return str(self.lookup(name.group(1), file, line, where))

        return _PLACEHOLDER.sub(substitute, text)


def _parsed(value: Any) -> Any:
    return parse_scalar(value) if isinstance(value, str) else value


def _read_env_file(path: Path) -> YamlMap:
    loaded = load_yaml_file(path)
    if loaded is None:
        loaded = YamlMap(line=1)
    if not isinstance(loaded, dict):
        raise PlaceholderError(
            f"{path.name} must be a mapping of names to values",
            file=str(path),
            line=getattr(loaded, "line", 1),
        )
    return loaded


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _line(values: Any, key: str) -> int | None:
    return values.line_of(key) if isinstance(values, YamlMap) else None


# -- built-ins --------------------------------------------------------------------------------
def _root(folder: Path, file, line) -> str:
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").exists() or (candidate / "setup.py").exists():
            return str(candidate)
    return str(folder)


def _git(args: list[str], folder: Path, file, line, name: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise PlaceholderError(
            f"{{{{{name}}}}} needs git, which could not run: {error}", file=file, line=line
        ) from None
    if result.returncode != 0:
        raise PlaceholderError(
            f"{{{{{name}}}}} needs the spec to be inside a git repository with at least one "
            f"commit ({folder} is not)",
            file=file,
            line=line,
            key=name,
        )
    return result.stdout.strip()


def _git_branch(folder: Path, file, line) -> str:
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], folder, file, line, "git")
    if branch == "HEAD":  # detached
        return _git(["rev-parse", "--short", "HEAD"], folder, file, line, "git")
    return branch


_BUILT_IN_MAKERS: dict[str, Callable[[Path, Any, Any], Any]] = {
    "here": lambda folder, file, line: str(folder),
    "cwd": lambda folder, file, line: os.getcwd(),
    "root": _root,
    "now": lambda folder, file, line: datetime.datetime.now().isoformat(timespec="seconds"),
    "user": lambda folder, file, line: getpass.getuser(),
    "git": _git_branch,
    "git_hash": lambda folder, file, line: _git(
        ["rev-parse", "--short", "HEAD"], folder, file, line, "git_hash"
    ),
}
