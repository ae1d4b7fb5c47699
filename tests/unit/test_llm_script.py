"""LLM scripts: loading and validating TOML, matching rules (model, api, regex, turn, times, probability),
the answers rules give, and per-model latency."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from emulators.llm import Message, Prompt, ToolSpec, load_script, tokens

ROOT = Path(__file__).resolve().parents[2]


def _prompt(text: str = "hello", model: str = "gpt-4o-mini", api: str = "chat.completions",
            history: tuple[Message, ...] = (), tools: tuple[ToolSpec, ...] = ()) -> Prompt:
    return Prompt("openai", api, model, (*history, Message("user", text)), tools)


def test_every_shipped_script_loads() -> None:
    """Each fixtures/llm/*.toml is a valid script."""
    paths = sorted((ROOT / "fixtures" / "llm").glob("*.toml"))
    assert paths
    for path in paths:
        assert load_script(path).source.endswith(f"{path.name}'")


def test_first_matching_rule_wins_on_model_glob_api_regex_and_turn() -> None:
    """Conditions combine; the first rule whose conditions all hold is chosen."""
    script = load_script({"rules": [
        {"model": "claude-*", "reply": "a"},
        {"api": "responses", "reply": "b"},
        {"last_user": "(?i)weather", "turn": [2, 3], "reply": "c"},
        {"last_user": "(?i)weather", "reply": "d"},
    ]})
    rng = random.Random(0)
    assert script.match(_prompt(model="claude-haiku-4-5"), rng, {}) == 0
    assert script.match(_prompt(api="responses"), rng, {}) == 1
    second_turn = (Message("user", "x"), Message("assistant", "y"))
    assert script.match(_prompt("Weather?", history=second_turn), rng, {}) == 2
    assert script.match(_prompt("Weather?"), rng, {}) == 3
    assert script.match(_prompt("nothing"), rng, {}) is None


def test_times_limits_a_rule_to_its_first_uses() -> None:
    """A rule with times = 1 stops matching once used once."""
    script = load_script({"rules": [{"times": 1, "error": 500}]})
    assert script.match(_prompt(), random.Random(0), {}) == 0
    assert script.match(_prompt(), random.Random(0), {0: 1}) is None


def test_probability_is_seeded() -> None:
    """A rule with probability matches about that share of draws, the same way for the same seed."""
    script = load_script({"rules": [{"probability": 0.3, "reply": "x"}]})
    rng = random.Random(9)
    hits = [script.match(_prompt(), rng, {}) == 0 for _ in range(1000)]
    assert 0.25 < sum(hits) / 1000 < 0.35
    rng2 = random.Random(9)
    assert hits == [script.match(_prompt(), rng2, {}) == 0 for _ in range(1000)]


def test_reply_placeholders_and_exact_length() -> None:
    """Replies fill {last_user}, {turn}, {model}, {tool_result}; output_tokens fixes the answer's length."""
    script = load_script({"rules": [{"reply": "{model} t{turn}: {last_user} / {tool_result}"},
                                    {"output_tokens": 50}]})
    history = (Message("user", "q"), Message("assistant", "a"))
    prompt = Prompt("openai", "chat.completions", "m1", (*history, Message("user", "hi"), Message("tool", "42")))
    assert script.rules[0].answer(prompt, random.Random(0)).text == "m1 t2: hi / 42"
    assert tokens.count_text(script.rules[1].answer(_prompt(), random.Random(0)).text) == 50


def test_scripted_tool_calls_use_given_or_generated_arguments() -> None:
    """tool_calls with arguments use them; without, arguments come from the offered tool's schema."""
    tool = ToolSpec("add", "", {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
    script = load_script({"rules": [{"tool_calls": [{"name": "add"}, {"name": "add", "arguments": {"a": 9}}]}]})
    reply = script.rules[0].answer(_prompt("add 4", tools=(tool,)), random.Random(0))
    assert [c.parsed_arguments() for c in reply.tool_calls] == [{"a": 4}, {"a": 9}]


def test_latency_by_exact_name_then_glob_then_defaults() -> None:
    """latency_for prefers the exact model table, then the first glob, then [defaults]."""
    script = load_script({"defaults": {"ttft_s": 1.0, "tokens_per_s": 10},
                          "models": {"gpt-*": {"ttft_s": 2.0}, "gpt-4o": {"tokens_per_s": 99}}})
    rng = random.Random(0)
    assert script.latency_for("gpt-4o").sample(rng) == (1.0, 99.0)
    assert script.latency_for("gpt-5").sample(rng) == (2.0, 10.0)
    assert script.latency_for("claude").sample(rng) == (1.0, 10.0)
    assert script.model_names() == ["gpt-4o"]


def test_default_latency_is_jittered_and_positive() -> None:
    """Without a script the latency draws vary per request and stay positive."""
    latency = load_script(None).latency_for("any")
    rng = random.Random(0)
    draws = [latency.sample(rng) for _ in range(50)]
    assert len(set(draws)) == 50 and all(t >= 0 and tps >= 1 for t, tps in draws)


def test_known_models_get_their_cited_speed_without_a_script() -> None:
    """Without a script, gpt-4o has AA's 0.45 s / 131 t/s (sec. L11) and Sonnet 4.5 its 1.80 s / 63 t/s (L17)."""
    script = load_script(None)
    gpt = script.latency_for("gpt-4o")
    assert (gpt.ttft_s.to_json()["median"], gpt.tokens_per_s.mean()) == (0.45, 131.0)
    sonnet = script.latency_for("claude-sonnet-4-5-20250929")  # the longest listed prefix: claude-sonnet-4-5
    assert (sonnet.ttft_s.to_json()["median"], sonnet.tokens_per_s.mean()) == (1.80, 63.0)
    mini = script.latency_for("gpt-4o-mini-2024-07-18")  # gpt-4o-mini, not gpt-4o
    assert mini.tokens_per_s.mean() == 59.0  # sec. L13
    assert script.latency_for("my-own-model") == script.defaults  # unlisted: the illustrative default


def test_a_scripts_defaults_win_over_the_cited_speeds() -> None:
    """A script that sets [defaults] gets them for every model it does not list, cited or not."""
    script = load_script({"defaults": {"ttft_s": 0.1, "tokens_per_s": 500}})
    assert script.latency_for("gpt-4o").sample(random.Random(0)) == (0.1, 500.0)
    only_models = load_script({"models": {"x": {"ttft_s": 0.2}}})
    assert only_models.latency_for("gpt-4o").tokens_per_s.mean() == 131.0


@pytest.mark.parametrize(("data", "message"), [
    ({"rulez": []}, "unknown key 'rulez' (did you mean 'rules'?)"),
    ({"rules": [{"modle": "x"}]}, "rule 1: unknown key 'modle' (did you mean 'model'?)"),
    ({"rules": [{"last_user": "("}]}, "rule 1: last_user is not a valid regular expression"),
    ({"rules": [{"api": "completions"}]}, "unknown api 'completions'"),
    ({"rules": [{"error": 200}]}, "error: must be between 400 and 599"),
    ({"rules": [{"error": 500, "reply": "x"}]}, "an error rule answers nothing else"),
    ({"rules": [{"fault": "crash"}]}, "unknown fault 'crash'"),
    ({"rules": [{"tool_calls": [{"arguments": {}}]}]}, "tool_calls[0] needs a name"),
    ({"limits": {"rpm": 0}}, "[limits] rpm: must be positive"),
    ({"faults": {"error": 0.6, "overloaded": 0.6}}, "probabilities add up to 1.2, above 1"),
    ({"models": {"m": {"ttft_s": -1}}}, "must not be negative"),
])
def test_bad_scripts_are_config_errors_that_say_what_to_fix(data: dict[str, object], message: str) -> None:
    """Each mistake in a script is a ConfigError naming the place and the problem."""
    with pytest.raises(ConfigError) as info:
        load_script(data)
    assert message in str(info.value)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    """A missing file and invalid TOML are ConfigErrors naming the path."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_script(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_script(bad)
