"""Percent scripts (``# %%`` cells) read as jupytext reads them, without importing jupytext.

Render and ``nbpipe status`` read every notebook task's source; importing jupytext (nbformat,
jsonschema) costs seconds in a fresh process, so this module reads the percent format itself, and
the worker that runs the notebook converts it with jupytext. Both must see the same cells (the
code digest, the ``parameters`` cell and the upstream declaration come from this reading), so
this reader follows jupytext's rules (jupytext 1.15 to 1.19), and hands over to jupytext, by
raising :class:`NotHandled`, for whatever it does not read itself. A test compares the two on
thousands of generated scripts (``tests/test_percent_reader.py``).

What it reads, as ``jupytext.reads(text, fmt=EXT)`` does (EXT: ``py``, ``R``, ``r``, ``jl``):

- the format: the header's ``jupytext.text_representation``, else jupytext's guess: a script
  with a ``# %%`` line is ``percent``, or ``hydrogen`` when it also has an uncommented magic
  (``%time x`` at the start of a line); magics are then left commented. Other formats (light
  scripts with ``# +``, Sphinx gallery, spin) are jupytext's.
- the YAML header between ``# ---`` lines: its ``jupyter:`` section is the notebook's metadata;
  any other entries become a first raw cell, as jupytext makes it.
- cell markers ``# %%`` (also ``#%%``, indented, ``# %%%`` sub-cells, ``# <codecell>``,
  ``# In[1]:``), except inside a string literal or a fenced block of a Markdown cell; on the
  marker, a title, ``[markdown]``/``[md]``/``[raw]``, and metadata: ``key=value`` pairs whose
  values are JSON or Python literals (``tags=['parameters']``), bare keys, ``.attributes``, or
  one JSON object; what jupytext cannot parse is kept as ``incorrectly_encoded_metadata``.
- cell sources: blank lines between cells, commented magics (``# %timeit``, ``# !ls``, ``# cd``)
  uncommented in code cells, Markdown and raw cells uncommented.

Left to jupytext (NotHandled): shebang and encoding lines, cells that set ``active``,
``language`` or ``run_control``, Markdown cells written as a string (``\"\"\"...\"\"\"``), cell
metadata keys nbformat constrains (``jupyter``, ``collapsed``, ``scrolled``, ``execution``,
``format``; ``tags`` and ``name`` are checked here as nbformat checks them), header options that
change the reading (``comment_magics`` aside), values that are not plain JSON data (tuples, sets),
and languages other than Python, R and Julia. jupytext then reads the text, or reports the error.

Cells carry no ``lines_to_next_cell``/``lines_to_end_of_cell_marker`` metadata: jupytext adds
those to write the script back with the same blank lines; they say nothing about the notebook.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

__all__ = ["NotHandled", "read_percent_script"]


class NotHandled(Exception):
    """The text uses something this reader leaves to jupytext (the message says what)."""


#: The language of each script extension this reader handles (jupytext's table); all comment
#: with ``#``.
LANGUAGES = {".py": "python", ".R": "R", ".r": "R", ".jl": "julia"}

#: Header ``jupytext`` options that do not change how cells are read.
_HARMLESS_OPTIONS = {
    "text_representation",
    "formats",
    "notebook_metadata_filter",
    "cell_metadata_filter",
    "root_level_metadata_filter",
    "cell_metadata_json",
    "comment_magics",  # read below
}
#: Format options jupytext may read from the header (the others change the reading).
_FORMAT_OPTIONS = {
    "comment_magics",
    "hide_notebook_metadata",
    "root_level_metadata_as_raw_cell",
    "split_at_heading",
    "rst2md",
    "cell_metadata_json",
    "use_runtools",
    "doxygen_equation_markers",
    "notebook_metadata_filter",
    "root_level_metadata_filter",
    "cell_metadata_filter",
    "cell_markers",
    "custom_cell_magics",
    "custom_language_magics",
}
#: Header entries jupytext moves into ``jupytext`` (pre-1.0 notebooks).
_OLD_HEADER_KEYS = {
    "nbrmd_formats",
    "nbrmd_format_version",
    "jupytext_formats",
    "jupytext_format_version",
    "main_language",
    "encoding",
    "executable",
}
#: Notebook metadata nbformat's schema constrains (``kernelspec`` is checked here).
_CONSTRAINED_NOTEBOOK_KEYS = {"language_info", "orig_nbformat", "title", "authors"}
#: Cell metadata that changes how jupytext reads the cell, or that nbformat's schema constrains
#: (``tags`` and ``name`` are checked here).
_CELL_KEYS_FOR_JUPYTEXT = {
    "active",
    "language",
    "run_control",
    "jupyter",
    "collapsed",
    "scrolled",
    "execution",
    "format",
}
#: Layout bookkeeping jupytext keeps to write the same blank lines back.
LAYOUT_KEYS = ("lines_to_next_cell", "lines_to_end_of_cell_marker")

# -- the lines jupytext recognises ----------------------------------------------------------------
_MARKER = re.compile(r"^\s*#\s*%%(%*)\s(.*)$")  # a marker that may carry options
_BARE_MARKER = re.compile(r"^\s*#\s*(%%|<codecell>|In\[[0-9 ]*\]:?)\s*$")
# What jupytext's format guess counts as percent cells (stricter: at the start of the line).
_GUESS_MARKERS = re.compile(r"^#( %%$| %%\s|%%$|%%\s| <codecell>| In\[[0-9 ]*\]:?)")
_BLANK = re.compile(r"^\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADER_RULE = re.compile(r"^---\s*$")
_JUPYTER_SECTION = re.compile(r"^jupyter\s*:\s*$")
_LEFT_SPACE = re.compile(r"^\s")
_ENCODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-_.a-zA-Z0-9]+)")
_ESCAPED_CODE_START = re.compile(r"^(# |#)*(#|# )\+")
_LINE_CONTINUATION = re.compile(r".*\\\s*$")

# Magics: jupytext comments them in scripts, and uncomments them when reading code cells.
_MAGIC = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z]")
_MAGIC_ESCAPE = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z](.*)#\s*escape")
_MAGIC_NO_ESCAPE = re.compile(r"^\s*(# |#)*(%|%%|%%%)[a-zA-Z](.*)#\s*noescape")
# Python only: help and shell escapes, magics assigned to a name, ``x?``, and shell commands.
_HELP_OR_SHELL = re.compile(r"^\s*(?:(?:# |#)+\s*)?(\?|!)\s*[A-Za-z\.\~\$\\\/\{\}]")
_MAGIC_ASSIGNMENT = re.compile(
    r"^(# |#)*\s*([a-zA-Z_][a-zA-Z_$0-9]*)\s*=\s*(%|%%|%%%|!)[a-zA-Z](.*)"
)
_HELP_SUFFIX = re.compile(r"^\s*(# )*[^\s]*\?\s*$")
_SHELL_COMMAND = re.compile(
    r"^(# |#)*(cat|cd|cp|mv|rm|rmdir|mkdir|copy|ddir|echo|ls|ldir|ren)($|\s$|\s[^=,])"
)

# Cell options: metadata keys, and bare identifiers (``# %% hide`` gives ``{"hide": None}``).
_IDENTIFIER = re.compile(r"^[a-zA-Z_\.]+[a-zA-Z0-9_\.]*$")
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9_\.@/-]+$")
_TAG = re.compile(r"^[^,]+$")  # nbformat: a tag is not empty and has no comma
_NAME = re.compile(r"^.+$")  # nbformat: a cell name is not empty


def read_percent_script(text: str, extension: str = "py") -> dict[str, Any]:
    """The notebook (nbformat v4 as plain JSON data) that ``jupytext.reads(text, fmt=extension)``
    gives, minus cell ids and layout keys; raises :class:`NotHandled` when jupytext must read it.
    """
    ext = "." + extension.lstrip(".")
    if ext not in LANGUAGES:
        raise NotHandled(f"{ext} scripts")
    lines = text.splitlines()
    metadata, header_cell, start = _read_header(lines, ext)
    format_name = _format_name(lines, ext, metadata)
    jupytext = metadata.get("jupytext", {})
    comment_magics = jupytext.get("comment_magics", format_name == "percent")
    if not isinstance(comment_magics, bool):
        raise NotHandled("a non-boolean comment_magics option")
    reader = _CellReader(lines, ext, _main_language(metadata, ext), comment_magics)
    cells = [header_cell] if header_cell else []
    position = start
    while position < len(lines):
        cell, position = reader.read(position)
        cells.append(cell)
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


# -- the header and the format --------------------------------------------------------------------
def _read_header(lines: list[str], ext: str) -> tuple[dict[str, Any], dict | None, int]:
    """The header's ``jupyter`` metadata, the raw cell for its other entries, and where the
    cells start. A header is YAML between ``# ---`` lines at the top (blank comment lines may
    come first); without a closing line there is none."""
    for line in lines[:2]:
        if line.startswith("#!") or _ENCODING.match(line):
            raise NotHandled("a shebang or encoding line")
    if ext in (".R", ".r") and lines and lines[0].startswith("#'"):
        raise NotHandled("an R spin header")
    started = in_jupyter = False
    jupyter: list[str] = []
    other: list[str] = []
    end = None
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            break
        line = _uncomment(line)
        if _HEADER_RULE.match(line):
            if started:
                end = index
                break
            started = True
            continue
        if not started and line.strip():
            break
        if _JUPYTER_SECTION.match(line):
            in_jupyter = True
        elif line and not _LEFT_SPACE.match(line):
            in_jupyter = False
        (jupyter if in_jupyter else other).append(line)
    if end is None:
        return {}, None, 0
    metadata: dict[str, Any] = {}
    if jupyter:
        import yaml

        try:
            loaded = yaml.safe_load("\n".join(jupyter))
        except yaml.YAMLError as error:
            raise NotHandled(f"a header jupytext cannot read either: {error}") from None
        metadata = loaded.get("jupyter") if isinstance(loaded, dict) else None
        if not isinstance(metadata, dict) or not all(isinstance(key, str) for key in metadata):
            raise NotHandled("a header whose jupyter entry is not a mapping")
    _check_notebook_metadata(metadata)
    if end + 1 < len(lines) and _BLANK.match(_uncomment(lines[end + 1])):
        end += 1  # the blank line after the header
    cell = None
    if other:
        source = "\n".join(["---", *other, "---"])
        cell = {"cell_type": "raw", "metadata": {}, "source": source}
    return metadata, cell, end + 1


def _check_notebook_metadata(metadata: dict[str, Any]) -> None:
    jupytext = metadata.get("jupytext", {})
    if not isinstance(jupytext, dict):
        raise NotHandled("a jupytext header entry that is not a mapping")
    if _OLD_HEADER_KEYS & metadata.keys() or "metadata_filter" in jupytext:
        raise NotHandled("header entries of old jupytext versions")
    options = (_FORMAT_OPTIONS & jupytext.keys()) - _HARMLESS_OPTIONS
    if options:
        raise NotHandled(f"header options {', '.join(sorted(options))}")
    if _CONSTRAINED_NOTEBOOK_KEYS & metadata.keys():
        raise NotHandled("notebook metadata that nbformat validates")
    kernelspec = metadata.get("kernelspec")
    if "kernelspec" in metadata and not (
        isinstance(kernelspec, dict)
        and isinstance(kernelspec.get("name"), str)
        and isinstance(kernelspec.get("display_name"), str)
    ):
        raise NotHandled("a kernelspec without a name and a display_name (nbformat rejects it)")
    if not _is_plain_data(metadata):
        raise NotHandled("header values that are not plain JSON data")


def _format_name(lines: list[str], ext: str, metadata: dict[str, Any]) -> str:
    """``percent`` or ``hydrogen``, as jupytext decides from the header or by guessing."""
    jupytext = metadata.get("jupytext", {})
    representation = jupytext.get("text_representation")
    if representation is not None:
        if not isinstance(representation, dict):
            raise NotHandled("a text_representation that is not a mapping")
        version = representation.get("jupytext_version")
        if isinstance(version, str) and version.startswith("0."):
            raise NotHandled("a header of jupytext 0.x")
        extension = representation.get("extension")
        name = representation.get("format_name")
        if not (isinstance(extension, str) and extension.endswith(ext) and name):
            raise NotHandled("a text_representation for another extension")
        if name not in ("percent", "hydrogen"):
            raise NotHandled(f"the {name} format")
        return name
    if "formats" in jupytext:
        raise NotHandled("a formats entry without text_representation")
    language = LANGUAGES[ext]
    quotes = _Quotes("R" if language == "R" else "python")
    markers = magics = 0
    for line in lines:
        quotes.read(line)
        if quotes.open:
            continue
        if _GUESS_MARKERS.match(line):
            markers += 1
        if not line.startswith("#") and _is_magic(line, language, explicitly_code=False):
            magics += 1
    if not markers:
        raise NotHandled("a script without # %% cells (another jupytext format)")
    return "hydrogen" if magics else "percent"


def _main_language(metadata: dict[str, Any], ext: str) -> str:
    main = metadata.get("jupytext", {}).get("main_language")
    kernelspec = metadata.get("kernelspec") or {}
    language = main or kernelspec.get("language") or LANGUAGES[ext]
    if not isinstance(language, str):
        raise NotHandled("a language that is not a string")
    if language not in ("R", "sas"):
        language = language.lower().replace("#", "sharp")
    if language not in ("python", "R", "julia"):
        raise NotHandled(f"the {language} language")
    return language


# -- cells ----------------------------------------------------------------------------------------
class _CellReader:
    def __init__(self, lines: list[str], ext: str, language: str, comment_magics: bool):
        self.lines = lines
        self.ext = ext
        self.language = language
        self.comment_magics = comment_magics

    def read(self, start: int) -> tuple[dict[str, Any], int]:
        """The cell that starts at line ``start``, and where the next one starts."""
        lines = self.lines
        first = lines[start]
        marker = _MARKER.match(first)
        metadata = _options(_uncomment(first)[_uncomment(first).find("%%") + 2 :]) if marker else {}
        kind = metadata.pop("cell_type", "code")
        if kind not in ("code", "markdown", "raw"):
            raise NotHandled(f"cell_type={kind!r}")
        end, following = self._end(start, kind)
        body_start = start + 1 if marker or _BARE_MARKER.match(first) else start
        source = lines[body_start:end]
        if self.ext == ".py" and kind != "code":
            text = "\n".join(source).strip()
            if any(
                text.startswith(prefix + quote) and text.endswith(quote)
                for prefix in ("", "r", "R")
                for quote in ('"""', "'''")
            ):
                raise NotHandled("a Markdown or raw cell written as a string")
        if self.comment_magics:
            source = _uncomment_magics(source, self.language)
        if kind == "code":
            source = _unescape_code_starts(source, self.language)
        else:
            source = [_uncomment(line) for line in source]
        return {"cell_type": kind, "metadata": metadata, "source": "\n".join(source)}, following

    def _end(self, start: int, kind: str) -> tuple[int, int]:
        """Where the cell's content ends, and where the next cell starts."""
        lines = self.lines
        quotes = _Quotes(self.language)
        fence = None
        following = len(lines)
        for index in range(start, len(lines)):
            line = lines[index]
            if quotes.open:
                quotes.read(line)
                continue
            quotes.read(line)
            if kind != "code":  # '# %%' in a fenced block of a Markdown cell is not a marker
                text = _uncomment(line)
                if fence:
                    if _closes_fence(text, fence):
                        fence = None
                    continue
                opening = _opening_fence(text)
                if opening and any(
                    _closes_fence(_uncomment(later), opening) for later in lines[index + 1 :]
                ):
                    fence = opening
                    continue
            if index > start and (_MARKER.match(line) or _BARE_MARKER.match(line)):
                following = index
                break
        body = lines[start:following]
        if len(body) >= 3 and not _BLANK.match(body[-3]) and all(map(_BLANK.match, body[-2:])):
            return following - 2, following
        if following > start and lines[following - 1] == "":
            return following - 1, following
        return following, following


