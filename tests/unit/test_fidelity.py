"""Profile fidelity: fields are classed cited / estimated / harness / uncited from the files' own comments."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from emulators.profiles import list_profiles
from emulators.profiles.fidelity import read_fidelity, shared_tables, shipped_fidelity, source_keys
from harness.reports.fidelity import fidelity_markdown

PROFILE_DIR = Path(read_fidelity.__code__.co_filename).parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"

SAMPLE = """\
# A sample platform. ESTIMATE in the header is not a field's note.
name = "sample"
pattern = "container"

timeout_s = 60.0                # read timeout 60 s (K16, K17)
# idle instances are kept at most 15 min (R10)
scale_to_zero_idle_s = 900
# ESTIMATE: no figure for the scale-up rate; the HPA's (K20) stand in.
scale_up_percent = 100
scale_up_pods = 4
min_replicas = 1                # harness: the pool you set; (K21) says 1 too
queue = "amqp://x/#frag"        # a hash inside a string is not a comment (Q1)

load_balancer = "round_robin"
# NOT MODELLED: startup CPU boost (R16)
# MODELLED: idle instances kept 15 min (R10)
"""


def _sample(tmp_path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    path = tmp_path / "sample.toml"
    path.write_text(SAMPLE, encoding="utf-8")
    return {f.field: (f.kind, f.keys) for f in read_fidelity(path).fields}


def test_inline_key_and_block_above_make_a_field_cited(tmp_path: Path) -> None:
    """A key in parentheses in the inline comment, or in the comment block just above, cites the field."""
    fields = _sample(tmp_path)
    assert fields["timeout_s"] == ("cited", ("K16", "K17"))
    assert fields["scale_to_zero_idle_s"] == ("cited", ("R10",))


def test_an_estimate_block_covers_its_whole_group(tmp_path: Path) -> None:
    """An ESTIMATE block marks the fields below it, up to a blank line, that have no comment of their own."""
    fields = _sample(tmp_path)
    assert fields["scale_up_percent"][0] == "estimated"
    assert fields["scale_up_pods"][0] == "estimated"


def test_harness_choice_wins_over_a_key_and_strings_keep_their_hash(tmp_path: Path) -> None:
    """A note that begins with 'harness' is a harness choice; a '#' inside a string value is not a comment."""
    fields = _sample(tmp_path)
    assert fields["min_replicas"][0] == "harness"
    assert fields["queue"] == ("cited", ("Q1",))


def test_a_blank_line_ends_what_a_block_covers(tmp_path: Path) -> None:
    """A field after a blank line, with no comment of its own, is uncited; name and pattern are not fields."""
    fields = _sample(tmp_path)
    assert fields["load_balancer"] == ("uncited", ())
    assert "name" not in fields and "pattern" not in fields


def test_behaviour_lines_are_collected(tmp_path: Path) -> None:
    """`# MODELLED:` and `# NOT MODELLED:` lines are listed as the profile's behaviours, not as notes."""
    path = tmp_path / "sample.toml"
    path.write_text(SAMPLE, encoding="utf-8")
    f = read_fidelity(path)
    assert f.modelled == ("idle instances kept 15 min (R10)",)
    assert f.not_modelled == ("startup CPU boost (R16)",)
    assert f.summary() == "3 cited, 2 est. / 7"


def test_source_keys_are_read_only_inside_parentheses() -> None:
    """Keys count inside parentheses only, so K8s or V8 in prose are not taken for sources."""
    assert source_keys("K8s pods (sec. A24, K3; A3b) and V8 isolates") == ("A24", "K3", "A3b")
    assert source_keys("(P50 of 2 runs)") == ("P50",)  # the one ambiguity: write percentiles without parentheses
    assert source_keys("no key here (harness)") == ()


@pytest.mark.parametrize("name", list_profiles())
def test_every_field_of_every_shipped_profile_is_read(name: str) -> None:
    """The reader finds every field tomllib loads from a shipped profile (none lost to a comment's '#')."""
    path = PROFILE_DIR / f"{name}.toml"
    loaded = set(tomllib.loads(path.read_text(encoding="utf-8"))) - {"name", "pattern", "description"}
    assert {f.field for f in read_fidelity(path).fields} == loaded


def test_docs_fidelity_table_matches_the_profiles() -> None:
    """docs/fidelity.md is exactly what `harness profiles --fidelity` prints for the shipped files."""
    expected = fidelity_markdown(shipped_fidelity(), shared_tables())
    assert [f.profile for f in shipped_fidelity()] == list_profiles()
    assert DOC.read_text(encoding="utf-8") == expected, "regenerate: harness profiles --fidelity > docs/fidelity.md"


def test_stand_ins_stay_few_and_none_is_a_price() -> None:
    """Fewer than 15 ESTIMATE/UNCONFIRMED lines across the shipped profiles (issue 19), and no price estimated."""
    lines = [line for p in PROFILE_DIR.glob("*.toml") for line in p.read_text(encoding="utf-8").splitlines()
             if re.search(r"ESTIMATE|UNCONFIRMED", line)]
    assert len(lines) < 15, lines
    priced = [(n, f.field) for n in list_profiles() for f in read_fidelity(PROFILE_DIR / f"{n}.toml").fields
              if f.kind == "estimated" and "price" in f.field]
    assert priced == []


def test_shared_llm_tables_are_read_per_model() -> None:
    """The price and speed tables are read per model: every chat price cited, speeds cited but for three
    stand-ins; the embedding models' figures are the only estimated prices (platform-facts.md has none)."""
    (_, prices), (_, speeds) = shared_tables()
    chat = [f for f in prices.fields if "embedding" not in f.field]
    assert chat and all(f.kind == "cited" for f in chat)
    assert {f.kind for f in prices.fields if "embedding" in f.field} <= {"estimated", "uncited"}  # output = 0.0
    gpt = {f.field: f for f in speeds.fields}['models."gpt-4o".ttft_s']
    assert (gpt.value, gpt.kind, gpt.keys) == ("0.45", "cited", ("L11", "L10"))
    assert speeds.count("estimated") == 3
