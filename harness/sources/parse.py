"""Reading deployment files with line numbers: YAML through PyYAML's node marks, TOML and JSON by line search.

YAML: the file is composed into nodes (``yaml.compose_all`` with the safe loader), and converted to plain
values while each key's line is recorded under its path, e.g. ``("Resources", "Fn", "Properties",
"Timeout") -> 14``. CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If`` ...) become
their long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``) instead of failing the safe loader; no tag
ever constructs a Python object. TOML (``tomllib``) and JSON (``json``, JSONC comments stripped) carry no
positions, so a key's line is found by searching the text (``LineFinder``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from emulators.errors import ConfigError

from .model import Where

__all__ = ["Doc", "LineFinder", "load_json", "load_toml", "load_yaml_docs"]

Path_ = tuple[str | int, ...]


class Doc:
    """One parsed document: plain values plus the line of every key path."""

    def __init__(self, file: Path, data: Any, lines: dict[Path_, int] | None = None,
                 finder: LineFinder | None = None) -> None:
        self.file = file
        self.data = data
        self._lines = lines or {}
        self._finder = finder

    def where(self, *path: str | int) -> Where:
        """Where the key at ``path`` is (the closest enclosing key known, or the file)."""
        p: Path_ = tuple(path)
        if self._finder is not None:
            return Where(self.file, self._finder.line(p))
        while p:
            if p in self._lines:
                return Where(self.file, self._lines[p])
            p = p[:-1]
        return Where(self.file, 0)


def _long_form(tag: str, value: Any) -> Any:
    name = tag[1:]
    if name == "Ref":
        return {"Ref": value}
    if name == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if name == "Condition":
        return {"Condition": value}
    return {f"Fn::{name}": value}


def load_yaml_docs(file: Path) -> list[Doc]:
    """Every YAML document of ``file`` with its key lines; a syntax error is a ConfigError with the line."""
    text = _read(file)
    loader = yaml.SafeLoader("")
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: not valid YAML: {exc.problem or exc}; fix the file and retry") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    docs = []
    for node in nodes:
        if node is None:
            continue
        lines: dict[Path_, int] = {}
        docs.append(Doc(file, _value(node, (), lines, loader, file), lines))
    return docs


def _value(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: yaml.SafeLoader, file: Path) -> Any:
    custom = node.tag.startswith("!")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            key = _value(k, path, {}, loader, file)
            if not isinstance(key, str | int | float | bool):
                raise ConfigError(f"{file}:{k.start_mark.line + 1}: a mapping key must be a plain value, got {key!r}")
            lines[(*path, str(key))] = k.start_mark.line + 1  # the key's line, even for a value folded below
            out[str(key)] = _value(v, (*path, str(key)), lines, loader, file)
        value: Any = out
    elif isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_value(item, (*path, i), lines, loader, file))
        value = items
    else:
        if custom:
            value = node.value
        else:
            try:
                value = loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                raise ConfigError(f"{file}:{node.start_mark.line + 1}: {exc}") from None
    return _long_form(node.tag, value) if custom else value


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"deployment file {str(file)!r} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"deployment file {str(file)!r} cannot be read: {exc}") from None


class LineFinder:
    """Finds the line of a key path in TOML or JSON text by searching for each key in turn.

    TOML: the ``[table]`` / ``[[array]]`` header of the path's tables first, then ``key =`` after it (dotted
    keys and inline tables are found by the key's name). JSON: each ``"key":`` after the previous one.
    Good enough to point a user at the line; it never changes what was parsed.
    """

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.starts = [0]
        for m in re.finditer("\n", text):
            self.starts.append(m.end())

    def _line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def line(self, path: Iterable[str | int]) -> int:
        """The 1-based line of the last key of ``path`` found (0: none)."""
        keys = [k for k in path if isinstance(k, str)]
        if not keys:
            return 0
        if self.kind == "toml":
            return self._toml(keys)
        return self._json(keys)

    def _json(self, keys: list[str]) -> int:
        pos, line = 0, 0
        for k in keys:
            m = re.compile(r'"' + re.escape(k) + r'"\s*:').search(self.text, pos)
            if m is None:
                break
            pos, line = m.end(), self._line_of(m.start())
        return line

    def _toml(self, keys: list[str]) -> int:
        # the longest table header that is a prefix of the path, then the rest as keys after it
        for n in range(len(keys), 0, -1):
            header = r"\[\[?\s*" + r"\s*\.\s*".join(re.escape(k) for k in keys[:n]) + r"\s*\]\]?"
            m = re.compile(r"^\s*" + header, re.M).search(self.text)
            if m is not None:
                if n == len(keys):
                    return self._line_of(m.start())
                return self._keys_after(keys[n:], m.end()) or self._line_of(m.start())
        return self._keys_after(keys, 0)

    def _keys_after(self, keys: list[str], pos: int) -> int:
        line = 0
        for k in keys:
            m = re.compile(r"(^|[\s{,.])\"?" + re.escape(k) + r"\"?\s*[=.]", re.M).search(self.text, pos)
            if m is None:
                break
            pos, line = m.end(), self._line_of(m.start() + len(m.group(1)))
        return line


def load_toml(file: Path) -> Doc:
    """A TOML file with a line finder; invalid TOML is a ConfigError naming the line."""
    text = _read(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}; fix the file and retry") from None
    return Doc(file, data, finder=LineFinder(text, "toml"))


def strip_jsonc(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas made plain JSON; strings are left alone.

    Comments are replaced by spaces (newlines kept), so line numbers do not move.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r" \1", "".join(out))


def load_json(file: Path, *, comments: bool = False) -> Doc:
    """A JSON (or JSONC) file with a line finder; invalid JSON is a ConfigError naming the line."""
    text = _read(file)
    plain = strip_jsonc(text) if comments else text
    try:
        data = json.loads(plain)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}:{exc.lineno}: not valid JSON: {exc.msg}; fix the file and retry") from None
    return Doc(file, data, finder=LineFinder(plain, "json"))