def _opening_fence(text: str) -> tuple[str, int] | None:
    match = _FENCE.match(text)
    if not match or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1)[0], len(match.group(1))


def _closes_fence(text: str, fence: tuple[str, int]) -> bool:
    match = _FENCE.match(text)
    return (
        bool(match)
        and match.group(1)[0] == fence[0]
        and len(match.group(1)) >= fence[1]
        and not match.group(2).strip()
    )


def _uncomment(line: str) -> str:
    """``# text`` or ``#text`` -> ``text``."""
    if line.startswith("# "):
        return line[2:]
    return line[1:] if line.startswith("#") else line


def _unescape(line: str) -> str:
    """The line commented once less, keeping its indentation."""
    body = line.lstrip()
    indent = line[: len(line) - len(body)]
    if body.startswith("# "):
        return indent + body[2:]
    return indent + body[1:] if body.startswith("#") else line


def _is_magic(line: str, language: str, explicitly_code: bool = True) -> bool:
    """Is the line a (possibly commented) magic, as jupytext sees it?"""
    if _MAGIC_ESCAPE.match(line):
        return True
    if _MAGIC_NO_ESCAPE.match(line):
        return False
    if _MAGIC.match(line):
        return True
    if language != "python":
        return False
    if _HELP_OR_SHELL.match(line) or _MAGIC_ASSIGNMENT.match(line):
        return True
    if explicitly_code and _HELP_SUFFIX.match(line):
        return True
    return bool(_SHELL_COMMAND.match(line))


