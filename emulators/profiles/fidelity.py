"""Fidelity of the shipped profiles: which fields cite a source in ``platform-facts.md`` and which stand in.

Read from the profile files' own comments, so the figure cannot drift from what the files say:

- a field's note is its inline comment; without one, the nearest comment block above it with no blank
  line between (a block covers the fields below it up to a blank line or the next block);
- the field is **estimated** when its note says ``ESTIMATE`` or ``UNCONFIRMED``; else **harness** when the
  note begins with ``harness`` (a choice of the harness, no platform figure exists); else **cited** when the
  note carries a source key in parentheses, like ``(R10)`` or ``(sec. A24, K3)``; else **uncited**.

A field inside a ``[table]`` (the shared price and speed tables) is named ``table.field``. Lines
``# MODELLED: ...`` and ``# NOT MODELLED: ...`` list the platform's behaviours that the emulation
reproduces or leaves out; ``docs/fidelity.md`` is generated from all of this by ``harness profiles --fidelity``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "FieldNote", "Fidelity", "read_fidelity", "shared_tables", "shipped_fidelity", "source_keys"]

KINDS = ("cited", "estimated", "harness", "uncited")
_META = frozenset({"name", "pattern", "description", "as_of"})  # what the file is, not a platform figure
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")
_TABLE = re.compile(r"^\[([^\[\]]+)\]$")
_PARENS = re.compile(r"\(([^()]*)\)")
# Source keys of platform-facts.md: letters then a number (A21, sec. R4, RD11, FA4, A3b, RD1r).
_KEY = re.compile(r"\b(?:A|C|F|FA|HK|K|L|M|N|P|Q|R|RD|RMQ|RW|V)\d{1,3}(?:b|r)?\b")
_ESTIMATE = re.compile(r"\b(?:ESTIMATE|UNCONFIRMED)\b")
_BEHAVIOUR = re.compile(r"^#\s*(NOT MODELLED|MODELLED):\s*(.+)$")


def source_keys(text: str) -> tuple[str, ...]:
    """The platform-facts keys cited in parentheses in ``text``, in order, without repeats."""
    found: list[str] = []
    for group in _PARENS.findall(text):
        for key in _KEY.findall(group):
            if key not in found:
                found.append(key)
    return tuple(found)


@dataclass(frozen=True)
class FieldNote:
    """One field of a profile file: its value as written, its note, and what kind of figure it is."""

    field: str
    value: str
    note: str
    kind: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Fidelity:
    """The fields of one profile file by kind, and the behaviours it says are modelled or not."""

    profile: str
    pattern: str
    fields: tuple[FieldNote, ...]
    modelled: tuple[str, ...]
    not_modelled: tuple[str, ...]

    def count(self, kind: str) -> int:
        """How many fields are of ``kind`` (one of KINDS)."""
        return sum(1 for f in self.fields if f.kind == kind)

    def summary(self) -> str:
        """The column ``harness profiles`` shows, e.g. ``21 cited, 2 est. / 28``."""
        return f"{self.count('cited')} cited, {self.count('estimated')} est. / {len(self.fields)}"


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a TOML line: the first ``#`` after which the code still parses as TOML."""
    start = 0
    while (i := line.find("#", start)) >= 0:
        code = line[:i].rstrip()
        try:
            tomllib.loads(code)
        except tomllib.TOMLDecodeError:
            start = i + 1
            continue
        return code, line[i + 1:].strip()
    return line.rstrip(), ""


def _classify(note: str) -> str:
    if _ESTIMATE.search(note):
        return "estimated"
    if note.lower().startswith("harness"):
        return "harness"
    if source_keys(note):
        return "cited"
    return "uncited"


def read_fidelity(path: Path) -> Fidelity:
    """The fidelity of one profile file (see the module docstring for the rules)."""
    text = path.read_text(encoding="utf-8")
    pattern = str(tomllib.loads(text).get("pattern", "serverless"))
    notes: list[FieldNote] = []
    modelled: list[str] = []
    not_modelled: list[str] = []
    block: list[str] = []  # the comment lines just above the current line
    group = ""  # the last comment block since the last blank line
    table = ""  # the current [table] (the shared tables: prices, speeds), "" at the top level
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            block, group = [], ""
            continue
        if line.startswith("#"):
            m = _BEHAVIOUR.match(line)
            if m is not None:
                (not_modelled if m.group(1) == "NOT MODELLED" else modelled).append(m.group(2).strip())
            else:
                block.append(line.lstrip("#").strip())
            continue
        code, inline = _split_comment(line)
        m = _FIELD.match(code)
        if m is None:  # a table header or a continued value
            header = _TABLE.match(code)
            table = header.group(1).strip() if header else table
            block = []
            continue
        if block:
            group = " ".join(block)
        note = inline or group
        block = []
        name = f"{table}.{m.group(1)}" if table else m.group(1)
        if name in _META:
            continue
        value = code.split("=", 1)[1].strip()
        notes.append(FieldNote(name, value, note, _classify(note), source_keys(note)))
    return Fidelity(path.stem, pattern, tuple(notes), tuple(modelled), tuple(not_modelled))


def shipped_fidelity() -> list[Fidelity]:
    """The fidelity of every shipped profile, by name."""
    here = Path(__file__).parent
    return [read_fidelity(path) for path in sorted(here.glob("*.toml"), key=lambda p: p.stem)]


def shared_tables() -> list[tuple[str, Fidelity]]:
    """The tables every profile shares, titled: LLM list prices and LLM serving speeds."""
    here = Path(__file__).parent
    return [(f"LLM {what} (emulators/profiles/{rel})", read_fidelity(here / rel))
            for what, rel in (("list prices", "prices/llm.toml"), ("serving speeds", "llm/speeds.toml"))]
