"""The fidelity table of the shipped profiles as Markdown (``harness profiles --fidelity``, docs/fidelity.md).

Everything in it is read from the profile files by ``emulators.profiles.fidelity``: the doc is regenerated,
never edited, so it says what the files say.
"""

from __future__ import annotations

from collections.abc import Sequence

from emulators.profiles.fidelity import Fidelity

__all__ = ["fidelity_markdown"]

_HEAD = """\
# Fidelity of the shipped profiles

Generated from the profile files (`emulators/profiles/*.toml`) by `harness profiles --fidelity >
docs/fidelity.md`; do not edit it by hand (a test checks that it matches the files). Source keys (A21,
R10, ...) are those of `platform-facts.md`, the cited facts every profile number comes from.

How a field is classed, from the comments of its profile file: its note is its inline comment, else the
nearest comment block above it with no blank line between. **cited**: the note gives a
source key in parentheses. **estimated**: the note says `ESTIMATE` or `UNCONFIRMED` (a stand-in, with
why). **harness**: the note begins with `harness` (a choice of the harness where the platform has no
figure, e.g. a pool size you set yourself). **uncited**: none of these. Behaviours come from the files'
`# MODELLED:` and `# NOT MODELLED:` lines. `harness profiles` shows the counts in its fidelity column.
The tables every profile shares (LLM list prices and serving speeds) follow the profiles.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _summary(items: Sequence[Fidelity]) -> list[str]:
    out = ["## Summary", "", "| profile | pattern | cited | estimated | harness | uncited | fields |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for f in items:
        out.append(f"| [{f.profile}](#{f.profile}) | {f.pattern} | {f.count('cited')} | {f.count('estimated')} "
                   f"| {f.count('harness')} | {f.count('uncited')} | {len(f.fields)} |")
    total = {k: sum(f.count(k) for f in items) for k in ("cited", "estimated", "harness", "uncited")}
    out.append(f"| **all** | | {total['cited']} | {total['estimated']} | {total['harness']} | "
               f"{total['uncited']} | {sum(len(f.fields) for f in items)} |")
    return out


def _profile(f: Fidelity) -> list[str]:
    out = [f"## {f.profile}", "", f"Pattern: {f.pattern}.", "", "| field | value | kind | keys | note |",
           "|---|---|---|---|---|"]
    for n in f.fields:
        out.append(f"| `{n.field}` | `{_cell(n.value)}` | {n.kind} | {', '.join(n.keys)} | {_cell(n.note)} |")
    for title, lines in (("Modelled", f.modelled), ("Documented, not modelled", f.not_modelled)):
        if lines:
            out += ["", f"{title}:", ""]
            out += [f"- {line}" for line in lines]
    return out


def _shared(title: str, f: Fidelity) -> list[str]:
    out = [f"### {title}", "", f"{f.count('cited')} cited, {f.count('estimated')} estimated of {len(f.fields)}.",
           "", "| entry | value | kind | keys | note |", "|---|---|---|---|---|"]
    for n in f.fields:
        out.append(f"| `{_cell(n.field)}` | `{_cell(n.value)}` | {n.kind} | {', '.join(n.keys)} | {_cell(n.note)} |")
    return out


def fidelity_markdown(items: Sequence[Fidelity], shared: Sequence[tuple[str, Fidelity]] = ()) -> str:
    """The whole document: how fields are classed, a summary row per profile, each profile's fields, then
    the shared tables (``shared``: a title and the table's fidelity each)."""
    out = [_HEAD, *_summary(items)]
    for f in items:
        out += ["", *_profile(f)]
    if shared:
        out += ["", "## Shared tables"]
        for title, f in shared:
            out += ["", *_shared(title, f)]
    return "\n".join(out) + "\n"