def _uncomment_magics(source: list[str], language: str) -> list[str]:
    """Commented magics (outside string literals) uncommented once; a Python magic ending with a
    backslash continues on the next line."""
    result = list(source)
    quotes = _Quotes(language)
    continued = False
    for index, line in enumerate(source):
        if not quotes.open and (continued or _is_magic(line, language)):
            result[index] = _unescape(line)
            continued = language == "python" and bool(_LINE_CONTINUATION.match(line))
        quotes.read(line)
    return result


def _unescape_code_starts(source: list[str], language: str) -> list[str]:
    """``# # +`` -> ``# +``: jupytext escapes lines of code that look like cell markers."""
    result = list(source)
    quotes = _Quotes(language)
    for index, line in enumerate(source):
        if not quotes.open and _ESCAPED_CODE_START.match(line):
            unescaped = _unescape(line)
            if _ESCAPED_CODE_START.match(unescaped):
                result[index] = unescaped
        quotes.read(line)
    return result


class _Quotes:
    """Whether the next line starts inside a string literal: jupytext's approximation (it tells
    where markers and magics cannot be). Python and Julia strings may span lines with triple
    quotes; for R jupytext tracks no strings at all. A backslash escapes the quote after it."""

    def __init__(self, language: str):
        self.tracks = language != "R"
        self.single: str | None = None
        self.triple: str | None = None

    @property
    def open(self) -> bool:
        return self.single is not None or self.triple is not None

    def read(self, line: str) -> None:
        if not self.tracks or ('"' not in line and "'" not in line):
            return  # (a line without quotes changes nothing)
        if not self.open and line.lstrip().startswith("#"):
            return
        triple_start = -1
        for i, char in enumerate(line):
            if char == "#" and self.single is None and self.triple is None:
                break  # a comment
            if char not in "\"'" or (i and line[i - 1] == "\\"):
                continue
            if self.single == char:
                self.single = None
                continue
            if self.single is not None:
                continue
            if i >= 2 and line[i - 2 : i + 1] == char * 3 and i >= triple_start + 3:
                if self.triple == char:  # closes the triple-quoted string
                    self.triple = None
                    triple_start = i
                elif self.triple is None:  # opens one
                    self.triple = char
                    triple_start = i
                continue
            if self.triple is None:
                self.single = char
        self.single = None  # a one-quote string ends with its line


# -- cell options ---------------------------------------------------------------------------------
def _options(text: str) -> dict[str, Any]:
    """The metadata of a marker line, from what follows ``%%``: a title, the cell type in
    brackets, sub-cell depth (``%``), then ``key=value`` pairs or a JSON object."""
    text = text.strip()
    curly = text.find("{")
    equals = text.find("=")
    try:
        if curly < 0 or 0 <= equals < curly:
            words = (text[:equals] if equals >= 0 else text).split(" ")
            if equals >= 0:
                while words and not words[-1]:
                    words.pop()
                if words:
                    words.pop()  # the first key
            while words and (not words[-1].strip() or words[-1].startswith(".")):
                words.pop()  # attributes (.class) belong to the metadata
            title = " ".join(words)
            metadata = _key_values(text[len(title) :])
        else:
            title = text[:curly].strip()
            metadata = _literal(text[curly:], text[curly:])
    except RecursionError:
        raise NotHandled("cell options too long") from None
    if not isinstance(metadata, dict):
        raise NotHandled("cell options that are not a mapping")
    for kind in ("markdown", "raw", "md"):
        if f"[{kind}]" in title:
            title = title.replace(f"[{kind}]", "").strip()
            metadata["cell_type"] = "markdown" if kind == "md" else kind
            if kind == "md":
                metadata["region_name"] = "md"
            break
    depth = len(title) - len(title.lstrip("%"))
    if depth:
        metadata["cell_depth"] = depth
        title = title[depth:].strip()
    if title:
        metadata["title"] = title
    _check_cell_metadata(metadata)
    for key in LAYOUT_KEYS:
        metadata.pop(key, None)
    return metadata


def _key_values(text: str) -> dict[str, Any]:
    """``key1=value1 key2 key3=value3``, read from the right: each value is the longest text
    after an ``=`` that parses as JSON or as a Python literal."""
    text = text.strip()
    if not text:
        return {}
    space = text.rfind(" ")
    last = text[space + 1 :]
    if not text.startswith("--") and _IDENTIFIER.match(last):
        result: dict[str, Any] = {last: None}
        if space > 0:
            result.update(_key_values(text[:space]))
        return result
    equals = len(text)
    while True:
        equals = text.rfind("=", 0, equals)
        if equals < 0:
            return {"incorrectly_encoded_metadata": text}
        before = text[:equals].rstrip().rfind(" ")
        key = text[before + 1 : equals].strip()
        if not _METADATA_KEY.match(key):
            continue
        try:
            value = _literal(text[equals + 1 :])
        except (ValueError, SyntaxError):
            continue
        metadata = _key_values(text[:before]) if before > 0 else {}
        metadata[key] = value
        return metadata


def _literal(text: str, fallback: str | None = None) -> Any:
    """JSON, else a Python literal; else ``fallback`` as incorrectly encoded metadata (or the
    parsing error when there is no fallback)."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if fallback is None:
            raise
        return {"incorrectly_encoded_metadata": fallback.strip()}
    except Exception as error:  # TypeError (an unhashable key), MemoryError...: jupytext fails
        raise NotHandled(f"cell options jupytext cannot read: {error!r}") from None


def _check_cell_metadata(metadata: dict[str, Any]) -> None:
    keys = _CELL_KEYS_FOR_JUPYTEXT & metadata.keys()
    if keys:
        raise NotHandled(f"cell metadata {', '.join(sorted(keys))}")
    if not _is_plain_data(metadata):
        raise NotHandled("cell metadata that is not plain JSON data")
    tags = metadata.get("tags")
    if tags is not None and not (
        isinstance(tags, list)
        and all(isinstance(tag, str) and _TAG.search(tag) for tag in tags)
        and len(set(tags)) == len(tags)
        and not any(tag.startswith("active-") for tag in tags)
    ):
        raise NotHandled("tags that are not unique strings without commas, or active- tags")
    name = metadata.get("name")
    if name is not None and not (isinstance(name, str) and _NAME.search(name)):
        raise NotHandled("a cell name that is not a non-empty string")


def _is_plain_data(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(map(_is_plain_data, value))
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain_data(item) for key, item in value.items())
    return False
